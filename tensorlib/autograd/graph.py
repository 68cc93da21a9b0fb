"""torch.autograd.graph: the nodes a forward op leaves behind. They are recorded by the dispatcher's
graph layer, `tensorlib._graph`, which sits below the kernel executor; this is their public name.
Also torch's saved-tensor hooks (saved_tensors_hooks, save_on_cpu, disable_saved_tensors_hooks), whose
packing and unpacking `_graph` does (see _graph.pack_saved)."""
from __future__ import annotations

import contextlib
import functools
import sys
import threading
from collections import defaultdict
from collections.abc import Callable, Generator
from typing import Any

from .. import _graph as _G
from .._graph import AccumulateGrad, Node, accumulator, view_positions
from .._state import STATE

__all__ = ["Node", "AccumulateGrad", "accumulator", "view_positions", "saved_tensors_hooks", "save_on_cpu",
           "disable_saved_tensors_hooks", "register_multi_grad_hook", "current_graph_task_id",
           "will_engine_execute_node"]


class saved_tensors_hooks:
    """Context-manager that sets a pair of pack / unpack hooks for saved tensors (torch's): every tensor an
    autograd node saves while it is on is stored as pack_hook(tensor), and read back in backward (each
    time it is read) as unpack_hook(packed), which must return a tensor. The hooks are this thread's; the
    innermost context applies. pack_hook runs with grad mode off and must not change its input in place."""

    def __init__(self, pack_hook: Callable[[Any], Any], unpack_hook: Callable[[Any], Any]) -> None:
        self.pack_hook = pack_hook
        self.unpack_hook = unpack_hook

    def __enter__(self) -> None:
        _G.push_saved_hooks(self.pack_hook, self.unpack_hook)

    def __exit__(self, *args: object) -> None:
        _G.pop_saved_hooks()


class save_on_cpu(saved_tensors_hooks):
    """Context-manager under which tensors saved by the forward pass are stored on CPU, then copied back to
    their device for backward (torch's). pin_memory: pack into pinned memory when the device can use it, and
    copy back without blocking."""

    def __init__(self, pin_memory: bool = False, device_type: str = "cuda") -> None:
        tensorlib = sys.modules["tensorlib"]     # the package, loaded by now (no import edge up to it)
        device_module = getattr(tensorlib, device_type, tensorlib.cuda)

        def pack_to_cpu(tensor):
            if not pin_memory:
                return (tensor.device, tensor.cpu())
            is_pinnable = device_module.is_available() and not tensor.is_sparse
            packed = tensorlib.empty(tensor.size(), dtype=tensor.dtype, layout=tensor.layout, pin_memory=is_pinnable)
            packed.copy_(tensor, non_blocking=is_pinnable)
            return (tensor.device, packed)

        def unpack_from_cpu(packed):
            device, tensor = packed
            return tensor.to(device, non_blocking=pin_memory)

        super().__init__(pack_to_cpu, unpack_from_cpu)


@contextlib.contextmanager
def disable_saved_tensors_hooks(error_message: str) -> Generator[None, None, None]:
    """Context-manager under which entering saved_tensors_hooks (save_on_cpu, checkpoint's own) raises
    RuntimeError(error_message), as torch's. This thread's; nested ones restore the outer message."""
    st = STATE
    prev = st.saved_hooks_off
    if st.saved_hooks:      # torch refuses to disable while hooks are on, with the same message
        raise RuntimeError(error_message)
    try:
        st.saved_hooks_off = error_message
        yield
    finally:
        st.saved_hooks_off = prev


# --- multi-grad hooks ----------------------------------------------------------------------------------
# torch._C._current_graph_task_id and _will_engine_execute_node: the backward pass this thread runs (the engine's
# GraphTask, tensorlib.autograd.engine), read by register_multi_grad_hook as torch's is.

def current_graph_task_id() -> int:
    """The id of the backward pass this thread runs, -1 outside one (torch._C._current_graph_task_id)."""
    task = STATE.graph_task
    return -1 if task is None else task.id


def will_engine_execute_node(node) -> bool:
    """Whether the running backward pass runs `node` (a grad_fn, or a leaf's AccumulateGrad): reachable from its
    roots, or with autograd.grad's `inputs`, needed for them (torch._C._will_engine_execute_node)."""
    task = STATE.graph_task
    if task is None:
        raise RuntimeError("_will_engine_execute_node should only be called during the backward pass")
    if not isinstance(node, Node):
        raise TypeError(f"_will_engine_execute_node expects a grad_fn, got {type(node).__name__}")
    return task.will_execute(node)


def _get_grad_fn_or_grad_acc(t):
    """A tensor's grad_fn, or a leaf's AccumulateGrad (None when it requires no grad), as torch's."""
    if t.requires_grad and t.grad_fn is None:
        return accumulator(t)
    return t.grad_fn


class _MultiHandle:
    """register_multi_grad_hook's handle: remove() removes every tensor hook it registered."""

    def __init__(self, handles) -> None:
        self.handles = handles

    def remove(self) -> None:
        for handle in self.handles:
            handle.remove()

    def __enter__(self):
        return self

    def __exit__(self, *args) -> None:
        self.remove()


def register_multi_grad_hook(tensors, fn, *, mode="all"):
    """torch.autograd.graph.register_multi_grad_hook: under mode "all", fn(grads) once per backward pass after the
    gradient of every tensor that pass computes has been computed (None for the others: a tensor outside the
    graph, or not needed for autograd.grad's `inputs`); under "any", fn(grad) with the first one. A handle with
    remove(). torch's implementation, on tensorlib's graph tasks."""
    supported_modes = ("all", "any")
    lock = threading.Lock()
    if mode not in supported_modes:
        raise ValueError(f"Expects mode to be one of {supported_modes} but got {mode}")
    if mode == "all":
        count: dict[int, int] = {}
        nb_calls = None
        buffer: dict[int, list] = {}
        grad_fns = list(map(_get_grad_fn_or_grad_acc, tensors))
        len_tensors = len(tensors)

        def get_inner_hook(idx):
            def inner_hook(grad):
                nonlocal nb_calls
                id = current_graph_task_id()
                if id == -1:
                    raise AssertionError("expected this hook to be called inside a backward call")
                count[id] = count.get(id, 0)
                buffer[id] = buffer.get(id, [None] * len_tensors)
                with lock:
                    curr_count, count[id] = count[id], count[id] + 1
                    if curr_count == 0:     # the first call: how many of the tensors this pass computes
                        nb_calls = sum(will_engine_execute_node(g) for g in grad_fns if g is not None)
                buffer[id][idx] = grad
                if curr_count == nb_calls - 1:
                    fn(buffer[id])
                    del count[id]
                    del buffer[id]
            return inner_hook

        handles = tuple(t.register_hook(get_inner_hook(i)) for i, t in enumerate(tensors))
    else:
        ran_hook: dict[int, bool] = defaultdict(bool)

        @functools.wraps(fn)
        def wrapped_fn(grad):
            id = current_graph_task_id()
            if id == -1:
                raise AssertionError("expected this hook to be called inside a backward call")
            with lock:
                prev, ran_hook[id] = ran_hook[id], True
            if prev:
                return
            fn(grad)

        handles = tuple(t.register_hook(wrapped_fn) for t in tensors if t.requires_grad)
    return _MultiHandle(handles)
