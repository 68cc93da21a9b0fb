"""Checkpoints written by PyTorch itself load without torch (issue 13, item 3).

The fixtures in data/torch_checkpoints/ were written by devtools/make_torch_fixtures.py with torch 2.13;
expected.npz holds torch's inputs and outputs, so these tests need no torch. Hostile variants are built
here by rewriting those archives or writing data.pkl opcode by opcode.
"""
import collections
import io
import struct
import zipfile
from pathlib import Path

import numpy as np
import pytest

import tensorlib as tl
from tensorlib import nn
from tensorlib.serialization import (
    WeightsOnlyUnpicklingError,
    get_unsafe_globals_in_checkpoint,
)

DATA = Path(__file__).parent / "data" / "torch_checkpoints"
EXPECTED = dict(np.load(DATA / "expected.npz"))


def mlp():
    return nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 4))


def cnn():
    return nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(), nn.Flatten(),
                         nn.Linear(4 * 6 * 6, 5))


def test_mlp_state_dict_from_torch_computes_torchs_outputs():
    model = mlp()
    model.load_state_dict(tl.load(DATA / "mlp.pt"))
    out = model(tl.tensor(EXPECTED["mlp_x"])).detach().numpy()
    np.testing.assert_allclose(out, EXPECTED["mlp_y"], rtol=1e-5, atol=1e-6)


def test_cnn_with_batchnorm_from_torch_computes_torchs_outputs():
    sd = tl.load(DATA / "cnn_bn.pt")
    assert isinstance(sd, collections.OrderedDict)
    assert sd["1.num_batches_tracked"].dtype == tl.int64 and sd["1.num_batches_tracked"].item() == 3
    model = cnn()
    model.load_state_dict(sd)
    model.eval()
    out = model(tl.tensor(EXPECTED["cnn_x"])).detach().numpy()
    np.testing.assert_allclose(out, EXPECTED["cnn_y"], rtol=1e-4, atol=1e-5)


def _flat(obj, prefix=""):
    if isinstance(obj, tl.Tensor):
        return {prefix: obj}
    items = obj.items() if isinstance(obj, dict) else enumerate(obj)
    out = {}
    for k, v in items:
        out.update(_flat(v, f"{prefix}.{k}" if prefix else str(k)))
    return out


def test_every_dtype_view_and_shared_storage_loads_as_torch_saved_it():
    got = tl.load(DATA / "tensors.pt")
    flat = _flat(got)
    want = {k[len("tensors/"):]: v for k, v in EXPECTED.items() if k.startswith("tensors/")}
    assert set(flat) == set(want)
    for key, t in flat.items():
        arr = t.detach().numpy()
        assert arr.dtype == want[key].dtype and arr.shape == want[key].shape, key
        np.testing.assert_array_equal(arr, want[key], err_msg=key)
    assert [got[k].dtype for k in ("half", "double", "mask", "small", "long")] == [
        tl.float16, tl.float64, tl.bool, tl.int8, tl.int64]
    assert got["long"].tolist() == [1 << 40, -5]
    # transposed / row / col are views of `base`'s one storage in torch: here each is a copy it owns
    assert got["transposed"].tolist() == got["base"].t().tolist() and got["col"].tolist() == [2.0, 6.0, 10.0]
    assert got["transposed"]._data.flags.c_contiguous and got["row"]._data.base is None
    assert isinstance(got["param"], nn.Parameter) and got["param"].requires_grad
    assert got["scalar"].shape == () and got["empty"].shape == (0, 3)
    assert isinstance(got["nested"], list) and isinstance(got["nested"][1], tuple)


def test_map_location_applies_to_torch_files():
    seen = []
    sd = tl.load(DATA / "mlp.pt", map_location=lambda t, loc: seen.append(loc) or t)
    assert seen == ["cpu"] * 4 and sd["0.bias"].device == tl.device("cpu")
    assert tl.load(DATA / "mlp.pt", map_location={"cpu": "cpu"})["0.weight"].shape == (16, 8)


def _rewrite(path, edit) -> io.BytesIO:
    """The archive at `path` with each entry passed through edit(name, data) -> data (None drops it)."""
    src = zipfile.ZipFile(path)
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as z:
        for name in src.namelist():
            data = edit(name, src.read(name))
            if data is not None:
                z.writestr(name, data)
    out.seek(0)
    return out


def test_big_endian_archive_loads_in_native_order():
    def to_big(name, data):
        if name.endswith("byteorder"):
            return b"big"
        if "/data/" in name:
            return np.frombuffer(data, np.float32).byteswap().tobytes()
        return data
    sd = tl.load(_rewrite(DATA / "mlp.pt", to_big))
    np.testing.assert_array_equal(sd["0.weight"].numpy(), tl.load(DATA / "mlp.pt")["0.weight"].numpy())


