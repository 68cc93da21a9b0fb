"""Large float32/float64 matrix products on Intel MKL's CBLAS when the `mkl` wheel is installed
(`pip install tensorlib-profiler[mkl]`), as torch's CPU build runs its GEMMs on MKL.

Why: NumPy's wheels bundle OpenBLAS, whose single-precision GEMM takes 1.1-1.3x MKL's time on AVX-512
machines (measured on this project's Intel machines, 1 thread: 256x1024x1024 float32 7.5 against 5.7 ms, MKL's
equal to torch's own), which is the whole of a compute-bound model's gap to torch. And MKL's sums are torch's: a
product on OpenBLAS differs from torch's in most elements at any size (a 16x32 by 32x16 Linear layer: 71%), so a
small model's losses parted from torch's at the first step. 2-d products go through tensorlib/_cmath.c's
gemm_small (`small`: one C call, where ctypes' would cost a few µs more than a small product; a 16x32 by 32x16
layer with its bias: 1.7 µs against np.matmul and add's 3.5); batched ones, and the callers that write into an
`out` (the recurrent and convolution kernels, `matmul`), through ctypes (`gemm`), past `MIN_MNK` (or a few rows by
a large matrix: `pays`). MKL is loaded by the first product (~40 ms once).

Which CPUs: MKL's GEMMs pay on Intel CPUs only. On AMD (an EPYC with AVX2, this project's machine since session
17) they took 1.00-1.13x OpenBLAS's time (1 thread, interleaved: 64x256x256 1.06-1.13x, 256x1024x1024 1.00x) and
a conv net's step 1.77-1.93x their time in one process (1.21x torch's against 1.08-1.13x on OpenBLAS, separate
processes). So MKL is loaded wherever the wheel is, and its GEMMs are used where the CPU is Intel's, or anywhere
with `TENSORLIB_BLAS=mkl`. (Its axpy and axpby ran add_ with alpha and lerp_ on large arrays until session 45; the
fused loops of tensorlib/_cmath.c, ops/_fastmath.fma, do both in one pass now, with torch's rounding.)

`gemm(a, b, out)` returns None wherever it does not apply (MKL not loaded or its GEMMs not chosen, another
dtype or array type, an operand whose layout CBLAS cannot read without a copy, a small product); callers then
run np.matmul.
Batched products (3-d and more, one operand possibly broadcast) go through `cblas_?gemm_batch_strided`.

`TENSORLIB_BLAS=numpy` keeps every product on NumPy; `TENSORLIB_BLAS=mkl` runs the GEMMs on MKL whatever
the CPU; `TENSORLIB_BLAS=/path/to/libmkl_rt.so` names the library (its GEMMs used on any CPU). MKL's thread
pool is set by `tensorlib.set_num_threads` (threadpoolctl knows MKL) like NumPy's.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import os
import platform
import sys
from typing import Any

import numpy as np

MIN_MNK = 1 << 21          # m * n * k below this (128x128x128): np.matmul, whose call costs less than ctypes'
SMALL_M = 16               # ... but a product of at most this many rows by a matrix of SMALL_M_NK elements or more
SMALL_M_NK = 1 << 16       # goes to MKL: OpenBLAS's few-row products are slow (an RNN's step, 20x200 by 200x800:
                           # 55 against 45 µs; 4x512x512 46 against 23; 16x256x256 22 against 19; 1 thread; at
                           # 2.1M elements MKL took 0.58-1.01x NumPy's time over 9 shapes, 64x64x256 1.03x)

_ROW_MAJOR, _NO_TRANS, _TRANS = 101, 111, 112
_INT_MAX = 1 << 31         # CBLAS's sizes and leading dimensions are C ints
_lib: Any = None           # the loaded library, or False once looked for and not found
_GEMM: dict = {}           # dtype -> (cblas_?gemm, cblas_?gemm_batch_strided or None, ctypes scalar type);
                           # empty where MKL's GEMMs are not chosen (see the module docstring)
_PACK: dict = {}           # dtype -> (cblas_?gemm_pack_get_size, cblas_?gemm_pack, cblas_?gemm_compute), with _GEMM's
gemms = True               # False once looked for and no GEMM bound: matmul's kernels skip `gemm` then


def intel_cpu() -> bool:
    """Whether this CPU is Intel's (vendor GenuineIntel): where MKL's GEMMs beat OpenBLAS's."""
    from safeio import InputError, open_input
    try:
        f, _ = open_input("/proc/cpuinfo", what="CPU description", allow_nonregular=True)
        with f:
            head = f.read(1 << 16)      # the first processor's lines name the vendor
        for line in head.splitlines():
            if line.startswith(b"vendor_id"):
                return b"GenuineIntel" in line
    except (InputError, OSError):
        pass
    # Windows names the vendor here ("AMD64 Family 25 Model 1 Stepping 1, AuthenticAMD"); x86 Macs are Intel's
    return "AuthenticAMD" not in platform.processor() and "Hygon" not in platform.processor()


