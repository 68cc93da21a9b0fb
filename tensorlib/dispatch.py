"""The one choke point: every op, forward and backward, passes through `dispatch` (the top layer of the
dispatcher); this module also re-exports the layers' public names, so `tensorlib.dispatch` stays the one
import for code that defines ops or observes them.

The layers, each importing only those before it (ARCHITECTURE.md):

    _state     per-thread state (grad mode, phase, autocast, anomaly) and sequence numbers
    _hooks     Hook, the hook registry, the op sink and its OpRecord, named regions
    _graph     autograd graph recording (nodes), public as tensorlib.autograd.graph
    _execute   kernel execution: unwrap, device check, promotion, kernel, wrap, record the node
    _opdef     OpDef and the registry of ops by name
    dispatch   the entry points: the fast path, the recorded path (op sink), the hooked and autocast paths

With no hook, op sink, autocast, anomaly or inference mode anywhere in the process, `dispatch` pays one
truthiness check (`_full_path`) before the executor; everything the hooks need (sequence numbers,
phases) is computed only on the full path. The flags read per op are this module's own globals, copied
from the hook registry whenever it changes (`_hooks.subscribe`): a global reads faster than a module's
attribute, and the recorded path reads three of them per op.
"""
from __future__ import annotations

import operator

import time
from typing import Any

import numpy as np

from . import _dtype
from . import _hooks as _H
from ._native import load as load_native, status as native_status
from ._execute import bump_version, execute, shape_error
from ._graph import mark_view, numpy_arrays, tensor_of
from ._hooks import (Hook, OpRecord, add_hook, full_path_active, hooks, op_sink, range_enter, range_exit,
                     record_range, refresh_hooks, remove_hook, set_op_sink)
from ._opdef import OpDef, op_at, op_named, register_op, registry, unregister_op  # noqa: F401 (op_at: the engine's)
from ._state import STATE, backward_passes, current_phase, current_seq, next_seq, phase_seq, seq_counter
from ._tensor import Tensor

__all__ = ["Hook", "OpRecord", "OpDef", "register_op", "unregister_op", "registry", "op_named", "dispatch",
           "dispatch_binary", "add_hook", "remove_hook", "hooks", "set_op_sink", "op_sink",
           "refresh_hooks", "full_path_active", "range_enter", "range_exit", "record_range", "current_phase",
           "current_seq", "next_seq", "STATE", "bump_version", "shape_error", "array_of", "swap_array",
           "records_arrays", "run_recorded", "run_recorded_call", "run_recorded_op", "run_recorded_tensors",
           "run_recorded_view", "load_native", "native_status"]

_pc = time.perf_counter_ns
_NO_ATTRS: dict = {}

# copies of the hook registry's flags (tensorlib._hooks, which documents them), refreshed by _copy_flags
_full_path = False
_sink = None
_sink_only = False
_sink_tls: Any = None    # the sink's threading.local when _sink_only (checked before every read)
_op_pairs: tuple = ()
_pair_only: Any = None   # (op_enter, op_exit) of the only op hook when nothing else is on (a detailed profile)
_arrays_hook: Any = None  # that hook's op_arrays, when it has one (Hook: a detailed profile's recorder)
_arrays_done: Any = None  # and its op_done (Hook), when it has one
# the engine's sink formulas (OpDef.sink_backward) run, their ops recorded by run_recorded: the op sink is the
# only observer of ops, or the only op hook takes ops on arrays (op_arrays)
_sink_formulas = False
_autocast_users = 0
_inference_users = 0
# The recorded paths in C (tensorlib/_crecorded.c, see tensorlib/_native.py), or None: a Recorded object for
# the current observers, made by _copy_flags; _rec_run is its `sink` (the op sink alone) or `pair` (one op
# hook alone), None when the Python path below runs instead; `run_recorded` runs its `arrays` path while the
# engine's sink formulas run.
_crecorded = load_native("tensorlib._crecorded")
_rec_run: Any = None
if _crecorded is not None and hasattr(_crecorded, "set_op_class"):     # (an extension built before it: getattr)
    _crecorded.set_op_class(OpDef)


