"""Sampling in tensorlib.distributions without torch: reproducibility under tl.manual_seed, the
reparameterised gamma / Dirichlet gradients (torch's approximations against the implicit derivative computed
from SciPy's CDFs, and Monte Carlo identities such as d/dalpha E[X] = 1 for Gamma(alpha, 1)), sample moments,
poisson / binomial, and the transforms (inverses, log |det J| against autograd's Jacobian, biject_to)."""
from __future__ import annotations

import numpy as np
import pytest
import scipy.special as sp
import scipy.stats as st

import tensorlib as tl
import tensorlib.distributions as D
from tensorlib.distributions import constraints, transforms as T

R = np.random.default_rng(5)


def t(a, grad=False):
    return tl.tensor(np.asarray(a, dtype=np.float64), requires_grad=grad)


def test_manual_seed_makes_samples_reproducible():
    def draw():
        tl.manual_seed(123)
        return [D.Gamma(t([0.5, 2.0]), t([1.0, 3.0])).sample((4,)).numpy(),
                D.Dirichlet(t([1.0, 2.0, 3.0])).rsample((2,)).detach().numpy(),
                D.Poisson(t([3.0])).sample((5,)).numpy(), D.Beta(t(2.0), t(3.0)).sample((3,)).numpy(),
                D.StudentT(t(3.0)).rsample((3,)).numpy(), D.VonMises(t(0.0), t(2.0)).sample((3,)).numpy()]
    a, b = draw(), draw()
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x, y)
    tl.manual_seed(124)
    assert not np.array_equal(D.Gamma(t([0.5, 2.0]), t([1.0, 3.0])).sample((4,)).numpy(), a[0])


@pytest.mark.parametrize("alpha", [0.05, 0.3, 0.9, 2.5, 7.0, 12.0, 60.0])
def test_standard_gamma_grad_is_the_implicit_derivative(alpha):
    """d x / d alpha = -(d F(x; alpha) / d alpha) / f(x; alpha), F by SciPy, its alpha-derivative by central
    differences: torch's approximation holds to a few parts in 1e4 in every branch."""
    x = st.gamma(alpha).ppf([0.05, 0.3, 0.5, 0.7, 0.95])
    h = 1e-6 * max(alpha, 1.0)
    dF = (sp.gammainc(alpha + h, x) - sp.gammainc(alpha - h, x)) / (2 * h)
    want = -dF / st.gamma(alpha).pdf(x)
    got = tl._standard_gamma_grad(t(np.full_like(x, alpha)), t(x)).numpy()
    np.testing.assert_allclose(got, want, rtol=5e-3, atol=1e-10)


def test_dirichlet_grad_is_the_implicit_derivative_of_the_beta_marginal():
    """_dirichlet_grad(x, alpha, total) = -(d/d alpha I_x(alpha, beta)) / pdf / (1 - x) at fixed beta =
    total - alpha (torch's scaling), the Beta CDF's derivative by central differences."""
    for a, b in ((0.5, 1.5), (2.0, 3.0), (8.0, 9.0), (1.2, 20.0)):
        x = st.beta(a, b).ppf([0.1, 0.4, 0.6, 0.9])
        h = 1e-6
        dF = (sp.betainc(a + h, b, x) - sp.betainc(a - h, b, x)) / (2 * h)
        want = -dF / st.beta(a, b).pdf(x) / (1 - x)
        got = tl._dirichlet_grad(t(x), t(np.full_like(x, a)), t(np.full_like(x, a + b))).numpy()
        np.testing.assert_allclose(got, want, rtol=2e-2, atol=1e-8)


