"""torch.fft: the discrete Fourier transforms, composed as torch 2.13's SpectralOps.cpp composes them from the
three ops of tensorlib/ops/fft_ops.py (`_fft_r2c`, `_fft_c2r`, `_fft_c2c`, with torch's node names and backward
formulas), each function inside its torch-named profiler region (`fft_rfft`, ...).

torch's argument handling throughout: `n` / `s` pad the signal with zeros or trim it before the transform
(`s[i] == -1`: that dimension's size), `dim` wraps without the scalar rule (a 0-d tensor has no dim -1),
n-dimensional dims must be unique, `norm` is "backward" (the default: the inverse scales by 1/n), "forward"
(the forward scales) or "ortho" (both by 1/sqrt(n)). A real input of a complex transform is promoted to complex,
an integer or bool one to the default float dtype first; half precision is refused as on torch's CPU.
The transform of a real signal uses the real-to-complex op (a full spectrum for fft / ifft, a half one for
rfft / ihfft), the inverse of a half spectrum the complex-to-real op, as torch does.

Loaded on first use (`tensorlib.fft` as an attribute, `import tensorlib.fft`): the ops are registered with the
others, so `import tensorlib` pays nothing for this module.
"""
from __future__ import annotations

import numpy as np

from . import _dtype as D
from .dispatch import record_range
from .ops._define import write_out
from .ops.complex_ops import conj as _conj, conj_physical as _conj_physical
from .ops.creation import check_layout, sparse_layout_refusal, tensor as _tensor
from .ops.fft_ops import NORM_BY_N, NORM_BY_ROOT_N, NORM_NONE, fft_c2c, fft_c2r, fft_r2c
from .ops.nn_ops import pad as _pad
from .ops.shape import roll as _roll

__all__ = ["fft", "fft2", "fftfreq", "fftn", "fftshift", "hfft", "hfft2", "hfftn", "ifft", "ifft2", "ifftn",
           "ifftshift", "ihfft", "ihfft2", "ihfftn", "irfft", "irfft2", "irfftn", "rfft", "rfft2", "rfftfreq",
           "rfftn"]


# --- torch's argument handling (SpectralOps.cpp) -------------------------------------------------------------

def _norm(norm, forward):
    """torch's norm_from_string: the fft_norm_mode of `norm` in the direction `forward`."""
    if norm is None or norm == "backward":
        return NORM_NONE if forward else NORM_BY_N
    if norm == "forward":
        return NORM_BY_N if forward else NORM_NONE
    if norm == "ortho":
        return NORM_BY_ROOT_N
    raise RuntimeError(f'Invalid normalization mode: "{norm}"')


def _promote(x, require_complex=False):
    """torch's promote_tensor_fft: complex stays; integers (and bool) become the default float dtype; only
    float and double transform; complex when required."""
    dt = x._data.dtype
    if dt.kind == "c":
        return x
    t = D.to_dtype(dt) if dt.kind == "f" else D.get_default_dtype()
    if t.name not in ("float32", "float64"):
        raise RuntimeError(f"Unsupported dtype {D.scalar_name(t)}")
    if require_complex:
        t = t.to_complex()
    return x if t.np == dt else x.to(t)


def _wrap(d, ndim):
    """maybe_wrap_dim without wrap_scalar: a 0-d tensor has no dimension to transform."""
    d = int(d)
    if ndim == 0:
        raise IndexError(f"Dimension specified as {d} but tensor has no dimensions")
    if not -ndim <= d < ndim:
        raise IndexError(f"Dimension out of range (expected to be in range of [{-ndim}, {ndim - 1}], but got {d})")
    return d % ndim


def _check_n(n):
    if n < 1:
        raise RuntimeError(f"Invalid number of data points ({n}) specified")


def _resize(x, dims, sizes):
    """torch's resize_fft_input: trim each transformed dim to its size (a slice), zero-pad the short ones (one
    constant_pad_nd over all of them)."""
    amount = [0] * (2 * x.ndim)
    padded = False
    for d, n in zip(dims, sizes):
        if n == -1:
            continue
        if x.shape[d] < n:
            padded = True
            amount[len(amount) - 2 * d - 1] = n - x.shape[d]
        if x.shape[d] > n:
            x = x.narrow(d, 0, n)
    return _pad(x, amount) if padded else x


