"""Memory API: CPU bytes of live tensors (on demand, shared buffers once), the CUDA tracker's counters
(driven by a fake pool here), and torch's zero answers while CUDA is absent."""
import gc
import threading
import types

import pytest

import tensorlib as tl
from tensorlib.cuda.memory import Tracker


def _baseline():
    gc.collect()
    return tl.memory_allocated("cpu")


def test_cpu_counts_live_tensors_and_shared_buffers_once():
    base = _baseline()
    a = tl.zeros(1000)                      # 4000 bytes
    views = [a[10:], a.detach(), a.reshape(10, 100), a.t() if a.ndim == 2 else a[::2]]
    assert tl.memory_allocated("cpu") - base == 4000
    b = tl.ones(250, dtype=tl.float64)       # 2000 bytes
    assert tl.memory_allocated() - base == 6000
    del a, views
    gc.collect()
    assert tl.memory_allocated("cpu") - base == 2000
    del b


def test_cpu_peak_and_reset():
    base = _baseline()
    tl.reset_peak_memory_stats("cpu")
    x = tl.zeros(10_000)
    assert tl.memory_allocated("cpu") - base == 40_000
    del x
    gc.collect()
    assert tl.memory_allocated("cpu") == base
    assert tl.max_memory_allocated("cpu") >= base + 40_000
    tl.reset_peak_memory_stats("cpu")
    assert tl.max_memory_allocated("cpu") == base
    st = tl.memory_stats("cpu")
    assert st["allocated_bytes.all.current"] == st["reserved_bytes.all.current"] == base
    assert tl.memory_reserved("cpu") == base


def test_cuda_queries_are_zero_without_cuda_like_torch():
    if tl.cuda.is_available():
        pytest.skip("CUDA is available here")
    assert tl.cuda.memory_allocated() == 0 and tl.cuda.max_memory_reserved() == 0
    assert tl.cuda.memory_stats() == {} and tl.memory_allocated("cuda") == 0
    tl.cuda.empty_cache()
    for fn in (tl.cuda.reset_peak_memory_stats, tl.cuda.memory_summary):
        with pytest.raises(RuntimeError, match="CUDA is not available"):
            fn()


class _PoolPointer:
    """The pool's pointer: its block goes back to the pool when it dies (CuPy's PooledMemory)."""

    def __init__(self, pool, size):
        self.pool, self.mem, self.ptr = pool, types.SimpleNamespace(size=size), 0x1000 + pool.total

    def __del__(self):
        self.pool.used -= self.mem.size


