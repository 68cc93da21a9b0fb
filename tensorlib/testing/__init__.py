"""torch.testing: `assert_close`, the deprecated `assert_allclose`, and `make_tensor`, with torch 2.13's defaults,
tolerances and messages (torch/testing/_comparison.py and _creation.py, BSD-licensed, followed case for case:
nested sequences and mappings, None, bools, Python and NumPy numbers, tensor-likes; a failure names the item it
occurred in). The values are compared on the host, as NumPy arrays: a testing utility, not a training op, so
nothing here is dispatched or recorded."""
from __future__ import annotations

import cmath
import collections.abc
import contextlib
import math
import warnings
from typing import Any, Callable

import numpy as np

from .._tensor import Tensor

__all__ = ["assert_close", "assert_allclose", "make_tensor"]

# {NumPy dtype name: (rtol, atol)}, torch's _DTYPE_PRECISIONS; other dtypes compare exactly
_PRECISIONS = {"float16": (0.001, 1e-5), "bfloat16": (0.016, 1e-5), "float32": (1.3e-6, 1e-5),
               "float64": (1e-7, 1e-7), "complex64": (1.3e-6, 1e-5), "complex128": (1e-7, 1e-7)}
_ALLCLOSE_PRECISIONS = {"float16": (1e-3, 1e-3), "float32": (1e-4, 1e-5), "float64": (1e-5, 1e-8)}
# a Python number's dtype for the tolerances (torch's NumberPair._TYPE_TO_DTYPE)
_NUMBER_DTYPE = {int: "int64", float: "float64", complex: "complex128"}


class _ErrorMeta(Exception):
    """A failure's type and message, raised to the user by `to_error` with the item it happened in."""

    def __init__(self, type_: type[Exception], msg: str, *, id: tuple = ()):
        super().__init__(msg)
        self.type, self.msg, self.id = type_, msg, id

    def to_error(self, msg=None) -> Exception:
        if not isinstance(msg, str):
            generated = self.msg
            if self.id:
                generated += f"\n\nThe failure occurred for item {''.join(str([item]) for item in self.id)}"
            msg = msg(generated) if callable(msg) else generated
        return self.type(msg)


class _Unsupported(Exception):
    pass


def _tolerances(*dtype_names, rtol, atol, id=(), table=None):
    if (rtol is None) ^ (atol is None):
        raise _ErrorMeta(ValueError, f"Both 'rtol' and 'atol' must be either specified or omitted, "
                                     f"but got no {'rtol' if rtol is None else 'atol'}.", id=id)
    if rtol is not None:
        return rtol, atol
    table = table or _PRECISIONS
    rtols, atols = zip(*[table.get(d, (0.0, 0.0)) for d in dtype_names])
    return max(rtols), max(atols)


def _mismatch_msg(*, identifier, default, extra, abs_diff, abs_idx, atol, rel_diff, rel_idx, rtol) -> str:
    equality = rtol == 0 and atol == 0

    def diff_msg(kind, diff, idx, tol):
        if idx is None:
            msg = f"{kind.title()} difference: {diff}"
        else:
            msg = f"Greatest {kind} difference: {diff} at index {idx}"
        if not equality:
            msg += f" (up to {tol} allowed)"
        return msg + "\n"
    if identifier is None:
        identifier = default
    elif callable(identifier):
        identifier = identifier(default)
    msg = f"{identifier} are not {'equal' if equality else 'close'}!\n\n"
    if extra:
        msg += f"{extra.strip()}\n"
    msg += diff_msg("absolute", abs_diff, abs_idx, atol)
    msg += diff_msg("relative", rel_diff, rel_idx, rtol)
    return msg.strip()


def _scalar_msg(actual, expected, *, rtol, atol, identifier=None) -> str:
    abs_diff = abs(actual - expected)
    rel_diff = float("inf") if expected == 0 else abs_diff / abs(expected)
    return _mismatch_msg(identifier=identifier, default="Scalars", extra=f"Expected {expected} but got {actual}.",
                         abs_diff=abs_diff, abs_idx=None, atol=atol, rel_diff=rel_diff, rel_idx=None, rtol=rtol)


