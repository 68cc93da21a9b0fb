"""2-d convolutions of float32 NumPy arrays on Intel's oneDNN (the library torch's CPU convolutions run on), when
its wheel is installed (`pip install tensorlib-profiler[mkl]`, which brings `onednn-cpu-gomp`).

Why: im2col + GEMM runs a mid-size convolution's forward at the GEMM's speed plus the column copy, and the GEMM
alone took about torch's whole time (a (64, 32, 32, 32) input, 64 3x3 filters: MKL's GEMM 14.5 ms, the copy 3.5,
torch 15.8; 1 thread, this project's Intel machine). oneDNN's direct convolutions read the input in place, in a
blocked layout (nChw16c) that a reorder makes from NCHW, as torch's mkldnn_convolution does.

`conv2d(x, w, b, stride, padding, dilation, groups)`, `backward_data(g, w, x_shape, ...)` and
`backward_weights(x, g, w_shape, bias, ...)` return the result (NCHW, C-contiguous, float32), or None where oneDNN
does not apply: not loaded, not float32, an input that is not a C-contiguous NumPy array or is empty, or a
geometry it refuses; callers then run their own kernels (tensorlib/ops/conv_ops.py, which also decides where
oneDNN pays). One primitive (and its reorders) per
geometry, cached. Threads: the OpenMP pool of libgomp, which threadpoolctl (tensorlib.set_num_threads) sets; a
forked child of a process that loaded oneDNN leaves it off (libgomp's pool does not survive a fork).

`TENSORLIB_DNNL=0` keeps every convolution on the im2col kernels; `TENSORLIB_DNNL=/path/to/libdnnl.so.3` names
the library. Enum values and signatures: oneDNN v3's C API (dnnl.h, dnnl_types.h of 3.2).
"""
from __future__ import annotations

import ctypes
import ctypes.util
import os
import sys
import threading
from typing import Any

import numpy as np

# dnnl_types.h (v3)
_CPU, _F32 = 1, 3
_TAG_ANY, _TAG_X, _TAG_NCHW, _TAG_OIHW, _TAG_GOIHW = 1, 2, 5, 5, 6
_FORWARD_TRAINING = 64
_CONV_DIRECT = 1
_ARG_SRC, _ARG_DST, _ARG_WEIGHTS, _ARG_BIAS = 1, 17, 33, 41
_ARG_DIFF_SRC, _ARG_DIFF_DST, _ARG_DIFF_WEIGHTS, _ARG_DIFF_BIAS = 129, 145, 161, 169
_Q_SRC, _Q_DIFF_SRC, _Q_WEIGHTS, _Q_DIFF_WEIGHTS, _Q_DST, _Q_DIFF_DST = 129, 130, 131, 132, 133, 134
_STREAM_DEFAULT = 1
_MAX_NDIMS = 12

_Dims = ctypes.c_int64 * _MAX_NDIMS
_F32_DT = np.dtype(np.float32)


class _ExecArg(ctypes.Structure):
    _fields_ = [("arg", ctypes.c_int), ("memory", ctypes.c_void_p)]


_lib: Any = None        # the loaded library, or False once looked for and not found
_engine = ctypes.c_void_p()
_stream = ctypes.c_void_p()
_cache: dict = {}       # geometry -> _Plan
_lock = threading.Lock()      # one call at a time (the stream, the plans' memory objects and _buffer are shared)


def _fresh_lock_in_child():
    """After a fork: a fresh lock (one held by another thread at the fork must not leave the child waiting), and
    oneDNN off in the child where the parent loaded it: its OpenMP pool (libgomp's) does not survive a fork, and a
    parallel region in the child waits for the parent's threads for ever (a DataLoader worker's convolution hung
    so). The child's convolutions run the im2col kernels."""
    global _lock, _lib
    _lock = threading.Lock()
    if _lib:
        _lib = False


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_fresh_lock_in_child)


def _candidates():
    env = os.environ.get("TENSORLIB_DNNL", "")
    if env:
        return [] if env == "0" else [env]
    libdir = os.path.join(sys.prefix, "lib")
    names = [os.path.join(libdir, n) for n in ("libdnnl.so.3", "libdnnl.so")]
    found = ctypes.util.find_library("dnnl")
    return names + ([found] if found else [])


