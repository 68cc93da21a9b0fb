"""profiler.profile: torch.profiler.profile's API over tensorlib's dispatcher hooks.

One profiler at a time per process (the dispatcher's hooks are process-wide, so two would record each
other's work), except that a profiler marked ``hosts_nested`` (the one ``python -m profiler run``
starts) lets a profile() started under it nest: the nested one registers nothing and, at its stop,
takes the host's records that lie within its own recording window (`_Slice`). While recording, only
`recorder.Recorder` runs; stop() builds the event store once and every report (events, key_averages,
table, step breakdown, Chrome trace, stacks, memory) reads it. A report asked for while recording is
built from the records so far (events that have ended), afresh each time.
"""
from __future__ import annotations

import os
import threading
import time
import warnings

from tensorlib import dispatch
from tensorlib.dispatch import record_range

from . import events as _events
from ._experimental import check_experimental_config
from .recorder import Recorder
from .schedule import ProfilerAction, ProfilerActivity

_active_lock = threading.Lock()
_active = None


def current_profile():
    """The profile() recording in this process now (started and not yet stopped), or None: the one an
    instrument registers its trace source with (profile.add_trace_source)."""
    return _active


class record_function(record_range):
    """A user range (torch.profiler.record_function): ``with record_function("name"):`` or as a decorator. It has
    a __dict__, as torch's: programs keep their own attributes on it (pytorch/examples fx/profiling_tracer.py
    patches its __enter__ to store an FX proxy there)."""

    def __init__(self, name: str, args: str | None = None):
        if not isinstance(name, str):
            raise TypeError(f"record_function(): name must be a str, got {type(name).__name__}")
        super().__init__(name, "user")


def _capture_runtime():
    """CuPy's CUDA runtime where a GPU is usable (for cudaProfilerStart/Stop), else None."""
    from tensorlib.cuda import cupy_or_none
    cp = cupy_or_none()
    return None if cp is None else cp.cuda.runtime


def _cuda_available() -> bool:
    from tensorlib import cuda      # is_available() never raises (a CuPy that fails to load counts as none)
    return cuda.is_available()


class _AutogradProfilerView:
    """torch.profiler.profile's `.profiler` (a torch.autograd.profiler.profile in torch): the same events."""

    def __init__(self, prof):
        self._prof = prof

    @property
    def function_events(self):
        return self._prof.events()

    @property
    def self_cpu_time_total(self):
        return self._prof.events().self_cpu_time_total

    def key_averages(self, group_by_input_shape=False, group_by_stack_n=0, group_by_overload_name=False):
        return self._prof.key_averages(group_by_input_shape, group_by_stack_n, group_by_overload_name)

    def table(self, *args, **kwargs):
        return self._prof.key_averages().table(*args, **kwargs)

    def total_average(self):
        return self._prof.key_averages().total_average()

    def export_chrome_trace(self, path):
        return self._prof.export_chrome_trace(path)

    def export_stacks(self, path, metric="self_cpu_time_total"):
        return self._prof.export_stacks(path, metric)

    def __getattr__(self, name):
        if name in ("record_shapes", "profile_memory", "with_stack", "with_flops", "with_modules",
                    "experimental_config", "acc_events"):
            return getattr(self._prof, name)
        raise AttributeError(f"'profile' object has no attribute '{name}'")


def supported_activities():
    """torch.profiler.supported_activities(): CPU, and CUDA where a GPU is usable."""
    acts = {ProfilerActivity.CPU}
    if _cuda_available():
        acts.add(ProfilerActivity.CUDA)
    return acts


