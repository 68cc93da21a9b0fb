"""Sample calls of the sparse softmax ops (tensorlib/ops/sparse.py), their backward ops included: each case
takes and gives dense tensors, a sparse tensor between (the other sparse ops' cases are in op_cases.py)."""
from __future__ import annotations

import tensorlib as tl
from tests.tensorlib.op_cases import R, _fixed, _sp

# dispatched only by the softmaxes' backward formulas: their sample calls run a backward pass
BACKWARD_ONLY = {"_sparse_softmax_backward_data", "_sparse_log_softmax_backward_data"}


def _softmax(f, dim):
    return lambda v, i: f(tl.sparse_coo_tensor(i, v, (3, 4)), dim).to_dense()


def _backward_of(fn):
    """fn's output through a plain backward: the gradients' sum."""
    def run(*xs):
        out = fn(*xs)
        gs = tl.autograd.grad((out * out).sum(), [x for x in xs if isinstance(x, tl.Tensor) and x.requires_grad])
        return sum(g.sum() for g in gs)
    return run


CASES = {
    "_sparse_softmax": lambda: _fixed(_softmax(tl.sparse.softmax, 1), [R(5)], _sp()),
    "_sparse_log_softmax": lambda: _fixed(_softmax(tl.sparse.log_softmax, 0), [R(5)], _sp()),
    "_sparse_softmax_backward_data": lambda: _fixed(_backward_of(_softmax(tl.sparse.softmax, 0)), [R(5)], _sp()),
    "_sparse_log_softmax_backward_data": lambda: _fixed(_backward_of(_softmax(tl.sparse.log_softmax, 1)), [R(5)],
                                                        _sp()),
}
