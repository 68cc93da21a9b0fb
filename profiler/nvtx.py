"""NVTX ranges for every tensorlib op and structural range, so Nsight Systems (or any NVTX tool)
shows the model's structure above the CUDA kernels it launched.

Everything lives in one NVTX domain, ``tensorlib``, with one named category per kind of range and a
colour per category, so a timeline can be filtered and read at a glance. Messages are NVTX
*registered strings* held in prebuilt event attributes cached per name: after the first call a range
is one dict lookup plus the C push, and with no tool attached the ``nvtx`` package hands out a dummy
domain, in which case every hook method is a no-op (see ``benchmarks/nvtx_overhead.py``).

Message formats follow ``torch.autograd.profiler.emit_nvtx`` so scripts written for torch's NVTX
output (e.g. pyprof-style parsers) read ours: ``add, seq = 12, sizes = [[8], [8]]`` with
``record_shapes=True``. Without shapes the message is the bare op name (cacheable, so cheap) and the
sequence number travels as the event's int64 payload instead.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import threading
import warnings
from collections.abc import Iterator, Mapping
from typing import Any

DOMAIN = "tensorlib"

# Order fixes the category ids (1..7): the nvtx package numbers categories by first registration.
CATEGORIES: tuple[str, ...] = ("op", "backward", "module", "user", "optimizer", "data", "step")

# ARGB, fully opaque. Chosen to stay distinguishable in the Nsight Systems timeline.
COLORS: dict[str, int] = {
    "op": 0xFF76B900,  # NVIDIA green: the bulk of the ranges
    "backward": 0xFFE07B00,  # orange: autograd work
    "module": 0xFF1F77B4,  # blue: model structure
    "user": 0xFF9467BD,  # purple: record_function-style user ranges
    "optimizer": 0xFFD62728,  # red
    "data": 0xFF17BECF,  # cyan: data loading
    "step": 0xFF7F7F7F,  # grey: ProfilerStep#N
}

# range_enter kinds of the dispatcher hook interface, mapped to the category they are filed under.
KIND_TO_CATEGORY: dict[str, str] = {
    "module": "module",
    "backward": "backward",
    "optimizer": "optimizer",
    "data": "data",
    "user": "user",
    "step": "step",
    "op": "op",  # a composite op (linear, cross_entropy_loss...): an op around the ops it dispatches
}

ENV_VAR = "TENSORLIB_NVTX"
ENV_SHAPES_VAR = "TENSORLIB_NVTX_SHAPES"


def format_shapes(inputs: Any) -> str:
    """torch's ``shapesToStr``: one ``[d0, d1]`` per input, ``[]`` for non-tensors, tensor lists flattened."""
    parts = []
    for value in inputs:
        shape = getattr(value, "shape", None)
        if shape is not None:
            parts.append(_shape_str(shape))
        elif isinstance(value, (list, tuple)):
            nested = [_shape_str(item.shape) for item in value if getattr(item, "shape", None) is not None]
            if nested:
                parts.extend(nested)
            else:
                parts.append("[]")
        else:
            parts.append("[]")
    return "[" + ", ".join(parts) + "]"


def _shape_str(shape: Any) -> str:
    return "[" + ", ".join(str(int(d)) for d in shape) + "]"


def format_op_message(name: str, seq: int | None, inputs: Any = None) -> str:
    """torch's ``getNvtxStr``: ``name, seq = N[, sizes = ...]``; a missing/negative seq is left out."""
    message = f"{name}, seq = {seq}" if seq is not None and seq >= 0 else name
    if inputs is not None:
        message = f"{message}, sizes = {format_shapes(inputs)}"
    return message


def _default_domain() -> Any:
    import nvtx

    domain = nvtx.get_domain(DOMAIN)
    # nvtx returns a shared dummy (no push_range effect) when no NVTX tool is attached.
    return domain if isinstance(domain, nvtx.Domain) else None


