"""tensorlib.distributions without torch: values against NumPy's closed forms, float64 gradients by finite
differences, sampling frequencies, validation errors; also finfo/iinfo and normal. Against torch 2.13:
devtools/torch_compat/test_program_gaps_against_torch.py."""
from __future__ import annotations

import math
from collections import deque

import numpy as np
import pytest

import tensorlib as tl
from tensorlib.autograd import gradcheck
from tensorlib.distributions import Bernoulli, Categorical, Normal, Uniform, kl_divergence, register_kl

R = np.random.default_rng(0)


def f64(a, grad=False):
    return tl.tensor(np.asarray(a, dtype=np.float64), requires_grad=grad)


def test_categorical_log_prob_entropy_and_normalization():
    p = np.array([[1.0, 2.0, 7.0], [2.0, 1.0, 1.0]])
    c = Categorical(probs=f64(p))
    q = p / p.sum(-1, keepdims=True)
    np.testing.assert_allclose(c.probs.numpy(), q)
    np.testing.assert_allclose(c.log_prob(tl.tensor([2, 0])).numpy(), np.log([q[0, 2], q[1, 0]]))
    np.testing.assert_allclose(c.entropy().numpy(), -(q * np.log(q)).sum(-1))
    assert tuple(c.batch_shape) == (2,) and tuple(c.event_shape) == ()
    c2 = Categorical(logits=f64(np.log(q) + 3.0))           # logits are normalized to log-probabilities
    np.testing.assert_allclose(c2.logits.numpy(), np.log(q), atol=1e-12)
    np.testing.assert_allclose(c2.probs.numpy(), q, atol=1e-12)


def test_categorical_gradients():
    logits = f64(R.normal(size=(2, 4)), grad=True)
    assert gradcheck(lambda lg: Categorical(logits=lg).log_prob(tl.tensor([3, 1])), (logits,))
    assert gradcheck(lambda lg: Categorical(logits=lg).entropy(), (logits,))
    probs = f64(R.uniform(0.2, 1.0, (2, 4)), grad=True)
    assert gradcheck(lambda p: Categorical(probs=p).log_prob(tl.tensor([0, 2])), (probs,))


def test_categorical_sampling_frequencies():
    tl.manual_seed(0)
    q = np.array([0.1, 0.6, 0.3])
    s = Categorical(probs=f64(q)).sample((6000,))
    assert tuple(s.shape) == (6000,) and s.dtype == tl.int64
    np.testing.assert_allclose(np.bincount(s.numpy(), minlength=3) / 6000, q, atol=0.03)
    assert tuple(Categorical(logits=tl.zeros(4, 3)).sample((2,)).shape) == (2, 4)


def test_normal_log_prob_entropy_cdf_and_reparameterization():
    loc, scale = f64([0.5, -1.0], grad=True), f64([1.5, 0.3], grad=True)
    n = Normal(loc, scale)
    x, m, s = np.array([0.2, 0.1]), np.array([0.5, -1.0]), np.array([1.5, 0.3])
    want = -((x - m) ** 2) / (2 * s ** 2) - np.log(s) - 0.5 * math.log(2 * math.pi)
    np.testing.assert_allclose(n.log_prob(f64(x)).detach().numpy(), want)
    np.testing.assert_allclose(n.entropy().detach().numpy(), 0.5 + 0.5 * math.log(2 * math.pi) + np.log(s))
    erf = np.vectorize(math.erf)
    np.testing.assert_allclose(n.cdf(f64(x)).detach().numpy(), 0.5 * (1 + erf((x - m) / s / 2 ** 0.5)))
    tl.manual_seed(1)
    y = n.rsample((3,))
    assert y.requires_grad and not n.sample().requires_grad
    y.sum().backward()
    np.testing.assert_allclose(loc.grad.numpy(), [3.0, 3.0])
    eps = (y.detach().numpy() - [0.5, -1.0]) / [1.5, 0.3]
    np.testing.assert_allclose(scale.grad.numpy(), eps.sum(0))
    assert gradcheck(lambda m, s: Normal(m, s).log_prob(f64(x)), (f64([0.5, -1.0], True), f64([1.5, 0.3], True)))


def test_bernoulli_and_uniform():
    p = np.array([0.2, 0.7])
    b = Bernoulli(probs=f64(p))
    y = np.array([1.0, 0.0])
    np.testing.assert_allclose(b.log_prob(f64(y)).numpy(), y * np.log(p) + (1 - y) * np.log(1 - p))
    np.testing.assert_allclose(b.entropy().numpy(), -(p * np.log(p) + (1 - p) * np.log(1 - p)))
    s = b.sample((5,))
    assert tuple(s.shape) == (5, 2) and s.dtype == tl.float64 and set(np.unique(s.numpy())) <= {0.0, 1.0}
    u = Uniform(f64([0.0, 1.0]), f64([2.0, 3.0]), validate_args=False)
    np.testing.assert_allclose(u.log_prob(f64([1.0, 5.0])).numpy(), [-math.log(2), -math.inf])
    r = u.rsample((100,)).numpy()
    assert (r >= [0.0, 1.0]).all() and (r < [2.0, 3.0]).all()