class profile:
    """Context manager (or start()/step()/stop()) recording every tensorlib op and range.

    Arguments as torch.profiler.profile; in addition ``nvtx=True`` also emits NVTX ranges
    (`profiler.nvtx`), ``max_events`` bounds the records kept per thread (a forgotten profiler
    stops recording there, and stop() warns once with the number dropped), and ``cuda_timing`` picks
    how GPU time is measured: ``"events"`` (default; pooled CUDA events around each op,
    `profiler.cuda_timing`) or ``"cupti"`` (CUPTI kernel/memcpy/memset records linked to ops,
    `profiler.cupti`; needs the ``cupti`` extra, and says what to install when it is missing).
    """

    def __init__(self, *, activities=None, schedule=None, on_trace_ready=None, record_shapes=False,
                 profile_memory=False, with_stack=False, with_flops=False, with_modules=False, acc_events=False,
                 nvtx=False, max_events=10_000_000, cuda_timing="events", experimental_config=None, use_cuda=None):
        if cuda_timing not in ("events", "cupti"):
            raise ValueError(f"cuda_timing must be 'events' (CUDA events around each op, the default) or 'cupti' "
                             f"(CUPTI activity records), got {cuda_timing!r}")
        for name, fn in (("schedule", schedule), ("on_trace_ready", on_trace_ready)):
            if fn is not None and not callable(fn):
                raise TypeError(f"{name} must be callable or None, got {type(fn).__name__} {fn!r:.60}")
        acts = self._check_activities(activities, use_cuda)
        self.activities = acts
        self.use_cuda = ProfilerActivity.CUDA in acts
        self.schedule = schedule
        self.on_trace_ready = on_trace_ready
        self.record_shapes = bool(record_shapes)
        self.profile_memory = bool(profile_memory)
        self.with_stack = bool(with_stack)
        self.with_flops = bool(with_flops)
        self.with_modules = bool(with_modules)
        self.acc_events = bool(acc_events)
        self.nvtx = bool(nvtx)
        self.cuda_timing = cuda_timing
        self._cupti = None
        if cuda_timing == "cupti":
            if self.use_cuda:
                from .cupti import load_cupti
                self._cupti = load_cupti()        # CuptiUnavailable (an ImportError) saying what to install
            elif _cuda_available():
                raise ValueError("cuda_timing='cupti' times CUDA work, but the CUDA activity is off: add "
                                 "ProfilerActivity.CUDA to activities (or leave activities=None)")
            else:
                warnings.warn("cuda_timing='cupti' asked for, but CUDA is not available (no CuPy or no GPU): "
                              "profiling the CPU only. On a machine with an NVIDIA GPU, install CuPy and "
                              "cupti-python: pip install 'tensorlib-profiler[cuda13,cupti]'", UserWarning, stacklevel=2)
        self.experimental_config = check_experimental_config(experimental_config)
        cfg = self.experimental_config
        # torch writes op events' "Call stack" (with_stack) only with experimental_config.verbose; tensorlib writes
        # it unless an experimental_config says verbose=False
        self.call_stack_args = cfg is None or cfg.verbose
        self._trace_only = cfg is not None and cfg.trace_only
        if not isinstance(max_events, int) or max_events < 1:
            raise ValueError(f"max_events must be a positive int, got {max_events!r}")
        self.max_events = max_events
        self.step_num = 0
        self.current_action = None
        self._recorder = None
        self._memory = None
        self._gpu = None
        self._nvtx_hook = None
        self._step_token = None
        self._snapshots: list = []
        self._store = None
        self._tree = None
        self._running = False
        self._t_base = 0
        self._trace_sources: list = []     # fn(pid, t_base_ns) -> extra Chrome events (e.g. grad_monitor)
        self._metadata: dict = {}          # add_metadata(_json): top-level keys of every exported trace
        self._wall_base = 0
        self.dropped_events = 0
        self._host = None
        self._off = frozenset()            # activities toggle_collection_dynamic turned off in this window
        self._warned_toggle = False
        # True on the profiler `python -m profiler run` starts: a profile() started while it runs nests
        # (records nothing itself and reads its block's events from this one's recording)
        self.hosts_nested = False

    @staticmethod
    def _check_activities(activities, use_cuda):
        if activities is None:
            acts = {ProfilerActivity.CPU}
            if use_cuda or (use_cuda is None and _cuda_available()):
                acts.add(ProfilerActivity.CUDA)
        else:
            acts = set()
            for a in activities:
                if not isinstance(a, ProfilerActivity):
                    raise TypeError(f"activities must be ProfilerActivity members (CPU, CUDA), got {a!r}")
                acts.add(a)
        if ProfilerActivity.CUDA in acts and not _cuda_available():
            warnings.warn("ProfilerActivity.CUDA requested but CUDA is not available (no CuPy or no GPU); "
                          "profiling the CPU only", UserWarning, stacklevel=3)
            acts.discard(ProfilerActivity.CUDA)
            acts.add(ProfilerActivity.CPU)
        return acts

    # -- lifecycle ------------------------------------------------------------------------------------
    def __enter__(self):
        self.start()
        return self

    def __exit__(self, exc_type, exc, tb):
        self.stop()
        return False

    def start(self):
        global _active
        with _active_lock:
            if _active is not None and _active is not self and _active.hosts_nested:
                self._host = _active            # nested: a slice of the host's recording (see _Slice)
            elif _active is not None:
                raise RuntimeError("a profiler is already running in this process; tensorlib's hooks are process-wide, "
                                   "so a second profile() would record the first one's work. Stop the running one "
                                   "(leave its `with` block or call .stop()) before starting another. (Under "
                                   "`python -m profiler run` a script's own profile() nests: it gets the ops of "
                                   "its block from the outer recording.)")
            else:
                self._host = None
                _active = self
        if self._host is not None:
            self._warn_what_the_host_lacks()
        try:
            self._running = True
            self.step_num = 0
            self.current_action = self._action(0)
            if self.current_action in (ProfilerAction.RECORD, ProfilerAction.RECORD_AND_SAVE):
                self._start_recording()
        except BaseException:
            # a schedule that raised, CUPTI refusing to start...: leave nothing half-started, free the slot
            self._abort()
            raise
        return self

    def stop(self):
        if not self._running:
            return
        try:
            if self._recorder is not None:
                self._stop_recording()
                if self.on_trace_ready is not None:
                    self.on_trace_ready(self)
        finally:
            self._release()

    def step(self):
        """Ends step N and begins step N+1 (ProfilerStep#N ranges), following the schedule. If the schedule
        or on_trace_ready raises, the profiler stops (what was recorded stays readable) and frees the
        process-wide slot before the error reaches the caller."""
        if not self._running:
            raise RuntimeError("profile.step() called on a profiler that is not running; call start() or use `with`")
        try:
            self._step()
        except BaseException:
            self._abort()
            raise

    def _step(self):
        prev = self.current_action
        self.step_num += 1
        self.current_action = self._action(self.step_num)
        recording = self._recorder is not None
        if recording and (prev == ProfilerAction.RECORD_AND_SAVE
                          or self.current_action in (ProfilerAction.NONE, ProfilerAction.WARMUP)):
            self._stop_recording()
            if prev == ProfilerAction.RECORD_AND_SAVE and self.on_trace_ready is not None:
                self.on_trace_ready(self)
            recording = False
        if self.current_action in (ProfilerAction.RECORD, ProfilerAction.RECORD_AND_SAVE):
            if not recording:
                self._start_recording()
            elif self.schedule is not None:     # torch marks steps only under a schedule (record_steps)
                self._close_step()
                self._open_step()

    def _action(self, step: int) -> ProfilerAction:
        if self.schedule is None:
            return ProfilerAction.RECORD
        action = self.schedule(step)
        if not isinstance(action, ProfilerAction):
            raise TypeError(f"schedule({step}) returned {action!r}; a schedule must return a ProfilerAction "
                            f"(use torch's profiler.schedule(wait=..., warmup=..., active=...))")
        return action

    def _abort(self):
        """After a failure in start() or step(): unhook whatever was registered (keeping what was recorded)
        and free the process-wide slot, so the process can profile again."""
        try:
            if self._recorder is not None:
                try:
                    self._stop_recording()
                except Exception:  # noqa: BLE001 - a failure is already being raised; a second must not hide it
                    self._recorder = self._gpu = None      # _stop_recording unhooks in its `finally`
        finally:
            self._release()

    def _release(self):
        global _active
        self._running = False
        with _active_lock:
            if _active is self:
                _active = None

    def _left_in_fork_child(self):
        """In a child made by os.fork() while this profiler ran: the child did not start it, so it records
        nothing more and reports nothing (stop() and on_trace_ready belong to the parent, which would
        otherwise see its output file overwritten by the child's partial copy), and it may profile itself."""
        rec, self._recorder = self._recorder, None
        if rec is not None:
            self._unhook(rec)
            rec.active = False
        if self._memory is not None:
            self._memory.active = False        # its free callbacks stay registered and now record nothing
        self._gpu = self._nvtx_hook = self._memory = None
        self._capture = None
        self._snapshots = []
        self._running = False

    # -- recording --------------------------------------------------------------------------------------
    def _start_recording(self):
        if not self.acc_events:
            self._snapshots = []
        self._store = None
        self._tree = None
        if self._host is not None:
            if not self._t_base or not self.acc_events:
                self._t_base = time.perf_counter_ns()
                self._wall_base = time.time_ns()
            self._recorder = _Slice(self._host)
            if self.schedule is not None:
                self._open_step()
            return
        if self.profile_memory:
            from .memory_record import MemoryRecorder
            self._memory = MemoryRecorder(cuda=self.use_cuda)
        self._recorder = Recorder(record_shapes=self.record_shapes, profile_memory=self.profile_memory,
                                  with_stack=self.with_stack, with_flops=self.with_flops,
                                  max_events=self.max_events, memory=self._memory,
                                  module_ranges=self.with_modules)
        if self.use_cuda and self._cupti is not None:
            from .cupti import CuptiTimer
            self._gpu = CuptiTimer(self._cupti).start()
        elif self.use_cuda:
            from .cuda_timing import GpuTimer
            self._gpu = GpuTimer()
        if not self._t_base or not self.acc_events:
            self._t_base = time.perf_counter_ns()
            self._wall_base = time.time_ns()
        self._recorder.active = True
        if self._memory is not None:
            self._memory.start()
        if self.nvtx:
            from .nvtx import NvtxHook
            self._nvtx_hook = NvtxHook(record_shapes=self.record_shapes)
        self._off = frozenset()          # every activity collected (toggle_collection_dynamic)
        self._hook()
        self._recorder.start_watchdog()        # bounds the lists (the C Records buffers bound themselves)
        if self.schedule is not None:
            # each active window is a CUDA capture range: `nsys profile --capture-range=cudaProfilerApi`
            # then records exactly the steps this profiler records
            self._capture = _capture_runtime()
            if self._capture is not None:
                self._capture.profilerStart()
            self._open_step()

    def toggle_collection_dynamic(self, enable: bool, activities) -> None:
        """torch.profiler.profile.toggle_collection_dynamic: turn the collection of `activities` off (enable
        False) or back on while recording. ProfilerActivity.CPU: ops and ranges (record_function, modules,
        ProfilerStep#N) are not recorded while it is off, and the profiler's dispatcher hooks are taken out, so
        the code in between runs as it does unprofiled (no observer effect); a range open at the toggle closes
        where it opened; memory records continue (frees of recorded tensors stay in the timeline).
        ProfilerActivity.CUDA: GPU times (CUDA events or CUPTI) likewise. What was recorded stays. As torch's,
        it acts on the recording window in progress only: outside one (before start(), or a schedule's wait
        and warmup steps) it does nothing, and the next window records every activity again."""
        acts = set()
        for a in activities:
            if not isinstance(a, ProfilerActivity):
                raise TypeError(f"toggle_collection_dynamic: activities must be ProfilerActivity members (CPU, "
                                f"CUDA), got {a!r}")
            acts.add(a)
        if self._recorder is None:
            return
        if self._host is not None:
            warnings.warn("toggle_collection_dynamic: a profile() nested under `python -m profiler run` reads the "
                          "outer profiler's recording, which this does not turn off; nothing changed",
                          UserWarning, stacklevel=2)
            return
        off = set(self._off)
        if enable:
            off -= acts
        else:
            off |= acts & self.activities
        if ProfilerActivity.CPU in off and ProfilerActivity.CUDA not in off and self._gpu is not None \
                and not self._warned_toggle:
            self._warned_toggle = True      # torch's profiler_kineto.cpp warns the same
            warnings.warn("toggle_collection_dynamic: CPU collection off with CUDA collection on: GPU times of the "
                          "ops run meanwhile are kept, with no op to attach them to", UserWarning, stacklevel=2)
        if off != self._off:
            self._off = frozenset(off)
            self._hook()

    def _hook(self):
        """(Re)register this recording's dispatcher hooks for the activities collected now (not in _off), in
        their one order: the recorder first, so that the GPU timer's enter stamp falls inside the op's."""
        rec, gpu, nv = self._recorder, self._gpu, self._nvtx_hook
        cpu_on = ProfilerActivity.CPU not in self._off
        gpu_on = ProfilerActivity.CUDA not in self._off
        self._unhook(rec)
        if cpu_on:
            dispatch.add_hook(rec)
            if rec.uses_sink:
                dispatch.set_op_sink(rec)
        if gpu is not None:
            pause = getattr(gpu, "pause", None)     # CUPTI: its activity kinds off and on
            if pause is not None:
                pause(not gpu_on)
            if gpu_on:
                dispatch.add_hook(gpu)
        if nv is not None and cpu_on:
            dispatch.add_hook(nv)

    def _unhook(self, rec):
        """Take this recording's hooks (recorder `rec`, the GPU timer, NVTX) and op sink out of the dispatcher,
        those that are in."""
        if rec.uses_sink and dispatch.op_sink() is rec:
            dispatch.set_op_sink(None)
        for h in (self._nvtx_hook, rec, self._gpu):
            if h is not None and h in dispatch.hooks():
                dispatch.remove_hook(h)

    def _open_step(self):
        self._step_token = dispatch.range_enter(f"ProfilerStep#{self.step_num}", "step")

    def _close_step(self):
        tok, self._step_token = self._step_token, None
        if tok is not None:
            dispatch.range_exit(tok)

    def _stop_recording(self):
        rec = self._recorder
        try:
            self._close_step()
        finally:
            # unhook first: nothing below (a failing cudaProfilerStop included) may leave hooks registered
            rec.stop_watchdog()
            self._unhook(rec)
            rec.active = False
            cap, self._capture = getattr(self, "_capture", None), None
            if cap is not None:
                cap.profilerStop()
            gpu_stop = getattr(self._gpu, "stop", None)     # CUPTI: synchronize, flush, disable
            if gpu_stop is not None:
                try:
                    gpu_stop()
                except Exception as e:  # noqa: BLE001 - whatever CUPTI raises, keep the CPU recording and say so
                    warnings.warn(f"profiler: stopping CUPTI failed ({type(e).__name__}: {e}); GPU times may be "
                                  f"incomplete", RuntimeWarning, stacklevel=3)
            self._nvtx_hook = None
            if self._memory is not None:
                self._memory.stop()
        snap = rec.snapshot()
        if not self.with_modules and not self.with_stack:   # (a host's, `profiler run`'s: it records them)
            snap = [(tid, nm, [r for r in recs if r[1] != "r:module"]) for tid, nm, recs in snap]
        self._snapshots.append((snap, rec.extended, self._memory, self._gpu))
        self._recorder = None
        self._gpu_pending = self._gpu
        self._gpu = None
        if rec.dropped:
            self.dropped_events += rec.dropped
            warnings.warn(f"profiler: max_events={self.max_events} reached on a thread; recording stopped there and "
                          f"{rec.dropped} later events were dropped (raise max_events, or profile a shorter "
                          f"region / use a schedule)", RuntimeWarning, stacklevel=3)

    def _warn_what_the_host_lacks(self):
        """A nested profile() gets what the outer profiler records: say which of its options it cannot have."""
        host = self._host
        flags = (("record_shapes", "--shapes"), ("with_stack", "--stack"), ("with_flops", "--with-flops"))
        missing = [f"{name} (give {flag} to `python -m profiler run`)" for name, flag in flags
                   if getattr(self, name) and not getattr(host, name)]
        if self.profile_memory:
            missing.append("profile_memory (the outer profiler's --memory report has it)")
        if self.use_cuda:
            missing.append("GPU times (the outer profiler's report has them)")
        if missing:
            warnings.warn("profile() nested under `python -m profiler run` gets the outer profiler's events; "
                          "not available here: " + "; ".join(missing), UserWarning, stacklevel=4)

    # -- results ------------------------------------------------------------------------------------------
    def _require_store(self):
        """The event store. While recording: a store of what is recorded so far (events that have
        ended; no GPU times, which need the stop's synchronisation), built afresh on every call."""
        if self._recorder is not None:
            rec = self._recorder
            return self._build(self._snapshots + [(rec.peek(), rec.extended, self._memory, None)])
        if self._store is None:
            self._store = self._build()
        return self._store

    def _build(self, snaps=None):
        snaps = self._snapshots if snaps is None else snaps
        if not snaps:
            return _events.build([], False, self._t_base, self._wall_base)
        extended = any(s[1] for s in snaps)
        merged = []
        for snap, ext, _, _ in snaps:
            for tid, nm, recs in snap:
                if extended and not ext:
                    recs = [(r[0], r[1], r[2], 0, r[3], r[4]) for r in recs]     # 0: no extra
                merged.append((tid, nm, recs))
        store = _events.build(merged, extended, self._t_base, self._wall_base)
        mems = [m for _, _, m, _ in snaps if m is not None]
        if mems:
            import numpy as np
            from .memory_record import attribute
            if len(mems) == 1:
                arr = mems[0].array()                   # in time order already
            else:
                arr = np.concatenate([m.array() for m in mems])
                arr = arr[np.argsort(arr["t"], kind="stable")]
            attribute(store, arr)
            store.cuda_base = {}
            for m in mems:
                for k, v in m.cuda_base.items():
                    store.cuda_base.setdefault(k, v)
            store.cpu_base = mems[0].cpu_base
        gpus = [g for _, _, _, g in snaps if g is not None]
        for g in gpus:
            g.resolve(store)
        return store

    @property
    def store(self):
        """The event store (NumPy columns) every report is made from."""
        return self._require_store()

    def events(self):
        """Every recorded op and range as FunctionEvent (see profiler.function_event), in pre-order per thread,
        in torch's EventList (table(), key_averages(), total_average(), exports)."""
        self._refuse_trace_only()
        store = self._require_store()
        from .aggregate import EventList
        from .function_event import EventTree
        if self._recorder is not None:          # recording: a tree of what is recorded so far
            evs = EventTree(store).events()
        else:
            if self._tree is None:
                self._tree = EventTree(store)
            evs = self._tree.events()
        return EventList(evs, store=store, group_by_input_shape=self.record_shapes, profile=self)

    def key_averages(self, group_by_input_shape=False, group_by_stack_n=0, group_by_overload_name=False):
        """One row per name (torch's); tensorlib's ops have no overloads, so group_by_overload_name groups
        as by name."""
        from .aggregate import key_averages
        self._refuse_trace_only()
        if group_by_input_shape and not (self.record_shapes or self.with_flops):
            raise ValueError("group_by_input_shape=True needs shapes: profile with record_shapes=True")
        if group_by_stack_n and not self.with_stack:
            raise ValueError("group_by_stack_n needs stacks: profile with with_stack=True")
        return key_averages(self._require_store(), group_by_input_shape, group_by_stack_n, profile=self)

    def _refuse_trace_only(self):
        if self._trace_only:
            raise RuntimeError("events() is not available when trace_only=True in ExperimentalConfig. Use "
                               "export_chrome_trace() instead.")

    @property
    def profiler(self):
        """torch's `prof.profiler`: None until the profile starts, then the torch.autograd.profiler.profile-like
        view of its events (function_events, key_averages(), table(), total_average(), exports)."""
        if self._recorder is None and not self._snapshots and self._store is None:
            return None
        return _AutogradProfilerView(self)

    def step_breakdown(self):
        """Per recorded step (ProfilerStep#N), the time in data loading, forward, backward, optimizer and
        the rest, and GPU busy/idle with CUDA times; ``.table()`` renders it. See profiler/steps.py."""
        from .steps import step_breakdown
        return step_breakdown(self._require_store())

    def table(self, *args, **kwargs):
        return self.key_averages().table(*args, **kwargs)

    def add_trace_source(self, fn):
        """Register fn(pid, t_base_ns) -> list of Chrome trace events, merged into every exported trace
        (instruments such as profiler.debug.grad_monitor add their counter tracks this way)."""
        if fn not in self._trace_sources:
            self._trace_sources.append(fn)

    def add_metadata(self, key: str, value: str):
        """torch's add_metadata: a string written at the top level of every trace this profile exports."""
        if not isinstance(value, str):
            raise TypeError(f"add_metadata: value must be a str, got {type(value).__name__} (use add_metadata_json "
                            f"for other JSON values)")
        self._put_metadata("add_metadata", key, value)

    def add_metadata_json(self, key: str, value: str):
        """torch's add_metadata_json: `value` is JSON text, written parsed at the trace's top level."""
        import orjson
        try:
            parsed = orjson.loads(value)
        except (orjson.JSONDecodeError, TypeError) as e:
            raise ValueError(f"add_metadata_json: the value for {key!r} is not JSON text ({e})") from None
        self._put_metadata("add_metadata_json", key, parsed)

    preset_metadata_json = add_metadata_json      # torch's: set before start (here, whenever: kept until export)

    def _put_metadata(self, fn, key, value):
        from .chrome import RESERVED_KEYS
        if not isinstance(key, str) or not key:
            raise TypeError(f"{fn}: key must be a non-empty str, got {key!r:.60}")
        if key in RESERVED_KEYS:
            raise ValueError(f"{fn}: {key!r} is a key the trace itself writes; choose another name")
        self._metadata[key] = value

    def trace_sources(self) -> tuple:
        """The functions registered with add_trace_source, in registration order."""
        return tuple(self._trace_sources)

    def export_chrome_trace(self, path):
        from .chrome import export_chrome_trace
        return export_chrome_trace(self._require_store(), path, self)

    def export_stacks(self, path, metric="self_cpu_time_total"):
        from .stacks import export_stacks
        return export_stacks(self._require_store(), path, metric)

    def export_memory_timeline(self, path, device=None):
        from .memory_report import export_memory_timeline
        return export_memory_timeline(self._require_store(), path, device, self.profile_memory)

    def memory_summary(self) -> str:
        from .memory_report import memory_summary
        return memory_summary(self._require_store(), self.profile_memory)


