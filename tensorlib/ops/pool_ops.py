"""2-d pooling ops over the same window view as convolution (conv_ops.windows).

max_pool2d keeps its argmax as flat indices into each input plane (torch's `return_indices`), and its
backward scatters through them; avg_pool2d sums its windows by one strided addition per tap, and its
backward (avg_pool2d_backward, one op as torch's) adds each output's share back the same way.
"""
from __future__ import annotations


from ..dispatch import record_range, run_recorded_op
from .. import _dtype as D
from .._graph import quiet_op
from .._opdef import with_defaults
from ._define import dispatch, np, op
from .conv_ops import _pad, windows
from .broadcast import add_at
from .index import gather
from .shape import reshape


def _pair(v):
    if v is None:
        return None
    if isinstance(v, int):
        return (v, v)
    v = tuple(int(i) for i in v)
    return (v[0], v[0]) if len(v) == 1 else v


def _ceil_extra(n, k, s, p, d, ceil_mode):
    """Extra padding at the end so that windows reach ceil-mode's last output (which must start inside)."""
    eff = d * (k - 1) + 1
    if not ceil_mode:
        return 0, (n + 2 * p - eff) // s + 1
    out = -(-(n + 2 * p - eff) // s) + 1
    if (out - 1) * s >= n + p:
        out -= 1
    return max(0, (out - 1) * s + eff - (n + 2 * p)), out


@op("max_pool2d", save="o", nondiff_outputs=(1,), node_name="MaxPool2DWithIndicesBackward0")
def MAX_POOL2D(xp, x, kernel_size=(1, 1), stride=(1, 1), padding=(0, 0), dilation=(1, 1), ceil_mode=False):
    """The maximum over each window and its flat index in the input plane (the first maximum; a NaN wins
    and the first NaN stays, as NumPy's argmax picks). Each tap is a strided view of the (padded) input,
    no copy: the maxima are kh*kw - 1 passes of `maximum`, then the first tap equal to its window's
    maximum is found with a small-integer pass per tap, and its offset in the plane taken from a table."""
    N, C, H, W = x.shape
    (kh, kw), (sh, sw), (ph, pw), (dh, dw) = kernel_size, stride, padding, dilation
    eh, OH = _ceil_extra(H, kh, sh, ph, dh, ceil_mode)
    ew, OW = _ceil_extra(W, kw, sw, pw, dw, ceil_mode)
    fill = -np.inf if D.kind(x.dtype) == "f" else np.iinfo(x.dtype).min
    xpad = _pad(xp, x, (ph, ph + eh, pw, pw + ew), fill)
    win = windows(xp, xpad, kh, kw, (sh, sw), (dh, dw))[:, :, :OH, :OW]
    taps = [win[..., i, j] for i in range(kh) for j in range(kw)]
    out = xp.array(taps[0], order="C")
    for v in taps[1:]:
        xp.maximum(out, v, out=out)
    # NaN-aware matching only where a NaN is (or may be, on a GPU: no host sync) among the maxima
    nan = x.dtype.kind in "fc" and out.size > 0 and (xp is not np or bool(np.isnan(out.max())))
    T = len(taps)
    kt = xp.zeros(out.shape, dtype=np.uint8 if T < 256 else np.int32)    # the first matching tap
    miss = xp.empty(out.shape, dtype=bool)
    for t in range(T - 2, -1, -1):          # kt = miss_0 * (1 + miss_1 * (1 + ... miss_{T-2}))
        xp.not_equal(taps[t], out, out=miss)
        if nan:
            miss &= taps[t] == taps[t]
        kt += 1
        kt *= miss
    offs = xp.asarray([(t // kw) * dh * W + (t % kw) * dw for t in range(T)], dtype=np.int64)
    k = offs.take(kt)
    k += (xp.arange(OH)[:, None] * sh - ph) * W + xp.arange(OW)[None, :] * sw - pw    # + the window's origin
    return out, k


@op("max_pool2d_with_indices_backward", save="i", node_name="MaxPool2DWithIndicesBackwardBackward0")
def MAX_POOL2D_BACKWARD(xp, g, idx, shape=(), unique=False):
    """torch's kernel: each output gradient added at its window's argmax in the input plane. Windows that
    do not overlap (stride >= kernel extent) have distinct argmaxes: a plain scatter (one flat fancy-index
    assignment), no accumulation."""
    N, C, H, W = shape
    out = xp.zeros(N * C * H * W, dtype=g.dtype)
    if not g.size:          # an empty batch (or no windows): nothing to scatter (and no row length to infer)
        return out.reshape(N, C, H, W)
    if unique and xp is np:
        _scatter_planes(out, idx.reshape(N * C, -1), g.reshape(N * C, -1), H * W)
    else:
        flat = (idx.reshape(N, C, -1) + (xp.arange(N * C, dtype=idx.dtype) * (H * W)).reshape(N, C, 1)).reshape(-1)
        add_at(xp, out, flat, g.reshape(-1))
    return out.reshape(N, C, H, W)


_SCATTER_CHUNK = 1 << 14        # indices per chunk: 128 KiB of int64, which stay in cache


def _scatter_planes(out, idx, g, plane):
    """out[p * plane + idx[p, k]] = g[p, k] for every plane p (distinct targets), a few planes at a time:
    each chunk's flat indices go to one small reused buffer instead of a whole-batch int64 array (the
    net's 2x2 pool backward, best of 21: 6.5-7.1 against 7.7-7.8 ms over two runs, torch 5.1)."""
    P, K = idx.shape
    rows = max(1, _SCATTER_CHUNK // max(1, K))
    buf = np.empty((min(rows, P), K), dtype=idx.dtype)
    base = np.arange(P, dtype=idx.dtype)[:, None] * plane
    for r0 in range(0, P, rows):
        b = buf[:min(rows, P - r0)]
        np.add(idx[r0:r0 + rows], base[r0:r0 + rows], out=b)
        out[b.reshape(-1)] = g[r0:r0 + rows].reshape(-1)


@MAX_POOL2D_BACKWARD.def_backward
def _(ctx, gg):
    g, idx = ctx.saved_inputs
    N, C = g.shape[:2]
    return (reshape(gather(reshape(gg, (N, C, -1)), 2, reshape(idx, (N, C, -1))), tuple(g.shape)), None)


def _max_pool2d_bwd(ctx, g, gi=None, run=dispatch):
    """MAX_POOL2D_BACKWARD of g, dispatched, or with run=quiet_op / run_recorded_op on NumPy arrays (the quiet
    and sink formulas, OpDef)."""
    _, idx = ctx.saved_output
    a = ctx.attrs
    (kh, kw), (sh, sw), (dh, dw) = a.get("kernel_size", (1, 1)), a.get("stride", (1, 1)), a.get("dilation", (1, 1))
    unique = sh >= dh * (kh - 1) + 1 and sw >= dw * (kw - 1) + 1
    out = run(MAX_POOL2D_BACKWARD, g, idx, shape=tuple(ctx.in_meta[0][0]), unique=unique)
    return (out,) if run is dispatch else out


MAX_POOL2D.def_backward(_max_pool2d_bwd)
MAX_POOL2D.quiet_backward = with_defaults(_max_pool2d_bwd, run=quiet_op)
MAX_POOL2D.sink_backward = with_defaults(_max_pool2d_bwd, run=run_recorded_op)


def _check_pool(input, kernel_size, padding, name, stride=None, dilation=(1, 1)):
    if input.ndim not in (3, 4):
        raise RuntimeError(f"{name}: Expected 3D or 4D (batch mode) tensor for input, but got: {list(input.shape)}")
    for k, p in zip(kernel_size, padding):
        if p > k // 2:
            raise RuntimeError(f"pad should be at most half of effective kernel size, but got pad={p}, "
                               f"kernel_size={k}")
    if stride is not None:     # torch's message for a window larger than the (padded) input
        C, H, W = input.shape[-3:]
        out = [(n + 2 * p - d * (k - 1) - 1) // s + 1
               for n, k, p, s, d in zip((H, W), kernel_size, padding, stride, dilation)]
        if min(out) < 1:
            raise RuntimeError(f"Given input size: ({C}x{H}x{W}). Calculated output size: ({C}x{out[0]}x{out[1]}). "
                               f"Output size is too small")


@record_range("max_pool2d", "op")       # torch's composite around max_pool2d_with_indices (the MAX_POOL2D op)
def max_pool2d(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False, return_indices=False):
    if input.ndim == 3:
        out = max_pool2d(input.unsqueeze(0), kernel_size, stride, padding, dilation, ceil_mode, return_indices)
        return tuple(o.squeeze(0) for o in out) if return_indices else out.squeeze(0)
    k = _pair(kernel_size)
    s = _pair(stride) if stride is not None and stride != [] else k
    p = _pair(padding)
    _check_pool(input, k, p, "max_pool2d", s, _pair(dilation))
    out, idx = dispatch(MAX_POOL2D, input, kernel_size=k, stride=s, padding=p, dilation=_pair(dilation),
                        ceil_mode=bool(ceil_mode))
    return (out, idx) if return_indices else out


@op("avg_pool2d", save="", node_name="AvgPool2DBackward0")
def AVG_POOL2D(xp, x, kernel_size=(1, 1), stride=(1, 1), padding=(0, 0), ceil_mode=False, count_include_pad=True,
               divisor_override=None):
    return _avg(xp, x, kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override)


def _avg(xp, x, kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override):
    N, C, H, W = x.shape
    (kh, kw), (sh, sw), (ph, pw) = kernel_size, stride, padding
    eh, OH = _ceil_extra(H, kh, sh, ph, 1, ceil_mode)
    ew, OW = _ceil_extra(W, kw, sw, pw, 1, ceil_mode)
    pads = (ph, ph + eh, pw, pw + ew)
    xpad = _pad(xp, x, pads)
    if kh * kw <= _TAP_SUMS:
        total = None
        for tap in _taps(kh, kw, sh, sw, OH, OW):
            if total is None:
                total = xpad[tap].astype(np.promote_types(x.dtype, np.float32), copy=True)
            else:
                total += xpad[tap]
    else:
        total = windows(xp, xpad, kh, kw, (sh, sw), (1, 1))[:, :, :OH, :OW].sum(axis=(-2, -1))
    div = _divisor(xp, H, W, kernel_size, stride, padding, pads, OH, OW, count_include_pad, divisor_override,
                   x.dtype)
    return (total / div).astype(x.dtype, copy=False)


# Up to this many taps (kernel_size's product), the window sums are strided slice additions, one per tap:
# NumPy's sum over a window view's two short trailing axes ran 17x slower (2x2 over (16,32,32,32): 5.7 ms
# against 0.33), the per-axis reduction loop paying per window.
_TAP_SUMS = 64


def _taps(kh, kw, sh, sw, OH, OW):
    """Per tap (i, j) the index of the strided view of the padded input that it adds to each output."""
    return [(slice(None), slice(None), slice(i, i + sh * (OH - 1) + 1, sh), slice(j, j + sw * (OW - 1) + 1, sw))
            for i in range(kh) for j in range(kw)]


def _divisor(xp, H, W, kernel_size, stride, padding, pads, OH, OW, count_include_pad, divisor_override, dtype):
    """Per-output divisor: the window size, or the count of in-bounds (or in-padding) elements."""
    (kh, kw), (sh, sw), (ph, pw) = kernel_size, stride, padding
    if divisor_override:
        return xp.asarray(divisor_override, dtype=dtype)
    inside = xp.zeros((1, 1, H + pads[0] + pads[1], W + pads[2] + pads[3]), dtype=dtype)
    if count_include_pad:
        inside[:, :, :H + 2 * ph, :W + 2 * pw] = 1   # padding counts, ceil-mode overhang does not
    else:
        inside[:, :, ph:ph + H, pw:pw + W] = 1
    return windows(xp, inside, kh, kw, (sh, sw), (1, 1))[:, :, :OH, :OW].sum(axis=(-2, -1))


@op("avg_pool2d_backward", node_name="AvgPool2DBackwardBackward0")
def AVG_POOL2D_BACKWARD(xp, g, input_size=(), kernel_size=(1, 1), stride=(1, 1), padding=(0, 0), ceil_mode=False,
                        count_include_pad=True, divisor_override=None):
    """torch's avg_pool2d_backward: each output's gradient over its divisor, added to every input of its
    window (one strided addition per tap into the padded input's gradient, then the padding cut away)."""
    N, C, H, W = input_size
    (kh, kw), (sh, sw), (ph, pw) = kernel_size, stride, padding
    eh, OH = _ceil_extra(H, kh, sh, ph, 1, ceil_mode)
    ew, OW = _ceil_extra(W, kw, sw, pw, 1, ceil_mode)
    pads = (ph, ph + eh, pw, pw + ew)
    gd = g / _divisor(xp, H, W, kernel_size, stride, padding, pads, OH, OW, count_include_pad, divisor_override,
                      g.dtype)
    gd = gd.astype(g.dtype, copy=False)
    if (sh, sw) == (kh, kw) and pads == (0, 0, 0, 0) and (OH * kh, OW * kw) == (H, W):    # a tiling
        gx = xp.empty((N, C, OH, kh, OW, kw), dtype=g.dtype)
        gx[...] = gd[:, :, :, None, :, None]
        return gx.reshape(N, C, H, W)
    gxp = xp.zeros((N, C, H + pads[0] + pads[1], W + pads[2] + pads[3]), dtype=g.dtype)
    for tap in _taps(kh, kw, sh, sw, OH, OW):
        gxp[tap] += gd
    return xp.ascontiguousarray(gxp[:, :, ph:ph + H, pw:pw + W])


@AVG_POOL2D_BACKWARD.def_backward
def _(ctx, gg):     # linear in g: its gradient is the pooling of gg
    a = {k: v for k, v in ctx.attrs.items() if k != "input_size"}
    return (dispatch(AVG_POOL2D, gg, **a),)


@AVG_POOL2D.def_backward
def _(ctx, g):
    return (dispatch(AVG_POOL2D_BACKWARD, g, input_size=tuple(ctx.in_meta[0][0]), **ctx.attrs),)


def _avg_pool2d_bwd_arrays(ctx, g, call=quiet_op):
    return call(AVG_POOL2D_BACKWARD, g, input_size=tuple(ctx.in_meta[0][0]), **ctx.attrs)


AVG_POOL2D.quiet_backward = _avg_pool2d_bwd_arrays
AVG_POOL2D.sink_backward = with_defaults(_avg_pool2d_bwd_arrays, call=run_recorded_op)


def avg_pool2d(input, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True,
               divisor_override=None):
    if input.ndim == 3:
        return avg_pool2d(input.unsqueeze(0), kernel_size, stride, padding, ceil_mode, count_include_pad,
                          divisor_override).squeeze(0)
    k = _pair(kernel_size)
    s = _pair(stride) if stride is not None and stride != [] else k
    p = _pair(padding)
    _check_pool(input, k, p, "avg_pool2d", s)
    return dispatch(AVG_POOL2D, input, kernel_size=k, stride=s, padding=p, ceil_mode=bool(ceil_mode),
                    count_include_pad=bool(count_include_pad), divisor_override=divisor_override)


# --- adaptive average pooling ---------------------------------------------------------------------

def _bins(n, out):
    return [((i * n) // out, -(-((i + 1) * n) // out)) for i in range(out)]


def _bin_means(xp, n, out, dtype):
    """The (out, n) matrix whose row i averages bin i of n positions (torch's adaptive bins): adaptive average
    pooling is A_h @ x @ A_w^T, two batched BLAS products, and its backward A_h^T @ g @ A_w. A loop over the
    bins (and NumPy's mean over a reshaped window's short axes) took 3-17x that."""
    m = np.zeros((out, n), dtype=dtype)
    for i, (a, b) in enumerate(_bins(n, out)):
        m[i, a:b] = 1 / (b - a)
    return m if xp is np else xp.asarray(m)


@op("adaptive_avg_pool2d", node_name="AdaptiveAvgPool2DBackward0")
def ADAPTIVE_AVG(xp, x, output_size=(1, 1)):
    N, C, H, W = x.shape
    oh, ow = output_size
    if (oh, ow) == (1, 1) and x.dtype.kind == "f":
        return x.reshape(N, C, H * W).mean(axis=2).reshape(N, C, 1, 1)
    if x.dtype.kind == "f" and x.size:
        y = xp.matmul(_bin_means(xp, H, oh, x.dtype), x)
        return xp.matmul(y, _bin_means(xp, W, ow, x.dtype).T)
    out = xp.empty((N, C, oh, ow), dtype=x.dtype)
    for i, (h0, h1) in enumerate(_bins(H, oh)):
        for j, (w0, w1) in enumerate(_bins(W, ow)):
            out[:, :, i, j] = x[:, :, h0:h1, w0:w1].mean(axis=(2, 3))
    return out


@op("adaptive_avg_pool2d_backward", node_name="AdaptiveAvgPool2DBackwardBackward0")
def ADAPTIVE_AVG_BWD(xp, g, input_size=(1, 1)):
    H, W = input_size
    N, C, oh, ow = g.shape
    if (oh, ow) == (1, 1):
        gx = xp.empty((N, C, H, W), dtype=g.dtype)
        gx[...] = g / (H * W)
        return gx
    if g.dtype.kind == "f" and g.size:
        y = xp.matmul(_bin_means(xp, H, oh, g.dtype).T, g)
        return xp.ascontiguousarray(xp.matmul(y, _bin_means(xp, W, ow, g.dtype)))
    gx = xp.zeros((N, C, H, W), dtype=g.dtype)
    for i, (h0, h1) in enumerate(_bins(H, oh)):
        for j, (w0, w1) in enumerate(_bins(W, ow)):
            gx[:, :, h0:h1, w0:w1] += (g[:, :, i, j] / ((h1 - h0) * (w1 - w0)))[:, :, None, None]
    return gx


ADAPTIVE_AVG_BWD.def_backward(lambda ctx, gg: (dispatch(ADAPTIVE_AVG, gg, output_size=tuple(ctx.in_meta[0][0][2:])),))
ADAPTIVE_AVG.def_backward(lambda ctx, g: (dispatch(ADAPTIVE_AVG_BWD, g, input_size=tuple(ctx.in_meta[0][0][2:])),))


def adaptive_avg_pool2d(input, output_size):
    if input.ndim == 3:
        return adaptive_avg_pool2d(input.unsqueeze(0), output_size).squeeze(0)
    if isinstance(output_size, int):
        output_size = (output_size, output_size)
    H, W = input.shape[2:]
    size = tuple(H if o is None else int(o) for o, H in zip(output_size, (H, W)))
    return dispatch(ADAPTIVE_AVG, input, output_size=size)


__all__ = ["max_pool2d", "avg_pool2d", "adaptive_avg_pool2d"]
