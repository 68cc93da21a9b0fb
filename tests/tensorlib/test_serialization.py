"""tensorlib.save / load: round trips, identity, devices, and clear errors for bad or hostile files."""
import collections
import io
import os
import pickle
import zipfile

import numpy as np
import orjson
import pytest
from hypothesis import given, settings, strategies as st

import tensorlib as tl
from tensorlib import optim
from tensorlib.serialization import _save_tensorlib_format   # the format state dicts no longer use


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
    _save_tensorlib_format({"w": tl.ones(2)}, buf)

    def to_cuda(m):
        m["tensors"][0]["device"] = "cuda:0"
        return m
    with pytest.raises(RuntimeError, match="map_location='cpu'"):
        tl.load(_rewrite_manifest(buf, to_cuda))
    assert tl.load(_rewrite_manifest(buf, to_cuda), map_location="cpu")["w"].tolist() == [1.0, 1.0]


def test_objects_pickle_cannot_save_fail_as_in_torch_save():
    """Anything beyond plain values is pickled as torch.save pickles it, with pickle's errors."""
    class Model:
        pass
    with pytest.raises(AttributeError, match="Can't (pickle|get) local object"):    # pickle's words: 3.13 says "get"
        tl.save({"m": Model()}, io.BytesIO())
    with pytest.raises(ValueError, match="pickle_protocol must be 2 .* or 3"):
        tl.save({"s": {1}}, io.BytesIO(), pickle_protocol=4)
    with pytest.raises(ValueError, match="writes the zip format only; _use_new_zipfile_serialization=False"):
        tl.save({"w": tl.ones(2)}, io.BytesIO(), _use_new_zipfile_serialization=False)


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
    with pytest.raises(RuntimeError, match=r"notes\.txt': not a tensorlib.save file"):
        tl.load(p)
    torchlike = tmp_path / "model.pt"
    with zipfile.ZipFile(torchlike, "w") as z:
        z.writestr("archive/data.pkl", b"\x80\x02cos\nsystem\n.")
    with pytest.raises(pickle.UnpicklingError, match="model.pt.: archive/data.pkl: Weights only load failed.*"
                       "unsupported GLOBAL os.system whose module os is blocked"):
        tl.load(torchlike)
    with pytest.raises(FileNotFoundError, match="no such file"):
        tl.load(tmp_path / "missing.tl")


def test_pickled_npy_payload_is_refused():
    """An .npy holding an object array (which would need pickle) must not be unpickled."""
    buf = io.BytesIO()
    _save_tensorlib_format({"w": tl.ones(2)}, buf)
    src = zipfile.ZipFile(io.BytesIO(buf.getvalue()))
    evil = io.BytesIO()
    np.save(evil, np.array([{"x": 1}], dtype=object), allow_pickle=True)
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as z:
        z.writestr("manifest.json", src.read("manifest.json"))
        z.writestr("tensors/0.npy", evil.getvalue())
    out.seek(0)
    with pytest.raises(RuntimeError, match="tensors/0.npy: holds object data, which tensorlib tensors do not support"):
        tl.load(out)


def test_manifest_disagreeing_with_payload_is_refused():
    buf = io.BytesIO()
    _save_tensorlib_format(tl.ones(2), buf)

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
    with pytest.raises(RuntimeError, match=r"tensorlib.load: .*weird.pt.*zip file version 23.5.*truncated"):
        tl.load(path)


# --- bounds and validation (issue 21, item 8) -------------------------------------------------------

def _npy(arr) -> bytes:
    out = io.BytesIO()
    np.lib.format.write_array(out, arr, allow_pickle=True)
    return out.getvalue()


def _manifest(root, tensors) -> bytes:
    return orjson.dumps({"format": "tensorlib.save", "version": 1, "root": root, "tensors": tensors})


