"""tensorlib.save / tensorlib.load: state dicts and whole models on disk, loaded without running the file's code.

A state dict (tensors, Parameters, dicts/OrderedDicts with str or int keys, lists, tuples, str, int, float,
bool, None) is written as torch.save writes it, so torch.load reads it (tensorlib._torch_format.TorchWriter).
Anything else is written in tensorlib's own archive, below.

A tensorlib archive is a zip (stored, uncompressed) holding `manifest.json` (orjson) that describes the saved
object tree, and one `tensors/<n>.npy` per tensor or array. Loading parses JSON and the .npy header only
(with our own checks, not numpy.load).

Saveable as JSON (format version 1, no pickle anywhere): tensors (dtype, device, requires_grad and shape
are kept; a tensor or array object that appears several times is stored once and comes back as one
object), NumPy arrays of numeric or bool dtype, dicts (any saveable keys, insertion order kept;
OrderedDicts come back as OrderedDicts), lists, tuples (namedtuples as plain tuples), str, bytes, int (any
size), float (inf/nan included), bool, None, tensorlib dtypes and devices; containers nest up to
MAX_DEPTH levels.

Anything else a torch user saves (a whole Module, a dict holding a model and an optimizer) is pickled as
torch.save does, into `data.pkl` in the same archive (format version 2), at pickle protocol 2 (torch's);
tensors and arrays never go through pickle: each is a persistent id ("tensor", n) / ("array", n) naming
its .npy entry. Loading such a file with the default weights_only=True runs the pickle through
tensorlib._unpickler, torch's weights-only unpickler: only allowlisted globals (add_safe_globals,
safe_globals) are built, everything else is refused before anything runs, with torch's message. Only an
explicit weights_only=False unpickles with pickle itself (torch's semantics: for files you trust).

PyTorch's own files (`torch.save(model.state_dict(), path)`: a zip with `<name>/data.pkl`, raw storages
`<name>/data/<key>` and `<name>/byteorder`) load without torch, through the same unpickler, with torch's
rebuild functions mapped to tensorlib tensors (see tensorlib._torch_format).

Loading is bounded (DESIGN.md, "Bounded reads"): only regular files (or seekable file objects), the zip
entries together inflate to at most safeio's ratio-capped budget of the size on disk, the manifest and
the pickle to at most their own share, every .npy header's shape x itemsize (and every torch storage's
declared size) must equal the bytes its entry holds before anything is allocated, an unpickled object
graph may take only so much memory per byte on disk, and tensors come back only in the dtypes tensorlib
supports.

Errors: a file that cannot be loaded is a one-line RuntimeError naming the file (and the entry), as
torch.load raises RuntimeError for a damaged or foreign archive ("PytorchStreamReader failed reading zip
archive"), so `except RuntimeError` written for torch keeps working; a weights-only refusal is
WeightsOnlyUnpicklingError, both a pickle.UnpicklingError (what torch raises) and a RuntimeError; a
missing path is FileNotFoundError, as torch's open() gives it.
"""
from __future__ import annotations

import base64
import collections
import contextlib
import io
import math
import os
import pickle
import stat
import warnings
import zipfile
import zlib

import numpy as np
import orjson

from safeio import InputError, atomic_open, literal, open_input
from safeio.read import check_zip_entries

from . import _dtype as D
from . import _unpickler
from ._device import device as Device
from ._sparse import SparseCOO
from ._tensor import Tensor
from ._unpickler import add_safe_globals, clear_safe_globals, get_safe_globals, safe_globals

__all__ = ["save", "load", "add_safe_globals", "clear_safe_globals", "get_safe_globals", "safe_globals",
           "get_unsafe_globals_in_checkpoint", "WeightsOnlyUnpicklingError", "DEFAULT_PROTOCOL"]

FORMAT = "tensorlib.save"
VERSION = 1                  # the manifest holds the whole object tree
PICKLED_VERSION = 2          # the manifest's root is {"P": "data.pkl"}, a pickle whose tensors are .npy entries
DEFAULT_PROTOCOL = 2         # torch's; protocols 2 and 3 use only the opcodes tensorlib's unpickler runs
_PICKLE = "data.pkl"
_PICKLE_FLOOR = 4 << 20      # unpickled objects may take _PICKLE_RATIO x the file's size, or this much
_PICKLE_RATIO = 32           # a module's pickle builds ~6-15 bytes (as charged) per byte of its file
MAX_DEPTH = 64               # containers inside containers; orjson writes JSON up to 254 levels deep
_MANIFEST = "manifest.json"
_MANIFEST_FLOOR = 1 << 20    # a manifest may inflate to the file's size on disk, or to this much
_DIRECTORY_FLOOR = 64 << 10  # a zip directory may always take this much
_CHUNK = 16 << 20            # tensor data is read in pieces of this size, never a second full copy
_SAVEABLE = ("tensors, NumPy arrays, dicts, lists, tuples, str, bytes, int, float, bool, None, tensorlib dtypes and "
             "devices")
_ARRAY_KINDS = "biufc"       # NumPy dtype kinds save() writes for arrays (numeric and bool)
_TENSOR_DTYPES = ", ".join(d.name for d in D.ALL)
# What zipfile, zlib and NumPy's header parser raise on a damaged archive (zipfile's "File is encrypted"
# and "zip file version 23.5" are RuntimeErrors; a header nested too deep for ast is a RecursionError).
_DAMAGE = (ValueError, KeyError, TypeError, IndexError, AttributeError, OSError, EOFError, zipfile.BadZipFile,
           zlib.error, RuntimeError, OverflowError, SyntaxError, UnicodeDecodeError)


