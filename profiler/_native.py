"""The recorder's C twin, profiler._crecord (profiler/_crecord.c), or None: see tensorlib/_native.py for when it
is used. It gives recorder.Recorder its hook methods (op_enter, op_exit, op_arrays, range_enter, range_exit,
op_range_enter, op_step) and memory_record.MemoryRecorder its CPU recording (record_outputs, record_arrays and
the arrays' free callback), except with with_stack or with_flops, whose per-op work is Python's (frames, FLOP
formulas)."""
from __future__ import annotations

import numpy as np

from tensorlib import Tensor
from tensorlib.dispatch import load_native

__all__ = ["crecord"]

crecord = load_native("profiler._crecord")
if crecord is not None:
    crecord.setup(Tensor, np.ndarray, np.generic, np)
