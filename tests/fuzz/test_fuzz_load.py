"""Fuzz tensorlib.load with hostile and unlucky files (issue 21, item 8).

Every input either loads into objects that work (a tensor's dtype, repr and arithmetic) or fails with the
one error class, a one-line RuntimeError that starts "tensorlib.load: <file>:" and holds no control
character; a missing path (a dangling symlink, a loop) is FileNotFoundError as in torch. Bombs stay within
3x their size on disk plus 1 MiB (tracemalloc peak); every other input within 3x plus the inflate floor.
Nothing hangs (pytest-timeout). Corpora: byte-level mutations of a real file, generated archives (random
entries, compression methods, manifests and .npy headers), every NumPy dtype as a tensor and as an
array, and files that are not files (FIFOs, devices, directories, symlinks, empty files, a pickle).
"""
from __future__ import annotations

import io
import os
import pickle
import re
import struct
import tracemalloc
import zipfile

import numpy as np
import orjson
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

import tensorlib as tl
from safeio.read import MIN_INFLATE_BUDGET
from tensorlib.serialization import WeightsOnlyUnpicklingError

from ._scale import SCALE

pytestmark = pytest.mark.timeout(60)

_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f]")
_FUZZ = settings(deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


def _check_error(e: BaseException) -> None:
    msg = str(e)
    assert type(e) in (RuntimeError, WeightsOnlyUnpicklingError), f"{type(e).__name__}: {msg}"
    assert msg.startswith("tensorlib.load: ") and not _CONTROL.search(msg), msg


def _use(obj, depth=0, seen=None) -> None:
    """What a user does with a loaded object must work (it raised KeyError for unsupported dtypes). A
    pickle may hold cycles (a list inside itself), as pickle allows: each container is visited once."""
    assert depth <= 70
    seen = set() if seen is None else seen
    if id(obj) in seen:
        return
    seen.add(id(obj))
    if isinstance(obj, tl.Tensor):
        assert obj.dtype in (tl.bool, tl.uint8, tl.int8, tl.int16, tl.int32, tl.int64, tl.float16, tl.float32,
                             tl.float64, tl.complex64, tl.complex128)
        repr(obj)
        (obj.to(tl.complex128) if obj.is_complex() else obj.double() + 1).sum()
    elif isinstance(obj, dict):
        for k, v in obj.items():
            _use(k, depth + 1, seen)
            _use(v, depth + 1, seen)
    elif isinstance(obj, (list, tuple)):
        for v in obj:
            _use(v, depth + 1, seen)
    elif isinstance(obj, np.ndarray):
        assert obj.dtype.kind in "biufc"


def _load(src, size, floor=MIN_INFLATE_BUDGET):
    """Load `src`; check the outcome and that memory stayed under 3x `size` + `floor` + 1 MiB."""
    tracemalloc.start()
    try:
        _use(tl.load(src))
        error = None
    except Exception as e:          # noqa: BLE001 - which exception is what is being tested
        error = e
    finally:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    if error is not None:
        _check_error(error)
    assert peak <= 3 * size + floor + (1 << 20), f"peak {peak} bytes for {size} bytes on disk"
    return error


def _archive(entries) -> bytes:
    """A zip of (name, bytes, compression) triples."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as z:
        for name, data, method in entries:
            z.writestr(zipfile.ZipInfo(name), data, compress_type=method)
    return out.getvalue()


def _valid() -> bytes:
    buf = io.BytesIO()
    tl.save({"w": tl.randn(3, 4, requires_grad=True), "b": tl.arange(4, dtype=tl.int16), "n": np.ones(3),
             "meta": {"big": 1 << 90, "f": float("nan"), "t": (1, "x", b"\x00"), "d": tl.float16}}, buf)
    return buf.getvalue()


_VALID = _valid()


# --- byte-level damage to a real file ------------------------------------------------------------

@settings(_FUZZ, max_examples=150 * SCALE)
@given(edits=st.lists(st.tuples(st.sampled_from(["flip", "cut", "insert", "zero"]), st.integers(0, len(_VALID)),
                                st.binary(min_size=1, max_size=8)), min_size=1, max_size=4))
def test_damaged_real_files(edits):
    data = bytearray(_VALID)
    for op, pos, blob in edits:
        if not data:
            break
        pos %= len(data)
        if op == "flip":
            data[pos] ^= blob[0] or 1
        elif op == "cut":
            del data[pos:]
        elif op == "insert":
            data[pos:pos] = blob
        else:
            data[pos:pos + len(blob)] = bytes(len(blob))
    _load(io.BytesIO(bytes(data)), len(data))


# --- generated archives: manifests, .npy headers, entries, compression ---------------------------

def _all_dtypes():
    """Every NumPy scalar type (flexible ones sized, datetimes with a unit) in both byte orders, plus
    structured, subarray, object and empty-void dtypes."""
    out = []
    for t in sorted(set(np.sctypeDict.values()), key=str):
        if getattr(t, "__module__", "") == "ml_dtypes":     # ml_dtypes' extension types (bfloat16, float8...),
            continue                                        # registered by tensorlib's import; NumPy's own here
        dt = np.dtype(t)
        if dt.kind in "Mm":
            dt = np.dtype(f"{dt.str}[s]")
        elif dt.itemsize == 0:
            dt = np.dtype((t, 4))
        out += [dt, dt.newbyteorder(">"), dt.newbyteorder("<")]
    out += [np.dtype([("a", "<f4"), ("b", ">i8")]), np.dtype(("<f4", (2, 3))), np.dtype("O"), np.dtype("V0"),
            np.dtype([("x", "O")])]
    return list({repr(d): d for d in out}.values())


_ALL_DTYPES = _all_dtypes()

_TAGS = ["T", "A", "L", "U", "D", "OD", "I", "F", "B", "dtype", "device", "X"]
_json_leaf = st.one_of(st.none(), st.booleans(), st.integers(-(1 << 63), (1 << 63) - 1), st.floats(allow_nan=False),
                       st.text(max_size=12), st.sampled_from(["0x1f", "-0x", "nan", "float32", "cuda:0", "cpu",
                                                               "AAAA", "\x1b]2;x\x07", "tensors/0.npy"]))
_json = st.recursive(_json_leaf, lambda kids: st.one_of(
    st.lists(kids, max_size=4), st.dictionaries(st.text(max_size=6), kids, max_size=3),
    st.builds(lambda tag, v: {tag: v}, st.sampled_from(_TAGS), kids),
    st.builds(lambda tag, v: {tag: v}, st.sampled_from(["D", "OD"]), st.lists(st.lists(kids, max_size=3), max_size=3))),
    max_leaves=25)
_meta = st.fixed_dictionaries(
    {"file": st.sampled_from(["tensors/0.npy", "tensors/1.npy", "nope", "manifest.json"]),
     "dtype": st.one_of(st.sampled_from([d.str for d in _ALL_DTYPES] + [str(d) for d in _ALL_DTYPES]),
                        st.text(max_size=5)),
     "shape": st.lists(st.integers(-2, 1 << 42), max_size=3)},
    optional={"device": st.sampled_from(["cpu", "cuda:0", "meta", 3]), "requires_grad": st.booleans(),
              "parameter": st.booleans()})
_shape = st.lists(st.one_of(st.integers(0, 6), st.sampled_from([1 << 40, 1 << 62, -1])), max_size=3)


def _npy(dtype, shape, fortran, extra) -> bytes:
    """An .npy header for any dtype and shape (written directly: NumPy would allocate the shape), followed by
    the bytes the shape needs (capped) plus `extra`."""
    head = io.BytesIO()
    np.lib.format.write_array_header_1_0(head, {"descr": np.lib.format.dtype_to_descr(dtype),
                                                "fortran_order": fortran, "shape": tuple(shape)})
    need = min(max(0, int(np.prod(shape, dtype=object)) * dtype.itemsize), 4096)
    body = bytes(max(0, need + extra))
    return head.getvalue() + body


_npy_entry = st.builds(_npy, st.sampled_from(_ALL_DTYPES), _shape, st.booleans(), st.integers(-8, 8))
_method = st.sampled_from([zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED, zipfile.ZIP_BZIP2, zipfile.ZIP_LZMA])


@st.composite
def _archives(draw):
    root = draw(_json)
    metas = draw(st.lists(_meta, max_size=3))
    manifest = {"format": draw(st.sampled_from(["tensorlib.save", "other"])),
                "version": draw(st.sampled_from([1, 1, 2])), "root": root, "tensors": metas}
    if draw(st.booleans()):
        manifest = draw(st.sampled_from([[], None, {"format": "tensorlib.save", "version": 1}, manifest]))
    entries = [("manifest.json", orjson.dumps(manifest), draw(_method))]
    for i in range(draw(st.integers(0, 2))):
        entries.append((f"tensors/{i}.npy", draw(_npy_entry), draw(_method)))
    if draw(st.booleans()):
        entries.append((draw(st.sampled_from(["tensors/0.npy", "x/data.pkl", "../evil", "\x1b[2J"])),
                        draw(st.binary(max_size=64)), draw(_method)))
    return _archive(entries)


@pytest.mark.filterwarnings("ignore:Duplicate name")
@settings(_FUZZ, max_examples=250 * SCALE)
@given(data=_archives())
def test_generated_archives(data):
    _load(io.BytesIO(data), len(data))


@pytest.mark.parametrize("as_tensor", [True, False], ids=["tensor", "array"])
def test_every_numpy_dtype(as_tensor):
    """Each dtype loads (tensors: tensorlib's eleven, big-endian converted; arrays: what save() writes) or is
    refused naming it; 2 x {len(_ALL_DTYPES)} files."""
    supported = {d.np for d in (tl.bool, tl.uint8, tl.int8, tl.int16, tl.int32, tl.int64, tl.float16, tl.float32,
                                tl.float64, tl.complex64, tl.complex128)}
    for dt in _ALL_DTYPES:
        npy = _npy(dt, [2], False, 0)
        meta = {"file": "tensors/0.npy", "dtype": str(dt), "shape": [2]}
        root = {"T": 0} if as_tensor else {"A": 0}
        data = _archive([("manifest.json", orjson.dumps({"format": "tensorlib.save", "version": 1, "root": root,
                                                         "tensors": [meta]}), zipfile.ZIP_STORED),
                         ("tensors/0.npy", npy, zipfile.ZIP_STORED)])
        err = _load(io.BytesIO(data), len(data))
        plain = dt.kind in "biufc" and not dt.fields and not dt.subdtype
        ok = dt.newbyteorder("=") in supported if as_tensor else plain
        assert (err is None) == ok, (dt, err)
        if err is not None:
            assert "tensors/0.npy" in str(err) and ("holds" in str(err) or "cannot" in str(err)), str(err)


def test_deep_manifests():
    for depth in (63, 64, 65, 200, 505, 1000, 2000):
        root = b'{"L":[' * depth + b"0" + b"]}" * depth
        data = _archive([("manifest.json", b'{"format":"tensorlib.save","version":1,"tensors":[],"root":' + root + b"}",
                          zipfile.ZIP_STORED)])
        err = _load(io.BytesIO(data), len(data))
        assert (err is None) == (depth <= 64), (depth, err)


# --- pickles: random opcode programs, hostile globals among them, never run ----------------------

def _g(module, name):
    return b"c" + f"{module}\n{name}\n".encode()


def _s(text):
    return b"X" + struct.pack("<I", len(text.encode())) + text.encode()


_MARKER = "/tmp/tensorlib-fuzz-pwned"      # a payload that ran would create this file
_PAYLOADS = [_g(m, n) + b"(" + _s(c) + b"tR" for m, n, c in (
    ("os", "system", f"touch {_MARKER}"), ("posix", "system", f"touch {_MARKER}"),
    ("builtins", "exec", f"open({_MARKER!r}, 'w').close()"), ("__builtin__", "eval", f"open({_MARKER!r}, 'w')"),
    ("subprocess", "getoutput", f"touch {_MARKER}"), ("pathlib", "Path", _MARKER))]
_CHUNKS = st.one_of(
    st.sampled_from(_PAYLOADS),
    st.sampled_from([b"}", b"]", b")", b"(", b"t", b"\x85", b"\x86", b"\x87", b"N", b"\x88", b"\x89", b"a", b"e", b"s",
                     b"u", b"R", b"b", b"\x81", b"Q", b"0", b"1", b"2", b"q\x00", b"q\x01", b"h\x00", b"h\x01",
                     b"K\x00", b"K\x07", b"\x8a\x01\x05", b"G?\xf0\x00\x00\x00\x00\x00\x00", b"C\x02ab",
                     _s("tensor"), _s("array"), _s("storage"), _s("cpu"), _s("0"),
                     _g("collections", "OrderedDict"), _g("collections", "Counter"), _g("builtins", "set"),
                     _g("builtins", "complex"), _g("_codecs", "encode"), _g("tensorlib._dtype", "_by_name"),
                     _g("tensorlib._device", "device"), _g("torch._utils", "_rebuild_tensor_v2"),
                     _g("torch", "FloatStorage"), _g("torch", "Size"), _g("torch._utils", "_rebuild_parameter")]),
    st.binary(min_size=1, max_size=3))


@settings(_FUZZ, max_examples=300)
@given(body=st.lists(_CHUNKS, max_size=30), torch_layout=st.booleans())
def test_generated_pickles_never_run_code(body, torch_layout):
    """Random opcode programs in a tensorlib archive (with two .npy entries) or a torch archive (with a
    storage): each loads into usable objects or is refused with one line, and no payload runs."""
    data = b"\x80\x02" + b"".join(body) + b"."
    npy = io.BytesIO()
    np.save(npy, np.ones(4, np.float32))
    if torch_layout:
        entries = [("archive/data.pkl", data), ("archive/byteorder", b"little"), ("archive/data/0", bytes(16))]
    else:
        meta = {"file": "tensors/0.npy", "dtype": "float32", "shape": [4]}
        entries = [("manifest.json", orjson.dumps({"format": "tensorlib.save", "version": 2,
                                                   "root": {"P": "data.pkl"}, "tensors": [meta, meta]})),
                   ("data.pkl", data), ("tensors/0.npy", npy.getvalue())]
    archive = _archive([(n, d, zipfile.ZIP_STORED) for n, d in entries])
    _load(io.BytesIO(archive), len(archive))
    assert not os.path.exists(_MARKER)


# --- bombs: refused before inflating, memory within 3x the file + 1 MiB --------------------------

def _deflated(entries) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=9) as z:
        for name, chunks in entries:
            with z.open(name, "w", force_zip64=True) as w:
                for c in chunks:
                    w.write(c)
    return out.getvalue()


def _bombs():
    zeros = bytes(1 << 20)
    header = _npy(np.dtype("f4"), [(96 << 20) // 4], False, -4096)
    meta = {"file": "tensors/0.npy", "dtype": "float32", "shape": [(96 << 20) // 4]}
    manifest = orjson.dumps({"format": "tensorlib.save", "version": 1, "root": {"T": 0}, "tensors": [meta]})
    yield "npy", _deflated([("manifest.json", [manifest]), ("tensors/0.npy", [header] + [zeros] * 96)])
    spaces = b" " * (1 << 20)
    yield "manifest", _deflated([("manifest.json", [b'{"format":"tensorlib.save","version":1,"tensors":[],'
                                                    b'"root":{"L":['] + [b"0," * (1 << 19)] * 40 + [b"0]}}"])])
    yield "whitespace", _deflated([("manifest.json", [b"{"] + [spaces] * 80 + [b"}"])])
    yield "many entries", _deflated([("manifest.json", [b"{}"])] + [(f"e{i}", [zeros]) for i in range(80)])
    huge = _npy(np.dtype("f8"), [1 << 40], False, 0)
    yield "2^40 header", _archive([("manifest.json", orjson.dumps({"format": "tensorlib.save", "version": 1,
                                   "root": {"T": 0}, "tensors": [{"file": "tensors/0.npy", "dtype": "float64",
                                                                   "shape": [1 << 40]}]}), zipfile.ZIP_STORED),
                                   ("tensors/0.npy", huge, zipfile.ZIP_STORED)])
    directory = io.BytesIO()
    with zipfile.ZipFile(directory, "w") as z:
        for i in range(20_000):
            z.writestr(f"{i}", b"")
    yield "directory", directory.getvalue()
    pickled = b'{"format":"tensorlib.save","version":2,"tensors":[],"root":{"P":"data.pkl"}}'
    yield "pickle", _deflated([("manifest.json", [pickled]), ("data.pkl", [b"\x80\x02"] + [b"}" * (1 << 20)] * 64)])


@pytest.mark.parametrize("name,data", list(_bombs()), ids=lambda v: v if isinstance(v, str) else "")
def test_bombs_are_refused_within_3x_their_size(name, data):
    assert len(data) < 2 << 20
    err = _load(io.BytesIO(data), len(data), floor=0)
    assert err is not None, name


# --- things that are not regular files ------------------------------------------------------------

def _paths(tmp):
    fifo = tmp / "fifo.tl"
    os.mkfifo(fifo)
    yield "fifo", fifo
    yield "dev-zero", "/dev/zero"
    yield "dev-null", "/dev/null"
    yield "dev-urandom", "/dev/urandom"
    yield "directory", tmp
    (tmp / "empty.tl").write_bytes(b"")
    yield "empty", tmp / "empty.tl"
    for target, name in ((fifo, "link-to-fifo"), ("/dev/zero", "link-to-device"), (tmp / "empty.tl", "link-to-empty")):
        (tmp / name).symlink_to(target)
        yield name, tmp / name
    (tmp / "pickle.pt").write_bytes(pickle.dumps({"w": [1.0, 2.0]}))
    yield "pickle", tmp / "pickle.pt"
    with zipfile.ZipFile(tmp / "torch.pt", "w") as z:
        z.writestr("archive/data.pkl", pickle.dumps({"w": 1}))
    yield "torch checkpoint", tmp / "torch.pt"
    np.save(tmp / "obj.npy", np.array([{"x": 1}], dtype=object), allow_pickle=True)
    yield "object npy", tmp / "obj.npy"
    np.savez(tmp / "arrays.npz", a=np.ones(3))
    yield "npz", tmp / "arrays.npz"
    (tmp / "eocd.tl").write_bytes(b"PK\x05\x06" + bytes(18))
    yield "empty zip", tmp / "eocd.tl"
    (tmp / "\x1b]2;PWNED\x07.tl").write_bytes(b"junk")
    yield "hostile name", tmp / "\x1b]2;PWNED\x07.tl"


def test_pickled_object_graph_stays_within_its_budget():
    """1 MiB of EMPTY_DICT opcodes stored (a ~70 MiB object graph) stops at 32x the file's size."""
    data = _archive([("manifest.json", b'{"format":"tensorlib.save","version":2,"tensors":[],"root":{"P":"data.pkl"}}',
                      zipfile.ZIP_STORED), ("data.pkl", b"\x80\x02" + b"}" * (1 << 20) + b".", zipfile.ZIP_STORED)])
    err = _load(io.BytesIO(data), len(data))
    assert "memory bomb" in str(err)


def test_paths_that_are_not_tensorlib_files(tmp_path):
    for name, path in _paths(tmp_path):
        size = os.path.getsize(path) if os.path.isfile(path) else 0
        err = _load(path, size, floor=0)
        assert err is not None, name
        assert repr(os.fspath(path))[1:-1] in str(err) or name == "hostile name", (name, str(err))


def test_missing_paths_are_file_not_found(tmp_path):
    (tmp_path / "dangling").symlink_to(tmp_path / "nowhere")
    (tmp_path / "loop").symlink_to(tmp_path / "loop")
    for p in (tmp_path / "dangling", tmp_path / "loop", tmp_path / "absent"):
        with pytest.raises(FileNotFoundError, match="tensorlib.load: no such file"):
            tl.load(p)