def test_whole_torch_model_and_legacy_format_are_refused_clearly():
    with pytest.raises(WeightsOnlyUnpicklingError, match="holds torch.nn.modules.container.Sequential, a PyTorch "
                       "object that tensorlib cannot rebuild.*save model.state_dict"):
        tl.load(DATA / "whole_model.pt")
    with pytest.raises(RuntimeError, match="torch.nn.modules.container.Sequential, a PyTorch object"):
        tl.load(DATA / "whole_model.pt", weights_only=False)
    assert get_unsafe_globals_in_checkpoint(DATA / "whole_model.pt") == [
        "torch.nn.modules.container.Sequential", "torch.nn.modules.linear.Linear",
        "torch.nn.modules.activation.ReLU"]
    assert get_unsafe_globals_in_checkpoint(DATA / "mlp.pt") == []
    with pytest.raises(RuntimeError, match="legacy.pt.: a PyTorch checkpoint in the legacy format"):
        tl.load(DATA / "legacy.pt")


def test_torchscript_archive_is_refused():
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for name in ("m/data.pkl", "m/constants.pkl", "m/code/__torch__.py"):
            z.writestr(name, b"\x80\x02}.")
    buf.seek(0)
    with pytest.raises(RuntimeError, match="a TorchScript archive"):
        tl.load(buf)


# --- hostile torch archives: data.pkl written opcode by opcode -------------------------------------

def g(module, name):
    return b"c" + f"{module}\n{name}\n".encode()


def s(text):
    return b"X" + struct.pack("<I", len(text.encode())) + text.encode()


def i(n):
    return b"J" + struct.pack("<i", n)


def tup(*items):
    return b"(" + b"".join(items) + b"t"


def tensor(key, numel, offset, size, stride, storage="FloatStorage", location="cpu"):
    pid = tup(s("storage"), g("torch", storage), s(key), s(location), i(numel)) + b"Q"
    hooks = g("collections", "OrderedDict") + b")R"
    return (g("torch._utils", "_rebuild_tensor_v2")
            + tup(pid, i(offset), tup(*map(i, size)), tup(*map(i, stride)), b"\x89", hooks) + b"R")


def torch_zip(body: bytes, storages: dict) -> io.BytesIO:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as z:
        z.writestr("archive/data.pkl", b"\x80\x02" + body + b".")
        z.writestr("archive/byteorder", b"little")
        for key, data in storages.items():
            z.writestr(f"archive/data/{key}", data)
    out.seek(0)
    return out


FOUR = np.arange(4, dtype=np.float32).tobytes()


def test_hand_written_checkpoint_loads():
    """The helpers write what torch writes: a strided view at an offset."""
    t = tl.load(torch_zip(tensor("0", 4, 1, (2,), (2,)), {"0": FOUR}))
    assert t.tolist() == [1.0, 3.0]


def test_bfloat16_storage_loads_as_bfloat16():
    """torch.BFloat16Storage (most LLM checkpoints): raw bfloat16 bytes, the upper half of float32's."""
    halves = (np.array([1.0, -2.5, 3.0], np.float32).view(np.uint32) >> 16).astype(np.uint16).tobytes()
    t = tl.load(torch_zip(tensor("0", 3, 0, (3,), (1,), storage="BFloat16Storage"), {"0": halves}))
    assert t.dtype == tl.bfloat16 and t.float().tolist() == [1.0, -2.5, 3.0]


@pytest.mark.parametrize("body,storages,match", [
    (tensor("0", 8, 0, (4,), (1,)), {"0": FOUR}, "declares 8 float32 elements .32 bytes. but the entry holds 16"),
    (tensor("0", 4, 0, (3,), (2,)), {"0": FOUR}, "reaches element 4 of a 4-element storage"),
    (tensor("0", 4, 5, (1,), (1,)), {"0": FOUR}, "does not describe a view"),
    (tensor("0", 4, 0, (2,), (-1,)), {"0": FOUR}, "does not describe a view"),
    (tensor("0", 4, 0, (1 << 30, 1 << 30), (0, 0)), {"0": FOUR}, "builds more than"),
    (tensor("1", 4, 0, (4,), (1,)), {"0": FOUR}, "archive/data/1: missing from the archive"),
    (tensor("../data.pkl", 4, 0, (4,), (1,)), {"0": FOUR}, "a storage id must be"),
    (tensor("0", 2, 0, (2,), (1,), storage="QInt8Storage"), {"0": FOUR}, "QInt8Storage, whose dtype"),
    (tup(s("storage"), g("torch", "FloatStorage"), s("0"), s("cpu"), i(4)) + b"Q" + b")R", {"0": FOUR},
     "Trying to call reduce for unrecognized function"),
    (tup(s("module"), s("os"), s("system")) + b"Q", {}, "Only persistent_load of storage is allowed"),
    (g("torch", "load") + tup(s("x")) + b"R", {}, "holds torch.load, a PyTorch object"),
    (g("torch.serialization", "_get_layout") + tup(s("x")) + b"R", {}, "holds torch.serialization._get_layout"),
    (g("os", "system") + tup(s("true")) + b"R", {}, "whose module os is blocked"),
])
def test_hostile_torch_checkpoints_are_refused(body, storages, match):
    with pytest.raises(RuntimeError, match=match) as e:
        tl.load(torch_zip(body, storages))
    assert str(e.value).startswith("tensorlib.load: '<BytesIO>': ") and "\n" not in str(e.value)


