"""Memory API: CPU bytes of live tensors (on demand, shared buffers once), the CUDA tracker's counters
(driven by a fake pool here), and torch's zero answers while CUDA is absent."""
import gc

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


class FakePool:
    """CuPy MemoryPool's counters with 512-byte rounding and a cache of freed blocks."""

    def __init__(self):
        self.used = 0
        self.total = 0

    def malloc(self, size):
        size = -(-size // 512) * 512
        if size > 10_000:
            raise MemoryError("out of memory")
        self.used += size
        self.total = max(self.total, self.used)
        return size

    def free(self, size):
        self.used -= size

    def used_bytes(self):
        return self.used

    def total_bytes(self):
        return self.total

    def free_all_blocks(self):
        self.total = self.used


def test_tracker_peaks_totals_and_ooms():
    pool = FakePool()
    t = Tracker(pool, lambda: 0)
    a = t.malloc(1000)     # 1024
    b = t.malloc(3000)     # 3072
    pool.free(b)
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
    tl.cuda.empty_cache()
    assert tl.cuda.memory_reserved() == tl.cuda.memory_allocated()


def test_install_wires_the_tracker_as_cupy_allocator(monkeypatch):
    """_install (run by _device when CuPy first initialises) puts Tracker.malloc in front of the pool."""
    import types

    from tensorlib import _device
    from tensorlib.cuda import memory as M

    pool = FakePool()
    installed = []

    class OOM(Exception):
        pass
    fake = types.SimpleNamespace(
        get_default_memory_pool=lambda: pool,
        cuda=types.SimpleNamespace(runtime=types.SimpleNamespace(getDevice=lambda: 0),
                                   memory=types.SimpleNamespace(OutOfMemoryError=OOM),
                                   set_allocator=installed.append))
    monkeypatch.setattr(M, "_tracker", None)
    assert M._install in _device.on_cupy_init
    M._install(fake)
    assert len(installed) == 1
    installed[0](700)                     # an allocation through the installed allocator
    assert M._tracker.stats(0)["allocated_bytes.all.peak"] == 1024
    M._install(fake)                      # idempotent
    assert len(installed) == 1