def _candidates():
    env = os.environ.get("TENSORLIB_BLAS", "")
    if env and env.lower() != "mkl":
        return [] if env.lower() == "numpy" else [env]
    libdir = os.path.join(sys.prefix, "lib")     # where the mkl wheel puts its libraries (Linux, Windows)
    names = [os.path.join(libdir, n) for n in ("libmkl_rt.so.3", "libmkl_rt.so.2", "libmkl_rt.so")]
    names += [os.path.join(sys.prefix, "Library", "bin", n) for n in ("mkl_rt.3.dll", "mkl_rt.2.dll")]
    found = ctypes.util.find_library("mkl_rt")
    return names + ([found] if found else [])


def _load():
    global _lib, gemms
    _lib = False
    gemms = False
    named = os.environ.get("TENSORLIB_BLAS", "")
    for path in _candidates():
        if os.sep in path and not os.path.exists(path):
            reason = "no such file"
            continue
        try:
            lib = ctypes.CDLL(path)
            _bind(lib, gemms=bool(named) or intel_cpu())   # a library without CBLAS's gemm: AttributeError
        except (OSError, AttributeError) as e:
            reason = str(e).splitlines()[0] if str(e) else type(e).__name__
            continue
        _match_threads(lib)
        _lib = lib
        gemms = bool(_GEMM)
        _bind_small(lib)
        return
    if named and named.lower() != "numpy":      # a library asked for by name that did not load: say so once
        import warnings
        warnings.warn(f"TENSORLIB_BLAS={named!r} could not be used ({reason}): matrix products run on NumPy's "
                      "BLAS. Name MKL's libmkl_rt, or set TENSORLIB_BLAS=numpy.", RuntimeWarning, stacklevel=3)


def _match_threads(lib):
    """MKL loaded after `set_num_threads` (or threadpoolctl's limits) ran: give it NumPy's BLAS pool size,
    which those set, rather than MKL's default of every core."""
    from threadpoolctl import threadpool_info
    pools = [p["num_threads"] for p in threadpool_info()
             if p.get("user_api") == "blas" and p.get("internal_api") != "mkl"]
    if pools:
        lib.MKL_Set_Num_Threads(ctypes.c_int(min(pools)))


def _bind(lib, gemms=True):
    """Binds the library's GEMMs (kept in _GEMM only when `gemms`); AttributeError where it lacks one."""
    i, p = ctypes.c_int, ctypes.c_void_p
    for dt, ch, scalar in ((np.dtype(np.float32), "s", ctypes.c_float), (np.dtype(np.float64), "d", ctypes.c_double)):
        f = getattr(lib, f"cblas_{ch}gemm")
        f.argtypes = [i, i, i, i, i, i, scalar, p, i, p, i, scalar, p, i]
        f.restype = None
        fb = getattr(lib, f"cblas_{ch}gemm_batch_strided", None)     # MKL 2020 and later
        if fb is not None:       # (MKL_INT is a C int in libmkl_rt's default LP64 interface)
            fb.argtypes = [i, i, i, i, i, i, scalar, p, i, i, p, i, i, scalar, p, i, i, i]
            fb.restype = None
        if gemms:
            _GEMM[dt] = (f, fb, scalar)
            fns = [getattr(lib, f"cblas_{ch}gemm_pack_get_size", None), getattr(lib, f"cblas_{ch}gemm_pack", None),
                   getattr(lib, f"cblas_{ch}gemm_compute", None)]      # MKL's packed GEMM (2017 and later)
            if None not in fns:
                fns[0].argtypes, fns[0].restype = [i, i, i, i], ctypes.c_size_t
                fns[1].argtypes, fns[1].restype = [i, i, i, i, i, i, scalar, p, i, p], None
                fns[2].argtypes, fns[2].restype = [i, i, i, i, i, i, p, i, p, i, scalar, p, i], None
                _PACK[dt] = tuple(fns)


_SMALL: Any = None         # tensorlib._cmath.gemm_small, once MKL's GEMMs are bound there (_bind_small)