def test_cuda_storage_location_follows_map_location():
    def buf():
        return torch_zip(tensor("0", 4, 0, (4,), (1,), location="cuda:0"), {"0": FOUR})
    assert tl.load(buf(), map_location="cpu").device == tl.device("cpu")
    if tl.cuda.is_available():
        assert tl.load(buf()).device.type == "cuda"
    else:
        with pytest.raises(RuntimeError, match="map_location='cpu'"):
            tl.load(buf())


def test_shared_storage_is_read_once():
    body = b"](" + tensor("0", 4, 0, (4,), (1,)) + tensor("0", 4, 2, (2,), (1,)) + b"e"
    ts = tl.load(torch_zip(body, {"0": FOUR}))
    assert [t.tolist() for t in ts] == [[0.0, 1.0, 2.0, 3.0], [2.0, 3.0]]
    body = b"](" + tensor("0", 4, 0, (4,), (1,)) + tensor("0", 2, 0, (2,), (1,), storage="DoubleStorage") + b"e"
    with pytest.raises(RuntimeError, match="also as float32"):
        tl.load(torch_zip(body, {"0": FOUR}))


def test_torch_load_weights_only_false_still_maps_tensors():
    sd = tl.load(DATA / "mlp.pt", weights_only=False)
    assert sd["0.weight"].shape == (16, 8) and isinstance(sd, collections.OrderedDict)


def test_state_dicts_are_saved_in_torchs_own_format():
    """tl.save of a state dict writes what torch.save writes (data.pkl + raw little-endian storages +
    byteorder + version under one folder), so torch.load reads it, and it round-trips here: every dtype,
    Parameters, requires_grad, views saved as their values, a tensor met twice loaded as one object."""
    w = tl.randn(3, 5)
    obj = collections.OrderedDict(
        lin=tl.nn.Linear(3, 2).state_dict(), p=tl.nn.Parameter(tl.ones(2)), w=w, w_again=w, wt=w.t(),
        g=tl.ones(2, requires_grad=True), bf=tl.ones(3, dtype=tl.bfloat16), b=tl.tensor([True, False]),
        i8=tl.tensor([-3], dtype=tl.int8), empty=tl.zeros(0, 3), scalar=tl.tensor(3.5),
        plain=[1, 2.5, None, True, "é", 10 ** 40, -(2 ** 70), (1, (2, 3))], step=7)
    buf = io.BytesIO()
    tl.save(obj, buf)
    names = zipfile.ZipFile(io.BytesIO(buf.getvalue())).namelist()
    assert names[:2] == ["archive/data.pkl", "archive/byteorder"] and "archive/version" in names
    assert "archive/data/0" in names and not any(n.endswith(".npy") or n == "manifest.json" for n in names)
    buf.seek(0)
    back = tl.load(buf)
    assert isinstance(back, collections.OrderedDict) and list(back) == list(obj)
    assert back["w"] is back["w_again"] and back["wt"].tolist() == w.t().tolist()
    assert type(back["p"]) is tl.nn.Parameter and back["p"].requires_grad and back["g"].requires_grad
    assert not back["w"].requires_grad and back["bf"].dtype == tl.bfloat16 and back["i8"].tolist() == [-3]
    assert back["b"].tolist() == [True, False] and back["empty"].shape == (0, 3) and back["scalar"].item() == 3.5
    assert back["plain"] == obj["plain"] and back["step"] == 7
    assert set(back["lin"]) == {"weight", "bias"}


def test_what_torch_cannot_read_weights_only_keeps_tensorlibs_format():
    """NumPy arrays, bytes, sets or a Module: tensorlib's archive (manifest.json), as before."""
    for obj in ({"a": np.zeros(2)}, {"b": b"raw"}, {"s": {1, 2}}, {"k": {(1, 2): tl.ones(1)}}):
        buf = io.BytesIO()
        tl.save(obj, buf)
        assert "manifest.json" in zipfile.ZipFile(io.BytesIO(buf.getvalue())).namelist(), obj
