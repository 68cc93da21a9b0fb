"""tensorlib.save / load: round trips, identity, devices, and clear errors for bad or hostile files."""
import collections
import io
import zipfile

import numpy as np
import orjson
import pytest
from hypothesis import given, settings, strategies as st

import tensorlib as tl
from tensorlib import optim


def _roundtrip(obj, **kw):
    buf = io.BytesIO()
    tl.save(obj, buf)
    buf.seek(0)
    return tl.load(buf, **kw)


def test_nested_state_dict_round_trip(tmp_path):
    w = tl.randn(3, 4)
    obj = {"model": collections.OrderedDict(w=w, b=tl.arange(4, dtype=tl.int32)),
           "meta": {"epoch": 3, "lr": 0.1, "big": 1 << 80, "nan": float("nan"), "inf": float("-inf"),
                    "name": "run", "flags": [True, None], "shape": (2, 3), 7: "int key", (1, 2): "tuple key",
                    "raw": b"\x00\xff", "dtype": tl.float16, "device": tl.device("cpu")},
           "np": np.arange(6, dtype=np.int16).reshape(2, 3)}
    path = tmp_path / "ckpt.tl"
    tl.save(obj, path)
    got = tl.load(str(path))
    assert isinstance(got["model"], collections.OrderedDict) and list(got["model"]) == ["w", "b"]
    np.testing.assert_array_equal(got["model"]["w"].numpy(), w.numpy())
    assert got["model"]["b"].dtype == tl.int32
    m = got["meta"]
    assert m["epoch"] == 3 and m["big"] == 1 << 80 and np.isnan(m["nan"]) and m["inf"] == float("-inf")
    assert m["flags"] == [True, None] and m["shape"] == (2, 3) and m[7] == "int key" and m[(1, 2)] == "tuple key"
    assert m["raw"] == b"\x00\xff" and m["dtype"] is tl.float16 and m["device"] == tl.device("cpu")
    assert got["np"].dtype == np.int16 and got["np"].tolist() == [[0, 1, 2], [3, 4, 5]]


@pytest.mark.parametrize("dtype", [tl.float16, tl.float32, tl.float64, tl.int8, tl.uint8, tl.int64, tl.bool])
def test_dtypes_and_shapes(dtype):
    t = tl.ones(2, 0, 3, dtype=dtype)
    got = _roundtrip([t, tl.tensor(5, dtype=dtype)])
    assert got[0].dtype == dtype and got[0].shape == (2, 0, 3) and got[1].shape == () and got[1].dtype == dtype


def test_shared_tensor_stays_one_object_and_requires_grad_is_kept():
    p = tl.randn(2, requires_grad=True)
    got = _roundtrip({"a": p, "b": [p]})
    assert got["a"] is got["b"][0] and got["a"].requires_grad and got["a"].is_leaf


def test_noncontiguous_tensor():
    t = tl.arange(12).reshape(3, 4).t()
    assert _roundtrip(t).tolist() == t.tolist()


def test_optimizer_state_dict_round_trip():
    p = tl.randn(3, requires_grad=True)
    opt = optim.Adam([p], lr=0.01)
    p.grad = tl.ones(3)
    opt.step()
    sd = _roundtrip(opt.state_dict())
    q = tl.tensor(p.detach().numpy().copy(), requires_grad=True)
    opt2 = optim.Adam([q], lr=1.0)
    opt2.load_state_dict(sd)
    p.grad = q.grad = tl.ones(3)
    opt.step()
    opt2.step()
    np.testing.assert_array_equal(p.detach().numpy(), q.detach().numpy())


def test_map_location_forms():
    t = tl.ones(2)
    assert _roundtrip(t, map_location="cpu").device == tl.device("cpu")
    assert _roundtrip(t, map_location={"cuda:0": "cpu"}).device == tl.device("cpu")
    seen = []
    out = _roundtrip(t, map_location=lambda tensor, loc: seen.append(loc) or tensor * 2)
    assert seen == ["cpu"] and out.tolist() == [2.0, 2.0]


def _rewrite_manifest(buf, fn):
    src = zipfile.ZipFile(io.BytesIO(buf.getvalue()))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as z:
        for n in src.namelist():
            data = src.read(n)
            z.writestr(n, orjson.dumps(fn(orjson.loads(data))) if n == "manifest.json" else data)
    out.seek(0)
    return out


