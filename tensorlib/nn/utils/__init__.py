"""nn.utils: gradient clipping, parameter <-> vector conversion, pruning (nn.utils.prune), packed sequences
(nn.utils.rnn)."""
from . import clip_grad, prune, rnn
from .clip_grad import clip_grad_norm_, clip_grad_value_, get_total_norm
from .convert_parameters import parameters_to_vector, vector_to_parameters
