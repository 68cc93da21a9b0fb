"""torch.distributed.nn.functional: collectives as autograd functions.

`all_reduce(tensor, op, group)` returns the reduced tensor (a new one, the input is left as it was); its
backward all-reduces the gradient with the same op, so a value summed over the ranks passes each rank's
gradient back to every rank's input, which is what SyncBatchNorm's backward needs. SUM and AVG only, as
their gradients are those reductions again (torch refuses the others the same way)."""
from __future__ import annotations

from ...autograd.function import Function

__all__ = ["all_reduce"]


def _reduced(t, op, group):
    from .. import all_reduce as _all_reduce
    out = t.detach().clone().contiguous()
    _all_reduce(out, op=op, group=group)
    return out


class _AllReduce(Function):
    @staticmethod
    def forward(ctx, tensor, op, group):
        ctx.op, ctx.group = op, group
        return _reduced(tensor, op, group)

    @staticmethod
    def backward(ctx, grad):
        return _reduced(grad, ctx.op, ctx.group), None, None


def all_reduce(tensor, op=None, group=None):
    from .. import ReduceOp
    op = ReduceOp.SUM if op is None else ReduceOp._coerce(op)
    if op not in (ReduceOp.SUM, ReduceOp.AVG):
        raise RuntimeError(f"torch.distributed.nn.functional.all_reduce: the gradient of ReduceOp.{op.name} is not "
                           f"implemented; use ReduceOp.SUM or ReduceOp.AVG")
    return _AllReduce.apply(tensor, op, group)
