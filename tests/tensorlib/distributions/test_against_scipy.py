"""tensorlib.distributions without torch: log_prob / cdf / icdf / entropy / mean / variance against
scipy.stats and closed forms, float64 gradchecks of log_prob and entropy in the parameters, KL divergences
against numerical integration, validation errors."""
from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.stats as st
from scipy import integrate

import tensorlib as tl
import tensorlib.distributions as D
from tensorlib.autograd import gradcheck

R = np.random.default_rng(11)


def t(a, grad=False):
    return tl.tensor(np.asarray(a, dtype=np.float64), requires_grad=grad)


A = np.array([0.7, 1.5, 3.2])
B = np.array([1.3, 0.6, 2.4])
X = np.array([0.3, 1.1, 2.5])
U = np.array([0.2, 0.45, 0.85])

# name -> (tensorlib distribution, scipy frozen distribution, values inside the support)
SCIPY = {
    "Normal": (lambda: D.Normal(t(A), t(B)), st.norm(A, B), X),
    "Exponential": (lambda: D.Exponential(t(A)), st.expon(scale=1 / A), X),
    "Laplace": (lambda: D.Laplace(t(A), t(B)), st.laplace(A, B), X),
    "LogNormal": (lambda: D.LogNormal(t(A), t(B)), st.lognorm(B, scale=np.exp(A)), X),
    "Gamma": (lambda: D.Gamma(t(A), t(B)), st.gamma(A, scale=1 / B), X),
    "Beta": (lambda: D.Beta(t(A), t(B)), st.beta(A, B), U),
    "Chi2": (lambda: D.Chi2(t(A)), st.chi2(A), X),
    "StudentT": (lambda: D.StudentT(t(A + 2), t(B), t(A)), st.t(A + 2, B, A), X),
    "Gumbel": (lambda: D.Gumbel(t(A), t(B)), st.gumbel_r(A, B), X),
    "HalfNormal": (lambda: D.HalfNormal(t(B)), st.halfnorm(scale=B), X),
    "HalfCauchy": (lambda: D.HalfCauchy(t(B)), st.halfcauchy(scale=B), X),
    "Cauchy": (lambda: D.Cauchy(t(A), t(B)), st.cauchy(A, B), X),
    "Pareto": (lambda: D.Pareto(t(B * 0.2), t(A + 2)), st.pareto(A + 2, scale=B * 0.2), X),
    "Weibull": (lambda: D.Weibull(t(B), t(A)), st.weibull_min(A, scale=B), X),
    "InverseGamma": (lambda: D.InverseGamma(t(A + 2), t(B)), st.invgamma(A + 2, scale=B), X),
    "FisherSnedecor": (lambda: D.FisherSnedecor(t(A + 4), t(B + 4)), st.f(A + 4, B + 4), X),
    "VonMises": (lambda: D.VonMises(t(A - 1), t(B)), st.vonmises(B, loc=A - 1), X - 1),
    "Poisson": (lambda: D.Poisson(t(A)), st.poisson(A), np.array([0.0, 2.0, 5.0])),
    "Geometric": (lambda: D.Geometric(t(U)), st.geom(U, loc=-1), np.array([0.0, 2.0, 5.0])),
    "Binomial": (lambda: D.Binomial(7, t(U)), st.binom(7, U), np.array([0.0, 2.0, 5.0])),
    "NegativeBinomial": (lambda: D.NegativeBinomial(t(A), t(U)), st.nbinom(A, 1 - U), np.array([0.0, 2.0, 5.0])),
    "GeneralizedPareto": (lambda: D.GeneralizedPareto(t(A), t(B), t([-0.2, 0.1, 0.3])),
                          st.genpareto([-0.2, 0.1, 0.3], A, B), A + X * 0.5),
    "Uniform": (lambda: D.Uniform(t(-A), t(B)), st.uniform(-A, A + B), X * 0.2),
}


@pytest.mark.parametrize("name", sorted(SCIPY))
def test_log_prob_against_scipy(name):
    make, ref, x = SCIPY[name]
    d = make()
    lp = ref.logpmf(x) if hasattr(ref, "logpmf") else ref.logpdf(x)
    # VonMises: torch's log I0 is a polynomial approximation (Abramowitz and Stegun 9.8.1-2), good to ~1e-7
    rtol = 1e-7 if name == "VonMises" else 1e-9
    np.testing.assert_allclose(d.log_prob(t(x)).numpy(), lp, rtol=rtol, atol=1e-12)


