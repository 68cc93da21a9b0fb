"""sync_watch: every host-device synchronisation a CUDA tensor forces (item, tolist, numpy/cpu, bool,
print), with the user's source line, like torch.cuda.set_sync_debug_mode. CPU tensors never synchronise
and are not reported. The count feeds the pytest plugin's `max_syncs` budget."""
from __future__ import annotations

import threading
import warnings
from dataclasses import dataclass

from safeio import literal
from tensorlib import dispatch as D

from ._source import format_location, user_location


class SyncError(RuntimeError):
    pass


@dataclass
class SyncEvent:
    what: str
    shape: tuple
    location: tuple

    def message(self):
        return literal(f"sync_watch: {self.what}() on a CUDA tensor of shape {self.shape} forces a host-device "
                f"synchronisation at {format_location(self.location)}")


class sync_watch(D.Hook):
    """A dispatcher hook observing host-device synchronisations (`Hook.sync`) while its block runs."""

    def __init__(self, mode="warn"):
        if mode not in ("warn", "error", "count"):
            raise ValueError(f"sync_watch mode must be 'warn', 'error' or 'count', got {mode!r}")
        self.mode = mode
        self.events: list[SyncEvent] = []
        self._lock = threading.Lock()

    @property
    def count(self) -> int:
        return len(self.events)

    def sync(self, data, what):
        ev = SyncEvent(what, tuple(data.shape), user_location(3))
        with self._lock:
            self.events.append(ev)
        if self.mode == "error":
            raise SyncError(ev.message())
        if self.mode == "warn":
            warnings.warn(ev.message(), RuntimeWarning, stacklevel=4)

    def __enter__(self):
        D.add_hook(self)
        return self

    def __exit__(self, *exc):
        D.remove_hook(self)
        return False
