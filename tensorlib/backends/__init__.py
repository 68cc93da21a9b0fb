"""torch.backends-style switches: `tensorlib.backends.cudnn` selects convolution algorithms on CUDA."""
from . import cudnn
