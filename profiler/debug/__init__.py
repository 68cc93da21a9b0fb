"""Debugging instruments, each a hook on tensorlib's dispatcher (or its sync/backward callbacks):
nan_watch, sync_watch, device_watch, grad_monitor, sanity_check."""
from .device_watch import DeviceFinding, device_watch  # noqa: F401
from .grad_monitor import GradRecord, grad_monitor  # noqa: F401
from .nan_watch import Finding, NanInfError, nan_watch  # noqa: F401
from .sync_watch import SyncError, SyncEvent, sync_watch  # noqa: F401
from .sanity import CheckItem, SanityReport, sanity_check  # noqa: F401
