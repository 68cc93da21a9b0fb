"""tensorlib's profiler: torch.profiler's API (profile, record_function, schedule, ProfilerActivity,
tensorboard_trace_handler) over tensorlib's dispatcher hooks, with honest self times, Chrome traces,
folded stacks, memory and GPU time per op. See README "## profiler"."""
from .profile import profile, record_function
from .schedule import ProfilerAction, ProfilerActivity, schedule, tensorboard_trace_handler, trace_handler

__all__ = ["profile", "record_function", "schedule", "ProfilerActivity", "ProfilerAction", "trace_handler",
           "tensorboard_trace_handler"]
