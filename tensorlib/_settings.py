"""torch's process-wide switches that tensorlib keeps (use_deterministic_algorithms and the debug mode,
set_warn_always, set_flush_denormal) and torch.typename. The state is _state.GLOBAL, which the kernels
that depend on it read: the CUDA scatter-add (tensorlib.ops.broadcast.add_at), the convolution
algorithm choice (backends.cudnn) and the warn-once warnings of the autograd engine."""
from __future__ import annotations

from typing import Any

from ._state import GLOBAL
from ._tensor import Tensor

__all__ = ["use_deterministic_algorithms", "are_deterministic_algorithms_enabled",
           "is_deterministic_algorithms_warn_only_enabled", "set_deterministic_debug_mode",
           "get_deterministic_debug_mode", "set_warn_always", "is_warn_always_enabled", "set_flush_denormal",
           "typename"]


def use_deterministic_algorithms(mode: bool, *, warn_only: bool = False) -> None:
    """torch.use_deterministic_algorithms. On the CPU every tensorlib kernel is deterministic (NumPy's
    additions run in a fixed order), so the mode changes nothing there. On CUDA two paths are not: the
    atomic float scatter-add (cupyx.scatter_add) that index_add_, scatter_add_, index_put_(accumulate=True)
    and the backward of indexing, embedding and gather use, which raises in this mode (warns with
    warn_only=True) as torch's nondeterministic kernels do, and the convolutions' atomic col2im algorithm,
    which this mode excludes (as backends.cudnn.deterministic does), with cuDNN asked for its
    deterministic algorithms."""
    if not isinstance(mode, bool):
        raise TypeError(f"_set_deterministic_algorithms(): argument 'mode' (position 1) must be bool, not "
                        f"{type(mode).__name__}")
    if not isinstance(warn_only, bool):
        raise TypeError(f"_set_deterministic_algorithms(): argument 'warn_only' must be bool, not "
                        f"{type(warn_only).__name__}")
    GLOBAL.deterministic = mode
    GLOBAL.deterministic_warn_only = warn_only if mode else False


def are_deterministic_algorithms_enabled() -> bool:
    return GLOBAL.deterministic


def is_deterministic_algorithms_warn_only_enabled() -> bool:
    return GLOBAL.deterministic_warn_only


def set_deterministic_debug_mode(debug_mode: int | str) -> None:
    """torch.set_deterministic_debug_mode: "default" (0), "warn" (1) or "error" (2), the same switch as
    use_deterministic_algorithms (off; on with warn_only; on)."""
    if not isinstance(debug_mode, (int, str)):
        raise TypeError(f"debug_mode must be str or int, but got {type(debug_mode)}")
    if isinstance(debug_mode, str):
        modes = {"default": 0, "warn": 1, "error": 2}
        if debug_mode not in modes:
            raise RuntimeError("invalid value of debug_mode, expected one of `default`, `warn`, `error`, but got "
                               f"{debug_mode}")
        debug_mode = modes[debug_mode]
    if debug_mode not in (0, 1, 2):
        raise RuntimeError(f"invalid value of debug_mode, expected 0, 1, or 2, but got {debug_mode}")
    use_deterministic_algorithms(debug_mode != 0, warn_only=debug_mode == 1)


def get_deterministic_debug_mode() -> int:
    if not GLOBAL.deterministic:
        return 0
    return 1 if GLOBAL.deterministic_warn_only else 2


def set_warn_always(b: bool, /) -> None:
    """torch.set_warn_always: tensorlib's warn-once warnings (the engine's create_graph warning) warn every
    time while on."""
    if not isinstance(b, bool):
        raise RuntimeError(f"setWarnOnlyOnce expects a bool, but got {type(b).__name__}")
    GLOBAL.warn_always = b


def is_warn_always_enabled() -> bool:
    return GLOBAL.warn_always


def set_flush_denormal(mode) -> bool:
    """torch.set_flush_denormal: whether flushing denormal floats to zero is supported, after setting it.
    NumPy offers no control of the CPU's flush-to-zero bits, so it is not: False, and nothing changes."""
    if not isinstance(mode, bool):
        raise RuntimeError(f"flush_denormal expects a bool, but got {type(mode).__name__}")
    return False


def typename(obj: Any, /) -> str:
    """torch.typename: a tensor's type() ("tensorlib.FloatTensor"), else the object's qualified name."""
    if isinstance(obj, Tensor):
        return obj.type()
    module = getattr(obj, "__module__", "") or ""
    if hasattr(obj, "__qualname__"):
        qualname = obj.__qualname__
    elif hasattr(obj, "__name__"):
        qualname = obj.__name__
    else:
        module = obj.__class__.__module__ or ""
        qualname = obj.__class__.__qualname__
    return qualname if module in ("", "builtins") else f"{module}.{qualname}"
