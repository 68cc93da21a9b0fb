"""torch-style dtype objects over NumPy dtypes, and torch's type-promotion rules.

NumPy's promotion differs from torch's in the cases users notice (int32 + float16 is float16 in torch,
float64 in NumPy; a 0-dim tensor does not widen a dimensioned one), so promotion is decided here and the
kernels only ever see operands that already agree.
"""
from __future__ import annotations

import sys

import numpy as np


class dtype:
    __slots__ = ("name", "np", "is_floating_point", "is_complex", "is_signed", "itemsize", "_category")

    def __init__(self, name, np_dtype, category, itemsize=None):
        self.name = name
        if np_dtype is not None:        # (bfloat16's is its class's property)
            self.np = np.dtype(np_dtype)
        self.is_floating_point = category == 2
        self.is_complex = category == 3
        self.is_signed = category >= 2 or self.np.kind == "i"
        self.itemsize = itemsize or self.np.itemsize
        self._category = category  # 0 bool, 1 integer, 2 floating, 3 complex

    def __repr__(self):
        return f"{_NAMESPACE[0]}.{self.name}"

    def to_real(self):
        """torch's dtype.to_real(): a complex dtype's real counterpart (complex64 -> float32), else itself."""
        return _TO_REAL.get(self.name, self)

    def to_complex(self):
        """torch's dtype.to_complex(): float32 (and the half types) -> complex64, float64 -> complex128."""
        if self._category == 3:
            return self
        if self._category != 2:
            raise RuntimeError(f"Unknown Complex ScalarType for {_SCALAR_NAMES[self.name]}")
        return complex128 if self.name == "float64" else complex64

    def __reduce__(self):
        return (_by_name, (self.name,))


_NAMESPACE = ["tensorlib"]


def namespace() -> str:
    """The module name reprs use ("tensorlib.float32", "tensorlib.Size([2])"): "torch" while tensorlib.compat
    runs a PyTorch program (which calls tensorlib `torch`), so its output reads as under torch."""
    return _NAMESPACE[0]


def set_namespace(name: str) -> None:
    _NAMESPACE[0] = name


bool_ = dtype("bool", np.bool_, 0)
uint8 = dtype("uint8", np.uint8, 1)
int8 = dtype("int8", np.int8, 1)
int16 = dtype("int16", np.int16, 1)
int32 = dtype("int32", np.int32, 1)
int64 = dtype("int64", np.int64, 1)
float16 = dtype("float16", np.float16, 2)
float32 = dtype("float32", np.float32, 2)
float64 = dtype("float64", np.float64, 2)
# complex: NumPy's complex64/complex128 (torch's cfloat/cdouble). torch's complex32 (chalf) has no NumPy dtype.
complex64 = dtype("complex64", np.complex64, 3)
complex128 = dtype("complex128", np.complex128, 3)
_TO_REAL = {"complex64": float32, "complex128": float64}


# --- bfloat16: NumPy's from ml_dtypes (CPU only), imported on first use ----------------------------
# ml_dtypes 0.7's import registers its ufunc loops and promoters in about 0.7 s here (NumPy 2.4; 0.6's: 4 ms),
# most of `import tensorlib`, which no program without bfloat16 needs. Until then no array can be bfloat16
# (only ml_dtypes makes one), so BF16, which the kernels compare dtypes with, is a dtype no array of tensorlib's
# has; _load_bfloat16 rebinds it, adds it to FLOAT_NP and _FROM_NP. Read both as `_dtype.BF16`/`FLOAT_NP`.
BF16 = np.dtype([("bfloat16 (ml_dtypes not imported yet)", "<u2")])
FLOAT_NP = {np.dtype(np.float16), np.dtype(np.float32), np.dtype(np.float64)}  # the floating dtypes' (+bfloat16)


def _load_bfloat16():
    global BF16
    if BF16.names is None:
        return BF16
    import ml_dtypes
    bf16 = np.dtype(ml_dtypes.bfloat16)
    FLOAT_NP.add(bf16)
    _FROM_NP[bf16] = bfloat16
    BF16 = bf16
    return bf16


class _BFloat16(dtype):
    __slots__ = ()

    @property
    def np(self):
        return BF16 if BF16.names is None else _load_bfloat16()


bfloat16 = _BFloat16("bfloat16", None, 2, itemsize=2)
BF16_ON_CUDA = ("tensorlib.bfloat16 tensors are CPU-only: CuPy has no bfloat16 dtype. On CUDA use float16 "
                "(autocast(device_type='cuda', dtype=tensorlib.float16)) or float32")

