"""NvtxHook / NvtxEmitter logic against a recording fake domain (no NVTX tool needed).

What reaches a real NVTX tool is checked end to end by test_nvtx_injection.py.
"""

from __future__ import annotations

import sys
import threading
import types
import warnings

import pytest
from hypothesis import given
from hypothesis import strategies as st

from profiler import nvtx as pnvtx


class FakeAttrs:
    def __init__(self, message, color, category, payload):
        self.message, self.color, self.category, self.payload = message, color, category, payload


class FakeDomain:
    """Records what a tool would see: the attributes' fields at push time."""

    def __init__(self):
        self.events = []
        self.categories = {}
        self.created = 0

    def get_category_id(self, name):
        return self.categories.setdefault(name, len(self.categories) + 1)

    def get_event_attributes(self, message=None, color=None, category=None, payload=None):
        self.created += 1
        return FakeAttrs(message, color, category, payload)

    def push_range(self, attrs):
        self.events.append(("push", attrs.message, attrs.category, attrs.color, attrs.payload))

    def pop_range(self):
        self.events.append(("pop",))

    def mark(self, attrs):
        self.events.append(("mark", attrs.message, attrs.category, attrs.color, attrs.payload))


class FakeEmitter(pnvtx.NvtxEmitter):
    def _new_string(self, message):
        return message


class Op:
    def __init__(self, name):
        self.name = name


class T:
    def __init__(self, *shape):
        self.shape, self.dtype = shape, "float32"


@pytest.fixture
def nvtx_fake():
    domain = FakeDomain()
    return domain, FakeEmitter(domain)


def ids():
    return {name: i + 1 for i, name in enumerate(pnvtx.CATEGORIES)}


def test_categories_are_registered_in_fixed_order(nvtx_fake):
    domain, emitter = nvtx_fake
    assert emitter.category_ids == ids()
    assert set(pnvtx.COLORS) == set(pnvtx.CATEGORIES)
    assert len(set(pnvtx.COLORS.values())) == len(pnvtx.COLORS)
    assert all(color >> 24 == 0xFF for color in pnvtx.COLORS.values())


def test_forward_and_backward_ops_nest_under_ranges(nvtx_fake):
    domain, emitter = nvtx_fake
    hook = pnvtx.NvtxHook(emitter=emitter)
    c = ids()
    step = hook.range_enter("ProfilerStep#3", "step")
    mod = hook.range_enter("model.fc1", "module")
    tok = hook.op_enter(Op("matmul"), (T(8, 4), T(4, 2)), {}, "forward", 12)
    hook.op_exit(tok, (T(8, 2),))
    hook.range_exit(mod)
    node = hook.range_enter("MmBackward0", "backward")
    tok = hook.op_enter(Op("matmul"), (T(8, 2), T(2, 4)), {}, "backward", 12)
    hook.op_exit(tok, ())
    hook.range_exit(node)
    hook.range_exit(step)
    colors = pnvtx.COLORS
    assert domain.events == [
        ("push", "ProfilerStep#3", c["step"], colors["step"], None),
        ("push", "model.fc1", c["module"], colors["module"], None),
        ("push", "matmul", c["op"], colors["op"], 12),
        ("pop",),
        ("pop",),
        ("push", "MmBackward0", c["backward"], colors["backward"], None),
        ("push", "matmul", c["backward"], colors["backward"], 12),
        ("pop",),
        ("pop",),
        ("pop",),
    ]


def test_attributes_are_built_once_per_name(nvtx_fake):
    domain, emitter = nvtx_fake
    hook = pnvtx.NvtxHook(emitter=emitter)
    for seq in range(50):
        hook.op_exit(hook.op_enter(Op("add"), (), {}, "forward", seq), ())
        hook.range_exit(hook.range_enter("model.fc1", "module"))
    assert domain.created == 2
    assert [e[4] for e in domain.events if e[0] == "push" and e[1] == "add"] == list(range(50))


def test_payload_attributes_are_per_thread(nvtx_fake):
    """Two threads rewriting one shared payload would race; each thread gets its own attributes."""
    domain, emitter = nvtx_fake
    hook = pnvtx.NvtxHook(emitter=emitter)
    hook.op_exit(hook.op_enter(Op("add"), (), {}, "forward", 1), ())
    t = threading.Thread(target=lambda: hook.op_exit(hook.op_enter(Op("add"), (), {}, "forward", 2), ()))
    t.start()
    t.join()
    assert domain.created == 2


