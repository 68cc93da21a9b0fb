"""The one choke point: every op, forward and backward, and every named region passes through here.

`dispatch(op, *args, **attrs)` resolves the backend from its tensor arguments (NumPy or CuPy), checks
that they share a device, applies type promotion and autocast, runs the kernel, wraps the outputs,
records the autograd node and calls the registered hooks around the kernel.

With no hook, autocast or anomaly mode anywhere in the process, the dispatcher pays one truthiness
check (`_slow`) before the kernel; everything the hooks need (sequence numbers, phases) is computed
only on the full path.
"""
from __future__ import annotations

import itertools
import os
import threading
import time

import numpy as np

from . import _dtype
from ._device import device_of
from ._tensor_base import Tensor

__all__ = ["Hook", "OpDef", "register_op", "dispatch", "add_hook", "remove_hook", "hooks", "registry",
           "range_enter", "range_exit", "record_range", "current_phase", "current_seq"]


# ------------------------------------------------------------------------------------------------
# hooks
# ------------------------------------------------------------------------------------------------

class Hook:
    """Observer of the dispatcher. Every method is optional (override what you need).

    op_enter(op, inputs, attrs, phase, seq) -> token: before an op's kernel. `op.name` names it,
      `inputs` are the positional arguments (tensors and scalars), `phase` is "forward" or
      "backward", `seq` is the forward op's sequence number (a backward step carries the number of
      the forward op whose gradient it computes).
    op_exit(token, outputs): after the kernel; `outputs` is a tensor or a tuple of tensors.
    range_enter(name, kind) -> token / range_exit(token): named regions. kind is one of "module",
      "backward", "optimizer", "data", "user", "step", "sync", or "op": a composite op (linear,
      cross_entropy_loss...) around the ops it dispatches, as torch's CompositeImplicitAutograd ops.
    Calls happen on the thread that runs the op; exits come in reverse order of enters.
    """

    def op_enter(self, op, inputs, attrs, phase, seq):
        return None

    def op_exit(self, token, outputs):
        return None

    def range_enter(self, name, kind):
        return None

    def range_exit(self, token):
        return None


_lock = threading.Lock()
_hooks: tuple = ()          # every registered hook, in registration order
_op_hooks: tuple = ()       # those that observe ops
_op_pairs: tuple = ()       # their bound (op_enter, op_exit), read once per op
_range_hooks: tuple = ()    # those that observe ranges
_slow = False               # some hook, autocast or anomaly is active somewhere: take the full path
_sink = None                # the profiler's op-record sink (set_op_sink), or None
_sink_only = False          # the sink is on and nothing else needs the full path (see _sunk)
_sink_tls = None            # the sink's per-thread buffers (its `tls`), read by _sunk on every op
_autocast_users = 0
_anomaly_users = 0
_inference_users = 0        # threads inside inference_mode: their ops' outputs are marked inference tensors


def _fresh_lock_in_child():
    """A fork while another thread held the registry's lock would leave the child's copy locked forever
    (the profiler unregisters its hooks in a forked child): the child starts with a lock of its own."""
    global _lock
    _lock = threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_fresh_lock_in_child)


def _overrides(h, name):
    if name in getattr(h, "__dict__", ()):
        return True
    m = getattr(type(h), name, None)
    return m is not None and m is not getattr(Hook, name)


def _refresh():
    global _op_hooks, _op_pairs, _range_hooks, _slow, _sink_only, _sink_tls
    _op_hooks = tuple(h for h in _hooks if _overrides(h, "op_enter") or _overrides(h, "op_exit"))
    _op_pairs = tuple((h.op_enter, h.op_exit) for h in _op_hooks)
    _range_hooks = tuple(h for h in _hooks if _overrides(h, "range_enter") or _overrides(h, "range_exit"))
    modes = _autocast_users > 0 or _anomaly_users > 0 or _inference_users > 0
    _slow = bool(_op_hooks) or _sink is not None or modes
    _sink_only = _sink is not None and not _op_hooks and not modes
    if _sink is not None:
        _sink_tls = _sink.tls


