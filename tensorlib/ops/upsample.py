"""Upsampling as torch's ops, one op each way: upsample_nearest1d/2d/3d, upsample_linear1d, upsample_bilinear2d and
upsample_trilinear3d, and their backwards (F.interpolate was a composite of index_select ops, IndexSelectBackward0
nodes in the graph, and its linear modes' backward an index_add scatter, 4.4x torch's time).
The source index of each output position is torch's (`nearest_index`, `linear_taps`); the backward takes one axis at a
time: a short one as a product with the transposed (n_out, n_in) matrix of the axis's map, a long one by
np.add.reduceat over the runs of outputs reading each input (the indices are non-decreasing), not a scatter."""
from __future__ import annotations


from ..dispatch import run_recorded_op
from .._graph import quiet_op
from .._opdef import with_defaults
from ._define import dispatch, np, op

# input lengths up to this take the axis's transpose as a dense product (measured: 32 -> 64 by gemm 0.9 ms against
# 6.6 by reduceat over the same gradient; 256 -> 512 par; 512 -> 256 reduceat 2x faster)
_DENSE_MAX = 192
_AXIS_CACHE: dict = {}    # an axis's taps and matrices, by (sizes, scale, align_corners, dtype): a step asks for few


def _keep(key, value):
    if len(_AXIS_CACHE) > 256:
        _AXIS_CACHE.clear()
    _AXIS_CACHE[key] = value
    return value


def nearest_index(n_in, n_out, scale):
    """The source index of each output position along one axis, as torch's nearest_idx computes it."""
    dst = np.arange(n_out)
    if n_out == n_in:                   # torch's nearest_idx special cases
        return dst
    if n_out == 2 * n_in:
        return dst // 2
    ratio = 1.0 / scale if scale is not None else n_in / n_out
    return np.minimum(np.floor(dst.astype(np.float32) * np.float32(ratio)), n_in - 1).astype(np.int64)


def _indices(n_in, n_out, scales, k):
    return nearest_index(n_in, n_out, None if scales is None else scales[k])


def nearest_matrix(n_in, n_out, scale, dtype):
    """The (n_out, n_in) 0/1 matrix of one axis's nearest map (float32 for float16 and bfloat16), cached."""
    key = ("nearest", n_in, n_out, scale, dtype)
    m = _AXIS_CACHE.get(key)
    if m is None:
        m = np.zeros((n_out, n_in), dtype=dtype if dtype in (np.float32, np.float64) else np.float32)
        m[np.arange(n_out), nearest_index(n_in, n_out, scale)] = 1
        m.flags.writeable = False
        _keep(key, m)
    return m


def _nearest_k(xp, x, output_size=(), scales=None):
    out = x
    for k, n_out in enumerate(output_size):
        dim = 2 + k
        idx = _indices(x.shape[dim], n_out, scales, k)
        out = xp.take(out, idx if xp is np else xp.asarray(idx), axis=dim)
    return out


def _nearest_backward_k(xp, g, input_size=(), output_size=(), scales=None):
    """Each input position's gradient: the sum of the outputs it was copied to, axis by axis."""
    out = g
    for k, n_out in enumerate(output_size):
        dim = 2 + k
        n_in = input_size[dim]
        if n_in <= _DENSE_MAX:       # float16 and bfloat16 summed in float32
            out = _times_transpose(xp, out, nearest_matrix(n_in, n_out, None if scales is None else scales[k],
                                                           g.dtype), dim)
            continue
        idx = _indices(n_in, n_out, scales, k)
        starts = np.flatnonzero(np.diff(idx, prepend=-1))       # where each used source's run begins
        used = idx[starts]
        summed = np.add.reduceat(out, starts, axis=dim) if xp is np else _run_sums(xp, out, starts, dim)
        if len(used) == n_in:           # every source used (upsampling): the sums are the gradient
            out = summed
            continue
        shape = list(summed.shape)
        shape[dim] = n_in
        full = xp.zeros(tuple(shape), dtype=summed.dtype)
        sl = [slice(None)] * full.ndim
        sl[dim] = used if xp is np else xp.asarray(used)
        full[tuple(sl)] = summed
        out = full
    return out.astype(g.dtype, copy=False)


def _run_sums(xp, a, starts, dim):
    """np.add.reduceat(a, starts, dim) on CuPy (which has no reduceat): differences of the cumulative sum at
    the runs' ends."""
    c = xp.cumsum(a, axis=dim)
    ends = np.append(starts[1:], a.shape[dim]) - 1
    hi = xp.take(c, xp.asarray(ends), axis=dim)
    lo = xp.take(c, xp.asarray(np.maximum(starts - 1, 0)), axis=dim)
    first = [slice(None)] * a.ndim
    first[dim] = slice(0, 1)
    lo[tuple(first)] = 0            # the first run starts at 0: nothing before it
    return hi - lo