def _tensor_msg(actual: np.ndarray, expected: np.ndarray, matches: np.ndarray, *, rtol, atol, identifier=None) -> str:
    n = matches.size
    mismatches = n - int(matches.sum())
    extra = f"Mismatched elements: {mismatches} / {n} ({mismatches / n:.1%})"
    a, e, m = actual.ravel(), expected.ravel(), matches.ravel()
    kind = a.dtype.kind
    if kind not in "fc":
        a, e = a.astype(np.int64), e.astype(np.int64)
    with np.errstate(all="ignore"):
        abs_diff = np.abs(a - e)
        abs_diff[m] = 0
        # torch divides in the difference's dtype (an integer one's true division: the default float32)
        rel_diff = (abs_diff / np.abs(e)) if kind in "fc" else \
            abs_diff.astype(np.float32) / np.abs(e).astype(np.float32)
        rel_diff[m] = 0

    def where(k):
        return tuple(int(i) for i in np.unravel_index(k, matches.shape)) if matches.shape else ()
    ia, ir = _argmax(abs_diff), _argmax(rel_diff)
    return _mismatch_msg(identifier=identifier, default="Tensor-likes", extra=extra,
                         abs_diff=abs_diff[ia].item(), abs_idx=where(ia), atol=atol,
                         rel_diff=rel_diff[ir].item(), rel_idx=where(ir), rtol=rtol)


def _argmax(a: np.ndarray) -> int:
    """torch.max(a, 0)'s index: the first maximum, or the first NaN (which torch's max propagates)."""
    if a.dtype.kind in "fc":
        nan = np.flatnonzero(np.isnan(a))
        if len(nan):
            return int(nan[0])
    return int(np.argmax(a))


class _Pair:
    def __init__(self, actual, expected, *, id=(), msg=None, **_):
        self.actual, self.expected, self.id = actual, expected, id

    @staticmethod
    def _require(*inputs, cls):
        if not all(isinstance(i, cls) for i in inputs):
            raise _Unsupported()

    def _fail(self, type_, msg):
        raise _ErrorMeta(type_, msg, id=self.id)


class _NonePair(_Pair):
    def __init__(self, actual, expected, **other):
        if not (actual is None or expected is None):
            raise _Unsupported()
        super().__init__(actual, expected, **other)

    def compare(self):
        if not (self.actual is None and self.expected is None):
            self._fail(AssertionError, f"None mismatch: {self.actual} is not {self.expected}")


class _BooleanPair(_Pair):
    def __init__(self, actual, expected, *, id=(), **other):
        self._require(actual, expected, cls=(bool, np.bool_))
        super().__init__(bool(actual), bool(expected), id=id, **other)

    def compare(self):
        if self.actual is not self.expected:
            self._fail(AssertionError, f"Booleans mismatch: {self.actual} is not {self.expected}")


class _NumberPair(_Pair):
    def __init__(self, actual, expected, *, id=(), rtol=None, atol=None, equal_nan=False, check_dtype=False,
                 **other):
        self._require(actual, expected, cls=(int, float, complex, np.number))
        actual, expected = (x.item() if isinstance(x, np.number) else x for x in (actual, expected))
        super().__init__(actual, expected, id=id, **other)
        self.rtol, self.atol = _tolerances(*[_NUMBER_DTYPE[type(x)] for x in (actual, expected)],
                                           rtol=rtol, atol=atol, id=id)
        self.equal_nan, self.check_dtype = equal_nan, check_dtype

    def compare(self):
        a, e = self.actual, self.expected
        if self.check_dtype and type(a) is not type(e):
            self._fail(AssertionError, f"The (d)types do not match: {type(a)} != {type(e)}.")
        if a == e or (self.equal_nan and cmath.isnan(a) and cmath.isnan(e)):
            return
        abs_diff = abs(a - e)
        if cmath.isfinite(abs_diff) and abs_diff <= self.atol + self.rtol * abs(e):
            return
        self._fail(AssertionError, _scalar_msg(a, e, rtol=self.rtol, atol=self.atol))


