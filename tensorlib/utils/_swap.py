"""torch.utils.swap_tensors: two tensors exchange their contents (class, attributes, data, autograd state),
so every reference to either sees the other's (how a module can change a parameter that an optimizer holds)."""
from __future__ import annotations

import copyreg
import weakref

from .._tensor import Tensor

_POISONED = ("Trying to execute AccumulateGrad node that was poisoned by swap_tensors this can happen when you try "
             "to run backward on a tensor that was swapped. For a module m with "
             "`torch.__future__.set_swap_module_params_on_conversion(True)` you should not change the device or "
             "dtype of the module (e.g. `m.cpu()` or `m.half()`) between running forward and backward. To resolve "
             "this, please only change the device/dtype before running forward (or after both forward and "
             "backward).")


def _poisoned():
    raise RuntimeError(_POISONED)


def _own_accumulator_ref(t: Tensor):
    """The weak reference that t's AccumulateGrad node (autograd's, made on first use) holds to it, or None."""
    edge = t.__dict__.get("_acc_edge")
    return getattr(edge[0], "_ref", None) if edge else None


def swap_tensors(t1, t2) -> None:
    """Swap the Python class, `__dict__`, slots and data of t1 and t2 (torch.utils.swap_tensors). As torch,
    refused when something else holds a weak reference to either; a leaf's gradient accumulator from before
    the swap raises if a backward reaches it (run backward before swapping, or forward after)."""
    for name, t in (("t1", t1), ("t2", t2)):
        if not isinstance(t, Tensor):
            raise TypeError(f"swap_tensors: {name} must be a Tensor, got {type(t).__name__}")
        own = _own_accumulator_ref(t)
        if any(r is not own for r in weakref.getweakrefs(t)):
            raise RuntimeError(f"Cannot swap {name} because it has weakref associated with it")
    slots1, slots2 = set(copyreg._slotnames(type(t1))), set(copyreg._slotnames(type(t2)))  # type: ignore[attr-defined]
    if slots1 != slots2:
        raise RuntimeError("Cannot swap t1 and t2 if they have different slots")
    for t in (t1, t2):
        edge = t.__dict__.pop("_acc_edge", None)
        if edge is not None:
            edge[0]._ref = _poisoned
    t1.__class__, t2.__class__ = t2.__class__, t1.__class__
    t1.__dict__, t2.__dict__ = t2.__dict__, t1.__dict__
    for slot in slots1 | {"_data"}:
        if slot in ("__dict__", "__weakref__"):
            continue
        has1, has2 = hasattr(t1, slot), hasattr(t2, slot)
        v1, v2 = getattr(t1, slot, None), getattr(t2, slot, None)
        for t, has, v in ((t1, has2, v2), (t2, has1, v1)):
            if has:
                object.__setattr__(t, slot, v)
            elif hasattr(t, slot):
                object.__delattr__(t, slot)