def _name(f) -> str | bytes:
    """The file as error messages name it (quoted with repr, so control characters come out escaped)."""
    if isinstance(f, (str, os.PathLike)):
        return os.fspath(f)
    name = getattr(f, "name", None)
    return name if isinstance(name, (str, bytes)) else f"<{type(f).__name__}>"


class WeightsOnlyUnpicklingError(pickle.UnpicklingError, RuntimeError):
    """A weights-only load refused the file's pickle: torch raises pickle.UnpicklingError; a RuntimeError
    too, like every other tensorlib.load failure."""


def _check_pickle_module(pickle_module, what):
    if pickle_module is not None and pickle_module is not pickle:
        raise ValueError(f"tensorlib.{what}: pickle_module must be None or the pickle module (tensorlib pickles "
                         f"with pickle and unpickles with its own weights-only unpickler); got {pickle_module!r}"[:300])


def _c_order(a):
    """C-ordered data (np.ascontiguousarray would turn a 0-d array into a 1-d one)."""
    return a if a.flags.c_contiguous else a.copy(order="C")


# --- save ---------------------------------------------------------------------------------------

class _Writer:
    def __init__(self):
        self.tensors: list[dict] = []
        self.arrays: list[np.ndarray] = []
        self.ids: dict[int, dict] = {}
        self._keep = []   # keeps ids stable while encoding

    def add_array(self, arr, meta):
        self.arrays.append(arr)
        meta["file"] = f"tensors/{len(self.arrays) - 1}.npy"
        self.tensors.append(meta)
        return len(self.tensors) - 1

    def shared(self, obj, make):
        """One entry per object, so an object saved twice loads as one object (as pickle's memo does)."""
        node = self.ids.get(id(obj))
        if node is None:
            node = self.ids[id(obj)] = make()
            self._keep.append(obj)
        return node

    def tensor(self, obj):
        data = obj._data
        if type(data) is SparseCOO:
            raise NotImplementedError("tensorlib.save: sparse COO tensors are not saved yet; save their parts "
                                      "(t._indices(), t._values(), t.shape) or t.to_dense()")
        host = data if type(data) is np.ndarray else data.get()
        if host.dtype == D.BF16:        # .npy has no bfloat16: its bits as little-endian uint16, named in meta
            host = host.view(np.uint16).astype("<u2", copy=False)
            dtype_name = "bfloat16"
        else:
            dtype_name = str(np.dtype(host.dtype))
        meta = {"dtype": dtype_name, "shape": list(host.shape), "device": str(obj.device),
                "requires_grad": bool(obj._requires_grad)}
        if type(obj).__name__ == "Parameter":
            meta["parameter"] = True
        return {"T": self.add_array(_c_order(host), meta)}

    def encode(self, obj, where, depth=0):
        if obj is None or isinstance(obj, (bool, str)):
            return obj
        if isinstance(obj, Tensor):
            return self.shared(obj, lambda: self.tensor(obj))
        if isinstance(obj, np.ndarray):
            if obj.dtype.kind not in _ARRAY_KINDS:
                raise _NeedsPickle
            return self.shared(obj, lambda: {"A": self.add_array(
                _c_order(obj), {"dtype": str(obj.dtype), "shape": list(obj.shape)})})
        if isinstance(obj, np.generic):
            return self.encode(obj.item(), where, depth)
        if isinstance(obj, int):
            # hex, not decimal: str() refuses ints over 4300 digits and is quadratic below that
            return obj if -(1 << 63) <= obj < (1 << 63) else {"I": hex(obj)}
        if isinstance(obj, float):
            return obj if math.isfinite(obj) else {"F": repr(obj)}
        if isinstance(obj, bytes):
            return {"B": base64.b64encode(obj).decode("ascii")}
        if isinstance(obj, D.dtype):
            return {"dtype": obj.name}
        if isinstance(obj, Device):
            return {"device": str(obj)}
        if isinstance(obj, (dict, tuple, list)):
            return self.container(obj, where, depth)
        raise _NeedsPickle

    def container(self, obj, where, depth):
        if depth >= MAX_DEPTH:
            raise ValueError(f"tensorlib.save: {where} is nested more than {MAX_DEPTH} containers deep (does a "
                             f"container hold itself?); tensorlib.save stores at most {MAX_DEPTH} levels")
        d = depth + 1
        if isinstance(obj, dict):
            items = [[self.encode(k, f"{where} (a key)", d), self.encode(v, f"{where}[{k!r}]", d)]
                     for k, v in obj.items()]
            return {"OD" if isinstance(obj, collections.OrderedDict) else "D": items}
        tag = "U" if isinstance(obj, tuple) else "L"
        return {tag: [self.encode(v, f"{where}[{i}]", d) for i, v in enumerate(obj)]}

    def pickle(self, obj, protocol) -> bytes:
        """`obj` pickled with every tensor and numeric array as a persistent id naming its .npy entry."""
        out = io.BytesIO()
        _Pickler(out, protocol, self).dump(obj)
        return out.getvalue()


class _NeedsPickle(Exception):
    """The object holds something only pickle can save (a Module, an optimizer, a set...)."""


