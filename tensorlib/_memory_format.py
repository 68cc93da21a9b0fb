"""torch.memory_format (torch.contiguous_format, channels_last, ...) and the strides each gives.

A tensor's array may have any strides (views, transposes); a new tensor is row-major (C order) unless a
memory format asks otherwise: channels_last / channels_last_3d lay a 4-d / 5-d tensor out with the channels
innermost (torch's strides, e.g. (60, 1, 15, 3) for (2, 3, 4, 5)), and preserve_format (the default of clone,
the *_like factories and `to`) keeps a dense input's strides as torch does. `is_contiguous(memory_format=...)`
answers for the tensor's actual strides. The helpers here compute strides in elements and allocate arrays
with them (NumPy or CuPy alike)."""
from __future__ import annotations

from ._dtype import namespace

__all__ = ["memory_format", "contiguous_format", "preserve_format", "channels_last", "channels_last_3d"]


class memory_format:
    __slots__ = ("name",)

    def __init__(self, name: str):
        self.name = name

    def __repr__(self) -> str:
        return f"{namespace()}.{self.name}"

    def __reduce__(self):
        return (_by_name, (self.name,))


def _by_name(name: str) -> memory_format:
    return _FORMATS[name]


contiguous_format = memory_format("contiguous_format")
preserve_format = memory_format("preserve_format")
channels_last = memory_format("channels_last")
channels_last_3d = memory_format("channels_last_3d")
_FORMATS = {f.name: f for f in (contiguous_format, preserve_format, channels_last, channels_last_3d)}
_LAST = {channels_last: (4, (0, 2, 3, 1)), channels_last_3d: (5, (0, 2, 3, 4, 1))}


def is_contiguous_as(data, fmt) -> bool:
    """Whether an array's strides are dense in `fmt`'s order (None: row-major, torch's contiguous_format)."""
    if fmt is None or fmt is contiguous_format:
        return bool(data.flags.c_contiguous)
    if fmt is preserve_format:
        return bool(data.flags.c_contiguous)
    if fmt not in _LAST:
        raise TypeError(f"is_contiguous(): argument 'memory_format' must be {namespace()}.memory_format, not "
                        f"{type(fmt).__name__}")
    ndim, order = _LAST[fmt]
    return data.ndim == ndim and bool(data.transpose(order).flags.c_contiguous)


def check(fmt, fn: str):
    """torch's argument check of memory_format= (None is the default of every function that takes it)."""
    if fmt is not None and not isinstance(fmt, memory_format):
        raise TypeError(f"{fn}(): argument 'memory_format' must be {namespace()}.memory_format, not "
                        f"{type(fmt).__name__}")


def format_strides(shape, fmt):
    """The strides (in elements) of a tensor of `shape` laid out in `fmt`, None for the row-major
    contiguous_format; channels_last needs 4 dims and channels_last_3d 5 (torch's message). torch's
    get_channels_last_strides: the channels innermost, then W, H (D), and N outermost, each stride the product
    of the sizes inside it (a size 0 gives 0, as torch's)."""
    if fmt is None or fmt is contiguous_format:
        return None
    if fmt not in _LAST:
        raise RuntimeError(f"unsupported memory format {fmt.name.split('_')[0].capitalize()}")
    ndim, order = _LAST[fmt]
    if len(shape) != ndim:
        raise RuntimeError(f"required rank {ndim} tensor to use {fmt.name} format")
    strides = [0] * ndim
    st = 1
    for d in reversed(order):       # channels, then the spatial dims innermost first, then the batch
        strides[d] = st
        st *= shape[d]
    return tuple(strides)


