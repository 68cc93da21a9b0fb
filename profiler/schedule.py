"""torch.profiler's schedule, ProfilerAction and trace handler (same names, arguments and file names)."""
from __future__ import annotations

import enum
import os
import socket


class ProfilerActivity(enum.Enum):
    CPU = "CPU"
    CUDA = "CUDA"


class ProfilerAction(enum.Enum):
    NONE = 0
    WARMUP = 1
    RECORD = 2
    RECORD_AND_SAVE = 3


def schedule(*, wait: int, warmup: int, active: int, repeat: int = 0, skip_first: int = 0,
             skip_first_wait: int = 0):
    """Step number -> ProfilerAction: skip `skip_first` steps, then cycles of `wait` idle steps, `warmup`
    steps and `active` recorded steps (the last one RECORD_AND_SAVE), `repeat` times (0: forever)."""
    for name, value, low in (("wait", wait, 0), ("warmup", warmup, 0), ("active", active, 1), ("repeat", repeat, 0),
                             ("skip_first", skip_first, 0)):
        if not isinstance(value, int) or value < low:
            raise ValueError(f"Invalid profiler schedule arguments: {name} must be an int >= {low}, got {value!r}")
    num_steps = wait + warmup + active

    def schedule_fn(step: int) -> ProfilerAction:
        if step < 0:
            raise ValueError(f"step must be >= 0, got {step}")
        if step < skip_first:
            return ProfilerAction.NONE
        step -= skip_first
        if skip_first_wait:         # torch: start the first cycle at warmup, not wait
            step += wait
        if repeat > 0 and step // num_steps >= repeat:
            return ProfilerAction.NONE
        mod = step % num_steps
        if mod < wait:
            return ProfilerAction.NONE
        if mod < wait + warmup:
            return ProfilerAction.WARMUP
        return ProfilerAction.RECORD if mod < num_steps - 1 else ProfilerAction.RECORD_AND_SAVE

    return schedule_fn


def trace_handler(dir_name, worker_name: str | None = None, use_gzip: bool = False):
    """on_trace_ready callback writing ``{dir_name}/{worker_name}.{step}.pt.trace.json[.gz]``. The default
    worker name is torch's ``{host}_{pid}``, with ``_rank{r}`` after it in a tensorlib.distributed job, so a
    job's directory names each rank's file (and `python -m viewer DIR` opens them side by side)."""
    def handler(prof):
        os.makedirs(dir_name, exist_ok=True)
        worker = worker_name or f"{socket.gethostname()}_{os.getpid()}" + _rank_suffix()
        name = f"{worker}.{prof.step_num}.pt.trace.json" + (".gz" if use_gzip else "")
        prof.export_chrome_trace(os.path.join(dir_name, name))
    return handler


def _rank_suffix() -> str:
    from tensorlib import distributed as dist
    return f"_rank{dist.get_rank()}" if dist.is_initialized() else ""


tensorboard_trace_handler = trace_handler