def _shape_and_dims(x, s, dim):
    """torch's canonicalize_fft_shape_and_dim_args: (sizes, dims) of an n-dimensional transform."""
    ndim = x.ndim
    if dim is not None:
        dims = [_wrap(d, ndim) for d in ([dim] if isinstance(dim, int) else dim)]
        if len(set(dims)) != len(dims):
            raise RuntimeError("FFT dims must be unique")
    if s is not None:
        s = [int(n) for n in ([s] if isinstance(s, int) else s)]
        if dim is not None and len(dims) != len(s):
            raise RuntimeError("When given, dim and shape arguments must have the same length")
        if len(s) > ndim:
            raise RuntimeError(f"Got shape with {len(s)} values but input tensor only has {ndim} dimensions.")
        if dim is None:
            dims = list(range(ndim - len(s), ndim))
        shape = [x.shape[d] if n == -1 else n for d, n in zip(dims, s)]
    elif dim is None:
        dims = list(range(ndim))
        shape = list(x.shape)
    else:
        shape = [x.shape[d] for d in dims]
    for n in shape:
        _check_n(n)
    return shape, dims


def _c2r_shape_and_dims(fname, x, s, dim):
    """torch's canonicalize_fft_c2r_shape_and_dim_args: (sizes, dims, last_dim_size), the last size the half
    spectrum's n // 2 + 1."""
    shape, dims = _shape_and_dims(x, s, dim)
    if not shape:
        raise RuntimeError(f"{fname} must transform at least one axis")
    if s is None or list(s)[-1] == -1:
        last = 2 * (x.shape[dims[-1]] - 1)
    else:
        last = shape[-1]
    _check_n(last)
    shape[-1] = last // 2 + 1
    return shape, dims, last


# --- the one-dimensional transforms ---------------------------------------------------------------------------

def _r2c(fname, x, n, dim, norm, forward, onesided):
    if x.is_complex():
        raise RuntimeError(f"{fname} expects a real input tensor, but got {D.scalar_name(x._data.dtype)}")
    x = _promote(x)
    d = _wrap(dim, x.ndim)
    size = x.shape[d] if n is None else int(n)
    _check_n(size)
    if n is not None:
        x = _resize(x, [d], [size])
    r = fft_r2c(x, (d,), _norm(norm, forward), onesided)
    return r if forward else _conj(r)     # the inverse of a real signal: the conjugate of the forward DFT