class _Pickler(pickle.Pickler):
    """pickle.Pickler whose tensors and arrays never reach pickle: they are .npy entries of the archive (persistent
    ids), which load checks and weights_only reads without unpickling code (a plain pickle.dumps(tensor) goes
    through Tensor.__reduce_ex__ instead, as torch's, and needs unrestricted unpickling)."""

    def __init__(self, fh, protocol, writer):
        super().__init__(fh, protocol)
        self.writer = writer

    def persistent_id(self, obj):
        w = self.writer
        if isinstance(obj, Tensor):
            return "tensor", w.shared(obj, lambda: w.tensor(obj))["T"]
        if type(obj) is np.ndarray and obj.dtype.kind in _ARRAY_KINDS:
            return "array", w.shared(obj, lambda: {"A": w.add_array(
                _c_order(obj), {"dtype": str(obj.dtype), "shape": list(obj.shape)})})["A"]
        return None

def save(obj, f, pickle_module=None, pickle_protocol=DEFAULT_PROTOCOL, _use_new_zipfile_serialization=True):
    """Save `obj` (a state dict, or a whole model as torch.save does) to a path or a writable binary file.

    A state dict of tensors, arrays and plain values is written as JSON and .npy entries; anything else
    (a Module, an optimizer, a set) is pickled at `pickle_protocol` (2 or 3) with its tensors as .npy
    entries. A path is written through safeio.atomic_open: a regular file is replaced only once the whole
    archive is written (a failure keeps the old file and its mode), a symlink's target is replaced, and a
    device or FIFO is written through (zipfile writes unseekable streams with data descriptors)."""
    _check_pickle_module(pickle_module, "save")
    if _use_new_zipfile_serialization is not True:
        raise ValueError("tensorlib.save writes the zip format only; _use_new_zipfile_serialization=False (torch's "
                         "pre-1.6 format) is not supported: leave it at its default")
    protocol = DEFAULT_PROTOCOL if pickle_protocol is None else pickle_protocol
    if protocol not in (2, 3):
        raise ValueError(f"tensorlib.save: pickle_protocol must be 2 (torch's default) or 3, the protocols "
                         f"tensorlib.load reads without running code; got {protocol!r}"[:200])
    from ._torch_format import torch_entries
    entries = torch_entries(obj)
    if entries is not None:                  # a state dict: torch's own format, which torch.load reads too
        _save_entries(f, entries)
        return
    _save_tensorlib_format(obj, f, protocol)


def _save_tensorlib_format(obj, f, protocol=DEFAULT_PROTOCOL):
    """tensorlib's archive (manifest.json, .npy payloads, data.pkl when needed): for what a weights-only
    torch.load could not read back (NumPy arrays, bytes, dtypes, devices, sets, Modules...)."""
    w = _Writer()
    try:
        head = {"version": VERSION, "root": w.encode(obj, "obj")}
        pickled = None
    except _NeedsPickle:
        w = _Writer()
        pickled = w.pickle(obj, protocol)
        head = {"version": PICKLED_VERSION, "root": {"P": _PICKLE}}
    manifest = orjson.dumps({"format": FORMAT, **head, "tensors": w.tensors})
    entries = [(_MANIFEST, manifest)] + ([(_PICKLE, pickled)] if pickled is not None else [])
    _save_entries(f, entries + [(f"tensors/{i}.npy", arr) for i, arr in enumerate(w.arrays)])


def _save_entries(f, entries):
    """The zip of `entries` ([(name, bytes, or an array written as .npy / as raw bytes under data/)]) to a path
    (through safeio.atomic_open) or a writable binary file object."""
    if isinstance(f, (str, os.PathLike)):
        parent = os.path.dirname(os.fspath(f))
        if parent and not os.path.isdir(parent):
            raise RuntimeError(f"Parent directory {parent} does not exist.")   # torch.save's words
        with atomic_open(f, what="tensorlib.save file") as fh:
            _write_zip(fh if stat.S_ISREG(os.fstat(fh.fileno()).st_mode) else _Stream(fh), entries)
    else:
        if not hasattr(f, "write"):
            raise TypeError("tensorlib.save: f must be a path or a writable binary file object, not "
                            f"{type(f).__name__}")
        _write_zip(f, entries)


class _Stream:
    """A device or FIFO seen as what it is, a stream: /dev/null claims to seek but tell() stays 0, which
    corrupts zipfile's offsets; without tell() zipfile writes sizes after each entry instead."""

    def __init__(self, fh):
        self.write, self.flush = fh.write, fh.flush


def _write_zip(fh, entries):
    with zipfile.ZipFile(fh, "w", compression=zipfile.ZIP_STORED, allowZip64=True) as z:
        for name, data in entries:
            if isinstance(data, bytes):
                z.writestr(name, data)
                continue
            with z.open(name, "w", force_zip64=data.nbytes > (1 << 31)) as out:
                if name.endswith(".npy"):
                    np.lib.format.write_array(out, data, allow_pickle=False)
                else:                                   # a torch storage: the raw bytes
                    out.write(data.view(np.uint8).data)


# --- load ---------------------------------------------------------------------------------------

def _fail(name, what, entry=None) -> RuntimeError:
    where = f"{literal(entry)}: " if entry else ""
    return RuntimeError(f"tensorlib.load: {name!r}: {where}{literal(what)}")


def _damaged(name, e, entry=None) -> RuntimeError:
    return _fail(name, f"the file is damaged or truncated ({type(e).__name__}: {e})", entry)