class NvtxEmitter:
    """Pushes/pops ranges in the ``tensorlib`` domain from prebuilt, per-name event attributes.

    ``domain`` is injectable so the caching logic can be tested without an NVTX tool; by default the
    ``nvtx`` package's domain is used, and when no tool is attached (or ``use_nvtx=False``) ``enabled``
    is false and the hook skips all work.
    """

    def __init__(self, domain: Any = None, *, use_nvtx: bool = True) -> None:
        self.domain = _default_domain() if domain is None and use_nvtx else domain
        self.enabled = self.domain is not None
        self._shared: dict[tuple[str, str], Any] = {}
        self.category_ids: dict[str, int] = {}
        if self.enabled:
            for category in CATEGORIES:
                self.category_ids[category] = self.domain.get_category_id(category)
            self.push_range = self.domain.push_range  # bound once: the hook calls them directly
            self.pop_range = self.domain.pop_range

    def _check_category(self, category: str) -> None:
        if category not in COLORS:
            raise ValueError(f"unknown NVTX category {category!r}; expected one of {', '.join(CATEGORIES)}")

    def new_attributes(self, category: str, message: str) -> Any:
        """Fresh attributes with a registered (cached) message; callers may own and mutate them."""
        self._check_category(category)
        return self.domain.get_event_attributes(
            message=message, color=COLORS[category], category=self.category_ids[category]
        )

    def attributes(self, category: str, message: str) -> Any:
        """Shared attributes for a (category, message): built once, reused for every range."""
        key = (category, message)
        attrs = self._shared.get(key)
        if attrs is None:
            attrs = self._shared[key] = self.new_attributes(category, message)
        return attrs

    def push(self, category: str, message: str) -> None:
        self.push_range(self.attributes(category, message))

    def push_uncached(self, category: str, message: str, payload: int | None = None) -> None:
        """A range whose message is unique (shapes + seq): registered per call, never cached, so a
        long run does not grow memory with one entry per op call."""
        self._check_category(category)
        attrs = self.domain.get_event_attributes(
            color=COLORS[category], category=self.category_ids[category], payload=payload
        )
        attrs.message = self._new_string(message)
        self.push_range(attrs)

    def _new_string(self, message: str) -> Any:
        # Bypasses Domain.get_registered_string, whose unbounded lru_cache would keep every message.
        from nvtx._lib import RegisteredString

        return RegisteredString(self.domain.handle, message)

    def pop(self) -> None:
        self.pop_range()

    def mark(self, category: str, message: str) -> None:
        self.domain.mark(self.attributes(category, message))


class NvtxHook:
    """A ``tensorlib.dispatch.Hook`` that turns every op and range into an NVTX push/pop.

    Forward ops go under category ``op``, backward-phase ops under ``backward``; ranges go under the
    category of their kind. Tokens are ``True`` when a range was pushed, so a hook attached mid-op
    never pops a range it did not push.
    """

    def __init__(self, record_shapes: bool = False, emitter: NvtxEmitter | None = None) -> None:
        self.record_shapes = record_shapes
        self.emitter = emitter if emitter is not None else NvtxEmitter()
        self._off = not self.emitter.enabled
        if self._off:
            # No tool attached: shadow the methods with no-ops so the dispatcher pays one call each
            # (the class methods also check _off, for a caller that looks them up on the class). mypy
            # refuses assigning to a method; shadowing on the instance is the point here.
            self.op_enter = _noop_enter  # type: ignore[method-assign]
            self.op_exit = _noop_exit  # type: ignore[method-assign]
            self.range_enter = _noop_range_enter  # type: ignore[method-assign]
            self.range_exit = _noop_exit_token  # type: ignore[method-assign]
            return
        # Hot path: a dict hit and the domain's push, with no intermediate Python calls.
        self._push = self.emitter.push_range
        self._pop = self.emitter.pop_range
        self._ranges: dict[str, dict[str, Any]] = {kind: {} for kind in KIND_TO_CATEGORY}
        # Op attributes carry the seq as payload, rewritten per call, so each thread owns its own.
        self._local = threading.local()

    def _op_cache(self) -> tuple[dict[str, Any], dict[str, Any]]:
        caches: tuple[dict[str, Any], dict[str, Any]] = ({}, {})  # (forward, backward)
        self._local.caches = caches
        return caches

    def op_enter(self, op: Any, inputs: Any, attrs: Any, phase: str, seq: int | None) -> bool | None:
        if self._off:
            return None
        backward = phase == "backward"
        if self.record_shapes:
            message = format_op_message(op.name, seq, inputs)
            self.emitter.push_uncached("backward" if backward else "op", message, seq if isinstance(seq, int) else None)
            return True
        try:
            cache = self._local.caches[backward]
        except AttributeError:
            cache = self._op_cache()[backward]
        event = cache.get(op.name)
        if event is None:
            event = cache[op.name] = self.emitter.new_attributes("backward" if backward else "op", op.name)
        event.payload = seq if isinstance(seq, int) and seq >= 0 else None
        self._push(event)
        return True

    def op_exit(self, token: Any, outputs: Any) -> None:
        if token:
            self._pop()

    def range_enter(self, name: str, kind: str) -> bool | None:
        if self._off:
            return None
        try:
            event = self._ranges[kind][name]
        except KeyError:
            # a kind the dispatcher adds later (e.g. "sync") is filed under "user": a hook must never
            # raise inside someone's training loop
            category = KIND_TO_CATEGORY.get(kind, "user")
            event = self._ranges.setdefault(kind, {})[name] = self.emitter.attributes(category, name)
        self._push(event)
        return True

    def range_exit(self, token: Any) -> None:
        if token:
            self._pop()


