"""tensorlib.nn: torch.nn's modules, functional, init and utils on tensorlib's dispatched ops.

Every module's forward is a named profiler region (kind "module"); see modules/module.py for names."""
from . import functional, init, utils
from .modules import *  # noqa: F403
from .modules import Module
from .parameter import Buffer, Parameter, UninitializedBuffer, UninitializedParameter
from . import parallel
from . import _torch_functions  # noqa: F401 - torch.conv2d, torch.layer_norm, ... (torch's top-level forms)
from .parallel import DataParallel