def test_record_shapes_uses_torch_message_format(nvtx_fake):
    domain, emitter = nvtx_fake
    hook = pnvtx.NvtxHook(record_shapes=True, emitter=emitter)
    hook.op_exit(hook.op_enter(Op("add"), (T(8), T(8)), {}, "forward", 12), ())
    hook.op_exit(hook.op_enter(Op("mul"), (T(2, 3), 2.0, [T(1), T(4, 5)], []), {}, "backward", 7), ())
    hook.op_exit(hook.op_enter(Op("sum"), (T(),), {}, "forward", None), ())
    pushes = [e[1:3] + (e[4],) for e in domain.events if e[0] == "push"]
    assert pushes == [
        ("add, seq = 12, sizes = [[8], [8]]", 1, 12),
        ("mul, seq = 7, sizes = [[2, 3], [], [1], [4, 5], []]", 2, 7),
        ("sum, sizes = [[]]", 1, None),
    ]
    assert domain.created == 3  # never cached: each message is unique


def test_format_op_message_matches_torch():
    assert pnvtx.format_op_message("add", 12) == "add, seq = 12"
    assert pnvtx.format_op_message("add", -1) == "add"
    assert pnvtx.format_op_message("add", 3, (T(8, 1), None)) == "add, seq = 3, sizes = [[8, 1], []]"


def test_unknown_kind_is_filed_under_user(nvtx_fake):
    hook = pnvtx.NvtxHook(emitter=nvtx_fake[1])
    domain, _ = nvtx_fake
    assert hook.range_enter("e0", "epoch") is True     # never raises inside the dispatcher
    hook.range_exit(True)
    assert domain.events == [("push", "e0", ids()["user"], pnvtx.COLORS["user"], None), ("pop",)]


def test_unknown_category_is_a_clear_error(nvtx_fake):
    with pytest.raises(ValueError, match="unknown NVTX category 'gpu'"):
        nvtx_fake[1].push("gpu", "x")


def test_mark(nvtx_fake):
    domain, emitter = nvtx_fake
    emitter.mark("user", "checkpoint")
    assert domain.events == [("mark", "checkpoint", 4, pnvtx.COLORS["user"], None)]


def test_no_tool_attached_makes_every_method_a_noop():
    emitter = pnvtx.NvtxEmitter(use_nvtx=False)
    hook = pnvtx.NvtxHook(emitter=emitter)
    assert not emitter.enabled
    assert hook.op_enter(Op("add"), (), {}, "forward", 1) is None
    assert hook.range_enter("m", "module") is None
    hook.op_exit(None, ())
    hook.range_exit(None)
    # A dispatcher that calls the class's functions instead of the instance's attributes is fine too.
    assert pnvtx.NvtxHook.op_enter(hook, Op("add"), (), {}, "forward", 1) is None
    assert pnvtx.NvtxHook.range_enter(hook, "m", "module") is None
    pnvtx.NvtxHook.op_exit(hook, None, ())
    pnvtx.NvtxHook.range_exit(hook, None)


def test_default_emitter_in_this_process_has_no_tool():
    # pytest runs without NVTX_INJECTION64_PATH, so the nvtx package hands out its dummy domain.
    assert pnvtx.NvtxEmitter().enabled is False


@pytest.fixture
def nvtx_fake_dispatch(monkeypatch):
    mod = types.ModuleType("tensorlib.dispatch")
    mod.hooks = []
    mod.add_hook = mod.hooks.append
    mod.remove_hook = mod.hooks.remove
    monkeypatch.setitem(sys.modules, "tensorlib.dispatch", mod)
    monkeypatch.setattr(pnvtx, "_env_hook", None)
    return mod


def test_emit_nvtx_registers_and_removes_hook(nvtx_fake_dispatch):
    with pnvtx.emit_nvtx(record_shapes=True) as hook:
        assert nvtx_fake_dispatch.hooks == [hook]
        assert hook.record_shapes
    assert nvtx_fake_dispatch.hooks == []


def test_emit_nvtx_takes_torchs_arguments(nvtx_fake_dispatch):
    # torch's signature is emit_nvtx(enabled=True, record_shapes=False): the tuning guide's
    # `emit_nvtx(enabled=False)` is a no-op, and a positional True means enabled, not record_shapes
    with pnvtx.emit_nvtx(enabled=False) as hook:
        assert hook is None and nvtx_fake_dispatch.hooks == []
    with pnvtx.emit_nvtx(True) as hook:
        assert nvtx_fake_dispatch.hooks == [hook] and not hook.record_shapes
    assert nvtx_fake_dispatch.hooks == []


