"""Layer 1 of the dispatcher: per-thread state (grad mode, inference mode, phase, autocast, anomaly) and
the sequence numbers that tie a forward op to its backward steps. Imports nothing of tensorlib but the leaf
_native (which decides whether the C twin of the phase and seq, tensorlib._cstate, is used).

torch keeps these thread-local too. Everything above (hooks, execution, dispatch, autograd, amp) reads
`STATE`; only the engine writes the phase."""
from __future__ import annotations

import itertools
import threading
from typing import Any

from . import _native       # (a leaf: the standard library only)

__all__ = ["STATE", "seq_counter", "next_seq", "current_phase", "current_seq", "phase_seq", "backward_passes",
           "grad_off", "set_grad_mode", "GLOBAL", "alert_not_deterministic"]


class _State(threading.local):
    grad_enabled = True
    inference = False
    phase = "forward"
    seq = -1                  # sequence number of the backward node being run
    autocast: tuple | None = None     # None or a tuple of (device_type, dtype)
    anomaly = False
    anomaly_check_nan = True
    saved_hooks: tuple = ()   # torch.autograd.graph.saved_tensors_hooks' stack: ((pack, unpack), ...), innermost last
    saved_hooks_off: str | None = None    # disable_saved_tensors_hooks' message while it is on
    graph_task: Any = None    # the backward pass this thread runs (autograd.engine.GraphTask), None outside one


# phase and seq in C where tensorlib._cstate is used (tensorlib/_native.py): the calling thread's values, read and
# written by the engine and the recorded paths in C without a dict (tensorlib/_state_api.h), and by Python as the
# class's two data descriptors. phase then takes "forward" or "backward" only, seq an int.
_cstate = _native.load("tensorlib._cstate")
if _cstate is not None:
    _State.phase = _cstate.phase
    _State.seq = _cstate.seq

STATE = _State()


class _Global:
    """The process-wide switches (torch keeps these in its global context, not per thread):
    use_deterministic_algorithms(mode, warn_only=) and set_warn_always."""
    deterministic = False
    deterministic_warn_only = False
    warn_always = False       # torch.set_warn_always: a warn-once warning warns every time
    # scaled_dot_product_attention's backends the user allows (torch.backends.cuda.enable_*_sdp,
    # torch.nn.attention.sdpa_kernel; torch's global context, read by its CPU dispatch too)
    sdp_flash = True
    sdp_mem_efficient = True
    sdp_math = True
    sdp_cudnn = True


GLOBAL = _Global()

_NOT_DETERMINISTIC = (
    "{} does not have a deterministic implementation, but you set 'torch.use_deterministic_algorithms(True)'. "
    "You can turn off determinism just for this operation, or you can use the 'warn_only=True' option, if that's "
    "acceptable for your application. You can also file an issue at https://github.com/pytorch/pytorch/issues to "
    "help us prioritize adding deterministic support for this operation.")


def alert_not_deterministic(caller: str) -> None:
    """torch's alertNotDeterministic: in deterministic mode, a kernel whose result may vary from run to run
    raises (warns under warn_only=True). Called only where tensorlib's kernel really varies."""
    if not GLOBAL.deterministic:
        return
    msg = _NOT_DETERMINISTIC.format(caller)
    if GLOBAL.deterministic_warn_only:
        import warnings
        warnings.warn(msg, UserWarning, stacklevel=3)
    else:
        raise RuntimeError(msg)
# forward sequence numbers: next(seq_counter) (atomic under the GIL; the hot paths call next() on it, which is quicker
# than calling next_seq). tensorlib._cstate's Counter where it is used: the C recorded paths take a number from it
# without making an int object where only a record keeps it.
seq_counter = _cstate.Counter() if _cstate is not None else itertools.count()
next_seq = seq_counter.__next__

backward_passes: list = []   # one entry per backward pass running now, over all threads (the engine
                             # appends and pops: atomic list operations, no lock); see phase_seq


grad_off: list = []     # one entry per thread whose grad mode is off now (appended and popped by
                        # set_grad_mode: atomic list operations): while it is empty, an op that records
                        # autograd needs no read of the thread-local STATE.grad_enabled


def set_grad_mode(mode: bool) -> bool:
    """Set this thread's grad mode (the one writer of STATE.grad_enabled, which keeps `grad_off` true to
    it); returns the previous mode."""
    st = STATE
    prev = st.grad_enabled
    if mode != prev:
        st.grad_enabled = mode
        if mode:
            grad_off.pop()
        else:
            grad_off.append(None)
    return prev


def current_phase():
    return STATE.phase


def current_seq():
    """Inside a backward node (its range and its ops): the sequence number of the forward op."""
    return STATE.seq if STATE.phase == "backward" else -1


def phase_seq():
    """(phase, seq, run_seq) of an op about to run on this thread. A forward op takes a fresh sequence
    number, which its autograd node will carry (run_seq); a backward op carries the number of the
    forward op whose gradient it computes and gives none to the nodes it may record (create_graph).
    The thread-local phase is read only while some thread runs a backward pass (`backward_passes`):
    a thread's phase is "backward" only inside the engine's run_backward."""
    if backward_passes:
        st = STATE
        if st.phase != "forward":
            return "backward", st.seq, -1
    seq = next(seq_counter)
    return "forward", seq, seq
