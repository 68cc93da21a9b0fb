"""nn.utils as torch's: gradient clipping, parameter <-> vector conversion, pruning (nn.utils.prune), packed
sequences (nn.utils.rnn), functional_call (nn.utils.stateless), parametrizations (nn.utils.parametrize,
nn.utils.parametrizations) and the hook-based weight_norm / spectral_norm, the conv/linear + batch norm fusions,
skip_init and the convolution weights' memory format."""
from . import clip_grad, parametrizations, parametrize, prune, rnn, stateless
from .clip_grad import clip_grad_norm, clip_grad_norm_, clip_grad_value_, clip_grads_with_norm_, get_total_norm
from .convert_parameters import parameters_to_vector, vector_to_parameters
from .fusion import fuse_conv_bn_eval, fuse_conv_bn_weights, fuse_linear_bn_eval, fuse_linear_bn_weights
from .init import skip_init
from .memory_format import convert_conv2d_weight_memory_format, convert_conv3d_weight_memory_format
from .spectral_norm import remove_spectral_norm, spectral_norm
from .weight_norm import remove_weight_norm, weight_norm
