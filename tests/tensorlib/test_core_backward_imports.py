"""Backward formulas of gather, max(dim), index_select and scatter_add build zeros_like(x) (found broken by
an ImportError while benchmarking a cross-entropy made of core ops)."""
import numpy as np

import tensorlib as tl
from tensorlib.autograd import gradcheck


def _x():
    return tl.tensor(np.random.default_rng(0).standard_normal((3, 4)), requires_grad=True)


def test_gather_backward():
    idx = tl.tensor([[0], [3], [1]])
    x = _x()
    x.gather(1, idx).sum().backward()
    want = np.zeros((3, 4))
    want[[0, 1, 2], [0, 3, 1]] = 1
    np.testing.assert_array_equal(x.grad.numpy(), want)
    assert gradcheck(lambda t: t.gather(1, idx), (_x(),))


def test_max_dim_and_index_select_backward():
    assert gradcheck(lambda t: tl.max(t, 1)[0], (_x(),))
    assert gradcheck(lambda t: tl.index_select(t, 1, tl.tensor([2, 0])), (_x(),))
