"""cupy.cuda.memory_hook (fake): CuPy's MemoryHook base; hooks are per thread, keyed by name."""
from __future__ import annotations

import threading

_tls = threading.local()


def get_memory_hooks():
    h = getattr(_tls, "hooks", None)
    if h is None:
        h = _tls.hooks = {}
    return h


class MemoryHook:
    """Base class of memory hooks (as CuPy's): `with hook:` installs it on this thread. The pool
    calls alloc_*/malloc_*/free_* with keyword arguments only."""

    name = "MemoryHook"

    def __enter__(self):
        hooks = get_memory_hooks()
        if self.name in hooks:
            raise KeyError(f"memory hook {self.name} already exists")      # CuPy's error
        hooks[self.name] = self
        return self

    def __exit__(self, *_):
        del get_memory_hooks()[self.name]

    def alloc_preprocess(self, **kwargs):
        pass

    def alloc_postprocess(self, **kwargs):
        pass

    def malloc_preprocess(self, **kwargs):
        pass

    def malloc_postprocess(self, **kwargs):
        pass

    def free_preprocess(self, **kwargs):
        pass

    def free_postprocess(self, **kwargs):
        pass
