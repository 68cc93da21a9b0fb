"""torch.cuda's CUDA graphs (CUDAGraph, graph, graph_pool_handle) on CuPy's stream capture:
`cupy.cuda.Stream.begin_capture` / `end_capture` give a `cupy.cuda.graph.Graph`, which `launch` replays.

What capture records: the kernels tensorlib queues on the capturing stream (inside `with graph(g):`, a
side stream, as torch requires), which a replay runs again on the same memory: change a captured input
in place (`static_in.copy_(...)`) and replay to get the new output in the captured output tensor.

Memory: a replay writes to the addresses the kernels had at capture, those of intermediates freed during
capture too. torch gives each graph a private memory pool for this; CuPy's pool has none, so every block
allocated during a capture is held (not given back to the pool, whoever frees it) until the graph is reset
or collected. `pool=` and `graph_pool_handle()` are accepted for torch's API; graphs do not share memory.

Limits, CuPy's: nothing may wait for the GPU during capture (`.item()`, `.cpu()`, printing, a boolean
mask; CuPy raises), and CuPy refuses library calls during capture: cuBLAS (matmul, linear layers),
cuSOLVER, cuRAND and cuSPARSE raise NotImplementedError. tensorlib turns those into a RuntimeError that
names the limitation, after ending the capture; nothing runs uncaptured. The fake CuPy (tests/fakecupy)
cannot replay work and refuses capture: the tests that capture need a GPU.
"""
from __future__ import annotations

from .._device import cupy
from . import memory
from .streams import Stream, stream as stream_ctx

__all__ = ["CUDAGraph", "graph", "graph_pool_handle"]

_MODES = {"global": "streamCaptureModeGlobal", "thread_local": "streamCaptureModeThreadLocal",
          "relaxed": "streamCaptureModeRelaxed"}
_LIBRARIES = ("cuBLAS", "cuSOLVER", "cuRAND", "cuSPARSE")


class _PoolHandle:
    """graph_pool_handle()'s opaque token (graphs here do not share memory; see the module docstring)."""

    __slots__ = ()


def graph_pool_handle():
    """torch.cuda.graph_pool_handle: a token to pass as `pool=` (accepted; each graph keeps its own memory)."""
    cupy()
    return _PoolHandle()


class CUDAGraph:
    """torch.cuda.CUDAGraph: work captured from a stream (capture_begin/capture_end), replayed by replay()."""

    def __init__(self, keep_graph: bool = False):
        cupy()
        self.keep_graph = keep_graph
        self._graph = None
        self._stream = None               # the capturing CuPy stream, between capture_begin and capture_end
        self._held: list = []             # the pool blocks allocated during capture, held for replays

    def capture_begin(self, pool=None, capture_error_mode: str = "global") -> None:
        """Begin capturing the current stream's work (it must not be the default stream)."""
        cp = cupy()
        if capture_error_mode not in _MODES:
            raise RuntimeError(f"Unknown capture error mode. Expected `global`, `thread_local`, or `relaxed`, "
                               f"got {capture_error_mode}")
        s = cp.cuda.get_current_stream()
        if s.ptr == 0:
            raise RuntimeError("CUDA graphs must be captured on a non-default stream. (However, after capture, "
                               "it's ok to replay them on the default stream.)")
        if self._graph is not None or self._stream is not None:
            raise RuntimeError("This CUDAGraph instance already owns a captured graph. To capture a new graph, "
                               "create a new instance.")
        memory._ready()
        tracker = memory._tracker
        assert tracker is not None, "_ready() installs the tracker"
        tracker.hold_for_capture(self._held)
        try:
            s.begin_capture(getattr(cp.cuda.runtime, _MODES[capture_error_mode]))
        except BaseException:
            tracker.hold_for_capture(None)
            raise
        self._stream = s

    def capture_end(self) -> None:
        """End the capture begun on the current stream; the graph is then ready to replay."""
        cp = cupy()
        if self._stream is None:
            raise RuntimeError("capture_end() called without a capture_begin() on this CUDAGraph")
        if cp.cuda.get_current_stream().ptr != self._stream.ptr:
            raise RuntimeError("Capture must end on the same stream it began on.")
        try:
            self._graph = self._stream.end_capture()
        finally:
            if memory._tracker is not None:
                memory._tracker.hold_for_capture(None)
            self._stream = None

    def _abort(self) -> None:
        """End a capture that failed (CuPy raised inside it), dropping what it captured."""
        if self._stream is None:
            return
        try:
            self._stream.end_capture()
        except Exception:  # noqa: BLE001 - an invalidated capture raises on end; it has ended all the same
            pass
        finally:
            if memory._tracker is not None:
                memory._tracker.hold_for_capture(None)
            self._stream = None
            self._held.clear()

    def replay(self) -> None:
        """Run the captured work again, on the current stream."""
        if self._graph is None:
            raise RuntimeError("Called CUDAGraph::replay without a preceding successful capture.")
        self._graph.launch(cupy().cuda.get_current_stream())

    def instantiate(self) -> None:
        """torch's explicit instantiation (keep_graph=True): CuPy instantiates at end_capture; nothing to do."""
        if self._graph is None:
            raise RuntimeError("Called CUDAGraph::instantiate without a preceding successful capture.")

    def reset(self) -> None:
        """Drop the graph and the memory held for it; the instance may capture again."""
        self._graph = None
        self._held.clear()

    def pool(self):
        """A token for torch's pool sharing (accepted by `graph(pool=)`; graphs do not share memory here)."""
        return _PoolHandle()


class graph:
    """torch.cuda.graph: capture the block's work into `cuda_graph`, on `stream` (default: a side stream
    made once), after synchronising and emptying the cache as torch does."""

    default_capture_stream = None

    def __init__(self, cuda_graph, pool=None, stream=None, capture_error_mode: str = "global",
                 enable_annotations: bool = False, check_input_liveness: bool = False):
        if stream is None and graph.default_capture_stream is None:
            graph.default_capture_stream = Stream()
        self.pool = () if pool is None else (pool,)
        self.capture_stream = stream if stream is not None else graph.default_capture_stream
        self.stream_ctx = stream_ctx(self.capture_stream)
        self.cuda_graph = cuda_graph
        self.capture_error_mode = capture_error_mode

    def __enter__(self):
        cp = cupy()
        cp.cuda.runtime.deviceSynchronize()         # torch.cuda.synchronize() and empty_cache(), as torch's
        memory.empty_cache()
        self.stream_ctx.__enter__()
        try:
            self.cuda_graph.capture_begin(*self.pool, capture_error_mode=self.capture_error_mode)
        except BaseException:
            self.stream_ctx.__exit__(None, None, None)
            raise

    def __exit__(self, exc_type, exc, tb):
        try:
            if exc is None:
                self.cuda_graph.capture_end()
                return False
            self.cuda_graph._abort()
            if isinstance(exc, NotImplementedError) and any(lib in str(exc) for lib in _LIBRARIES):
                lib = next(lib for lib in _LIBRARIES if lib in str(exc))
                raise RuntimeError(
                    f"CUDA graph capture failed: CuPy cannot capture {lib} calls (CuPy refuses library calls "
                    f"during stream capture); tensorlib ops that use {lib} (matmul and linear layers use cuBLAS) "
                    f"cannot run inside torch.cuda.graph here. CuPy said: {exc}") from exc
            return False
        finally:
            self.stream_ctx.__exit__(exc_type, exc, tb)
