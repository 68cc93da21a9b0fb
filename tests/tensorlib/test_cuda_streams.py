"""torch.cuda's streams, events, device contexts, RNG state and memory questions over CuPy (tensorlib.cuda).

Marked `cuda`: on the CPU they run against the strict fake CuPy (tests/fakecupy, FAKECUPY_RULES=13 and 14),
whose queues complete work only when the host waits for it, so a test that forgets to wait fails here as
it would on a GPU. CUDA graphs need real stream capture, which the fake cannot replay: those tests are
`real_gpu` (deselected under the fake, run by `make test-gpu`)."""
from __future__ import annotations

import numpy as np
import pytest

import tensorlib as tl

pytestmark = pytest.mark.cuda
cuda = tl.cuda


def _cupy():
    from tensorlib import _device
    return _device.cupy()


def test_ops_inside_a_stream_context_go_onto_that_stream():
    s = cuda.Stream()
    cp = _cupy()
    assert s.device == tl.device("cuda:0") and s.cuda_stream != 0 and s.query()
    assert cuda.current_stream() == cuda.default_stream() and cuda.current_stream().cuda_stream == 0
    x = tl.ones(1000, device="cuda")
    with cuda.stream(s):
        assert cuda.current_stream() == s and cp.cuda.get_current_stream().ptr == s.cuda_stream
        y = (x * 2).sum()
        assert not s.query()                      # queued on s, not yet waited for
    assert cuda.current_stream().cuda_stream == 0
    s.synchronize()
    assert s.query() and y.item() == 2000.0
    with s:                                       # torch.Stream's own context manager
        assert cuda.current_stream() == s
    with cuda.stream(None):                       # None: no change
        assert cuda.current_stream().cuda_stream == 0


def test_set_stream_and_what_cupy_made_current():
    s = cuda.Stream()
    cuda.set_stream(s)
    try:
        assert cuda.current_stream() == s
    finally:
        cuda.set_stream(cuda.default_stream())
    cuda.set_stream(None)
    assert cuda.current_stream().cuda_stream == 0
    cp_stream = _cupy().cuda.Stream(non_blocking=True)
    with cp_stream:                               # CuPy's own context: tensorlib sees the same current stream
        assert cuda.current_stream().cuda_stream == cp_stream.ptr


def test_stream_equality_hash_repr_and_priority():
    s = cuda.Stream()
    same = cuda.ExternalStream(s.cuda_stream)
    assert same == s and hash(same) == hash(s) and s != cuda.Stream() and s != s.cuda_stream
    assert repr(s) == f"<torch.cuda.Stream device=cuda:0 cuda_stream={s.cuda_stream:#x}>"
    assert s.__cuda_stream__() == (0, s.cuda_stream)
    assert s.priority == 0
    hi = cuda.Stream(priority=-100)               # clamped into the device's range by CUDA (CuPy 14)
    if int(_cupy().__version__.split(".")[0]) >= 14:
        assert -100 < hi.priority < 0
    else:
        assert hi.priority == 0                   # CuPy 13 makes no stream with a priority
    with pytest.raises(TypeError, match="unexpected keyword argument 'bogus'"):
        cuda.Stream(bogus=1)


def test_wait_stream_orders_work_across_streams():
    a, b = cuda.Stream(), cuda.Stream()
    with cuda.stream(a):
        x = tl.ones(10, device="cuda") * 3
    b.wait_stream(a)
    ev = b.record_event()
    ev.synchronize()                              # b's marker comes after a's kernels: a is done too
    assert a.query() and ev.query()
    np.testing.assert_array_equal(x.cpu().numpy(), np.full(10, 3.0, np.float32))


def test_event_timing_and_torch_errors():
    start, end = cuda.Event(enable_timing=True), cuda.Event(enable_timing=True)
    assert start.query() and repr(start) == "<torch.cuda.Event uninitialized>" and start.cuda_event == 0
    with pytest.raises(ValueError, match=r"Both events must be recorded before calculating elapsed time\."):
        start.elapsed_time(end)
    start.record()
    x = tl.ones(4096, device="cuda")
    for _ in range(5):
        x = x * 1.5
    end.record()
    with pytest.raises(RuntimeError, match=r"Both events must be completed before calculating elapsed time\."):
        start.elapsed_time(end)
    end.synchronize()
    ms = start.elapsed_time(end)
    assert isinstance(ms, float) and ms > 0
    assert start.device == tl.device("cuda:0") and start.cuda_event != 0
    plain = cuda.Event()
    plain.record()
    with pytest.raises(ValueError, match=r"Both events must be created with argument 'enable_timing=True'\."):
        plain.elapsed_time(end)
    with pytest.raises(RuntimeError, match="sharing CUDA events between processes is not supported"):
        cuda.Event(interprocess=True).ipc_handle()


