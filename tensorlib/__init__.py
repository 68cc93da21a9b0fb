"""tensorlib: PyTorch's tensor API on NumPy (CPU) and CuPy (CUDA), every op through one dispatcher."""
from __future__ import annotations

import builtins as _builtins

from . import _malloc
from . import _dtype
from ._device import device, get_default_device, set_default_device
from ._memory_format import (channels_last, channels_last_3d, contiguous_format, memory_format,  # noqa: F401
                             preserve_format)
from ._dtype import (bfloat16, bool_ as bool, complex64, complex128, dtype, float16, float32, float64,
                     get_default_dtype, int8, int16, int32, int64, promote_types, set_default_dtype, uint8)
from ._tensor import Size, Tensor
from ._sparse import layout, sparse_coo, strided  # noqa: F401 - torch.layout and its two values here
from ._dtype import finfo, iinfo
from . import ops as _ops  # registers every op, attaches Tensor methods
from .ops import *  # noqa: F403
from . import autograd, cuda, dispatch, random
from .autograd import (enable_grad, inference_mode, is_grad_enabled, no_grad, set_grad_enabled)
from .autograd.grad_mode import is_inference_mode_enabled
from .autograd.anomaly import (detect_anomaly, is_anomaly_check_nan_enabled, is_anomaly_enabled,  # noqa: F401
                               set_anomaly_enabled, set_detect_anomaly)
from .random import Generator, initial_seed, manual_seed, seed, get_rng_state, set_rng_state
from . import amp
from . import accelerator, distributed, xpu
from ._threads import get_num_interop_threads, get_num_threads, set_num_interop_threads, set_num_threads
from ._repr import get_printoptions, set_printoptions
from ._settings import (are_deterministic_algorithms_enabled, get_deterministic_debug_mode,  # noqa: F401
                        is_deterministic_algorithms_warn_only_enabled, is_warn_always_enabled,
                        set_deterministic_debug_mode, set_flush_denormal, set_warn_always, typename,
                        use_deterministic_algorithms)
from .amp import autocast
from .amp.autocast_mode import (get_autocast_cpu_dtype, get_autocast_dtype, get_autocast_gpu_dtype,  # noqa: F401
                                is_autocast_cpu_enabled, is_autocast_enabled, set_autocast_cpu_dtype,
                                set_autocast_cpu_enabled, set_autocast_dtype, set_autocast_enabled,
                                set_autocast_gpu_dtype)

float = float32  # torch's aliases
double = float64
half = float16
cfloat = complex64
cdouble = complex128
long = int64
int = int32
short = int16
uint8 = uint8
bool_ = bool
from math import e, inf, nan, pi  # noqa: E402 - torch's constants (torch/__init__.py imports them from math)
newaxis: None = None              # torch.newaxis, as numpy's

from .version import __version__  # noqa: E402,F401  (torch.version.__version__ is torch.__version__)


def is_tensor(obj) -> _builtins.bool:     # `bool` and `int` here are tensorlib's dtypes
    return isinstance(obj, Tensor)


def numel(input) -> _builtins.int:
    return input.numel()


def is_floating_point(input) -> _builtins.bool:
    return input.is_floating_point()


def is_complex(input) -> _builtins.bool:
    return input.is_complex()


def _quiet_numpy_floating_warnings():
    # torch computes log(0) = -inf and sqrt(-1) = nan silently; NumPy warns. Filter those warnings only where
    # tensorlib's kernels raise them (users' own NumPy code keeps its settings); nan_watch finds such values.
    import warnings
    warnings.filterwarnings("ignore", category=RuntimeWarning, module=r"tensorlib\.",
                            message=r"(invalid value|divide by zero|overflow) encountered")


_quiet_numpy_floating_warnings()
_malloc.tune()      # glibc keeps NumPy's large freed temporaries for reuse (see tensorlib/_malloc.py)


def _enable_env():
    """Packages that act on tensorlib from the environment (the profiler's TENSORLIB_NVTX=1 registers its
    NVTX hook) declare a `tensorlib.startup` entry point; tensorlib names none of them, so the layers stay
    one-way. Looked up only when a TENSORLIB_ variable is set: a plain import pays nothing."""
    import os
    if not [k for k in os.environ if k.startswith("TENSORLIB_")]:     # (tensorlib.any shadows the builtin here)
        return
    from importlib.metadata import entry_points
    for ep in entry_points(group="tensorlib.startup"):
        ep.load()()