@pytest.mark.parametrize("name", sorted(SCIPY))
def test_moments_entropy_cdf_icdf_against_scipy(name):
    make, ref, x = SCIPY[name]
    d = make()
    # (VonMises' variance is torch's circular variance, 1 - I1/I0; SciPy's is the linear one)
    for prop, want in (("mean", ref.mean()), ("variance", ref.var() if name != "VonMises" else np.nan * A)):
        try:
            got = getattr(d, prop).numpy()
        except NotImplementedError:
            continue
        ok = np.isfinite(want)
        np.testing.assert_allclose(got[ok], want[ok], rtol=1e-9)
    discrete = hasattr(ref, "logpmf")
    try:
        h = d.entropy().numpy()
    except NotImplementedError:
        h = None
    if h is not None and not discrete and name != "VonMises":
        np.testing.assert_allclose(h, ref.entropy(), rtol=1e-8)
    try:
        c = d.cdf(t(x)).numpy()
    except NotImplementedError:
        return
    np.testing.assert_allclose(c, ref.cdf(x), rtol=1e-9, atol=1e-12)
    try:
        q = d.icdf(t(U)).numpy()
    except NotImplementedError:
        return
    np.testing.assert_allclose(q, ref.ppf(U), rtol=1e-9)


GRAD = {
    "Normal": (lambda a, b: D.Normal(a, b), X),
    "Gamma": (lambda a, b: D.Gamma(a, b), X),
    "Beta": (lambda a, b: D.Beta(a, b), U),
    "StudentT": (lambda a, b: D.StudentT(a + 2, b, a), X),
    "Laplace": (lambda a, b: D.Laplace(a, b), X),
    "Weibull": (lambda a, b: D.Weibull(b, a), X),
    "Kumaraswamy": (lambda a, b: D.Kumaraswamy(a, b), U),
    "VonMises": (lambda a, b: D.VonMises(a, b), X),
    "ContinuousBernoulli": (lambda a, b: D.ContinuousBernoulli(logits=a - b), U),
    "NegativeBinomial": (lambda a, b: D.NegativeBinomial(a, logits=b), np.array([0.0, 2.0, 5.0])),
    "FisherSnedecor": (lambda a, b: D.FisherSnedecor(a + 1, b + 1), X),
    "Dirichlet": (lambda a, b: D.Dirichlet(a + b), U / U.sum()),
    "RelaxedBernoulli": (lambda a, b: D.RelaxedBernoulli(a, logits=b), U),
}


@pytest.mark.parametrize("name", sorted(GRAD))
def test_gradcheck_log_prob_and_entropy(name):
    make, x = GRAD[name]
    assert gradcheck(lambda a, b: make(a, b).log_prob(t(x)), (t(A, True), t(B, True)))
    try:
        make(t(A), t(B)).entropy()
    except NotImplementedError:
        return
    assert gradcheck(lambda a, b: make(a, b).entropy(), (t(A, True), t(B, True)))


def _kl_numeric(p_logpdf, q_logpdf, lo, hi):
    return integrate.quad(lambda v: math.exp(p_logpdf(v)) * (p_logpdf(v) - q_logpdf(v)), lo, hi, limit=200)[0]


@pytest.mark.parametrize("pq", [
    (lambda: D.Gamma(t(2.5), t(1.5)), lambda: D.Gamma(t(1.2), t(0.7)), 0, np.inf),
    (lambda: D.Beta(t(2.5), t(1.5)), lambda: D.Beta(t(1.2), t(3.7)), 0, 1),
    (lambda: D.Laplace(t(0.3), t(1.5)), lambda: D.Normal(t(-0.2), t(0.9)), -np.inf, np.inf),
    (lambda: D.Exponential(t(1.3)), lambda: D.Gamma(t(2.0), t(0.5)), 0, np.inf),
    # (Gumbel's density overflows far out: finite bounds well past its mass)
    (lambda: D.Gumbel(t(0.3), t(1.1)), lambda: D.Gumbel(t(-0.5), t(2.0)), -20, 60),
    (lambda: D.Normal(t(0.3), t(1.1)), lambda: D.Gumbel(t(-0.5), t(2.0)), -20, 20),
    (lambda: D.HalfNormal(t(1.3)), lambda: D.HalfNormal(t(0.6)), 0, np.inf),
    (lambda: D.Cauchy(t(0.3), t(1.3)), lambda: D.Cauchy(t(-1.0), t(0.6)), -np.inf, np.inf),
])
def test_kl_against_numerical_integration(pq):
    mp, mq, lo, hi = pq
    p, q = mp(), mq()
    want = _kl_numeric(lambda v: float(p.log_prob(t(v))), lambda v: float(q.log_prob(t(v))), lo, hi)
    np.testing.assert_allclose(float(D.kl_divergence(p, q)), want, rtol=1e-6)


