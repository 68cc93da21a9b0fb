"""PyTorch's zip checkpoints (torch.save since 1.6) read without torch, through the weights-only unpickler.

Layout: `<name>/data.pkl` is a protocol-2 pickle whose tensors are REDUCE calls of
`torch._utils._rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad, hooks[, metadata])`
and whose storages are persistent ids ("storage", torch.FloatStorage, key, location, numel) naming the raw
bytes in `<name>/data/<key>`; `<name>/byteorder` says "little" or "big". The torch names a state dict
uses are mapped to functions here, and nothing else of torch is allowed: a storage is read once (two
tensors on one storage share it), its declared size must equal its entry's size before anything is
allocated, and a tensor is a bounds-checked NumPy as_strided view of it, copied (so tensors own their
memory and a transposed view loads as the values it showed).
"""
from __future__ import annotations

import collections
import math
import pickle
import re
import sys
from typing import Any

import numpy as np

from . import _dtype as D
from ._device import device as Device
from ._tensor import Tensor
from .serialization import _TENSOR_DTYPES, _damage_named, _fill, _Reader

MAX_DIMS = 64
_KEY = re.compile(r"[0-9A-Za-z_]{1,64}\Z")

# torch's storage classes, by the dtype each holds (None: a dtype tensorlib does not have)
_STORAGES = {"DoubleStorage": "float64", "FloatStorage": "float32", "HalfStorage": "float16",
             "LongStorage": "int64", "IntStorage": "int32", "ShortStorage": "int16", "CharStorage": "int8",
             "ByteStorage": "uint8", "BoolStorage": "bool", "BFloat16Storage": "bfloat16",
             "ComplexDoubleStorage": "complex128", "ComplexFloatStorage": "complex64", "QUInt8Storage": None,
             "QInt8Storage": None, "QInt32Storage": None,
             "QUInt4x2Storage": None, "QUInt2x4Storage": None}


class StorageType:
    """What a `torch.FloatStorage` GLOBAL stands for: the class name and its dtype."""

    def __init__(self, name, dtype):
        self.name, self.dtype = name, dtype

    def __repr__(self):
        return f"torch.{self.name}"


class _TypeName:
    """torch.Tensor / torch.nn.Parameter as _rebuild_from_type_v2's argument: a name, not a class, so
    NEWOBJ and BUILD (which would make a tensor without data) never get one."""

    def __init__(self, name):
        self.name = name

    def __repr__(self):
        return self.name


TORCH_TENSOR, TORCH_PARAMETER = _TypeName("torch.Tensor"), _TypeName("torch.nn.parameter.Parameter")


class Storage:
    """One storage of the archive: a 1-d array of its dtype, and the device torch saved it from."""

    def __init__(self, array, location, entry):
        self.array, self.location, self.entry = array, location, entry