class _TensorLikePair(_Pair):
    """Two tensorlib tensors, or two NumPy arrays (torch.as_tensor's inputs): types directly related, as torch's."""

    def __init__(self, actual, expected, *, id=(), allow_subclasses=True, rtol=None, atol=None, equal_nan=False,
                 check_device=True, check_dtype=True, check_layout=True, check_stride=False, **other):
        if not (isinstance(actual, type(expected)) or isinstance(expected, type(actual))):
            raise _Unsupported()
        if not allow_subclasses and type(actual) is not type(expected):
            raise _Unsupported()
        actual, expected = (self._to_tensor(x) for x in (actual, expected))
        super().__init__(actual, expected, id=id, **other)
        self.rtol, self.atol = _tolerances(actual._data.dtype.name, expected._data.dtype.name, rtol=rtol, atol=atol,
                                           id=id)
        self.equal_nan, self.check_device, self.check_dtype = equal_nan, check_device, check_dtype
        self.check_stride = check_stride

    @staticmethod
    def _to_tensor(x) -> Tensor:
        if isinstance(x, Tensor):
            return x
        from ..ops.creation import as_tensor
        try:
            return as_tensor(x)
        except Exception:       # noqa: BLE001  (torch's rule: anything as_tensor refuses is not a tensor-like)
            raise _Unsupported() from None

    def compare(self):
        a, e = self.actual, self.expected

        def mismatch(attribute, av, ev):
            self._fail(AssertionError, f"The values for attribute '{attribute}' do not match: {av} != {ev}.")
        if a.shape != e.shape:
            mismatch("shape", a.shape, e.shape)
        if self.check_stride and a.stride() != e.stride():
            mismatch("stride()", a.stride(), e.stride())
        if self.check_device and a.device != e.device:
            mismatch("device", a.device, e.device)
        if self.check_dtype and a.dtype != e.dtype:
            mismatch("dtype", a.dtype, e.dtype)
        av, ev = _host(a), _host(e)
        if av.dtype != ev.dtype:
            common = np.promote_types(av.dtype, ev.dtype)
            av, ev = av.astype(common), ev.astype(common)
        matches = _isclose(av, ev, self.rtol, self.atol, self.equal_nan)
        if matches.all():
            return
        if av.shape == ():
            self._fail(AssertionError, _scalar_msg(av.item(), ev.item(), rtol=self.rtol, atol=self.atol))
        self._fail(AssertionError, _tensor_msg(av, ev, matches, rtol=self.rtol, atol=self.atol))


def _host(t: Tensor) -> np.ndarray:
    d = t._data
    return d if isinstance(d, np.ndarray) else d.get()


def _isclose(a: np.ndarray, e: np.ndarray, rtol, atol, equal_nan) -> np.ndarray:
    """torch.isclose: equal (infinities of one sign included), or finite and |a - e| <= atol + rtol |e|."""
    if a.dtype.kind == "b" or (rtol == 0 and atol == 0):
        eq = a == e
        return eq | (np.isnan(a) & np.isnan(e)) if equal_nan and a.dtype.kind in "fc" else eq
    if a.dtype.kind not in "fc":
        a, e = a.astype(np.float64), e.astype(np.float64)
    with np.errstate(all="ignore"):
        close = (a == e) | (np.isfinite(a) & np.isfinite(e) & (np.abs(a - e) <= atol + rtol * np.abs(e)))
    if equal_nan:
        close |= np.isnan(a) & np.isnan(e)
    return close