def test_emit_nvtx_removes_hook_on_error(nvtx_fake_dispatch):
    with pytest.raises(KeyError):
        with pnvtx.emit_nvtx():
            raise KeyError("boom")
    assert nvtx_fake_dispatch.hooks == []


def test_emit_nvtx_without_dispatcher_says_so(monkeypatch):
    monkeypatch.setitem(sys.modules, "tensorlib.dispatch", None)
    with pytest.raises(RuntimeError, match="tensorlib.dispatch"):
        with pnvtx.emit_nvtx():
            pass


def test_enable_from_env(nvtx_fake_dispatch):
    assert pnvtx.enable_from_env({}) is None
    assert pnvtx.enable_from_env({"TENSORLIB_NVTX": "0"}) is None
    assert nvtx_fake_dispatch.hooks == []
    hook = pnvtx.enable_from_env({"TENSORLIB_NVTX": "1", "TENSORLIB_NVTX_SHAPES": "1"})
    assert nvtx_fake_dispatch.hooks == [hook] and hook.record_shapes
    assert pnvtx.enable_from_env({"TENSORLIB_NVTX": "1"}) is hook  # idempotent
    assert nvtx_fake_dispatch.hooks == [hook]
    pnvtx.disable_env_hook()
    assert nvtx_fake_dispatch.hooks == []


def test_enable_from_env_rejects_bad_value(nvtx_fake_dispatch):
    with pytest.raises(ValueError, match=r"TENSORLIB_NVTX must be 0 or 1, got 'yes'"):
        pnvtx.enable_from_env({"TENSORLIB_NVTX": "yes"})


def test_cuda_profiler_range_without_cupy_warns_and_runs_body(monkeypatch):
    monkeypatch.setitem(sys.modules, "cupy", None)
    ran = []
    with pytest.warns(RuntimeWarning, match="CuPy is not installed"):
        with pnvtx.cuda_profiler_range() as active:
            ran.append(active)
    assert ran == [False]


def _fake_cupy(monkeypatch, device_count):
    calls = []
    runtime = types.ModuleType("cupy.cuda.runtime")
    runtime.getDeviceCount = lambda: device_count
    runtime.profilerStart = lambda: calls.append("start")
    runtime.profilerStop = lambda: calls.append("stop")
    cuda = types.ModuleType("cupy.cuda")
    cuda.runtime = runtime
    cupy = types.ModuleType("cupy")
    cupy.cuda = cuda
    for name, mod in (("cupy", cupy), ("cupy.cuda", cuda), ("cupy.cuda.runtime", runtime)):
        monkeypatch.setitem(sys.modules, name, mod)
    return calls


def test_cuda_profiler_range_calls_start_and_stop(monkeypatch):
    calls = _fake_cupy(monkeypatch, 1)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(KeyError):
            with pnvtx.cuda_profiler_range() as active:
                calls.append(active)
                raise KeyError("stop must still be called")
    assert calls == ["start", True, "stop"]


def test_cuda_profiler_range_without_device_warns(monkeypatch):
    calls = _fake_cupy(monkeypatch, 0)
    with pytest.warns(RuntimeWarning, match="no CUDA device found"):
        with pnvtx.cuda_profiler_range():
            pass
    assert calls == []


def test_op_without_seq_carries_no_payload(nvtx_fake):
    domain, emitter = nvtx_fake
    hook = pnvtx.NvtxHook(emitter=emitter)
    hook.op_exit(hook.op_enter(Op("add"), (), {}, "forward", 5), ())
    hook.op_exit(hook.op_enter(Op("add"), (), {}, "forward", None), ())
    hook.op_exit(hook.op_enter(Op("add"), (), {}, "forward", -1), ())
    assert [e[4] for e in domain.events if e[0] == "push"] == [5, None, None]


@given(
    name=st.from_regex(r"[a-z_][a-z0-9_.:]{0,20}", fullmatch=True),
    seq=st.one_of(st.none(), st.integers(0, 2**40)),
    shapes=st.lists(st.lists(st.integers(0, 4096), max_size=4), max_size=4),
)
def test_nsys_import_reads_back_what_record_shapes_writes(name, seq, shapes):
    from profiler.nsys.convert import parse_op_message

    message = pnvtx.format_op_message(name, seq, tuple(T(*s) for s in shapes))
    expected = {"Input Dims": shapes} if seq is None else {"Sequence number": seq, "Input Dims": shapes}
    assert parse_op_message(message) == (name, expected)