@contextlib.contextmanager
def _damage_named(name, entry):
    """What zipfile, zlib and NumPy raise on damaged data, as one RuntimeError naming file and entry."""
    try:
        yield
    except _DAMAGE as e:
        raise _damaged(name, e, entry) from None


def _describe(node) -> str:
    """A short account of a manifest node for an error message (never str(node): it may be huge or deep)."""
    if isinstance(node, dict):
        keys = ", ".join(repr(k)[:20] for k in list(node)[:3])
        return f"an object with {len(node)} key(s) ({keys})"
    if isinstance(node, list):
        return f"a list of {len(node)} item(s)"
    return f"a {type(node).__name__} ({repr(node)[:40]})"


def _read_header(fh):
    """(shape, fortran_order, dtype, header length) of an .npy stream, read by NumPy's header parser
    (whose header is capped at 10000 bytes), without reading or allocating any data."""
    version = np.lib.format.read_magic(fh)
    if version == (1, 0):
        shape, fortran, dtype = np.lib.format.read_array_header_1_0(fh)
    elif version == (2, 0):
        shape, fortran, dtype = np.lib.format.read_array_header_2_0(fh)
    else:
        raise ValueError(f"unsupported .npy format version {version[0]}.{version[1]}")
    return shape, fortran, dtype, fh.tell()


def _fill(fh, arr):
    """Read the entry's remaining bytes into `arr` in pieces (no second full-size copy)."""
    view = memoryview(arr.reshape(-1).view(np.uint8))
    pos = 0
    while pos < len(view):
        n = fh.readinto(view[pos:pos + _CHUNK])
        if not n:
            raise EOFError(f"the data ends after {pos} of {len(view)} bytes")
        pos += n


_Options = collections.namedtuple("_Options", "map_location weights_only pickle_load_args")
_UNPICKLE_DAMAGE = _DAMAGE + (pickle.UnpicklingError, RecursionError, MemoryError)