def _archive(entries, deflate=()):
    """A zip of {name: bytes}; the names in `deflate` are compressed (tensorlib.save never compresses)."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as z:
        for n, data in entries.items():
            z.writestr(n, data, compress_type=zipfile.ZIP_DEFLATED if n in deflate else zipfile.ZIP_STORED)
    out.seek(0)
    return out


def _one_tensor(npy: bytes, dtype: str, shape) -> io.BytesIO:
    meta = {"file": "tensors/0.npy", "dtype": dtype, "shape": list(shape), "device": "cpu", "requires_grad": False}
    return _archive({"manifest.json": _manifest({"T": 0}, [meta]), "tensors/0.npy": npy})


def _load_peak(buf):
    """(the exception tensorlib.load raised, the peak bytes Python and NumPy allocated meanwhile)."""
    import tracemalloc
    tracemalloc.start()
    try:
        tl.load(buf)
    except RuntimeError as e:
        return e, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    raise AssertionError("tensorlib.load accepted a hostile file")


@pytest.mark.parametrize("n", [10 ** 5000, -(10 ** 5000), 2 ** 100_000 + 1, -(1 << 63) - 1, 1 << 63],
                         ids=["1e5000", "-1e5000", "2**100000+1", "-2**63-1", "2**63"])
def test_ints_of_any_size_round_trip(n):
    """str() refuses ints over 4300 digits; the README promises any size."""
    assert _roundtrip({"n": n})["n"] == n


def test_big_int_written_in_decimal_by_older_saves_still_loads():
    assert tl.load(_archive({"manifest.json": _manifest({"I": str(1 << 80)}, [])})) == 1 << 80


def _npy_header(dtype, shape) -> bytes:
    """An .npy header alone, declaring any shape (NumPy itself would allocate it before reading)."""
    d = np.lib.format.header_data_from_array_1_0(np.zeros(0, dtype))
    d["shape"] = tuple(shape)
    out = io.BytesIO()
    np.lib.format.write_array_header_1_0(out, d)
    return out.getvalue()


def _deflated_bomb(nbytes):
    """A tensorlib.save archive whose one float32 tensor of `nbytes` zeros is deflated (ratio ~1000)."""
    meta = {"file": "tensors/0.npy", "dtype": "float32", "shape": [nbytes // 4], "device": "cpu"}
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compresslevel=9) as z:
        z.writestr("manifest.json", _manifest({"T": 0}, [meta]))
        info = zipfile.ZipInfo("tensors/0.npy")
        info.compress_type = zipfile.ZIP_DEFLATED
        with z.open(info, "w", force_zip64=True) as w:
            w.write(_npy_header(np.float32, [nbytes // 4]))
            chunk = bytes(1 << 20)
            for _ in range(nbytes >> 20):
                w.write(chunk)
    out.seek(0)
    return out


def test_deflated_npy_bomb_is_refused_before_inflating():
    """~130 KB on disk inflating to 128 MB (over the 64 MB floor): refused from the declared sizes."""
    bomb = _deflated_bomb(128 << 20)
    size = len(bomb.getvalue())
    assert size < 200_000
    err, peak = _load_peak(bomb)
    assert "<BytesIO>" in str(err) and "inflate to more than" in str(err)
    assert peak < 3 * size + (1 << 20)


def test_manifest_bomb_is_refused_before_inflating():
    """A 2 MB deflated manifest (here ~20 KB for 20 MB) must not be inflated, let alone parsed."""
    body = b'{"format":"tensorlib.save","version":1,"tensors":[],"root":{"L":[' + b"0," * (10 << 20) + b"0]}}"
    buf = _archive({"manifest.json": body}, deflate={"manifest.json"})
    size = len(buf.getvalue())
    err, peak = _load_peak(buf)
    assert "manifest.json: inflates to" in str(err)
    assert peak < 3 * size + (1 << 20)


def test_npy_header_declaring_2_to_the_40_elements_is_refused_before_allocating():
    buf = _one_tensor(_npy_header(np.float32, [1 << 40]) + bytes(16), "float32", [1 << 40])
    err, peak = _load_peak(buf)
    assert "tensors/0.npy: its header declares float32[1099511627776]" in str(err) and "holds 16 bytes" in str(err)
    assert peak < 1 << 20


def test_stored_entry_declaring_more_than_it_holds_is_refused():
    buf = bytearray(_one_tensor(_npy(np.ones(4, np.float32)), "float32", [4]).getvalue())
    cd = buf.find(b"PK\x01\x02", buf.find(b"tensors/0.npy") + 1)
    cd = buf.find(b"PK\x01\x02", cd + 4) if buf[cd + 46:cd + 46 + 13] != b"tensors/0.npy" else cd
    buf[cd + 24:cd + 28] = (1 << 30).to_bytes(4, "little")     # uncompressed size in the central directory
    with pytest.raises(RuntimeError, match="stored uncompressed but declares 1073741824 bytes"):
        tl.load(io.BytesIO(bytes(buf)))


def _nested(depth) -> bytes:
    """A manifest whose root is `depth` lists deep (orjson.dumps writes at most 254 levels: built as text)."""
    root = b'{"L":[' * depth + b"1" + b"]}" * depth
    return b'{"format":"tensorlib.save","version":1,"tensors":[],"root":' + root + b"}"


def test_deeply_nested_manifest_is_a_clear_error_not_recursion():
    buf = _archive({"manifest.json": _nested(505)})
    with pytest.raises(RuntimeError, match="nests containers more than 64 deep"):
        tl.load(buf)
    assert tl.load(_archive({"manifest.json": _nested(64)})) is not None


def test_save_refuses_nesting_deeper_than_load_reads():
    obj = 1
    for _ in range(64):
        obj = [obj]
    assert _roundtrip(obj) == obj
    with pytest.raises(ValueError, match=r"obj\[0\].* nested more than 64 containers deep"):
        tl.save([obj], io.BytesIO())
    loop = []
    loop.append(loop)
    with pytest.raises(ValueError, match="does a container hold itself"):
        tl.save(loop, io.BytesIO())


@pytest.mark.timeout(20)
def test_fifo_device_and_directory_are_refused_not_read(tmp_path):
    fifo = tmp_path / "ckpt.fifo"
    os.mkfifo(fifo)
    with pytest.raises(RuntimeError, match=r"ckpt\.fifo'.* named pipe"):
        tl.load(fifo)                      # blocked forever before
    with pytest.raises(RuntimeError, match="character device"):
        tl.load("/dev/zero")
    with pytest.raises(RuntimeError, match="directory"):
        tl.load(tmp_path)


def test_file_objects_must_be_seekable_and_open():
    class Pipe(io.RawIOBase):
        def readable(self):
            return True

        def seekable(self):
            return False
    with pytest.raises(RuntimeError, match="not seekable.*io.BytesIO"):
        tl.load(Pipe())
    buf = io.BytesIO()
    buf.close()
    with pytest.raises(RuntimeError, match="closed"):
        tl.load(buf)


def _uncommon_dtypes():
    yield from ["uint16", "uint32", "uint64", "datetime64[s]", "timedelta64[ms]",
                "<U3", "S3", "V4", "O"]
    yield np.dtype([("a", "<f4"), ("b", "<i4")])
    if np.dtype(np.longdouble).itemsize > 8:
        yield np.longdouble


@pytest.mark.parametrize("dtype", list(_uncommon_dtypes()), ids=str)
def test_tensor_of_an_unsupported_dtype_is_refused_naming_it(dtype):
    dt = np.dtype(dtype)
    buf = _one_tensor(_npy(np.zeros(3, dt)), str(dt), [3])
    with pytest.raises(RuntimeError, match=r"tensors/0.npy: holds .* data, which tensorlib tensors do not support "
                                           r"\(supported: bool, uint8.*float64, complex64, complex128, bfloat16\)"):
        tl.load(buf)


@pytest.mark.parametrize("dtype", [">f4", ">f8", ">i2", ">i8", ">f2"])
def test_big_endian_tensor_loads_in_native_order(dtype):
    """torch converts a big-endian storage to native order; so does load (in place, no second copy)."""
    arr = np.arange(-3, 3).astype(dtype)
    t = tl.load(_one_tensor(_npy(arr), str(arr.dtype), [6]))
    assert t.dtype == tl.float32 if dtype == ">f4" else t.dtype.name == np.dtype(dtype).newbyteorder("=").name
    assert t.tolist() == arr.tolist() and repr(t) and (t + 1).tolist() == (arr + 1).tolist()


@pytest.mark.parametrize("dtype", ["uint16", "uint64", "complex64", ">f4", "float16", "bool"])
def test_numpy_arrays_of_every_saveable_dtype_round_trip_exactly(dtype):
    arr = np.arange(6).reshape(2, 3).astype(dtype)
    got = _roundtrip({"a": arr})["a"]
    assert got.dtype == arr.dtype and np.array_equal(got, arr)


def test_an_array_saved_twice_loads_as_one_object_and_is_read_once():
    arr = np.arange(4)
    got = _roundtrip([arr, {"again": arr}])
    assert got[0] is got[1]["again"]
    meta = {"file": "tensors/0.npy", "dtype": "int64", "shape": [1 << 16]}
    buf = _archive({"manifest.json": _manifest({"L": [{"A": 0}] * 100_000}, [meta]),
                    "tensors/0.npy": _npy(np.zeros(1 << 16, np.int64))})
    got = tl.load(buf)                     # 100k references to 512 KB: one array, not 50 GB
    assert len(got) == 100_000 and all(a is got[0] for a in got)


def test_every_error_names_the_file(tmp_path):
    buf = io.BytesIO()
    _save_tensorlib_format({"w": tl.ones(2)}, buf)
    path = tmp_path / "ckpt.tl"

    def cases():
        yield lambda m: m["tensors"][0].update(device="cuda:0") or m, "map_location='cpu'"
        yield lambda m: m["tensors"][0].update(device="tpu:0") or m, "cannot place a tensor on 'tpu:0'"
        yield lambda m: m["tensors"][0].update(dtype="int64") or m, "but the manifest says int64"
        yield lambda m: m.update(root={"D": [[{"D": []}, 1]]}) or m, "dict key of type dict"
        yield lambda m: m.update(root={"dtype": "complex32"}) or m, "dtype 'complex32', which tensorlib does not"
        yield lambda m: m.update(root={"B": "!!"}) or m, "not valid base64"
        yield lambda m: m.update(root={"B": "\x80"}) or m, "not valid base64"     # found by the fuzz suite
        yield lambda m: m.update(root={"T": []}) or m, "refers to tensor [], which is not in the file"   # ditto
        yield lambda m: m.update(root={"I": "12x"}) or m, "integer '12x' is not a number"
        yield lambda m: m.update(root={"L": 3}) or m, "holds a int"
        yield lambda m: m.update(root={"X": [[[[]]]]}) or m, "unexpected entry in the manifest: an object"
        yield lambda m: m.update(tensors=[{"file": 3}]) or m, "entry for tensor 0 is malformed"
        yield lambda m: m["tensors"][0].update(requires_grad=True, dtype="int64") or m, "manifest says"
    for edit, message in cases():
        if tl.cuda.is_available() and "map_location" in message:
            continue
        path.write_bytes(_rewrite_manifest(buf, edit).getvalue())
        with pytest.raises(RuntimeError) as e:
            tl.load(path)
        assert str(e.value).startswith(f"tensorlib.load: {str(path)!r}: ") and message in str(e.value), str(e.value)
        assert "\n" not in str(e.value)


def test_hostile_names_in_errors_are_escaped():
    meta = {"file": "\x1b]2;PWNED\x07", "dtype": "float32", "shape": [1]}
    with pytest.raises(RuntimeError) as e:
        tl.load(_archive({"manifest.json": _manifest({"T": 0}, [meta])}))
    assert "\x1b" not in str(e.value) and "\\x1b]2;PWNED" in str(e.value)


def test_mmap_is_refused_not_ignored():
    with pytest.raises(ValueError, match="mmap=True is not supported"):
        tl.load(io.BytesIO(), mmap=True)


# --- save writes through safeio.atomic_open ------------------------------------------------------

def test_failed_save_keeps_the_old_file_and_its_mode(tmp_path, monkeypatch):
    path = tmp_path / "ckpt.tl"
    tl.save({"w": tl.ones(3)}, path)
    os.chmod(path, 0o640)
    old = path.read_bytes()

    real_open = zipfile.ZipFile.open

    def disk_full(self, name, mode="r", *a, **k):
        if mode == "w" and str(getattr(name, "filename", name)).endswith("/data/0"):
            raise OSError(28, "No space left on device")
        return real_open(self, name, mode, *a, **k)
    monkeypatch.setattr(zipfile.ZipFile, "open", disk_full)
    with pytest.raises(OSError, match="No space left"):
        tl.save({"w": tl.zeros(3)}, path)
    assert path.read_bytes() == old and os.stat(path).st_mode & 0o777 == 0o640
    assert [p.name for p in tmp_path.iterdir()] == ["ckpt.tl"]       # no temporary file left behind
    monkeypatch.undo()
    tl.save({"w": tl.zeros(3)}, path)
    assert tl.load(path)["w"].tolist() == [0.0] * 3 and os.stat(path).st_mode & 0o777 == 0o640


def test_save_through_a_symlink_keeps_the_link(tmp_path):
    target = tmp_path / "real.tl"
    link = tmp_path / "link.tl"
    tl.save(1, target)
    link.symlink_to(target)
    tl.save(2, link)
    assert link.is_symlink() and tl.load(target) == 2


@pytest.mark.timeout(20)
def test_save_to_devices_and_fifos_writes_through(tmp_path):
    import threading
    tl.save({"w": tl.ones(2)}, "/dev/null")
    assert os.path.exists("/dev/null") and not os.path.isfile("/dev/null")
    fifo = tmp_path / "out.fifo"
    os.mkfifo(fifo)
    got = []
    reader = threading.Thread(target=lambda: got.append(open(fifo, "rb").read()))
    reader.start()
    import time
    for _ in range(200):                   # the writer needs the reader's open(): wait for it
        try:
            tl.save({"w": tl.arange(5)}, fifo)
            break
        except OSError:
            time.sleep(0.01)
    reader.join(10)
    assert tl.load(io.BytesIO(got[0]))["w"].tolist() == list(range(5))


def test_save_into_a_missing_directory_says_so_like_torch(tmp_path):
    with pytest.raises(RuntimeError, match=r"Parent directory .*nowhere does not exist\."):
        tl.save(1, tmp_path / "nowhere" / "x.pt")


def test_save_to_an_unseekable_file_object():
    class Sink(io.RawIOBase):
        def __init__(self):
            self.data = bytearray()

        def writable(self):
            return True

        def write(self, b):
            self.data += b
            return len(b)
    sink = Sink()
    tl.save({"w": tl.ones(2), "n": 5}, sink)
    assert tl.load(io.BytesIO(bytes(sink.data)))["n"] == 5


def test_archive_made_of_directory_entries_is_refused_before_parsing():
    """zipfile makes ~600 bytes of ZipInfo from each ~60-byte directory record: 60k empty entries took ~6x
    the file's size (57 MB for 100k) before any check could run."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("manifest.json", b"{}")
        for i in range(60_000):
            z.writestr(f"e{i}", b"")
    err, peak = _load_peak(buf)
    assert "its zip directory declares" in str(err) and peak < 1 << 20