ALL = (bool_, uint8, int8, int16, int32, int64, float16, float32, float64, complex64, complex128, bfloat16)
_FROM_NP = {d.np: d for d in ALL[:-1]}      # and bfloat16's once loaded
_BY_NAME = {d.name: d for d in ALL}
_ALIASES = {"half": float16, "float": float32, "double": float64, "short": int16, "int": int32,
            "long": int64, "bool": bool_, "cfloat": complex64, "cdouble": complex128}

_default_float = float32


if "ml_dtypes" in sys.modules:       # imported already (by JAX, ONNX...): nothing to save
    _load_bfloat16()


def kind(np_dtype) -> str:
    """NumPy's dtype kind, but "f" for bfloat16 (ml_dtypes' is "V"): the test of a floating array's dtype that
    holds for all four floating dtypes."""
    k = np_dtype.kind
    return "f" if k == "V" and np_dtype == BF16 else k


def _by_name(name):
    return _BY_NAME[name]


_SCALAR_NAMES = {"bool": "Bool", "uint8": "Byte", "int8": "Char", "int16": "Short", "int32": "Int", "int64": "Long",
                 "float16": "Half", "float32": "Float", "float64": "Double", "bfloat16": "BFloat16",
                 "complex64": "ComplexFloat", "complex128": "ComplexDouble"}


# torch's C++ type names, as its messages print them ("expected m1 and m2 to have the same dtype, but got: float !=
# double", "value cannot be converted to type float without overflow")
C_NAMES = {"float32": "float", "float64": "double", "float16": "c10::Half", "bfloat16": "c10::BFloat16",
           "int64": "long int", "int32": "int", "int16": "short int", "int8": "signed char", "uint8": "unsigned char",
           "bool": "bool", "complex64": "c10::complex<float>", "complex128": "c10::complex<double>"}


def scalar_name(d) -> str:
    """torch's ScalarType name, as its error messages print it (Long, Float, ...)."""
    return _SCALAR_NAMES[to_dtype(d).name]


def from_np(np_dtype) -> dtype:
    try:
        return _FROM_NP[np_dtype]
    except KeyError:
        if known_np(np_dtype):
            return _FROM_NP[np_dtype]
        raise TypeError(f"tensorlib has no dtype for NumPy dtype {np_dtype}; supported: "
                        + ", ".join(d.name for d in ALL)) from None


def known_np(np_dtype) -> bool:
    """Whether tensors hold this NumPy dtype: bfloat16's too where another library imported ml_dtypes and made
    the array before tensorlib needed bfloat16."""
    if np_dtype in _FROM_NP:
        return True
    if "ml_dtypes" in sys.modules and BF16.names is not None:
        _load_bfloat16()
        return np_dtype in _FROM_NP
    return False


def to_dtype(d) -> dtype:
    """Accept a tensorlib dtype, a NumPy dtype, a Python type or a name; return a tensorlib dtype."""
    if isinstance(d, dtype):
        return d
    if d is float:
        return float64
    if d is int:
        return int64
    if d is bool:
        return bool_
    if d is complex:
        return complex128
    if isinstance(d, str):
        name = d.split(".")[-1]
        if name in _BY_NAME:
            return _BY_NAME[name]
        if name in _ALIASES:
            return _ALIASES[name]
    try:
        return from_np(np.dtype(d))
    except TypeError:
        raise
    except ValueError:  # np.dtype's other refusal (bad shapes, offsets, repeated fields)
        raise TypeError(f"cannot interpret {d!r} as a tensorlib dtype") from None


def get_default_dtype() -> dtype:
    return _default_float


def default_complex() -> dtype:
    """The complex dtype of a Python complex number: complex128 when the default dtype is float64, else
    complex64 (torch's)."""
    return complex128 if _default_float is float64 else complex64


def set_default_dtype(d):
    global _default_float
    d = to_dtype(d)
    if not d.is_floating_point:
        raise TypeError(f"only floating-point types are supported as the default type, got {d}")
    _default_float = d


# --- promotion -----------------------------------------------------------------------------------

def _lattice(a: dtype, b: dtype) -> dtype:
    """torch.promote_types for two dimensioned operands."""
    if a is b:
        return a
    if a._category != b._category:
        hi, lo = (a, b) if a._category > b._category else (b, a)
        if hi._category == 3 and lo is float64:      # torch: complex64 with float64 is complex128
            return complex128
        return hi
    if a is bfloat16 or b is bfloat16:          # torch: bfloat16 with float16 is float32
        other = b if a is bfloat16 else a
        return float32 if other is float16 else other
    return from_np(np.promote_types(a.np, b.np))


