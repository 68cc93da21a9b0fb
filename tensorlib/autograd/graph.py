"""torch.autograd.graph: the nodes a forward op leaves behind. They are recorded by the dispatcher's
graph layer, `tensorlib._graph`, which sits below the kernel executor; this is their public name.
Also torch's saved-tensor hooks (saved_tensors_hooks, save_on_cpu, disable_saved_tensors_hooks), whose
packing and unpacking `_graph` does (see _graph.pack_saved)."""
from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable, Generator
from typing import Any

from .. import _graph as _G
from .._graph import AccumulateGrad, Node, accumulator, view_positions
from .._state import STATE

__all__ = ["Node", "AccumulateGrad", "accumulator", "view_positions", "saved_tensors_hooks", "save_on_cpu",
           "disable_saved_tensors_hooks"]


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
