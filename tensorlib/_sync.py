"""Host-device synchronisation points (item, tolist, numpy/cpu, bool, print) reported to listeners.

The listener list is empty unless a debugging instrument (profiler.debug.sync_watch) is on, so the
check costs one truthiness test. Only CUDA tensors synchronise; CPU ones are not reported."""
from __future__ import annotations

import numpy as np

listeners: list = []


def note_sync(tensor, what: str):
    if listeners and type(tensor._data) is not np.ndarray:
        for fn in list(listeners):
            fn(tensor, what)