class TorchReader(_Reader):
    def __init__(self, z, name, opts, size, prefix):
        super().__init__(z, name, opts, [], size)
        self.prefix = prefix
        self.storages: dict = {}
        self.big_endian = self.byteorder()

    def load(self):
        return self.unpickle(self.prefix + "data.pkl", self.globals(), torch_file=True)

    def byteorder(self) -> bool:
        """True for a big-endian archive; files without the record (torch < 1.10) are little-endian."""
        entry = self.prefix + "byteorder"
        if entry not in self.z.NameToInfo:
            return False
        order = self.read_entry(entry)
        if order not in (b"little", b"big"):
            raise self.fail(f"the byteorder record says {order[:20]!r}, not 'little' or 'big'", entry)
        return order == b"big"

    def globals(self) -> dict:
        """The torch names a state dict or a saved tensor uses, mapped to tensorlib's rebuilders."""
        g: dict[str, Any] = {f"torch.{n}": StorageType(n, d) for n, d in _STORAGES.items()}
        g["torch.UntypedStorage"] = g["torch.storage.UntypedStorage"] = StorageType("UntypedStorage", "uint8")
        g.update({f"torch.{d.name}": d for d in D.ALL})
        g.update({"torch._utils._rebuild_tensor_v2": self.rebuild_tensor_v2,
                  "torch._utils._rebuild_tensor": self.rebuild_tensor,
                  "torch._utils._rebuild_parameter": self.rebuild_parameter,
                  "torch._utils._rebuild_parameter_with_state": self.rebuild_parameter_with_state,
                  "torch._tensor._rebuild_from_type_v2": self.rebuild_from_type_v2,
                  "torch.Tensor": TORCH_TENSOR, "torch.nn.parameter.Parameter": TORCH_PARAMETER,
                  "torch.device": Device, "torch.Size": tuple})
        return g

    # --- storages ----------------------------------------------------------------------------------
    def persistent_load(self, pid):
        """("storage", StorageType, key, location, numel): the raw storage `data/<key>` of this archive."""
        if not (type(pid) is tuple and len(pid) == 5 and pid[0] in ("storage", b"storage")):
            raise pickle.UnpicklingError(f"Only persistent_load of storage is allowed, but got {repr(pid)[:60]}")
        _, stype, key, location, numel = pid
        if not (isinstance(stype, StorageType) and type(key) is str and _KEY.match(key) and type(location) is str
                and type(numel) is int and numel >= 0):
            raise pickle.UnpicklingError(f"a storage id must be (\"storage\", a torch storage class, a key naming an "
                                         f"entry of data/, a location, a size), not {repr(pid)[:80]}")
        entry = f"{self.prefix}data/{key}"
        if stype.dtype is None:
            raise self.fail(f"holds a {stype!r}, whose dtype tensorlib does not have (supported: {_TENSOR_DTYPES})",
                            entry)
        dtype = np.dtype(D._BY_NAME[stype.dtype].np)
        st = self.storages.get(key)
        if st is None:
            st = self.storages[key] = Storage(self.read_storage(entry, dtype, numel), location, entry)
        elif st.array.dtype != dtype or st.array.size != numel:
            raise self.fail(f"the pickle reads this storage as {stype!r} of {numel} elements and also as "
                            f"{st.array.dtype}[{st.array.size}]", entry)
        return st

    def read_storage(self, entry, dtype, numel):
        try:
            info = self.z.getinfo(entry)
        except KeyError:
            raise self.fail("missing from the archive (truncated or damaged file)", entry) from None
        need = numel * dtype.itemsize
        if info.file_size != need:
            raise self.fail(f"the pickle declares {numel} {dtype} elements ({need} bytes) but the entry holds "
                            f"{info.file_size} bytes (truncated or damaged file)", entry)
        arr = self.allocate((numel,), dtype, entry)
        with _damage_named(self.name, entry), self.z.open(info) as fh:
            _fill(fh, arr)
        if self.big_endian and dtype.itemsize > 1:
            arr.byteswap(inplace=True)
        return arr

    # --- torch._utils' rebuild functions ----------------------------------------------------------------
    def rebuild_tensor_v2(self, storage, storage_offset, size, stride, requires_grad=False, backward_hooks=None,
                          metadata=None):
        """torch._utils._rebuild_tensor_v2: the strided view of `storage`, copied into a tensor."""
        if not isinstance(storage, Storage):
            raise pickle.UnpicklingError(f"_rebuild_tensor_v2 needs a storage, but got {type(storage)}")
        arr = self.strided(storage, storage_offset, size, stride)
        return self.place(arr, {"device": storage.location, "requires_grad": requires_grad is True,
                                "file": storage.entry})

    def rebuild_tensor(self, storage, storage_offset, size, stride):
        return self.rebuild_tensor_v2(storage, storage_offset, size, stride)

    def rebuild_parameter(self, data, requires_grad, backward_hooks):
        if not isinstance(data, Tensor):
            raise pickle.UnpicklingError(f"_rebuild_parameter needs a tensor, but got {type(data)}")
        return _parameter_class()(data, requires_grad=requires_grad is True)

    def rebuild_parameter_with_state(self, data, requires_grad, backward_hooks, state):
        if state:
            raise self.fail("a Parameter saved with Python attributes; tensorlib restores only its data and "
                            "requires_grad (in PyTorch, save model.state_dict() instead)")
        return self.rebuild_parameter(data, requires_grad, backward_hooks)

    def rebuild_from_type_v2(self, func, new_type, args, state):
        """torch._tensor._rebuild_from_type_v2 for plain tensors and Parameters (not subclasses)."""
        if func not in (self.rebuild_tensor_v2, self.rebuild_tensor) or type(args) is not tuple:
            raise pickle.UnpicklingError(f"_rebuild_from_type_v2 rebuilds tensors only, not with {func!r}"[:120])
        if new_type not in (TORCH_TENSOR, TORCH_PARAMETER) or state:
            raise self.fail(f"a tensor subclass {new_type!r} or a tensor with Python attributes; tensorlib loads "
                            "plain tensors and Parameters"[:200])
        t = func(*args)
        return t if new_type is TORCH_TENSOR else _parameter_class()(t, requires_grad=t.requires_grad)

    def strided(self, storage, offset, size, stride):
        """The elements a tensor of `size`/`stride` at `offset` sees, bounds-checked, as a new C array."""
        arr = storage.array
        ok = (type(offset) is int and isinstance(size, tuple) and isinstance(stride, tuple)
              and len(size) == len(stride) <= MAX_DIMS
              and all(type(n) is int and n >= 0 for n in size) and all(type(s) is int and s >= 0 for s in stride)
              and 0 <= offset <= arr.size)
        if not ok:
            raise self.fail(f"a tensor with storage_offset {repr(offset)[:20]}, size {repr(size)[:60]}, stride "
                            f"{repr(stride)[:60]} that does not describe a view of a {arr.size}-element storage",
                            storage.entry)
        self.budget.charge(math.prod(size) * arr.itemsize)
        if math.prod(size) == 0:
            return np.empty(size, arr.dtype)
        last = offset + sum((n - 1) * s for n, s in zip(size, stride))
        if last >= arr.size:
            raise self.fail(f"a tensor of size {list(size)}, stride {list(stride)} at offset {offset} reaches "
                            f"element {last} of a {arr.size}-element storage (damaged file)", storage.entry)
        view = np.lib.stride_tricks.as_strided(arr[offset:], shape=size,
                                               strides=[s * arr.itemsize for s in stride], writeable=False)
        return np.array(view, order="C")


