"""Convolution algorithm selection on CUDA, driven by torch's flags.

tensorlib's CUDA convolutions have more than one algorithm per step (`tensorlib.ops.conv_ops`):
cuDNN through CuPy (`cupy.cudnn`) where the installed CuPy has it (CuPy 13 with cuDNN; CuPy 14 dropped
its cuDNN bindings), and CuPy code everywhere: im2col + one GEMM or a sum of per-tap GEMMs for the
forward pass, a sliced col2im (a fixed order of additions) or an atomic scatter-add for the input
gradient. cuDNN is the default where present (as in torch). The flags act on the whole choice, and are
passed on to cuDNN for its own algorithms:

- `benchmark = True`: the first time a (step, shapes, dtype, parameters) key is seen on a CUDA device,
  every allowed algorithm is run and timed (synchronised) and the fastest is remembered for the key;
  cuDNN is called with ``auto_tune=True`` (cudnnFind: it times its own algorithms per shape, and caches).
- `deterministic = True`: only algorithms whose result is bitwise reproducible run (the atomic
  scatter-add is excluded: the order of float atomics on a GPU varies from run to run), and cuDNN's
  backward steps are called with ``deterministic=True`` (its reproducible algorithms).
- `enabled = False`: cuDNN is not used; the CuPy defaults run and nothing is benchmarked.

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
    """torch's: whether cuDNN can be used, i.e. CUDA is available and the installed CuPy has cuDNN. The
    flags act on the CuPy algorithms either way."""
    from .. import cuda
    return cuda.is_available() and _lookup() is not None


_cupy_cudnn = False     # not looked up yet; then CuPy's cuDNN module or None


def cupy_cudnn():
    """CuPy's cuDNN convolutions (`cupy.cudnn`) while `enabled`, else None: absent from CuPy 14, and
    importable from CuPy 13 only where cuDNN itself is installed."""
    return _lookup() if enabled else None


def _lookup():
    global _cupy_cudnn
    if _cupy_cudnn is False:
        try:
            import cupy.cudnn as m  # noqa: PLC0415 - lazy by design; raises where there is no cuDNN
            m.convolution_forward   # noqa: B018 - every entry point used must be there
            m.convolution_backward_data  # noqa: B018
            m.convolution_backward_filter  # noqa: B018
        except Exception:   # noqa: BLE001 - ImportError, or a CUDA error loading libcudnn
            m = None
        _cupy_cudnn = m
    return _cupy_cudnn


def version():
    """cuDNN's version number (e.g. 90100) where CuPy has cuDNN, else None (torch: None without cuDNN)."""
    if cupy_cudnn() is None:
        return None
    try:
        from cupy.cuda import cudnn as lib  # noqa: PLC0415
        return int(lib.getVersion())
    except Exception:   # noqa: BLE001
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


def pick(key, algos, *, nondeterministic=(), default, sync=None, warm=()):
    """Run the step with the algorithm the flags choose; returns its result.

    algos: {name: zero-argument function computing the step}. sync: a function that waits for the device
    (CUDA); None on the CPU, where the default algorithm runs. With benchmark on, a key seen for the
    first time runs every allowed algorithm, timed, and keeps the fastest's result; the algorithms in
    `warm` run once untimed first (cuDNN's own search would otherwise be counted as its time)."""
    names = allowed(algos, nondeterministic)
    if sync is None or not enabled:
        return algos[default if default in names else names[0]]()
    full_key = (key, deterministic)
    if benchmark:
        name = _chosen.get(full_key)
        if name is None:
            best, result, times = None, None, {}
            for n in names:
                if n in warm:
                    algos[n]()
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
    """Forget benchmark choices (and look CuPy's cuDNN up again on next use)."""
    global _cupy_cudnn
    _chosen.clear()
    timings.clear()
    _cupy_cudnn = False
