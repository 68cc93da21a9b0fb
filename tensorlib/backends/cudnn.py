"""Convolution algorithm selection on CUDA, driven by torch's flags.

tensorlib's CUDA convolutions have more than one algorithm per step (`tensorlib.ops.conv_ops`):
cuDNN through CuPy (`cupyx.cudnn`; `cupy.cudnn` is its deprecated alias) where the installed CuPy has it
(CuPy 13 with cuDNN 8's libcudnn.so.8, which no CuPy wheel brings; CuPy 14 dropped its cuDNN bindings),
and CuPy code everywhere: im2col + one GEMM or a sum of per-tap GEMMs for the
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
- `allow_tf32 = True` (torch's default): the float32 GEMMs of CUDA convolutions may use TF32 (CuPy's
  compute type, switched around each convolution by `backends.cuda.conv_math`); cuDNN's own calls
  follow its default math, which allows TF32 on Ampere and later whatever the flag.

On the CPU every algorithm is deterministic and the defaults are used. `why_unavailable()` says why
cuDNN is off; where CuPy has cuDNN bindings that fail to load, the first CUDA convolution warns once.
"""
from __future__ import annotations

import time
import warnings

from . import cuda as _cuda
from .. import _state

benchmark = False
deterministic = False
enabled = True
allow_tf32 = True       # torch's default: CUDA convolutions may use TF32 (see backends.cuda)

_chosen: dict = {}      # key -> algorithm name (benchmark results)
timings: dict = {}      # key -> {algorithm: seconds}, what benchmark measured (for inspection)


def is_available() -> bool:
    """torch's: whether cuDNN can be used, i.e. CUDA is available and the installed CuPy has cuDNN. The
    flags act on the CuPy algorithms either way."""
    from .. import cuda
    return cuda.is_available() and _lookup() is not None


_cupy_cudnn = False     # not looked up yet; then CuPy's cuDNN module or None
_why_off: str | None = None


def cupy_cudnn():
    """CuPy's cuDNN convolutions (`cupyx.cudnn`) while `enabled`, else None: absent from CuPy 14, and
    importable from CuPy 13 only where cuDNN 8 itself is installed."""
    m = _lookup() if enabled else None
    if m is not None and not allow_tf32:
        _warn_tf32()
    return m


_tf32_warned = False


def _warn_tf32():
    global _tf32_warned
    if not _tf32_warned:
        _tf32_warned = True
        warnings.warn("tensorlib.backends.cudnn.allow_tf32 = False: CuPy's cuDNN calls cannot be kept from TF32 "
                      "(they use cuDNN's default math); set tensorlib.backends.cudnn.enabled = False for IEEE "
                      "float32 convolutions", RuntimeWarning, stacklevel=4)


def why_unavailable() -> str | None:
    """Why cuDNN is not used (None when it is available): no CUDA, a CuPy without cuDNN bindings, or
    bindings whose library does not load (with the import error). Not in torch, which links cuDNN."""
    from .. import cuda
    if not cuda.is_available():
        return "CUDA is not available"
    _lookup()
    return _why_off


def _lookup():
    global _cupy_cudnn, _why_off
    if _cupy_cudnn is False:
        m, _why_off = _import_cudnn()
        _cupy_cudnn = m
        if _why_off is not None and not _why_off.startswith("the installed CuPy"):
            warnings.warn(f"tensorlib.backends.cudnn: cuDNN is off, CuPy's convolutions run instead: {_why_off}",
                          RuntimeWarning, stacklevel=4)
    return _cupy_cudnn


def _import_cudnn():
    """(cupyx.cudnn, None), or (None, the reason it cannot be used)."""
    try:
        import cupyx.cudnn as m  # lazy by design; raises where there is no cuDNN
        for name in ("convolution_forward", "convolution_backward_data", "convolution_backward_filter"):
            getattr(m, name)
    except ModuleNotFoundError as e:
        if e.name != "cupyx.cudnn":
            return None, f"cupyx.cudnn did not import: {e}"
        import cupy
        return None, (f"the installed CuPy ({cupy.__version__}) has no cuDNN bindings (CuPy 14 removed them; "
                      f"CuPy 13 with cuDNN 8 has them)")
    except Exception as e:   # noqa: BLE001 - ImportError for libcudnn.so.8, AttributeError, a CUDA error
        return None, (f"cupyx.cudnn did not load ({type(e).__name__}: {e}); CuPy 13's cuDNN path needs cuDNN 8 "
                      f"(pip install 'nvidia-cudnn-cu12<9')")
    return m, None


def version():
    """cuDNN's version number (e.g. 90100) where CuPy has cuDNN, else None (torch: None without cuDNN)."""
    if cupy_cudnn() is None:
        return None
    try:
        from cupy.cuda import cudnn as lib
        return int(lib.getVersion())
    except Exception:   # noqa: BLE001
        return None


def allowed(algos, nondeterministic=()):
    """Algorithm names that the flags allow, in preference order (torch.use_deterministic_algorithms(True)
    restricts them as `deterministic` does)."""
    if deterministic or _state.GLOBAL.deterministic:
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
    if sync is None:
        return algos[default if default in names else names[0]]()
    with _cuda.conv_math(allow_tf32):
        return _pick_cuda(key, algos, names, default, sync, warm)


def _pick_cuda(key, algos, names, default, sync, warm):
    if not enabled:
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
    global _cupy_cudnn, _why_off
    _chosen.clear()
    timings.clear()
    _cupy_cudnn, _why_off = False, None