class _Reader:
    def __init__(self, z, name, opts, metas, size):
        self.z, self.name, self.map_location = z, name, opts.map_location
        self.opts, self.size = opts, size
        self.metas = metas
        self.budget = _unpickler.Budget(max(_PICKLE_FLOOR, _PICKLE_RATIO * size))
        self.arrays: dict = {}
        self.tensors: dict = {}

    def fail(self, what, entry=None):
        return _fail(self.name, what, entry)

    def index(self, idx):
        if type(idx) is not int or not 0 <= idx < len(self.metas):
            raise self.fail(f"the manifest refers to tensor {repr(idx)[:40]}, which is not in the file")
        return idx

    def meta(self, idx):
        meta = self.metas[self.index(idx)]
        ok = (isinstance(meta, dict) and isinstance(meta.get("file"), str) and isinstance(meta.get("dtype"), str)
              and isinstance(meta.get("shape"), list) and all(type(n) is int and n >= 0 for n in meta["shape"]))
        if not ok:
            raise self.fail(f"the manifest's entry for tensor {idx} is malformed: {_describe(meta)}")
        return meta

    def array(self, idx, tensor=False):
        """The array of entry `idx`, read once (a second reference gets the same array back). A tensor
        holds big-endian data in native order, swapped in place when freshly read."""
        arr = self.arrays.get(self.index(idx))
        if arr is None:
            arr = self.read(self.meta(idx), tensor)
            if tensor and not arr.dtype.isnative:
                arr = arr.byteswap(inplace=True).view(arr.dtype.newbyteorder("="))
            self.arrays[idx] = arr
        elif tensor:                              # an entry also referenced as an array: leave that one be
            self.check_dtype(arr.dtype, True, self.meta(idx)["file"])
            arr = arr if arr.dtype.isnative else arr.astype(arr.dtype.newbyteorder("="))
        return arr

    def check_dtype(self, dtype, tensor, entry):
        if tensor:
            if not D.known_np(dtype.newbyteorder("=")):
                raise self.fail(f"holds {dtype} data, which tensorlib tensors do not support (supported: "
                                f"{_TENSOR_DTYPES})", entry)
        elif dtype.kind not in _ARRAY_KINDS or dtype.hasobject:
            raise self.fail(f"holds {dtype} data; tensorlib.load reads only numeric and bool arrays", entry)

    def read(self, meta, tensor):
        entry = meta["file"]
        try:
            info = self.z.getinfo(entry)
        except KeyError:
            raise self.fail("missing from the archive (truncated or damaged file)", entry) from None
        with _damage_named(self.name, entry):
            fh = self.z.open(info)
        with fh:
            with _damage_named(self.name, entry):
                shape, fortran, dtype, start = _read_header(fh)
            bf16 = tensor and meta["dtype"] == "bfloat16" and dtype == np.dtype("<u2")
            if not bf16:
                self.check_dtype(dtype, tensor, entry)
            if (str(dtype) != meta["dtype"] and not bf16) or list(shape) != meta["shape"]:
                raise self.fail(f"holds {dtype}{list(shape)} but the manifest says {meta['dtype']}{meta['shape']}",
                                entry)
            self.check_size(shape, dtype, info.file_size - start, entry)
            arr = self.allocate(shape, dtype, entry)
            with _damage_named(self.name, entry):
                _fill(fh, arr)
        if bf16:
            arr = arr.view(D.bfloat16.np)
        return arr.reshape(shape[::-1]).T if fortran else arr.reshape(shape)

    def check_size(self, shape, dtype, held, entry):
        """The declared shape must match the bytes the entry holds, before anything is allocated."""
        need = math.prod(shape) * dtype.itemsize
        if need != held:
            raise self.fail(f"its header declares {dtype}{list(shape)} ({need} bytes) but the entry holds {held} "
                            "bytes of data (truncated or damaged file)", entry)

    def allocate(self, shape, dtype, entry):
        try:
            return np.empty(math.prod(shape), dtype)
        except MemoryError:   # torch's CPU allocator raises RuntimeError too
            raise self.fail(f"cannot allocate {math.prod(shape) * dtype.itemsize} bytes for {dtype}{list(shape)} "
                            "(out of memory)", entry) from None

    def target_device(self, saved):
        ml = self.map_location
        if ml is None:
            dev = saved
        elif isinstance(ml, dict):
            dev = ml.get(saved, saved)
        elif callable(ml):
            return None
        else:
            dev = str(ml)
        dev = str(dev)
        if dev.startswith("cuda"):
            from . import cuda
            if not cuda.is_available():
                raise self.fail("Attempting to deserialize object on a CUDA device but tensorlib.cuda.is_available() "
                                "is False. If you are running on a CPU-only machine, please use tensorlib.load with "
                                "map_location='cpu' to map your storages to the CPU.")
        try:
            Device(dev)
        except (RuntimeError, ValueError, TypeError) as e:
            raise self.fail(f"cannot place a tensor on {dev[:40]!r}: {e}") from None
        return dev

    def tensor(self, idx):
        t = self.tensors.get(self.index(idx))
        if t is None:
            t = self.tensors[idx] = self.place(self.array(idx, tensor=True), self.meta(idx))
        return t

    def place(self, arr, meta):
        t = object.__new__(Tensor)
        t._data = arr
        saved_dev = meta.get("device", "cpu")
        if not isinstance(saved_dev, str):
            raise self.fail(f"the manifest gives {meta['file']} the device {_describe(saved_dev)}")
        dev = self.target_device(saved_dev)
        if dev is None:
            t = self.map_location(t, saved_dev)
        elif dev != "cpu":
            from .ops.misc import to
            t = to(t, device=dev)
        grad = meta.get("requires_grad", bool(meta.get("parameter")))
        if grad and not D.from_np(arr.dtype.newbyteorder("=")).is_floating_point:
            raise self.fail(f"the manifest marks {meta['file']}, a {arr.dtype} tensor, as requiring grad; only "
                            "floating point tensors can require gradients")
        if meta.get("parameter"):
            from .nn import Parameter  # nn imports this module's package
            t = Parameter(t, requires_grad=bool(grad))
        elif grad:
            t.requires_grad_(True)
        return t

    # --- the pickled part ---------------------------------------------------------------------
    def read_entry(self, entry):
        """A small entry (a manifest, a pickle, a torch byteorder record), bounded by the file's size."""
        try:
            info = self.z.getinfo(entry)
        except KeyError:
            raise self.fail("missing from the archive (truncated or damaged file)", entry) from None
        limit = max(_MANIFEST_FLOOR, self.size)
        if info.file_size > limit:
            raise self.fail(f"inflates to {info.file_size} bytes, more than the {limit} bytes it may take in a "
                            f"{self.size}-byte file (a compression bomb?)", entry)
        with _damage_named(self.name, entry):
            return self.z.read(info)

    def unpickle(self, entry, allowed, torch_file=False):
        """The object pickled in `entry`: through tensorlib._unpickler (weights only), or with pickle
        itself only when the caller passed weights_only=False."""
        data = self.read_entry(entry)
        try:
            if not self.opts.weights_only:
                return _FullUnpickler(self, io.BytesIO(data), allowed).load()
            allowed = {**_unpickler.default_allowed_globals(), **allowed, **_unpickler.user_allowed_globals()}
            return _unpickler.Unpickler(data, self.persistent_load, allowed, self.budget).load()
        except RuntimeError:
            raise
        except _unpickler.DamagedPickle as e:
            raise self.fail(str(e), entry) from None
        except pickle.UnpicklingError as e:
            if self.opts.weights_only:
                raise self.refusal(str(e), entry, torch_file) from None
            raise _damaged(self.name, e, entry) from None
        except _UNPICKLE_DAMAGE as e:
            raise _damaged(self.name, e, entry) from None

    def refusal(self, msg, entry, torch_file):
        """torch's weights-only message, in one line naming the file and tensorlib's functions."""
        if torch_file and msg.startswith("Unsupported global: GLOBAL torch."):
            what = msg.split()[3]
            text = (f"Weights only load failed: the checkpoint holds {what}, a PyTorch object that tensorlib cannot "
                    "rebuild (weights_only=False would need torch itself). In PyTorch, save model.state_dict() and "
                    "load that into the tensorlib model with load_state_dict.")
        elif msg.startswith("Unsupported global"):
            text = ("Weights only load failed. This file can still be loaded, to do so you have two options, do "
                    f"those steps only if you trust the source of the checkpoint. (1) {_UNSAFE_MESSAGE} (2) "
                    "Alternatively, to load with `weights_only=True` please check the recommended steps in the "
                    f"following error message. WeightsUnpickler error: {msg}")
        else:
            text = f"Weights only load failed. {_UNSAFE_MESSAGE} WeightsUnpickler error: {msg}"
        where = f"{literal(entry)}: " if entry else ""
        return WeightsOnlyUnpicklingError(f"tensorlib.load: {self.name!r}: {where}{literal(text)}")

    def persistent_load(self, pid):
        """("tensor", n) / ("array", n): entry n of the manifest; nothing else, nothing outside the archive."""
        if type(pid) is tuple and len(pid) == 2 and pid[0] in ("tensor", "array") and type(pid[1]) is int:
            return self.tensor(pid[1]) if pid[0] == "tensor" else self.array(pid[1])
        raise pickle.UnpicklingError(f"Only persistent_load of tensorlib's tensor and array entries is allowed, but "
                                     f"got {repr(pid)[:60]}")

    def decode(self, node, depth=0):
        if node is None or isinstance(node, (bool, int, float, str)):
            return node
        if isinstance(node, dict) and len(node) == 1:
            (tag, v), = node.items()
            if tag in ("L", "U", "D", "OD"):
                return self.container(tag, v, depth)
            scalar = _SCALARS.get(tag)
            if scalar is not None:
                return scalar(self, v)
        raise self.fail(f"unexpected entry in the manifest: {_describe(node)}")

    def container(self, tag, v, depth):
        if depth >= MAX_DEPTH:
            raise self.fail(f"the manifest nests containers more than {MAX_DEPTH} deep (tensorlib.save writes at "
                            f"most {MAX_DEPTH})")
        if not isinstance(v, list):
            raise self.fail(f"the manifest's {tag!r} entry holds {_describe(v)}, not a list")
        if tag == "L":
            return [self.decode(x, depth + 1) for x in v]
        if tag == "U":
            return tuple([self.decode(x, depth + 1) for x in v])
        out = collections.OrderedDict() if tag == "OD" else {}
        for item in v:
            if not (isinstance(item, list) and len(item) == 2):
                raise self.fail(f"a dict item in the manifest is {_describe(item)}, not a [key, value] pair")
            key = _hashable(self.decode(item[0], depth + 1))
            try:
                out[key] = self.decode(item[1], depth + 1)
            except TypeError:
                raise self.fail(f"the manifest has a dict key of type {type(key).__name__}, which is not "
                                "hashable") from None
        return out

    def text(self, tag, v):
        if not isinstance(v, str):
            raise self.fail(f"the manifest's {tag!r} entry holds {_describe(v)}, not a string")
        return v

    def big_int(self, v):
        s = self.text("I", v)
        try:
            return int(s, 16) if s.lstrip("-")[:2] == "0x" else int(s)   # decimal: version 1 files before hex
        except ValueError as e:
            raise self.fail(f"the manifest's integer {s[:40]!r} is not a number ({e})") from None

    def special_float(self, v):
        s = self.text("F", v)
        try:
            return float(s)
        except ValueError:
            raise self.fail(f"the manifest's float {s[:40]!r} is not a number") from None

    def raw_bytes(self, v):
        try:
            return base64.b64decode(self.text("B", v), validate=True)
        except ValueError as e:              # binascii.Error, or a non-ASCII string
            raise self.fail(f"the manifest's bytes are not valid base64 ({e})") from None

    def dtype(self, v):
        name = self.text("dtype", v)
        if name not in D._BY_NAME:
            raise self.fail(f"the manifest names the dtype {name[:40]!r}, which tensorlib does not have "
                            f"(supported: {_TENSOR_DTYPES})")
        return D._BY_NAME[name]

    def device(self, v):
        s = self.text("device", v)
        try:
            return Device(s)
        except (RuntimeError, ValueError, TypeError) as e:
            raise self.fail(f"the manifest names the device {s[:40]!r}: {e}") from None