def _originate(actual, expected, *, id=(), **options) -> list:
    seq, mapping = collections.abc.Sequence, collections.abc.Mapping
    if isinstance(actual, seq) and not isinstance(actual, str) and isinstance(expected, seq) \
            and not isinstance(expected, str):
        if len(actual) != len(expected):
            raise _ErrorMeta(AssertionError,
                             f"The length of the sequences mismatch: {len(actual)} != {len(expected)}", id=id)
        pairs = []
        for i in range(len(actual)):
            pairs.extend(_originate(actual[i], expected[i], id=(*id, i), **options))
        return pairs
    if isinstance(actual, mapping) and isinstance(expected, mapping):
        ak, ek = set(actual.keys()), set(expected.keys())
        if ak != ek:
            raise _ErrorMeta(AssertionError, f"The keys of the mappings do not match:\n"
                                             f"Missing keys in the actual mapping: {sorted(ek - ak)}\n"
                                             f"Additional keys in the actual mapping: {sorted(ak - ek)}", id=id)
        keys: Any = ak
        with contextlib.suppress(Exception):
            keys = sorted(keys)
        pairs = []
        for k in keys:
            pairs.extend(_originate(actual[k], expected[k], id=(*id, k), **options))
        return pairs
    for pair_type in (_NonePair, _BooleanPair, _NumberPair, _TensorLikePair):
        try:
            return [pair_type(actual, expected, id=id, **options)]
        except _Unsupported:
            continue
    raise _ErrorMeta(TypeError, f"No comparison pair was able to handle inputs of type {type(actual)} "
                                f"and {type(expected)}.", id=id)


def assert_close(actual: Any, expected: Any, *, allow_subclasses: bool = True, rtol: float | None = None,
                 atol: float | None = None, equal_nan: bool = False, check_device: bool = True,
                 check_dtype: bool = True, check_layout: bool = True, check_stride: bool = False,
                 msg: str | Callable[[str], str] | None = None) -> None:
    """torch.testing.assert_close: `actual` and `expected` (tensors, arrays, numbers, None, or sequences and
    mappings of them) are close: |actual - expected| <= atol + rtol * |expected| elementwise, after equal shapes
    (and devices, dtypes unless check_device/check_dtype=False); rtol/atol default by dtype as torch's table
    (float32 1.3e-6 / 1e-5, float64 1e-7 / 1e-7, float16 1e-3 / 1e-5, integers exactly)."""
    __tracebackhide__ = True
    try:
        pairs = _originate(actual, expected, allow_subclasses=allow_subclasses, rtol=rtol, atol=atol,
                           equal_nan=equal_nan, check_device=check_device, check_dtype=check_dtype,
                           check_layout=check_layout, check_stride=check_stride, msg=msg)
    except _ErrorMeta as meta:
        raise meta.to_error() from None
    for pair in pairs:
        try:
            pair.compare()
        except _ErrorMeta as meta:
            raise meta.to_error(msg) from None


def assert_allclose(actual: Any, expected: Any, rtol: float | None = None, atol: float | None = None,
                    equal_nan: bool = True, msg: str = "") -> None:
    """torch.testing.assert_allclose (deprecated since 1.12, torch's FutureWarning): assert_close with its older
    tolerances and equal_nan=True, dtypes not checked."""
    warnings.warn("`torch.testing.assert_allclose()` is deprecated since 1.12 and will be removed in a future "
                  "release. Please use `torch.testing.assert_close()` instead. You can find detailed upgrade "
                  "instructions in https://github.com/pytorch/pytorch/issues/61844.", FutureWarning, stacklevel=2)
    from ..ops.creation import tensor
    if not isinstance(actual, Tensor):
        actual = tensor(actual)
    if not isinstance(expected, Tensor):
        expected = tensor(expected, dtype=actual.dtype)
    if rtol is None and atol is None:
        rtol, atol = _tolerances(actual._data.dtype.name, expected._data.dtype.name, rtol=None, atol=None,
                                 table=_ALLCLOSE_PRECISIONS)
    assert_close(actual, expected, rtol=rtol, atol=atol, equal_nan=equal_nan, check_device=True,
                 check_dtype=False, check_stride=False, msg=msg or None)


