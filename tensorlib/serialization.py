"""tensorlib.save / tensorlib.load: state dicts on disk in a format that cannot carry code.

A file is a zip archive (stored, uncompressed) holding `manifest.json` (orjson) that describes the saved
object tree, and one `tensors/<n>.npy` per tensor written by NumPy with allow_pickle=False. Loading
parses JSON and NumPy's .npy header only, so a hostile file can at worst fail to load: there is no pickle
anywhere, and `weights_only` is always in effect whatever the argument says.

Saveable: tensors (dtype, device, requires_grad and shape are kept; a tensor object that appears several
times is stored once and comes back as one object), NumPy arrays, dicts (any saveable keys, insertion
order kept; OrderedDicts come back as OrderedDicts), lists, tuples (namedtuples as plain tuples), str,
bytes, int (any size), float (inf/nan included), bool, None, tensorlib dtypes and devices.
"""
from __future__ import annotations

import base64
import collections
import io
import math
import os
import zipfile
import zlib

import numpy as np
import orjson

from . import _dtype as D
from ._device import device as Device
from ._tensor_base import Tensor

__all__ = ["save", "load"]

FORMAT = "tensorlib.save"
VERSION = 1
_MANIFEST = "manifest.json"
_SAVEABLE = ("tensors, NumPy arrays, dicts, lists, tuples, str, bytes, int, float, bool, None, tensorlib dtypes and "
             "devices")


def _name(f) -> str:
    if isinstance(f, (str, os.PathLike)):
        return os.fspath(f)
    return getattr(f, "name", None) or f"<{type(f).__name__}>"


def _c_order(a):
    """C-ordered data (np.ascontiguousarray would turn a 0-d array into a 1-d one)."""
    return a if a.flags.c_contiguous else a.copy(order="C")


# --- save ---------------------------------------------------------------------------------------

class _Writer:
    def __init__(self):
        self.tensors: list[dict] = []
        self.arrays: list[np.ndarray] = []
        self.ids: dict[int, int] = {}
        self._keep = []   # keeps ids stable while encoding

    def add_array(self, arr, meta):
        self.arrays.append(arr)
        meta["file"] = f"tensors/{len(self.arrays) - 1}.npy"
        self.tensors.append(meta)
        return len(self.tensors) - 1

    def encode(self, obj, where):
        if obj is None or isinstance(obj, (bool, str)):
            return obj
        if isinstance(obj, Tensor):
            key = self.ids.get(id(obj))
            if key is None:
                data = obj._data
                host = data if type(data) is np.ndarray else data.get()
                meta = {"dtype": str(np.dtype(host.dtype)), "shape": list(host.shape), "device": str(obj.device),
                        "requires_grad": bool(obj._requires_grad)}
                if type(obj).__name__ == "Parameter":
                    meta["parameter"] = True
                key = self.add_array(_c_order(host), meta)
                self.ids[id(obj)] = key
                self._keep.append(obj)
            return {"T": key}
        if isinstance(obj, np.ndarray):
            if obj.dtype.kind not in "biufc":
                raise TypeError(f"tensorlib.save: cannot save a NumPy array of dtype {obj.dtype} at {where} (only "
                                "numeric and bool arrays)")
            return {"A": self.add_array(_c_order(obj), {"dtype": str(obj.dtype), "shape": list(obj.shape)})}
        if isinstance(obj, np.generic):
            return self.encode(obj.item(), where)
        if isinstance(obj, int):
            return obj if -(1 << 63) <= obj < (1 << 63) else {"I": str(obj)}
        if isinstance(obj, float):
            return obj if math.isfinite(obj) else {"F": repr(obj)}
        if isinstance(obj, bytes):
            return {"B": base64.b64encode(obj).decode("ascii")}
        if isinstance(obj, D.dtype):
            return {"dtype": obj.name}
        if isinstance(obj, Device):
            return {"device": str(obj)}
        if isinstance(obj, dict):
            items = [[self.encode(k, f"{where} (a key)"), self.encode(v, f"{where}[{k!r}]")] for k, v in obj.items()]
            return {"OD" if isinstance(obj, collections.OrderedDict) else "D": items}
        if isinstance(obj, tuple):
            return {"U": [self.encode(v, f"{where}[{i}]") for i, v in enumerate(obj)]}
        if isinstance(obj, list):
            return {"L": [self.encode(v, f"{where}[{i}]") for i, v in enumerate(obj)]}
        hint = "; save module.state_dict() instead of the module" if hasattr(obj, "state_dict") else ""
        raise TypeError(f"tensorlib.save: cannot save an object of type {type(obj).__module__}.{type(obj).__qualname__}"
                        f" at {where}; it saves only {_SAVEABLE}{hint}")