def add_hook(hook):
    """Register a hook process-wide. Registering the same hook twice is an error."""
    global _hooks
    with _lock:
        if any(h is hook for h in _hooks):
            raise RuntimeError(f"hook {hook!r} is already registered")
        _hooks = _hooks + (hook,)
        _refresh()
    return hook


def remove_hook(hook):
    global _hooks
    with _lock:
        if not any(h is hook for h in _hooks):
            raise RuntimeError(f"hook {hook!r} is not registered")
        _hooks = tuple(h for h in _hooks if h is not hook)
        _refresh()


def hooks() -> tuple:
    return _hooks


def set_op_sink(sink):
    """Let the dispatcher write one compact record per op itself, the cheapest way to time every op.

    `sink` has `tls` (a threading.local whose `buf` is that thread's list; anything with a `buf` that has
    `append`) — or is None to stop. Records are tuples (op name, phase, seq, t0_ns, t1_ns) appended when
    the op returns (perf_counter_ns), around every other hook. The dispatcher does not bound the lists:
    the sink does (the profiler's recorder watches their length and swaps `tls` for a counter, then
    calls `refresh_hooks()`). One sink at a time: the profiler allows one recording at a time."""
    global _sink
    with _lock:
        if sink is not None and _sink is not None and sink is not _sink:
            raise RuntimeError("another op-record sink is active (one profiler records at a time)")
        _sink = sink
        _refresh()


def refresh_hooks():
    """Re-read the registered hooks' methods. The dispatcher binds op_enter/op_exit once at registration;
    a hook that swaps its methods (e.g. a recorder switching to dropping mode) calls this."""
    with _lock:
        _refresh()


def _count_user(kind, delta):
    global _autocast_users, _anomaly_users, _inference_users
    with _lock:
        if kind == "autocast":
            _autocast_users += delta
        elif kind == "inference":
            _inference_users += delta
        else:
            _anomaly_users += delta
        _refresh()


# ------------------------------------------------------------------------------------------------
# per-thread state (grad mode, phase, autocast) -- torch keeps these thread-local too
# ------------------------------------------------------------------------------------------------

class _State(threading.local):
    grad_enabled = True
    inference = False
    phase = "forward"
    seq = -1                  # sequence number of the backward node being run
    autocast = None           # None or a tuple of (device_type, dtype, cache_enabled)
    anomaly = False
    anomaly_check_nan = True


STATE = _State()
_seq = itertools.count()
_pc = time.perf_counter_ns


_backward_passes: list = []  # one entry per backward pass running now, over all threads (the engine
                             # appends and pops: atomic list operations, no lock); see _sunk


def next_seq():
    return next(_seq)


def current_phase():
    return STATE.phase


def current_seq():
    """Inside a backward node (its range and its ops): the sequence number of the forward op."""
    return STATE.seq if STATE.phase == "backward" else -1


# ------------------------------------------------------------------------------------------------
# op definitions
# ------------------------------------------------------------------------------------------------

