"""tensorlib.nn: torch.nn's modules, functional, init and utils on tensorlib's dispatched ops.

Every module's forward is a named profiler region (kind "module"); see modules/module.py for names."""
from . import functional, init, utils  # noqa: F401
from .modules import *  # noqa: F401,F403
from .modules import Module  # noqa: F401
from .parameter import Buffer, Parameter  # noqa: F401
from . import parallel  # noqa: F401,E402
from .parallel import DataParallel  # noqa: F401,E402
