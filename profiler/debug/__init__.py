"""Debugging instruments, each a `tensorlib.dispatch.Hook` (ops, syncs, backward passes):
nan_watch, sync_watch, device_watch, grad_monitor, sanity_check."""
from .device_watch import DeviceFinding, device_watch
from .grad_monitor import GradRecord, grad_monitor
from .nan_watch import Finding, NanInfError, nan_watch
from .sync_watch import SyncError, SyncEvent, sync_watch
from .sanity import CheckItem, SanityReport, sanity_check
