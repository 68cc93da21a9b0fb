"""torch._C: tensorlib has no torch._C (its own C parts, tensorlib._crecorded, are not one). This namespace
answers what programs reach through torch._C that tensorlib has: `torch._C._profiler._ExperimentalConfig`,
declared by the profiler package (`_C._profiler`, see tensorlib._import_declared), as tensorlib itself names no
profiler."""


def __getattr__(name: str):
    import sys
    return sys.modules["tensorlib"]._import_declared(__name__, name)     # (no import edge up to the package)