def test_discrete_kl_and_exponential_family_entropy():
    p, q = D.Poisson(t(2.5)), D.Poisson(t(1.5))
    k = np.arange(60.0)
    pk = st.poisson(2.5).pmf(k)
    np.testing.assert_allclose(float(D.kl_divergence(p, q)),
                               (pk * (st.poisson(2.5).logpmf(k) - st.poisson(1.5).logpmf(k))).sum(), rtol=1e-10)
    # ExponentialFamily.entropy (natural parameters, log normaliser by autograd) equals the closed form
    g = D.Gamma(t([2.5, 0.7]), t([1.5, 3.0]))
    np.testing.assert_allclose(D.ExponentialFamily.entropy(g).detach().numpy(), g.entropy().numpy(), rtol=1e-12)
    np.testing.assert_allclose(g.entropy().numpy(), st.gamma([2.5, 0.7], scale=1 / np.array([1.5, 3.0])).entropy())


def test_validation_messages():
    with pytest.raises(ValueError, match=r"Expected parameter rate \(Tensor of shape \(1,\)\) of distribution "
                                         r"Gamma\(concentration: tensor\(\[1\.\], dtype=\w+\.float64\), rate: "
                                         r"tensor\(\[0\.\], dtype=\w+\.float64\)\) to satisfy the constraint "
                                         r"GreaterThan\(lower_bound=0\.0\), but found invalid values"):
        D.Gamma(t([1.0]), t([0.0]))
    with pytest.raises(ValueError, match=r"Expected value argument \(Tensor of shape \(1,\)\) to be within the "
                                         r"support \(IntegerGreaterThan\(lower_bound=0\)\) of the distribution "
                                         r"Poisson\(rate: tensor\(\[1\.\]"):
        D.Poisson(t([1.0])).log_prob(t([1.5]))
    with pytest.raises(ValueError, match="Value is not broadcastable with batch_shape\\+event_shape"):
        D.Exponential(t([1.0, 2.0])).log_prob(t([1.0, 1.0, 1.0]))
    assert np.isnan(D.Gamma(t([1.0]), t([0.0]), validate_args=False).mean.numpy()).sum() == 0
    with pytest.raises(ValueError, match="Either `probs` or `logits` must be specified, but not both."):
        D.Geometric(t([0.5]), t([0.0]))


def _spd(n):
    a = R.normal(size=(n, n))
    return a @ a.T + n * np.eye(n)


def test_multivariate_normal_forms_against_scipy():
    loc, cov = R.normal(size=3), _spd(3)
    x = R.normal(size=(4, 3))
    ref = st.multivariate_normal(loc, cov)
    for d in (D.MultivariateNormal(t(loc), covariance_matrix=t(cov)),
              D.MultivariateNormal(t(loc), precision_matrix=t(np.linalg.inv(cov))),
              D.MultivariateNormal(t(loc), scale_tril=t(np.linalg.cholesky(cov)))):
        np.testing.assert_allclose(d.log_prob(t(x)).numpy(), ref.logpdf(x), rtol=1e-10)
        np.testing.assert_allclose(float(d.entropy()), ref.entropy(), rtol=1e-10)
        np.testing.assert_allclose(d.covariance_matrix.numpy(), cov, rtol=1e-10)
    f, diag = R.normal(size=(3, 2)), np.array([0.5, 1.0, 2.0])
    lr = D.LowRankMultivariateNormal(t(loc), t(f), t(diag))
    np.testing.assert_allclose(lr.log_prob(t(x)).numpy(),
                               st.multivariate_normal(loc, f @ f.T + np.diag(diag)).logpdf(x), rtol=1e-10)
    assert gradcheck(lambda m, c: D.MultivariateNormal(m, scale_tril=c.tril()).log_prob(t(x)),
                     (t(loc, True), t(np.linalg.cholesky(cov), True)))
    tl.manual_seed(0)
    s = D.MultivariateNormal(t(loc), covariance_matrix=t(cov)).sample((40000,)).numpy()
    np.testing.assert_allclose(np.cov(s.T), cov, rtol=0.05, atol=0.05)


def test_wishart_against_scipy():
    cov = _spd(3)
    x = st.wishart(6.0, cov).rvs(random_state=1)
    d = D.Wishart(t(6.0), covariance_matrix=t(cov))
    np.testing.assert_allclose(float(d.log_prob(t(x))), st.wishart(6.0, cov).logpdf(x), rtol=1e-10)
    np.testing.assert_allclose(float(d.entropy()), st.wishart(6.0, cov).entropy(), rtol=1e-10)
    np.testing.assert_allclose(d.mean.numpy(), 6.0 * cov, rtol=1e-12)