def _copy_flags():
    global _full_path, _sink, _sink_only, _sink_tls, _op_pairs, _pair_only, _arrays_hook, _arrays_done, \
        _sink_formulas, _autocast_users, _inference_users, _rec_run
    _full_path = _H.full_path
    _sink = _H.sink
    _sink_only = _H.sink_only
    _sink_tls = _H.sink_tls
    _op_pairs = _H.op_pairs
    _pair_only = _H.pair_only
    _arrays_hook = _H.arrays_hook
    _arrays_done = _H.arrays_done
    _sink_formulas = _sink_only or _arrays_hook is not None
    _autocast_users = _H.autocast_users
    _inference_users = _H.inference_users
    _rec_run = rec = None
    if _crecorded is not None and (_sink_only or _pair_only is not None):
        enter, exit_ = (None, None) if _sink_only else _pair_only
        rec = _crecorded.Recorded(execute, backward_passes, seq_counter, np, _sink_tls if _sink_only else None, enter,
                                  exit_, None if _sink_only else _arrays_hook,
                                  None if _sink_only or _arrays_hook is None else _arrays_done)
        _rec_run = rec.sink if _sink_only else rec.pair
    if run_recorded is not _run_recorded_py:    # the C object: its arrays path, or the Python function
        run_recorded.set(rec if _sink_formulas else None)


def dispatch(op: OpDef, *args, **attrs):
    if _full_path:
        if _rec_run is not None:
            return _rec_run(op, args, attrs)
        if _sink_only:
            return _dispatch_recorded(op, args, attrs, (), False)
        pair = _pair_only
        if pair is not None:
            return _dispatch_one_pair(op, args, attrs, pair)
        return _dispatch_full(op, args, attrs)
    return execute(op, args, attrs, -1)


def dispatch_binary(op: OpDef, a, b):
    """dispatch(op, a, b) without keyword attrs (torch.matmul's entry; Tensor's binary operators have its
    work inline, see binary_operator)."""
    if _full_path:
        if _rec_run is not None:
            return _rec_run(op, (a, b), _NO_ATTRS)
        if _sink_only:
            return _dispatch_recorded(op, (a, b), _NO_ATTRS, (), False)
        pair = _pair_only
        if pair is not None:
            return _dispatch_one_pair(op, (a, b), _NO_ATTRS, pair)
        return _dispatch_full(op, (a, b), {})
    return execute(op, (a, b), _NO_ATTRS, -1)


def binary_operator(op: OpDef, reflected: bool, operand_types: tuple):
    """Tensor's `__add__`-style operator for `op`: NotImplemented for operands that are not tensors or
    numbers (`operand_types`), else dispatch_binary's work with its fast path inline (a call less per
    operator, the commonest op of a training step). The operator `self op other` (not the reflected one)
    has the profiler's default recording inline too: `_dispatch_recorded(op, (self, other), {}, (), False)`
    with that function's `pairs`/`autocast` cases left out, which saves a call per recorded op (0.05 µs of
    the 0.5 µs that recording costs, measured A/B). The only copy of the recording; keep the two alike.
    The other paths go through dispatch_binary."""
    if reflected:
        def f(self, other):
            if type(other) is not Tensor and not isinstance(other, operand_types):
                return NotImplemented
            if not _full_path:
                return execute(op, (other, self), _NO_ATTRS, -1)
            if _rec_run is not None:        # (a default profile's C runner: no dispatch_binary frame)
                return _rec_run(op, (other, self), _NO_ATTRS)
            return dispatch_binary(op, other, self)
    else:
        def f(self, other):
            if type(other) is not Tensor and not isinstance(other, operand_types):
                return NotImplemented
            if not _full_path:
                return execute(op, (self, other), _NO_ATTRS, -1)
            if _rec_run is not None:
                return _rec_run(op, (self, other), _NO_ATTRS)
            if not _sink_only:
                return dispatch_binary(op, self, other)
            if backward_passes and STATE.phase != "forward":
                phase, seq, run_seq = "backward", STATE.seq, -1
            else:
                seq = run_seq = next(seq_counter)
                phase = "forward"
            t0 = _pc()
            try:
                return execute(op, (self, other), _NO_ATTRS, run_seq)
            finally:
                t1 = _pc()
                _sink_tls.buf.append((op.name, phase, seq, t0, t1))     # an OpRecord, as a plain tuple
    return f


