"""Write the PyTorch checkpoints tests/tensorlib/test_serialization_torch.py loads, so CI needs no torch.

Run with a Python that has torch (the fixtures were made with torch 2.13, CPU):
    /work/main/.venv/bin/python devtools/make_torch_fixtures.py [outdir]
It writes into tests/tensorlib/data/torch_checkpoints/ by default:
  mlp.pt          torch.save(mlp.state_dict())                     Linear(8,16) ReLU Linear(16,4)
  cnn_bn.pt       torch.save(cnn.state_dict()) after 3 train steps  Conv2d, BatchNorm2d (int64
                  num_batches_tracked), ReLU, Flatten, Linear
  tensors.pt      float16/float64/bool/int8/int64 tensors, a transposed (non-contiguous) view, two
                  views of one storage, a slice at a storage offset, a 0-d and an empty tensor, a
                  Parameter, nested in an OrderedDict, a list and a tuple
  whole_model.pt  torch.save(mlp): a whole module, which tensorlib must refuse by name
  legacy.pt       torch.save(sd, _use_new_zipfile_serialization=False): the pre-1.6 format
  expected.npz    the inputs and torch's outputs (mlp_x, mlp_y, cnn_x, cnn_y) and every tensor of
                  tensors.pt as NumPy arrays, for comparison without torch
"""
from __future__ import annotations

import collections
import sys
from pathlib import Path

import numpy as np
import torch
from torch import nn


def mlp() -> nn.Module:
    return nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 4))


def cnn() -> nn.Module:
    return nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(), nn.Flatten(),
                         nn.Linear(4 * 6 * 6, 5))


def trained_cnn() -> nn.Module:
    """A few SGD steps in train mode, so BatchNorm's running stats and num_batches_tracked are not defaults."""
    model = cnn()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    for _ in range(3):
        opt.zero_grad()
        model(torch.randn(4, 3, 6, 6)).square().mean().backward()
        opt.step()
    return model.eval()


def tensors() -> collections.OrderedDict:
    base = torch.arange(12, dtype=torch.float32).reshape(3, 4)
    return collections.OrderedDict(
        half=torch.randn(3, 2).half(), double=torch.randn(2, 3, dtype=torch.float64),
        mask=torch.tensor([True, False, True]), small=torch.tensor([-3, 7], dtype=torch.int8),
        long=torch.tensor([1 << 40, -5]), transposed=base.t(), base=base, row=base[1], col=base[:, 2],
        scalar=torch.tensor(2.5), empty=torch.zeros(0, 3), param=nn.Parameter(torch.ones(2)),
        nested=[torch.tensor([1.0, 2.0]), (torch.tensor(3),)])


def flat(obj, prefix="") -> dict:
    """Every tensor of `obj` as a NumPy array, keyed by its path."""
    if isinstance(obj, torch.Tensor):
        return {prefix: obj.detach().numpy().copy()}
    items = obj.items() if isinstance(obj, dict) else enumerate(obj)
    out = {}
    for k, v in items:
        out.update(flat(v, f"{prefix}.{k}" if prefix else str(k)))
    return out


def main(out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)
    m = mlp().eval()
    mlp_x = torch.randn(5, 8)
    torch.save(m.state_dict(), out / "mlp.pt")
    c = trained_cnn()
    cnn_x = torch.randn(2, 3, 6, 6)
    torch.save(c.state_dict(), out / "cnn_bn.pt")
    t = tensors()
    torch.save(t, out / "tensors.pt")
    torch.save(m, out / "whole_model.pt")
    torch.save(m.state_dict(), out / "legacy.pt", _use_new_zipfile_serialization=False)
    with torch.no_grad():
        expected = {"mlp_x": mlp_x.numpy(), "mlp_y": m(mlp_x).numpy(),
                    "cnn_x": cnn_x.numpy(), "cnn_y": c(cnn_x).numpy()}
    expected.update({f"tensors/{k}": v for k, v in flat(t).items()})
    np.savez(out / "expected.npz", **expected)
    print(f"wrote {len(list(out.glob('*')))} files to {out} with torch {torch.__version__}")


if __name__ == "__main__":
    default = Path(__file__).resolve().parents[1] / "tests/tensorlib/data/torch_checkpoints"
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else default)