def _bind_small(lib):
    """Hands MKL's cblas_sgemm/cblas_dgemm to tensorlib._cmath (gemm_small: a small product in one C call, where a
    ctypes call would cost more than the product) where the GEMMs are chosen (_GEMM)."""
    global _SMALL
    from ._native import load
    cm = load("tensorlib._cmath")
    if not _GEMM or cm is None or not hasattr(cm, "gemm_small"):
        return
    addr = [ctypes.cast(getattr(lib, f"cblas_{ch}gemm"), ctypes.c_void_p).value for ch in "sd"]
    cm.bind_gemm(addr[0], addr[1], np.empty)
    _SMALL = cm.gemm_small


def small(c, a, b, beta=1.0, alpha=1.0):
    """beta * c + alpha * (a @ b) as torch's addmm runs it (c copied into the output, then one GEMM with alpha and
    beta accumulating onto it), or alpha * (a @ b) where c is None or beta 0 (c not read, its NaNs neither), on MKL,
    every 2-d product (tensorlib/_cmath.c gemm_small; the GIL let go around a large one): the sums torch's CPU build
    computes, which np.matmul's OpenBLAS does not (most elements of a Linear layer's output differ in their last
    bits). 2-d float32/float64 NumPy a (m, k) and b (k, n) of one dtype (an operand CBLAS cannot read in place is
    copied to C order first, as torch's addmm makes it contiguous), m, n, k >= 1; c of their dtype, broadcasting to
    (m, n) (at most 2-d), any strides; beta and alpha numbers. Returns the new array, or None where it does not apply
    (MKL not loaded or its GEMMs not chosen: the caller runs np.matmul). Loads MKL on the first call."""
    if _lib is None:
        _load()
    f = _SMALL
    return f(c, a, b, beta, alpha) if f is not None and _lib and _GEMM else None


def available() -> bool:
    """Whether MKL's CBLAS is loaded (looked for once, on the first call)."""
    if _lib is None:
        _load()
    return bool(_lib)


def vml_function(name: str, dtype) -> int | None:
    """The address of MKL VML's vm?<name> (vmsTanh, vmdSqrt...: the forms taking the mode per call, which
    tensorlib/_cmath.c's vml passes as torch's) for float32/float64 `dtype`, or None (MKL not loaded:
    TENSORLIB_BLAS=numpy, no mkl wheel; another dtype; a library without VML). Loads MKL on the first call, as
    `gemm` does (~40 ms); the callers (ops/_fastmath.vml) keep the address."""
    ch = {np.dtype(np.float32): "s", np.dtype(np.float64): "d"}.get(dtype)
    if ch is None or not available():
        return None
    fn = getattr(_lib, f"vm{ch}{name}", None)
    return ctypes.cast(fn, ctypes.c_void_p).value if fn is not None else None


def gemms_on_mkl() -> bool:
    """Whether large GEMMs run on MKL (loaded, and chosen for this CPU): what benchmarks print."""
    return available() and bool(_GEMM)


def set_verbose(level: int) -> bool:
    """MKL's verbose mode on (1) or off (0); False when MKL is not loaded."""
    if not available():
        return False
    _lib.MKL_Verbose(ctypes.c_int(level))
    return True


def _operand(a, rows, cols):
    """(transpose flag, leading dimension) of a 2-d operand read in place: rows contiguous in memory (no
    transpose) or columns contiguous (transposed); None for any other layout."""
    item = a.itemsize
    s0, s1 = a.strides
    if s1 == item and cols * item <= s0 < _INT_MAX * item and s0 % item == 0:
        return _NO_TRANS, s0 // item
    if s0 == item and rows * item <= s1 < _INT_MAX * item and s1 % item == 0:
        return _TRANS, s1 // item
    return None


def pays(m: int, n: int, k: int) -> bool:
    """Whether an (m, k) by (k, n) product goes to MKL rather than np.matmul (see MIN_MNK)."""
    return m * n * k >= MIN_MNK or (m <= SMALL_M and n * k >= SMALL_M_NK)


