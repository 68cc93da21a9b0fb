"""torch.nn.parallel.DistributedDataParallel on tensorlib.distributed.

At construction the module's parameters and buffers are broadcast from rank 0, and the parameters that require
grad are assigned to buckets in reverse registration order (roughly the order backward produces their
gradients): with bucket_cap_mb unset the first bucket holds up to 1 MiB and the others up to 25 MiB, as
torch's; a given bucket_cap_mb caps them all, one dtype per bucket. During backward a hook on each parameter
writes its accumulated gradient, divided by the world size, into its bucket's flat buffer (one pass); when a
bucket is full it is all-reduced asynchronously, buckets launched strictly in index order so that every rank
issues the same collectives in the same order. The all-reduces run on the process group's worker thread while
backward goes on (a trace shows ``mpi:all_reduce`` on that thread beside the backward ops). When backward
ends, the works are waited for and each parameter's ``.grad`` is overwritten with its averaged slice; with
`gradient_as_bucket_view=True` (torch's option) each ``.grad`` becomes a view of its slice instead: no copy out
and no second set of gradient buffers (7-10 ms of CPU less per rank and step on benchmarks/distributed.py's
MLP, of 30-40 over its compute); as in torch, the gradients then share the buckets' memory from step to step.

`no_sync()` skips the reduction (gradients accumulate locally; the next synchronised backward reduces the
accumulated sums). `find_unused_parameters=True` all-reduces a used-parameter map after the last bucket, so
a parameter used on some rank only still gets the average, and one used on none keeps its gradient; with
False, a parameter that gets no gradient leaves the reduction unfinished and the next forward raises
torch's error.
"""
from __future__ import annotations

import contextlib
import weakref

import numpy as np

from ... import distributed as dist
from ... import dispatch as _dispatch
from ...autograd.grad_mode import is_grad_enabled
from ...dispatch import bump_version, record_range
from ..._tensor import Tensor
from ..modules.module import Module

__all__ = ["DistributedDataParallel"]

_FIRST_BUCKET_BYTES = 1024 * 1024        # torch's dist._DEFAULT_FIRST_BUCKET_BYTES
_DEFAULT_BUCKET_MB = 25


def _wrap(a):
    t = object.__new__(Tensor)
    t._data = a
    return t


def _xp(a):
    """NumPy for host arrays, CuPy (on the array's device) for CUDA ones."""
    return np if type(a) is np.ndarray else _dispatch_cupy()


def _dispatch_cupy():
    from ..._device import cupy
    return cupy()


class _Bucket:
    __slots__ = ("params", "offsets", "flat", "tensor", "views", "pending", "work", "index", "xp")

    def __init__(self, index, params, dtype):
        self.index = index
        self.params = params
        self.offsets = np.cumsum([0] + [p.numel() for p in params]).tolist()
        xp = self.xp = _xp(params[0]._data)
        if xp is np:
            self.flat = np.zeros(self.offsets[-1], dtype)
        else:
            with xp.cuda.Device(params[0]._data.device.id):
                self.flat = xp.zeros(self.offsets[-1], dtype)
        self.tensor = _wrap(self.flat)
        self.views = None           # gradient_as_bucket_view: each parameter's slice, a view of `tensor`
        self.pending = len(params)
        self.work = None