def test_many_empty_arrays_still_load():
    """The directory limit leaves room for the densest directory save() writes (3000 empty bool arrays: 21%)."""
    obj = [np.zeros(0, bool) for _ in range(3000)] + [tl.zeros(0) for _ in range(100)]
    got = _roundtrip(obj)
    assert len(got) == 3100 and got[0].dtype == bool and got[-1].shape == (0,)


def test_plain_pickle_and_copy_of_tensors_as_torchs():
    """pickle.dumps / copy.copy of a tensor, as torch's Tensor.__reduce_ex__: values, dtype, requires_grad, the
    class (Parameter, Buffer) and the program's own attributes come back; autograd history does not (a non-leaf
    comes back a leaf); copy.copy shares the memory, a pickle round trip copies it."""
    import copy

    from tensorlib import nn
    t = tl.arange(4.0)
    c = copy.copy(t)
    c[0] = 9
    assert t.tolist() == [9.0, 1.0, 2.0, 3.0]
    g = tl.ones(2, requires_grad=True) * 2
    back = pickle.loads(pickle.dumps(g))
    assert back.requires_grad and back.is_leaf and back.grad_fn is None and back.tolist() == [2.0, 2.0]
    p = nn.Parameter(tl.ones(2))
    b = nn.Buffer(tl.zeros(3, dtype=tl.bfloat16), persistent=False)
    t.note = "kept"
    p2, b2, t2, z2 = pickle.loads(pickle.dumps((p, b, t, tl.ones(2, dtype=tl.complex64) * 1j)))
    assert type(p2) is nn.Parameter and p2.requires_grad
    assert type(b2) is nn.Buffer and b2.persistent is False and b2.dtype == tl.bfloat16
    assert t2.note == "kept" and not t2.requires_grad
    assert z2.dtype == tl.complex64 and z2.tolist() == [1j, 1j]
    t2[1] = -1
    assert t[1].item() == 1.0