def gemm(a, b, out=None, beta=0.0, alpha=1.0):
    """a @ b on MKL for float32/float64 NumPy arrays of the same dtype (2-d, or batched: see module
    docstring), into `out` when given (C-contiguous, the product's shape and dtype); None where MKL does
    not apply. The caller has checked the shapes (a.shape[-1] == b.shape[-2]). `alpha`, `beta` (2-d products): out
    = alpha * (a @ b) + beta * out, the GEMM accumulating onto what `out` holds, as torch's addmm runs (a Linear
    layer's bias copied into its output first): MKL adds it inside its k-blocked sums, so for k past a block (~256)
    the product plus the bias afterwards differs from torch's in about a third of the elements."""
    if type(a) is not np.ndarray or type(b) is not np.ndarray:
        return None
    if _lib is None:
        # loaded by the first product that may take it (32 ms once): a program of small products never loads
        # it, and never finds that time inside its first matmul (a profile shows it there)
        if a.ndim < 2 or b.ndim < 2 or (max(a.size * b.shape[-1], b.size * a.shape[-2]) < MIN_MNK
                                        and not pays(a.shape[-2], b.shape[-1], a.shape[-1])):
            return None
        _load()
    if not _lib:
        return None
    if out is not None and (type(out) is not np.ndarray or np.may_share_memory(out, a)
                            or np.may_share_memory(out, b)):
        return None         # (np.matmul copies an operand that overlaps its output)
    fns = _GEMM.get(a.dtype)
    if fns is None or b.dtype != a.dtype or a.ndim < 2 or b.ndim < 2:
        return None
    m, k = a.shape[-2:]
    n = b.shape[-1]
    if min(m, n, k) < 2 or max(m, n, k) >= _INT_MAX:
        return None
    if a.ndim == 2 and b.ndim == 2:
        if not pays(m, n, k):
            return None
        return _gemm2(fns, a, b, m, n, k, out, beta, alpha)
    if beta or alpha != 1:
        raise ValueError("gemm: alpha and beta are for 2-d products")
    return _gemm_batched(fns, a, b, m, n, k, out)


def _gemm2(fns, a, b, m, n, k, out, beta=0.0, alpha=1.0):
    la, lb = _operand(a, m, k), _operand(b, k, n)
    if la is None or lb is None:
        return None
    if out is None:
        if beta:
            raise ValueError("gemm: beta needs the out array it accumulates onto")
        out, lc = np.empty((m, n), a.dtype), n
    else:
        lc = _out_ld(out, (m, n), a.dtype)
        if lc is None:
            return None
    f, _, scalar = fns
    f(_ROW_MAJOR, la[0], lb[0], m, n, k, scalar(alpha), a.ctypes.data, la[1], b.ctypes.data, lb[1], scalar(beta),
      out.ctypes.data, lc)
    return out


def _out_ld(out, shape, dtype):
    """The leading dimension of an `out` matrix written in place (rows contiguous, evenly spaced), or None."""
    if out.shape != shape or out.dtype != dtype or not out.flags.writeable:
        return None
    lo = _operand(out, *shape)
    return lo[1] if lo is not None and lo[0] == _NO_TRANS else None


def _batch_stride(x, batch_shape):
    """The element stride from one matrix of x to the next over `batch_shape` (0: one matrix broadcast), or
    None when its batch dims are not one evenly strided run."""
    v = np.broadcast_to(x, tuple(batch_shape) + x.shape[-2:])
    dims = [(n, s) for n, s in zip(batch_shape, v.strides[:-2]) if n != 1]
    if not dims:
        return 0
    step = expect = dims[-1][1]
    for n, s in reversed(dims):
        if s != expect:
            return None
        expect = s * n
    if step < 0 or step % x.itemsize:
        return None
    return step // x.itemsize


def _apart(stride, layout, rows, cols):
    """Whether an operand's matrices, `stride` elements apart, are one shared matrix (0) or do not overlap:
    the extent MKL checks, leading dimension times the stored rows."""
    if stride is None or stride >= _INT_MAX:
        return False
    return stride == 0 or stride >= layout[1] * (rows if layout[0] == _NO_TRANS else cols)


def _gemm_batched(fns, a, b, m, n, k, out):
    f, fb, scalar = fns
    if fb is None:
        return None
    try:
        batch_shape = np.broadcast_shapes(a.shape[:-2], b.shape[:-2])
    except ValueError:
        return None
    count = 1
    for s in batch_shape:
        count *= s
    if count * m * n * k < MIN_MNK or count >= _INT_MAX:
        return None
    a2 = a[(0,) * (a.ndim - 2)]        # the first matrix: the layout of every one
    b2 = b[(0,) * (b.ndim - 2)]
    shape = tuple(batch_shape) + (m, n)
    if out is not None and out.shape != shape:
        return None
    if count == 1:      # one matrix (MKL refuses a batch stride of 0 for its output): a plain GEMM
        r = _gemm2(fns, a2, b2, m, n, k, None if out is None else out[(0,) * (out.ndim - 2)])
        return None if r is None else out if out is not None else r.reshape(shape)
    la, lb = _operand(a2, m, k), _operand(b2, k, n)
    sa, sb = _batch_stride(a, batch_shape), _batch_stride(b, batch_shape)
    # MKL refuses a stride below a matrix's extent (and then computes nothing): 0 (one matrix shared) or past it
    if la is None or lb is None or not _apart(sa, la, m, k) or not _apart(sb, lb, k, n):
        return None
    if out is None:
        out, lc, sc = np.empty(shape, a.dtype), n, m * n
    else:
        lc, sc = _out_ld(out[(0,) * len(batch_shape)], (m, n), a.dtype), _batch_stride(out, batch_shape)
        if lc is None or sc is None or sc < lc * m or sc >= _INT_MAX:
            return None
    fb(_ROW_MAJOR, la[0], lb[0], m, n, k, scalar(1.0), a.ctypes.data, la[1], sa, b.ctypes.data, lb[1], sb,
       scalar(0.0), out.ctypes.data, lc, sc, count)
    return out


