"""autocast: ops tagged "lower" (matmul, linear, conv, bmm) run in the autocast dtype; ops tagged "fp32"
(softmax, log_softmax, losses, norms, reductions, exp/log) run in float32; "promote" ops run in the widest
input dtype. The casts are dispatched `to` ops, so the profiler shows them under the op that needed them
(the dispatcher casts: tensorlib.dispatch.autocast_args); this module switches the thread's mode."""
from __future__ import annotations

import functools
import threading
import warnings

from .. import _dtype as D
from .._hooks import count_user
from .._state import STATE


class autocast:
    def __init__(self, device_type="cuda", dtype=None, enabled=True, cache_enabled=None):
        if device_type not in ("cuda", "cpu"):
            raise RuntimeError(f"User specified an unsupported autocast device_type '{device_type}'")
        self.device_type = device_type
        # the device's autocast dtype (set_autocast_dtype); tensorlib's CPU default is float16 (torch's is
        # bfloat16, which NumPy has no native kernels for)
        self.fast_dtype = D.to_dtype(dtype) if dtype is not None else _DTYPES.get(device_type)
        if not self.fast_dtype.is_floating_point:
            raise RuntimeError(f"autocast dtype must be a floating point type, got {self.fast_dtype}")
        self.enabled = enabled

    def __enter__(self):
        self._prev = STATE.autocast
        STATE.autocast = (self.device_type, self.fast_dtype) if self.enabled else None
        count_user("autocast", +1)
        return self

    def __exit__(self, *exc):
        STATE.autocast = self._prev
        count_user("autocast", -1)
        return False

    def __call__(self, fn):
        @functools.wraps(fn)
        def wrapper(*a, **k):
            with autocast(self.device_type, self.fast_dtype, self.enabled):
                return fn(*a, **k)
        return wrapper


# torch's device types (its "Expected one of ..." list): names autocast's functions accept
_DEVICE_TYPES = ("cpu", "cuda", "ipu", "xpu", "mkldnn", "opengl", "opencl", "ideep", "hip", "ve", "fpga", "maia",
                 "xla", "lazy", "vulkan", "mps", "meta", "hpu", "mtia", "privateuseone")


def _check_device_type(device_type) -> str:
    if device_type not in _DEVICE_TYPES:
        raise RuntimeError(f"Expected one of {', '.join(_DEVICE_TYPES)} device type at start of device string: "
                           f"{device_type}")
    return device_type


class _Dtypes(threading.local):
    """Each device type's autocast dtype (torch's thread-local set_autocast_dtype): what `autocast`
    uses when given no dtype. float16 on CUDA as torch's; float16 on the CPU (see `autocast`);
    bfloat16 for the other device types, as torch."""

    def __init__(self):
        self.by_type: dict = {}

    def get(self, device_type):
        d = self.by_type.get(device_type)
        if d is not None:
            return d
        return D.float16 if device_type in ("cuda", "cpu") else D.bfloat16


_DTYPES = _Dtypes()
# threads where set_autocast_enabled has turned autocast on (and not yet off): each keeps the dispatcher's autocast
# check on (Hook registry's count of autocast users) until it turns it off again
_switched_on = threading.local()


def is_autocast_enabled(device_type=None) -> bool:
    """torch.is_autocast_enabled(device_type): whether autocast runs for that device type now; with no
    argument, for CUDA (torch's meaning of the argumentless form). tensorlib runs autocast for one
    device type at a time (an `autocast` region or set_autocast_enabled)."""
    if device_type is None:
        device_type = "cuda"
    _check_device_type(device_type)
    st = STATE.autocast
    return st is not None and st[0] == device_type


def get_autocast_dtype(device_type):
    """The dtype autocast lowers to on `device_type`: the running region's, else the device type's
    (set_autocast_dtype)."""
    _check_device_type(device_type)
    st = STATE.autocast
    return st[1] if st is not None and st[0] == device_type else _DTYPES.get(device_type)


def set_autocast_enabled(device_type, enabled=None) -> None:
    """torch.set_autocast_enabled(device_type, enabled) (or the deprecated set_autocast_enabled(enabled),
    for CUDA): switch autocast on or off for this thread, outside any region. Autocast for a second device
    type while one runs is refused: tensorlib's dispatcher casts for one device type at a time."""
    if enabled is None:
        device_type, enabled = "cuda", device_type
        if not isinstance(enabled, bool):
            raise TypeError(f"set_autocast_enabled(): argument 'enabled' (position 1) must be bool, not "
                            f"{type(enabled).__name__}")
    if not isinstance(enabled, bool):
        raise TypeError(f"set_autocast_enabled(): argument 'enabled' (position 2) must be bool, not "
                        f"{type(enabled).__name__}")
    _check_device_type(device_type)
    st = STATE.autocast
    if not enabled:
        if st is not None and st[0] == device_type:
            STATE.autocast = None
        if STATE.autocast is None and getattr(_switched_on, "on", False):
            _switched_on.on = False
            count_user("autocast", -1)
        return
    if st is not None and st[0] != device_type:
        raise RuntimeError(f"tensorlib runs autocast for one device type at a time: it is enabled for "
                           f"'{st[0]}', so it cannot also be enabled for '{device_type}'")
    if device_type not in ("cuda", "cpu"):
        raise RuntimeError(f"User specified an unsupported autocast device_type '{device_type}'")
    if not getattr(_switched_on, "on", False):
        _switched_on.on = True
        count_user("autocast", +1)
    STATE.autocast = (device_type, get_autocast_dtype(device_type))


def set_autocast_dtype(device_type, dtype) -> None:
    """torch.set_autocast_dtype: the dtype autocast lowers to on `device_type` (this thread); a running
    region for that device type lowers to it from now on, as torch's."""
    _check_device_type(device_type)
    if not isinstance(dtype, D.dtype):
        raise TypeError(f"set_autocast_dtype(): argument 'dtype' (position 2) must be torch.dtype, not "
                        f"{type(dtype).__name__}")
    _DTYPES.by_type[device_type] = dtype
    st = STATE.autocast
    if st is not None and st[0] == device_type:
        STATE.autocast = (device_type, dtype)


def _deprecated(old: str, new: str) -> None:
    warnings.warn(f"torch.{old} is deprecated. Please use torch.{new} instead.", DeprecationWarning, stacklevel=3)


def is_autocast_cpu_enabled() -> bool:
    _deprecated("is_autocast_cpu_enabled()", "is_autocast_enabled('cpu')")
    return is_autocast_enabled("cpu")


def set_autocast_cpu_enabled(enabled) -> None:
    _deprecated("set_autocast_cpu_enabled(enabled)", "set_autocast_enabled('cpu', enabled)")
    set_autocast_enabled("cpu", enabled)


def get_autocast_cpu_dtype():
    _deprecated("get_autocast_cpu_dtype()", "get_autocast_dtype('cpu')")
    return get_autocast_dtype("cpu")


def get_autocast_gpu_dtype():
    _deprecated("get_autocast_gpu_dtype()", "get_autocast_dtype('cuda')")
    return get_autocast_dtype("cuda")


def set_autocast_cpu_dtype(dtype) -> None:
    _deprecated("set_autocast_cpu_dtype(dtype)", "set_autocast_dtype('cpu', dtype)")
    set_autocast_dtype("cpu", dtype)


def set_autocast_gpu_dtype(dtype) -> None:
    _deprecated("set_autocast_gpu_dtype(dtype)", "set_autocast_dtype('cuda', dtype)")
    set_autocast_dtype("cuda", dtype)
