"""`import tensorlib` tells glibc's malloc to keep freed large blocks (tensorlib/_malloc.py), so that a loop
making the same large NumPy temporaries stops taking page faults for them; a user's own choice is left alone.
Page faults are counted, not timed: the counts are the kernel's and the same on every run."""
from __future__ import annotations

import os
import platform
import subprocess
import sys

import pytest

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux") or platform.libc_ver()[0] != "glibc",
                                reason="tunes glibc's malloc only (this is not Linux with glibc)")

# faults per iteration of a loop of 1.25 MB and 12.5 MB temporaries, after tensorlib's import; state printed first
_LOOP = """
import resource, numpy as np
import tensorlib, tensorlib._malloc as m
print(m.state)
a = np.ones((400, 784), np.float32); b = np.ones((400, 784), np.float32); c = np.ones((4000, 784), np.float32)
def f():
    d = b - a; d *= 0.1; a.__iadd__(d)
    e = np.sqrt(a); e /= 3.0
    y = c * 2.0 + 1.0
for _ in range(5): f()
r0 = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(50): f()
print((resource.getrusage(resource.RUSAGE_SELF).ru_minflt - r0) / 50)
"""


def _run(**env_extra):
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("MALLOC_") and k not in ("TENSORLIB_MALLOC", "GLIBC_TUNABLES", "LD_PRELOAD")}
    env.update(env_extra)
    out = subprocess.run([sys.executable, "-c", _LOOP], capture_output=True, text=True, env=env, check=True)
    state, faults = out.stdout.split("\n")[:2]
    return state, float(faults)


def test_large_temporaries_stop_faulting_once_tensorlib_is_imported():
    state, faults = _run()
    assert state == f"({32 << 20}, {64 << 20})"
    assert faults < 10          # (measured: 0; the temporaries' pages are the heap's, reused every iteration)
    state, faults = _run(TENSORLIB_MALLOC="default")
    assert state == "TENSORLIB_MALLOC=default"
    assert faults > 500         # glibc's defaults: the 12.5 MB one is new pages every time (measured ~1600)


@pytest.mark.parametrize("name, value, reason", [
    ("MALLOC_MMAP_THRESHOLD_", "1048576", "MALLOC_MMAP_THRESHOLD_ is set"),
    ("MALLOC_TRIM_THRESHOLD_", "1048576", "MALLOC_TRIM_THRESHOLD_ is set"),
    ("GLIBC_TUNABLES", "glibc.malloc.trim_threshold=1048576", "GLIBC_TUNABLES sets glibc.malloc"),
])
def test_a_users_own_malloc_settings_are_left_alone(name, value, reason):
    state, _ = _run(**{name: value})
    assert state == reason
