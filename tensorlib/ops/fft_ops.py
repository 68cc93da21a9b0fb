"""The discrete Fourier transforms under torch's aten names: `_fft_r2c`, `_fft_c2r` and `_fft_c2c`, every
torch.fft function (tensorlib/fft.py) and torch.stft / torch.istft (here) composing them as torch does.

Kernels: numpy.fft on the CPU, cupy.fft on a GPU, over the axes `dim` (normalized, non-negative). `normalization`
is torch's fft_norm_mode (0: none, 1: 1/sqrt(n), 2: 1/n, n the product of the transformed sizes); c2r is always
the inverse (e^{+i}) transform. NumPy's pocketfft keeps single precision, but the result is cast to the dtype
torch gives (complex64 from float32 / complex64) so another NumPy cannot change it.

Backward formulas are torch's, written for complex gradients (OpDef.complex_formula): c2c's is the c2c of the
other direction with the same normalization (the adjoint of the DFT matrix); r2c's is the real part of the
inverse c2c of the gradient zero-filled to the full length (FunctionsManual.cpp fft_r2c_backward); c2r's is the
onesided r2c of the gradient with the bins whose mirror image lies outside the half spectrum doubled
(fft_c2r_backward).
"""
from __future__ import annotations

import warnings

from .. import _dtype as D
from .complex_ops import real as _real, view_as_real
from .broadcast import norm_dims
from .creation import ones, tensor
from .more_ops import UNFOLD_BACKWARD
from .nn_ops import pad as _pad
from ._define import dispatch, np, op, public
from ..dispatch import record_range

__all__ = ["stft", "istft"]

NORM_NONE, NORM_BY_ROOT_N, NORM_BY_N = 0, 1, 2


def _np_norm(normalization, forward):
    """NumPy's (and CuPy's) `norm=` for torch's fft_norm_mode in the direction `forward`."""
    if normalization == NORM_BY_ROOT_N:
        return "ortho"
    scaled = normalization == NORM_BY_N
    if forward:
        return "forward" if scaled else "backward"
    return "backward" if scaled else "forward"


def _complex_of(dt):
    return np.complex128 if dt in (np.float64, np.complex128) else np.complex64


def _real_of(dt):
    return np.float64 if dt in (np.float64, np.complex128) else np.float32


def _fft_op(name, node):
    def deco(kernel):
        o = op(name, node_name=node)(kernel)
        o.complex_formula = True        # the formulas below take torch's complex gradients as they are
        return o
    return deco


@_fft_op("_fft_c2c", "FftC2CBackward0")
def FFT_C2C(xp, a, dim=(), normalization=0, forward=True):
    """The complex-to-complex DFT over `dim` (e^{-i} forward, e^{+i} not)."""
    if not dim:
        return a.copy()
    f = xp.fft.fftn if forward else xp.fft.ifftn
    return f(a, axes=list(dim), norm=_np_norm(normalization, forward)).astype(a.dtype, copy=False)


@FFT_C2C.def_backward
def _(ctx, g):
    at = ctx.attrs
    return (fft_c2c(g, at["dim"], at["normalization"], not at["forward"]),)


@_fft_op("_fft_r2c", "FftR2CBackward0")
def FFT_R2C(xp, a, dim=(), normalization=0, onesided=True):
    """A real signal's forward DFT over `dim`; onesided: the last dim's first n // 2 + 1 bins only."""
    if a.dtype.kind not in "f":
        raise RuntimeError(f"_fft_r2c expects a real input tensor, but got {D.scalar_name(a.dtype)}")
    norm = _np_norm(normalization, True)
    if onesided:
        r = xp.fft.rfftn(a, axes=list(dim), norm=norm)
    else:
        r = xp.fft.fftn(a, axes=list(dim), norm=norm)
    return r.astype(_complex_of(a.dtype), copy=False)


@FFT_R2C.def_backward
def _(ctx, g):
    at = ctx.attrs
    dim, norm = at["dim"], at["normalization"]
    if at.get("onesided", True):
        last = dim[-1]
        missing = ctx.in_meta[0][0][last] - g.shape[last]
        if missing > 0:         # the half spectrum's gradient, zero-filled to the full one
            g = _pad(g, [0, 0] * (g.ndim - 1 - last) + [0, missing])
    return (_real(fft_c2c(g, dim, norm, False)),)