promote_types = _lattice

_result_cache: dict = {}


def result_type(a: dtype, a0: bool, b: dtype, b0: bool) -> dtype:
    """Result dtype of a binary op between two tensors; a0/b0 say whether each is 0-dim.

    torch: a 0-dim tensor only decides the result when it is of a higher category than every
    dimensioned operand (float 0-dim + int tensor -> default-ish float of the 0-dim's dtype)."""
    key = (a, a0, b, b0)
    r = _result_cache.get(key)
    if r is None:
        if a0 == b0:
            r = _lattice(a, b)
        else:
            dim, zero = (b, a) if a0 else (a, b)
            if zero._category == 3 and dim._category == 2:     # torch: the dimensioned float's precision
                r = dim.to_complex()
            else:
                r = zero if zero._category > dim._category else dim
        _result_cache[key] = r
    return r


def _combine(higher, lower):
    """torch's combine_categories: a higher-priority class's result (dimensioned over 0-dim) against a lower's,
    which decides only where its category is higher (a complex lower keeps a floating higher's precision)."""
    if higher is None:
        return lower
    if lower is None or higher._category == 3:
        return higher
    if lower._category == 3:
        return higher.to_complex() if higher._category == 2 else lower
    if higher._category == 2:
        return higher
    if higher is bool_ or lower._category == 2:
        return _lattice(higher, lower)
    return higher


def result_type_many(operands) -> dtype:
    """torch.result_type over several tensors, given as (dtype, is_0dim) pairs: the dimensioned operands' lattice
    type, then the 0-dim ones' where their category is higher (torch's ResultTypeState; result_type above is its
    two-operand case). Folding result_type pairwise is not it: int32 (T) with float64 (0-d) and float16 (T) is
    float16, where the fold gives float64."""
    dim = zero = None
    for d, z in operands:
        if z:
            zero = d if zero is None else _lattice(zero, d)
        else:
            dim = d if dim is None else _lattice(dim, d)
    return _combine(dim, zero)


def scalar_result(t: dtype, s) -> dtype:
    """Result dtype of tensor (op) Python scalar, per torch: a scalar only lifts the category."""
    if type(s) is bool or isinstance(s, np.bool_):
        return t
    if isinstance(s, (int, np.integer)):
        return int64 if t._category == 0 else t
    if isinstance(s, (float, np.floating)):
        return t if t._category >= 2 else _default_float
    if isinstance(s, (complex, np.complexfloating)):     # a complex scalar: the tensor's precision, made complex
        return t if t._category == 3 else t.to_complex() if t._category == 2 else default_complex()
    raise TypeError(f"unsupported scalar type {type(s).__name__}")


class finfo:
    """torch.finfo: the limits of a floating dtype (default: the default dtype): bits, eps, max, min, tiny
    (= smallest_normal), resolution, dtype (its name)."""

    def __init__(self, type=None):
        d = _default_float if type is None else type
        if isinstance(d, dtype) and d.is_complex:      # torch: a complex dtype's limits are its real part's
            d = d.to_real()
        if not isinstance(d, dtype) or not d.is_floating_point:
            raise TypeError("torch.finfo() requires a floating point input type. Use torch.iinfo to handle "
                            "'torch.finfo'")
        if d is bfloat16:
            import ml_dtypes
            f = ml_dtypes.finfo(d.np)
        else:
            f = np.finfo(d.np)
        self.bits, self.dtype = int(f.bits), d.name
        self.eps, self.max, self.min = float(f.eps), float(f.max), float(f.min)
        self.tiny = self.smallest_normal = float(f.smallest_normal)
        self.resolution = 10.0 ** -int(f.precision)

    def __repr__(self):
        return (f"finfo(resolution={self.resolution}, min={self.min:g}, max={self.max:g}, eps={self.eps:g}, "
                f"smallest_normal={self.smallest_normal:g}, tiny={self.tiny:g}, dtype={self.dtype})")


class iinfo:
    """torch.iinfo: bits, max, min and dtype (its name) of an integer dtype."""

    def __init__(self, type):
        if not isinstance(type, dtype) or type.is_floating_point or type is bool_:
            raise TypeError("torch.iinfo() requires an integer input type. Use torch.finfo to handle "
                            "'torch.iinfo'")
        i = np.iinfo(type.np)
        self.bits, self.max, self.min, self.dtype = int(i.bits), int(i.max), int(i.min), type.name

    def __repr__(self):
        return f"iinfo(min={self.min:g}, max={self.max:g}, dtype={self.dtype})"
