"""Convolution algorithm selection on CUDA, driven by torch's flags.

tensorlib has no cuDNN: its CUDA convolutions are CuPy code with more than one algorithm per step
(`tensorlib.ops.conv_ops`): im2col + one GEMM or a sum of per-tap GEMMs for the forward pass; a
sliced col2im (a fixed order of additions) or an atomic scatter-add for the input gradient. The flags
act on that choice, as cuDNN's do on its own:

- `benchmark = True`: the first time a (step, shapes, dtype, parameters) key is seen on a CUDA device,
  every allowed algorithm is run and timed (synchronised) and the fastest is remembered for the key.
- `deterministic = True`: only algorithms whose result is bitwise reproducible run (the atomic
  scatter-add is excluded: the order of float atomics on a GPU varies from run to run).
- `enabled = False`: the defaults are used and nothing is benchmarked.

On the CPU every algorithm is deterministic and the defaults are used.
"""
from __future__ import annotations

import time

benchmark = False
deterministic = False
enabled = True

_chosen: dict = {}      # key -> algorithm name (benchmark results)
timings: dict = {}      # key -> {algorithm: seconds}, what benchmark measured (for inspection)


def is_available() -> bool:
    """True where the CUDA convolution algorithms can run (a GPU with CuPy)."""
    from .. import cuda
    return cuda.is_available()


def version():
    return None


def allowed(algos, nondeterministic=()):
    """Algorithm names that the flags allow, in preference order."""
    if deterministic:
        names = [a for a in algos if a not in nondeterministic]
        if not names:
            raise RuntimeError("no deterministic algorithm is available for this convolution step; set "
                               "tensorlib.backends.cudnn.deterministic = False")
        return names
    return list(algos)


def pick(key, algos, *, nondeterministic=(), default, sync=None):
    """Run the step with the algorithm the flags choose; returns its result.

    algos: {name: zero-argument function computing the step}. sync: a function that waits for the device
    (CUDA); None on the CPU, where the default algorithm runs. With benchmark on, a key seen for the
    first time runs every allowed algorithm, timed, and keeps the fastest's result."""
    names = allowed(algos, nondeterministic)
    if sync is None or not enabled:
        return algos[default if default in names else names[0]]()
    full_key = (key, deterministic)
    if benchmark:
        name = _chosen.get(full_key)
        if name is None:
            best, result, times = None, None, {}
            for n in names:
                sync()
                t0 = time.perf_counter()
                r = algos[n]()
                sync()
                times[n] = time.perf_counter() - t0
                if best is None or times[n] < times[best]:
                    best, result = n, r
            _chosen[full_key] = best
            timings[full_key] = times
            return result
        return algos[name]()
    return algos[default if default in names else names[0]]()


def clear_cache():
    _chosen.clear()
    timings.clear()