def test_cuda_tensor_without_cuda_asks_for_map_location():
    if tl.cuda.is_available():
        pytest.skip("CUDA is available here")
    buf = io.BytesIO()
    tl.save({"w": tl.ones(2)}, buf)

    def to_cuda(m):
        m["tensors"][0]["device"] = "cuda:0"
        return m
    with pytest.raises(RuntimeError, match="map_location='cpu'"):
        tl.load(_rewrite_manifest(buf, to_cuda))
    assert tl.load(_rewrite_manifest(buf, to_cuda), map_location="cpu")["w"].tolist() == [1.0, 1.0]


def test_unsupported_objects_are_refused_with_their_place():
    class Model:
        def state_dict(self):
            return {}
    with pytest.raises(TypeError, match=r"at obj\['m'\].*state_dict\(\)"):
        tl.save({"m": Model()}, io.BytesIO())
    with pytest.raises(TypeError, match="NumPy array of dtype object"):
        tl.save(np.array([object()]), io.BytesIO())


def test_truncated_file_error_names_the_file(tmp_path):
    path = tmp_path / "ckpt.tl"
    tl.save({"w": tl.randn(100)}, path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(RuntimeError, match=r"ckpt\.tl.*(truncated|damaged)"):
        tl.load(path)


def test_foreign_files(tmp_path):
    p = tmp_path / "notes.txt"
    p.write_text("hello")
    with pytest.raises(RuntimeError, match=r"notes\.txt is not a tensorlib.save file"):
        tl.load(p)
    torchlike = tmp_path / "model.pt"
    with zipfile.ZipFile(torchlike, "w") as z:
        z.writestr("archive/data.pkl", b"\x80\x02cos\nsystem\n.")
    with pytest.raises(RuntimeError, match="PyTorch checkpoint.*never unpickles"):
        tl.load(torchlike)
    with pytest.raises(FileNotFoundError, match="no such file"):
        tl.load(tmp_path / "missing.tl")


def test_pickled_npy_payload_is_refused():
    """An .npy holding an object array (which would need pickle) must not be unpickled."""
    buf = io.BytesIO()
    tl.save({"w": tl.ones(2)}, buf)
    src = zipfile.ZipFile(io.BytesIO(buf.getvalue()))
    evil = io.BytesIO()
    np.save(evil, np.array([{"x": 1}], dtype=object), allow_pickle=True)
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as z:
        z.writestr("manifest.json", src.read("manifest.json"))
        z.writestr("tensors/0.npy", evil.getvalue())
    out.seek(0)
    with pytest.raises(RuntimeError, match="cannot read tensors/0.npy"):
        tl.load(out)


def test_manifest_disagreeing_with_payload_is_refused():
    buf = io.BytesIO()
    tl.save(tl.ones(2), buf)

    def lie(m):
        m["tensors"][0]["shape"] = [3]
        return m
    with pytest.raises(RuntimeError, match="manifest says"):
        tl.load(_rewrite_manifest(buf, lie))


@settings(max_examples=60, deadline=None)
@given(cut=st.integers(min_value=0, max_value=10_000), flip=st.integers(min_value=0, max_value=10_000))
def test_damaged_files_fail_only_with_clear_errors(cut, flip):
    buf = io.BytesIO()
    tl.save({"a": tl.arange(50).float(), "b": [1, "x"]}, buf)
    data = bytearray(buf.getvalue())
    n = len(data)
    if flip % 2:
        data[flip % n] ^= 0xFF
    else:
        data = data[: cut % n]
    try:
        tl.load(io.BytesIO(bytes(data)))
    except RuntimeError as e:
        assert "tensorlib.load" in str(e)


def test_unsupported_zip_version_is_a_clear_error(tmp_path):
    """zipfile raises NotImplementedError (a RuntimeError) for an unknown 'version needed'; found by the fuzz test."""
    import io
    import struct
    buf = io.BytesIO()
    tl.save({"w": tl.ones(3)}, buf)
    raw = bytearray(buf.getvalue())
    cd = raw.find(b"PK\x01\x02")                       # first central-directory entry
    raw[cd + 6:cd + 8] = struct.pack("<H", 235)        # "version needed to extract": 23.5
    path = tmp_path / "weird.pt"
    path.write_bytes(bytes(raw))
    with pytest.raises(RuntimeError, match=r"tensorlib.load: .*weird.pt.*damaged or truncated"):
        tl.load(path)
