"""Nearest-neighbour upsampling as torch's ops: upsample_nearest1d/2d/3d and their backwards, one op each way
(F.interpolate(mode="nearest") was a composite of index_select ops, IndexSelectBackward0 nodes in the graph).
The source index of each output position is torch's (`src_index`); the backward sums each source's outputs
along one axis at a time with np.add.reduceat (the indices are non-decreasing), not a scatter."""
from __future__ import annotations

from functools import partial

from ..dispatch import run_recorded_op
from .._graph import quiet_op
from ._define import dispatch, np, op


def src_index(n_in, n_out, scale, align_corners, linear):
    """Source coordinates of each output position, as torch's upsample kernels compute them (float64)."""
    dst = np.arange(n_out, dtype=np.float64)
    if linear and align_corners:
        return dst * ((n_in - 1) / (n_out - 1) if n_out > 1 else 0.0)
    ratio = 1.0 / scale if scale is not None else n_in / n_out
    if linear:
        return np.maximum((dst + 0.5) * ratio - 0.5, 0.0)
    if n_out == n_in:                   # torch's nearest_idx special cases
        return dst
    if n_out == 2 * n_in:
        return np.floor(dst / 2)
    return np.minimum(np.floor(dst.astype(np.float32) * np.float32(ratio)), n_in - 1)


def _indices(n_in, n_out, scales, k):
    return src_index(n_in, n_out, None if scales is None else scales[k], False, False).astype(np.int64)


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
    return out


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
    _fwd.sink_backward = partial(_grad_arrays, call=run_recorded_op)
    _bwd.def_backward(_double)
    UPSAMPLE_NEAREST[_nd] = _fwd


def upsample_nearest(input, output_size, scales=None):
    """torch's upsample_nearest{1,2,3}d(input, output_size, scales) by the input's spatial dims."""
    return dispatch(UPSAMPLE_NEAREST[input.ndim - 2], input, output_size=tuple(int(n) for n in output_size),
                    scales=None if scales is None else tuple(float(s) for s in scales))