def test_gamma_rsample_gradient_by_monte_carlo():
    """E[X] = alpha / rate: d/dalpha E[X] = 1 / rate, d/drate E[X] = -alpha / rate^2, from the reparameterised
    samples' gradients; Beta's d/da E[X] = b / (a + b)^2 likewise."""
    tl.manual_seed(0)
    alpha, rate = t([0.4, 2.0, 9.0], True), t([1.0, 2.0, 0.5], True)
    n = 40000
    D.Gamma(alpha, rate).rsample((n,)).mean(0).sum().backward()
    np.testing.assert_allclose(alpha.grad.numpy(), 1 / np.array([1.0, 2.0, 0.5]), rtol=0.05)
    np.testing.assert_allclose(rate.grad.numpy(), -np.array([0.4, 2.0, 9.0]) / np.array([1.0, 2.0, 0.5]) ** 2,
                               rtol=0.05)
    a, b = t([0.7, 3.0], True), t([2.0, 1.5], True)
    D.Beta(a, b).rsample((n,)).mean(0).sum().backward()
    av, bv = np.array([0.7, 3.0]), np.array([2.0, 1.5])
    np.testing.assert_allclose(a.grad.numpy(), bv / (av + bv) ** 2, rtol=0.05)
    np.testing.assert_allclose(b.grad.numpy(), -av / (av + bv) ** 2, rtol=0.05)


def test_dirichlet_rsample_gradient_by_monte_carlo():
    tl.manual_seed(1)
    c = t([0.8, 2.0, 3.5], True)
    w = np.array([1.0, -2.0, 0.5])
    (D.Dirichlet(c).rsample((40000,)).mean(0) * t(w)).sum().backward()
    cv = np.array([0.8, 2.0, 3.5])
    s = cv.sum()
    jac = (np.eye(3) * s - cv[:, None]) / s ** 2          # d mean_i / d c_j = (delta_ij s - c_i) / s^2
    np.testing.assert_allclose(c.grad.numpy(), w @ jac, rtol=0.08, atol=3e-3)


@pytest.mark.parametrize("make,mean,var", [
    (lambda: D.Gamma(t(0.3), t(2.0)), 0.15, 0.075),
    (lambda: D.Beta(t(0.5), t(0.5)), 0.5, 0.125),
    (lambda: D.Poisson(t(4.5)), 4.5, 4.5),
    (lambda: D.Binomial(10, t(0.3)), 3.0, 2.1),
    (lambda: D.Chi2(t(3.0)), 3.0, 6.0),
    (lambda: D.Geometric(t(0.25)), 3.0, 12.0),
    (lambda: D.NegativeBinomial(t(3.0), t(0.4)), 2.0, 2.0 / 0.6),
])
def test_sample_moments(make, mean, var):
    tl.manual_seed(2)
    s = make().sample((40000,)).numpy()
    assert abs(s.mean() - mean) < 5 * np.sqrt(var / 40000)
    np.testing.assert_allclose(s.var(), var, rtol=0.06)


def test_poisson_and_binomial_ops():
    tl.manual_seed(3)
    p = tl.poisson(t(np.full(20000, 2.5)))
    assert p.dtype == tl.float64 and abs(float(p.mean()) - 2.5) < 0.05 and float(p.min()) >= 0
    b = tl.binomial(t(np.full(20000, 8.0)), t(np.full(20000, 0.25)))
    assert abs(float(b.mean()) - 2.0) < 0.05 and float(b.max()) <= 8
    with pytest.raises(RuntimeError, match="invalid Poisson rate, expected rate to be non-negative"):
        tl.poisson(t([-1.0]))
    with pytest.raises(ValueError, match="binomial only supports floating-point dtypes for count, got: Long"):
        tl.binomial(tl.tensor([3]), t([0.5]))
    r = t([1.0, 2.0], True)
    y = tl.poisson(r)
    y.sum().backward()
    np.testing.assert_array_equal(r.grad.numpy(), [0.0, 0.0])       # torch's zero gradient


def _jacobian_logdet(tr, x):
    """log |det dy/dx| of an elementwise or vector transform, by autograd rows."""
    x = t(x, True)
    y = tr(x)
    rows = []
    for i in range(y.numel()):
        g, = tl.autograd.grad(y.reshape(-1)[i], x, retain_graph=True)
        rows.append(g.numpy().reshape(-1))
    return np.linalg.slogdet(np.array(rows))[1]


@pytest.mark.parametrize("make", [
    lambda: T.ExpTransform(), lambda: T.AffineTransform(0.5, -3.0), lambda: T.SigmoidTransform(),
    lambda: T.TanhTransform(), lambda: T.PowerTransform(t(2.5)), lambda: T.SoftplusTransform(),
    lambda: T.ComposeTransform([T.AffineTransform(1.0, 0.5), T.SigmoidTransform()]),
])      # (PowerTransform's exponent a float64 tensor: a Python number becomes a float32 one, as in torch)
def test_elementwise_transforms_inverse_and_logdet(make):
    tr = make()
    x = R.uniform(0.2, 1.5, 4)
    y = tr(t(x))
    np.testing.assert_allclose(tr.inv(y).numpy(), x, rtol=1e-10)
    ld = tr.log_abs_det_jacobian(t(x), y).numpy()
    np.testing.assert_allclose(ld.sum(), _jacobian_logdet(tr, x), rtol=1e-9)


