"""Every op, by family. Importing this package registers the ops (tensorlib/ops/_define.py says how one is
declared) and then, once, attaches the Tensor methods and exports the public functions declared with them.

The families import each other downward only, in the order below: a backward formula uses the ops of its
own family and of the families above it in this list. The ops of the layers above (nn_ops, conv_ops,
pool_ops, norm_ops for tensorlib.nn; optim_ops for tensorlib.optim) are declared the same way when those
layers import them; what they declare is attached then."""
from . import broadcast, comparison, unary_math, arithmetic, activation  # noqa: F401 - registers the ops
from . import creation, misc, shape, reduce, index, linalg, factorize, sorting, sampling, more_ops  # noqa: F401
from . import extra_methods, more_methods  # noqa: F401 - Tensor methods composed of the ops above
from . import namespace  # noqa: F401 - torch's namespace helpers (broadcast_shapes, windows, trapezoid, ...)
from . import meta_methods  # noqa: F401 - squeeze_/t_/transpose_, sum_to_size, storage_offset, resize_, apply_
from . import complex_ops  # noqa: F401 - conj, real/imag, view_as_real/view_as_complex, complex, polar, angle
from . import fft_ops  # noqa: F401 - _fft_r2c/_fft_c2r/_fft_c2c (torch.fft's ops: tensorlib/fft.py), stft, istft
from . import special_math  # noqa: F401 - lgamma, digamma, ..., torch.special's ops (their in-place forms compose)
from . import shared_memory  # noqa: F401 - Tensor.share_memory_ / is_shared
from . import record_stream  # noqa: F401 - Tensor.record_stream (CUDA memory held for other streams)
from . import sparse  # noqa: F401 - sparse COO tensors: their ops, and the sparse kernels of mm, add, sum, to ...
from ._define import attach

extra_methods.declare_torch_functions()     # torch's functions of methods declared above (torch.quantile, ...)

_functions = attach()
globals().update(_functions)
__all__ = sorted(_functions)

# torch.ops.<namespace>: the profiler's operators (not among the public functions above)
from .profiler_ns import profiler  # noqa: E402,F401