def _c2r(fname, x, n, dim, norm, forward):
    x = _promote(x, True)
    d = _wrap(dim, x.ndim)
    size = 2 * (x.shape[d] - 1) if n is None else int(n)
    _check_n(size)
    if n is not None:
        x = _resize(x, [d], [size // 2 + 1])
    mode = _norm(norm, forward)
    if forward:                 # hfft: the inverse transform of the conjugate
        x = _conj(x)
    return fft_c2r(x, (d,), mode, size)


def _c2c(fname, x, n, dim, norm, forward):
    d = _wrap(dim, x.ndim)
    size = x.shape[d] if n is None else int(n)
    _check_n(size)
    if n is not None:
        x = _resize(x, [d], [size])
    return fft_c2c(x, (d,), _norm(norm, forward), forward)


def _region(name, x, fn, *args, out=None):
    with record_range("fft_" + name, "op", (x,)):
        r = fn(*args)
    return r if out is None else write_out(r, out)


def fft(input, n=None, dim=-1, norm=None, *, out=None):
    """The one-dimensional DFT over `dim` (a real signal's full spectrum through the real-to-complex op)."""
    def f():
        if input.is_complex():
            return _c2c("fft", input, n, dim, norm, True)
        return _r2c("fft", input, n, dim, norm, True, False)
    return _region("fft", input, f, out=out)


def ifft(input, n=None, dim=-1, norm=None, *, out=None):
    """The one-dimensional inverse DFT over `dim`."""
    def f():
        if input.is_complex():
            return _c2c("ifft", input, n, dim, norm, False)
        return _r2c("ifft", input, n, dim, norm, False, False)
    return _region("ifft", input, f, out=out)


def rfft(input, n=None, dim=-1, norm=None, *, out=None):
    """A real signal's DFT, the n // 2 + 1 non-negative frequencies."""
    return _region("rfft", input, _r2c, "rfft", input, n, dim, norm, True, True, out=out)


def irfft(input, n=None, dim=-1, norm=None, *, out=None):
    """The inverse of rfft: n real points (2 * (size - 1) by default) from a half spectrum."""
    return _region("irfft", input, _c2r, "irfft", input, n, dim, norm, False, out=out)


def hfft(input, n=None, dim=-1, norm=None, *, out=None):
    """The DFT of a Hermitian signal given by its first half: n real points."""
    return _region("hfft", input, _c2r, "hfft", input, n, dim, norm, True, out=out)


def ihfft(input, n=None, dim=-1, norm=None, *, out=None):
    """The inverse of hfft: a real signal's inverse DFT, the n // 2 + 1 non-negative frequencies."""
    return _region("ihfft", input, _r2c, "ihfft", input, n, dim, norm, False, True, out=out)


# --- the n-dimensional transforms -----------------------------------------------------------------------------

def _fftn(x, s, dim, norm, forward):
    shape, dims = _shape_and_dims(x, s, dim)
    x = _promote(x, True)
    x = _resize(x, dims, shape)
    return fft_c2c(x, dims, _norm(norm, forward), forward)


def _rfftn(x, s, dim, norm):
    if x.is_complex():
        raise RuntimeError(f"rfftn expects a real-valued input tensor, but got {D.scalar_name(x._data.dtype)}")
    shape, dims = _shape_and_dims(x, s, dim)
    if not shape:
        raise RuntimeError("rfftn must transform at least one axis")
    x = _resize(_promote(x), dims, shape)
    return fft_r2c(x, dims, _norm(norm, True), True)


def _irfftn(x, s, dim, norm):
    shape, dims, last = _c2r_shape_and_dims("irfftn", x, s, dim)
    x = _resize(_promote(x, True), dims, shape)
    return fft_c2r(x, dims, _norm(norm, False), last)


def _hfftn(x, s, dim, norm):
    shape, dims, last = _c2r_shape_and_dims("hfftn", x, s, dim)
    x = _resize(_promote(x, True), dims, shape)
    mode = _norm(norm, True)
    if len(dims) > 1:
        x = fft_c2c(x, dims[:-1], mode, True)
    return fft_c2r(_conj(x), dims[-1:], mode, last)


def _ihfftn(x, s, dim, norm):
    shape, dims = _shape_and_dims(x, s, dim)
    if not shape:
        raise RuntimeError("ihfftn must transform at least one axis")
    if x.is_complex():
        raise RuntimeError(f"Only supports floating-point dtypes, but found: {D.scalar_name(x._data.dtype)}")
    x = _resize(_promote(x), dims, shape)
    mode = _norm(norm, False)
    r = fft_r2c(x, dims[-1:], mode, True)
    if len(dims) == 1:
        return _conj(r)
    return fft_c2c(_conj_physical(r), dims[:-1], mode, False)


def fftn(input, s=None, dim=None, norm=None, *, out=None):
    """The n-dimensional DFT over `dim` (every dim, or the last len(s)), sizes `s`."""
    return _region("fftn", input, _fftn, input, s, dim, norm, True, out=out)


def ifftn(input, s=None, dim=None, norm=None, *, out=None):
    return _region("ifftn", input, _fftn, input, s, dim, norm, False, out=out)


def rfftn(input, s=None, dim=None, norm=None, *, out=None):
    """A real signal's n-dimensional DFT, the last dim's non-negative frequencies only."""
    return _region("rfftn", input, _rfftn, input, s, dim, norm, out=out)


def irfftn(input, s=None, dim=None, norm=None, *, out=None):
    return _region("irfftn", input, _irfftn, input, s, dim, norm, out=out)


def hfftn(input, s=None, dim=None, norm=None, *, out=None):
    return _region("hfftn", input, _hfftn, input, s, dim, norm, out=out)


def ihfftn(input, s=None, dim=None, norm=None, *, out=None):
    return _region("ihfftn", input, _ihfftn, input, s, dim, norm, out=out)


def fft2(input, s=None, dim=(-2, -1), norm=None, *, out=None):
    """fftn over the last two dims by default."""
    return _region("fft2", input, _fftn, input, s, dim, norm, True, out=out)


def ifft2(input, s=None, dim=(-2, -1), norm=None, *, out=None):
    return _region("ifft2", input, _fftn, input, s, dim, norm, False, out=out)


def rfft2(input, s=None, dim=(-2, -1), norm=None, *, out=None):
    return _region("rfft2", input, _rfftn, input, s, dim, norm, out=out)


def irfft2(input, s=None, dim=(-2, -1), norm=None, *, out=None):
    return _region("irfft2", input, _irfftn, input, s, dim, norm, out=out)


def hfft2(input, s=None, dim=(-2, -1), norm=None, *, out=None):
    return _region("hfft2", input, _hfftn, input, s, dim, norm, out=out)


def ihfft2(input, s=None, dim=(-2, -1), norm=None, *, out=None):
    return _region("ihfft2", input, _ihfftn, input, s, dim, norm, out=out)


# --- frequencies and shifts -----------------------------------------------------------------------------------

def _freq_dtype(dtype):
    t = D.get_default_dtype() if dtype is None else D.to_dtype(dtype)
    if not (t.is_floating_point or t.is_complex):
        raise RuntimeError("fftfreq requires a floating point or complex dtype")
    if t.is_complex:
        raise NotImplementedError(f"\"arange_cpu\" not implemented for '{D.scalar_name(t)}'")
    return t


def _freq(name, values, n, d, out, dtype, device, requires_grad):
    if n < 0:
        raise RuntimeError(f"Trying to create tensor with negative dimension {n}: [{n}]")
    t = _freq_dtype(dtype if dtype is not None or out is None else out.dtype)
    with record_range("fft_" + name, "op", ()):
        with np.errstate(divide="ignore", invalid="ignore"):     # rfftfreq(0): [0] * inf, nan as torch's
            scale = t.np.type(np.float64(1.0) / np.float64(n * d))
            r = _tensor(values(n).astype(t.np) * scale, dtype=t, device=device)
    r = r if out is None else write_out(r, out)
    return r.requires_grad_() if requires_grad else r


def fftfreq(n, d=1.0, *, out=None, dtype=None, layout=None, device=None, requires_grad=False):
    """The sample frequencies of an n-point DFT with spacing d: [0, 1, ..., (n - 1) // 2, -(n // 2), ..., -1]
    / (n d)."""
    if layout is not None and check_layout(layout, "fftfreq"):
        raise sparse_layout_refusal("arange.start_out")
    return _freq("fftfreq", lambda n: np.concatenate([np.arange((n + 1) // 2), np.arange(-(n // 2), 0)]), n, d,
                 out, dtype, device, requires_grad)


def rfftfreq(n, d=1.0, *, out=None, dtype=None, layout=None, device=None, requires_grad=False):
    """The non-negative sample frequencies of rfft's n-point transform: [0, 1, ..., n // 2] / (n d)."""
    if layout is not None and check_layout(layout, "rfftfreq"):
        raise sparse_layout_refusal("arange.start_out")
    return _freq("rfftfreq", lambda n: np.arange(n // 2 + 1), n, d, out, dtype, device, requires_grad)


def _shift(name, input, dim, half):
    if dim is None:
        dims = list(range(input.ndim))
    else:
        dims = [_wrap(x, input.ndim) for x in ([dim] if isinstance(dim, int) else dim)]
    with record_range("fft_" + name, "op", (input,)):
        return _roll(input, [half(input.shape[x]) for x in dims], dims)


def fftshift(input, dim=None):
    """The zero frequency moved to the centre: a roll by size // 2 along each dim (every dim by default)."""
    return _shift("fftshift", input, dim, lambda n: n // 2)


def ifftshift(input, dim=None):
    """The inverse of fftshift: a roll by (size + 1) // 2."""
    return _shift("ifftshift", input, dim, lambda n: (n + 1) // 2)
