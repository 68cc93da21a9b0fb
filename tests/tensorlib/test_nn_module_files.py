"""torch.nn.modules' file names (batchnorm, channelshuffle, distance, fold, instancenorm, padding, pixelshuffle,
upsampling) for layers tensorlib defines in other files: programs name classes by torch's file, as
pytorch/examples' super_resolution/super_resolve.py does in the safe_globals list of its torch.load of a whole
model (`torch.nn.modules.pixelshuffle.PixelShuffle`)."""
from __future__ import annotations

import importlib
import io

import numpy as np
import pytest

import tensorlib as tl
from tensorlib.serialization import WeightsOnlyUnpicklingError

# torch 2.13's classes in each file
TORCH_FILES = {
    "batchnorm": ["BatchNorm1d", "BatchNorm2d", "BatchNorm3d", "SyncBatchNorm", "_BatchNorm", "LazyBatchNorm1d",
                  "LazyBatchNorm2d", "LazyBatchNorm3d"],
    "channelshuffle": ["ChannelShuffle"],
    "distance": ["PairwiseDistance", "CosineSimilarity"],
    "fold": ["Fold", "Unfold"],
    "instancenorm": ["InstanceNorm1d", "InstanceNorm2d", "InstanceNorm3d", "_InstanceNorm", "LazyInstanceNorm1d",
                     "LazyInstanceNorm2d", "LazyInstanceNorm3d"],
    "padding": [f"{kind}Pad{n}d" for kind in ("Circular", "Constant", "Reflection", "Replication", "Zero")
                for n in (1, 2, 3)],
    "pixelshuffle": ["PixelShuffle", "PixelUnshuffle"],
    "upsampling": ["Upsample", "UpsamplingNearest2d", "UpsamplingBilinear2d"],
}


@pytest.mark.parametrize("file", sorted(TORCH_FILES))
def test_torch_file_names_are_tensorlibs_classes(file):
    mod = importlib.import_module(f"tensorlib.nn.modules.{file}")
    assert getattr(tl.nn.modules, file) is mod
    for name in TORCH_FILES[file]:
        cls = getattr(mod, name)
        assert cls is getattr(tl.nn, name, None) or cls is getattr(tl.nn.modules.normalization, name, None) \
            or cls is getattr(tl.nn.modules.extra, name)
    assert sorted(mod.__all__) == sorted(n for n in TORCH_FILES[file] if not n.startswith("_"))


def test_isinstance_by_torch_file_base_classes():
    assert isinstance(tl.nn.BatchNorm2d(3), tl.nn.modules.batchnorm._BatchNorm)
    assert isinstance(tl.nn.InstanceNorm2d(3), tl.nn.modules.instancenorm._InstanceNorm)


def test_whole_model_loads_with_safe_globals_named_by_torch_file():
    """super_resolve.py's pattern: torch.save(model), then torch.load under safe_globals naming each class by
    its torch file; the model computes as before. A class left out of the list is refused (weights_only)."""
    tl.manual_seed(0)
    model = tl.nn.Sequential(tl.nn.Conv2d(1, 4, 3, padding=1), tl.nn.PixelShuffle(2), tl.nn.ReflectionPad2d(1),
                             tl.nn.InstanceNorm2d(1), tl.nn.Upsample(scale_factor=2))
    buf = io.BytesIO()
    tl.save(model, buf)
    mods = tl.nn.modules
    allowed = [mods.container.Sequential, mods.conv.Conv2d, mods.pixelshuffle.PixelShuffle,
               mods.padding.ReflectionPad2d, mods.instancenorm.InstanceNorm2d, mods.upsampling.Upsample]
    buf.seek(0)
    with tl.serialization.safe_globals(allowed):
        loaded = tl.load(buf)
    x = tl.arange(36.0).reshape(1, 1, 6, 6)
    np.testing.assert_array_equal(loaded(x).detach().numpy(), model(x).detach().numpy())
    assert loaded(x).shape == (1, 1, 28, 28)
    buf.seek(0)
    with tl.serialization.safe_globals(allowed[:2]), pytest.raises(WeightsOnlyUnpicklingError,
                                                                   match="Unsupported global.*PixelShuffle"):
        tl.load(buf)