UPSAMPLE_NEAREST = {}
for _nd in (1, 2, 3):
    _fwd = op(f"upsample_nearest{_nd}d", save="", node_name=f"UpsampleNearest{_nd}DBackward0")(_nearest_k)
    _bwd = op(f"upsample_nearest{_nd}d_backward",
              node_name=f"UpsampleNearest{_nd}DBackwardBackward0")(_nearest_backward_k)

    def _grad(ctx, g, _bwd=_bwd):
        return (dispatch(_bwd, g, input_size=tuple(ctx.in_meta[0][0]), **ctx.attrs),)

    def _grad_arrays(ctx, g, call=quiet_op, _bwd=_bwd):
        return call(_bwd, g, input_size=tuple(ctx.in_meta[0][0]), **ctx.attrs)

    def _double(ctx, gg, _fwd=_fwd):     # the backward is linear in g: its own gradient is the forward's
        return (dispatch(_fwd, gg, output_size=ctx.attrs["output_size"], scales=ctx.attrs["scales"]),)

    _fwd.def_backward(_grad)
    _fwd.quiet_backward = _grad_arrays
    _fwd.sink_backward = with_defaults(_grad_arrays, call=run_recorded_op)
    _bwd.def_backward(_double)
    UPSAMPLE_NEAREST[_nd] = _fwd


def upsample_nearest(input, output_size, scales=None):
    """torch's upsample_nearest{1,2,3}d(input, output_size, scales) by the input's spatial dims."""
    return dispatch(UPSAMPLE_NEAREST[input.ndim - 2], input, output_size=tuple(int(n) for n in output_size),
                    scales=None if scales is None else tuple(float(s) for s in scales))


# --- linear, bilinear, trilinear ----------------------------------------------------------------------------------

def linear_taps(n_in, n_out, scale, align_corners, dtype):
    """(i0, i1, w0, w1) of each output position along one axis, as torch's upsample_linear kernels compute them
    in the input's opmath type (float32 for float16/32, float64 for float64): the source coordinate, its floor
    i0 (clamped to the last input), i1 = i0 + 1 where that is inside, w1 the fraction (clamped to [0, 1]) and
    w0 = 1 - w1. Cached: a training step asks for the same few."""
    key = (n_in, n_out, scale, align_corners, dtype)
    taps = _AXIS_CACHE.get(key)
    if taps is not None:
        return taps
    ft = np.float64 if dtype == np.float64 else np.float32
    if align_corners:
        ratio = ft(n_in - 1) / ft(n_out - 1) if n_out > 1 else ft(0)
    else:
        ratio = ft(1.0 / scale) if scale is not None and scale > 0 else ft(ft(n_in) / ft(n_out))
    dst = np.arange(n_out, dtype=ft)
    if align_corners:
        real = ratio * dst
    elif ft is np.float32:      # torch's build contracts scale * (dst + 0.5) - 0.5 to one fma: exact in float64,
        #                         one rounding
        real = np.maximum((np.float64(ratio) * (dst.astype(np.float64) + 0.5) - 0.5).astype(ft), ft(0))
    else:
        real = np.maximum(ratio * (dst + ft(0.5)) - ft(0.5), ft(0))
    i0 = np.minimum(np.floor(real).astype(np.int64), n_in - 1)
    i1 = np.minimum(i0 + 1, n_in - 1)
    w1 = np.clip(real - i0.astype(ft), ft(0), ft(1))
    w0 = ft(1) - w1
    return _keep(key, (i0, i1, w0, w1))


def _along(w, dim, ndim):
    shape = [1] * ndim
    shape[dim] = w.shape[0]
    return w.reshape(shape)


def _axis_taps(xp, n_in, n_out, k, align_corners, scales, dtype):
    taps = linear_taps(n_in, n_out, None if scales is None else scales[k], align_corners, dtype)
    return taps if xp is np else tuple(xp.asarray(a) for a in taps)


def _scaled(a, w):
    """a * w, in place where a already has w's dtype (float16 operands give a float32 product)."""
    if a.dtype == w.dtype:
        a *= w
        return a
    return a * w


def _linear_k(xp, x, output_size=(), align_corners=False, scales=None):
    """Each spatial axis in turn from the last, as torch's separable kernel nests them: out = w0 x[i0] + w1 x[i1]
    per axis (float16 computed in float32, cast back at the end)."""
    out = x
    for k in range(len(output_size) - 1, -1, -1):
        dim = 2 + k
        i0, i1, w0, w1 = _axis_taps(xp, x.shape[dim], output_size[k], k, align_corners, scales, x.dtype)
        a = _scaled(xp.take(out, i0, axis=dim), _along(w0, dim, out.ndim))
        a += _scaled(xp.take(out, i1, axis=dim), _along(w1, dim, out.ndim))
        out = a
    return out.astype(x.dtype, copy=False)


