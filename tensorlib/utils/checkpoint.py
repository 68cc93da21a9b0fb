"""torch.utils.checkpoint: trade compute for memory by recomputing a segment's forward during backward.

`checkpoint(fn, *args)` runs `fn` without recording a graph (its activations are freed at once) and keeps
only the inputs. Its node, `CheckpointFunctionBackward` as in torch, runs `fn` again with grad enabled
during backward and back-propagates through that recomputation, so every recomputed op is dispatched (and
profiled) inside the backward node, where torch's profiler shows it too. The RNG state of the forward is
restored for the recomputation, so dropout masks agree (`preserve_rng_state=True`, the default).

Both of torch's variants are served by this one mechanism (the recomputation's gradients reach the
segment's inputs and the parameters it uses); `use_reentrant=False` also takes keyword arguments, as
torch's does. torch's warning when `use_reentrant` is not passed, and its errors for unsupported
combinations, are kept.
"""
from __future__ import annotations

import copy
import warnings
from contextlib import contextmanager, nullcontext

from .. import random as _random
from .._tensor import Tensor
from ..autograd import backward as _backward
from ..autograd.function import Function
from ..autograd.grad_mode import enable_grad, is_grad_enabled
from ..ops.creation import empty as _empty

__all__ = ["checkpoint", "checkpoint_sequential", "noop_context_fn"]

_REENTRANT, _ANCHORED = object(), object()     # private keys riding in the kwargs dict


def noop_context_fn():
    return nullcontext(), nullcontext()


def _rng_states():
    """Copies of every generator in use (the CPU's and each CUDA device's), to replay the forward's draws."""
    gens = [_random.default_generator, *_random._cuda_generators.values()]
    return [(g, copy.deepcopy(g._rng)) for g in gens]


@contextmanager
def _replayed_rng(states):
    saved = [(g, g._rng) for g, _ in states]
    try:
        for g, rng in states:
            g._rng = copy.deepcopy(rng)
        yield
    finally:
        for g, rng in saved:
            g._rng = rng


class CheckpointFunction(Function):
    @staticmethod
    def forward(ctx, run_function, preserve_rng_state, kwargs, *args):
        ctx.reentrant = kwargs.pop(_REENTRANT)
        ctx.run_function = run_function
        ctx.kwargs = kwargs
        ctx.rng = _rng_states() if preserve_rng_state else None
        ctx.n_anchors = kwargs.pop(_ANCHORED)
        args = ctx.args = args[:len(args) - ctx.n_anchors]
        ctx.save_for_backward(*(a for a in args if isinstance(a, Tensor)))
        return run_function(*args, **kwargs)

    @staticmethod
    def backward(ctx, *grad_outputs):
        saved = iter(ctx.saved_tensors)
        inputs = []
        for a in ctx.args:
            if isinstance(a, Tensor):
                t = next(saved).detach()
                t.requires_grad_(a.requires_grad)
                inputs.append(t)
            else:
                inputs.append(a)
        with (_replayed_rng(ctx.rng) if ctx.rng is not None else nullcontext()), enable_grad():
            outputs = ctx.run_function(*inputs, **ctx.kwargs)
        if isinstance(outputs, Tensor):
            outputs = (outputs,)
        pairs = [(o, g) for o, g in zip(outputs, grad_outputs)
                 if isinstance(o, Tensor) and o.requires_grad and g is not None]
        if not pairs:
            if ctx.reentrant:
                raise RuntimeError("none of output has requires_grad=True, this checkpoint() is not necessary")
        else:
            _backward([o for o, _ in pairs], [g for _, g in pairs])
        grads = tuple(t.grad if isinstance(t, Tensor) and t.requires_grad else None for t in inputs)
        return (None, None, None) + grads + (None,) * ctx.n_anchors


def _use_reentrant(use_reentrant, where):
    if use_reentrant is None:
        warnings.warn(
            f"{where}: the use_reentrant parameter should be passed explicitly. "
            + ("Starting in PyTorch 2.9, calling checkpoint without use_reentrant will raise an exception. "
               if where == "torch.utils.checkpoint" else "In version 2.9 we will raise an exception if "
               "use_reentrant is not passed. ")
            + "use_reentrant=False is recommended, but if you need to preserve the current default behavior, "
              "you can pass use_reentrant=True. Refer to docs for more details on the differences between the "
              "two variants.", stacklevel=3)
        return True
    return use_reentrant


def checkpoint(function, *args, use_reentrant=None, context_fn=noop_context_fn, determinism_check="default",
               debug=False, early_stop=True, **kwargs):
    """torch.utils.checkpoint.checkpoint: run `function(*args)` now without keeping its activations and
    again during backward."""
    use_reentrant = _use_reentrant(use_reentrant, "torch.utils.checkpoint")
    preserve = kwargs.pop("preserve_rng_state", True)
    if kwargs and use_reentrant:
        raise ValueError("Unexpected keyword arguments: " + ",".join(arg for arg in kwargs))
    if use_reentrant and (context_fn is not noop_context_fn or debug is not False):
        raise ValueError("Passing `context_fn` or `debug` is only supported when use_reentrant=False.")
    if context_fn is not noop_context_fn or debug:
        raise NotImplementedError("tensorlib's checkpoint does not support context_fn or debug; "
                                  "call checkpoint without them")
    if determinism_check not in ("default", "none"):
        raise ValueError(f"determinism_check should be one of ['default', 'none'], but got {determinism_check}")
    anchored = []
    if not any(isinstance(a, Tensor) and a.requires_grad for a in args):
        if use_reentrant:
            warnings.warn("None of the inputs have requires_grad=True. Gradients will be None", stacklevel=2)
        elif is_grad_enabled():
            # the non-reentrant variant reaches parameters the function closes over even when no input
            # requires grad (torch does it with saved-tensor hooks): an anchor input gives the output a node
            anchored = [_empty(0, requires_grad=True)]
    kwargs = {**kwargs, _REENTRANT: use_reentrant, _ANCHORED: len(anchored)}
    return CheckpointFunction.apply(function, preserve, kwargs, *args, *anchored)


def checkpoint_sequential(functions, segments, input, use_reentrant=None, **kwargs):
    """torch.utils.checkpoint.checkpoint_sequential: all segments but the last are checkpointed."""
    use_reentrant = _use_reentrant(use_reentrant, "torch.utils.checkpoint.checkpoint_sequential")
    preserve = kwargs.pop("preserve_rng_state", True)
    if kwargs:
        raise ValueError("Unexpected keyword arguments: " + ",".join(arg for arg in kwargs))
    from ..nn import Sequential
    if isinstance(functions, Sequential):
        functions = list(functions.children())

    def run_function(start, end):
        def forward(x):
            for j in range(start, end + 1):
                x = functions[j](x)
            return x
        return forward

    segment_size = len(functions) // segments
    end = -1
    for start in range(0, segment_size * (segments - 1), segment_size):
        end = start + segment_size - 1
        input = checkpoint(run_function(start, end), input, use_reentrant=use_reentrant,
                           preserve_rng_state=preserve)
    return run_function(end + 1, len(functions) - 1)(input)
