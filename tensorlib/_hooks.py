"""Layer 2 of the dispatcher: the one surface instruments observe tensorlib through.

`Hook` is the observer: ops (enter/exit around every kernel), named regions (modules, backward nodes,
optimizer steps, data loading, user ranges), backward passes and host-device synchronisations. The op
sink (`set_op_sink`) is the profiler's cheapest channel: the dispatcher appends one `OpRecord`-shaped
tuple per op itself. Nothing here dispatches or knows an op's kernel: this module imports only the
thread state below it.

The registry keeps, per event, the tuple of hooks that override its method, recomputed on every
registration (`refresh`); a caller tests that tuple's truth before building anything, so an event no hook
observes costs one truthiness check. The module-level names below are that precomputed state; they are
rebound (never mutated) under the lock, so readers need none.
"""
from __future__ import annotations

import functools
import os
import threading
from typing import NamedTuple

__all__ = ["Hook", "OpRecord", "add_hook", "remove_hook", "hooks", "set_op_sink", "op_sink", "refresh_hooks",
           "full_path_active", "range_enter", "range_exit", "record_range", "backward_begin", "backward_end"]


class Hook:
    """Observer of tensorlib. Every method is optional (override what you need); an event no registered
    hook overrides costs its emitter one truthiness check.

    op_enter(op, inputs, attrs, phase, seq) -> token: before an op's kernel. `op.name` names it,
      `inputs` are the positional arguments (tensors and scalars), `phase` is "forward" or
      "backward", `seq` is the forward op's sequence number (a backward step carries the number of
      the forward op whose gradient it computes).
    op_exit(token, outputs): after the kernel; `outputs` is a tensor or a tuple of tensors (None when
      the kernel raised).
    range_enter(name, kind) -> token / range_exit(token): named regions. kind is one of "module",
      "backward", "optimizer", "data", "user", "step", "sync", or "op": a composite op (linear,
      cross_entropy_loss...) around the ops it dispatches, as torch's CompositeImplicitAutograd ops.
      An nn.Module's region is entered with the module on top of
      `tensorlib.nn.modules.module.module_stack()`. A hook whose `module_ranges` attribute is False gets
      no module regions (the modules skip them, and their names' lookup, when no hook wants them).
    backward_begin() / backward_end(): around each backward pass that accumulates into `.grad`
      (`Tensor.backward`, `autograd.backward`; not `autograd.grad`), on the thread that runs it;
      backward_end only when the pass completed.
    op_range_enter(name, args) -> token: optional, not on this class. A composite op's region (kind "op")
      with the positional arguments it was called with (for record_shapes' Input Shapes, as torch records
      them on aten::conv2d or aten::linear); closed by range_exit. Without it, range_enter(name, "op").
    op_step(name, fn, *args) -> fn(*args): optional, not on this class. A hook that is the only one
      observing regions may run a kernel step itself (`op_step` below): the same as
      range_enter(name, "op"), fn(*args), range_exit(token), in one call instead of four.
    op_region(name, args, fn, *fargs) -> fn(*fargs): optional, not on this class. Where this hook is the only
      one observing regions, a composite op's region (`op_region` below) in one call: what
      op_range_enter(name, args), fn(*fargs), range_exit(token) record.
    op_steps_at(names, times): optional, not on this class. The records op_step(names[k], ...) would leave of
      steps a C loop ran and timed itself (times: int64, a (start, end) pair per name), while this is the
      only region hook (Adam's step_t.item() in its C loop under a profile: aten::item and its read).
    c_range: optional, not on this class: a capsule (tensorlib/_range_api.h) by which C code that times a
      region itself records it while this is the only region hook -- the autograd engine's node regions
      (tensorlib/autograd/_cengine.c) -- with what range_enter(name, kind) at its start then range_exit(token)
      at its end would record, in one C call; None or absent: the engine calls those two.
    op_arrays(op, arrays, attrs, phase, seq) -> op.kernel(numpy, *arrays, **attrs): optional, not on this
      class. When a hook that has it is the only one observing ops and nothing else is on the full path (no
      op sink, autocast, anomaly or inference mode), the autograd engine runs the shortcuts it takes for the
      op sink (OpDef.sink_backward, the ops a backward formula would dispatch run as their kernels on NumPy
      arrays, `dispatch.run_recorded`) and hands each such op to this method instead of op_enter/op_exit:
      it runs the kernel on `arrays` (the tensors' arrays the dispatched op would have had, a tensor list's
      as a list of arrays; other arguments as they are) and returns its result as the kernel gives it (an
      array, a NumPy scalar or a tuple), recording what op_enter/op_exit would have of the dispatched op.
    op_done(op, arrays, attrs, phase, seq, out, t0, t1): optional, with op_arrays. The record op_arrays would
      make of an op that ran elsewhere and was timed there (t0, t1: time.perf_counter_ns), `out` its result
      (None for an in-place op): ops that a C loop runs one after another (Adam's step, tensorlib/_cmath.c),
      handed over by `dispatch.record_ran`, and ops the engine's formulas in C compute themselves
      (`run_recorded.call_as_arrays`). Returns `out` as op_arrays would return it (a NumPy scalar
      made the 0-d array its tensor holds, where the hook records memory).
    sync(data, what): a host-device synchronisation a CUDA tensor or array forces (`what`: "item",
      "tolist", "cpu", a boolean-mask index, ...); `data` is that tensor or array. CPU data never
      synchronises and is not reported. Called from inside the synchronising call, so a hook may
      raise to stop it or walk the stack to find the user's line.
    Calls happen on the thread that runs the op; exits come in reverse order of enters.
    """

    module_ranges = True

    def op_enter(self, op, inputs, attrs, phase, seq):
        return None

    def op_exit(self, token, outputs):
        return None

    def range_enter(self, name, kind):
        return None

    def range_exit(self, token):
        return None

    def backward_begin(self):
        return None

    def backward_end(self):
        return None

    def sync(self, data, what):
        return None