class _Slice:
    """A nested profile()'s "recorder": at stop, the host's records that lie within [start, stop], from
    the recording live at start (each thread's list read from where it stood then) and any the host's
    schedule started and stopped since. It registers no hook: the dispatcher's hooks are process-wide and
    the host's already record everything (what the host does not record, as in its schedule's waits,
    the nested profile does not get either)."""

    uses_sink = False
    dropped = 0

    def __init__(self, host):
        self._host = host
        self._rec = host._recorder             # None while the host's schedule is not recording
        self._snaps_before = len(host._snapshots)
        self.extended = bool(host.record_shapes or host.profile_memory or host.with_stack or host.with_flops)
        self.active = True
        self._t0 = time.perf_counter_ns()
        self._from = self._rec.counts() if self._rec is not None else []    # records per thread so far

    def stop_watchdog(self):
        pass

    def peek(self):
        return self.snapshot()

    def snapshot(self):
        t0, t1 = self._t0, time.perf_counter_ns()
        out = []

        def take(tid, name, recs):
            recs = [r for r in recs if r[-2] >= t0 and r[-1] <= t1]
            if recs:
                out.append((tid, name, recs))

        host = self._host
        for snap, _, _, _ in host._snapshots[self._snaps_before:]:     # recordings the host closed since
            for tid, name, recs in snap:
                take(tid, name, recs)
        live = host._recorder
        if live is not None:
            start = self._from if live is self._rec else []
            for i, (tid, name, recs) in enumerate(live.peek()):      # (threads in the order counts() gave)
                take(tid, name, recs[start[i]:] if i < len(start) else recs)
        return out


def _after_fork_in_child():
    global _active, _active_lock
    _active_lock = threading.Lock()          # another thread of the parent may have held it at the fork
    running, _active = _active, None
    if running is not None:
        running._left_in_fork_child()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
