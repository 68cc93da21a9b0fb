"""nn.SyncBatchNorm: batch normalisation whose batch statistics cover every rank's batch.

In training, inside a process group of more than one rank, the mean and variance are taken over all ranks'
samples: the per-channel sums go through `tensorlib.distributed.nn.functional.all_reduce`, which autograd
differentiates (its backward all-reduces the gradient), so backward is synchronised too, as torch's. The
running statistics get the global mean and the global unbiased variance. Otherwise (eval, one rank, no
group) it is BatchNorm. Unlike torch's it runs on CPU tensors: tensorlib's backend is MPI.
"""
from __future__ import annotations

from ...autograd.grad_mode import no_grad
from .. import functional as F
from .normalization import _BatchNorm

__all__ = ["SyncBatchNorm"]


class SyncBatchNorm(_BatchNorm):
    def __init__(self, num_features, eps=1e-5, momentum=0.1, affine=True, track_running_stats=True,
                 process_group=None, device=None, dtype=None):
        super().__init__(num_features, eps, momentum, affine, track_running_stats, device, dtype)
        self.process_group = process_group

    def _check_input_dim(self, input):
        if input.dim() < 2:
            raise ValueError(f"expected at least 2D input (got {input.dim()}D input)")

    def _check_non_zero_input_channels(self, input):
        if input.size(1) == 0:
            raise ValueError("SyncBatchNorm number of input channels should be non-zero")

    def forward(self, input):
        from ... import distributed as dist
        self._check_input_dim(input)
        self._check_non_zero_input_channels(input)
        momentum = 0.0 if self.momentum is None else self.momentum
        if self.training and self.track_running_stats and self.num_batches_tracked is not None:
            with no_grad():
                self.num_batches_tracked.add_(1)
            if self.momentum is None:
                momentum = 1.0 / float(self.num_batches_tracked.item())
        bn_training = self.training or self.running_mean is None
        running = not self.training or self.track_running_stats
        need_sync = (bn_training and self.training and dist.is_initialized()
                     and dist.get_world_size(self.process_group) > 1)
        if not need_sync:
            return F.batch_norm(input, self.running_mean if running else None,
                                self.running_var if running else None, self.weight, self.bias, bn_training,
                                momentum, self.eps)
        from ...distributed.nn.functional import all_reduce
        c = input.shape[1]
        dims = tuple(d for d in range(input.ndim) if d != 1)
        shape = [1, c] + [1] * (input.ndim - 2)
        local = input.numel() // max(c, 1)
        count = all_reduce(input.new_tensor([float(local)]).detach(), group=self.process_group)
        n = float(count.item())
        mean = all_reduce(input.sum(dims), group=self.process_group) / n
        xc = input - mean.reshape(shape)
        var = all_reduce((xc * xc).sum(dims), group=self.process_group) / n
        y = xc / (var.reshape(shape) + self.eps).sqrt()
        if self.weight is not None:
            y = y * self.weight.reshape(shape)
        if self.bias is not None:
            y = y + self.bias.reshape(shape)
        if self.track_running_stats and self.running_mean is not None:
            with no_grad():
                self.running_mean.mul_(1 - momentum).add_(mean.detach() * momentum)
                self.running_var.mul_(1 - momentum).add_(var.detach() * (momentum * n / max(n - 1, 1)))
        return y

    @classmethod
    def convert_sync_batchnorm(cls, module, process_group=None):
        """`module` with every BatchNorm*D replaced by a SyncBatchNorm sharing its parameters and buffers."""
        out = module
        if isinstance(module, _BatchNorm) and not isinstance(module, SyncBatchNorm):
            out = SyncBatchNorm(module.num_features, module.eps, module.momentum, module.affine,
                                module.track_running_stats, process_group)
            if module.affine:
                with no_grad():
                    out.weight = module.weight
                    out.bias = module.bias
            out.running_mean = module.running_mean
            out.running_var = module.running_var
            out.num_batches_tracked = module.num_batches_tracked
            out.training = module.training
        for name, child in module.named_children():
            out.add_module(name, cls.convert_sync_batchnorm(child, process_group))
        return out
