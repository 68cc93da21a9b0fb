"""2-d convolution ops: conv2d, conv_transpose2d and the weight-gradient op, by im2col + matmul.

The input is padded and viewed as windows (N, C, OH, OW, kh, kw) without a copy (NumPy's
sliding_window_view on the CPU, as_strided on CuPy); the contraction with the weight is one batched
matmul per group. conv2d's input gradient is conv_transpose2d and conv_transpose2d's is conv2d, so both
backward passes are dispatched ops. On CUDA `tensorlib.backends.cudnn` picks among the algorithms
below (benchmark / deterministic).

On the CPU, float32 steps run on oneDNN where its wheel is installed and it pays (`_on_dnnl`; tensorlib/_dnnl.py,
switched off by backends.mkldnn.enabled = False), as torch's do. Otherwise the three steps (forward, input
gradient, weight gradient) run a few images at a time (the `_cpu` functions): each chunk's columns are copied
into a buffer that stays in the core's cache and fed to one BLAS GEMM per image and group, float32 throughout
for float32 inputs. The whole batch's im2col (tens of MB for a mid-size layer) would go through main memory
twice.

Padding is kept as (top, bottom, left, right) so that padding="same" with an even kernel pads as torch
does (the extra row/column at the end).
"""
from __future__ import annotations


from .. import _blas, _dnnl
from .. import _hooks as _H
from ..backends import cudnn, mkldnn
from ..dispatch import STATE, record_range, run_recorded
from .._graph import numpy_arrays, quiet_run, tensor_of
from .._state import GLOBAL
from .broadcast import add_at
from .._opdef import with_defaults
from ._define import dispatch, np, op
from ._fastmath import copy_ as _copy
from .reduce import SUM, sum as _sum


def _pad(xp, x, padding, value=0.0):
    """x (N, C, H, W) padded by (top, bottom, left, right) with `value`: a filled array and one slice
    assignment (np.pad's generic path took 3.0 ms against 1.9 for a 64x32x32x32 float32 input)."""
    pt, pb, pl, pr = padding
    if not (pt or pb or pl or pr):
        return x
    N, C, H, W = x.shape
    shape = (N, C, H + pt + pb, W + pl + pr)
    out = xp.zeros(shape, dtype=x.dtype) if value == 0 else xp.full(shape, value, dtype=x.dtype)
    out[:, :, pt:pt + H, pl:pl + W] = x
    return out


def out_size(n, k, s, p0, p1, d):
    return (n + p0 + p1 - d * (k - 1) - 1) // s + 1


def windows(xp, xpad, kh, kw, stride, dilation):
    """(N, C, OH, OW, kh, kw) view of a padded input: im2col without the copy."""
    N, C, H, W = xpad.shape
    sh, sw = stride
    dh, dw = dilation
    OH = (H - dh * (kh - 1) - 1) // sh + 1
    OW = (W - dw * (kw - 1) - 1) // sw + 1
    if xp is np:
        v = np.lib.stride_tricks.sliding_window_view(xpad, (dh * (kh - 1) + 1, dw * (kw - 1) + 1), axis=(2, 3))
        return v[:, :, ::sh, ::sw, ::dh, ::dw][:, :, :OH, :OW]
    s = xpad.strides
    return xp.lib.stride_tricks.as_strided(xpad, (N, C, OH, OW, kh, kw),
                                           (s[0], s[1], s[2] * sh, s[3] * sw, s[2] * dh, s[3] * dw))


def _sync_for(xp):
    if xp is np:
        return None
    return xp.cuda.get_current_stream().synchronize


# --- CPU kernels: oneDNN's where it is installed and pays (tensorlib/_dnnl.py: float32), else a chunk of images
# at a time

def _on_dnnl(Cg, Og, groups, data=False):
    """Whether a float32 CPU convolution step goes to oneDNN (where it is loaded and enabled): the input channels
    per group Cg, output channels per group Og; data: the input gradient. Measured against the kernels below
    (1 thread, best of 21, an Intel Xeon with AVX-512; oneDNN's AVX2 kernels on AMD were not measured): oneDNN
    wins depthwise (16x64x28x28 3x3: 0.8 against 2.0-2.9 ms, each step), wider groups (16 channels per group:
    1.9-2.1 against 3.7-8.5 ms) and ungrouped layers from 2 input channels (64x32x26x26 to 64: 10.9 against
    11.9 ms forward). It loses with 2 channels per group (G=32: 4.2-5.2 against 1.9-2.8 ms), with one input
    channel (64x1x28x28 to 32: 0.73 against 0.58 forward) and on input gradients of fewer than 16 channels
    (64x3x32x32: 5.5 against 3.8 ms, where torch's oneDNN took 5.2)."""
    if Cg == 1 and Og == 1:
        return mkldnn.enabled
    if groups == 1 and not data:
        return Cg >= 2 and mkldnn.enabled
    return Cg >= 16 and mkldnn.enabled


_CHUNK_BYTES = 1 << 20      # columns per chunk: about half a core's L2 cache, so that GEMM reads them from it


