"""tensorlib's profiler: torch.profiler's API (profile, record_function, schedule, ProfilerActivity,
tensorboard_trace_handler) over tensorlib's dispatcher hooks, with honest self times, Chrome traces,
folded stacks, memory and GPU time per op. See README "## profiler"."""
from . import debug, nvtx
from .budget import op_budget
from .nvtx import emit_nvtx
from ._experimental import _ExperimentalConfig  # noqa: F401 - torch.profiler._ExperimentalConfig
from .profile import profile, record_function, supported_activities
from .schedule import ProfilerAction, ProfilerActivity, schedule, tensorboard_trace_handler, trace_handler

# emit_nvtx is torch.autograd.profiler.emit_nvtx, which sits beside profile and record_function there;
# this package is torch.autograd.profiler's API as well as torch.profiler's
# debug and nvtx: `import profiler` then profiler.debug.nan_watch(...), profiler.nvtx.emit_nvtx(...)
# op_budget: the pytest plugin's budget as a context manager, scoped to a block (profiler/budget.py)
__all__ = ["profile", "record_function", "emit_nvtx", "schedule", "ProfilerActivity", "ProfilerAction",
           "trace_handler", "tensorboard_trace_handler", "op_budget", "supported_activities"]
