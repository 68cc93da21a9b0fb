"""tensorlib.cuda: device queries backed by CuPy, imported only when asked. Without CuPy or a GPU,
is_available() is False and the rest raise a clear error."""
from __future__ import annotations

from .._device import CUDA_INSTALL_HINT, cupy, cupy_or_none
from .._hooks import range_enter, range_exit


def is_available() -> bool:
    return cupy_or_none() is not None


def device_count() -> int:
    cp = cupy_or_none()
    return 0 if cp is None else cp.cuda.runtime.getDeviceCount()


def _cp():
    return cupy()


def current_device() -> int:
    return _cp().cuda.runtime.getDevice()


def set_device(device):
    from .._device import to_device
    d = to_device(device)
    if d.type != "cuda":
        return
    _cp().cuda.runtime.setDevice(d.index)


def get_device_name(device=None) -> str:
    return get_device_properties(device).name


class _Props:
    def __init__(self, p, idx):
        name = p["name"]
        self.name = name.decode() if isinstance(name, bytes) else name
        self.total_memory = p["totalGlobalMem"]
        self.major = p["major"]
        self.minor = p["minor"]
        self.multi_processor_count = p["multiProcessorCount"]
        self.index = idx

    def __repr__(self):
        return (f"_CudaDeviceProperties(name='{self.name}', major={self.major}, minor={self.minor}, "
                f"total_memory={self.total_memory // (1024 * 1024)}MB, "
                f"multi_processor_count={self.multi_processor_count})")


def get_device_properties(device=None):
    cp = _cp()
    idx = _index(device)
    return _Props(cp.cuda.runtime.getDeviceProperties(idx), idx)


def get_device_capability(device=None):
    p = get_device_properties(device)
    return p.major, p.minor


def _index(device):
    if device is None:
        return current_device()
    if isinstance(device, int):
        return device
    from .._device import to_device
    return to_device(device).index


def synchronize(device=None):
    """Wait for all the work queued on the device, on every stream (also frees the memory that
    Tensor.record_stream held back for those streams)."""
    cp = _cp()
    tok = range_enter("cudaDeviceSynchronize", "sync")
    try:
        with cp.cuda.Device(_index(device)):
            cp.cuda.runtime.deviceSynchronize()
    finally:
        range_exit(tok)
    from . import memory
    if memory._tracker is not None:
        memory._tracker.release_deferred()


def init() -> None:
    """torch.cuda.init: initialise CUDA now (CuPy, the memory tracking) rather than at first use."""
    from . import memory
    _cp()
    memory._ready()


class device:
    """torch.cuda.device: a context manager that makes `device` (an index, "cuda:N", a device) current
    inside the block; None or a negative index does nothing."""

    def __init__(self, device):
        self.idx = _optional_index(device)
        self.prev_idx = -1

    def __enter__(self):
        if self.idx < 0:
            self.prev_idx = -1
            return
        rt = _cp().cuda.runtime
        self.prev_idx = rt.getDevice()
        if self.prev_idx != self.idx:
            rt.setDevice(self.idx)

    def __exit__(self, *exc):
        if self.prev_idx >= 0 and self.prev_idx != self.idx:
            _cp().cuda.runtime.setDevice(self.prev_idx)
        return False


class device_of(device):
    """torch.cuda.device_of: `device` for the device of a tensor (a CPU tensor: does nothing)."""

    def __init__(self, obj):
        super().__init__(obj.get_device() if obj.is_cuda else -1)


def _optional_index(d) -> int:
    """torch's _get_device_index(d, optional=True) for the device context: -1 for None."""
    if d is None:
        return -1
    if isinstance(d, int):
        return d
    from .._device import device as _dev
    dev = d if isinstance(d, _dev) else _dev(d)
    if dev.type != "cuda":
        raise ValueError(f"Expected a cuda device, but got: {dev}")
    return _index(dev)


def is_current_stream_capturing() -> bool:
    """Whether the current stream is capturing a CUDA graph (CuPy's Stream.is_capturing)."""
    return bool(_cp().cuda.get_current_stream().is_capturing())


def ipc_collect() -> None:
    """torch.cuda.ipc_collect: frees memory kept for CUDA tensors shared with other processes. tensorlib
    shares none (its shared tensors are CPU ones), so there is nothing to collect: as torch's with IPC
    unused, it only initialises CUDA."""
    init()


def get_arch_list() -> list:
    """The GPU architectures this install can run kernels on: CuPy compiles its kernels at run time with
    NVRTC, for the device's architecture, so the list is NVRTC's supported ones (sm_50, ..., sm_90, ...);
    [] without CUDA, as torch's."""
    if not is_available():
        return []
    from cupy.cuda import nvrtc
    return [f"sm_{a}" for a in nvrtc.getSupportedArchs()]


