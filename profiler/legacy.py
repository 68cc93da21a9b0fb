"""torch.autograd.profiler (``tensorlib.autograd.profiler``): the legacy ``profile(enabled=True, *, use_cuda, ...)``
over the same recorder as torch.profiler's, with its ``record_function``, ``emit_nvtx``, ``EventList`` and
``FunctionEvent``. Code written against the legacy API (``with torch.autograd.profiler.profile(enabled=args.prof,
use_cuda=True) as prof``) runs unchanged."""
from __future__ import annotations

from tensorlib.autograd import DeviceType

from .aggregate import EventList
from .function_event import FunctionEvent
from .nvtx import emit_nvtx
from .profile import profile as _profile
from .profile import record_function
from .schedule import ProfilerActivity

__all__ = ["profile", "record_function", "emit_nvtx", "EventList", "FunctionEvent", "DeviceType",
           "ProfilerActivity"]


class profile(_profile):
    """torch.autograd.profiler.profile. ``enabled=False`` records nothing (the results then raise, as torch's);
    ``use_cuda=True`` / ``use_device="cuda"`` add the CUDA activity. ``use_kineto`` picks torch's recording backend:
    tensorlib has one, so either value records the same events."""

    def __init__(self, enabled=True, *, use_cuda=False, use_device=None, record_shapes=False, with_flops=False,
                 profile_memory=False, with_stack=False, with_modules=False, use_kineto=False, use_cpu=True,
                 experimental_config=None, acc_events=False, custom_trace_id_callback=None):
        if use_device not in (None, "cpu", "cuda"):
            raise ValueError(f"use_device must be None, 'cpu' or 'cuda' (tensorlib's devices), got {use_device!r:.40}")
        if not use_cpu:
            raise ValueError("use_cpu=False (device activity only) is not supported: tensorlib's profiler records "
                             "the CPU ops and times each op's GPU work from them")
        if custom_trace_id_callback is not None:
            raise ValueError("custom_trace_id_callback is not supported: traces get a random trace_id")
        acts = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if use_cuda or use_device == "cuda" else [])
        super().__init__(activities=acts, record_shapes=record_shapes, profile_memory=profile_memory,
                         with_stack=with_stack, with_flops=with_flops, with_modules=with_modules,
                         acc_events=acc_events, experimental_config=experimental_config)
        self.enabled = bool(enabled)

    def start(self):
        if self.enabled:
            super().start()

    def _require_store(self):
        if not self.enabled:
            raise RuntimeError("Profiler didn't finish running")     # torch's words for enabled=False
        return super()._require_store()

    def _unfinished(self) -> bool:
        """torch's legacy profile has its events only once it has exited (or stopped)."""
        return not self.enabled or self._recorder is not None or (not self._snapshots and self._store is None)

    def __str__(self):
        """The events' table, as torch's ``print(prof)`` (its EventList's str)."""
        return "<unfinished torch.autograd.profile>" if self._unfinished() else str(self.events())

    def __repr__(self):
        return "<unfinished torch.autograd.profile>" if self._unfinished() else repr(self.events())

    @property
    def function_events(self):
        """torch's legacy attribute: every recorded event (prof.events())."""
        return self.events()

    @property
    def self_cpu_time_total(self):
        return self.events().self_cpu_time_total