def make_tensor(*shape, dtype, device, low: float | None = None, high: float | None = None,
                requires_grad: bool = False, noncontiguous: bool = False, exclude_zero: bool = False,
                memory_format=None) -> Tensor:
    """torch.testing.make_tensor: values drawn uniformly from [low, high) (defaults -9 and 9, integers [-9, 10),
    bool {0, 1}), clamped to the dtype's range, from tensorlib's generator; noncontiguous: every other element of
    a doubled last dimension; exclude_zero: zeros replaced by 1 (integers) or the dtype's tiny."""
    import tensorlib as tl
    dt = tl._dtype.to_dtype(dtype) if not isinstance(dtype, tl.dtype) else dtype
    kind = np.dtype(dt.np).kind

    def low_high(lo, hi, lowest, highest, default_low, default_high):
        lo = default_low if lo is None else lo
        hi = default_high if hi is None else hi
        if any(isinstance(v, float) and math.isnan(v) for v in (lo, hi)):
            raise ValueError(f"`low` and `high` cannot be NaN, but got low={lo} and high={hi}")
        if lo == hi and kind in "fc":
            warnings.warn("Passing `low==high` to `torch.testing.make_tensor` for floating or complex types is "
                          "deprecated since 2.1 and will be removed in 2.3. Use `torch.full(...)` instead.",
                          FutureWarning, stacklevel=3)
        elif lo >= hi:
            raise ValueError(f"`low` must be less than `high`, but got {lo} >= {hi}")
        elif hi < lowest or lo >= highest:
            raise ValueError(f"The value interval specified by `low` and `high` is [{lo}, {hi}), "
                             f"but {dt} only supports [{lowest}, {highest})")
        lo, hi = min(max(lo, lowest), highest), min(max(hi, lowest), highest)
        return (math.ceil(lo), math.ceil(hi)) if kind in "biu" else (lo, hi)

    if len(shape) == 1 and isinstance(shape[0], collections.abc.Sequence):
        shape = tuple(shape[0])
    shape = tuple(shape)
    if noncontiguous and memory_format is not None:
        raise ValueError(f"The parameters `noncontiguous` and `memory_format` are mutually exclusive, but got "
                         f"noncontiguous={noncontiguous} and memory_format={memory_format}")
    if requires_grad and kind in "biu":
        raise ValueError(f"`requires_grad=True` is not supported for boolean and integral dtypes, but got dtype={dt}")
    noncontiguous = noncontiguous and math.prod(shape) > 1
    if noncontiguous:
        shape = (*shape[:-1], 2 * shape[-1])
    if kind == "b":
        lo, hi = low_high(low, high, 0, 2, 0, 2)
        result = tl.randint(lo, hi, shape, device=device, dtype=dt)
    elif kind in "iu":
        ii = np.iinfo(dt.np)
        lo, hi = low_high(low, high, int(ii.min), int(ii.max) + (1 if ii.bits < 64 else 0), -9, 10)
        result = tl.randint(lo, hi, shape, device=device, dtype=dt)
    elif kind in "fcV":
        fi = tl.finfo(dt)
        lo, hi = low_high(low, high, fi.min, fi.max, -9, 9)
        result = tl.empty(shape, device=device, dtype=dt)
        with tl.no_grad():
            if hi - lo >= fi.max:
                result.uniform_(lo / 2, hi / 2).mul_(2)
            else:
                result.uniform_(lo, hi)
    else:
        raise TypeError(f"The requested dtype '{dt}' is not supported by torch.testing.make_tensor(). To request "
                        "support, file an issue at: https://github.com/pytorch/pytorch/issues")
    if noncontiguous:
        result = result[..., 1::2]
    elif memory_format is not None:
        result = result.clone(memory_format=memory_format)
    if exclude_zero:
        with tl.no_grad():
            result[result == 0] = 1 if kind in "biu" else tl.finfo(dt).tiny
    if kind not in "biu":
        result.requires_grad = requires_grad
    return result
