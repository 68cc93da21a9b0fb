"""tensorlib/ops/index.py against NumPy references."""
from __future__ import annotations

import numpy as np
import pytest

import tensorlib as tl
from tensorlib.autograd import gradcheck
from tests.tensorlib.ops._util import T, eq, rng


def test_gather_out_of_range_is_torch_runtime_error():
    with pytest.raises(RuntimeError, match="^index 5 is out of bounds for dimension 1 with size 3$"):
        tl.gather(tl.ones(2, 3), 1, T([[0, 5]]))
    with pytest.raises(RuntimeError, match="^index -1 is out of bounds for dimension 0 with size 2$"):
        tl.ones(2, 3).gather(0, T([[-1, 0, 0]]))


def test_gather_index_smaller_than_input_in_other_dims():
    """torch's gather takes an index no larger than the input in the other dims (their leading entries),
    which NumPy's take_along_axis refuses; the gradient lands at the same places."""
    x = tl.arange(12.0).reshape(3, 4).requires_grad_()
    out = x.gather(1, T([[0, 3], [1, 2]]))
    assert out.tolist() == [[0.0, 3.0], [5.0, 6.0]]
    out.sum().backward()
    assert x.grad.tolist() == [[1, 0, 0, 1], [0, 1, 1, 0], [0, 0, 0, 0]]
    assert tl.arange(6).reshape(2, 3).gather(0, T([[1], [0]])).tolist() == [[3], [0]]
    with pytest.raises(RuntimeError, match=r"^Size does not match at dimension 1 expected index \[3, 4\] to be no "
                       r"larger than self \[3, 3\] apart from dimension 0$"):
        tl.ones(3, 3).gather(0, T([[0] * 4] * 3))


def test_index_copy_fill_add_inplace():
    a = rng.standard_normal((3, 4))
    s = rng.standard_normal((3, 2))
    ref = a.copy()
    ref[:, [3, 0]] = s
    eq(T(a).index_copy(1, T([3, 0]), T(s)), ref)
    x = T(a.copy())
    assert x.index_copy_(1, T([3, 0]), T(s)) is x
    eq(x, ref)
    ref = a.copy()
    ref[[2, 0]] = 7.0
    eq(T(a).index_fill(0, T([2, 0]), 7.0), ref)
    eq(T(a.copy()).index_fill_(0, T([2, 0]), T(7.0)), ref)
    ref = a.copy()
    np.add.at(ref, ([1, 1, 0],), 2 * rng.standard_normal((3, 4)) * 0 + 2.0)
    eq(T(a.copy()).index_add_(0, T([1, 1, 0]), T(np.ones((3, 4))), alpha=2), ref)


def test_scatter_inplace_and_masked_scatter():
    a = np.zeros((2, 3))
    idx = np.array([[0, 2], [1, 1]])
    eq(T(a.copy()).scatter_(1, T(idx), T(np.ones((2, 2)))), [[1, 0, 1], [0, 1, 0]])
    eq(T(a.copy()).scatter_add_(1, T(idx), T(np.ones((2, 2)))), [[1, 0, 1], [0, 2, 0]])
    m = np.array([[True, False, True], [False, True, True]])
    src = np.arange(10.0)
    ref = a.copy()
    ref[m] = src[:4]
    eq(T(a).masked_scatter(T(m), T(src)), ref)
    x = T(a.copy())
    eq(x.masked_scatter_(T(m), T(src)), ref)
    g = T(src, grad=True)
    y = T(a, grad=True)
    y.masked_scatter(T(m), g).sum().backward()
    eq(g.grad, [1, 1, 1, 1, 0, 0, 0, 0, 0, 0])
    eq(y.grad, ~m * 1.0)
    assert gradcheck(lambda u, v: u.masked_scatter(T(m[0]), v), [T(rng.standard_normal((2, 3)), True),
                                                                   T(rng.standard_normal(5), True)])


# torch 2.13's node for each basic index of a (3, 4, 5) tensor: that of the last view its indexing code applied
_BASIC_INDEX_NODES = [
    ((slice(None), 1), "SelectBackward0"), (1, "SelectBackward0"), (slice(1, None), "SliceBackward0"),
    (slice(None), "SliceBackward0"), (Ellipsis, "AliasBackward0"), ((1, slice(1, None)), "SliceBackward0"),
    ((slice(1, None), 1), "SelectBackward0"), ((Ellipsis, 1), "SelectBackward0"), ((None, 1), "SelectBackward0"),
    ((1, None), "UnsqueezeBackward0"), ((slice(None), slice(None), 1), "SelectBackward0"),
    (slice(0, 3), "SliceBackward0"), (slice(0, 10), "SliceBackward0"), (slice(None, None, 1), "SliceBackward0"),
    ((slice(None), None), "UnsqueezeBackward0"), ((1, slice(None)), "SelectBackward0"), ((1, 2, 3), "SelectBackward0"),
    (-1, "SelectBackward0"), ((slice(None), slice(0, 4)), "AliasBackward0"), ((slice(None), 1, slice(None)),
                                                                              "SelectBackward0"),
    ((1, Ellipsis), "SelectBackward0"), (None, "UnsqueezeBackward0"), ((slice(1, 2), None), "UnsqueezeBackward0"),
    (slice(None, None, 2), "SliceBackward0"), (True, "IndexBackward0"),
]


@pytest.mark.parametrize("idx,name", _BASIC_INDEX_NODES, ids=[repr(i) for i, _ in _BASIC_INDEX_NODES])
def test_basic_index_node_is_named_as_torch_names_it(idx, name):
    """pytorch/tutorials' deep_learning_tutorial prints `next(model.parameters())[:, i]`: torch's
    grad_fn=<SelectBackward0>, the full slice applying nothing."""
    x = tl.randn(3, 4, 5, requires_grad=True)
    y = x[idx]
    assert y.grad_fn.name() == name
    assert f"<{name} object at" in repr(y.grad_fn)
    y.sum().backward()      # the node's backward is the view's, whatever its name
    assert x.grad.shape == x.shape