def _dispatch_recorded(op, args, attrs, pairs, autocast):
    """The op sink's path: one OpRecord tuple per op (see set_op_sink), around whatever else runs (op hooks,
    autocast, anomaly mode); with nothing else, the leanest recorded path (Tensor's binary operators have
    that case inline: binary_operator). `phase_seq` is inlined: a call less per op."""
    if backward_passes and STATE.phase != "forward":
        phase, seq, run_seq = "backward", STATE.seq, -1
    else:
        seq = run_seq = next(seq_counter)
        phase = "forward"
    t0 = _pc()
    try:
        if autocast:
            return _dispatch_autocast(op, args, attrs, pairs, phase, seq)
        if pairs:
            return _dispatch_pairs(op, args, attrs, pairs, phase, seq, run_seq)
        return execute(op, args, attrs, run_seq)
    finally:
        t1 = _pc()
        _sink_tls.buf.append((op.name, phase, seq, t0, t1))


def records_arrays() -> bool:
    """Whether the observers of ops, if any, are all served by `run_recorded` (ops run on arrays, recorded as
    their dispatch would be): a default profile's op sink alone, or a detailed profile's recorder alone,
    taking ops on arrays (Hook.op_arrays). The engine's sink formulas, the optimizers' loops on arrays and
    clip_grad_norm_ then run their ops so rather than dispatching them."""
    return _sink_formulas


def records_by_sink() -> bool:
    """Whether the op sink alone observes ops (a default profile): ops a C loop runs and times itself are then
    recorded by `record_times`."""
    return _sink_only


def records_ran() -> bool:
    """Whether ops a C loop runs and times itself can be recorded as their dispatches would be (`record_ran`):
    the op sink alone observes ops, or the only op hook takes ops on arrays and ops that ran (Hook.op_arrays,
    Hook.op_done: a detailed profile's recorder)."""
    return _sink_only or _arrays_done is not None


def record_ran(op: OpDef, arrays, attrs, out, t0, t1):
    """The record of op `op` that a C loop ran on `arrays` (with keyword attributes `attrs`) from t0 to t1
    (perf_counter_ns), giving `out` (None in place), while `records_ran()`: its phase and sequence number as
    run_recorded's, then the op sink's record, or the hook's (Hook.op_done: Input Shapes from `arrays`, the
    outputs' memory)."""
    phase, seq, _ = phase_seq()
    if _sink_only:
        _sink_tls.buf.append((op.name, phase, seq, t0, t1))
    else:
        _arrays_done(op, arrays, attrs, phase, seq, out, t0, t1)


def record_ran_fn():
    """`record_ran`, or its C twin (RunRecorded.record_ran: the same record without this module's Python frame and
    phase_seq's) while run_recorded has its Recorded set: for a C loop's caller that records several ops in a row
    (Adam's step under a detailed profile, nine ops a parameter)."""
    if _record_ran_c is not None and run_recorded.target is not None:
        return _record_ran_c
    return record_ran


def _record_times_py(ops, times):
    """`record_times` in Python (TENSORLIB_NATIVE=0): each op's record, as `_run_recorded_py` makes it."""
    buf = _sink_tls.buf
    for i, op in enumerate(ops):
        if op is not None:
            phase, seq, _ = phase_seq()
            buf.append((op.name, phase, seq, int(times[2 * i]), int(times[2 * i + 1])))


def record_times(ops, times):
    """The op sink's records of ops that a C loop ran and timed itself (tensorlib/_cmath.c's Adam step), while
    `records_by_sink()`: ops a tuple of OpDefs in the order they ran (None: a slot left out), times an int64
    array of (start, end) perf_counter_ns pairs, one per slot. Each op takes its phase and sequence number
    as run_recorded's ops do, so the records are those the ops would have left run one by one."""
    if _record_times_c is not None and run_recorded.target is not None:
        return _record_times_c(ops, times)
    return _record_times_py(ops, times)