def _dense_strides(data):
    """An array's strides in elements when it is dense and non-overlapping (torch's
    is_non_overlapping_and_dense: its dims, sizes 1 aside, tile its elements exactly), else None."""
    item = data.itemsize
    st = [s // item for s in data.strides]
    if any(s * item != b or s < 0 for s, b in zip(st, data.strides)):
        return None
    need = 1
    for d in sorted((d for d in range(data.ndim) if data.shape[d] != 1), key=lambda d: st[d]):
        if st[d] != need:
            return None
        need *= data.shape[d]
    return tuple(st)


def _infer_dense_strides(shape, strides):
    """torch's infer_dense_strides: dense strides in the order of the given ones (insertion-sorted from the
    innermost; a 0 stride keeps its place, equal strides put the smaller size inside)."""
    nd = len(shape)
    perm = list(range(nd - 1, -1, -1))

    def swap(d0, d1):
        s0, s1 = strides[d0], strides[d1]
        if s0 == 0 or s1 == 0:
            return 0
        if s0 != s1:
            return -1 if s0 < s1 else 1
        return 1 if shape[d0] > shape[d1] else 0

    for i in range(1, nd):
        d1 = i
        for d0 in range(i - 1, -1, -1):
            c = swap(perm[d0], perm[d1])
            if c > 0:
                perm[d0], perm[d1] = perm[d1], perm[d0]
                d1 = d0
            elif c < 0:
                break
    out = [0] * nd
    st = 1
    for d in perm:
        out[d] = st
        if shape[d] > 1:
            st *= shape[d]
    return tuple(out)


def preserve_strides(data):
    """The strides torch's preserve_format gives a copy of `data` (empty_like, clone): a dense,
    non-overlapping array's own, else dense ones in its strides' order; None when that is row-major."""
    if data.flags.c_contiguous or data.ndim <= 1 or not any(data.strides):
        return None     # (one dim, or a value broadcast over every dim (a sum's gradient): row-major either way)
    st = _dense_strides(data)
    if st is None:
        item = data.itemsize
        st = _infer_dense_strides(data.shape, [s // item for s in data.strides])
    return None if st == _row_major(data.shape) else st


def _row_major(shape):
    out = []
    st = 1
    for s in reversed(shape):
        out.append(st)
        st *= s if s > 1 else 1
    return tuple(reversed(out))


def like_strides(data, fmt, fn: str):
    """The strides of a new tensor like `data` in `fmt` (None, preserve_format: `preserve_strides`); None
    when row-major. The cheap case first: a row-major input with the default format."""
    if fmt is None or fmt is preserve_format:
        return None if data.flags.c_contiguous else preserve_strides(data)
    check(fmt, fn)
    return format_strides(data.shape, fmt)


def suggest(data):
    """torch's suggest_memory_format: channels_last(_3d) when the strides read as channels-last (torch's
    is_channels_last_strides_2d/3d, which settles the ambiguous size-1 cases as contiguous), else
    contiguous_format."""
    nd = data.ndim
    if nd not in (4, 5):
        return contiguous_format
    item = data.itemsize
    st = [s // item for s in data.strides]
    sizes = data.shape
    if st[1] == 0:
        return contiguous_format
    low = 0
    for d in ((1, 3, 2, 0) if nd == 4 else (1, 4, 3, 2, 0)):
        if sizes[d] == 0 or st[d] < low or (d == 0 and low == st[1]):
            return contiguous_format
        low = st[d] * (sizes[d] if sizes[d] > 1 else 1)
    return channels_last if nd == 4 else channels_last_3d


def empty_strided_array(xp, shape, dtype, strides):
    """An uninitialized array of `shape` with `strides` (in elements, dense: one element per position), over
    a fresh buffer of its element count."""
    n = 1
    for s in shape:
        n *= s
    buf = xp.empty(n, dtype)
    return xp.lib.stride_tricks.as_strided(buf, tuple(shape), tuple(s * buf.itemsize for s in strides))


def copy_strided(xp, a, strides, dtype=None):
    """A copy of array `a` (cast to `dtype`) laid out with `strides` (None: row-major)."""
    if strides is None:
        return a.astype(dtype, order="C") if dtype is not None else xp.ascontiguousarray(a) \
            if not a.flags.c_contiguous else a.copy()
    out = empty_strided_array(xp, a.shape, a.dtype if dtype is None else dtype, strides)
    xp.copyto(out, a, casting="unsafe")
    return out
