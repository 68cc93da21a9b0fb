"""Host-device synchronisation points reported to hooks (`Hook.sync`): the tensor's own (item, tolist, numpy/cpu,
bool, print) and those inside ops, where a value or a size must come back from the GPU (a boolean-mask
index or assignment, nonzero, unique, bincount, one_hot's range check, masked_scatter). One note per
synchronisation CuPy makes, so a count is the real one (tests/fakecupy models CuPy's and checks it).

No hook observes syncs unless a debugging instrument (profiler.debug.sync_watch) is on, so the check
costs one truthiness test. Only CUDA tensors synchronise; CPU ones are not reported. Hooks are called
directly from here (not through a helper), so a hook's stack walk finds the user's line at a fixed depth."""
from __future__ import annotations

import numpy as np

from . import _hooks


def note_sync(tensor, what: str):
    """A synchronisation the tensor itself forces (item, tolist, cpu, bool, print)."""
    hs = _hooks.sync_hooks
    if hs and type(tensor._data) is not np.ndarray:
        for h in hs:
            h.sync(tensor, what)


def note(arr, what: str):
    """A synchronisation inside an op on array `arr` (CuPy waits for the GPU to learn a size or a value)."""
    hs = _hooks.sync_hooks
    if hs and type(arr) is not np.ndarray:
        for h in hs:
            h.sync(arr, what)


def note_index(arr, idx, what: str):
    """The synchronisations of indexing (or assigning into) `arr` with the tuple `idx`: CuPy reads the count
    of True back for each non-empty boolean mask (`_prepare_mask_indexing_single`), to size the result or
    the values."""
    if _hooks.sync_hooks and type(arr) is not np.ndarray:
        for i in idx:
            if type(i) is bool or (getattr(i, "dtype", None) == np.bool_ and i.size):
                note(arr, what)


def to_host(arr, what: str):
    """`arr` as a NumPy array: for a device array one device-to-host copy, a synchronisation noted as `what`."""
    if isinstance(arr, (np.ndarray, np.generic)):     # NumPy's reductions give scalars
        return arr
    note(arr, what)
    return arr.get()