@_fft_op("_fft_c2r", "FftC2RBackward0")
def FFT_C2R(xp, a, dim=(), normalization=0, last_dim_size=1):
    """The inverse DFT of a Hermitian half spectrum over `dim` (the last dim holds last_dim_size // 2 + 1
    bins), real, with last_dim_size points along the last dim."""
    if a.dtype.kind != "c":
        raise RuntimeError(f"_fft_c2r expects a complex input tensor, but got {D.scalar_name(a.dtype)}")
    s = [a.shape[d] for d in dim[:-1]] + [last_dim_size]
    r = xp.fft.irfftn(a, s=s, axes=list(dim), norm=_np_norm(normalization, False))
    return r.astype(_real_of(a.dtype), copy=False)


@FFT_C2R.def_backward
def _(ctx, g):
    at = ctx.attrs
    dim = at["dim"]
    gi = fft_r2c(g, dim, at["normalization"], True)
    last = dim[-1]
    double = g.shape[last] - gi.shape[last]
    if double > 0:          # bins whose mirror image the half spectrum leaves out count twice
        w = np.ones(gi.shape[last], dtype=_real_of(gi._data.dtype))
        w[1:1 + double] = 2
        gi = gi * tensor(w.reshape((-1,) + (1,) * (gi.ndim - 1 - last)), device=gi.device)
    return (gi,)


def fft_c2c(x, dim, normalization, forward):
    """torch's `_fft_c2c(self, dim, normalization, forward)`."""
    return dispatch(FFT_C2C, x, dim=tuple(dim), normalization=int(normalization), forward=bool(forward))


def fft_r2c(x, dim, normalization, onesided):
    """torch's `_fft_r2c(self, dim, normalization, onesided)`."""
    return dispatch(FFT_R2C, x, dim=tuple(dim), normalization=int(normalization), onesided=bool(onesided))


def fft_c2r(x, dim, normalization, last_dim_size):
    """torch's `_fft_c2r(self, dim, normalization, last_dim_size)`."""
    return dispatch(FFT_C2R, x, dim=tuple(dim), normalization=int(normalization), last_dim_size=int(last_dim_size))


# --- stft, istft -----------------------------------------------------------------------------------------

def _type_string(t):
    """A tensor's type as torch's C++ messages print it (torch.FloatTensor, torch.cuda.DoubleTensor)."""
    return f"torch.{'cuda.' if t.device.type == 'cuda' else ''}{D.scalar_name(t._data.dtype)}Tensor"


def _opt(v):
    return "None" if v is None else str(int(v))


def _win_repr(window):
    return "None" if window is None else f"{_type_string(window)}{{{list(window.shape)}}}"


def _sizes(t):
    return "[" + ", ".join(str(s) for s in t.shape) + "]"