def get_gencode_flags() -> str:
    """get_arch_list as nvcc's -gencode flags, as torch writes them ("" without CUDA)."""
    arch_list = [arch.split("_") for arch in get_arch_list()]
    return " ".join(f"-gencode compute=compute_{arch},code={kind}_{arch}" for kind, arch in arch_list)


def list_gpu_processes(device=None) -> str:
    """The processes using the device and their memory, as torch prints them, from NVML (pynvml, from the
    nvidia-ml-py package, optional: without it torch's message). The device is found by its PCI bus id,
    so CUDA_VISIBLE_DEVICES' renumbering does not matter."""
    try:
        import pynvml  # type: ignore[import-not-found]  # optional (nvidia-ml-py)
    except ModuleNotFoundError:
        return "pynvml module not found, please install nvidia-ml-py"
    try:
        pynvml.nvmlInit()
    except pynvml.NVMLError_DriverNotLoaded:
        return "cuda driver can't be loaded, is cuda enabled?"
    cp = _cp()
    idx = _index(device)
    handle = pynvml.nvmlDeviceGetHandleByPciBusId(cp.cuda.Device(idx).pci_bus_id)
    procs = pynvml.nvmlDeviceGetComputeRunningProcesses(handle)
    lines = [f"GPU:{idx}"]
    if len(procs) == 0:
        lines.append("no processes are running")
    for p in procs:
        mem = p.usedGpuMemory / (1024 * 1024)
        lines.append(f"process {p.pid:>10d} uses {mem:>12.3f} MB GPU memory")
    return "\n".join(lines)


def manual_seed(seed):
    """torch.cuda.manual_seed: the current device's generator only (not the CPU's, not other devices')."""
    from .. import random
    if is_available():
        random.cuda_generator(current_device()).manual_seed(seed)


def manual_seed_all(seed):
    """torch.cuda.manual_seed_all: every device's generator, including those first used later."""
    from .. import random
    random.manual_seed_all(seed)


def is_bf16_supported(including_emulation: bool = True) -> bool:
    """torch.cuda.is_bf16_supported: False here, on any GPU. tensorlib's CUDA tensors live in CuPy arrays and
    CuPy has no bfloat16 dtype, so a program that picks bfloat16 when this says True (nanoGPT's default dtype)
    takes float16 instead, which works. Like torch, False without CUDA too."""
    return False


def is_initialized() -> bool:
    from .. import _device
    return _device._cupy is not None


__all__ = ["is_available", "device_count", "current_device", "set_device", "get_device_name", "synchronize",
           "get_device_properties", "get_device_capability", "manual_seed", "manual_seed_all", "CUDA_INSTALL_HINT",
           "is_bf16_supported", "init", "device", "device_of", "is_current_stream_capturing", "ipc_collect",
           "get_arch_list", "get_gencode_flags", "list_gpu_processes"]

from .memory import (OutOfMemoryError, empty_cache, get_per_process_memory_fraction, max_memory_allocated,  # noqa: E402
                     max_memory_reserved, mem_get_info, memory_allocated, memory_reserved, memory_snapshot,
                     memory_stats, memory_stats_as_nested_dict, memory_summary, reset_max_memory_allocated,
                     reset_peak_memory_stats, set_per_process_memory_fraction)

__all__ += ["memory_allocated", "max_memory_allocated", "memory_reserved", "max_memory_reserved",
            "reset_peak_memory_stats", "reset_max_memory_allocated", "empty_cache", "memory_stats", "memory_summary",
            "memory_stats_as_nested_dict", "mem_get_info", "set_per_process_memory_fraction",
            "get_per_process_memory_fraction", "memory_snapshot"]
from .random import (get_rng_state, get_rng_state_all, initial_seed, seed, seed_all, set_rng_state,  # noqa: E402
                     set_rng_state_all)
from .streams import (Event, ExternalStream, Stream, StreamContext, current_stream, default_stream,  # noqa: E402
                      set_stream, stream)
from .graphs import CUDAGraph, graph, graph_pool_handle  # noqa: E402

__all__ += ["get_rng_state", "get_rng_state_all", "set_rng_state", "set_rng_state_all", "seed", "seed_all",
            "initial_seed", "Stream", "ExternalStream", "Event", "StreamContext", "current_stream", "default_stream",
            "set_stream", "stream", "CUDAGraph", "graph", "graph_pool_handle"]
from . import nvtx  # noqa: E402 - torch.cuda.nvtx (NVTX needs no GPU)
from . import _memory_viz  # noqa: E402 - torch.cuda._memory_viz's plots (pure Python)


def __getattr__(name):
    """`torch.cuda.amp` after a plain `import torch` (nanoGPT): the deprecated aliases, loaded on first use."""
    if name == "amp":
        import importlib
        return importlib.import_module(".amp", __name__)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
