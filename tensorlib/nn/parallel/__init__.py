"""torch.nn.parallel: DataParallel and DistributedDataParallel.

`DataParallel` is torch's on a CPU or a single CUDA device: it runs the wrapped module (moving inputs to
`device_ids[0]`), with the module under `.module` so state-dict keys carry torch's `module.` prefix.
Replicas over several devices are not built yet and are refused at construction, never run on one device
while claiming several. `DistributedDataParallel` (distributed.py) averages gradients over a process group
of tensorlib.distributed in buckets, as torch's.
"""
from __future__ import annotations

from ... import cuda as _cuda
from ..._device import device as _device
from ..._tensor_base import Tensor
from ..modules.module import Module

__all__ = ["DataParallel", "DistributedDataParallel"]


def _index(d) -> int:
    return d if isinstance(d, int) else _device(d).index or 0


class DataParallel(Module):
    def __init__(self, module, device_ids=None, output_device=None, dim=0):
        super().__init__()
        self.module = module
        self.dim = dim
        if not _cuda.is_available():
            self.device_ids = []
            return
        ids = list(range(_cuda.device_count())) if device_ids is None else [_index(d) for d in device_ids]
        if len(ids) > 1:
            raise NotImplementedError(
                f"DataParallel over {len(ids)} devices: tensorlib does not replicate modules across devices "
                f"yet; pass device_ids=[{ids[0]}] to run on one device")
        self.device_ids = ids
        self.output_device = _index(output_device) if output_device is not None else ids[0]
        self.src_device_obj = _device("cuda", ids[0])

    def forward(self, *inputs, **kwargs):
        if not self.device_ids:
            return self.module(*inputs, **kwargs)
        dev = self.src_device_obj
        for t in (*self.module.parameters(), *self.module.buffers()):
            if t.device != dev:
                raise RuntimeError(f"module must have its parameters and buffers on device {dev} (device_ids[0]) "
                                   f"but found one of them on device: {t.device}")
        move = lambda v: v.to(dev) if isinstance(v, Tensor) else v  # noqa: E731
        return self.module(*map(move, inputs), **{k: move(v) for k, v in kwargs.items()})


from .distributed import DistributedDataParallel  # noqa: E402