def _chunk(n, per_image_bytes):
    """Images per chunk: as many as fit in _CHUNK_BYTES of columns, at least one."""
    return max(1, min(n, _CHUNK_BYTES // max(1, per_image_bytes)))


def _row(n, itemsize):
    """The row length of a column buffer whose rows hold n elements: n, or one cache line more where n
    elements span a multiple of 512 bytes. Rows a multiple of 4 KiB apart map to the same L1 sets (4K
    aliasing): the net's conv1 forward (32x32 outputs: rows of 1024 floats) took 3.4 ms with them and
    2.7 with rows 1040 floats apart (best of 11, alternating). The weight gradient and the input
    gradient's buffers measured no difference."""
    return n + 64 // itemsize if (n * itemsize) % 512 == 0 else n


def _fwd_cpu(xpad, w, b, stride, dilation, groups):
    """conv2d on NumPy arrays: per chunk of images the windows are copied into a (K, OH*OW) column buffer
    per image and group (K = Cg*kh*kw) and multiplied by the weight (O/G, K) straight into the NCHW
    output. The bias rides in the GEMM: a row of ones under the columns and a bias column beside the
    weight, so that no pass over the output adds it."""
    O, Cg, kh, kw = w.shape
    win = windows(np, xpad, kh, kw, stride, dilation)
    N, C, OH, OW = win.shape[:4]
    G, K, P = groups, Cg * kh * kw, OH * OW
    cols = win.reshape(N, G, Cg, OH, OW, kh, kw).transpose(0, 1, 2, 5, 6, 3, 4)     # (N, G, Cg, kh, kw, OH, OW)
    dtype = np.result_type(xpad, w)
    Kb = K + (b is not None)
    wb = np.empty((G, O // G, Kb), dtype=dtype)
    wb[..., :K] = w.reshape(G, O // G, K)
    nb = _chunk(N, G * Kb * P * xpad.itemsize)
    buf = np.empty((nb, G, Kb, _row(P, xpad.itemsize)), dtype=xpad.dtype)[..., :P]
    if b is not None:
        wb[..., K] = b.reshape(G, O // G)
        buf[:, :, K] = 1
    y = np.empty((N, G, O // G, P), dtype=dtype)
    for n0 in range(0, N, nb):
        m = min(nb, N - n0)
        _copy(buf[:m, :, :K].reshape(m, G, Cg, kh, kw, OH, OW), cols[n0:n0 + m])
        _blas.matmul(wb, buf[:m], out=y[n0:n0 + m])
    return y.reshape(N, O, OH, OW)


def _col2im_cpu(g, w, groups, full_hw, dilation):
    """Stride-1 input gradient on NumPy arrays, per chunk of images, with the output gradient laid over
    full-width planes of the padded input (an output pixel (oh, ow) at oh*Wf + ow, the columns past each
    output row zero) and the kernel's columns folded into the GEMM. Tap (i, j) moves a gradient by
    i*dh*Wf + j*dw in the flat plane. The j part is a shift of g: kw copies of g's flat block shifted by
    j*dw (contiguous copies; what a shift pulls in from the row before is its zero columns), stacked
    under each other, so that one GEMM, rows (i, cg) by columns (j, o), sums the kernel columns with
    K = kw*O/G. The i part is kh long additions per image into the flat padded input, from offset
    i*dh*Wf, one contiguous run of Cg*Hf*Wf elements per group (what runs past a plane's end is zeros,
    into the next image's block, which its own row i = 0 then sets; on NumPy's add, contiguous runs go
    several times faster than rows of a strided view). Against one GEMM of K = O/G and kh*kw additions,
    median of 21 rounds alternating: 0.90x the time for 32->64 3x3 at 32x32, 0.65x for 16->32 5x5; folding
    every tap (no additions) took 1.44x: kh*kw copies of g no longer fit in L2."""
    N, O, OH, OW = g.shape
    _, Cg, kh, kw = w.shape
    G, Og = groups, O // groups
    Hf, Wf = full_hw
    HW = Hf * Wf
    dh, dw = dilation
    L = OH * Wf                             # the columns a GEMM computes: the rows of the output
    dtype = np.result_type(g, w)
    wt = w.reshape(G, Og, Cg, kh, kw).transpose(0, 3, 2, 4, 1).reshape(G, kh * Cg, kw * Og)   # (i, cg) x (j, o)
    nb = _chunk(N, G * (kw * Og + kh * Cg) * HW * np.dtype(dtype).itemsize)
    R = _plane_row(HW, Og, kw, dw, g.itemsize)
    gs = np.zeros((nb, G, kw, Og, R), dtype=g.dtype)     # shift j of g's full-width planes (rows R apart), zero-led
    gpv = gs[:, :, 0, :, :HW].reshape(nb, G, Og, Hf, Wf)[..., :OH, :OW]     # (a view: G stays an axis)
    gsf = gs.reshape(nb, G, kw, Og * R)
    gc = np.zeros((nb, G, kh, Cg * HW), dtype=dtype)
    gcm = gc.reshape(nb, G, kh * Cg, HW)[..., :L]
    offs = [i * dh * Wf for i in range(kh)]
    out = np.empty(N * G * Cg * HW + offs[-1], dtype=dtype)     # the tail takes the last image's overrun
    for n0 in range(0, N, nb):
        m = min(nb, N - n0)
        _copy(gpv[:m], g[n0:n0 + m].reshape(m, G, Og, OH, OW))
        for j in range(1, kw):
            np.copyto(gsf[:m, :, j, j * dw:], gsf[:m, :, 0, :Og * R - j * dw])
        _blas.matmul(wt, gs[:m].reshape(m, G, kw * Og, R)[..., :L], out=gcm[:m])
        for n in range(m):
            base = (n0 + n) * G * Cg * HW
            for i, o in enumerate(offs):
                dst = out[base + o: base + o + G * Cg * HW].reshape(G, Cg * HW)
                if i == 0:      # row 0 covers the image's whole block: it sets it (zeros included)
                    np.copyto(dst, gc[n, :, 0])
                else:
                    dst += gc[n, :, i]
    return out[:N * G * Cg * HW].reshape(N, G * Cg, Hf, Wf)


def _plane_row(hw, planes, kw, dw, itemsize):
    """The row length (elements) of _col2im_cpu's shifted planes: hw, or a few more so that no shifted copy
    writes a multiple of 4 KiB (give or take 256 bytes) away from where it reads. A copy whose destination
    is 4 bytes past a 4 KiB multiple from its source runs into 4K aliasing (each store looks to the CPU like
    the next loads' address): shifting 64 planes of 32x32 float32 by one element took 13x an aligned copy's
    time here (88 against 7 us), 11.5 of the 42 ms of a (64, 64, 30, 30) input gradient."""
    for pad in range(4096 // itemsize):
        r = hw + pad
        if all(256 <= (j * (planes * r + dw) * itemsize) % 4096 <= 3840 for j in range(1, kw)):
            return r
    return hw


_PHASE_MIN_CHANNELS = 32     # input channels per group from which the phase split pays (below: smaller GEMMs)


def _col2im_strided_cpu(g, w, groups, full_hw, stride, dilation):
    """Strided input gradient on NumPy arrays: the window gradients (one GEMM) and their strided slice
    additions a chunk of images at a time, so that they stay in cache (1.6x faster than the whole batch
    for 64x64 3x3 stride 2 at 32x32). With dilation 1 and at least _PHASE_MIN_CHANNELS input channels per
    group, split by output phase instead (_col2im_phases_cpu)."""
    N, O, OH, OW = g.shape
    _, Cg, kh, kw = w.shape
    if tuple(dilation) == (1, 1) and Cg >= _PHASE_MIN_CHANNELS:
        return _col2im_phases_cpu(g, w, groups, full_hw, stride)
    dtype = np.result_type(g, w)
    out = np.zeros((N, groups * Cg) + tuple(full_hw), dtype=dtype)
    nb = _chunk(N, groups * Cg * kh * kw * OH * OW * np.dtype(dtype).itemsize)
    for n0 in range(0, N, nb):
        _col2im_slices(np, _gcols(np, g[n0:n0 + nb], w, groups), full_hw, stride, dilation, out=out[n0:n0 + nb])
    return out


def _col2im_phases_cpu(g, w, groups, full_hw, stride):
    """Strided input gradient (dilation 1) as sh*sw stride-1 ones: the input positions of phase (ry, rx),
    out[:, :, ry::sh, rx::sw], receive exactly the taps w[:, :, ry::sh, rx::sw], each from the output
    pixel a whole number of steps away, so the phase is _col2im_cpu of g with that sub-kernel (its GEMMs
    and contiguous additions instead of kh*kw strided slice additions), copied into the phase's strided
    view. Against the slice additions, best of 7 alternating: 0.58-0.83x from 32 input channels per
    group on (64->64 3x3 stride 2, 4x4 stride 2 64->32 to 512->256), but 1.08x at 16 and 1.3x at 8
    (GEMMs of kh'*Cg rows) and 2.7x at 3."""
    N, O, OH, OW = g.shape
    _, Cg, kh, kw = w.shape
    sh, sw = stride
    out = np.empty((N, groups * Cg) + tuple(full_hw), dtype=np.result_type(g, w))
    for ry in range(sh):
        for rx in range(sw):
            dst = out[:, :, ry::sh, rx::sw]
            wk = np.ascontiguousarray(w[:, :, ry::sh, rx::sw])
            if wk.size == 0:            # a stride larger than the kernel: positions no tap reaches
                dst[...] = 0
                continue
            kh_, kw_ = wk.shape[2:]
            res = _col2im_cpu(g, wk, groups, (OH + kh_ - 1, OW + kw_ - 1), (1, 1))
            h, w_ = min(dst.shape[2], res.shape[2]), min(dst.shape[3], res.shape[3])
            dst[:, :, :h, :w_] = res[:, :, :h, :w_]
            dst[:, :, h:] = 0           # past the last tap: output padding's rows and columns
            dst[:, :, :h, w_:] = 0
    return out


def _weight_cpu(x, g, weight_shape, stride, padding, dilation, groups):
    """The weight gradient on NumPy arrays: per chunk of images the windows copied into (K, OH*OW) column
    buffers, and per image and group the columns times g (O/G, OH*OW) transposed (BLAS reads the transpose
    in place; this orientation, a (K, O/G) result, runs faster in OpenBLAS than g @ columns.T), summed over
    the images."""
    O, Cg, kh, kw = weight_shape
    G, Og, K = groups, O // groups, Cg * kh * kw
    win = windows(np, _pad(np, x, padding), kh, kw, stride, dilation)
    N, C, OH, OW = win.shape[:4]
    OH, OW = min(OH, g.shape[2]), min(OW, g.shape[3])        # g may be cut (conv_transpose2d's backward)
    P = OH * OW
    cols = win[:, :, :OH, :OW].reshape(N, G, Cg, OH, OW, kh, kw).transpose(0, 1, 2, 5, 6, 3, 4)
    gg = g[:, :, :OH, :OW].reshape(N, G, Og, P)
    dtype = np.result_type(x, g)
    nb = _chunk(N, G * K * P * x.itemsize)
    buf = np.empty((nb, G, K, P), dtype=x.dtype)
    acc = np.zeros((G, K, Og), dtype=dtype)
    for n0 in range(0, N, nb):
        m = min(nb, N - n0)
        _copy(buf[:m].reshape(m, G, Cg, kh, kw, OH, OW), cols[n0:n0 + m])
        prod = _blas.matmul(buf[:m], gg[n0:n0 + m].transpose(0, 1, 3, 2))      # (m, G, K, O/G)
        acc += prod[0] if m == 1 else prod.sum(0)
    return np.ascontiguousarray(acc.transpose(0, 2, 1)).reshape(O, Cg, kh, kw)


# --- forward algorithms ---------------------------------------------------------------------------

def _fwd_gemm(xp, xpad, w, stride, dilation, groups):
    """im2col (one copy) + one GEMM per image and group, laid out so that the result is NCHW already: the
    columns are (N, G, Cg*kh*kw, OH*OW), copied row by row of the input (its contiguous runs), and the
    product W (O/G, Cg*kh*kw) @ columns lands in (N, O, OH*OW) without a transposing copy."""
    O, Cg, kh, kw = w.shape
    win = windows(xp, xpad, kh, kw, stride, dilation)
    N, C, OH, OW = win.shape[:4]
    G = groups
    cols = win.reshape(N, G, Cg, OH, OW, kh, kw).transpose(0, 1, 2, 5, 6, 3, 4).reshape(N, G, Cg * kh * kw, OH * OW)
    y = xp.matmul(w.reshape(G, O // G, Cg * kh * kw), cols)            # (N, G, O/G, OH*OW)
    return y.reshape(N, O, OH, OW)


def _fwd_taps(xp, xpad, w, stride, dilation, groups):
    """A sum of kh*kw GEMMs over strided slices: no im2col buffer (less memory, more launches)."""
    O, Cg, kh, kw = w.shape
    N, C, H, W = xpad.shape
    sh, sw = stride
    dh, dw = dilation
    OH = (H - dh * (kh - 1) - 1) // sh + 1
    OW = (W - dw * (kw - 1) - 1) // sw + 1
    G = groups
    wg = w.reshape(G, O // G, Cg, kh, kw)
    y = xp.zeros((N, G, O // G, OH * OW), dtype=xp.result_type(xpad, w))
    for i in range(kh):
        for j in range(kw):
            xs = xpad[:, :, i * dh: i * dh + sh * (OH - 1) + 1: sh, j * dw: j * dw + sw * (OW - 1) + 1: sw]
            y += xp.matmul(wg[None, :, :, :, i, j], xs.reshape(N, G, Cg, OH * OW))
    return y.reshape(N, O, OH, OW)


# --- input-gradient (col2im) algorithms -----------------------------------------------------------

def _gcols(xp, g, w, groups):
    """Per-window input gradients (N, C, kh, kw, OH, OW) from output gradients g (N, O, OH, OW)."""
    O, Cg, kh, kw = w.shape
    N, _, OH, OW = g.shape
    G = groups
    wf = w.reshape(G, O // G, Cg * kh * kw).transpose(0, 2, 1)        # (G, Cg*k, O/G)
    gc = xp.matmul(wf[None], g.reshape(N, G, O // G, OH * OW))        # (N, G, Cg*k, P)
    return gc.reshape(N, G * Cg, kh, kw, OH, OW)


def _col2im_slices(xp, gc, full_hw, stride, dilation, out=None):
    """Adds each tap's slice into the padded input (a zeroed `out`, or a new one): a fixed order of
    additions (deterministic)."""
    N, C, kh, kw, OH, OW = gc.shape
    sh, sw = stride
    dh, dw = dilation
    if out is None:
        out = xp.zeros((N, C) + tuple(full_hw), dtype=gc.dtype)
    for i in range(kh):
        for j in range(kw):
            out[:, :, i * dh: i * dh + sh * (OH - 1) + 1: sh, j * dw: j * dw + sw * (OW - 1) + 1: sw] += gc[:, :, i, j]
    return out


def _col2im_rows(xp, g, w, groups, full_hw, dilation):
    """Stride 1: the output gradient padded on the right to the full width Wf, so that each tap's window
    gradients, flattened over (OH, Wf), land on one contiguous run of the flattened padded input (offset
    i*dh*Wf + j*dw): kh*kw long additions instead of kh*kw strided slices of short rows. The padded
    columns carry zeros (what they add past a row's end is +0), and the taps are added in the order of
    _col2im_slices: the same sums, the same results."""
    N, O, OH, OW = g.shape
    Hf, Wf = full_hw
    kh, kw = w.shape[2:]
    dh, dw = dilation
    gp = xp.zeros((N, O, OH, Wf), dtype=g.dtype)
    gp[:, :, :, :OW] = g
    gc = _gcols(xp, gp, w, groups)                                     # (N, C, kh, kw, OH, Wf)
    C = gc.shape[1]
    L = OH * Wf
    flat = xp.zeros((N, C, Hf * Wf + dw * (kw - 1)), dtype=gc.dtype)
    gcf = gc.reshape(N, C, kh, kw, L)
    for i in range(kh):
        for j in range(kw):
            o = i * dh * Wf + j * dw
            flat[:, :, o: o + L] += gcf[:, :, i, j]
    return flat[:, :, :Hf * Wf].reshape(N, C, Hf, Wf)


def _col2im_scatter(xp, gc, full_hw, stride, dilation):
    """One scatter-add of every window element (atomic adds on a GPU: the summation order varies)."""
    N, C, kh, kw, OH, OW = gc.shape
    sh, sw = stride
    dh, dw = dilation
    Hf, Wf = full_hw
    rows = (xp.arange(kh)[:, None, None, None] * dh + xp.arange(OH)[None, None, :, None] * sh)
    cols = (xp.arange(kw)[None, :, None, None] * dw + xp.arange(OW)[None, None, None, :] * sw)
    flat = (rows * Wf + cols).reshape(-1)                            # (kh*kw*OH*OW,)
    out = xp.zeros((N * C, Hf * Wf), dtype=gc.dtype)
    src = gc.reshape(N * C, -1)
    idx = xp.broadcast_to(flat, src.shape)
    base = (xp.arange(N * C) * (Hf * Wf))[:, None]
    add_at(xp, out.reshape(-1), (idx + base).reshape(-1), src.reshape(-1))
    return out.reshape(N, C, Hf, Wf)


# --- ops ------------------------------------------------------------------------------------------

def _key(step, *arrays, **params):
    return (step,) + tuple((a.shape, str(a.dtype)) for a in arrays) + tuple(sorted(params.items()))


# --- cuDNN (CuPy's cupyx.cudnn), where the installed CuPy has it ----------------------------------

_CUDNN_DTYPES = ("float16", "float32", "float64")


def _cudnn_for(xp, a, b, padding):
    """CuPy's cuDNN module where it can run this step (CUDA arrays of one float dtype, the same padding
    on both sides: cuDNN takes one number per dimension), else None. Flags: backends.cudnn."""
    if xp is np:
        return None
    m = cudnn.cupy_cudnn()
    if m is None or padding[0] != padding[1] or padding[2] != padding[3]:
        return None
    if a.dtype.name not in _CUDNN_DTYPES or b.dtype != a.dtype:
        return None
    return m


def _cudnn_fwd(m, xp, x, w, stride, padding, dilation, groups):
    (N, _, H, W), (O, _, kh, kw) = x.shape, w.shape
    y = xp.empty((N, O, out_size(H, kh, stride[0], padding[0], padding[1], dilation[0]),
                  out_size(W, kw, stride[1], padding[2], padding[3], dilation[1])), dtype=x.dtype)
    m.convolution_forward(x, w, None, y, (padding[0], padding[2]), tuple(stride), tuple(dilation), int(groups),
                          auto_tune=bool(cudnn.benchmark), tensor_core="auto")
    return y


def _cudnn_bwd_data(m, xp, g, w, out_shape, stride, padding, dilation, groups):
    """conv_transpose2d(g, w) = the input gradient of a conv2d whose output gradient is g."""
    y = xp.empty(out_shape, dtype=g.dtype)
    m.convolution_backward_data(w, g, None, y, (padding[0], padding[2]), tuple(stride), tuple(dilation), int(groups),
                                deterministic=bool(cudnn.deterministic or GLOBAL.deterministic),
                                auto_tune=bool(cudnn.benchmark), tensor_core="auto")
    return y


def _cudnn_bwd_filter(m, xp, x, g, weight_shape, stride, padding, dilation, groups):
    gw = xp.empty(tuple(weight_shape), dtype=x.dtype)
    m.convolution_backward_filter(x, g, gw, (padding[0], padding[2]), tuple(stride), tuple(dilation), int(groups),
                                  deterministic=bool(cudnn.deterministic or GLOBAL.deterministic),
                                  auto_tune=bool(cudnn.benchmark), tensor_core="auto")
    return gw


def _pick(xp, key, algos, default, m, cudnn_step, nondeterministic=()):
    """cudnn.pick over the CuPy algorithms, with cuDNN first and the default where `m` is its module.
    Under benchmark, cuDNN's own search (auto_tune) runs once untimed before tensorlib times it.
    key: (step, arrays, params) for `_key`, built only on CUDA (on the CPU the default runs, unkeyed)."""
    if xp is np:
        return algos[default]()
    if m is not None:
        algos = {"cudnn": cudnn_step, **algos}
        default = "cudnn"
    step, arrays, params = key
    return cudnn.pick(_key(step, *arrays, **params), algos, nondeterministic=nondeterministic, default=default,
                      sync=_sync_for(xp), warm=("cudnn",) if m is not None else ())


@op("conv2d", save="i", amp="lower", node_name="ConvolutionBackward0")
def CONV2D(xp, x, w, b=None, stride=(1, 1), padding=(0, 0, 0, 0), dilation=(1, 1), groups=1):
    if _H.range_hooks:      # the backend's choice and run: torch's _convolution under aten::convolution
        return _H.op_step("_convolution", _conv2d, xp, x, w, b, stride, padding, dilation, groups)
    return _conv2d(xp, x, w, b, stride, padding, dilation, groups)


def _conv2d(xp, x, w, b, stride, padding, dilation, groups):
    if xp is np:
        y = None
        if _on_dnnl(w.shape[1], w.shape[0] // groups, groups):     # torch's CPU step there: mkldnn_convolution
            y = _H.op_step("mkldnn_convolution", _dnnl.conv2d, x, w, b, stride, padding, dilation, groups) \
                if _H.range_hooks else _dnnl.conv2d(x, w, b, stride, padding, dilation, groups)
        return y if y is not None else _fwd_cpu(_pad(np, x, padding), w, b, stride, dilation, groups)
    key = ("conv2d", (x, w), dict(stride=stride, padding=padding, dilation=dilation, groups=groups))
    m = _cudnn_for(xp, x, w, padding)
    y = _pick(xp, key, {"gemm": lambda: _fwd_gemm(xp, _pad(xp, x, padding), w, stride, dilation, groups),
                        "taps": lambda: _fwd_taps(xp, _pad(xp, x, padding), w, stride, dilation, groups)},
              "gemm", m, lambda: _cudnn_fwd(m, xp, x, w, stride, padding, dilation, groups))
    y = xp.ascontiguousarray(y)     # torch's output is contiguous NCHW: y.view(N, -1) must work
    if b is not None:
        y += b.reshape(1, -1, 1, 1)
    return y


@op("conv_transpose2d", save="i", amp="lower", node_name="ConvolutionBackward0")
def CONV_T2D(xp, x, w, b=None, stride=(1, 1), padding=(0, 0, 0, 0), output_padding=(0, 0), dilation=(1, 1),
             groups=1):
    """The input gradient of conv2d: windows' gradients (a GEMM) summed back into place (col2im)."""
    N, _, H, W = x.shape
    Cin, Cg, kh, kw = w.shape
    pt, pb, pl, pr = padding
    Ho = (H - 1) * stride[0] - pt - pb + dilation[0] * (kh - 1) + output_padding[0] + 1
    Wo = (W - 1) * stride[1] - pl - pr + dilation[1] * (kw - 1) + output_padding[1] + 1
    full = (Ho + pt + pb, Wo + pl + pr)
    gcs = []

    def gc():                               # the window gradients, shared by the col2im algorithms
        if not gcs:
            gcs.append(_gcols(xp, x, w, groups))
        return gcs[0]

    key = ("col2im", (x, w), dict(stride=stride, padding=padding, dilation=dilation, groups=groups,
                                  output_padding=output_padding))
    m = _cudnn_for(xp, x, w, padding)
    if m is not None and (out_size(Ho, kh, stride[0], pt, pb, dilation[0]), out_size(Wo, kw, stride[1], pl, pr,
                                                                                    dilation[1])) != (H, W):
        m = None                            # cuDNN needs the forward conv of the result to give x's size
    if xp is np and _on_dnnl(Cg, Cin // groups, groups, data=True):
        y = _dnnl.backward_data(x, w, (N, Cg * groups, Ho, Wo), stride, padding, dilation, groups)
        if y is not None:
            return y if b is None else y + b.reshape(1, -1, 1, 1)
    if xp is np and tuple(stride) == (1, 1):
        slices = lambda: _col2im_cpu(x, w, groups, full, dilation)[:, :, pt: pt + Ho, pl: pl + Wo]  # noqa: E731
    elif xp is np:
        slices = lambda: _col2im_strided_cpu(x, w, groups, full, stride, dilation)[:, :, pt: pt + Ho,  # noqa: E731
                                                                                   pl: pl + Wo]
    elif tuple(stride) == (1, 1):
        slices = lambda: _col2im_rows(xp, x, w, groups, full, dilation)[:, :, pt: pt + Ho, pl: pl + Wo]  # noqa: E731
    else:
        slices = lambda: _col2im_slices(xp, gc(), full, stride, dilation)[:, :, pt: pt + Ho, pl: pl + Wo]  # noqa: E731
    out = _pick(xp, key, {"slices": slices,
                          "scatter": lambda: _col2im_scatter(xp, gc(), full, stride, dilation)[:, :, pt: pt + Ho,
                                                                                               pl: pl + Wo]},
                "slices", m, lambda: _cudnn_bwd_data(m, xp, x, w, (N, Cg * groups, Ho, Wo), stride, padding, dilation,
                                                     groups),
                nondeterministic=("scatter",) if xp is not np else ())
    if b is not None:
        out = out + b.reshape(1, -1, 1, 1)
    return xp.ascontiguousarray(out)


@op("convolution_backward_weight", save="i", node_name="ConvolutionBackwardWeightBackward0")
def CONV_WEIGHT(xp, x, g, weight_shape=(), stride=(1, 1), padding=(0, 0, 0, 0), dilation=(1, 1), groups=1):
    """d conv2d(x, w) / d w contracted with g: (O/G, N*OH*OW) @ im2col(x) per group (or cuDNN's; on the CPU
    a chunk of images at a time, _weight_cpu)."""
    if xp is np:
        return _weight_grad_cpu(x, g, weight_shape, False, stride, padding, dilation, groups)[0]
    O, Cg, kh, kw = weight_shape
    m = _cudnn_for(xp, x, g, padding)
    if m is not None and (out_size(x.shape[2], kh, stride[0], padding[0], padding[1], dilation[0]),
                          out_size(x.shape[3], kw, stride[1], padding[2], padding[3], dilation[1])) != g.shape[2:]:
        m = None                            # g is cut to a smaller output (conv_transpose2d's backward)
    key = ("conv_weight", (x, g), dict(weight_shape=tuple(weight_shape), stride=stride, padding=padding,
                                       dilation=dilation, groups=groups))
    return _pick(xp, key, {"gemm": lambda: _weight_gemm(xp, x, g, weight_shape, stride, padding, dilation, groups)},
                 "gemm", m, lambda: _cudnn_bwd_filter(m, xp, x, g, weight_shape, stride, padding, dilation, groups))


def _weight_grad_cpu(x, g, weight_shape, bias, stride, padding, dilation, groups):
    """(weight gradient, bias gradient or None) on NumPy arrays: oneDNN's one pass where it pays (_on_dnnl), the
    bias gradient from it when `bias`; else the im2col kernel's weight gradient, and None (the caller sums g)."""
    if _on_dnnl(weight_shape[1], weight_shape[0] // groups, groups):
        r = _dnnl.backward_weights(x, g, weight_shape, bias, stride, padding, dilation, groups)
        if r is not None:
            return r
    return _weight_cpu(x, g, weight_shape, stride, padding, dilation, groups), None


def _weight_gemm(xp, x, g, weight_shape, stride, padding, dilation, groups):
    """One GEMM per group: g as (O/G, N*OH*OW) times the columns (Cg*kh*kw, N*OH*OW) transposed (BLAS
    reads the transpose in place); the columns are copied in the input's row order (contiguous runs)."""
    O, Cg, kh, kw = weight_shape
    G = groups
    win = windows(xp, _pad(xp, x, padding), kh, kw, stride, dilation)
    N, C, OH, OW = win.shape[:4]
    OH, OW = min(OH, g.shape[2]), min(OW, g.shape[3])
    win = win[:, :, :OH, :OW]
    cols = win.reshape(N, G, Cg, OH, OW, kh, kw).transpose(1, 2, 5, 6, 0, 3, 4).reshape(G, Cg * kh * kw, N * OH * OW)
    gg = g[:, :, :OH, :OW].reshape(N, G, O // G, OH * OW).transpose(1, 2, 0, 3).reshape(G, O // G, N * OH * OW)
    return xp.matmul(gg, cols.transpose(0, 2, 1)).reshape(O, Cg, kh, kw)


@CONV_WEIGHT.def_backward
def _(ctx, gw):
    """The weight gradient is bilinear in (x, g): <gw, W'> = <g, conv2d(x, W')>, so its adjoints are a
    conv2d of x (for g) and a conv_transpose2d of g (for x): second derivatives through conv work."""
    x, g = ctx.saved_inputs
    a = dict(ctx.attrs)
    a.pop("weight_shape", None)
    need = ctx.needs_input_grad
    gx = gg = None
    if need[0]:
        gx = _input_grad(x.shape, g, gw, a)
    if need[1]:
        gg = dispatch(CONV2D, x, gw, None, **a)
        if tuple(gg.shape) != tuple(g.shape):
            gg = gg[:, :, :g.shape[2], :g.shape[3]]
    return gx, gg


def _input_grad(x_shape, g, w, a, run=dispatch):
    """conv2d's input gradient: conv_transpose2d with the output padding that restores x's size."""
    H, W = x_shape[2:]
    st, pd, dl = a.get("stride", (1, 1)), a.get("padding", (0,) * 4), a.get("dilation", (1, 1))
    kh, kw = w.shape[2:]
    OH, OW = g.shape[2:]
    oph = H + pd[0] + pd[1] - ((OH - 1) * st[0] + dl[0] * (kh - 1) + 1)
    opw = W + pd[2] + pd[3] - ((OW - 1) * st[1] + dl[1] * (kw - 1) + 1)
    return run(CONV_T2D, g, w, None, stride=st, padding=pd, output_padding=(oph, opw), dilation=dl,
               groups=a.get("groups", 1))


def _conv2d_grads(x, w, b, g, a, need):
    """conv2d's gradients for x, w, b (the op's attrs `a`), each one differentiable op dispatched on 4-D tensors:
    the create_graph formula (a plain backward runs the one CONV_BACKWARD op)."""
    gx = gw = gb = None
    if need[0]:
        gx = _input_grad(x.shape, g, w, a)
    if need[1]:
        gw = dispatch(CONV_WEIGHT, x, g, weight_shape=tuple(w.shape), **a)
    if b is not None and need[2]:
        gb = _sum(g, (0, 2, 3))
    return gx, gw, gb


@op("convolution_backward", node_name="ConvolutionBackwardBackward0")
def CONV_BACKWARD(xp, g, x, w, bias=False, stride=(1, 1), padding=(0, 0, 0, 0), dilation=(1, 1), groups=1,
                  need=(True, True, True)):
    """torch's aten::convolution_backward as one op, for a conv2d backward that is not itself differentiated
    (create_graph=False; under create_graph the dispatched ops of _conv2d_grads run, each differentiable): the
    input gradient (conv_transpose2d's kernel), the weight gradient and, with `bias`, the bias gradient in one
    op, as torch's trace shows it. On the CPU, where oneDNN takes the weight gradient (_on_dnnl), the bias
    gradient comes from the same pass: no separate sum over the output gradient (0.3-0.5 ms of a 64x64x30x30
    float32 gradient's 19 ms). A gradient not needed comes back as a 0-d zero."""
    a = dict(stride=stride, padding=padding, dilation=dilation, groups=groups)
    gx = gw = gb = xp.zeros((), dtype=g.dtype)
    if need[0]:
        gx = _input_grad(x.shape, g, w, a, run=lambda op, *args, **kw: op.kernel(xp, *args, **kw))
    gb_done = None
    if need[1]:
        if xp is np:
            gw, gb_done = _weight_grad_cpu(x, g, tuple(w.shape), bool(bias) and need[2], **a)
        else:
            gw = CONV_WEIGHT.kernel(xp, x, g, weight_shape=tuple(w.shape), **a)
    if bias and need[2]:
        gb = gb_done if gb_done is not None else SUM.kernel(xp, g, dim=(0, 2, 3))
    return gx, gw, gb


@CONV2D.def_backward
def _(ctx, g):
    x, w, b = ctx.saved_inputs
    if STATE.grad_enabled:
        return _conv2d_grads(x, w, b, g, ctx.attrs, ctx.needs_input_grad)
    need = tuple(bool(n) for n in ctx.needs_input_grad[:2]) + (b is not None and bool(ctx.needs_input_grad[2]),)
    gx, gw, gb = dispatch(CONV_BACKWARD, g, x, w, bias=b is not None, need=need, **ctx.attrs)
    return gx if need[0] else None, gw if need[1] else None, gb if need[2] else None


def _conv_arrays(ctx, g):
    """[g, x, w, b] as NumPy arrays (b None without a bias) when g, x and w are NumPy arrays of one dtype (the
    case in which a formula on arrays runs the dispatched formula's kernels on the same operands), else None."""
    p = numpy_arrays((g, *ctx.inputs))
    return p if p is not None and len(p) == 4 and p[0].dtype == p[1].dtype == p[2].dtype else None


def _conv2d_bwd_arrays(ctx, g, run=quiet_run):
    """conv2d's formula on NumPy arrays, its ops' kernels called directly (the quiet path, OpDef) or, with
    run=run_recorded, run and recorded as the dispatched ops (the sink formula)."""
    p = _conv_arrays(ctx, g)
    if p is None:
        return None
    gd, xd, wd, bd = p
    need = tuple(bool(n) for n in ctx.needs_input_grad[:2]) + (bd is not None and bool(ctx.needs_input_grad[2]),)
    grads = run(CONV_BACKWARD, gd, xd, wd, bias=bd is not None, need=need, **ctx.attrs)
    return tuple(tensor_of(r) if n else None for r, n in zip(grads, need))


CONV2D.quiet_backward = _conv2d_bwd_arrays
CONV2D.sink_backward = with_defaults(_conv2d_bwd_arrays, run=run_recorded)


@op("conv1d", save="i", amp="lower", node_name="ConvolutionBackward0")
def CONV1D(xp, x, w, b=None, stride=(1, 1), padding=(0, 0, 0, 0), dilation=(1, 1), groups=1):
    """torch's aten::conv1d as one op: conv2d's kernel over a height of 1 (the attrs are conv2d's)."""
    return CONV2D.kernel(xp, x[:, :, None], w[:, :, None], b, stride=stride, padding=padding, dilation=dilation,
                         groups=groups)[:, :, 0]


@CONV1D.def_backward
def _(ctx, g):
    x, w, b = ctx.saved_inputs
    gx, gw, gb = _conv2d_grads(x.unsqueeze(2), w.unsqueeze(2), b, g.unsqueeze(2), ctx.attrs, ctx.needs_input_grad)
    return (gx.squeeze(2) if gx is not None else None, gw.squeeze(2) if gw is not None else None, gb)


@CONV_T2D.def_backward
def _(ctx, g):
    x, w, b = ctx.saved_inputs
    a = dict(ctx.attrs)
    a.pop("output_padding", None)
    need = ctx.needs_input_grad
    gx = gw = gb = None
    if need[0]:
        gx = dispatch(CONV2D, g, w, None, **a)
        H, W = x.shape[2:]
        if tuple(gx.shape[2:]) != (H, W):
            gx = gx[:, :, :H, :W]
    if need[1]:
        gw = dispatch(CONV_WEIGHT, g, x, weight_shape=tuple(w.shape), **a)
    if b is not None and need[2]:
        gb = _sum(g, (0, 2, 3))
    return gx, gw, gb


def _conv_t2d_bwd_arrays(ctx, g, run=quiet_run):
    """conv_transpose2d's formula on NumPy arrays (see _conv2d_bwd_arrays), where conv2d of g gives the
    input's size (no slice of it to take); else None."""
    p = _conv_arrays(ctx, g)
    if p is None:
        return None
    gd, xd, wd, bd = p
    a = dict(ctx.attrs)
    a.pop("output_padding", None)
    need = ctx.needs_input_grad
    st, pd, dl = a.get("stride", (1, 1)), a.get("padding", (0,) * 4), a.get("dilation", (1, 1))
    if need[0] and (out_size(gd.shape[2], wd.shape[2], st[0], pd[0], pd[1], dl[0]),
                    out_size(gd.shape[3], wd.shape[3], st[1], pd[2], pd[3], dl[1])) != xd.shape[2:]:
        return None
    gx = run(CONV2D, gd, wd, None, **a) if need[0] else None
    gw = run(CONV_WEIGHT, gd, xd, weight_shape=tuple(wd.shape), **a) if need[1] else None
    gb = run(SUM, gd, dim=(0, 2, 3)) if bd is not None and need[2] else None
    return tuple(None if r is None else tensor_of(r) for r in (gx, gw, gb))


CONV_T2D.quiet_backward = _conv_t2d_bwd_arrays
CONV_T2D.sink_backward = with_defaults(_conv_t2d_bwd_arrays, run=run_recorded)


# --- public functions -----------------------------------------------------------------------------

def _pair(v, name="stride"):
    if isinstance(v, int):
        return (v, v)
    v = tuple(int(i) for i in v)
    if len(v) == 1:
        return (v[0], v[0])
    if len(v) != 2:
        raise RuntimeError(f"expected {name} to be a single integer value or a list of 2 values to match the "
                           f"convolution dimensions, but got {name}={list(v)}")
    return v


def check_types(input, weight, bias):
    """torch's message for the commonest conv mistake: a float64 input to a float32 layer (or back)."""
    if STATE.autocast is not None:
        return
    if input._data.dtype != weight._data.dtype:
        from .nn_ops import type_name
        raise RuntimeError(f"Input type ({type_name(input)}) and weight type ({type_name(weight)}) should be the "
                           "same; convert the input with .to(weight.dtype) or the module with .double()/.float()")
    if bias is not None and bias._data.dtype != input._data.dtype:
        from .nn_ops import type_name
        raise RuntimeError(f"Input type ({type_name(input)}) and bias type ({type_name(bias)}) should be the same")


def _padding4(padding, ksize, dilation, stride):
    if isinstance(padding, str):
        if padding == "valid":
            return (0, 0, 0, 0)
        if padding == "same":
            if stride != (1, 1):
                raise ValueError("padding='same' is not supported for strided convolutions")
            out = []
            for k, d in zip(ksize, dilation):
                total = d * (k - 1)
                out += [total // 2, total - total // 2]
            return tuple(out)
        raise ValueError(f"Invalid padding string '{padding}', should be one of {{'valid', 'same'}}")
    ph, pw = _pair(padding, "padding")
    return (ph, ph, pw, pw)


@record_range("conv2d", "op")           # torch's composite around convolution (the CONV2D op)
def conv2d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    if input.ndim not in (3, 4):
        raise RuntimeError(f"Expected 3D (unbatched) or 4D (batched) input to conv2d, but got input of size: "
                           f"{list(input.shape)}")
    if input.ndim == 3:
        return conv2d(input.unsqueeze(0), weight, bias, stride, padding, dilation, groups).squeeze(0)
    if weight.ndim < 3:
        raise RuntimeError("weight should have at least three dimensions")
    if weight.ndim != 4:      # torch checks the stride's length against the weight's spatial dims first
        raise RuntimeError(f"expected stride to be a single integer value or a list of {weight.ndim - 2} values to "
                           f"match the convolution dimensions, but got stride={list(_pair(stride))}")
    stride, dilation = _pair(stride), _pair(dilation, "dilation")
    pad = _padding4(padding, weight.shape[2:], dilation, stride)
    _check_conv(tuple(input.shape), tuple(weight.shape), groups, pad, stride, dilation)
    check_types(input, weight, bias)
    return dispatch(CONV2D, input, weight, bias, stride=stride, padding=pad, dilation=dilation, groups=int(groups))


def _check_conv(x_shape, w_shape, groups, pad, stride, dilation):
    """torch's errors for a channel count that does not match the weight and a kernel larger than the
    padded input (4-D shapes: conv1d passes its height of 1)."""
    if x_shape[1] != w_shape[1] * groups:
        raise RuntimeError(f"Given groups={groups}, weight of size {list(w_shape)}, expected input"
                           f"{list(x_shape)} to have {w_shape[1] * groups} channels, but got "
                           f"{x_shape[1]} channels instead")
    H, W = x_shape[2:]
    if out_size(H, w_shape[2], stride[0], pad[0], pad[1], dilation[0]) < 1 or \
            out_size(W, w_shape[3], stride[1], pad[2], pad[3], dilation[1]) < 1:
        raise RuntimeError(f"Calculated padded input size per channel: ({H + pad[0] + pad[1]} x "
                           f"{W + pad[2] + pad[3]}). Kernel size: ({w_shape[2]} x {w_shape[3]}). Kernel "
                           f"size can't be greater than actual input size")


def conv1d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    """One op, as torch's aten::conv1d (the conv2d kernel over a height of 1)."""
    if input.ndim not in (2, 3):
        raise RuntimeError(f"Expected 2D (unbatched) or 3D (batched) input to conv1d, but got input of size: "
                           f"{list(input.shape)}")
    if input.ndim == 2:
        return conv1d(input.unsqueeze(0), weight, bias, stride, padding, dilation, groups).squeeze(0)
    s = stride if isinstance(stride, int) else stride[0]
    d = dilation if isinstance(dilation, int) else dilation[0]
    if weight.ndim < 3:
        raise RuntimeError("weight should have at least three dimensions")
    if weight.ndim != 3:
        raise RuntimeError(f"expected stride to be a single integer value or a list of {weight.ndim - 2} values to "
                           f"match the convolution dimensions, but got stride={[s]}")
    p = padding if isinstance(padding, str) else (0, padding if isinstance(padding, int) else padding[0])
    k = weight.shape[2]
    pad = _padding4(p, (1, k), (1, d), (1, s))
    N, C, L = input.shape
    _check_conv((N, C, 1, L), (weight.shape[0], weight.shape[1], 1, k), groups, pad, (1, s), (1, d))
    check_types(input, weight, bias)
    return dispatch(CONV1D, input, weight, bias, stride=(1, s), padding=pad, dilation=(1, d), groups=int(groups))


def conv_transpose2d(input, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1, dilation=1):
    if input.ndim == 3:
        return conv_transpose2d(input.unsqueeze(0), weight, bias, stride, padding, output_padding, groups,
                                dilation).squeeze(0)
    stride, dilation = _pair(stride), _pair(dilation, "dilation")
    ph, pw = _pair(padding, "padding")
    op_ = _pair(output_padding, "output_padding")
    if op_[0] >= max(stride[0], dilation[0]) or op_[1] >= max(stride[1], dilation[1]):
        raise RuntimeError("output padding must be smaller than either stride or dilation, but got "
                           f"output_padding={list(op_)}, stride={list(stride)}, dilation={list(dilation)}")
    if input.shape[1] != weight.shape[0]:
        raise RuntimeError(f"Given transposed=1, weight of size {list(weight.shape)}, expected input"
                           f"{list(input.shape)} to have {weight.shape[0]} channels, but got {input.shape[1]} "
                           f"channels instead")
    check_types(input, weight, bias)
    return dispatch(CONV_T2D, input, weight, bias, stride=stride, padding=(ph, ph, pw, pw), output_padding=op_,
                    dilation=dilation, groups=int(groups))


__all__ = ["conv2d", "conv1d", "conv_transpose2d", "windows", "out_size"]