def test_event_wait_makes_a_stream_wait():
    a, b = cuda.Stream(), cuda.Stream()
    ev = cuda.Event()
    ev.wait(b)                                    # not recorded yet: nothing to wait for
    with cuda.stream(a):
        y = tl.ones(8, device="cuda") + 1
        ev.record()
    b.wait_event(ev)
    b.synchronize()
    assert a.query()                              # b's queue included a's work up to the event
    assert y.sum().item() == 16.0


def test_record_stream_holds_the_memory_until_the_other_stream_is_done():
    from tensorlib.cuda import memory
    side = cuda.Stream()
    x = tl.ones(1 << 16, device="cuda")
    side.wait_stream(cuda.current_stream())
    with cuda.stream(side):
        y = x * 2
    x.record_stream(side)
    used = memory._tracker.pool.used_bytes()
    del x
    assert len(memory._tracker.deferred) == 1     # side's kernel may still read x: not back in the pool yet
    assert memory._tracker.pool.used_bytes() == used
    side.synchronize()
    tl.ones(1, device="cuda")                     # the next allocation gives back what is done
    assert memory._tracker.deferred == []
    assert y[0].item() == 2.0
    with pytest.raises(NotImplementedError, match="record_stream takes CUDA tensors"):
        tl.ones(1).record_stream(side)
    with pytest.raises(TypeError, match="must be torch.cuda.Stream, not int"):
        y.record_stream(0)


def test_empty_cache_waits_for_deferred_frees():
    from tensorlib.cuda import memory
    side = cuda.Stream()
    x = tl.ones(1 << 12, device="cuda")
    x.record_stream(side)
    with cuda.stream(side):
        (x * 2).sum()
    del x
    assert memory._tracker.deferred
    cuda.empty_cache()
    assert memory._tracker.deferred == []


def test_device_context_and_device_of():
    x = tl.ones(2, device="cuda")
    with cuda.device(0):
        assert cuda.current_device() == 0
    with cuda.device(None), cuda.device(-1), cuda.device_of(tl.ones(2)):
        assert cuda.current_device() == 0
    with cuda.device_of(x), cuda.device("cuda:0"):
        assert cuda.current_device() == 0
    with pytest.raises(ValueError, match="Expected a cuda device, but got: cpu"):
        cuda.device("cpu")


def test_rng_state_round_trips_draws():
    tl.manual_seed(3)
    state = cuda.get_rng_state()
    assert state.dtype == tl.uint8 and state.device == tl.device("cpu") and state.dim() == 1
    a = tl.rand(5, device="cuda")
    b = tl.randn(3, device="cuda")
    cuda.set_rng_state(state)
    np.testing.assert_array_equal(tl.rand(5, device="cuda").cpu().numpy(), a.cpu().numpy())
    np.testing.assert_array_equal(tl.randn(3, device="cuda").cpu().numpy(), b.cpu().numpy())
    assert cuda.initial_seed() == 3
    states = cuda.get_rng_state_all()
    assert len(states) == cuda.device_count()
    c = tl.rand(4, device="cuda")
    cuda.set_rng_state_all(states)
    np.testing.assert_array_equal(tl.rand(4, device="cuda").cpu().numpy(), c.cpu().numpy())
    with pytest.raises(RuntimeError, match="RNG state is wrong size"):
        cuda.set_rng_state(state[:5])
    with pytest.raises(TypeError, match="RNG state must be a torch.ByteTensor"):
        cuda.set_rng_state(state.float())


def test_checkpoint_style_save_and_restore_reproduces_dropout():
    """utils.checkpoint saves the CUDA RNG state before the forward and restores it for the recompute."""
    x = tl.ones(64, device="cuda")
    saved = cuda.get_rng_state()
    first = tl.nn.functional.dropout(x, 0.5, training=True)
    cuda.set_rng_state(saved)
    again = tl.nn.functional.dropout(x, 0.5, training=True)
    np.testing.assert_array_equal(first.cpu().numpy(), again.cpu().numpy())


def test_seed_and_seed_all():
    cuda.manual_seed(7)
    assert cuda.initial_seed() == 7
    cuda.seed()                                   # a fresh random seed (7 again only by a 2**-63 chance)
    s = cuda.initial_seed()
    assert s != 7 and 0 <= s < 1 << 63
    cuda.seed_all()
    assert cuda.initial_seed() not in (7, s)


