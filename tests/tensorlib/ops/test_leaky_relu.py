"""leaky_relu as torch runs it: one leaky_relu_backward op, and inplace=True really in place (LeakyReluBackward1)."""
import numpy as np
import pytest

import profiler
import tensorlib as tl
import tensorlib.nn.functional as F

X = np.array([-2.0, -0.5, 0.0, 0.5, 2.0], np.float32)


def test_inplace_overwrites_its_input_and_saves_the_result():
    x = tl.tensor(X, requires_grad=True)
    y = x * 2
    z = F.leaky_relu(y, 0.2, inplace=True)
    assert z is y and y._version == 1
    assert z.grad_fn.name() == "LeakyReluBackward1"
    np.testing.assert_allclose(z.detach().numpy(), np.where(X > 0, 2 * X, 0.4 * X))
    z.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), np.where(X > 0, 2.0, 0.4))     # 0 -> the slope, as torch


def test_the_module_and_the_underscore_function_are_in_place_too():
    y = tl.tensor(X) * 1
    assert tl.nn.LeakyReLU(0.1, inplace=True)(y) is y
    assert tl.nn.functional.leaky_relu_(y, 0.1) is y
    np.testing.assert_allclose(y.numpy(), np.where(X > 0, X, 0.01 * X), rtol=1e-6)


def test_negative_slope_in_place_refuses_its_backward_as_torch():
    x = tl.tensor(X, requires_grad=True)
    z = F.leaky_relu(x * 1, -0.2, inplace=True)
    with pytest.raises(RuntimeError, match="In-place leakyReLu backward calculation is triggered with a negative"):
        z.sum().backward()


def test_inplace_on_a_leaf_that_requires_grad_is_refused():
    with pytest.raises(RuntimeError, match="a leaf Variable that requires grad"):
        F.leaky_relu(tl.tensor(X, requires_grad=True), 0.2, inplace=True)


@pytest.mark.parametrize("inplace", [False, True])
def test_backward_is_one_leaky_relu_backward_op(inplace):
    x = tl.tensor(X, requires_grad=True)
    with profiler.profile() as p:
        F.leaky_relu(x * 1, 0.2, inplace=inplace).sum().backward()
    names = [e.name for e in p.events()]
    node = "LeakyReluBackward1" if inplace else "LeakyReluBackward0"
    assert ("aten::leaky_relu_" if inplace else "aten::leaky_relu") in names
    i = names.index(node)
    assert names[i + 1] == "aten::leaky_relu_backward"
    assert "aten::where" not in names and "aten::gt" not in names
