"""torch.tensordot and torch.cdist: values and gradients against numpy.tensordot and a direct pairwise norm, and
torch's errors."""
import numpy as np
import pytest

import tensorlib as tl


@pytest.mark.parametrize("sa,sb,dims", [((3, 4, 5), (4, 5, 6), 2), ((3, 4, 5), (5, 2), 1), ((2, 3), (3, 2), ([1], [0])),
                                        ((2, 3, 4), (4, 3, 5), ([1, 2], [1, 0])), ((2, 3), (4,), 0),
                                        ((2, 3, 4), (3, 4), ([-2, -1], [0, 1]))])
def test_tensordot_matches_numpy(sa, sb, dims):
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal(sa), rng.standard_normal(sb)
    ta, tb = tl.tensor(a, requires_grad=True), tl.tensor(b, requires_grad=True)
    y = tl.tensordot(ta, tb, dims=dims)
    np_dims = dims if isinstance(dims, int) else (dims[0], dims[1])
    np.testing.assert_allclose(y.detach().numpy(), np.tensordot(a, b, np_dims), rtol=1e-12)
    assert tl.autograd.gradcheck(lambda u, v: tl.tensordot(u, v, dims=dims), (ta, tb))


def test_tensordot_errors():
    with pytest.raises(RuntimeError, match="contracted dimensions need to match"):
        tl.tensordot(tl.ones(2, 3), tl.ones(4, 2), dims=([1], [0]))
    with pytest.raises(RuntimeError, match="both dimension lists should have same length"):
        tl.tensordot(tl.ones(2, 3), tl.ones(3, 2), dims=([1], [0, 1]))


@pytest.mark.parametrize("p", [2.0, 1.0, 0.0, 3.0, float("inf")])
def test_cdist_is_the_pairwise_norm(p):
    rng = np.random.default_rng(1)
    a, b = rng.standard_normal((2, 5, 3)), rng.standard_normal((2, 4, 3))
    ta, tb = tl.tensor(a, requires_grad=True), tl.tensor(b, requires_grad=True)
    want = np.linalg.norm(a[:, :, None, :] - b[:, None, :, :], ord=p, axis=-1) if p else \
        (a[:, :, None, :] != b[:, None, :, :]).sum(-1).astype(float)
    np.testing.assert_allclose(tl.cdist(ta, tb, p=p).detach().numpy(), want, rtol=1e-12)
    if p not in (0.0, float("inf")):
        assert tl.autograd.gradcheck(lambda u, v: tl.cdist(u, v, p=p), (ta, tb))
    with pytest.raises(RuntimeError, match="same number of columns"):
        tl.cdist(tl.ones(2, 3), tl.ones(2, 4))