class FakePool:
    """CuPy MemoryPool's counters with 512-byte rounding; counts the calls of used_bytes()."""

    def __init__(self):
        self.used = 0
        self.total = 0
        self.used_calls = 0

    def malloc(self, size):
        size = -(-size // 512) * 512
        if size > 10_000:
            raise MemoryError("out of memory")
        self.used += size
        self.total = max(self.total, self.used)
        return _PoolPointer(self, size)

    def used_bytes(self):
        self.used_calls += 1
        return self.used

    def total_bytes(self):
        return self.total

    def free_all_blocks(self):
        self.total = self.used


def _wrap(ptr, size, owner, dev):
    """CuPy's MemoryPointer(UnownedMemory(ptr, size, owner, dev), 0), as far as the tracker needs."""
    return types.SimpleNamespace(ptr=ptr, size=size, owner=owner, device_id=dev)


def test_tracker_peaks_totals_and_ooms():
    pool = FakePool()
    t = Tracker(pool, lambda: 0, wrap=_wrap)
    a = t.malloc(1000)     # 1024
    b = t.malloc(3000)     # 3072
    del b
    c = t.malloc(100)      # 512
    st = t.stats(0)
    assert st["allocated_bytes.all.current"] == 1536
    assert st["allocated_bytes.all.peak"] == 4096
    assert st["allocated_bytes.all.allocated"] == 4608 and st["allocated_bytes.all.freed"] == 3072
    assert st["reserved_bytes.all.current"] == 4096 and st["reserved_bytes.all.peak"] == 4096
    assert st["allocation.all.allocated"] == 3
    with pytest.raises(MemoryError):
        t.malloc(20_000)
    assert t.stats(0)["num_ooms"] == 1
    pool.free_all_blocks()
    t.reset_peaks(0)
    st = t.stats(0)
    assert st["allocated_bytes.all.peak"] == 1536 and st["reserved_bytes.all.peak"] == 1536
    del a, c


def test_tracker_hears_frees_on_any_thread_and_reads_no_pool_counter_per_malloc():
    """The allocator is process-wide (CuPy's memory hooks are per thread), and each block's owner reports
    its free wherever it dies. The count is the tracker's own: MemoryPool.used_bytes() sums every live
    chunk under the pool's lock on CuPy 13, and was called twice per allocation."""
    pool = FakePool()
    t = Tracker(pool, lambda: 0, wrap=_wrap)
    heard = []
    assert t.listen(lambda *a: heard.append(a)) == {0: 0}
    calls = pool.used_calls
    blocks = []
    worker = threading.Thread(target=lambda: blocks.extend(t.malloc(1000) for _ in range(10)))
    worker.start()
    worker.join()
    assert pool.used_calls == calls and pool.used == 10 * 1024
    worker = threading.Thread(target=blocks.clear)
    worker.start()
    worker.join()
    assert [n for _, n, _ in heard] == [1024] * 10 + [-1024] * 10 and pool.used == 0
    assert t.stats(0)["allocated_bytes.all.current"] == 0 and t.stats(0)["allocated_bytes.all.peak"] == 10 * 1024
    assert len({p for _, _, p in heard}) == 10


def test_tracker_corrects_its_count_for_blocks_from_before_it():
    """A block allocated before the tracker (user code on CuPy first) is freed unseen: the count follows
    the pool's figure again when it is read with nothing under way."""
    pool = FakePool()
    early = pool.malloc(2000)                     # 2048, before tracking
    t = Tracker(pool, lambda: 0, wrap=_wrap)
    x = t.malloc(512)
    assert t.current(0) == 2560
    del early
    assert t.current(0) == 512 and t.stats(0)["allocated_bytes.all.current"] == 512
    del x
    assert t.current(0) == 0


def test_summary_formatting_matches_torch_units():
    from tensorlib.cuda.memory import _fmt_size
    assert _fmt_size(512) == "   512 B  "
    assert _fmt_size(2 * 1024 * 1024) == "  2048 KiB"
    assert _fmt_size(5 * 1024 ** 3) == "  5120 MiB"


@pytest.mark.cuda
def test_cuda_memory_follows_tensors():
    if not tl.cuda.is_available():
        pytest.skip("needs an NVIDIA GPU with CuPy")
    tl.cuda.empty_cache()
    before = tl.cuda.memory_allocated()
    tl.cuda.reset_peak_memory_stats()
    x = tl.zeros(1 << 20, device="cuda")            # 4 MiB
    assert tl.cuda.memory_allocated() - before == 4 << 20
    del x
    assert tl.cuda.memory_allocated() == before
    assert tl.cuda.max_memory_allocated() - before >= 4 << 20
    assert tl.cuda.memory_reserved() >= 4 << 20
    assert "Allocated memory" in tl.cuda.memory_summary()
    # empty_cache gives the driver back the cached blocks no tensor uses: a 64 MiB block (a chunk of its
    # own) all of it. Not reserved == allocated: a pool chunk split between a live and a freed block stays
    y = tl.zeros(1 << 24, device="cuda")
    del y
    reserved = tl.cuda.memory_reserved()
    tl.cuda.empty_cache()
    assert reserved - tl.cuda.memory_reserved() >= 64 << 20
    assert tl.cuda.memory_reserved() >= tl.cuda.memory_allocated()


def test_install_wires_the_tracker_as_cupy_allocator(monkeypatch):
    """_install (run by _device when CuPy first initialises) puts Tracker.malloc in front of the pool."""
    from tensorlib import _device
    from tensorlib.cuda import memory as M

    pool = FakePool()
    installed = []

    class OOM(Exception):
        pass
    fake = types.SimpleNamespace(
        get_default_memory_pool=lambda: pool,
        cuda=types.SimpleNamespace(runtime=types.SimpleNamespace(getDevice=lambda: 0),
                                   memory=types.SimpleNamespace(OutOfMemoryError=OOM, UnownedMemory=_wrap,
                                                                MemoryPointer=lambda mem, off: mem),
                                   set_allocator=installed.append))
    monkeypatch.setattr(M, "_tracker", None)
    assert M._install in _device.on_cupy_init
    M._install(fake)
    assert len(installed) == 1
    installed[0](700)                     # an allocation through the installed allocator
    assert M._tracker.stats(0)["allocated_bytes.all.peak"] == 1024
    M._install(fake)                      # idempotent
    assert len(installed) == 1