from .ops.optim_ops import addcdiv, addcmul, lerp  # noqa: E402 - the training stack (optim, data, save/load)
from . import optim  # noqa: E402
from . import utils  # noqa: E402
from .serialization import load, save  # noqa: E402
from .memory import (max_memory_allocated, max_memory_reserved, memory_allocated, memory_reserved,  # noqa: E402
                     memory_stats, reset_peak_memory_stats)
from . import nn  # noqa: E402
from . import func  # noqa: E402 - torch.func.functional_call
from . import backends  # noqa: E402
from . import jit, onnx  # noqa: E402 - torch.jit.trace, torch.onnx.export (issue 19)
from ._compile import compile  # noqa: E402
from . import ao, nested, quantization  # noqa: E402 - torch.quantization.quantize_dynamic; nested: refused
from .ops.creation import legacy_types as _legacy_types  # noqa: E402
globals().update(_legacy_types(False))       # torch.FloatTensor, torch.LongTensor... (legacy constructors)
cuda.__dict__.update(_legacy_types(True))    # torch.cuda.FloatTensor...
from .quantization import qint8, quint8  # noqa: E402
from .backends.cuda import get_float32_matmul_precision, set_float32_matmul_precision  # noqa: E402,F401

_submodules: dict | None = None


def _declared_submodules() -> dict:
    """{dotted name under tensorlib: entry point} of the packages that declare a `tensorlib.submodules`
    entry point (the profiler declares `profiler` and `autograd.profiler`); read once, on first use."""
    global _submodules
    if _submodules is None:
        from importlib.metadata import entry_points
        _submodules = {ep.name: ep for ep in entry_points(group="tensorlib.submodules")}
    return _submodules


class _DeclaredSubmodules:
    """Import hook for `tensorlib.profiler` (`from torch.profiler import profile` after `import tensorlib as
    torch`): a declared name, and every module below it (`tensorlib.profiler.debug`), is the declaring
    package's own module filed under tensorlib's name as well (one module, two names: no second copy), so
    `import tensorlib` loads no profiler and tensorlib names none (the profiler declares itself)."""

    @staticmethod
    def find_spec(fullname, path=None, target=None):
        if not fullname.startswith("tensorlib."):
            return None
        rel = fullname[len("tensorlib."):]
        import os
        own = os.path.join(os.path.dirname(__file__), *rel.split("."))
        if os.path.isdir(own) or os.path.isfile(own + ".py"):     # tensorlib's own module: the path finder's
            return None
        for name, ep in _declared_submodules().items():
            if rel == name or rel.startswith(name + "."):
                from importlib.util import spec_from_loader
                real = ep.value + rel[len(name):]
                loader = _DeclaredSubmodules._Loader(real)
                return spec_from_loader(fullname, loader, is_package=hasattr(loader.module(), "__path__"))
        return None

    class _Loader:
        def __init__(self, real):
            self.real = real

        def module(self):
            import importlib
            return importlib.import_module(self.real)

        def create_module(self, spec):
            return self.module()

        def exec_module(self, module):
            pass                         # the declaring package's module, already executed


def _import_declared(parent: str, name: str):
    """`tensorlib.profiler` as an attribute (as `torch.profiler` after `import torch`)."""
    import importlib
    key = f"{parent[len('tensorlib.'):]}.{name}" if parent != "tensorlib" else name
    if key not in _declared_submodules():
        raise AttributeError(f"module '{parent}' has no attribute '{name}'")
    return importlib.import_module(f"{parent}.{name}")


# tensorlib's own submodules that `import tensorlib` does not load, imported on first use as attributes (as
# `torch.testing` after `import torch`): each is rarely needed, and some import much (multiprocessing; special,
# whose kernels import SciPy; distributions, some forty modules)
_LAZY_SUBMODULES = frozenset({"testing", "version", "multiprocessing", "special", "linalg", "distributions",
                              "hub", "sparse", "fft", "fx", "_C"})


def __getattr__(name: str):
    if name in _LAZY_SUBMODULES:
        import importlib
        return importlib.import_module(f"{__name__}.{name}")
    return _import_declared(__name__, name)


def _install_import_hook():
    import sys
    if _DeclaredSubmodules not in sys.meta_path:      # first: before the path finder copies profiler.debug
        sys.meta_path.insert(0, _DeclaredSubmodules)


_install_import_hook()
del annotations     # (the __future__ import's name: not a tensorlib attribute, as torch has none)
_enable_env()   # last: the NVTX hook may import any part of tensorlib