def test_memory_questions():
    free, total = cuda.mem_get_info()
    assert 0 < free <= total == cuda.get_device_properties(0).total_memory
    x = tl.ones(1000, device="cuda")
    nested = cuda.memory_stats_as_nested_dict()
    flat = cuda.memory_stats()
    assert nested["allocated_bytes"]["all"]["current"] == flat["allocated_bytes.all.current"] > 0
    assert nested["num_ooms"] == flat["num_ooms"]
    assert cuda.get_per_process_memory_fraction() == 1.0
    try:
        cuda.set_per_process_memory_fraction(0.5)
        assert cuda.get_per_process_memory_fraction() == pytest.approx(0.5)
        cuda.set_per_process_memory_fraction(0.0)
        with pytest.raises(cuda.OutOfMemoryError):
            tl.ones(1 << 20, device="cuda")
        assert cuda.get_per_process_memory_fraction() == 0.0
    finally:
        cuda.set_per_process_memory_fraction(1.0)
        _cupy().get_default_memory_pool().set_limit(size=0)
    with pytest.raises(TypeError, match="Invalid type for fraction argument, must be `float`"):
        cuda.set_per_process_memory_fraction(1)
    with pytest.raises(ValueError, match="Invalid fraction value: 1.5. Allowed range: 0~1"):
        cuda.set_per_process_memory_fraction(1.5)
    del x


def test_arch_list_init_capturing_and_ipc():
    archs = cuda.get_arch_list()
    major, minor = cuda.get_device_capability()
    assert all(a.startswith("sm_") for a in archs) and f"sm_{major}{minor}" in archs
    flags = cuda.get_gencode_flags()
    assert flags.split(" -gencode ")[0] == f"-gencode compute=compute_{archs[0][3:]},code={archs[0]}"
    cuda.init()
    assert cuda.is_initialized()
    assert cuda.is_current_stream_capturing() is False
    cuda.ipc_collect()
    text = cuda.list_gpu_processes()
    assert text == "pynvml module not found, please install nvidia-ml-py" or text.startswith("GPU:0")


@pytest.mark.real_gpu
def test_graph_capture_and_replay():
    """A CUDA graph captured on a side stream replays its kernels on new input values (needs real capture)."""
    static_in = tl.zeros(16, device="cuda")
    g = cuda.CUDAGraph()
    s = cuda.Stream()
    s.wait_stream(cuda.current_stream())
    with cuda.stream(s):
        static_out = (static_in * 2 + 1).sin()       # warm-up, as torch asks
    cuda.current_stream().wait_stream(s)
    with cuda.graph(g):
        static_out = (static_in * 2 + 1).sin()
    for v in (1.0, 3.0):
        static_in.copy_(tl.full((16,), v, device="cuda"))
        g.replay()
        cuda.synchronize()
        np.testing.assert_allclose(static_out.cpu().numpy(), np.sin(np.full(16, 2 * v + 1, np.float32)), rtol=1e-6)


@pytest.mark.real_gpu
def test_graph_capture_refuses_cublas_clearly():
    a = tl.ones(4, 4, device="cuda")
    g = cuda.CUDAGraph()
    with pytest.raises(RuntimeError, match="cuBLAS"):
        with cuda.graph(g):
            a @ a
    assert not cuda.is_current_stream_capturing()


def test_graph_capture_errors_the_fake_can_show():
    """What needs no replay: capture refused on the default stream, replay before a capture, a bad mode;
    under the fake, capture itself raises the fake's NotImplementedError (it cannot replay), and leaves
    neither the stream nor the memory tracker capturing."""
    from tensorlib.cuda import memory
    g = cuda.CUDAGraph()
    with pytest.raises(RuntimeError, match="CUDA graphs must be captured on a non-default stream"):
        g.capture_begin()
    with pytest.raises(RuntimeError, match="Called CUDAGraph::replay without a preceding successful capture."):
        g.replay()
    with pytest.raises(RuntimeError, match="Unknown capture error mode"):
        g.capture_begin(capture_error_mode="bogus")
    assert isinstance(cuda.graph_pool_handle(), object) and g.pool() is not None
    if getattr(_cupy(), "__fake__", False):
        with pytest.raises(NotImplementedError, match="stream capture"):
            with cuda.graph(g):
                pass
        assert memory._tracker.capture_held is None and cuda.current_stream().cuda_stream == 0


def test_a_stream_on_another_device_makes_it_current_inside():
    if cuda.device_count() < 2:
        pytest.skip("needs two CUDA devices (the fake has them with FAKECUPY_DEVICES=2)")
    s1 = cuda.Stream(device=1)
    assert s1.device == tl.device("cuda:1") and cuda.current_device() == 0
    with cuda.stream(s1):
        assert cuda.current_device() == 1 and cuda.current_stream(1) == s1
        assert tl.ones(3, device="cuda").device == tl.device("cuda:1")
    assert cuda.current_device() == 0
    with cuda.device(1):
        assert cuda.current_device() == 1
    assert cuda.current_device() == 0 and len(cuda.get_rng_state_all()) == cuda.device_count()
    ev = cuda.Event()
    ev.record(s1)
    with pytest.raises(RuntimeError, match="Event device 1 does not match recording stream's device 0."):
        ev.record(cuda.current_stream(0))