def _bind(lib):
    p, i, i64p = ctypes.c_void_p, ctypes.c_int, ctypes.POINTER(ctypes.c_int64)
    sigs = {
        "dnnl_engine_create": [ctypes.POINTER(p), i, ctypes.c_size_t],
        "dnnl_stream_create": [ctypes.POINTER(p), p, ctypes.c_uint],
        "dnnl_stream_wait": [p],
        "dnnl_memory_desc_create_with_tag": [ctypes.POINTER(p), i, i64p, i, i],
        "dnnl_memory_desc_destroy": [p],
        "dnnl_memory_desc_equal": [p, p],
        "dnnl_memory_desc_get_size": [p],
        "dnnl_memory_create": [ctypes.POINTER(p), p, p, p],
        "dnnl_memory_set_data_handle": [p, p],
        "dnnl_convolution_forward_primitive_desc_create": [ctypes.POINTER(p), p, i, i, p, p, p, p, i64p, i64p,
                                                           i64p, i64p, p],
        "dnnl_convolution_backward_data_primitive_desc_create": [ctypes.POINTER(p), p, i, p, p, p, i64p, i64p,
                                                                 i64p, i64p, p, p],
        "dnnl_convolution_backward_weights_primitive_desc_create": [ctypes.POINTER(p), p, i, p, p, p, p, i64p,
                                                                    i64p, i64p, i64p, p, p],
        "dnnl_primitive_desc_query_md": [p, i, i],
        "dnnl_reorder_primitive_desc_create": [ctypes.POINTER(p), p, p, p, p, p],
        "dnnl_primitive_create": [ctypes.POINTER(p), p],
        "dnnl_primitive_execute": [p, p, i, ctypes.POINTER(_ExecArg)],
        "dnnl_memory_destroy": [p],
        "dnnl_primitive_desc_destroy": [p],
        "dnnl_primitive_destroy": [p],
        "dnnl_set_verbose": [i],
    }
    for name, args in sigs.items():
        f = getattr(lib, name)
        f.argtypes = args
        f.restype = ctypes.c_int
    lib.dnnl_primitive_desc_query_md.restype = p
    lib.dnnl_memory_desc_equal.restype = i
    lib.dnnl_memory_desc_get_size.restype = ctypes.c_size_t


def _load():
    global _lib
    _lib = False
    reason = "no such file"
    for path in _candidates():
        if os.sep in path and not os.path.exists(path):
            continue
        try:
            lib = ctypes.CDLL(path)
            _bind(lib)
        except (OSError, AttributeError) as e:      # (AttributeError: a library without oneDNN's C API)
            reason = str(e).splitlines()[0] if str(e) else type(e).__name__
            continue
        if lib.dnnl_engine_create(ctypes.byref(_engine), _CPU, 0) != 0 or \
                lib.dnnl_stream_create(ctypes.byref(_stream), _engine, _STREAM_DEFAULT) != 0:
            reason = "no CPU engine"
            continue
        _match_threads()
        _lib = lib
        return
    named = os.environ.get("TENSORLIB_DNNL", "")
    if named and named != "0":      # a library asked for by name that did not load: say so once
        import warnings
        warnings.warn(f"TENSORLIB_DNNL={named!r} could not be used ({reason}): convolutions run on tensorlib's "
                      "im2col kernels. Name oneDNN's libdnnl.so.3, or set TENSORLIB_DNNL=0.", RuntimeWarning,
                      stacklevel=3)


def _match_threads():
    """oneDNN loaded after `set_num_threads` (or threadpoolctl's limits) ran: give its OpenMP pool the size of
    NumPy's BLAS pool, which those set, rather than OpenMP's default of every core."""
    from threadpoolctl import threadpool_info
    pools = [p["num_threads"] for p in threadpool_info() if p.get("user_api") == "blas"]
    if pools:
        try:
            ctypes.CDLL("libgomp.so.1").omp_set_num_threads(ctypes.c_int(min(pools)))
        except (OSError, AttributeError):
            pass


def available() -> bool:
    """Whether oneDNN is loaded (looked for once, on the first call)."""
    if _lib is None:
        with _lock:
            if _lib is None:
                _load()
    return bool(_lib)


def set_verbose(level) -> bool:
    """oneDNN's verbose output (0 off, 1 each primitive run, 2 also each created): whether it was set."""
    return available() and _lib.dnnl_set_verbose(int(level)) == 0


def _check(status, what):
    if status != 0:
        raise _Refused(f"{what}: dnnl status {status}")