def _noop_enter(op: Any, inputs: Any, attrs: Any, phase: str, seq: Any) -> None:
    return None


def _noop_exit(token: Any, outputs: Any) -> None:
    return None


def _noop_range_enter(name: str, kind: str) -> None:
    return None


def _noop_exit_token(token: Any) -> None:
    return None


def _dispatch() -> Any:
    try:
        return importlib.import_module("tensorlib.dispatch")
    except ImportError as exc:
        raise RuntimeError(f"NVTX hooks need tensorlib.dispatch, which could not be imported: {exc}") from exc


@contextlib.contextmanager
def emit_nvtx(enabled: bool = True, record_shapes: bool = False) -> Iterator[NvtxHook | None]:
    """Like ``torch.autograd.profiler.emit_nvtx`` (same arguments, `enabled` first): every op and range
    inside the block is an NVTX range; ``enabled=False`` makes it a no-op (the tuning guide's idiom)."""
    if not enabled:
        yield None
        return
    dispatch = _dispatch()
    hook = NvtxHook(record_shapes=record_shapes)
    dispatch.add_hook(hook)
    try:
        yield hook
    finally:
        dispatch.remove_hook(hook)


_env_hook: NvtxHook | None = None
_env_lock = threading.Lock()


def _env_flag(environ: Mapping[str, str], name: str) -> bool:
    value = environ.get(name, "").strip()
    if value in ("", "0"):
        return False
    if value == "1":
        return True
    raise ValueError(f"{name} must be 0 or 1, got {value!r}")


def enable_from_env(environ: Mapping[str, str] | None = None) -> NvtxHook | None:
    """Registers a process-wide NvtxHook when ``TENSORLIB_NVTX=1`` (``TENSORLIB_NVTX_SHAPES=1`` adds
    shapes), so ``python -m profiler nsys`` can annotate an unmodified script. Idempotent."""
    global _env_hook
    environ = os.environ if environ is None else environ
    if not _env_flag(environ, ENV_VAR):
        return None
    record_shapes = _env_flag(environ, ENV_SHAPES_VAR)
    with _env_lock:
        if _env_hook is None:
            hook = NvtxHook(record_shapes=record_shapes)
            _dispatch().add_hook(hook)
            _env_hook = hook
        return _env_hook


def disable_env_hook() -> None:
    """Undoes ``enable_from_env`` (tests, or a script that wants the overhead gone)."""
    global _env_hook
    with _env_lock:
        if _env_hook is not None:
            _dispatch().remove_hook(_env_hook)
            _env_hook = None


def _cuda_runtime() -> Any:
    """CuPy's runtime module if a CUDA device is usable, else None after a warning saying why."""
    try:
        import cupy
        from cupy.cuda import runtime
    except ImportError:
        warnings.warn(
            "cuda_profiler_range: CuPy is not installed, so cudaProfilerStart/Stop are not called "
            "(install tensorlib-profiler[cuda12] or [cuda13] on a GPU machine)",
            RuntimeWarning,
            stacklevel=3,
        )
        return None
    try:
        count = cupy.cuda.runtime.getDeviceCount()
    except runtime.CUDARuntimeError as exc:  # no driver
        count, reason = 0, f"{type(exc).__name__}: {exc}"
    else:
        reason = "no CUDA device found"
    if count == 0:
        warnings.warn(
            f"cuda_profiler_range: {reason}; cudaProfilerStart/Stop are not called",
            RuntimeWarning,
            stacklevel=3,
        )
        return None
    return runtime


@contextlib.contextmanager
def cuda_profiler_range() -> Iterator[bool]:
    """Brackets the block with cudaProfilerStart/Stop, the capture range that
    ``nsys --capture-range=cudaProfilerApi`` waits for. Yields whether the calls were made."""
    runtime = _cuda_runtime()
    if runtime is None:
        yield False
        return
    runtime.profilerStart()
    try:
        yield True
    finally:
        runtime.profilerStop()
