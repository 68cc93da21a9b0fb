"""The shape every dispatcher-hook instrument shares: a context manager that registers its hook."""
from __future__ import annotations

from tensorlib import dispatch as D


class HookContext:
    """`with instrument() as w:` registers `self.hook` for the block; `w.findings` is what it saw."""

    hook: D.Hook

    @property
    def findings(self):
        return self.hook.findings

    def __enter__(self):
        D.add_hook(self.hook)
        return self

    def __exit__(self, exc_type, exc, tb):
        D.remove_hook(self.hook)
        return False


class BackwardCallbacks(D.Hook):
    """A hook that calls `begin()` / `end()` (no arguments) at each backward pass's begin and end
    (`Hook.backward_begin` / `Hook.backward_end`); only the given ones are observed."""

    def __init__(self, *, begin=None, end=None):
        if begin is not None:
            self.backward_begin = begin
        if end is not None:
            self.backward_end = end
