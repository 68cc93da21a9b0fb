"""cupy_backends.cuda.api.runtime (fake): the home of CUDARuntimeError, as in CuPy, where
`cupy.cuda.runtime` re-exports this module; the runtime functions themselves are the fake's
`cupy.cuda.runtime`, reached through this module too."""
from __future__ import annotations


class CUDARuntimeError(RuntimeError):
    def __init__(self, status, msg="invalid device ordinal"):
        self.status = status
        super().__init__(f"cudaErrorInvalidDevice: {msg}" if status == 101 else msg)


def __getattr__(name):
    from cupy.cuda import runtime
    return getattr(runtime, name)