class OpRecord(NamedTuple):
    """What the op sink receives per op: the dispatcher appends a plain tuple in this field order (building
    the NamedTuple would double the sink's cost per op); readers index it with these names' positions."""
    name: str           # the op's name (OpDef.name)
    phase: str          # "forward" or "backward"
    seq: int            # the forward op's sequence number (a backward op carries its forward op's)
    t0_ns: int          # time.perf_counter_ns() before the kernel (and before any op hook)
    t1_ns: int          # time.perf_counter_ns() after it (after every op hook's op_exit)


_lock = threading.Lock()
_hooks: tuple = ()          # every registered hook, in registration order

# what the emitters read (rebound by refresh(), under _lock)
full_path = False           # some hook, the op sink, autocast, anomaly or inference mode is on: dispatch
                            # leaves its fast path
sink = None                 # the op sink (set_op_sink), or None
sink_only = False           # the sink is on and nothing else needs the full path
sink_tls = None             # the sink's per-thread buffers (its `tls`), read by the dispatcher on every op
op_pairs: tuple = ()        # bound (op_enter, op_exit) of the hooks that observe ops, read once per op
pair_only = None            # op_pairs[0] when it is the only thing on the full path (no sink, no mode)
arrays_hook = None          # that hook's op_arrays when it has one (see Hook), else None
arrays_done = None          # its op_done, with op_arrays (see Hook), else None
range_hooks: tuple = ()     # hooks that observe named regions
range_pair = None           # (enter(name, kind) -> token, exit(token)) over every region hook, None when none
range_c = None              # the only region hook's c_range capsule (see Hook), else None
op_steps_at = None          # the only region hook's op_steps_at (see Hook), else None
op_range_pair = None        # (enter(name, args) -> token, exit(token)) for a composite op's region, None when none
module_pair = None          # range_pair over the region hooks that want nn.Module regions (Hook.module_ranges)
backward_hooks: tuple = ()  # hooks that observe backward passes
sync_hooks: tuple = ()      # hooks that observe host-device synchronisations
autocast_users = 0          # autocast regions open, over all threads
anomaly_users = 0           # threads with anomaly detection on
inference_users = 0         # threads inside inference_mode: their ops' outputs are marked inference tensors
_subscribers: list = []     # fn() called after every refresh (see subscribe)


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


def _observers(*methods):
    return tuple(h for h in _hooks if any(_overrides(h, m) for m in methods))