_UNSAFE_MESSAGE = ("Re-running `tensorlib.load` with `weights_only` set to `False` will likely succeed, but it can "
                   "result in arbitrary code execution. Do it only if you got the file from a trusted source.")
_TENSORLIB_GLOBALS = {"tensorlib._dtype._by_name": D._by_name, "tensorlib._device.device": Device}


class _FullUnpickler(pickle.Unpickler):
    """weights_only=False: pickle itself (any global: the caller trusts the file), with the archive's
    tensors and torch's rebuild functions resolved as in a weights-only load."""

    def __init__(self, reader, fh, allowed):
        super().__init__(fh, **reader.opts.pickle_load_args)
        self.reader, self.allowed = reader, allowed

    def persistent_load(self, pid):
        return self.reader.persistent_load(pid)

    def find_class(self, module, name):
        full = _unpickler.global_name(module, name)
        if full in self.allowed:
            return self.allowed[full]
        if full.partition(".")[0] == "torch":
            raise self.reader.fail(f"the checkpoint holds {full}, a PyTorch object that tensorlib cannot rebuild; in "
                                   "PyTorch, save model.state_dict() and load that with load_state_dict")
        return super().find_class(module, name)


_SCALARS = {"T": _Reader.tensor, "A": _Reader.array, "I": _Reader.big_int, "F": _Reader.special_float,
            "B": _Reader.raw_bytes, "dtype": _Reader.dtype, "device": _Reader.device}


def _hashable(k):
    return tuple(_hashable(x) for x in k) if isinstance(k, list) else k