_B_MATRIX, _PACKED = 162, 151     # CBLAS_IDENTIFIER's B, CBLAS_STORAGE's packed (mkl_cblas.h)


class Packed:
    """A (k, n) matrix B packed once by MKL's cblas_?gemm_pack for products `a @ B` of `m` rows (packed_matmul),
    as oneDNN's RNN primitives pack their weights: a recurrent layer's loop multiplies each step's m rows by the
    same W_hh^T, and a plain GEMM re-packs it every time (20 rows by a 1024 x 4096 float32 W_hh^T: 2.09 against
    1.13 ms a step, the pack 1.6 ms once; 100 by 128 x 512: 82 against 78 µs, 10 to pack)."""
    __slots__ = ("buf", "addr", "m", "n", "k", "dtype", "compute", "scalar")

    def __init__(self, buf, addr, m, n, k, dtype, compute, scalar):
        self.buf, self.addr, self.m, self.n, self.k, self.dtype = buf, addr, m, n, k, dtype
        self.compute, self.scalar = compute, scalar


def pack(b, m):
    """B packed for products of m rows (`Packed`), B a 2-d float32/float64 NumPy array with rows or columns
    contiguous (W_hh.T as it is); None where MKL's packed GEMM is not loaded or chosen (see `gemm`), the product
    does not pay (`pays`) or B's layout does not apply."""
    if type(b) is not np.ndarray or b.ndim != 2:
        return None
    k, n = b.shape
    if not pays(m, n, k) or min(m, n, k) < 2 or max(m, n, k) >= _INT_MAX:
        return None
    if _lib is None:
        _load()
    fns = _PACK.get(b.dtype) if _lib else None
    if fns is None:
        return None
    lb = _operand(b, k, n)
    if lb is None:
        return None
    size_fn, pack_fn, compute = fns
    scalar = _GEMM[b.dtype][2]
    buf = np.empty(size_fn(_B_MATRIX, m, n, k) + 64, np.uint8)     # (at a 64-byte boundary, as mkl_malloc's)
    addr = buf.ctypes.data + (-buf.ctypes.data) % 64
    pack_fn(_ROW_MAJOR, _B_MATRIX, lb[0], m, n, k, scalar(1.0), b.ctypes.data, lb[1], addr)
    return Packed(buf, addr, m, n, k, b.dtype, compute, scalar)


def packed_matmul(a, p: Packed, out=None):
    """a @ B for B packed by `pack`: a (m, k) NumPy array of B's dtype with rows (or columns) contiguous, into
    `out` when given (C-contiguous, (m, n), B's dtype); None where those do not hold (the caller multiplies by
    B itself then)."""
    if type(a) is not np.ndarray or a.shape != (p.m, p.k) or a.dtype != p.dtype:
        return None
    la = _operand(a, p.m, p.k)
    if la is None:
        return None
    if out is None:
        out, lc = np.empty((p.m, p.n), p.dtype), p.n
    else:
        lc = _out_ld(out, (p.m, p.n), p.dtype) if type(out) is np.ndarray and not np.may_share_memory(out, a) \
            else None
        if lc is None:
            return None
    p.compute(_ROW_MAJOR, la[0], _PACKED, p.m, p.n, p.k, a.ctypes.data, la[1], p.addr, p.n, p.scalar(0.0),
              out.ctypes.data, lc)
    return out


def matmul(a, b, out=None):
    """np.matmul(a, b[, out]) on NumPy arrays, by `gemm` where it applies."""
    r = gemm(a, b, out)
    if r is not None:
        return r
    return np.matmul(a, b) if out is None else np.matmul(a, b, out=out)
