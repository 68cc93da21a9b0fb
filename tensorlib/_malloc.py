"""glibc's malloc told to keep freed large blocks for reuse, so that NumPy's large temporaries do not page-fault.

Why: every NumPy result and temporary is a fresh malloc. With glibc's defaults a block past the mmap threshold (128
KiB, raised as blocks are freed, to 32 MiB at most) gets new pages from the kernel, and the heap's free top is
handed back past the trim threshold, so a training step that makes the same large temporaries every step takes page
faults for them every step: the kernel zeroes each 4 KiB page on first touch. Measured on this project's machine
(glibc 2.36, 1 thread): the VAE program (tests/programs, Linear 784-400-20, Adam, 8 steps) took ~1000 faults a step
and a best step of 5.6-6.2 ms, against ~0 and 4.2-4.5 ms with the thresholds below (torch's step: 0 faults); in
benchmarks/programs.py (the commit before, then this, twice) its step went 6.1-6.5 -> 4.6-4.8 ms and MNIST's CNN's
24.1-24.5 -> 18.8 ms; a conv net's step (b64 32x32, 3-32-64) 2260-2720 faults and 122 ms against 0.3 and 113-115
ms; NumPy alone, a loop of 1.25 and 12.5 MB temporaries, 1595 faults and 7.9-8.7 ms an iteration against 0 and
2.9-3.1 ms. How many faults glibc's defaults give moves with the order of a program's allocations (the VAE with a
larger dataset: 150 a step); torch's CPU steps make fewer and fused temporaries.

What: at `import tensorlib`, on Linux with glibc, `mallopt(M_MMAP_THRESHOLD, 32 MiB)` and
`mallopt(M_TRIM_THRESHOLD, 64 MiB)`: the values glibc's own dynamic rule reaches at most (after a 32 MiB block is
freed), fixed from the start. Blocks up to 32 MiB come from the heap and are reused once freed; at most 64 MiB
of free heap top stays mapped; larger blocks are mapped and unmapped as before. The cost: a process keeps up to
that much memory it freed, as a caching allocator (torch's CUDA one, jemalloc's) does. Peaks measured: the
VAE's, MNIST's and the conv net's max RSS unchanged (82, 105, 319 MB); an adversarial loop of random 1-100 MB
blocks, five live, 467 MB against glibc's defaults' 484 (128 MiB thresholds would give 572: fragmentation).

Left alone where the user chose: `TENSORLIB_MALLOC=default` keeps glibc's defaults, and so does any of glibc's
own settings in the environment (`MALLOC_MMAP_THRESHOLD_`, `MALLOC_TRIM_THRESHOLD_`, `GLIBC_TUNABLES` naming
`glibc.malloc`) or another allocator preloaded (`LD_PRELOAD` of jemalloc or tcmalloc).
"""
from __future__ import annotations

import os
import sys

MMAP_THRESHOLD = 32 << 20
TRIM_THRESHOLD = 64 << 20
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3      # glibc's mallopt parameter numbers (malloc.h)

# what `tune` did: (mmap threshold, trim threshold) once set, else the reason it left malloc alone
state: object = None


def _reason_to_leave():
    env = os.environ
    if env.get("TENSORLIB_MALLOC", "").lower() == "default":
        return "TENSORLIB_MALLOC=default"
    if not sys.platform.startswith("linux"):
        return "not Linux"
    for name in ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_"):
        if name in env:
            return f"{name} is set"
    if "glibc.malloc" in env.get("GLIBC_TUNABLES", ""):
        return "GLIBC_TUNABLES sets glibc.malloc"
    preload = env.get("LD_PRELOAD", "")
    if "jemalloc" in preload or "tcmalloc" in preload or "mimalloc" in preload:
        return "another allocator is preloaded"
    import platform
    if platform.libc_ver()[0] != "glibc":
        return "not glibc"
    return None


def tune():
    """Set the thresholds (once per process); returns `state`."""
    global state
    if state is not None:
        return state
    reason = _reason_to_leave()
    if reason is None:
        import ctypes
        try:
            mallopt = ctypes.CDLL(None).mallopt
        except (OSError, AttributeError):
            reason = "mallopt not found"
        else:
            mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
            mallopt.restype = ctypes.c_int
            if mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD) != 1 or mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD) != 1:
                reason = "mallopt refused the thresholds"
            else:
                state = (MMAP_THRESHOLD, TRIM_THRESHOLD)
                return state
    state = reason
    return state
