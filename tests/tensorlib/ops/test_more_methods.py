"""Tensor methods of tensorlib/ops/more_methods.py: gradcheck where torch has a gradient, and values against
NumPy (devtools/torch_compat/test_ops_more_against_torch.py compares with torch)."""
from __future__ import annotations

import numpy as np
import pytest

import tensorlib as tl
from tensorlib.autograd import gradcheck

R = np.random.default_rng(11)


def T(*shape):
    return tl.tensor(R.uniform(-1, 1, shape), requires_grad=True)


@pytest.mark.parametrize("fn, shapes", [
    (lambda s, a, b: s.addbmm(a, b, beta=0.5, alpha=2), [(2, 3), (2, 2, 4), (2, 4, 3)]),
    (lambda s, m, v: s.addmv(m, v), [(3,), (3, 2), (2,)]),
    (lambda s, a, b: s.addr(a, b), [(3, 2), (3,), (2,)]),
    (lambda a, b: a.inner(b), [(2, 3), (4, 3)]),
    (lambda a, b: a.kron(b), [(2, 2), (3, 1, 2)]),
    (lambda a: a.logcumsumexp(1), [(2, 4)]),
    (lambda a: a.cummax(1)[0], [(2, 4)]),
    (lambda a: a.kthvalue(2, 0)[0], [(3, 4)]),
    (lambda a: a.quantile(0.3, 1), [(2, 5)]),
    (lambda a: a.renorm(2, 0, 0.5), [(3, 4)]),
    (lambda a: a.cov(), [(3, 5)]),
    (lambda a: a.corrcoef(), [(3, 5)]),
    (lambda a, s: a.select_scatter(s, 1, 2), [(3, 4), (3,)]),
    (lambda a, s: a.slice_scatter(s, 0, 1, None, 2), [(5, 2), (2, 2)]),
    (lambda a, v: a.index_put((tl.tensor([0, 2, 0]),), v, accumulate=True), [(3, 2), (3, 2)]),
    (lambda a, v: a.put(tl.tensor([0, 5]), v), [(2, 3), (2,)]),
    (lambda a: a.copysign(tl.tensor([-1.0, 0.0, -0.0])), [(2, 3)]),
])
def test_gradcheck(fn, shapes):
    assert gradcheck(fn, [T(*s) for s in shapes])


def test_values_against_numpy():
    a = R.uniform(-1, 1, (4, 5))
    x = tl.tensor(a)
    np.testing.assert_allclose(x.quantile(0.3, 1).numpy(), np.quantile(a, 0.3, axis=1))
    np.testing.assert_allclose(x.cov().numpy(), np.cov(a))
    np.testing.assert_allclose(x.corrcoef().numpy(), np.corrcoef(a))
    np.testing.assert_allclose(x.kron(x).numpy(), np.kron(a, a))
    np.testing.assert_allclose(x.cummin(0)[0].numpy(), np.minimum.accumulate(a, 0))
    np.testing.assert_allclose(x.logcumsumexp(1).numpy(), np.logaddexp.accumulate(a, 1))
    np.testing.assert_array_equal(tl.tensor([12, 18]).gcd(tl.tensor([8, 27])).numpy(), [4, 9])
    np.testing.assert_array_equal((tl.tensor([1, 8]) << tl.tensor([3, 1])).numpy(), [8, 16])
    np.testing.assert_array_equal((tl.tensor([1, 8]) >> 1).numpy(), [0, 4])
    np.testing.assert_array_equal(tl.tensor([-0.0, 0.0, -2.0]).signbit().numpy(), [True, False, True])
    y = tl.zeros(3, 3)
    assert y.fill_diagonal_(2.0) is y and y.numpy().trace() == 6.0
    z = tl.tensor([1, 2, 3])
    assert z.gcd_(tl.tensor([2, 4, 9])) is z and z.tolist() == [1, 2, 3]
    assert tl.ones(10000).geometric_(0.5).min().item() >= 1
    assert tl.ones(1000).log_normal_().min().item() > 0
    assert tl.tensor([True, False, True]).nonzero_static(size=3).reshape(-1).tolist() == [0, 2, -1]
    with pytest.raises(RuntimeError, match="interpolation must be one of"):
        x.quantile(0.5, interpolation="cubic")
    with pytest.raises(NotImplementedError):
        tl.tensor([1.5]).gcd(tl.tensor([2.5]))
