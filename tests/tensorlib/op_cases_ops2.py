"""Sample calls for the ops of tensorlib/ops/more_ops.py (see op_cases.py). Index tensors are made inside the
call (tl.tensor), so the CUDA tests make them on the device."""
import tensorlib as tl
from tensorlib.dispatch import dispatch, registry
from tests.tensorlib.op_cases import I, R


def _i(rows):
    return tl.tensor(rows)


def _sr(a, s, inplace=False):
    """Every reduction of scatter_reduce at once (distinct random values: no ties for amax / amin)."""
    i = _i([[0, 1, 0], [2, 2, 3], [1, 0, 1]])
    f = (lambda r, inc: a.clone().scatter_reduce_(1, i, s, r, include_self=inc)) if inplace else \
        (lambda r, inc: a.scatter_reduce(1, i, s, r, include_self=inc))
    return f("prod", True) + f("mean", False) + f("amax", True) + f("amin", False) + f("sum", True)


def _ir(a, s, inplace=False):
    import warnings
    i = _i([2, 0, 2])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")     # index_reduce's beta warning
        f = (lambda r, inc: a.clone().index_reduce_(0, i, s, r, include_self=inc)) if inplace else \
            (lambda r, inc: a.index_reduce(0, i, s, r, include_self=inc))
        return f("prod", True) + f("mean", False) + f("amax", False) + f("amin", True)


CASES = {
    "scatter_reduce": lambda: (_sr, [R(3, 4), R(3, 3)]),
    "scatter_reduce_": lambda: (lambda a, s: _sr(a, s, inplace=True), [R(3, 4), R(3, 3)]),
    "index_reduce": lambda: (_ir, [R(3, 4), R(3, 4)]),
    "index_reduce_": lambda: (lambda a, s: _ir(a, s, inplace=True), [R(3, 4), R(3, 4)]),
    "mode": lambda: (lambda a: tl.mode(a, 1).values, [R(3, 5)]),
    "nanmedian": lambda: (lambda a: tl.nanmedian(a), [R(3, 4)]),
    "nanmedian_dim": lambda: (lambda a: a.nanmedian(1, keepdim=True).values, [R(3, 5)]),
    "unique_consecutive": lambda: (lambda a: tl.unique_consecutive(a, return_inverse=True, return_counts=True),
                                   [I(9, high=2)]),
    "histc": lambda: (lambda a: tl.histc(a, 5), [R(12, grad=False)]),
    "histogram": lambda: (lambda a, w: tl.histogram(a, 4, weight=w), [R(12, grad=False), R(12, grad=False)]),
    "unfold": lambda: (lambda a: a.unfold(1, 2, 1), [R(3, 5)]),
    "unfold_backward": lambda: (lambda g: dispatch(registry()["unfold_backward"], g, shape=(3, 7), dimension=1,
                                                   size=3, step=2), [R(3, 3, 3)]),
    "frexp": lambda: (lambda a: tl.frexp(a * 10), [R(5)]),
    "isin": lambda: (lambda a, b: tl.isin(a, b), [I(3, 4, high=5), I(3, high=5)]),
    "block_diag": lambda: (lambda a, b, c: tl.block_diag(a, b, c), [R(2, 3), R(3), R()]),
    "tril_indices": lambda: (lambda: tl.tril_indices(3, 4, 1), []),
    "triu_indices": lambda: (lambda: tl.triu_indices(4, 3, -1), []),
}