def _run_recorded_py(op: OpDef, *arrays, **attrs):
    """`run_recorded` in Python (TENSORLIB_NATIVE=0; the C object's fallback while it has no Recorded set):
    op's kernel on NumPy `arrays` (`op.kernel(numpy, *arrays, **attrs)`, its result as the kernel gives it),
    recorded by the op sink as `_dispatch_recorded` records a dispatch of op (its phase and sequence number),
    without the dispatch: no tensors, device check, promotion, autograd node or hook. For the engine's
    formulas while the sink is the only observer of ops (OpDef.sink_backward), on operands they have checked;
    the kernel's own steps (`_H.op_step`) nest inside the op's record, as in a dispatch. When the only op hook
    takes ops on arrays instead (Hook.op_arrays: a detailed profile), it runs and records the kernel."""
    if backward_passes and STATE.phase != "forward":
        phase, seq = "backward", STATE.seq
    else:
        seq = next(seq_counter)
        phase = "forward"
    if not _sink_only:
        hook = _arrays_hook
        if hook is not None:
            return hook(op, arrays, attrs, phase, seq)
        return op.kernel(np, *arrays, **attrs)      # the profile stopped during this backward: nothing records
    t0 = _pc()
    try:
        return op.kernel(np, *arrays, **attrs)
    finally:
        t1 = _pc()
        _sink_tls.buf.append((op.name, phase, seq, t0, t1))


# run_recorded(op, *arrays, **attrs): with tensorlib._crecorded, a C object (RunRecorded) that does the above
# through the Recorded that _copy_flags sets on it, with the caller's arguments as they are (no Python frame,
# tuple or dict between a sink formula and the kernel); the function above while it has none set, or without C.
run_recorded: Any = _crecorded.RunRecorded(_run_recorded_py) if _crecorded is not None else _run_recorded_py
_record_times_c = getattr(run_recorded, "record_times", None)
_record_ran_c = getattr(run_recorded, "record_ran", None)
_H.subscribe(_copy_flags)


def run_recorded_call(op: OpDef, *args, **attrs):
    """op's kernel on the arrays of args, run and recorded by `run_recorded`, its result as the kernel gives
    it: `_graph.quiet_call`'s twin for a sink formula (OpDef.sink_backward) that is one op of several
    outputs. args: tensors, arrays or None; the result is None when one is not on NumPy."""
    arrays = numpy_arrays(args)
    return None if arrays is None else run_recorded(op, *arrays, **attrs)


def run_recorded_tensors(op: OpDef, *args, **attrs):
    """run_recorded_call's result of several arrays as a tuple of tensors (None when an argument is not on
    NumPy): a sink formula that is one op of several outputs, in place of its dispatch."""
    out = run_recorded_call(op, *args, **attrs)
    return None if out is None else tuple(tensor_of(d) for d in out)


def run_recorded_op(op: OpDef, *args, **attrs):
    """(op's kernel on the arrays of args, as a tensor,), run and recorded by `run_recorded`: a sink formula
    that is one op (OpDef.sink_backward), as `_graph.quiet_op` is a quiet one. args: tensors, arrays or None;
    the result is None when one is not on NumPy (the dispatched formula runs)."""
    arrays = numpy_arrays(args)        # (run_recorded_call's work inlined: one frame less a node)
    return None if arrays is None else (tensor_of(run_recorded(op, *arrays, **attrs)),)


def run_recorded_view(op: OpDef, g: Tensor, **attrs):
    """(view op's kernel on g's NumPy array, as a tensor that views g,), run and recorded by `run_recorded`: a
    sink formula that is one view op of the gradient (t, transpose, reshape), its result marked a view of g
    as the dispatched op's is (AccumulateGrad's choice between stealing and cloning a gradient reads it).
    None when g is not on NumPy."""
    d = g._data
    if type(d) is not np.ndarray:
        return None
    t = tensor_of(run_recorded(op, d, **attrs))
    mark_view(t, g)
    return (t,)


def run_recorded_views(op: OpDef, g: Tensor, attrs_list):
    """run_recorded_view for several views of one gradient in one frame (cat's narrows, stack's selects: a node
    per time step of a recurrent loop, where a frame per view was most of their profiled cost): a tuple of
    tensors, each a recorded view of g by `op` with one of attrs_list (None for None), or None when g is not on
    NumPy."""
    d = g._data
    if type(d) is not np.ndarray:
        return None
    out: list[Tensor | None] = []
    for attrs in attrs_list:
        if attrs is None:
            out.append(None)
            continue
        t = tensor_of(run_recorded(op, d, **attrs))
        mark_view(t, g)
        out.append(t)
    return tuple(out)


def _dispatch_one_pair(op, args, attrs, pair):
    """One op hook and nothing else on the full path (the profiler's detailed options): `_dispatch_modes`'
    one-pair case without its tests, `phase_seq` inlined."""
    if backward_passes and STATE.phase != "forward":
        phase, seq, run_seq = "backward", STATE.seq, -1
    else:
        seq = run_seq = next(seq_counter)
        phase = "forward"
    enter, exit_ = pair
    tok = enter(op, args, attrs, phase, seq)
    out = None
    try:
        out = execute(op, args, attrs, run_seq)
    finally:
        exit_(tok, out)
    return out


