"""tensorlib.save's state dicts load in torch (torch.load, weights_only=True, its default), with torch's dtypes,
values, Parameters and requires_grad, and a torch model takes them with load_state_dict (torch is not a
dependency: this folder runs only where torch is installed)."""
import numpy as np
import pytest

import tensorlib as tl

torch = pytest.importorskip("torch")


def test_torch_loads_a_tensorlib_state_dict(tmp_path):
    tl.manual_seed(0)
    model = tl.nn.Sequential(tl.nn.Conv2d(3, 4, 3), tl.nn.BatchNorm2d(4), tl.nn.Flatten(), tl.nn.Linear(4 * 6 * 6, 5))
    model(tl.randn(2, 3, 8, 8))                            # running stats and num_batches_tracked move
    tl.save(model.state_dict(), tmp_path / "m.pt")
    sd = torch.load(tmp_path / "m.pt")
    theirs = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.BatchNorm2d(4), torch.nn.Flatten(),
                                 torch.nn.Linear(4 * 6 * 6, 5))
    assert str(theirs.load_state_dict(sd)) == "<All keys matched successfully>"
    theirs.eval()
    model.eval()
    x = np.random.default_rng(0).standard_normal((2, 3, 8, 8)).astype(np.float32)
    np.testing.assert_allclose(theirs(torch.tensor(x)).detach().numpy(), model(tl.tensor(x)).detach().numpy(),
                               rtol=1e-5, atol=1e-5)


def test_dtypes_parameters_and_plain_values_reach_torch(tmp_path):
    w = tl.randn(2, 3)
    obj = {"f64": tl.randn(2, dtype=tl.float64), "bf16": tl.ones(2, dtype=tl.bfloat16), "i64": tl.arange(3),
           "u8": tl.tensor([255], dtype=tl.uint8), "b": tl.tensor([True]), "h": tl.ones(1, dtype=tl.float16),
           "p": tl.nn.Parameter(tl.ones(2)), "g": tl.ones(1, requires_grad=True), "w": w, "w2": w, "wt": w.t(),
           "meta": {"epoch": 3, "lr": 1e-3, "name": "run", "big": 10 ** 30, "t": (1, 2), "none": None}}
    tl.save(obj, tmp_path / "o.pt")
    back = torch.load(tmp_path / "o.pt")
    assert {k: str(v.dtype) for k, v in back.items() if k != "meta"} == {
        "f64": "torch.float64", "bf16": "torch.bfloat16", "i64": "torch.int64", "u8": "torch.uint8",
        "b": "torch.bool", "h": "torch.float16", "p": "torch.float32", "g": "torch.float32", "w": "torch.float32",
        "w2": "torch.float32", "wt": "torch.float32"}
    assert isinstance(back["p"], torch.nn.Parameter) and back["g"].requires_grad and back["w"] is back["w2"]
    assert back["wt"].tolist() == w.t().tolist() and back["meta"] == obj["meta"]