def test_kl_divergences():
    kl = kl_divergence(Normal(f64([0.5]), f64([1.5])), Normal(f64([0.0]), f64([1.0])))
    np.testing.assert_allclose(kl.numpy(), [0.5 * (1.5 ** 2 + 0.5 ** 2 - 1 - math.log(1.5 ** 2))])
    p, q = np.array([0.2, 0.8]), np.array([0.5, 0.5])
    kl = kl_divergence(Categorical(probs=f64(p)), Categorical(probs=f64(q)))
    np.testing.assert_allclose(float(kl), (p * np.log(p / q)).sum())
    assert float(kl_divergence(Uniform(-1.0, 4.0), Uniform(0.0, 1.0))) == math.inf
    with pytest.raises(NotImplementedError, match="No KL\\(p \\|\\| q\\) is implemented for p type Normal and q type"):
        kl_divergence(Normal(0.0, 1.0), Categorical(probs=f64([0.5, 0.5])))
    # two exponential families of different types: torch's Bregman fallback refuses them
    with pytest.raises(NotImplementedError, match="cross KL-divergence between different exponential families"):
        kl_divergence(Normal(0.0, 1.0), Bernoulli(0.5))

    class Wide(Normal):
        pass

    @register_kl(Wide, Normal)
    def _wide(p, q):
        return tl.tensor(-1.0)

    assert float(kl_divergence(Wide(0.0, 1.0), Normal(0.0, 1.0))) == -1.0     # the more specific pair wins


@pytest.mark.parametrize("make, match", [
    (lambda: Categorical(probs=tl.tensor([0.2, 0.8]), logits=tl.tensor([0.0, 1.0])), "Either `probs` or `logits`"),
    (lambda: Categorical(probs=tl.tensor(0.5)), "`probs` parameter must be at least one-dimensional"),
    (lambda: Categorical(probs=tl.tensor([-0.2, 0.8])), "to satisfy the constraint Simplex\\(\\)"),
    (lambda: Normal(0.0, -1.0), "Expected parameter scale \\(Tensor of shape \\(\\)\\) of distribution Normal"),
    (lambda: Bernoulli(tl.tensor([1.5])), "constraint Interval\\(lower_bound=0.0, upper_bound=1.0\\)"),
    (lambda: Categorical(logits=tl.zeros(2)).log_prob(tl.tensor(2)), "support \\(IntegerInterval\\(lower_bound=0"),
    (lambda: Uniform(1.0, 0.0), "constraint LessThan\\(upper_bound=0.0\\)"),
])
def test_validation(make, match):
    with pytest.raises(ValueError, match=match):
        make()


def test_finfo_iinfo():
    for d in (tl.float16, tl.float32, tl.float64):
        f, n = tl.finfo(d), np.finfo(d.np)
        assert (f.bits, f.eps, f.max, f.min, f.tiny) == (n.bits, float(n.eps), float(n.max), float(n.min),
                                                          float(n.smallest_normal))
    assert tl.finfo(tl.bfloat16).eps == 2 ** -7 and tl.finfo().dtype == "float32"
    assert (tl.iinfo(tl.int8).min, tl.iinfo(tl.uint8).max, tl.iinfo(tl.int64).bits) == (-128, 255, 64)
    with pytest.raises(TypeError, match="requires a floating point input type"):
        tl.finfo(tl.int32)
    with pytest.raises(TypeError, match="requires an integer input type"):
        tl.iinfo(tl.bool)


def test_normal_draws():
    tl.manual_seed(0)
    x = tl.normal(tl.full((20000,), 3.0), 2.0)
    assert abs(float(x.mean()) - 3.0) < 0.06 and abs(float(x.std()) - 2.0) < 0.06
    assert tuple(tl.normal(0.0, 1.0, (2, 3)).shape) == (2, 3)
    assert tuple(tl.normal(tl.zeros(3), tl.ones(2, 1)).shape) == (2, 3)
    with pytest.raises(RuntimeError, match="normal expects std >= 0.0, but found std -1"):
        tl.normal(tl.zeros(2), -1.0)
    with pytest.raises(TypeError, match="size is required"):
        tl.normal(0.0, 1.0)


def test_tensor_reads_any_sequence():
    assert tl.tensor(deque([1.0, 2.5])).tolist() == [1.0, 2.5]
    assert tl.tensor(range(3)).dtype == tl.int64
    assert tl.tensor([deque([1, 2]), deque([3, 4])]).tolist() == [[1, 2], [3, 4]]