class DistributedDataParallel(Module):
    def __init__(self, module, device_ids=None, output_device=None, dim=0, broadcast_buffers=True,
                 init_sync=True, process_group=None, bucket_cap_mb=None, find_unused_parameters=False,
                 check_reduction=False, gradient_as_bucket_view=False, static_graph=False,
                 delay_all_reduce_named_params=None, param_to_hook_all_reduce=None, mixed_precision=None,
                 device_mesh=None, skip_all_reduce_unused_params=False):
        super().__init__()
        pg = dist._group(process_group)       # torch's ValueError before init_process_group
        for flag, value, why in (
                ("check_reduction", check_reduction, "is deprecated in torch and has no effect"),
                ("static_graph", static_graph, "is not built; the graph is handled as dynamic"),
                ("delay_all_reduce_named_params", delay_all_reduce_named_params, "is not built"),
                ("param_to_hook_all_reduce", param_to_hook_all_reduce, "is not built"),
                ("mixed_precision", mixed_precision, "is not built"),
                ("device_mesh", device_mesh, "is not built; pass process_group"),
                ("skip_all_reduce_unused_params", skip_all_reduce_unused_params, "is not built")):
            if value not in (False, None):
                raise ValueError(f"DistributedDataParallel({flag}={value!r}): {flag} {why}; leave it unset")
        params = [p for _, p in module.named_parameters()]
        if not any(p.requires_grad for p in params):
            raise RuntimeError("DistributedDataParallel is not needed when a module doesn't have any parameter that "
                               "requires a gradient.")
        if device_ids is not None and len(device_ids) > 1:
            raise ValueError("device_ids can only be None or contain a single element.")
        types = {p.device.type for p in params}
        if len(types) != 1:
            raise ValueError(f"DistributedDataParallel's input module must be on the same type of devices, but input "
                             f"module parameters locate in {types}.")
        self.device_type = next(iter(types))
        if self.device_type == "cpu" and (device_ids or output_device):
            raise ValueError(f"DistributedDataParallel device_ids and output_device arguments only work with "
                             f"single-device/multiple-device GPU modules or CPU modules, but got device_ids "
                             f"{device_ids}, output_device {output_device}, and module parameters "
                             f"{ {p.device for p in params} }.")
        if self.device_type != "cpu" and pg.backend != "nccl":
            raise RuntimeError("CUDA tensor detected and the MPI used doesn't have CUDA-aware MPI support")
        if self.device_type == "cpu" and pg.backend == "nccl":
            raise RuntimeError("No backend type associated with device type cpu")
        self.module = module
        if self.device_type == "cuda":
            dev = next(iter(params)).device
            self.device_ids = [dev.index or 0] if device_ids is None else [int(getattr(d, "index", d) or 0)
                                                                          for d in device_ids]
            self.output_device = self.device_ids[0] if output_device is None else output_device
        else:
            self.device_ids = None
            self.output_device = None
        self.dim = dim
        self.broadcast_buffers = broadcast_buffers
        self.find_unused_parameters = find_unused_parameters
        self.process_group = process_group
        self.require_backward_grad_sync = True
        self.require_forward_param_sync = True
        cap = _DEFAULT_BUCKET_MB if bucket_cap_mb is None else bucket_cap_mb
        self.bucket_bytes_cap = int(cap * 1024 * 1024)
        self.gradient_as_bucket_view = bool(gradient_as_bucket_view)
        self.static_graph = False
        # the reducer's state (not submodules, not parameters: plain attributes Module does not register)
        object.__setattr__(self, "_pg", pg)
        object.__setattr__(self, "_params", [p for p in params if p.requires_grad])
        if init_sync:
            self._sync_module_states()
        object.__setattr__(self, "_buckets", self._assign_buckets(_FIRST_BUCKET_BYTES if bucket_cap_mb is None
                                                                  else self.bucket_bytes_cap))
        if self.gradient_as_bucket_view:
            for b in self._buckets:
                b.views = [b.tensor[b.offsets[k]:b.offsets[k + 1]].view(p.shape) for k, p in enumerate(b.params)]
        index = {id(p): i for i, p in enumerate(self._params)}
        object.__setattr__(self, "_where", {id(p): (b, k, index[id(p)]) for b in self._buckets
                                            for k, p in enumerate(b.params)})
        object.__setattr__(self, "_expect", False)
        object.__setattr__(self, "_next", 0)
        object.__setattr__(self, "_used", np.zeros(len(self._params), np.int32))
        object.__setattr__(self, "_unfinished", None)
        object.__setattr__(self, "_handles", [])
        me = weakref.ref(self)
        for i, p in enumerate(self._params):
            self._handles.append(p.register_hook(_GradHook(me, i, p)))
        object.__setattr__(self, "_post", _dispatch.add_hook(_PostBackward(me)))

    def __del__(self):
        post = self.__dict__.get("_post")
        hooks = getattr(_dispatch, "hooks", None)      # None at interpreter exit, once modules are torn down
        if post is not None and hooks is not None and post in hooks():
            _dispatch.remove_hook(post)

    # -- construction -------------------------------------------------------------------------------
    def _sync_module_states(self):
        """Parameters and buffers from rank 0, one broadcast per dtype of the flattened tensors."""
        if self._pg.size() == 1:
            return
        tensors = [*self.module.parameters(), *self.module.buffers()]
        by_dtype: dict = {}
        for t in tensors:
            by_dtype.setdefault(t._data.dtype, []).append(t)
        for dt, ts in by_dtype.items():
            flat = _xp(ts[0]._data).concatenate([t._data.reshape(-1) for t in ts])
            dist.broadcast(_wrap(flat), src=self._pg.ranks[0], group=self.process_group)
            off = 0
            for t in ts:
                n = t._data.size
                t._data[...] = flat[off:off + n].reshape(t._data.shape)
                bump_version(t)
                off += n

    def _assign_buckets(self, first_cap):
        buckets, cur, size, cap = [], [], 0, first_cap
        dtype = None
        for p in reversed(self._params):
            nbytes = p._data.nbytes
            if cur and (p._data.dtype != dtype or size + nbytes > cap):
                buckets.append(_Bucket(len(buckets), cur, dtype))
                cur, size, cap = [], 0, self.bucket_bytes_cap
            cur.append(p)
            dtype = p._data.dtype
            size += nbytes
        if cur:
            buckets.append(_Bucket(len(buckets), cur, dtype))
        return buckets

    # -- forward ------------------------------------------------------------------------------------
    def forward(self, *inputs, **kwargs):
        with record_range("DistributedDataParallel.forward"):
            if self._unfinished is not None:
                missing, self._unfinished = self._unfinished, None
                raise RuntimeError(_unfinished_message(missing, self._pg.ranks[self._pg.rank()]))
            if self.broadcast_buffers and self.require_forward_param_sync and self._pg.size() > 1:
                for b in self.module.buffers():
                    dist.broadcast(b, src=self._pg.ranks[0], group=self.process_group)
            if is_grad_enabled() and self.require_backward_grad_sync:
                self._prepare()
            else:
                object.__setattr__(self, "_expect", False)
            return self.module(*inputs, **kwargs)

    def _prepare(self):
        for b in self._buckets:
            b.pending = len(b.params)
            b.work = None
        self._used[:] = 0
        object.__setattr__(self, "_next", 0)
        object.__setattr__(self, "_expect", True)

    @contextlib.contextmanager
    def no_sync(self):
        """Gradients accumulate locally inside; the first backward after it reduces the sums."""
        old = self.require_backward_grad_sync
        self.require_backward_grad_sync = False
        try:
            yield
        finally:
            self.require_backward_grad_sync = old

    # -- backward -----------------------------------------------------------------------------------
    def _ready(self, i, p, g):
        """Parameter i's gradient contribution `g` is ready: its accumulated gradient goes to its slot."""
        if not self._expect:
            return
        b, k, _ = self._where[id(p)]
        if b.work is not None:
            return
        # the slot gets the gradient already divided by the world size: one pass over it, not a copy and then
        # a division of the whole bucket (the same values: each element is divided once either way)
        slot = b.flat[b.offsets[k]:b.offsets[k + 1]]
        n = self._pg.size()
        cur = p._grad
        if cur is None:
            b.xp.divide(g._data.reshape(-1), n, out=slot)
        else:
            b.xp.add(cur._data.reshape(-1), g._data.reshape(-1), out=slot)
            slot /= n
            if b.views is not None and cur is b.views[k]:
                # the gradient is this slot (a view of the bucket), which holds the sum now: accumulation
                # would add g to it again, so it keeps g instead, and _finalize puts the view back
                p._grad = None
        if not self._used[i]:
            self._used[i] = 1
            b.pending -= 1
        self._launch_ready()

    def _launch_ready(self, force=False):
        bs = self._buckets
        while self._next < len(bs) and (bs[self._next].pending == 0 or force):
            b = bs[self._next]
            if force:
                for k, p in enumerate(b.params):
                    if not self._used[self._where[id(p)][2]]:
                        if b.views is not None and p._grad is b.views[k]:
                            p._grad = _wrap(p._grad._data.copy())   # kept if no rank used it: its slot is zeroed
                        b.flat[b.offsets[k]:b.offsets[k + 1]] = 0
            b.work = dist.all_reduce(b.tensor, group=self.process_group, async_op=True)
            object.__setattr__(self, "_next", self._next + 1)

    def _finalize(self):
        """After backward: launch what is left (find_unused_parameters), wait, write the averages back."""
        if not self._expect:
            return
        object.__setattr__(self, "_expect", False)
        used = None
        if self._next < len(self._buckets):
            if not self.find_unused_parameters:
                missing = [i for i in range(len(self._params)) if not self._used[i]]
                for b in self._buckets[:self._next]:
                    b.work.wait()
                object.__setattr__(self, "_unfinished", missing)
                return
            self._launch_ready(force=True)
        if self.find_unused_parameters:
            xp = _xp(self._buckets[0].flat) if self._buckets else np
            used = _wrap(xp.array(self._used))     # a copy: the reduction writes into it
            dist.all_reduce(used, group=self.process_group)
            if xp is not np:
                used = _wrap(used._data.get())
        for b in self._buckets:
            b.work.wait()
            for k, p in enumerate(b.params):
                if used is not None and not used._data[self._where[id(p)][2]]:
                    continue            # no rank used it: its gradient stays as it was
                if b.views is not None:
                    p._grad = b.views[k]            # the average, where the all-reduce left it: no copy
                    continue
                avg = b.flat[b.offsets[k]:b.offsets[k + 1]].reshape(p._data.shape)
                if p._grad is None:
                    p.grad = _wrap(avg.copy())
                else:
                    p._grad._data[...] = avg
                    bump_version(p._grad)

    def register_comm_hook(self, state, hook):
        raise NotImplementedError("DistributedDataParallel.register_comm_hook: communication hooks are not built; "
                                  "gradients are averaged with all_reduce")

    def extra_repr(self):
        return ""