class OpDef:
    """An op: its kernel and, beside it, its backward formula (written with tensorlib ops).

    kernel(xp, *arrays, **attrs) -> array | tuple of arrays; xp is numpy or cupy.
    backward(ctx, *grads) -> grad per positional input (tensor or None); ctx is the autograd Node,
      with ctx.inputs (saved inputs), ctx.out (saved output), ctx.attrs, ctx.shapes, ctx.needs_input_grad.
    save: "i" to save the inputs, "o" to save the output, both or neither.
    promote: binary arithmetic; operands are brought to torch's result dtype before the kernel.
    amp: autocast policy: "lower" (run in the autocast dtype), "fp32", "promote" or None.
    inplace_of: for `add_` etc., the out-of-place op whose backward applies.
    view: the output shares the input's memory (versions are shared with the base).
    """

    __slots__ = ("name", "kernel", "backward", "node_name", "save", "promote", "amp", "inplace_of",
                 "view", "nondiff_outputs", "listarg", "creation", "differentiable", "any_device", "special",
                 "__dict__")

    def __init__(self, name, kernel, backward=None, *, node_name=None, save="", promote=False, amp=None,
                 inplace_of=None, view=False, nondiff_outputs=(), listarg=False, creation=False, any_device=False):
        self.name = name
        self.kernel = kernel
        self.backward = backward
        self.node_name = node_name or (_camel(name) + "Backward0")
        self.save = save
        self.promote = promote
        self.amp = amp
        self.inplace_of = inplace_of
        self.view = view
        self.nondiff_outputs = nondiff_outputs
        self.listarg = listarg          # first argument is a sequence of tensors (cat, stack)
        self.creation = creation        # no tensor inputs; device/dtype come from attrs
        self.any_device = any_device    # moves data between devices itself (to, copy_)
        # an executor of its own (lists of tensors, in-place ops, custom Functions); None: the common path
        self.special = _execute_list if listarg else _execute_inplace_op if inplace_of is not None else None
        self.differentiable = backward is not None or (inplace_of is not None and inplace_of.backward is not None)

    def __repr__(self):
        return f"<op {self.name}>"

    def def_backward(self, fn):
        self.backward = fn
        self.differentiable = True
        return fn


def _camel(name):
    return "".join(p[:1].upper() + p[1:] for p in name.strip("_").split("_"))


_REGISTRY: dict[str, OpDef] = {}


def register_op(name, kernel, backward=None, **kw) -> OpDef:
    if name in _REGISTRY:
        raise RuntimeError(f"op {name!r} is already registered")
    op = OpDef(name, kernel, backward, **kw)
    _REGISTRY[name] = op
    return op


def unregister_op(name):
    """Remove an op from the registry (ops defined by tests or plugins, when they are done)."""
    try:
        del _REGISTRY[name]
    except KeyError:
        raise KeyError(f"no op named {name!r} is registered") from None


def registry() -> dict:
    return dict(_REGISTRY)


# ------------------------------------------------------------------------------------------------
# the dispatcher
# ------------------------------------------------------------------------------------------------

def dispatch(op: OpDef, *args, **attrs):
    if _slow:
        if _sink_only:
            return _sunk(op, args, attrs, (), False)
        return _dispatch_full(op, args, attrs)
    return _execute(op, args, attrs, -1)


_NO_ATTRS: dict = {}


def dispatch2(op: OpDef, a, b):
    """dispatch(op, a, b) without keyword attrs: the entry of Tensor's binary operators. The profiler's
    default recording is `_sunk(op, (a, b), {}, (), False)` inlined, `_phase_seq` included: binary
    operators are the commonest ops, and the two calls saved are a tenth of what that recording costs
    per op (0.04 of 0.44 µs, measured A/B). The only copy of the recording; keep the two alike."""
    if _slow:
        if _sink_only:
            if _backward_passes:
                phase, seq, run_seq = _phase_seq()
            else:
                seq = run_seq = next(_seq)
                phase = "forward"
            t0 = _pc()
            try:
                return _execute(op, (a, b), _NO_ATTRS, run_seq)
            finally:
                t1 = _pc()
                _sink_tls.buf.append((op.name, phase, seq, t0, t1))
        return _dispatch_full(op, (a, b), {})
    return _execute(op, (a, b), _NO_ATTRS, -1)


def _phase_seq():
    """(phase, seq, run_seq) of an op about to run on this thread. A forward op takes a fresh sequence
    number, which its autograd node will carry (run_seq); a backward op carries the number of the
    forward op whose gradient it computes and gives none to the nodes it may record (create_graph).
    The thread-local phase is read only while some thread runs a backward pass (`_backward_passes`):
    a thread's phase is "backward" only inside the engine's run_backward."""
    if _backward_passes:
        st = STATE
        if st.phase != "forward":
            return "backward", st.seq, -1
    seq = next(_seq)
    return "forward", seq, seq


