"""SiLU's backward as torch's one op, silu_backward (was seven dispatched ops): its values against the formula,
float16 computed in float32, second derivatives through the composite, one op in a profile."""
import numpy as np
import pytest

import profiler
import tensorlib as tl
import tensorlib.nn.functional as F


@pytest.mark.parametrize("dtype,rtol,atol", [(tl.float32, 2e-6, 1e-30), (tl.float64, 1e-13, 1e-30),
                                             (tl.float16, 2e-3, 6e-8)])    # (float16's subnormal step)
def test_gradient_is_the_formula(dtype, rtol, atol):
    xs = np.array([-100.0, -20.0, -3.0, -0.5, 0.0, 0.5, 3.0, 20.0, 100.0])
    x = tl.tensor(xs, dtype=dtype, requires_grad=True)
    F.silu(x).backward(tl.full(x.shape, 2.0, dtype=dtype))
    xd = x.detach().numpy().astype(np.float64)
    s = 1 / (1 + np.exp(-xd))
    np.testing.assert_allclose(x.grad.numpy().astype(np.float64), 2 * s * (1 + xd * (1 - s)), rtol=rtol, atol=atol)


def test_second_derivative_through_the_composite():
    x = tl.tensor([-2.0, 0.3, 1.5], dtype=tl.float64, requires_grad=True)
    (g,) = tl.autograd.grad(F.silu(x).sum(), x, create_graph=True)
    (gg,) = tl.autograd.grad(g.sum(), x)
    xd = x.detach().numpy()
    s = 1 / (1 + np.exp(-xd))
    np.testing.assert_allclose(gg.numpy(), s * (1 - s) * (2 + xd * (1 - 2 * s)), rtol=1e-12)


def test_one_backward_op_in_a_profile():
    x = tl.randn(3, 4, requires_grad=True)
    with profiler.profile() as p:
        F.silu(x * 1).sum().backward()
    names = [e.name for e in p.events()]
    assert names.count("aten::silu_backward") == 1
    assert "aten::sigmoid" not in names and "aten::rsub" not in names