class _Refused(Exception):
    """oneDNN refused a geometry (or ran out of memory): the caller's own kernel runs."""


class _Plan:
    """One primitive for one geometry, its operands (_Operand, or None for a bias: plain, no reorder) and every
    oneDNN handle made for it, destroyed with the plan (`destroy`, on eviction from the cache)."""

    def __init__(self):
        self.handles: list = []         # (destroy function's name, handle)
        self.operands: list = []
        self.prim = None
        self.bias = None                # a plain (O,) memory for a bias operand, where there is one

    def own(self, kind, handle):
        self.handles.append((kind, handle))
        return handle

    def md(self, dims, tag):
        md = ctypes.c_void_p()
        _check(_lib.dnnl_memory_desc_create_with_tag(ctypes.byref(md), len(dims), _Dims(*dims), _F32, tag),
               "memory desc")
        return self.own("dnnl_memory_desc_destroy", md)

    def weights_md(self, w_shape, groups, tag_any=False):
        O, Cg, kh, kw = w_shape
        if groups == 1:
            return self.md((O, Cg, kh, kw), _TAG_ANY if tag_any else _TAG_OIHW)
        return self.md((groups, O // groups, Cg, kh, kw), _TAG_ANY if tag_any else _TAG_GOIHW)

    def memory(self, md):
        m = ctypes.c_void_p()
        _check(_lib.dnnl_memory_create(ctypes.byref(m), md, _engine, None), "memory")
        return self.own("dnnl_memory_destroy", m)

    def pd(self, create, *args, what):
        """A primitive descriptor by create(&pd, engine, *args)."""
        pd = ctypes.c_void_p()
        _check(create(ctypes.byref(pd), _engine, *args), what)
        return self.own("dnnl_primitive_desc_destroy", pd)

    def primitive(self, pd):
        prim = ctypes.c_void_p()
        _check(_lib.dnnl_primitive_create(ctypes.byref(prim), pd), "primitive")
        return self.own("dnnl_primitive_destroy", prim)

    def fwd_pd(self, x_shape, w_shape, bias, y_shape, geo, groups):
        """A forward primitive descriptor with layouts of oneDNN's choice (format any)."""
        return self.pd(_lib.dnnl_convolution_forward_primitive_desc_create, _FORWARD_TRAINING, _CONV_DIRECT,
                       self.md(x_shape, _TAG_ANY), self.weights_md(w_shape, groups, True),
                       self.md((w_shape[0],), _TAG_X) if bias else None, self.md(y_shape, _TAG_ANY), *geo, None,
                       what="convolution")

    def finish(self, pd, operands):
        """The plan's primitive over pd, its operands given as (user's plain md, query for the primitive's md,
        input?), or a bias as its length (a plain memory: `bias`, operand None)."""
        for op in operands:
            if isinstance(op, int):
                self.bias = self.memory(self.md((op,), _TAG_X))
                self.operands.append(None)
            else:
                self.operands.append(_Operand(self, op[0], _lib.dnnl_primitive_desc_query_md(pd, op[1], 0), op[2]))
        self.prim = self.primitive(pd)

    def destroy(self):
        for kind, handle in reversed(self.handles):
            getattr(_lib, kind)(handle)
        self.handles = []


class _Operand:
    """One operand of a primitive: the user's plain array (its memory object, the handle set per call) and, where
    the primitive wants another layout, a reorder to (`into`: an input) or from it and a buffer of that layout."""

    def __init__(self, plan, user_md, prim_md, into):
        self.into = into
        self.user = plan.memory(user_md)
        self.reorder = None
        if not _lib.dnnl_memory_desc_equal(user_md, prim_md):
            self.size = _lib.dnnl_memory_desc_get_size(prim_md)
            self.inner = plan.memory(prim_md)
            src, dst = (user_md, prim_md) if into else (prim_md, user_md)
            rpd = ctypes.c_void_p()
            _check(_lib.dnnl_reorder_primitive_desc_create(ctypes.byref(rpd), src, _engine, dst, _engine, None),
                   "reorder")
            plan.own("dnnl_primitive_desc_destroy", rpd)
            self.reorder = plan.primitive(rpd)
            a, b = (self.user, self.inner) if into else (self.inner, self.user)
            self.args = (_ExecArg * 2)((_ARG_SRC, a), (_ARG_DST, b))

    def bind(self, array, inner):
        """The memory the primitive reads or writes for `array`: itself, or the inner layout's at address `inner`
        (for an input, the reorder into it run now; for an output, `done` runs the one out of it afterwards)."""
        _lib.dnnl_memory_set_data_handle(self.user, ctypes.c_void_p(array.ctypes.data))
        if self.reorder is None:
            return self.user
        _lib.dnnl_memory_set_data_handle(self.inner, ctypes.c_void_p(inner))
        if self.into:
            _check(_lib.dnnl_primitive_execute(self.reorder, _stream, 2, self.args), "reorder")
        return self.inner

    def done(self):
        if self.reorder is not None and not self.into:
            _check(_lib.dnnl_primitive_execute(self.reorder, _stream, 2, self.args), "reorder")


_CACHE_MAX = 64         # plans kept (geometries: a model's few layers, or a few input sizes of each)
_buffer = np.empty(0, np.uint8)     # the inner layouts' memory of the running call, shared by every plan (calls run
                                    # one at a time, under _lock): as large as the largest call's, not one per plan


def _aligned(n):
    return (n + 63) // 64 * 64


def _scratch(n):
    """The address of n bytes of _buffer (64-byte aligned), grown where it is smaller."""
    global _buffer
    if _buffer.size < n + 64:
        _buffer = np.empty(n + 64, np.uint8)
    return _aligned(_buffer.ctypes.data)


def _run(key, make, arrays):
    """Runs the plan for `key` (made by make(plan) on first use; a refused geometry is remembered) over arrays,
    one per operand, in order: (arg id, array). False where oneDNN refused the geometry or the run."""
    with _lock:
        plan = _cache.pop(key, None)
        if plan is None:
            plan = _Plan()
            try:
                make(plan)
            except _Refused:
                plan.destroy()
                plan = False
            if len(_cache) >= _CACHE_MAX:
                old = _cache.pop(next(iter(_cache)))        # the least recently used
                if old:
                    old.destroy()
        _cache[key] = plan                                  # (last: the most recently used)
        if not plan:
            return False
        inner = _scratch(sum(_aligned(op.size) for op in plan.operands if op is not None and op.reorder is not None))
        args = []
        try:
            for (arg, array), op in zip(arrays, plan.operands):
                if op is None:
                    _lib.dnnl_memory_set_data_handle(plan.bias, ctypes.c_void_p(array.ctypes.data))
                    args.append((arg, plan.bias))
                else:
                    args.append((arg, op.bind(array, inner)))
                    if op.reorder is not None:
                        inner += _aligned(op.size)
            _check(_lib.dnnl_primitive_execute(plan.prim, _stream, len(args), (_ExecArg * len(args))(*args)),
                   "execute")
            for op in plan.operands:
                if op is not None:
                    op.done()
            _lib.dnnl_stream_wait(_stream)
        except _Refused:
            return False
        return True


def _usable(*arrays):
    return all(type(a) is np.ndarray and a.dtype == _F32_DT and a.flags.c_contiguous and a.size for a in arrays)


def _out_hw(H, W, kh, kw, stride, padding, dilation):
    return ((H + padding[0] + padding[1] - dilation[0] * (kh - 1) - 1) // stride[0] + 1,
            (W + padding[2] + padding[3] - dilation[1] * (kw - 1) - 1) // stride[1] + 1)


def _geometry(stride, padding, dilation):
    """strides, dilates (oneDNN's: 0 for none), padding_l, padding_r"""
    pt, pb, pl, pr = padding
    return (_Dims(*stride), _Dims(dilation[0] - 1, dilation[1] - 1), _Dims(pt, pl), _Dims(pb, pr))


def _key(kind, *parts):
    return (kind,) + tuple(tuple(p) if isinstance(p, (list, tuple)) else p for p in parts)


def conv2d(x, w, b, stride, padding, dilation, groups):
    """conv2d of (N, C, H, W) x and (O, C/G, kh, kw) w (b: (O,) or None) with padding (top, bottom, left, right),
    or None (see the module's docstring)."""
    if not available() or not _usable(x, w) or (b is not None and not _usable(b)):
        return None
    N, C, H, W = x.shape
    OH, OW = _out_hw(H, W, w.shape[2], w.shape[3], stride, padding, dilation)
    if OH < 1 or OW < 1:
        return None
    y_shape = (N, w.shape[0], OH, OW)

    def make(plan):
        pd = plan.fwd_pd(x.shape, w.shape, b is not None, y_shape, _geometry(stride, padding, dilation), groups)
        plan.finish(pd, [(plan.md(x.shape, _TAG_NCHW), _Q_SRC, True), (plan.weights_md(w.shape, groups), _Q_WEIGHTS,
                         True), (plan.md(y_shape, _TAG_NCHW), _Q_DST, False)] + ([w.shape[0]] if b is not None else []))

    y = np.empty(y_shape, np.float32)
    arrays = [(_ARG_SRC, x), (_ARG_WEIGHTS, w), (_ARG_DST, y)] + ([(_ARG_BIAS, b)] if b is not None else [])
    ok = _run(_key("fwd", x.shape, w.shape, b is not None, stride, padding, dilation, groups), make, arrays)
    return y if ok else None


def backward_data(g, w, x_shape, stride, padding, dilation, groups):
    """The input gradient (x_shape: N, C, H, W) of a conv2d whose output gradient is g (N, O, OH, OW): torch's
    conv_transpose2d of g with w, where conv2d of x_shape gives g's size (else None, as where oneDNN does not
    apply)."""
    if not available() or not _usable(g, w):
        return None
    N, C, H, W = x_shape
    if _out_hw(H, W, w.shape[2], w.shape[3], stride, padding, dilation) != tuple(g.shape[2:]):
        return None

    def make(plan):
        geo = _geometry(stride, padding, dilation)
        hint = plan.fwd_pd(x_shape, w.shape, False, g.shape, geo, groups)
        pd = plan.pd(_lib.dnnl_convolution_backward_data_primitive_desc_create, _CONV_DIRECT,
                     plan.md(x_shape, _TAG_ANY), plan.weights_md(w.shape, groups, True), plan.md(g.shape, _TAG_ANY),
                     *geo, hint, None, what="convolution backward data")
        plan.finish(pd, [(plan.md(g.shape, _TAG_NCHW), _Q_DIFF_DST, True),
                         (plan.weights_md(w.shape, groups), _Q_WEIGHTS, True),
                         (plan.md(x_shape, _TAG_NCHW), _Q_DIFF_SRC, False)])

    gx = np.empty(tuple(x_shape), np.float32)
    ok = _run(_key("bwd_data", g.shape, w.shape, x_shape, stride, padding, dilation, groups), make,
              [(_ARG_DIFF_DST, g), (_ARG_WEIGHTS, w), (_ARG_DIFF_SRC, gx)])
    return gx if ok else None


def backward_weights(x, g, w_shape, bias, stride, padding, dilation, groups):
    """(gw, gb): the weight gradient (w_shape) of a conv2d of x whose output gradient is g, and with `bias` its
    bias gradient (g summed over N, OH, OW) from the same pass, else gb None; or None where oneDNN does not apply
    (g not conv2d's output size for x included)."""
    if not available() or not _usable(x, g):
        return None
    N, C, H, W = x.shape
    if _out_hw(H, W, w_shape[2], w_shape[3], stride, padding, dilation) != tuple(g.shape[2:]):
        return None

    def make(plan):
        geo = _geometry(stride, padding, dilation)
        hint = plan.fwd_pd(x.shape, w_shape, bias, g.shape, geo, groups)
        pd = plan.pd(_lib.dnnl_convolution_backward_weights_primitive_desc_create, _CONV_DIRECT,
                     plan.md(x.shape, _TAG_ANY), plan.weights_md(w_shape, groups, True),
                     plan.md((w_shape[0],), _TAG_X) if bias else None, plan.md(g.shape, _TAG_ANY), *geo, hint, None,
                     what="convolution backward weights")
        plan.finish(pd, [(plan.md(x.shape, _TAG_NCHW), _Q_SRC, True), (plan.md(g.shape, _TAG_NCHW), _Q_DIFF_DST, True),
                         (plan.weights_md(w_shape, groups), _Q_DIFF_WEIGHTS, False)] + ([w_shape[0]] if bias else []))

    gw = np.empty(tuple(w_shape), np.float32)
    gb = np.empty(w_shape[0], np.float32) if bias else None
    arrays = [(_ARG_SRC, x), (_ARG_DIFF_DST, g), (_ARG_DIFF_WEIGHTS, gw)] + ([(_ARG_DIFF_BIAS, gb)] if bias else [])
    ok = _run(_key("bwd_weights", x.shape, g.shape, w_shape, bool(bias), stride, padding, dilation, groups), make,
              arrays)
    return (gw, gb) if ok else None