def _sunk(op, args, attrs, pairs, autocast):
    """The profiler's op sink: one (name, phase, seq, t0, t1) tuple per op (see set_op_sink), around
    whatever else runs (op hooks, autocast, anomaly mode); with nothing else, the leanest recorded path
    (dispatch2 has that case inline). `_phase_seq`'s forward case is inlined: a call less per op."""
    if _backward_passes:
        phase, seq, run_seq = _phase_seq()
    else:
        seq = run_seq = next(_seq)
        phase = "forward"
    t0 = _pc()
    try:
        if autocast:
            return _dispatch_autocast(op, args, attrs, pairs, phase, seq)
        if pairs:
            return _dispatch_pairs(op, args, attrs, pairs, phase, seq, run_seq)
        return _execute(op, args, attrs, run_seq)
    finally:
        t1 = _pc()
        _sink_tls.buf.append((op.name, phase, seq, t0, t1))


def _device_error(op, args):
    devs = []
    for a in _flat_tensors(args):
        d = str(device_of(a._data))
        if d not in devs:
            devs.append(d)
    devs = [d for d in devs if d != "cpu"] + (["cpu"] if "cpu" in devs else [])
    return RuntimeError(f"Expected all tensors to be on the same device, but found at least two devices, "
                        f"{devs[0]} and {devs[1]}! (when checking arguments for {op.name})")


def _flat_tensors(args):
    for a in args:
        if isinstance(a, Tensor):
            yield a
        elif isinstance(a, (list, tuple)):
            yield from (x for x in a if isinstance(x, Tensor))


def _execute(op, args, attrs, seq):
    """Run one op: unwrap, check devices, promote, kernel, wrap, record autograd.

    One-, two- and three-argument ops (nearly all of them) take a specialised path: this is the hot loop of
    every training step, so it avoids building lists and re-checking what it already knows."""
    if op.special is not None:
        return op.special(op, args, attrs, seq)
    n = len(args)
    if n == 2:
        a, b = args
        if isinstance(a, Tensor):
            x = a._data
            rg = a._requires_grad
            if isinstance(b, Tensor):
                y = b._data
                if b._requires_grad:
                    rg = True
                if type(x) is not type(y) and not op.any_device:
                    raise _device_error(op, args)
                if type(x) is np.ndarray:       # the backend before promotion: a cast is a kernel too
                    xp = np
                else:
                    xp = _xp_of(x, y)
                    if xp is None:
                        return _guarded(_execute, op, args, attrs, seq)
                if op.promote and x.dtype is not y.dtype:
                    x, y = _promote([x, y])
            else:
                y = b
                if type(x) is np.ndarray:
                    xp = np
                else:
                    xp = _xp_of(x, y)
                    if xp is None:
                        return _guarded(_execute, op, args, attrs, seq)
                if op.promote and (x.dtype.kind != "f" or (type(y) is not float and type(y) is not int)):
                    x, y = _promote([x, y])
        elif isinstance(b, Tensor):
            x = a
            y = b._data
            rg = b._requires_grad
            if type(y) is np.ndarray:
                xp = np
            else:
                xp = _xp_of(x, y)
                if xp is None:
                    return _guarded(_execute, op, args, attrs, seq)
            if op.promote:
                x, y = _promote([x, y])
        else:
            return _execute_general(op, args, attrs, seq)
        try:
            out = op.kernel(xp, x, y, **attrs) if attrs else op.kernel(xp, x, y)
        except ValueError as e:     # NumPy's "could not be broadcast": torch's RuntimeError and message
            raise shape_error(e, (x, y)) from None
    elif n == 1:
        a = args[0]
        if not isinstance(a, Tensor):
            return _execute_general(op, args, attrs, seq)
        x = a._data
        rg = a._requires_grad
        if type(x) is np.ndarray:
            xp = np
        else:
            xp = _xp_of(x)
            if xp is None:
                return _guarded(_execute, op, args, attrs, seq)
        out = op.kernel(xp, x, **attrs) if attrs else op.kernel(xp, x)
    elif n == 3 and not op.promote:
        # three arguments, the last a tensor or None (linear's bias, nll_loss's weight), all on the CPU
        a, b, c = args
        if not (isinstance(a, Tensor) and isinstance(b, Tensor)):
            return _execute_general(op, args, attrs, seq)
        x = a._data
        y = b._data
        if type(x) is not np.ndarray or type(y) is not np.ndarray:
            return _execute_general(op, args, attrs, seq)
        rg = a._requires_grad or b._requires_grad
        if c is None:
            z = None
        elif isinstance(c, Tensor) and type(c._data) is np.ndarray:
            z = c._data
            if c._requires_grad:
                rg = True
        else:
            return _execute_general(op, args, attrs, seq)
        try:
            out = op.kernel(np, x, y, z, **attrs) if attrs else op.kernel(np, x, y, z)
        except ValueError as e:
            raise shape_error(e, (x, y, z)) from None
    elif n == 0:
        # factories (the engine's implicit ones gradient every backward): nothing to unwrap, check or record
        out = op.kernel(np, **attrs)
        rg = False
    else:
        return _execute_general(op, args, attrs, seq)
    if rg and STATE.grad_enabled and op.differentiable:     # _record, without its call
        return _make_node(op, args, attrs, out, seq if seq >= 0 else next(_seq))
    if type(out) is not np.ndarray:
        return _wrap_result(op, args, out)
    t = object.__new__(Tensor)          # the usual result, wrapped inline
    t._data = out
    if op.view:
        _mark_view(t, args[0])
    return t


