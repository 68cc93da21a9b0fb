"""Views from basic indexing and in-place ops on them, side by side with torch (issue 21, item 2): the values
written through, versions, gradients through CopySlices and views of views, and torch's error messages."""
import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="comparison with torch needs torch installed")

import tensorlib as tl  # noqa: E402


def _leaf(T, *shape):
    return T.tensor(np.arange(float(np.prod(shape))).reshape(shape), dtype=T.float32).requires_grad_()


def _write_through(T):
    x = T.zeros(2, 3)
    x[0, 1].fill_(7)
    x[1][2].add_(1)
    x[0, ..., 2].mul_(3)
    x[None, 1, 0].copy_(T.tensor([5.0]))
    x[1, 1].clamp_(min=2)
    v = x[0, 0]
    v[()] = 4
    return x, v


def _optimizer_like(T):
    w = T.ones(4, requires_grad=True)
    with T.no_grad():
        w[0].zero_()
        for i in range(1, 4):
            w[i].sub_(0.5 * i)
    return w.detach()


def _sees_updates(T):
    x = T.zeros(2, 2)
    v = x[1, 1]
    x.add_(1)
    return v * 1, T.tensor(float(v.item()))


def _copy_slices(T):
    x = _leaf(T, 2, 3)
    y = x * 2
    y[0, 1].mul_(3)
    y.t()[2].add_(x[1, 1])
    y[1][0:2].clamp_(max=7)
    y.sum().backward()
    return y.detach(), x.grad


def _base_without_grad(T):
    x = T.zeros(2, 3)
    w = _leaf(T, 3)
    x[1].add_(w)
    x[0, 0].mul_(w[2])
    (x * x).sum().backward()
    return x.detach(), w.grad


def _sibling_view(T):
    x = _leaf(T, 2, 3)
    y = x * 2
    h = y[0]
    y[0][1].mul_(3)
    (h * T.tensor([1.0, 2.0, 3.0])).sum().backward()
    return x.grad


def _views_of_views(T):
    x = _leaf(T, 3, 4)
    v = x[1:][:, ::2][0, 1]
    (v * 5 + x[..., 1][2] * x[None, 0, 3]).backward()
    return x.grad


@pytest.mark.parametrize("case", [_write_through, _optimizer_like, _sees_updates, _copy_slices, _base_without_grad,
                                  _sibling_view, _views_of_views])
def test_same_values_and_gradients(case):
    ours, theirs = case(tl), case(torch)
    for o, t in zip(ours if isinstance(ours, tuple) else (ours,), theirs if isinstance(theirs, tuple) else (theirs,)):
        assert tuple(o.shape) == tuple(t.shape)
        np.testing.assert_allclose(o.detach().numpy(), t.detach().numpy(), rtol=1e-6)


def _view_of_leaf(T):
    T.ones(2, 2, requires_grad=True)[0, 1].fill_(1.0)


def _view_of_leaf_slice(T):
    T.ones(2, 2, requires_grad=True)[0:1].add_(1.0)


def _leaf_that_is_a_view(T):
    T.arange(6.0).reshape(2, 3).requires_grad_().add_(1)


def _no_grad_view(T):
    y = T.ones(3, requires_grad=True) * 1
    with T.no_grad():
        v = y[0]
    v.mul_(2)


def _overlapping_view(T):
    (T.ones(3, requires_grad=True) * 1).reshape(1, 3).expand(2, 3).add_(1)


def _saved_then_modified(T):
    x = T.ones(3, requires_grad=True)
    y = x * 1
    z = y * y
    y[0].mul_(2)
    z.sum().backward()


@pytest.mark.parametrize("case", [_view_of_leaf, _view_of_leaf_slice, _leaf_that_is_a_view, _no_grad_view,
                                  _overlapping_view, _saved_then_modified])
def test_same_errors(case):
    with pytest.raises(Exception) as theirs:
        case(torch)
    with pytest.raises(type(theirs.value)) as ours:
        case(tl)
    assert str(ours.value) == str(theirs.value).replace("torch.", "tensorlib.").replace("torch::", "tensorlib::")


def _reshapes(T):
    """reshape's three paths with grad: a contiguous tensor, strides that allow the shape, a copy."""
    x = _leaf(T, 2, 3, 4)
    return [x.reshape(6, 4), x.transpose(0, 1).reshape(3, 2, 2, 2), x.transpose(1, 2).reshape(2, 12)]


def test_reshape_paths_as_torchs():
    """The node of each path (ViewBackward0, ReshapeAliasBackward0, UnsafeViewBackward0), whether the result
    shares the input's memory (a copy is a tensor of its own: writing into it leaves the input and its version
    alone), the same gradients."""
    ours, theirs = _reshapes(tl), _reshapes(torch)
    assert [o.grad_fn.name() for o in ours] == [t.grad_fn.name() for t in theirs]
    assert [t.grad_fn.name() for t in theirs] == ["ViewBackward0", "ReshapeAliasBackward0", "UnsafeViewBackward0"]
    for T, (a, b, c) in ((tl, ours), (torch, theirs)):
        x = a.grad_fn.next_functions[0][0].variable
        version = x._version
        with T.no_grad():
            x.transpose(1, 2).reshape(2, 12).mul_(2)    # a copy: the input and its version stay
        assert x._version == version and float(x[0, 0, 1]) == 1.0
        (a.sum() + (b * 2).sum() + (c * 3).sum()).backward()
        np.testing.assert_allclose(x.grad.numpy(), np.full((2, 3, 4), 6.0))


@pytest.mark.parametrize("geometry", [((2, 2), (1, 1), 5), ((3, 3), (1, 1), None), ((2, 3), (4, 1), None),
                                      ((2, 2), (2, 3), 1), ((4,), (5,), 0)])
def test_as_strided_and_its_gradient_as_torchs(geometry):
    """as_strided of a view of an intermediate (its storage, not its own elements), values and the gradient
    that flows back through the view (overlapping windows summed), and in place through it."""
    size, stride, offset = geometry
    outs = []
    for L in (tl, torch):
        x = L.arange(1.0, 17.0, dtype=L.float64, requires_grad=True)
        y = (x * 1).reshape(4, 4)[1:]
        v = y.as_strided(size, stride, offset)
        w = L.arange(1.0, 1.0 + v.numel(), dtype=L.float64).reshape(size)
        (v * w).sum().backward()
        outs.append((v.detach().numpy().tolist(), x.grad.numpy().tolist(), v.grad_fn.name()))
    assert outs[0] == outs[1]
    for L in (tl, torch):        # in place through the view: the base's history goes through it (CopySlices)
        x = L.arange(1.0, 10.0, dtype=L.float64, requires_grad=True)
        y = x * 1
        y.reshape(3, 3).as_strided((3,), (4,), 0).mul_(L.tensor([2.0, 3.0, 4.0], dtype=L.float64))
        (y * L.arange(9.0, dtype=L.float64)).sum().backward()
        outs.append((y.detach().numpy().tolist(), x.grad.numpy().tolist()))
    assert outs[2] == outs[3]