def test_stick_breaking_maps_onto_the_simplex_and_back():
    tr = T.StickBreakingTransform()
    x = R.normal(size=4)
    y = tr(t(x))
    assert tuple(y.shape) == (5,) and bool(constraints.simplex.check(y))
    np.testing.assert_allclose(tr.inv(y).numpy(), x, rtol=1e-9, atol=1e-12)
    # its Jacobian onto the first 4 coordinates (the last one is determined)
    jac_ld = _jacobian_logdet(T.ComposeTransform([tr, _Head()]), x)
    np.testing.assert_allclose(float(tr.log_abs_det_jacobian(t(x), y)), jac_ld, rtol=1e-9)


class _Head(T.Transform):
    def _call(self, y):
        return y[..., :-1]


def test_transformed_distribution_is_lognormal_and_biject_to_reaches_each_support():
    loc, scale = t([0.2, -0.4]), t([0.7, 1.3])
    td = D.TransformedDistribution(D.Normal(loc, scale), [T.ExpTransform()])
    x = t([0.5, 2.0])
    np.testing.assert_allclose(td.log_prob(x).numpy(), D.LogNormal(loc, scale).log_prob(x).numpy(), rtol=1e-12)
    np.testing.assert_allclose(td.log_prob(x).numpy(), st.lognorm([0.7, 1.3], scale=np.exp([0.2, -0.4])).logpdf(
        [0.5, 2.0]), rtol=1e-10)
    z = t(R.normal(size=(3, 4)) * 3)
    for c in (constraints.positive, constraints.unit_interval, constraints.simplex, constraints.greater_than(2.0),
              constraints.interval(-1.0, 4.0), constraints.real, constraints.lower_cholesky):
        y = D.transform_to(c)(z if c is not constraints.lower_cholesky else t(R.normal(size=(3, 3))))
        assert bool(c.check(y).all()), c
    tanh_normal = D.TransformedDistribution(D.Normal(t(0.0), t(1.0)), [T.TanhTransform(cache_size=1)])
    tl.manual_seed(4)
    a = tanh_normal.rsample((5,))
    assert float(a.abs().max()) < 1 and np.isfinite(tanh_normal.log_prob(a).numpy()).all()   # SAC's policy


def test_independent_mixture_and_relaxed():
    base = D.Normal(t(np.zeros((2, 3))), t(np.ones((2, 3))))
    ind = D.Independent(base, 1)
    x = t(R.normal(size=(2, 3)))
    assert tuple(ind.batch_shape) == (2,) and tuple(ind.event_shape) == (3,)
    np.testing.assert_allclose(ind.log_prob(x).numpy(), base.log_prob(x).numpy().sum(-1), rtol=1e-12)
    mix = D.MixtureSameFamily(D.Categorical(probs=t([0.3, 0.7])), D.Normal(t([-1.0, 2.0]), t([0.5, 1.5])))
    v = np.array([0.1, 1.7])
    want = np.log(0.3 * st.norm(-1, 0.5).pdf(v) + 0.7 * st.norm(2, 1.5).pdf(v))
    np.testing.assert_allclose(mix.log_prob(t(v)).numpy(), want, rtol=1e-12)
    np.testing.assert_allclose(float(mix.mean), 0.3 * -1 + 0.7 * 2, rtol=1e-12)
    tl.manual_seed(5)
    logits = t([0.1, 1.0, -0.5], True)
    g = D.RelaxedOneHotCategorical(t(0.5), logits=logits).rsample((3,))       # Gumbel-softmax
    np.testing.assert_allclose(g.detach().numpy().sum(-1), 1.0, rtol=1e-12)
    (g[:, 0]).sum().backward()
    assert np.isfinite(logits.grad.numpy()).all() and np.abs(logits.grad.numpy()).sum() > 0