def shape_error(e: ValueError, arrays, out=None) -> Exception:
    """What to raise for a kernel's ValueError: NumPy's broadcasting failure as torch's RuntimeError (the
    first mismatch from the right, numbered as a dimension of the broadcast result; with `out`, an in-place
    target's shape, a broadcast result larger than it), anything else unchanged. The dispatcher calls it
    for every op, so no kernel or wrapper translates these itself."""
    if "broadcast" not in str(e):
        return e
    shapes = [a.shape for a in arrays if hasattr(a, "shape")]
    nd = max(map(len, shapes), default=0)
    full = []
    for k in range(1, nd + 1):
        big = [s[-k] for s in shapes if k <= len(s) and s[-k] != 1]
        if any(d != big[0] for d in big):
            other = next(d for d in big if d != big[0])
            return RuntimeError(f"The size of tensor a ({big[0]}) must match the size of tensor b ({other}) at "
                                f"non-singleton dimension {nd - k}")
        full.insert(0, big[0] if big else 1)
    if out is not None and tuple(full) != tuple(out):
        return RuntimeError(f"output with shape {list(out)} doesn't match the broadcast shape {full}")
    return e


def _wrap_result(op, args, out):
    """A kernel's result (array or tuple of arrays) as tensors outside autograd; a view op's outputs
    share versions with its first argument."""
    t = _wrap(out)
    if op.view:
        for o in (t if type(t) is tuple else (t,)):
            _mark_view(o, args[0])
    return t


def _xp_of(*arrays):
    """The backend of CUDA arrays: CuPy, or None when their device is not the current one (the caller
    then runs the op again under `_guarded`). Only the CUDA path calls this, so CPU ops pay nothing."""
    from . import _device
    dev = None
    for a in arrays:
        if type(a) is not np.ndarray and hasattr(a, "device") and hasattr(a, "ndim"):
            if dev is None:
                dev = a.device.id
            elif a.device.id != dev:
                raise RuntimeError(f"Expected all tensors to be on the same device, but found at least two devices, "
                                   f"cuda:{dev} and cuda:{a.device.id}!")
    if dev is None:
        return np
    cp = _device._cupy
    return cp if dev == cp.cuda.runtime.getDevice() else None


def _guarded(run, op, args, attrs, seq):
    """torch's device guard: run the op with its tensors' device current (CuPy launches kernels on the
    current device and refuses operands from another). Taken only when that device is not current
    already, so a single-GPU program never pays for the switch."""
    from . import _device
    idx = next(t._data.device.id for t in _flat_tensors(args) if type(t._data) is not np.ndarray)
    with _device._cupy.cuda.Device(idx):
        return run(op, args, attrs, seq)


