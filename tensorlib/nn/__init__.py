"""tensorlib.nn: torch.nn's modules, functional, init and utils on tensorlib's dispatched ops.

Every module's forward is a named profiler region (kind "module"); see modules/module.py for names."""
from . import functional, init, utils
from .modules import *  # noqa: F403
from .modules import Module
from .parameter import Buffer, Parameter
from . import parallel
from .parallel import DataParallel
