"""cupy_backends.cuda.api.runtime (fake): the home of CUDARuntimeError, as in CuPy, where
`cupy.cuda.runtime` re-exports this module; the runtime functions themselves are the fake's
`cupy.cuda.runtime`, reached through this module too."""
from __future__ import annotations


errorInvalidDevice = 101
errorInvalidResourceHandle = 400
errorIllegalState = 401
errorNotReady = 600
_ERRORS = {errorIllegalState: ("cudaErrorIllegalState", "operation not permitted when stream is capturing"),
           errorInvalidDevice: ("cudaErrorInvalidDevice", "invalid device ordinal"),
           errorInvalidResourceHandle: ("cudaErrorInvalidResourceHandle", "invalid resource handle"),
           errorNotReady: ("cudaErrorNotReady", "device not ready")}


class CUDARuntimeError(RuntimeError):
    """As CuPy's: built from the status alone, "name: description"."""

    def __init__(self, status):
        self.status = status
        name, msg = _ERRORS.get(status, (f"cudaError{status}", "unknown error"))
        super().__init__(f"{name}: {msg}")

    def __reduce__(self):
        return (type(self), (self.status,))


def __getattr__(name):
    from cupy.cuda import runtime
    return getattr(runtime, name)