def _execute_general(op, args, attrs, seq):
    arrays, xp, need_grad = _unwrap_all(op, args)
    if xp is None:
        return _guarded(_execute_general, op, args, attrs, seq)
    try:
        out = op.kernel(xp, *arrays, **attrs)
    except ValueError as e:
        raise shape_error(e, arrays) from None
    if need_grad and STATE.grad_enabled and op.differentiable:
        return _record(op, args, attrs, out, seq)
    return _wrap_result(op, args, out)


def _unwrap_all(op, args):
    """Arrays of the tensor arguments (device-checked), the backend (None: their device is not the current
    one, see _guarded), and whether any requires grad."""
    arrays = []
    atype = None
    need_grad = False
    for a in args:
        if isinstance(a, Tensor):
            d = a._data
            if atype is None:
                atype = type(d)
            elif type(d) is not atype and not op.any_device:
                raise _device_error(op, args)
            need_grad = need_grad or a._requires_grad
            arrays.append(d)
        else:
            arrays.append(a)
    if atype is np.ndarray or atype is None:
        xp = np
    else:
        xp = _xp_of(*arrays) if not op.any_device else _device_xp()
        if xp is None:
            return arrays, None, need_grad
    if op.promote:
        arrays = _promote(arrays)
    return arrays, xp, need_grad


def _execute_inplace_op(op, args, attrs, seq):
    """Every in-place op (its `special`): the CPU two-argument fast path, else the general one; NumPy's
    broadcasting failures become torch's errors against the target's shape."""
    try:
        if len(args) == 2 and not op.promote:     # x.add_(y), x.mul_(2.0) on the CPU: no general unwrapping
            a, b = args
            if isinstance(a, Tensor):
                x = a._data
                if type(x) is np.ndarray:
                    if isinstance(b, Tensor):
                        y = b._data
                        rg = a._requires_grad or b._requires_grad
                    else:
                        y = b
                        rg = a._requires_grad
                    if (type(y) is np.ndarray or y is b) and not a._inference:
                        base = a._base
                        if (rg or base is not None and base._requires_grad) and STATE.grad_enabled:
                            return _execute_inplace(op, args, [x, y], attrs, np, rg, seq)
                        # outside autograd (an optimizer's update) _execute_inplace does just this, less its
                        # call and argument list
                        op.kernel(np, x, y, **attrs)
                        (base if base is not None else a)._version += 1
                        return a
        arrays, xp, need_grad = _unwrap_all(op, args)
        if xp is None:
            return _guarded(_execute_inplace_op, op, args, attrs, seq)
        return _execute_inplace(op, args, arrays, attrs, xp, need_grad, seq)
    except ValueError as e:
        raise shape_error(e, [a._data if isinstance(a, Tensor) else a for a in args],
                          out=args[0].shape if isinstance(args[0], Tensor) else None) from None


def _mark_view(out: Tensor, src):
    """A view shares memory, and so version counts, with its base."""
    d = out._data
    base = d.base
    if base is None:
        return
    s = src._data
    # the usual case (a view of the source's array or of what that array views) needs no memory-bounds test
    if base is s or base is s.base or type(d) is not np.ndarray or np.may_share_memory(d, s):
        b = src._base
        out._base = b if b is not None else src


def _execute_list(op, args, attrs, seq):
    """cat/stack: a sequence of tensors, promoted together to one dtype."""
    tensors = list(args[0])
    if not tensors:
        raise RuntimeError(f"{op.name}(): expected a non-empty list of Tensors")
    for a in tensors:
        if not isinstance(a, Tensor):
            raise TypeError(f"{op.name}(): expected a sequence of Tensors, but got an element of type "
                            f"{type(a).__name__}")
    arrays, xp, need_grad = _unwrap_all(op, tensors)
    if xp is None:
        return _guarded(_execute_list, op, args, attrs, seq)
    if len({a.dtype for a in arrays}) > 1:
        rt = _dtype.from_np(arrays[0].dtype)
        for a in arrays[1:]:
            rt = _dtype.promote_types(rt, _dtype.from_np(a.dtype))
        arrays = [a.astype(rt.np, copy=False) for a in arrays]
    out = op.kernel(xp, arrays, *args[1:], **attrs)
    if need_grad and STATE.grad_enabled and op.differentiable:
        return _record(op, tuple(tensors), attrs, out, seq)
    return _wrap(out)