def save(obj, f, pickle_module=None, pickle_protocol=None, _use_new_zipfile_serialization=True):
    """Save `obj` (typically a state dict) to a path or a writable binary file object."""
    if pickle_module is not None:
        raise ValueError("tensorlib.save never pickles; pickle_module is not supported")
    w = _Writer()
    root = w.encode(obj, "obj")
    manifest = orjson.dumps({"format": FORMAT, "version": VERSION, "root": root, "tensors": w.tensors})
    if isinstance(f, (str, os.PathLike)):
        with open(f, "wb") as fh:
            _write_zip(fh, manifest, w.arrays)
    else:
        if not hasattr(f, "write"):
            raise TypeError(f"tensorlib.save: f must be a path or a writable binary file object, not {type(f).__name__}")
        _write_zip(f, manifest, w.arrays)


def _write_zip(fh, manifest, arrays):
    with zipfile.ZipFile(fh, "w", compression=zipfile.ZIP_STORED, allowZip64=True) as z:
        z.writestr(_MANIFEST, manifest)
        for i, arr in enumerate(arrays):
            with z.open(f"tensors/{i}.npy", "w", force_zip64=arr.nbytes > (1 << 31)) as out:
                np.lib.format.write_array(out, arr, allow_pickle=False)


# --- load ---------------------------------------------------------------------------------------

class _Reader:
    def __init__(self, z, name, map_location):
        self.z, self.name, self.map_location = z, name, map_location
        self.cache: dict = {}
        self.metas: list = []

    def fail(self, what):
        return RuntimeError(f"tensorlib.load: {self.name}: {what}")

    def array(self, idx):
        if not isinstance(idx, int) or not 0 <= idx < len(self.metas):
            raise self.fail(f"manifest refers to tensor {idx!r}, which is not in the file")
        meta = self.metas[idx]
        try:
            with self.z.open(meta["file"]) as fh:
                arr = np.lib.format.read_array(io.BufferedReader(fh), allow_pickle=False)
        except KeyError:
            raise self.fail(f"{meta.get('file')} is missing from the archive (truncated or damaged file)") from None
        except (ValueError, EOFError, zipfile.BadZipFile, OSError) as e:
            raise self.fail(f"cannot read {meta.get('file')}: {e} (truncated or damaged file)") from None
        if list(arr.shape) != list(meta["shape"]) or str(arr.dtype) != meta["dtype"]:
            raise self.fail(f"{meta['file']} holds {arr.dtype}{list(arr.shape)} but the manifest says "
                            f"{meta['dtype']}{meta['shape']}")
        return arr

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
                raise RuntimeError("Attempting to deserialize object on a CUDA device but tensorlib.cuda.is_available() "
                                   "is False. If you are running on a CPU-only machine, please use tensorlib.load with "
                                   "map_location='cpu' to map your storages to the CPU.")
        return dev

    def tensor(self, idx):
        if ("T", idx) in self.cache:
            return self.cache[("T", idx)]
        arr = self.array(idx)
        meta = self.metas[idx]
        t = object.__new__(Tensor)
        t._data = arr
        saved_dev = meta.get("device", "cpu")
        dev = self.target_device(saved_dev)
        if dev is None:
            t = self.map_location(t, saved_dev)
        elif dev != "cpu":
            from .ops.misc import to
            t = to(t, device=dev)
        if meta.get("parameter"):
            try:
                from .nn import Parameter  # noqa: PLC0415 - optional, built beside this module
                t = Parameter(t, requires_grad=meta.get("requires_grad", True))
            except ImportError:
                t.requires_grad_(meta.get("requires_grad", True))
        elif meta.get("requires_grad"):
            t.requires_grad_(True)
        self.cache[("T", idx)] = t
        return t

    def decode(self, node):
        if node is None or isinstance(node, (bool, int, float, str)):
            return node
        if isinstance(node, dict) and len(node) == 1:
            (tag, v), = node.items()
            if tag == "T":
                return self.tensor(v)
            if tag == "A":
                return self.array(v)
            if tag == "L":
                return [self.decode(x) for x in v]
            if tag == "U":
                return tuple(self.decode(x) for x in v)
            if tag in ("D", "OD"):
                out = collections.OrderedDict() if tag == "OD" else {}
                for k, x in v:
                    out[_hashable(self.decode(k))] = self.decode(x)
                return out
            if tag == "I":
                return int(v)
            if tag == "F":
                return float(v)
            if tag == "B":
                return base64.b64decode(v)
            if tag == "dtype":
                return D.to_dtype(v)
            if tag == "device":
                return Device(v)
        raise self.fail(f"unexpected entry in the manifest: {str(node)[:80]}")