# --- the full path: hooks, autocast, anomaly, inference ------------------------------------------

def _dispatch_full(op, args, attrs):
    """Hooks (and autocast/anomaly/inference mode) are on. Kept lean: the profiler's per-op cost starts here."""
    if _inference_users and STATE.inference:
        return _mark_inference(_dispatch_modes(op, args, attrs), args)
    return _dispatch_modes(op, args, attrs)


def _mark_inference(out, args):
    """torch's inference tensors: what an op makes inside inference_mode may never join autograd later. An
    in-place op's result is its input, which stays what it was (BatchNorm's running stats in eval loops)."""
    for o in (out,) if isinstance(out, Tensor) else out if isinstance(out, (tuple, list)) else ():
        if isinstance(o, Tensor) and not any(o is a for a in args):
            o._inference = True
    return out


def _dispatch_modes(op, args, attrs):
    pairs = _op_pairs
    autocast = _autocast_users and STATE.autocast is not None and op.amp is not None
    if _sink is not None:
        return _dispatch_recorded(op, args, attrs, pairs, autocast)
    if autocast:
        return _dispatch_autocast(op, args, attrs, pairs, *phase_seq()[:2])
    if not pairs:
        return execute(op, args, attrs, -1)
    if len(pairs) == 1:
        return _dispatch_one_pair(op, args, attrs, pairs[0])
    return _dispatch_pairs(op, args, attrs, pairs, *phase_seq())


def _dispatch_pairs(op, args, attrs, pairs, phase, seq, run_seq):
    tokens = [p[0](op, args, attrs, phase, seq) for p in pairs]
    out = None
    try:
        out = execute(op, args, attrs, run_seq)
    finally:
        _exit_pairs(pairs, tokens, out)
    return out


def _dispatch_autocast(op, args, attrs, pairs, phase, seq):
    tokens = [p[0](op, args, attrs, phase, seq) for p in pairs] if pairs else None
    out = None
    try:
        args = autocast_args(op, args)      # the casts nest inside the op that needs them
        out = execute(op, args, attrs, seq if phase == "forward" else -1)
    finally:
        if pairs:
            _exit_pairs(pairs, tokens, out)
    return out


def _exit_pairs(pairs, tokens, out):
    for i in range(len(pairs) - 1, -1, -1):
        pairs[i][1](tokens[i], out)


# --- autocast -------------------------------------------------------------------------------------

def _eligible(t, device_type):
    return isinstance(t, Tensor) and t._data.dtype.kind == "f" and (t.is_cuda == (device_type == "cuda"))


def autocast_args(op, args):
    """Cast the floating tensors among args per the op's autocast policy (`op.amp`); other args pass
    through. The casts are the registered `to` op, dispatched (so a profile shows them inside the op that
    needed them) with autocast off, so they are not themselves autocast."""
    device_type, fast = STATE.autocast
    policy = op.amp
    if policy == "lower":
        target = fast.np
    elif policy == "fp32":
        target = _dtype.float32.np
    elif policy == "promote":
        dts = [a._data.dtype for a in args if _eligible(a, device_type)]
        if not dts:
            return args
        target = max(dts, key=lambda d: d.itemsize)
    else:
        return args
    to = op_named("to")

    def cast(a):
        if _eligible(a, device_type) and a._data.dtype != target:
            return dispatch(to, a, dtype=target)
        return a

    prev = STATE.autocast
    STATE.autocast = None
    try:
        if op.listarg:
            return (type(args[0])(cast(a) for a in args[0]),) + tuple(args[1:])
        return tuple(cast(a) for a in args)
    finally:
        STATE.autocast = prev


# array_of(t): the NumPy or CuPy array a tensor's values live in, without a copy: what instruments read (the
# profiler's memory and shape records, nan_watch, device_watch). Writing into it bypasses autograd's version
# counters, so instruments only read it. An attrgetter: a C call, for records made on every op's inputs.
array_of = operator.attrgetter("_data")


def swap_array(t, array):
    """Make `t` live in `array` and return the array it lived in (sanity_check puts a model's own arrays
    back after its trial steps)."""
    old = t._data
    t._data = array
    return old