def _device_xp():
    from . import _device
    return _device._cupy


def _as_array(x):
    """Kernels on 0-d operands give NumPy scalars; tensors always hold arrays."""
    if isinstance(x, np.generic):
        return np.asarray(x)
    if isinstance(x, (bool, int, float)):
        return np.asarray(x)
    return x  # a CuPy array


def _wrap(out):
    if type(out) is tuple:
        return tuple(_wrap(o) for o in out)
    if type(out) is not np.ndarray:
        out = _as_array(out)
    t = object.__new__(Tensor)
    t._data = out
    return t


def _promote(arrays):
    """torch's result dtype for a binary op: casts the operand(s) that differ."""
    a, b = arrays[0], arrays[1]
    ta = type(a)
    tb = type(b)
    a_arr = ta is np.ndarray or hasattr(a, "dtype") and not isinstance(a, np.generic)
    b_arr = tb is np.ndarray or hasattr(b, "dtype") and not isinstance(b, np.generic)
    if a_arr and b_arr:
        if a.dtype == b.dtype:
            return arrays
        rt = _dtype.result_type(_dtype.from_np(a.dtype), a.ndim == 0, _dtype.from_np(b.dtype), b.ndim == 0).np
        return [a.astype(rt, copy=False), b.astype(rt, copy=False)] + arrays[2:]
    if a_arr:
        rt = _dtype.scalar_result(_dtype.from_np(a.dtype), b).np
        if rt != a.dtype:
            a = a.astype(rt)
        return [a, _scalar_as(b, rt)] + arrays[2:]
    if b_arr:
        rt = _dtype.scalar_result(_dtype.from_np(b.dtype), a).np
        if rt != b.dtype:
            b = b.astype(rt)
        return [_scalar_as(a, rt), b] + arrays[2:]
    return arrays


def _scalar_as(s, rt):
    # NumPy >= 2 treats Python scalars as weak, as torch does; NumPy scalars are made Python ones.
    return s.item() if isinstance(s, np.generic) else s


# --- autograd recording ---------------------------------------------------------------------------

_make_node = None   # set by autograd.graph when it is imported (it imports this module)


def _record(op, args, attrs, out, seq):
    if seq < 0:
        seq = next(_seq)
    return _make_node(op, args, attrs, out, seq)


def _execute_inplace(op, args, arrays, attrs, xp, need_grad, seq):
    target = args[0]
    if not isinstance(target, Tensor):
        raise TypeError(f"{op.name}(): expected a Tensor as the first argument")
    if target._inference and not STATE.inference:
        raise RuntimeError(_INFERENCE_INPLACE)
    grad_mode = STATE.grad_enabled
    b = target._base
    if grad_mode and b is not None and (need_grad or b._requires_grad) and not target._detached:
        from .autograd.graph import record_inplace_view     # torch's CopySlices: the base's history changes
        return record_inplace_view(op, args, attrs)
    if need_grad and grad_mode:
        if target._requires_grad and target._grad_fn is None:
            raise RuntimeError("a leaf Variable that requires grad is being used in an in-place operation.")
        from .autograd.graph import record_inplace
        base = op.inplace_of
        result = base.kernel(xp, *arrays, **attrs)
        if seq < 0:
            seq = next(_seq)
        return record_inplace(op, base, args, attrs, result, seq)
    if target._inference is False and target._requires_grad and target._grad_fn is None and grad_mode:
        raise RuntimeError("a leaf Variable that requires grad is being used in an in-place operation.")
    op.kernel(xp, *arrays, **attrs)
    (b if b is not None else target)._version += 1
    return target