def _runs_into(xp, acc, a, idx, dim, n_in):
    """acc (None: a new array) plus, at each input position j along dim, the sum of a's entries whose idx is j
    (idx non-decreasing): np.add.reduceat over idx's runs, added by a slice where the used positions are one range."""
    starts = np.flatnonzero(np.diff(idx, prepend=-1))
    used = idx[starts]
    summed = np.add.reduceat(a, starts, axis=dim) if xp is np else _run_sums(xp, a, starts, dim)
    if acc is None and len(used) == n_in:
        return summed
    if acc is None:
        shape = list(a.shape)
        shape[dim] = n_in
        acc = xp.zeros(tuple(shape), dtype=summed.dtype)
    sl = [slice(None)] * a.ndim
    lo, hi = int(used[0]), int(used[-1]) + 1
    sl[dim] = slice(lo, hi) if hi - lo == len(used) else (used if xp is np else xp.asarray(used))
    acc[tuple(sl)] += summed
    return acc


def linear_matrix(n_in, n_out, scale, align_corners, dtype):
    """The (n_out, n_in) matrix of one axis's interpolation (linear_taps' weights at their columns), cached."""
    key = ("matrix", n_in, n_out, scale, align_corners, dtype)
    m = _AXIS_CACHE.get(key)
    if m is None:
        i0, i1, w0, w1 = linear_taps(n_in, n_out, scale, align_corners, dtype)
        m = np.zeros((n_out, n_in), dtype=w0.dtype)
        rows = np.arange(n_out)
        np.add.at(m, (rows, i0), w0)
        np.add.at(m, (rows, i1), w1)        # i1 == i0 at the last input: both weights there
        m.flags.writeable = False
        _keep(key, m)
    return m


def _linear_backward_k(xp, g, input_size=(), output_size=(), align_corners=False, scales=None):
    """The forward's transpose, axis by axis from the first: each input position gets w0 and w1 times the
    gradients of the outputs that read it; a short axis as one product with its interpolation matrix, a long one
    by sums over the runs of outputs reading each input (float16 summed in float32, cast back at the end)."""
    out = g
    for k, n_out in enumerate(output_size):
        dim = 2 + k
        n_in = input_size[dim]
        scale = None if scales is None else scales[k]
        if n_in <= _DENSE_MAX:
            out = _times_transpose(xp, out, linear_matrix(n_in, n_out, scale, align_corners, g.dtype), dim)
            continue
        i0, i1, w0, w1 = linear_taps(n_in, n_out, scale, align_corners, g.dtype)     # the runs on the host
        if xp is not np:
            w0, w1 = xp.asarray(w0), xp.asarray(w1)
        acc = _runs_into(xp, None, out * _along(w0, dim, out.ndim), i0, dim, n_in)
        out = _runs_into(xp, acc, out * _along(w1, dim, out.ndim), i1, dim, n_in)
    return out.astype(g.dtype, copy=False)


def _times_transpose(xp, a, m, dim):
    """a with its axis dim (length n_out) mapped through m.T, m an (n_out, n_in) NumPy matrix: one BLAS product."""
    m = m if xp is np else xp.asarray(m)
    n_out, n_in = m.shape
    lead = a.shape[:dim]
    if dim == a.ndim - 1:
        return (a.reshape(-1, n_out) @ m).reshape(lead + (n_in,))
    trail = a.shape[dim + 1:]
    return xp.matmul(m.T, a.reshape((-1, n_out, _prod(trail)))).reshape(lead + (n_in,) + trail)


def _prod(shape):
    n = 1
    for s in shape:
        n *= s
    return n


UPSAMPLE_LINEAR = {}
for _nd, _name, _node in ((1, "upsample_linear1d", "UpsampleLinear1D"),
                          (2, "upsample_bilinear2d", "UpsampleBilinear2D"),
                          (3, "upsample_trilinear3d", "UpsampleTrilinear3D")):
    _fwd = op(_name, save="", node_name=f"{_node}Backward0")(_linear_k)
    _bwd = op(f"{_name}_backward", node_name=f"{_node}BackwardBackward0")(_linear_backward_k)

    def _grad(ctx, g, _bwd=_bwd):
        return (dispatch(_bwd, g, input_size=tuple(ctx.in_meta[0][0]), **ctx.attrs),)

    def _grad_arrays(ctx, g, call=quiet_op, _bwd=_bwd):
        return call(_bwd, g, input_size=tuple(ctx.in_meta[0][0]), **ctx.attrs)

    def _double(ctx, gg, _fwd=_fwd):     # the backward is linear in g: its own gradient is the forward's
        a = ctx.attrs
        return (dispatch(_fwd, gg, output_size=a["output_size"], align_corners=a["align_corners"],
                         scales=a["scales"]),)

    _fwd.def_backward(_grad)
    _fwd.quiet_backward = _grad_arrays
    _fwd.sink_backward = with_defaults(_grad_arrays, call=run_recorded_op)
    _bwd.def_backward(_double)
    UPSAMPLE_LINEAR[_nd] = _fwd


def upsample_linear(input, output_size, align_corners, scales=None):
    """torch's upsample_linear1d / upsample_bilinear2d / upsample_trilinear3d(input, output_size, align_corners,
    scales) by the input's spatial dims."""
    return dispatch(UPSAMPLE_LINEAR[input.ndim - 2], input, output_size=tuple(int(n) for n in output_size),
                    align_corners=bool(align_corners),
                    scales=None if scales is None else tuple(float(s) for s in scales))
