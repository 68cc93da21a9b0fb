"""Autograd: the engine, grad modes, custom functions, anomaly detection, gradcheck."""
from __future__ import annotations

import warnings

from enum import IntEnum

from .._tensor import Tensor
from ..ops._define import public
from .anomaly import detect_anomaly, is_anomaly_enabled, set_detect_anomaly
from .engine import run_backward
from .function import Function, FunctionCtx
from .grad_mode import (enable_grad, inference_mode, is_grad_enabled, no_grad, set_grad_enabled)
from .gradcheck import GradcheckError, gradcheck, gradgradcheck
from . import graph  # noqa: F401 - torch.autograd.graph (Node, saved_tensors_hooks, save_on_cpu, ...)
from .graph import AccumulateGrad, Node
from . import variable  # noqa: F401 - torch.autograd.variable
from .variable import Variable


class DeviceType(IntEnum):
    """torch.autograd.DeviceType: where a profiled event ran (FunctionEvent.device_type)."""
    CPU = 0
    CUDA = 1


def backward(tensors, grad_tensors=None, retain_graph=None, create_graph=False, inputs=None):
    if inputs is not None:
        inputs = (inputs,) if isinstance(inputs, Tensor) else tuple(inputs)
        if not inputs:
            raise RuntimeError("'inputs' argument to backward() cannot be empty.")
        _backward_to(tensors, grad_tensors, retain_graph, create_graph, inputs)
        return
    run_backward(tensors, grad_tensors, retain_graph, create_graph)


def _backward_to(tensors, grad_tensors, retain_graph, create_graph, inputs):
    grads = run_backward(tensors, grad_tensors, retain_graph, create_graph, inputs=inputs, accumulate=False,
                         allow_unused=True, grad_call=False)
    from .. import ops
    with no_grad():
        for t, g in zip(inputs, grads):
            if g is None:
                continue
            t._grad = (g if create_graph else ops.detach(ops.clone(g))) if t._grad is None else ops.add(t._grad, g)


def _batched_grads(outputs, inputs, grad_outputs, retain_graph, create_graph, allow_unused):
    """autograd.grad with is_grads_batched=True: the first dimension of every grad_output is a batch of vectors,
    one vector-Jacobian product per row (torch computes them vectorised with vmap; tensorlib runs one backward per
    row, the graph kept until the last), each input's gradients stacked along a new first dimension."""
    from .. import ops
    gos = (grad_outputs,) if isinstance(grad_outputs, Tensor) else tuple(grad_outputs or ())
    if not gos or any(g is None or not isinstance(g, Tensor) or g.dim() == 0 for g in gos):
        raise RuntimeError("is_grads_batched=True needs a grad_output tensor with a batch dimension for every output")
    n = gos[0].shape[0]
    if any(g.shape[0] != n for g in gos):
        raise RuntimeError("If `is_grads_batched=True`, we interpret the first dimension of each grad_output as "
                           "the batch dimension. The sizes of the batch dimensions must all be equal.")
    rows = []
    for k in range(n):
        keep = True if k < n - 1 else retain_graph
        rows.append(run_backward(outputs, tuple(g[k] for g in gos), keep, create_graph, inputs=inputs,
                                 accumulate=False, allow_unused=allow_unused))
    return tuple(None if rows[0][j] is None else ops.stack([r[j] for r in rows]) for j in range(len(inputs)))


def grad(outputs, inputs, grad_outputs=None, retain_graph=None, create_graph=False, only_inputs=True,
         allow_unused=None, is_grads_batched=False, materialize_grads=False):
    single = isinstance(inputs, Tensor)
    inputs = (inputs,) if single else tuple(inputs)
    if allow_unused is None:
        allow_unused = materialize_grads
    if not only_inputs:
        warnings.warn("only_inputs argument is deprecated and is ignored now (defaults to True). To accumulate "
                      "gradient for other parts of the graph, please use torch.autograd.backward.", FutureWarning,
                      stacklevel=2)
    if is_grads_batched:
        res = _batched_grads(outputs, inputs, grad_outputs, retain_graph, create_graph, allow_unused)
    else:
        res = run_backward(outputs, grad_outputs, retain_graph, create_graph, inputs=inputs, accumulate=False,
                           allow_unused=allow_unused)
    if materialize_grads:
        from .. import ops
        res = tuple(r if r is not None else ops.zeros_like(i) for r, i in zip(res, inputs))
    return res


@public(name="backward", function=False, method=True)
def _tensor_backward(self, gradient=None, retain_graph=None, create_graph=False, inputs=None):
    if inputs is None:      # backward()'s usual case, without its call
        run_backward(self, gradient, retain_graph, create_graph)
        return
    backward(self, gradient, retain_graph, create_graph, inputs)


def __getattr__(name: str):
    """`tensorlib.autograd.functional` (torch.autograd.functional: jacobian, hessian, vjp, ...), imported on
    first use; `tensorlib.autograd.profiler` (torch.autograd.profiler: profile, record_function, emit_nvtx),
    declared by the profiler package (see tensorlib._import_declared)."""
    import sys
    if name == "functional":
        import importlib
        return importlib.import_module(f"{__name__}.functional")
    return sys.modules["tensorlib"]._import_declared(__name__, name)     # (no import edge up to the package)