def _hashable(k):
    return tuple(_hashable(x) for x in k) if isinstance(k, list) else k


def load(f, map_location=None, pickle_module=None, *, weights_only=True, mmap=None, **pickle_load_args):
    """Load what save() wrote, from a path or a readable binary file object.

    map_location: None (each tensor to the device it was saved from), a device or string ("cpu"), a dict
    mapping saved device strings to new ones ({"cuda:0": "cpu"}), or fn(tensor, saved_device) -> tensor.
    Never executes code from the file: weights_only is accepted for torch compatibility and always holds."""
    if pickle_module is not None:
        raise ValueError("tensorlib.load never unpickles; pickle_module is not supported")
    name = _name(f)
    if isinstance(f, (str, os.PathLike)):
        if not os.path.exists(f):
            raise FileNotFoundError(f"tensorlib.load: no such file: {name!r}")
        with open(f, "rb") as fh:
            return _load(fh, name, map_location)
    if not hasattr(f, "read"):
        raise TypeError(f"tensorlib.load: f must be a path or a readable binary file object, not {type(f).__name__}")
    return _load(f, name, map_location)


_DAMAGE = (ValueError, KeyError, TypeError, IndexError, AttributeError, OSError, EOFError, zipfile.BadZipFile,
           zlib.error, NotImplementedError, OverflowError, UnicodeDecodeError)


def _load(fh, name, map_location):
    """Any low-level failure of a damaged archive (zipfile and NumPy raise many kinds) becomes one
    RuntimeError that names the file."""
    try:
        return _load_zip(fh, name, map_location)
    except RuntimeError as e:
        if not isinstance(e, NotImplementedError):   # zipfile's "zip file version 23.5" is one
            raise
        raise RuntimeError(f"tensorlib.load: {name}: the file is damaged or truncated ({type(e).__name__}: {e})") from e
    except _DAMAGE as e:
        raise RuntimeError(f"tensorlib.load: {name}: the file is damaged or truncated ({type(e).__name__}: {e})") from e


def _load_zip(fh, name, map_location):
    try:
        z = zipfile.ZipFile(fh, "r")
    except zipfile.BadZipFile as e:
        raise RuntimeError(f"tensorlib.load: {name} is not a tensorlib.save file ({e}); it may be truncated or a "
                           "different format") from None
    with z:
        names = set(z.namelist())
        if _MANIFEST not in names:
            if any(n.endswith("data.pkl") for n in names):
                raise RuntimeError(f"tensorlib.load: {name} looks like a PyTorch checkpoint (pickle inside a zip). "
                                   "tensorlib never unpickles; re-save it from torch as NumPy arrays, e.g. "
                                   "numpy.savez(path, **{k: v.numpy() for k, v in sd.items()})")
            raise RuntimeError(f"tensorlib.load: {name} is a zip archive without {_MANIFEST}; it was not written by "
                               "tensorlib.save")
        try:
            manifest = orjson.loads(z.read(_MANIFEST))
        except (orjson.JSONDecodeError, zipfile.BadZipFile, OSError, EOFError) as e:
            raise RuntimeError(f"tensorlib.load: {name}: unreadable {_MANIFEST} ({e}); the file is damaged") from None
        if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
            raise RuntimeError(f"tensorlib.load: {name}: {_MANIFEST} does not describe a tensorlib.save file")
        if manifest.get("version") != VERSION:
            raise RuntimeError(f"tensorlib.load: {name} has format version {manifest.get('version')}; this tensorlib "
                               f"reads version {VERSION}")
        r = _Reader(z, name, map_location)
        r.metas = manifest.get("tensors", [])
        return r.decode(manifest["root"])