class _GradHook:
    """Tensor hook of parameter i (holds the DDP module weakly: the module owns its parameters)."""
    __slots__ = ("ddp", "i", "p")

    def __init__(self, ddp, i, p):
        self.ddp = ddp
        self.i = i
        self.p = weakref.ref(p)

    def __call__(self, g):
        ddp = self.ddp()
        p = self.p()
        if ddp is not None and p is not None:
            ddp._ready(self.i, p, g)
        return None


class _PostBackward(_dispatch.Hook):
    """At the end of each backward pass, the DDP module waits for its last buckets (a backward-only hook: ops
    stay on the dispatcher's fast path)."""

    def __init__(self, ddp):
        self.ddp = ddp

    def backward_end(self):
        ddp = self.ddp()
        if ddp is not None:
            ddp._finalize()


def _unfinished_message(missing, rank):
    return ("Expected to have finished reduction in the prior iteration before starting a new one. This error "
            "indicates that your module has parameters that were not used in producing loss. You can enable unused "
            "parameter detection by passing the keyword argument `find_unused_parameters=True` to "
            "`torch.nn.parallel.DistributedDataParallel`, and by \nmaking sure all `forward` function outputs "
            "participate in calculating loss. \nParameter indices which did not receive grad for rank "
            f"{rank}: {' '.join(map(str, missing))}")
