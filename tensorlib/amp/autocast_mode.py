"""autocast: ops tagged "lower" (matmul, linear, conv, bmm) run in the autocast dtype; ops tagged "fp32"
(softmax, log_softmax, losses, norms, reductions, exp/log) run in float32; "promote" ops run in the widest
input dtype. The casts are dispatched `to` ops, so the profiler shows them under the op that needed them
(the dispatcher casts: tensorlib.dispatch.autocast_args); this module switches the thread's mode."""
from __future__ import annotations

import functools

from .. import _dtype as D
from .._hooks import count_user
from .._state import STATE


class autocast:
    def __init__(self, device_type="cuda", dtype=None, enabled=True, cache_enabled=None):
        if device_type not in ("cuda", "cpu"):
            raise RuntimeError(f"User specified an unsupported autocast device_type '{device_type}'")
        self.device_type = device_type
        # torch's CPU default is bfloat16, which NumPy lacks: float16 is the reduced precision here
        self.fast_dtype = D.to_dtype(dtype) if dtype is not None else D.float16
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


def is_autocast_enabled(device_type=None) -> bool:
    st = STATE.autocast
    return st is not None and (device_type is None or st[0] == device_type)


def get_autocast_dtype(device_type="cuda"):
    st = STATE.autocast
    return st[1] if st is not None else (D.float16 if device_type == "cuda" else D.float16)
