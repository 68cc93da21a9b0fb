"""torch.nn.parallel: DataParallel and DistributedDataParallel.

`DataParallel` is torch's: on a CPU it runs the wrapped module; on CUDA it scatters the inputs along `dim`
over `device_ids` (tensors chunked, other values copied), replicates the module on each device (parameters
are differentiable copies, so gradients flow back to the module's own parameters on `device_ids[0]`;
buffers are copied, device_ids[0]'s replica shares the module's), runs the replicas and gathers the outputs
on `output_device`. The module sits under `.module`, so state-dict keys carry torch's `module.` prefix. The
replicas are run one after another from this thread (torch uses a thread per device): CuPy's kernels are
asynchronous, so the devices still compute at the same time. `DistributedDataParallel` (distributed.py)
averages gradients over a process group of tensorlib.distributed in buckets, as torch's.
"""
from __future__ import annotations

from ... import cuda as _cuda
from ..._device import device as _device
from ..._tensor import Tensor
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
        if not ids:
            self.device_ids = []
            return
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
        inputs, kwargs = scatter_kwargs(inputs, kwargs, self.device_ids, self.dim)
        if not inputs and not kwargs:
            inputs, kwargs = ((),), ({},)
        if len(self.device_ids) == 1:
            return self.module(*inputs[0], **kwargs[0])
        replicas = replicate(self.module, self.device_ids[:len(inputs)])
        outputs = parallel_apply(replicas, inputs, kwargs, self.device_ids[:len(replicas)])
        return gather(outputs, self.output_device, self.dim)


def _chunks(t, n, dim):
    return list(t.chunk(n, dim))


def scatter(inputs, target_gpus, dim=0):
    """torch.nn.parallel.scatter: tensors chunked along `dim`, one chunk per device; tuples, lists and dicts
    scattered element-wise; anything else copied to every device."""
    def go(obj):
        if isinstance(obj, Tensor):
            return [c.to(_device("cuda", d)) for c, d in zip(_chunks(obj, len(target_gpus), dim), target_gpus)]
        if isinstance(obj, tuple) and obj:
            return list(zip(*map(go, obj)))
        if isinstance(obj, list) and obj:
            return [list(x) for x in zip(*map(go, obj))]
        if isinstance(obj, dict) and obj:
            return [type(obj)(x) for x in zip(*map(go, obj.items()))]
        return [obj for _ in target_gpus]
    return go(inputs)


def scatter_kwargs(inputs, kwargs, target_gpus, dim=0):
    scattered = scatter(inputs, target_gpus, dim) if inputs else []
    kw = scatter(kwargs, target_gpus, dim) if kwargs else []
    if len(scattered) < len(kw):
        scattered.extend(() for _ in range(len(kw) - len(scattered)))
    elif len(kw) < len(scattered):
        kw.extend({} for _ in range(len(scattered) - len(kw)))
    return tuple(tuple(x) for x in scattered), tuple(kw)


def replicate(network, devices):
    """torch.nn.parallel.replicate: one copy of `network` per device, sharing its structure. Parameters are
    `param.to(device)` (autograd carries their gradients back); buffers are copied without history. On the
    module's own device the copies are the module's tensors themselves."""
    devs = [_device("cuda", _index(d)) for d in devices]
    modules = list(network.modules())
    replicas = []
    for dev in devs:
        made = {}
        for m in modules:
            r = object.__new__(type(m))
            r.__dict__ = m.__dict__.copy()
            object.__setattr__(r, "_parameters", type(m._parameters)(m._parameters))
            object.__setattr__(r, "_buffers", type(m._buffers)(m._buffers))
            object.__setattr__(r, "_modules", type(m._modules)(m._modules))
            made[id(m)] = r
        for m in modules:
            r = made[id(m)]
            for k, p in m._parameters.items():
                r._parameters[k] = None if p is None else (p if p.device == dev else p.to(dev))
            for k, b in m._buffers.items():
                r._buffers[k] = None if b is None else (b if b.device == dev else b.detach().to(dev))
            for k, c in m._modules.items():
                r._modules[k] = None if c is None else made[id(c)]
        replicas.append(made[id(network)])
    return replicas


def parallel_apply(modules, inputs, kwargs_tup=None, devices=None):
    """torch.nn.parallel.parallel_apply: module i on inputs i, with device i current."""
    from ..._device import cupy
    kwargs_tup = kwargs_tup or ({},) * len(modules)
    outputs = []
    for i, (m, inp, kw) in enumerate(zip(modules, inputs, kwargs_tup)):
        if devices is not None:
            index = _index(devices[i])
        else:
            p = next(iter(m.parameters()), None)
            index = p.device.index if p is not None else i
        with cupy().cuda.Device(index or 0):
            outputs.append(m(*inp, **kw))
    return outputs


def gather(outputs, target_device, dim=0):
    """torch.nn.parallel.gather: tensors concatenated along `dim` on `target_device` (0-d ones stacked, with
    torch's warning); tuples, lists and dicts gathered element-wise."""
    dev = _device("cpu") if target_device == -1 else _device("cuda", _index(target_device))

    def go(outs):
        first = outs[0]
        if isinstance(first, Tensor):
            from ... import ops
            if all(o.dim() == 0 for o in outs) and dim == 0:
                import warnings
                warnings.warn("Was asked to gather along dimension 0, but all input tensors were scalars; will "
                              "instead unsqueeze and return a vector.", stacklevel=4)
                outs = [o.reshape(1) for o in outs]
            return ops.cat([o.to(dev) for o in outs], dim)
        if first is None:
            return None
        if isinstance(first, dict):
            return type(first)((k, go([o[k] for o in outs])) for k in first)
        if isinstance(first, (tuple, list)):
            return type(first)(map(go, zip(*outs)))
        return first
    return go(outputs)


from .distributed import DistributedDataParallel  # noqa: E402