@public(method=True)
def stft(input, n_fft, hop_length=None, win_length=None, window=None, center=True, pad_mode="reflect",
         normalized=False, onesided=None, return_complex=None, align_to_window=None):
    """torch.stft: the DFT of `n_fft`-point frames `hop_length` apart (each multiplied by the window, centred
    in n_fft points when shorter), shape (n_fft // 2 + 1 or n_fft, n_frames) per signal. center pads the signal
    by n_fft // 2 on both sides with pad_mode first (outside torch's `stft` region, as torch's Python does).
    return_complex must be given for a real input and window, as torch requires; False gives view_as_real of
    the result with torch's deprecation warning."""
    if center and align_to_window is not None:
        raise RuntimeError("stft align_to_window should only be set when center = false")
    if center:
        signal_dim = input.ndim
        extended = [1] * (3 - signal_dim) + list(input.shape)
        p = int(n_fft // 2)
        input = _pad(input.view(extended), [p, p], pad_mode)
        input = input.view(tuple(input.shape[-signal_dim:]))
    with record_range("stft", "op", (input,)):
        return _stft(input, n_fft, hop_length, win_length, window, normalized, onesided, return_complex,
                     align_to_window)


def _stft(self, n_fft, hop_length, win_length, window, normalized, onesided, return_complex, align_to_window):
    hop = n_fft // 4 if hop_length is None else hop_length
    win = n_fft if win_length is None else win_length

    def repr_():
        return (f"stft({_type_string(self)}{_sizes(self)}, n_fft={n_fft}, hop_length={hop}, win_length={win}, "
                f"window={_win_repr(window)}, normalized={int(bool(normalized))}, onesided={_opt(onesided)}, "
                f"return_complex={_opt(return_complex)}, align_to_window={_opt(align_to_window)}) ")

    rc = return_complex
    if rc is None:
        rc = self.is_complex() or (window is not None and window.is_complex())
    if not rc:
        if return_complex is None:
            raise RuntimeError("stft requires the return_complex parameter be given for real inputs, and will further "
                               "require that return_complex=True in a future PyTorch release.")
        warnings.warn("stft with return_complex=False is deprecated. In a future pytorch release, stft will return "
                      "complex tensors for all inputs, and return_complex=False will raise an error.\nNote: you can "
                      "still call torch.view_as_real on the complex output to recover the old return format.",
                      UserWarning, stacklevel=3)
    if self._data.dtype.kind not in "fc":
        raise RuntimeError(repr_() + ": expected a tensor of floating point or complex values")
    if self.ndim not in (1, 2):
        raise RuntimeError(repr_() + ": expected a 1D or 2D tensor")
    x = self.unsqueeze(0) if self.ndim == 1 else self
    length = x.shape[1]
    if n_fft <= 0 or n_fft > length:
        raise RuntimeError(repr_() + f": expected 0 < n_fft < {length}, but got n_fft={n_fft}")
    if hop <= 0:
        raise RuntimeError(repr_() + f": expected hop_length > 0, but got hop_length={hop}")
    if win <= 0 or win > n_fft:
        raise RuntimeError(repr_() + f": expected 0 < win_length <= n_fft, but got win_length={win}")
    if window is not None and (window.ndim != 1 or window.shape[0] != win):
        raise RuntimeError(repr_() + f": expected a 1D window tensor of size equal to win_length={win}, but got "
                           f"window with size {_sizes(window)}")
    if window is None and win < n_fft:
        window = ones(win, dtype=self.dtype, device=self.device)
    if window is not None and win < n_fft:          # centred in n_fft points
        window = _centre(window, win, n_fft)
    if align_to_window and win < n_fft:         # frames start where their window does: k * hop_length
        x = _centre(x, win, n_fft)
    frames = x.unfold(-1, n_fft, hop)           # (batch, n_frames, n_fft): torch's as_strided time2col
    if window is not None:
        frames = frames * window
    complex_fft = frames.is_complex()
    one = (not complex_fft) if onesided is None else bool(onesided)
    norm = NORM_BY_ROOT_N if normalized else NORM_NONE
    if complex_fft:
        if one:
            raise RuntimeError("Cannot have onesided output if window or input is complex")
        out = fft_c2c(frames, (2,), norm, True)
    else:
        out = fft_r2c(frames, (2,), norm, one)
    out = out.transpose(1, 2)
    if self.ndim == 1:
        out = out.squeeze(0)
    return out if rc else view_as_real(out)


def _centre(t, win, n_fft):
    """t's last dimension padded by (n_fft - win) zeros, the larger half after: a window of `win` points centred in
    n_fft (torch's stft/istft)."""
    left = (n_fft - win) // 2
    return _pad(t, [left, n_fft - win - left])


def _istft_type(t):
    return f"{'CUDA' if t.device.type == 'cuda' else 'CPU'}{D.scalar_name(t._data.dtype)}Type"


@public(method=True)
def istft(input, n_fft, hop_length=None, win_length=None, window=None, center=True, normalized=False,
          onesided=None, length=None, return_complex=False):
    """torch.istft: the least-squares inverse of stft (inverse DFT of each frame, times the window, overlap-added
    and divided by the summed squared window), torch's checks and messages."""
    with record_range("istft", "op", (input,)):
        return _istft(input, n_fft, hop_length, win_length, window, center, normalized, onesided, length,
                      return_complex)


def _istft(self, n_fft, hop_length, win_length, window, center, normalized, onesided, length, return_complex):
    hop = n_fft >> 2 if hop_length is None else hop_length
    win = n_fft if win_length is None else win_length

    def repr_():
        return (f"istft({_istft_type(self)}{_sizes(self)}, n_fft={n_fft}, hop_length={hop}, win_length={win}, "
                f"window={_win_repr(window)}, center={int(bool(center))}, normalized={int(bool(normalized))}, "
                f"onesided={_opt(onesided)}, length={'None' if length is None else length}, "
                f"return_complex={int(bool(return_complex))}) ")

    if not self.is_complex():
        raise RuntimeError("istft requires a complex-valued input tensor matching the output from stft with "
                           "return_complex=True.")
    if window is None:
        warnings.warn("A window was not provided. A rectangular window will be applied.Please provide the same "
                      "window used by stft to make the inversion lossless.To suppress this warning and use a "
                      "rectangular window, explicitly set `window=torch.ones(n_fft, device=<device>)`.",
                      UserWarning, stacklevel=3)
    rdim = self.ndim + 1                       # torch checks view_as_real(input)'s dims
    norm_dims((-2, -3), rdim)                  # torch's IndexError for a 1-d input
    n_frames = self.shape[-1]
    fft_size = self.shape[-2]
    expected_len = n_fft + hop * (n_frames - 1)
    if self.numel() == 0:
        raise RuntimeError(repr_() + ": input tensor cannot be empty.")
    if rdim not in (3, 4):
        raise RuntimeError(repr_() + f": expected a tensor with 3 or 4 dimensions, but got {rdim}")
    one = (fft_size != n_fft) if onesided is None else bool(onesided)
    if one:
        if n_fft // 2 + 1 != fft_size:
            raise RuntimeError(repr_() + ": expected the frequency dimension (3rd to the last) of the input tensor to "
                               f"match n_fft / 2 + 1 when onesided=True, but got {fft_size}")
    elif n_fft != fft_size:
        raise RuntimeError(repr_() + ": expected the frequency dimension (3rd to the last) of the input tensor to "
                           f"match n_fft when onesided=False, but got {fft_size}")
    if not 0 < hop <= win:
        raise RuntimeError(repr_() + ": expected 0 < hop_length <= win_length")
    if not 0 < win <= n_fft:
        raise RuntimeError(repr_() + ": expected 0 < win_length <= n_fft")
    if window is not None and (window.ndim != 1 or window.shape[0] != win):
        raise RuntimeError(repr_() + ": Invalid window shape. window has to be 1D and length of `win_length`")
    rdt = self.dtype.to_real()
    w = window if window is not None else ones(win, dtype=rdt, device=self.device)
    if win != n_fft:
        w = _centre(w, win, n_fft)
    x = self.unsqueeze(0) if rdim == 3 else self
    x = x.transpose(1, 2)                      # (channel, n_frames, fft_size)
    norm = NORM_BY_ROOT_N if normalized else NORM_BY_N
    if return_complex:
        if one:
            raise RuntimeError("Cannot have onesided output if window or input is complex")
        x = fft_c2c(x, (2,), norm, False)
    else:
        if window is not None and window.is_complex():
            raise RuntimeError("Complex windows are incompatible with return_complex=False")
        if not one:
            x = x.narrow(-1, 0, n_fft // 2 + 1)
        x = fft_c2r(x, (2,), norm, n_fft)
    y = x * w.view(1, 1, n_fft)
    y = dispatch(UNFOLD_BACKWARD, y, shape=(y.shape[0], expected_len), dimension=1, size=n_fft, step=hop)
    env = w.pow(2).expand(1, n_frames, n_fft)
    env = dispatch(UNFOLD_BACKWARD, env, shape=(1, expected_len), dimension=1, size=n_fft, step=hop)
    start = n_fft // 2 if center else 0
    if length is not None:
        end = start + length
    elif center:
        end = expected_len - n_fft // 2
    else:
        end = expected_len
    stop = min(end, expected_len)
    y = y[:, start:stop]
    env = env[:, start:stop]
    if env.numel() == 0 or bool((env.abs().min() < 1e-11).item()):
        raise RuntimeError(repr_() + "window overlap add min: 1")
    y = y / env
    if rdim == 3:
        y = y.squeeze(0)
    if end > expected_len:
        warnings.warn("The length of signal is shorter than the length parameter. Result is being padded with zeros "
                      "in the tail. Please check your center and hop_length settings.", UserWarning, stacklevel=3)
        y = _pad(y, [0, end - expected_len])
    return y
