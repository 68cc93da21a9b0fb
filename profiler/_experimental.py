"""torch._C._profiler._ExperimentalConfig (also torch.profiler._ExperimentalConfig): Kineto's experimental options,
passed as ``profile(experimental_config=...)``. tensorlib's profiler honours those that mean something without
Kineto and CUPTI's profiler mode, and refuses the others by name when they are set, rather than accepting a
setting that changes nothing:

- ``verbose``: whether op events carry the ``Call stack`` arg (with_stack). torch writes it only with
  verbose=True; without an experimental_config tensorlib writes it by default (the viewer's memory tab reads it).
- ``profile_all_threads``: tensorlib records every thread that runs ops while the profile records, so either value
  gives that.
- ``adjust_timestamps``: it adjusts Vulkan events' timestamps; there are none, so either value changes nothing.
- ``trace_only``: the events are not built at stop; ``events()`` / ``key_averages()`` raise torch's error and the
  Chrome trace can still be exported.
"""
from __future__ import annotations

# field -> (default, what to say when it is set)
_REFUSED = {
    "profiler_metrics": ([], "CUPTI profiler-mode metrics need Kineto's CUPTI range profiler"),
    "profiler_measure_per_kernel": (False, "it applies to CUPTI profiler-mode metrics"),
    "performance_events": ([], "CPU performance counters (perf events) are not read"),
    "enable_cuda_sync_events": (False, "CUDA synchronization activities come from Kineto's CUPTI callbacks"),
    "adjust_profiler_step": (False, "ProfilerStep ranges already span each step as recorded"),
    "disable_external_correlation": (False, "ops and GPU work are correlated by tensorlib itself"),
    "capture_overload_names": (False, "tensorlib's ops have no ATen overloads"),
    "record_python_gc_info": (False, "Python GC events are not recorded"),
    "expose_kineto_event_metadata": (False, "there is no Kineto event metadata"),
    "custom_profiler_config": ("", "there is no custom profiler backend"),
}
_FIELDS = ("profiler_metrics", "profiler_measure_per_kernel", "verbose", "performance_events",
           "enable_cuda_sync_events", "adjust_profiler_step", "disable_external_correlation", "profile_all_threads",
           "capture_overload_names", "record_python_gc_info", "expose_kineto_event_metadata", "custom_profiler_config",
           "adjust_timestamps", "trace_only")


class _ExperimentalConfig:
    """An experimental config for Kineto features (torch's keyword arguments and defaults)."""

    def __init__(self, profiler_metrics=(), profiler_measure_per_kernel=False, verbose=False, performance_events=(),
                 enable_cuda_sync_events=False, adjust_profiler_step=False, disable_external_correlation=False,
                 profile_all_threads=False, capture_overload_names=False, record_python_gc_info=False,
                 expose_kineto_event_metadata=False, custom_profiler_config="", adjust_timestamps=False,
                 trace_only=False):
        self.profiler_metrics = list(profiler_metrics)
        self.profiler_measure_per_kernel = bool(profiler_measure_per_kernel)
        self.verbose = bool(verbose)
        self.performance_events = list(performance_events)
        self.enable_cuda_sync_events = bool(enable_cuda_sync_events)
        self.adjust_profiler_step = bool(adjust_profiler_step)
        self.disable_external_correlation = bool(disable_external_correlation)
        self.profile_all_threads = bool(profile_all_threads)
        self.capture_overload_names = bool(capture_overload_names)
        self.record_python_gc_info = bool(record_python_gc_info)
        self.expose_kineto_event_metadata = bool(expose_kineto_event_metadata)
        self.custom_profiler_config = str(custom_profiler_config)
        self.adjust_timestamps = bool(adjust_timestamps)
        self.trace_only = bool(trace_only)

    def __repr__(self):
        set_ = [f"{f}={getattr(self, f)!r}" for f in _FIELDS if getattr(self, f) != _default(f)]
        return f"_ExperimentalConfig({', '.join(set_)})"


def _default(field):
    return _REFUSED[field][0] if field in _REFUSED else ("" if field == "custom_profiler_config" else False)


def check_experimental_config(config):
    """The config profile() runs with, checked: None, or an _ExperimentalConfig whose refused fields are unset."""
    if config is None:
        return None
    if not isinstance(config, _ExperimentalConfig):
        raise TypeError(f"experimental_config must be a torch._C._profiler._ExperimentalConfig or None, got "
                        f"{type(config).__name__}")
    for field, (default, why) in _REFUSED.items():
        if getattr(config, field) != default:
            raise ValueError(f"experimental_config.{field} is not supported by tensorlib's profiler ({why}): leave "
                             f"it at its default")
    return config