def _refresh():
    global full_path, sink_only, sink_tls, op_pairs, pair_only, arrays_hook, arrays_done, range_hooks, backward_hooks, \
        sync_hooks, op_step, op_region, range_pair, range_c, op_steps_at, op_range_pair, module_pair
    op_hooks = _observers("op_enter", "op_exit")
    op_pairs = tuple((h.op_enter, h.op_exit) for h in op_hooks)
    range_hooks = _observers("range_enter", "range_exit")
    range_pair, op_range_pair = _range_pairs(range_hooks)
    module_hooks = tuple(h for h in range_hooks if getattr(h, "module_ranges", True))
    module_pair = range_pair if len(module_hooks) == len(range_hooks) else _range_pairs(module_hooks)[0]
    op_step = (getattr(range_hooks[0], "op_step", None) if len(range_hooks) == 1 else None) or _op_step
    op_region = (getattr(range_hooks[0], "op_region", None) if len(range_hooks) == 1 else None) or _op_region
    range_c = getattr(range_hooks[0], "c_range", None) if len(range_hooks) == 1 else None
    op_steps_at = getattr(range_hooks[0], "op_steps_at", None) if len(range_hooks) == 1 else None
    backward_hooks = _observers("backward_begin", "backward_end")
    sync_hooks = _observers("sync")
    modes = autocast_users > 0 or anomaly_users > 0 or inference_users > 0
    full_path = bool(op_hooks) or sink is not None or modes
    sink_only = sink is not None and not op_hooks and not modes
    pair_only = op_pairs[0] if len(op_pairs) == 1 and sink is None and not modes else None
    arrays_hook = getattr(op_hooks[0], "op_arrays", None) if pair_only is not None else None
    arrays_done = getattr(op_hooks[0], "op_done", None) if arrays_hook is not None else None
    sink_tls = sink.tls if sink is not None else None     # (not kept past the sink: it holds its records)
    for fn in _subscribers:
        fn()


def _range_pairs(hs):
    """(range_pair, op_range_pair) for region hooks `hs` (see the module globals): the only hook's own bound
    methods when there is one (a region then costs its hook's two calls and nothing else), else functions
    that call every hook in turn, exits in reverse order."""
    if not hs:
        return None, None
    if len(hs) == 1:
        h = hs[0]
        enter = h.range_enter
        op_enter = getattr(h, "op_range_enter", None)
        if op_enter is None:
            def op_enter(name, args):
                return enter(name, "op")
        return (enter, h.range_exit), (op_enter, h.range_exit)

    def enter_all(name, kind):
        return [h.range_enter(name, kind) for h in hs]

    def op_enter_all(name, args):
        toks = []
        for h in hs:
            e = getattr(h, "op_range_enter", None)
            toks.append(e(name, args) if e is not None else h.range_enter(name, "op"))
        return toks

    def exit_all(tokens):
        for i in range(len(hs) - 1, -1, -1):
            hs[i].range_exit(tokens[i])
    return (enter_all, exit_all), (op_enter_all, exit_all)


def subscribe(fn):
    """Call fn() now and after every change to the registry, the sink or the modes (under the registry's
    lock). For a layer above that keeps its own copies of the names above: the dispatcher reads several
    on every op, and a module global of its own reads faster than an attribute of this module."""
    with _lock:
        _subscribers.append(fn)
        fn()


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


def set_op_sink(new_sink):
    """Let the dispatcher write one compact record per op itself, the cheapest way to time every op.

    `new_sink` has `tls` (a threading.local whose `buf` is that thread's list; anything with a `buf` that
    has `append`) — or is None to stop. A thread's `buf` is read once while the observers stay as they are
    (set it before recording; set_op_sink or any hook change reads it afresh). Records are plain tuples in
    `OpRecord`'s field order, appended when the op returns, around every other hook. The dispatcher does not
    bound the lists: the sink does (the profiler's recorder watches their length and swaps `tls` for a counter,
    then calls `refresh_hooks()`).
    One sink at a time: the profiler allows one recording at a time."""
    global sink
    with _lock:
        if new_sink is not None and sink is not None and new_sink is not sink:
            raise RuntimeError("another op-record sink is active (one profiler records at a time)")
        sink = new_sink
        _refresh()


def op_sink():
    """The op sink set by `set_op_sink`, or None."""
    return sink


def refresh_hooks():
    """Re-read the registered hooks' methods. The dispatcher binds op_enter/op_exit once at registration;
    a hook that swaps its methods (e.g. a recorder switching to dropping mode) calls this."""
    with _lock:
        _refresh()


def full_path_active() -> bool:
    """Whether ops leave the dispatcher's fast path: some op hook, the op sink, autocast, anomaly or
    inference mode is on somewhere in the process."""
    return full_path


def count_user(kind, delta):
    """A mode that sends ops down the full path is switched on (+1) or off (-1): "autocast", "anomaly"
    or "inference"."""
    global autocast_users, anomaly_users, inference_users
    with _lock:
        if kind == "autocast":
            autocast_users += delta
        elif kind == "inference":
            inference_users += delta
        elif kind == "anomaly":
            anomaly_users += delta
        else:
            raise ValueError(f"unknown mode {kind!r}")
        _refresh()


