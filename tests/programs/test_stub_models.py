"""stubs/torchvision/models (ResNet-18/34/50, VGG-16 as torchvision 0.28 builds them) under tensorlib.compat:
torchvision's parameter counts (its weights' "num_params" metadata), its state_dict keys and initialization,
a forward pass of the right shape, and a clear refusal of pretrained weights. Run in a child process, as the
stand-in imports `torch` (tensorlib there through tensorlib.compat)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent

CHECK = r"""
import json, math, warnings
import tensorlib.compat
tensorlib.compat.install()
import torch
from torchvision import models
out = {}
torch.manual_seed(0)
for name in ("resnet18", "resnet34", "resnet50"):
    m = getattr(models, name)(weights=None)
    out[name] = {"params": sum(p.numel() for p in m.parameters()), "keys": list(m.state_dict()),
                 "classes": [type(c).__name__ for c in m.children()]}
m = models.resnet18(weights=None, num_classes=10, zero_init_residual=True)
w = m.layer2[0].conv1.weight                      # kaiming_normal_(fan_out, relu): std sqrt(2 / (128 * 9))
out["conv_std"] = [w.std().item(), math.sqrt(2 / (128 * 9))]
out["bn"] = [m.bn1.weight.min().item(), m.bn1.weight.max().item(), m.bn1.bias.abs().max().item(),
             m.layer1[0].bn2.weight.abs().max().item()]
y = m(torch.randn(2, 3, 32, 32))
out["shape"] = list(y.shape)
v = models.vgg16(weights=None)
out["vgg16"] = {"params": sum(p.numel() for p in v.parameters()), "keys": list(v.state_dict())}
errors = []
for call in (lambda: models.resnet18(weights=models.ResNet18_Weights.IMAGENET1K_V1),
             lambda: models.vgg16(weights="DEFAULT"), lambda: models.resnet50(pretrained=True),
             lambda: models.resnet34(weights=models.ResNet18_Weights.DEFAULT)):
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            call()
    except Exception as e:
        errors.append([type(e).__name__, str(e)])
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    models.resnet18(pretrained=False)
out["legacy_warning"] = [str(c.message) for c in caught]
out["errors"] = errors
print(json.dumps(out))
"""


def test_models_match_torchvision(tmp_path):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(HERE / "stubs"), str(HERE.parents[1])])}
    r = subprocess.run([sys.executable, "-c", CHECK], cwd=tmp_path, env=env, capture_output=True, text=True,
                       timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    out = json.loads(r.stdout.splitlines()[-1])
    # torchvision's ResNet18/34/50_Weights and VGG16_Weights "num_params"
    assert [out[n]["params"] for n in ("resnet18", "resnet34", "resnet50")] == [11689512, 21797672, 25557032]
    assert out["vgg16"]["params"] == 138357544
    keys18 = out["resnet18"]["keys"]
    assert len(keys18) == 122 and keys18[:6] == ["conv1.weight", "bn1.weight", "bn1.bias", "bn1.running_mean",
                                                  "bn1.running_var", "bn1.num_batches_tracked"]
    assert "layer2.0.downsample.0.weight" in keys18 and "layer2.0.downsample.1.running_var" in keys18
    assert "layer1.0.downsample.0.weight" not in keys18 and keys18[-2:] == ["fc.weight", "fc.bias"]
    keys50 = out["resnet50"]["keys"]
    assert len(keys50) == 320 and "layer1.0.conv3.weight" in keys50 and "layer1.0.downsample.0.weight" in keys50
    assert out["resnet18"]["classes"] == ["Conv2d", "BatchNorm2d", "ReLU", "MaxPool2d", "Sequential",
                                          "Sequential", "Sequential", "Sequential", "AdaptiveAvgPool2d", "Linear"]
    vkeys = out["vgg16"]["keys"]
    assert vkeys[:2] == ["features.0.weight", "features.0.bias"] and "features.28.weight" in vkeys
    assert vkeys[-2:] == ["classifier.6.weight", "classifier.6.bias"] and len(vkeys) == 32
    std, expected = out["conv_std"]
    assert abs(std - expected) < 0.05 * expected
    assert out["bn"] == [1.0, 1.0, 0.0, 0.0]           # BN weight 1, bias 0; zero_init_residual: bn2 zero
    assert out["shape"] == [2, 10]
    refused = out["errors"]
    assert [e[0] for e in refused] == ["RuntimeError", "RuntimeError", "RuntimeError", "TypeError"]
    assert "resnet18(weights=ResNet18_Weights.IMAGENET1K_V1)" in refused[0][1] and "weights=None" in refused[0][1]
    assert "vgg16(weights=VGG16_Weights.IMAGENET1K_V1)" in refused[1][1]          # "DEFAULT" is that member
    assert "resnet50(weights=ResNet50_Weights.IMAGENET1K_V1)" in refused[2][1]    # pretrained=True: V1
    assert refused[3][1] == ("Invalid Weight class provided; expected ResNet34_Weights but received "
                             "ResNet18_Weights.")
    assert out["legacy_warning"] == ["The parameter 'pretrained' is deprecated since 0.13 and may be removed in "
                                     "the future, please use 'weights' instead.",
                                     "Arguments other than a weight enum or `None` for 'weights' are deprecated "
                                     "since 0.13 and may be removed in the future. The current behavior is "
                                     "equivalent to passing `weights=None`."]