def torch_global_names() -> list[str]:
    """The torch names a weights-only load of a PyTorch checkpoint accepts."""
    return list(TorchReader.__new__(TorchReader).globals())


def _parameter_class():
    from .nn import Parameter
    return Parameter


# --- writing: what torch.save writes for a state dict, so torch.load (weights_only) reads tensorlib's files --------

_STORAGE_OF = {d: n for n, d in _STORAGES.items() if d is not None}
_MAX_WRITE_DEPTH = 64


class _NotTorchSaveable(Exception):
    """The object holds something a weights-only torch.load could not read back (tensorlib's own format then)."""


class TorchWriter:
    """Pickles a state-dict-like object (dicts, OrderedDicts, lists, tuples, str, int, float, bool, None,
    tensors and Parameters) opcode by opcode as torch.save does, at pickle protocol 2: each tensor a
    ``torch._utils._rebuild_tensor_v2`` call on a persistent storage id naming its raw bytes ``data/<key>``
    (little-endian, C order), a Parameter ``_rebuild_parameter`` around it; a tensor object met twice is
    pickled once (memo), so it loads as one object, as torch's. No torch needed: the GLOBALs are text."""

    def __init__(self):
        self.out = bytearray(b"\x80\x02")
        self.storages: list[np.ndarray] = []
        self.memo: dict[int, int] = {}
        self.keep: list = []                  # the memoised objects stay alive (their ids stay unique)

    def dumps(self, obj) -> bytes:
        self.save(obj, 0)
        self.out += b"."
        return bytes(self.out)

    # opcodes
    def _global(self, module, name):
        self.out += b"c" + module.encode() + b"\n" + name.encode() + b"\n"

    def _str(self, v):
        b = v.encode("utf-8", "surrogatepass")
        self.out += b"X" + len(b).to_bytes(4, "little") + b

    def _int(self, v):
        if 0 <= v < 256:
            self.out += b"K" + bytes([v])
        elif 0 <= v < 65536:
            self.out += b"M" + v.to_bytes(2, "little")
        elif -(1 << 31) <= v < (1 << 31):
            self.out += b"J" + v.to_bytes(4, "little", signed=True)
        else:
            b = v.to_bytes((v.bit_length() + 8) // 8, "little", signed=True)
            self.out += (b"\x8a" + bytes([len(b)]) if len(b) < 256 else b"\x8b" + len(b).to_bytes(4, "little")) + b

    def _tuple(self, items, depth):
        self.out += b"("
        for v in items:
            self.save(v, depth + 1)
        self.out += b"t"

    def _put(self, obj):
        i = self.memo[id(obj)] = len(self.memo)
        self.keep.append(obj)
        self.out += b"r" + i.to_bytes(4, "little")

    def save(self, obj, depth):
        if depth > _MAX_WRITE_DEPTH:
            raise _NotTorchSaveable
        t = type(obj)
        if obj is None:
            self.out += b"N"
        elif t is bool:
            self.out += b"\x88" if obj else b"\x89"
        elif t is int:
            self._int(obj)
        elif t is float:
            self.out += b"G" + np.array(obj, ">f8").tobytes()
        elif t is str:
            self._str(obj)
        elif t in (list, tuple):
            if t is tuple:
                self._tuple(obj, depth)
            else:
                self.out += b"]("
                for v in obj:
                    self.save(v, depth + 1)
                self.out += b"e"
        elif t is dict or t is collections.OrderedDict:
            if t is dict:
                self.out += b"}"
            else:
                self._global("collections", "OrderedDict")
                self.out += b")R"
            self.out += b"("
            for k, v in obj.items():
                if type(k) not in (str, int):
                    raise _NotTorchSaveable
                self.save(k, depth + 1)
                self.save(v, depth + 1)
            self.out += b"u"
        elif isinstance(obj, Tensor):
            self.tensor(obj, depth)
        else:
            raise _NotTorchSaveable

    def tensor(self, t, depth):
        if id(t) in self.memo:
            self.out += b"j" + self.memo[id(t)].to_bytes(4, "little")
            return
        Parameter = _parameter_class()
        if type(t) not in (Tensor, Parameter) or t.is_sparse:      # (sparse: tensorlib's writer refuses it)
            raise _NotTorchSaveable
        storage = _STORAGE_OF.get(t.dtype.name)
        if storage is None:
            raise _NotTorchSaveable
        from .dispatch import array_of
        arr = array_of(t)
        if not isinstance(arr, np.ndarray):
            arr = arr.get()                     # a CUDA tensor: its bytes, saved with its device as location
        data = np.ascontiguousarray(arr).reshape(-1)
        if sys.byteorder == "big" and data.dtype.itemsize > 1:
            data = data.byteswap()              # torch's archives here say "little"
        key = str(len(self.storages))
        self.storages.append(data)
        shape = tuple(arr.shape)
        strides, step = [], 1
        for n in reversed(shape):
            strides.append(step)
            step *= max(n, 1)
        if type(t) is Parameter:
            self._global("torch._utils", "_rebuild_parameter")
            self.out += b"("
        self._global("torch._utils", "_rebuild_tensor_v2")
        self.out += b"(("
        self._str("storage")
        self._global("torch", storage)
        self._str(key)
        self._str(str(t.device))
        self._int(int(data.size))
        self.out += b"tQ"
        self._int(0)
        self._tuple(shape, depth)
        self._tuple(tuple(reversed(strides)), depth)
        self.out += b"\x88" if (t.requires_grad and type(t) is not Parameter) else b"\x89"
        self._global("collections", "OrderedDict")
        self.out += b")Rt" + b"R"
        if type(t) is Parameter:
            self.out += b"\x88" if t.requires_grad else b"\x89"
            self._global("collections", "OrderedDict")
            self.out += b")RtR"
        self._put(t)


def torch_entries(obj, archive: str = "archive"):
    """[(entry name, bytes or array)] of torch.save's zip for `obj`, or None when `obj` holds something a
    weights-only torch.load could not read (then tensorlib's own format is written)."""
    w = TorchWriter()
    try:
        pkl = w.dumps(obj)
    except _NotTorchSaveable:
        return None
    return ([(f"{archive}/data.pkl", pkl), (f"{archive}/byteorder", b"little")]
            + [(f"{archive}/data/{i}", a) for i, a in enumerate(w.storages)]
            + [(f"{archive}/version", b"3\n"), (f"{archive}/.data/version", b"3\n")])