def load(f, map_location=None, pickle_module=None, *, weights_only=None, mmap=None, **pickle_load_args):
    """Load what save() or torch.save wrote, from a path or a readable, seekable binary file object.

    map_location: None (each tensor to the device it was saved from), a device or string ("cpu"), a dict
    mapping saved device strings to new ones ({"cuda:0": "cpu"}), or fn(tensor, saved_device) -> tensor.
    weights_only (default True, or False when pickle_module is given, as in torch >= 2.6): a pickled part
    is rebuilt only from allowlisted globals (add_safe_globals / safe_globals); False unpickles with pickle
    itself, which runs any code the file holds: only for files you trust. As torch, the environment
    variable TORCH_FORCE_WEIGHTS_ONLY_LOAD=1 forces True, TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD=1 makes the
    default False (with a warning). pickle_module may be None or pickle (not with weights_only=True).
    A path must be a regular file (a FIFO or device is refused: read it into io.BytesIO yourself)."""
    _check_pickle_module(pickle_module, "load")
    weights_only = _weights_only_setting(weights_only, pickle_module)
    if weights_only and pickle_module is not None:
        raise RuntimeError("Can not safely load weights when explicit pickle_module is specified (tensorlib.load: "
                           "pass weights_only=False to unpickle with it, only for a file you trust)")
    if pickle_load_args and weights_only:
        warnings.warn("pickle_load_args only works if `weights_only=False`.", stacklevel=2)
    if mmap:
        raise ValueError("tensorlib.load does not memory-map files; mmap=True is not supported (drop it: the "
                         "tensors are read into memory)")
    opts = _Options(map_location, weights_only, pickle_load_args if not weights_only else {})
    ctx, size = _open_for_load(f)
    with ctx as fh:
        return _load(fh, size, _name(f), opts)


def _weights_only_setting(weights_only, pickle_module):
    """torch.load's choice: the argument, else True unless a pickle_module is given; the environment's
    TORCH_FORCE_WEIGHTS_ONLY_LOAD overrides both, TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD the default only."""
    yes = ("1", "y", "yes", "true")
    force = os.getenv("TORCH_FORCE_WEIGHTS_ONLY_LOAD", "0").lower() in yes
    force_no = os.getenv("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD", "0").lower() in yes
    if force and force_no:
        raise RuntimeError("Only one of `TORCH_FORCE_WEIGHTS_ONLY_LOAD` or `TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD` "
                           "should be set, but both were set.")
    if force:
        return True
    if weights_only is not None:
        return bool(weights_only)
    if force_no:
        warnings.warn("Environment variable TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD detected, since the `weights_only` "
                      "argument was not explicitly passed to `tensorlib.load`, forcing weights_only=False.",
                      UserWarning, stacklevel=3)
        return False
    return pickle_module is None


def _open_for_load(f):
    """(a context manager giving the binary file, its size): a path through safeio.open_input (regular
    files only), a file object as it is (left open)."""
    name = _name(f)
    if isinstance(f, (str, os.PathLike)):
        if not os.path.exists(f):
            raise FileNotFoundError(f"tensorlib.load: no such file: {name!r}")
        try:
            return open_input(f, what="tensorlib.save file")
        except InputError as e:
            raise RuntimeError(f"tensorlib.load: {e}") from None
    if not hasattr(f, "read"):
        raise TypeError(f"tensorlib.load: f must be a path or a readable binary file object, not {type(f).__name__}")
    return contextlib.nullcontext(f), _stream_size(f, name)


def _stream_size(f, name) -> int:
    """A file object's length: the budget of what may be read from it. zipfile must seek, so an unseekable
    stream is refused with torch's advice."""
    if getattr(f, "closed", False):
        raise _fail(name, "the file object is closed")
    try:
        if hasattr(f, "seekable") and not f.seekable():
            raise io.UnsupportedOperation
        pos = f.tell()
        end = f.seek(0, io.SEEK_END)
        f.seek(pos)
    except (OSError, ValueError, AttributeError):
        raise _fail(name, "the file object is not seekable; tensorlib.load can only load from a seekable file. "
                    "Pre-load the data into a buffer like io.BytesIO and load from it instead") from None
    return end


def _load(fh, size, name, opts):
    z = _open_zip(fh, size, name)
    with z:
        try:
            check_zip_entries(z.infolist(), size, name=name, what="tensorlib.save file")
        except InputError as e:
            raise RuntimeError(f"tensorlib.load: {e}") from None
        prefix = _torch_prefix(z, name)
        if prefix is not None:
            from ._torch_format import TorchReader
            return TorchReader(z, name, opts, size, prefix).load()
        manifest = _read_manifest(z, size, name)
        reader = _Reader(z, name, opts, manifest["tensors"], size)
        if manifest["version"] == PICKLED_VERSION:
            return reader.unpickle(_PICKLE, _TENSORLIB_GLOBALS)
        return reader.decode(manifest["root"])


def _torch_prefix(z, name):
    """The folder ("archive/") of a PyTorch zip checkpoint, or None for a tensorlib file; TorchScript
    archives are refused (their code.py files are programs)."""
    names = z.namelist()
    if _MANIFEST in names:
        return None
    roots = sorted({n[:-len("data.pkl")] for n in names if n.endswith("/data.pkl") and n.count("/") == 1})
    if not roots:
        return None
    if len(roots) > 1:
        raise _fail(name, f"a PyTorch checkpoint with {len(roots)} data.pkl records ({', '.join(roots[:3])}); "
                    "the file is damaged")
    if roots[0] + "constants.pkl" in names or any(n.startswith(roots[0] + "code/") for n in names):
        raise _fail(name, "a TorchScript archive (torch.jit.save), which holds code; tensorlib cannot load "
                    "TorchScript. In PyTorch, torch.save(model.state_dict(), path) and load that instead")
    return roots[0]