# ------------------------------------------------------------------------------------------------
# named regions, backward passes (synchronisations: tensorlib._sync calls Hook.sync itself)
# ------------------------------------------------------------------------------------------------

def range_enter(name: str, kind: str):
    """Open a named region; returns a token for range_exit (None when no hook listens): (the exit to call,
    its argument), so that a region whose hooks change before it closes still closes with the hooks that
    opened it. Hot callers take `range_pair` themselves: (enter, exit), the one hook's own methods when one
    observes regions (a profiler's recorder, the common case), which saves this call and range_exit's."""
    rp = range_pair
    if rp is None:
        return None
    return rp[1], rp[0](name, kind)


def range_exit(token):
    if token is not None:
        token[0](token[1])


def op_range_enter(name: str, args: tuple):
    """A composite op's region with its positional arguments (Hook.op_range_enter where a hook has it, else
    its range_enter(name, "op")); a token for range_exit, None when no hook listens."""
    rp = op_range_pair
    if rp is None:
        return None
    return rp[1], rp[0](name, args)


def _op_region(name: str, args: tuple, fn, *fargs):
    """`fn(*fargs)` inside a composite op's region (kind "op") given `args` (see op_range_enter): what
    `with record_range(name, "op", args): return fn(*fargs)` does, in one call instead of that form's three,
    for the hottest composites (linear, cross_entropy). Callers call it as ``_H.op_region``: the registry
    rebinds that name to the only region hook's own ``op_region`` when it has one (see Hook)."""
    rp = op_range_pair
    if rp is None:
        return fn(*fargs)
    tok = rp[0](name, args)
    try:
        return fn(*fargs)
    finally:
        rp[1](tok)


def _op_step(name: str, fn, *args):
    """`fn(*args)` inside a range of kind "op" named `name`: a step of a running op's kernel that torch's
    profiler shows as an op of its own (a view made as a strided view: ``as_strided``; ``item``'s read of
    the value: ``_local_scalar_dense``). For kernels that have already tested `range_hooks`, so that the
    step costs nothing unless a profiler listens: ``if _H.range_hooks: return _H.op_step(...)``. Kernels
    call it as ``_H.op_step``: the registry rebinds that name to the only region hook's own ``op_step``
    when it has one (see Hook), the cheapest way to record the step."""
    rp = range_pair
    if rp is None:
        return fn(*args)
    tok = rp[0](name, "op")
    try:
        return fn(*args)
    finally:
        rp[1](tok)


op_step = _op_step
op_region = _op_region


def itself(x):
    """x: the function of a region step that computes nothing (`op_step("to", itself, t)` records torch's aten::to
    where the value is already on the device and dtype; a dropout that drops nothing is its input)."""
    return x


class record_range:
    """Context manager / decorator for a named region of a given kind. A composite op's region (kind "op")
    passes its positional arguments to hooks that take them (Hook.op_range_enter): the decorator its call's,
    the context manager those given as `args`."""
    __slots__ = ("name", "kind", "_token", "args", "_exit")

    def __init__(self, name, kind="user", args=None):
        self.name = name
        self.kind = kind
        self._token = None
        self.args = args
        self._exit = None       # the exit of the hooks that opened the region (see range_enter)

    def __enter__(self):
        args = self.args
        if args is None:
            rp = range_pair
            if rp is not None:
                self._token = rp[0](self.name, self.kind)
                self._exit = rp[1]
        else:
            rp = op_range_pair
            if rp is not None:
                self._token = rp[0](self.name, args)
                self._exit = rp[1]
        return self

    def __exit__(self, *exc):
        ex = self._exit
        if ex is not None:
            self._exit = None
            tok, self._token = self._token, None
            ex(tok)
        return False

    def __call__(self, fn):
        name, kind = self.name, self.kind
        if kind == "op":                # a composite op: its arguments reach hooks that take them
            @functools.wraps(fn)
            def op_wrapper(*a, **k):
                rp = op_range_pair
                if rp is None:
                    return fn(*a, **k)
                if not k:
                    return op_region(name, a, fn, *a)
                tok = rp[0](name, a)
                try:
                    return fn(*a, **k)
                finally:
                    rp[1](tok)
            return op_wrapper

        @functools.wraps(fn)
        def wrapper(*a, **k):
            with record_range(name, kind):
                return fn(*a, **k)
        return wrapper


def backward_begin():
    """The engine starts a backward pass (callers test `backward_hooks` first)."""
    for h in backward_hooks:
        h.backward_begin()


def backward_end():
    for h in backward_hooks:
        h.backward_end()