_INFERENCE_INPLACE = ("Inplace update to inference tensor outside InferenceMode is not allowed.You can make a clone "
                      "to get a normal tensor before doing inplace update.See https://github.com/pytorch/rfcs/pull/17 "
                      "for more details.")


def bump_version(t: Tensor):
    b = t._base
    (b if b is not None else t)._version += 1


# --- the full path: hooks, autocast, anomaly ------------------------------------------------------

def _dispatch_full(op, args, attrs):
    """Hooks (and autocast/anomaly/inference mode) are on. Kept lean: the profiler's per-op cost starts here."""
    if _inference_users and STATE.inference:
        return _mark_inference(_dispatch_modes(op, args, attrs))
    return _dispatch_modes(op, args, attrs)


def _mark_inference(out):
    """torch's inference tensors: what an op makes inside inference_mode may never join autograd later."""
    if isinstance(out, Tensor):
        out._inference = True
    elif isinstance(out, (tuple, list)):
        for o in out:
            if isinstance(o, Tensor):
                o._inference = True
    return out


def _dispatch_modes(op, args, attrs):
    pairs = _op_pairs
    autocast = _autocast_users and STATE.autocast is not None and op.amp is not None
    if _sink is not None:
        return _sunk(op, args, attrs, pairs, autocast)
    if autocast:
        return _dispatch_autocast(op, args, attrs, pairs, *_phase_seq()[:2])
    if not pairs:
        return _execute(op, args, attrs, -1)
    phase, seq, run_seq = _phase_seq()
    if len(pairs) == 1:
        enter, exit_ = pairs[0]
        tok = enter(op, args, attrs, phase, seq)
        out = None
        try:
            out = _execute(op, args, attrs, run_seq)
        finally:
            exit_(tok, out)
        return out
    return _dispatch_pairs(op, args, attrs, pairs, phase, seq, run_seq)


def _dispatch_pairs(op, args, attrs, pairs, phase, seq, run_seq):
    tokens = [p[0](op, args, attrs, phase, seq) for p in pairs]
    out = None
    try:
        out = _execute(op, args, attrs, run_seq)
    finally:
        _exit_pairs(pairs, tokens, out)
    return out


def _dispatch_autocast(op, args, attrs, pairs, phase, seq):
    from .amp.autocast_mode import autocast_args
    tokens = [p[0](op, args, attrs, phase, seq) for p in pairs] if pairs else None
    out = None
    try:
        args = autocast_args(op, args)      # the casts nest inside the op that needs them
        out = _execute(op, args, attrs, seq if phase == "forward" else -1)
    finally:
        if pairs:
            _exit_pairs(pairs, tokens, out)
    return out


def _exit_pairs(pairs, tokens, out):
    for i in range(len(pairs) - 1, -1, -1):
        pairs[i][1](tokens[i], out)


# ------------------------------------------------------------------------------------------------
# named regions
# ------------------------------------------------------------------------------------------------

def range_enter(name: str, kind: str):
    """Open a named region; returns a token for range_exit (None when no hook listens)."""
    hooks = _range_hooks
    if not hooks:
        return None
    return hooks, [h.range_enter(name, kind) for h in hooks]


def range_exit(token):
    if token is None:
        return
    hooks, tokens = token
    for i in range(len(hooks) - 1, -1, -1):
        hooks[i].range_exit(tokens[i])


class record_range:
    """Context manager / decorator for a named region of a given kind."""
    __slots__ = ("name", "kind", "_token")

    def __init__(self, name, kind="user"):
        self.name = name
        self.kind = kind
        self._token = None

    def __enter__(self):
        self._token = range_enter(self.name, self.kind)
        return self

    def __exit__(self, *exc):
        range_exit(self._token)
        self._token = None
        return False

    def __call__(self, fn):
        import functools

        @functools.wraps(fn)
        def wrapper(*a, **k):
            with record_range(self.name, self.kind):
                return fn(*a, **k)
        return wrapper