def get_unsafe_globals_in_checkpoint(f) -> list[str]:
    """The globals of a checkpoint's pickle that a weights_only load would refuse, found without running
    anything (torch.serialization.get_unsafe_globals_in_checkpoint): what add_safe_globals needs."""
    name, (ctx, size) = _name(f), _open_for_load(f)
    with ctx as fh:
        with _open_zip(fh, size, name) as z:
            prefix = _torch_prefix(z, name)
            entry = _PICKLE if prefix is None else prefix + "data.pkl"
            if entry not in z.NameToInfo:
                return []
            data = _Reader(z, name, _Options(None, True, {}), [], size).read_entry(entry)
    allowed = {**_unpickler.default_allowed_globals(), **_TENSORLIB_GLOBALS, **_unpickler.user_allowed_globals()}
    if prefix is not None:
        from ._torch_format import torch_global_names
        allowed.update(dict.fromkeys(torch_global_names()))
    try:
        found = _unpickler.globals_in_pickle(data)
    except pickle.UnpicklingError as e:
        raise _fail(name, str(e), entry) from None
    return list(dict.fromkeys(g for g in found if g not in allowed))


def _check_directory(fh, size, name):
    """zipfile makes a ZipInfo of ~600 bytes from each ~60-byte central-directory record, so a file that is
    mostly directory would take ~10x its size before any entry is read. In a tensorlib.save file each
    entry also holds a local header, an .npy header and a manifest line, so the directory is under a
    fifth of the file: more than a quarter (beyond a small floor) is refused."""
    try:
        end = zipfile._EndRecData(fh)   # private, but it is zipfile's own parser of the end record
    except _DAMAGE:
        return                          # zipfile.ZipFile says what is wrong
    limit = size // 4 + _DIRECTORY_FLOOR
    if end is not None and end[zipfile._ECD_SIZE] > limit:
        raise _fail(name, f"its zip directory declares {end[zipfile._ECD_SIZE]} bytes, more than the {limit} a "
                    f"tensorlib.save file of {size} bytes has; refusing a file made of directory entries")


_LEGACY_MAGIC = b"\x80\x02\x8a\x0a" + (0x1950A86A20F9469CFC6C).to_bytes(10, "little")   # torch's pickled MAGIC_NUMBER


def _is_legacy_torch(fh) -> bool:
    """torch's pre-1.6 format (a pickled magic number, then pickles) or its older tar format."""
    try:
        fh.seek(0)
        head = fh.read(512)
    except (OSError, ValueError):
        return False
    return head.startswith(_LEGACY_MAGIC) or (head[257:262] == b"ustar" and b"storages" in head[:100])


def _open_zip(fh, size, name):
    _check_directory(fh, size, name)
    try:
        z = zipfile.ZipFile(fh, "r")
    except _DAMAGE as e:
        if _is_legacy_torch(fh):
            raise _fail(name, "a PyTorch checkpoint in the legacy format (torch < 1.6, or "
                        "_use_new_zipfile_serialization=False), which tensorlib does not read; in PyTorch, re-save "
                        "it: torch.save(torch.load(path), path)") from None
        raise _fail(name, f"not a tensorlib.save file ({type(e).__name__}: {e}); it may be truncated or a "
                    "different format") from None
    names = z.namelist()
    if _MANIFEST not in names and not any(n.endswith("/data.pkl") and n.count("/") == 1 for n in names):
        z.close()
        raise _fail(name, f"a zip archive without {_MANIFEST}; it was not written by tensorlib.save or torch.save")
    return z


def _read_manifest(z, size, name):
    """The manifest, bounded by the file's size (a stored manifest is never larger) or 1 MiB."""
    info = z.getinfo(_MANIFEST)
    limit = max(_MANIFEST_FLOOR, size)
    if info.file_size > limit:
        raise _fail(name, f"inflates to {info.file_size} bytes, more than the {limit} bytes a manifest of a "
                    f"{size}-byte file may take (a compression bomb?)", _MANIFEST)
    try:
        manifest = orjson.loads(z.read(info))
    except _DAMAGE as e:
        raise _fail(name, f"unreadable ({type(e).__name__}: {e}); the file is damaged", _MANIFEST) from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise _fail(name, "does not describe a tensorlib.save file", _MANIFEST)
    if manifest.get("version") not in (VERSION, PICKLED_VERSION):
        raise _fail(name, f"has format version {repr(manifest.get('version'))[:20]}; this tensorlib reads versions "
                    f"{VERSION} and {PICKLED_VERSION}")
    if "root" not in manifest or not isinstance(manifest.get("tensors", []), list):
        raise _fail(name, "has no 'root' entry or a malformed 'tensors' list; the file is damaged", _MANIFEST)
    if manifest["version"] == PICKLED_VERSION and manifest["root"] != {"P": _PICKLE}:
        raise _fail(name, f"a version {PICKLED_VERSION} manifest's root must name {_PICKLE}, not "
                    f"{_describe(manifest['root'])}", _MANIFEST)
    manifest.setdefault("tensors", [])
    return manifest
