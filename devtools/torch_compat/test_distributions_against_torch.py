"""tensorlib.distributions side by side with torch 2.13's torch.distributions: for every distribution, with
the same float64 parameters, the values of log_prob / cdf / icdf / entropy / mean / variance / mode / stddev
and their gradients with respect to the parameters (to 1e-8), the shapes of sample / rsample with a
sample_shape and after expand(), the validation errors, the KL pairs of torch's kl.py, and the moments of
20k samples against the distribution's (within a few standard errors)."""
from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import tensorlib as tl  # noqa: E402
import tensorlib.distributions as TD  # noqa: E402
import torch.distributions as PD  # noqa: E402

R = np.random.default_rng(7)


def _pos(*shape, lo=0.5, hi=3.0):
    return R.uniform(lo, hi, shape)


def _unit(*shape):
    return R.uniform(0.15, 0.85, shape)


def _spd(*shape):
    a = R.normal(size=shape + (shape[-1],))
    return a @ np.swapaxes(a, -1, -2) + shape[-1] * np.eye(shape[-1])


# name -> (parameters as NumPy arrays (or fixed Python values), a function of the library's module and the
# parameters' tensors that builds the distribution)
def _cases():
    lp = np.log(_unit(2, 3))
    return {
        "Normal": ({"loc": R.normal(size=3), "scale": _pos(3)}, lambda D, p: D.Normal(p["loc"], p["scale"])),
        "Uniform": ({"low": -_pos(3), "high": _pos(3)}, lambda D, p: D.Uniform(p["low"], p["high"])),
        "Bernoulli": ({"probs": _unit(3)}, lambda D, p: D.Bernoulli(probs=p["probs"])),
        "Categorical": ({"logits": lp}, lambda D, p: D.Categorical(logits=p["logits"])),
        "Exponential": ({"rate": _pos(3)}, lambda D, p: D.Exponential(p["rate"])),
        "Laplace": ({"loc": R.normal(size=3), "scale": _pos(3)}, lambda D, p: D.Laplace(p["loc"], p["scale"])),
        "LogNormal": ({"loc": R.normal(size=3) * 0.3, "scale": _pos(3, hi=1.0)},
                      lambda D, p: D.LogNormal(p["loc"], p["scale"])),
        "Gamma": ({"concentration": _pos(3), "rate": _pos(3)}, lambda D, p: D.Gamma(p["concentration"], p["rate"])),
        "Beta": ({"a": _pos(3, lo=1.5), "b": _pos(3, lo=1.5)}, lambda D, p: D.Beta(p["a"], p["b"])),
        "Dirichlet": ({"c": _pos(2, 3, lo=1.5)}, lambda D, p: D.Dirichlet(p["c"])),
        "Chi2": ({"df": _pos(3, lo=2.5, hi=6.0)}, lambda D, p: D.Chi2(p["df"])),
        "StudentT": ({"df": _pos(3, lo=4.5, hi=9.0), "loc": R.normal(size=3), "scale": _pos(3)},
                     lambda D, p: D.StudentT(p["df"], p["loc"], p["scale"])),
        "Poisson": ({"rate": _pos(3)}, lambda D, p: D.Poisson(p["rate"])),
        "Binomial": ({"probs": _unit(3)}, lambda D, p: D.Binomial(7, probs=p["probs"])),
        "Geometric": ({"probs": _unit(3)}, lambda D, p: D.Geometric(probs=p["probs"])),
        "OneHotCategorical": ({"probs": _unit(2, 3)}, lambda D, p: D.OneHotCategorical(probs=p["probs"])),
        # the temperature a tensor: torch 2.13's log_prob calls .log() on it
        "RelaxedBernoulli": ({"t": np.array(0.7), "probs": _unit(3)},
                             lambda D, p: D.RelaxedBernoulli(p["t"], probs=p["probs"])),
        "RelaxedOneHotCategorical": ({"t": np.array(0.7), "logits": lp},
                                     lambda D, p: D.RelaxedOneHotCategorical(p["t"], logits=p["logits"])),
        "Gumbel": ({"loc": R.normal(size=3), "scale": _pos(3)}, lambda D, p: D.Gumbel(p["loc"], p["scale"])),
        "HalfNormal": ({"scale": _pos(3)}, lambda D, p: D.HalfNormal(p["scale"])),
        "HalfCauchy": ({"scale": _pos(3)}, lambda D, p: D.HalfCauchy(p["scale"])),
        "Cauchy": ({"loc": R.normal(size=3), "scale": _pos(3)}, lambda D, p: D.Cauchy(p["loc"], p["scale"])),
        "Multinomial": ({"probs": _unit(2, 3)}, lambda D, p: D.Multinomial(5, probs=p["probs"])),
        "NegativeBinomial": ({"total_count": _pos(3), "probs": _unit(3)},
                             lambda D, p: D.NegativeBinomial(p["total_count"], probs=p["probs"])),
        "Pareto": ({"scale": _pos(3), "alpha": _pos(3, lo=4.5, hi=6.0)}, lambda D, p: D.Pareto(p["scale"], p["alpha"])),
        "Weibull": ({"scale": _pos(3), "c": _pos(3, lo=1.0)}, lambda D, p: D.Weibull(p["scale"], p["c"])),
        "Kumaraswamy": ({"a": _pos(3, lo=1.0), "b": _pos(3, lo=1.0)}, lambda D, p: D.Kumaraswamy(p["a"], p["b"])),
        "VonMises": ({"loc": R.normal(size=3), "k": _pos(3)}, lambda D, p: D.VonMises(p["loc"], p["k"])),
        "ContinuousBernoulli": ({"probs": np.array([0.2, 0.4999, 0.7])},
                                lambda D, p: D.ContinuousBernoulli(probs=p["probs"])),
        "FisherSnedecor": ({"df1": _pos(3, lo=5.0, hi=9.0), "df2": _pos(3, lo=9.0, hi=12.0)},
                           lambda D, p: D.FisherSnedecor(p["df1"], p["df2"])),
        "InverseGamma": ({"c": _pos(3, lo=6.0, hi=8.0), "r": _pos(3)}, lambda D, p: D.InverseGamma(p["c"], p["r"])),
        "LogisticNormal": ({"loc": R.normal(size=(2, 3)) * 0.3, "scale": _pos(2, 3, hi=1.0)},
                           lambda D, p: D.LogisticNormal(p["loc"], p["scale"])),
        "GeneralizedPareto": ({"loc": R.normal(size=3), "scale": _pos(3), "conc": np.array([-0.2, 0.1, 0.2])},
                              lambda D, p: D.GeneralizedPareto(p["loc"], p["scale"], p["conc"])),
        "Independent": ({"loc": R.normal(size=(2, 3)), "scale": _pos(2, 3)},
                        lambda D, p: D.Independent(D.Normal(p["loc"], p["scale"]), 1)),
        "MixtureSameFamily": ({"logits": lp, "loc": R.normal(size=(2, 3)), "scale": _pos(2, 3)},
                              lambda D, p: D.MixtureSameFamily(D.Categorical(logits=p["logits"]),
                                                               D.Normal(p["loc"], p["scale"]))),
        "MultivariateNormal": ({"loc": R.normal(size=(2, 3)), "cov": _spd(2, 3)},
                               lambda D, p: D.MultivariateNormal(p["loc"], covariance_matrix=p["cov"])),
        "MultivariateNormalPrecision": ({"loc": R.normal(size=3), "prec": _spd(3)},
                                        lambda D, p: D.MultivariateNormal(p["loc"], precision_matrix=p["prec"])),
        "MultivariateNormalTril": ({"loc": R.normal(size=3), "tril": np.linalg.cholesky(_spd(3))},
                                   lambda D, p: D.MultivariateNormal(p["loc"], scale_tril=p["tril"])),
        "LowRankMultivariateNormal": ({"loc": R.normal(size=(2, 3)), "f": R.normal(size=(2, 3, 2)), "d": _pos(2, 3)},
                                      lambda D, p: D.LowRankMultivariateNormal(p["loc"], p["f"], p["d"])),
        "Wishart": ({"df": np.array([4.5, 6.0]), "cov": _spd(2, 3)},
                    lambda D, p: D.Wishart(p["df"], covariance_matrix=p["cov"])),
        "LKJCholesky": ({"c": np.array([0.7, 2.5])}, lambda D, p: D.LKJCholesky(3, p["c"])),
        "TransformedDistribution": (
            {"loc": R.normal(size=3), "scale": _pos(3)},
            lambda D, p: D.TransformedDistribution(D.Normal(p["loc"], p["scale"]),
                                                   [D.transforms.AffineTransform(0.5, 2.0),
                                                    D.transforms.TanhTransform(), D.transforms.SigmoidTransform()])),
    }


CASES = _cases()


def _build(name, grad=True):
    params, make = CASES[name]
    tp = {k: torch.tensor(v, dtype=torch.float64, requires_grad=grad) for k, v in params.items()}
    lp = {k: tl.tensor(v, dtype=tl.float64, requires_grad=grad) for k, v in params.items()}
    return make(PD, tp), tp, make(TD, lp), lp


def _compare(name, fn, value=None):
    """fn(distribution[, value]) in both libraries: the values and the gradients of their sum."""
    d_t, tp, d_l, lp = _build(name)
    try:
        want = fn(d_t) if value is None else fn(d_t, torch.tensor(value))
    except NotImplementedError:
        with pytest.raises(NotImplementedError):
            fn(d_l) if value is None else fn(d_l, tl.tensor(value))
        return None
    except RuntimeError as e:   # torch 2.13's GeneralizedPareto compares float64 with a float32 0.0 and raises
        pytest.skip(f"torch raises: {e}")
    got = fn(d_l) if value is None else fn(d_l, tl.tensor(value))
    w, g = want.detach().numpy(), got.detach().numpy()
    assert g.shape == w.shape and g.dtype == w.dtype, (g.shape, w.shape, g.dtype, w.dtype)
    np.testing.assert_allclose(g, w, rtol=1e-8, atol=1e-8, equal_nan=True)
    if want.requires_grad and np.isfinite(w).all():
        try:
            want.sum().backward()
        except NotImplementedError:     # torch's igamma has no derivative in its first argument (Gamma.cdf)
            return w
        got.sum().backward()
        for k in tp:
            gt, gl = tp[k].grad, lp[k].grad
            assert (gt is None) == (gl is None), k
            if gt is not None:
                np.testing.assert_allclose(gl.numpy(), gt.numpy(), rtol=1e-8, atol=1e-8, err_msg=k)
    return w


@pytest.mark.parametrize("name", sorted(CASES))
@pytest.mark.parametrize("prop", ["mean", "variance", "stddev", "mode", "entropy"])
def test_moments_and_entropy(name, prop):
    _compare(name, (lambda d: getattr(d, prop)()) if prop == "entropy" else (lambda d: getattr(d, prop)))


def _value(name):
    d_t = _build(name, grad=False)[0]
    torch.manual_seed(3)
    return d_t.sample((2,)).numpy()


@pytest.mark.parametrize("name", sorted(CASES))
@pytest.mark.parametrize("fn", ["log_prob", "cdf"])
def test_log_prob_and_cdf(name, fn):
    _compare(name, lambda d, v: getattr(d, fn)(v), _value(name))


@pytest.mark.parametrize("name", sorted(CASES))
def test_icdf(name):
    _compare(name, lambda d, u: d.icdf(u), R.uniform(0.1, 0.9, (2,) + tuple(_build(name, False)[0].batch_shape)))


def _r(x):
    return repr(x).replace("tensorlib.", "torch.")


@pytest.mark.parametrize("name", sorted(CASES))
def test_shapes_support_and_expand(name):
    d_t, _, d_l, _ = _build(name, grad=False)
    assert tuple(d_l.batch_shape) == tuple(d_t.batch_shape) and tuple(d_l.event_shape) == tuple(d_t.event_shape)
    assert d_l.has_rsample == d_t.has_rsample and d_l.has_enumerate_support == d_t.has_enumerate_support
    assert _r(d_l.support) == repr(d_t.support)
    assert {k: _r(v) for k, v in d_l.arg_constraints.items()} == {k: repr(v) for k, v in d_t.arg_constraints.items()}
    s = d_l.sample((4, 2))
    s_t = d_t.sample((4, 2))
    assert tuple(s.shape) == tuple(s_t.shape) and s.dtype.is_floating_point == s_t.dtype.is_floating_point
    assert bool(d_l.support.check(s).all())
    if d_l.has_rsample:
        assert tuple(d_l.rsample((3,)).shape) == tuple(d_t.rsample((3,)).shape)
    e_t = d_t.expand((5,) + tuple(d_t.batch_shape))
    e_l = d_l.expand((5,) + tuple(d_l.batch_shape))
    assert tuple(e_l.batch_shape) == tuple(e_t.batch_shape) and tuple(e_l.sample().shape) == tuple(e_t.sample().shape)


@pytest.mark.parametrize("name", sorted(CASES))
def test_moments_of_samples(name):
    d_t, _, d_l, _ = _build(name, grad=False)
    if name in ("Cauchy", "HalfCauchy"):
        return          # no mean
    tl.manual_seed(0)
    n = 20000
    s = d_l.sample((n,)).double().numpy()
    if name == "VonMises":      # circular: the means of cos and sin against torch's samples'
        torch.manual_seed(0)
        st = d_t.sample((n,)).numpy()
        for f in (np.cos, np.sin):
            se = np.sqrt((f(s).var(0) + f(st).var(0)) / n)
            assert (np.abs(f(s).mean(0) - f(st).mean(0)) <= 5 * se).all()
        return
    try:
        mean, var = d_t.mean.numpy(), d_t.variance.numpy()
    except NotImplementedError:     # torch has no mean (RelaxedBernoulli, TransformedDistribution, ...)
        return
    ok = np.isfinite(mean) & np.isfinite(var)
    se = np.sqrt(var / n)
    assert (np.abs(s.mean(0) - mean)[ok] <= 5 * se[ok] + 1e-12).all(), (s.mean(0), mean)
    if ok.any():
        np.testing.assert_allclose(s.var(0)[ok], var[ok], rtol=0.15)


def _msg(f):
    try:
        f()
    except Exception as e:      # noqa: BLE001 - the comparison is of whatever each raises
        return type(e).__name__, str(e)
    return None


@pytest.mark.parametrize("make", [
    lambda D, T: D.Normal(T([0.0]), T([-1.0])),
    lambda D, T: D.Gamma(T([1.0]), T([0.0])),
    lambda D, T: D.Beta(T([1.0]), T([-2.0])),
    lambda D, T: D.Dirichlet(T([1.0, -1.0])),
    lambda D, T: D.Binomial(3, probs=T([1.5])),
    lambda D, T: D.Exponential(T([1.0])).log_prob(T([-1.0])),
    lambda D, T: D.Poisson(T([1.0])).log_prob(T([1.5])),
    lambda D, T: D.Beta(T([1.0]), T([2.0])).log_prob(T([1.5])),
    lambda D, T: D.Categorical(probs=T([0.5, 0.5])).log_prob(T([2])),
    lambda D, T: D.Exponential(T([1.0, 2.0])).log_prob(T([1.0, 1.0, 1.0])),
    lambda D, T: D.Bernoulli(T([0.5]), logits=T([0.0])),
])
def test_validation_errors(make):
    t = _msg(lambda: make(PD, lambda v: torch.tensor(v, dtype=torch.float64)))
    g = _msg(lambda: make(TD, lambda v: tl.tensor(v, dtype=tl.float64)))
    assert t is not None and g is not None
    assert g[0] == t[0] and g[1].replace("tensorlib", "torch") == t[1].replace("tensor(", "tensor(")


KL_PAIRS = [("Normal", "Normal"), ("Bernoulli", "Bernoulli"), ("Categorical", "Categorical"),
            ("Uniform", "Uniform"), ("Exponential", "Exponential"), ("Gamma", "Gamma"), ("Beta", "Beta"),
            ("Dirichlet", "Dirichlet"), ("Laplace", "Laplace"), ("Poisson", "Poisson"), ("Binomial", "Binomial"),
            ("Geometric", "Geometric"), ("Gumbel", "Gumbel"), ("HalfNormal", "HalfNormal"), ("Pareto", "Pareto"),
            ("OneHotCategorical", "OneHotCategorical"), ("Cauchy", "Cauchy"), ("Independent", "Independent"),
            ("ContinuousBernoulli", "ContinuousBernoulli"), ("Exponential", "Gamma"), ("Gamma", "Exponential"),
            ("Exponential", "Normal"), ("Gamma", "Normal"), ("Beta", "Uniform"), ("Uniform", "Normal"),
            ("Uniform", "Gamma"), ("Uniform", "Exponential"), ("Normal", "Gumbel"), ("Laplace", "Normal"),
            ("Exponential", "Gumbel"), ("Gamma", "Gumbel"), ("Uniform", "Gumbel"), ("Beta", "Exponential"),
            ("Beta", "Gamma"), ("Beta", "Normal"), ("Exponential", "Pareto"), ("Pareto", "Normal"),
            ("ContinuousBernoulli", "Normal"), ("Uniform", "Beta"), ("Uniform", "Pareto"),
            ("LogNormal", "LogNormal"), ("MultivariateNormal", "MultivariateNormal"),
            ("LowRankMultivariateNormal", "LowRankMultivariateNormal"),
            ("MultivariateNormal", "LowRankMultivariateNormal"), ("LowRankMultivariateNormal", "MultivariateNormal"),
            ("HalfCauchy", "HalfCauchy"), ("Chi2", "Chi2"), ("Chi2", "Gamma")]


@pytest.mark.parametrize("pq", KL_PAIRS, ids=lambda pq: f"{pq[0]}-{pq[1]}")
def test_kl_pairs(pq):
    p_t, tp, p_l, lp = _build(pq[0])
    q_t, tq, q_l, lq = _build(pq[1])
    try:
        want = PD.kl_divergence(p_t, q_t)
    except NotImplementedError as e:
        with pytest.raises(NotImplementedError) as ei:
            TD.kl_divergence(p_l, q_l)
        assert str(ei.value) == str(e)
        return
    got = TD.kl_divergence(p_l, q_l)
    w = want.detach().numpy()
    np.testing.assert_allclose(got.detach().numpy(), w, rtol=1e-8, atol=1e-8)
    if want.requires_grad and np.isfinite(w).all():
        want.sum().backward()
        got.sum().backward()
        for a, b in ((tp, lp), (tq, lq)):
            for k in a:
                if a[k].grad is not None:
                    np.testing.assert_allclose(b[k].grad.numpy(), a[k].grad.numpy(), rtol=1e-8, atol=1e-8)


@pytest.mark.parametrize("name", ["ExpTransform", "AffineTransform", "SigmoidTransform", "TanhTransform",
                                  "SoftmaxTransform", "PowerTransform", "AbsTransform", "SoftplusTransform",
                                  "StickBreakingTransform", "LowerCholeskyTransform", "ReshapeTransform",
                                  "IndependentTransform", "CatTransform", "StackTransform", "ComposeTransform"])
def test_transforms(name):
    def make(T):
        return {
            "ExpTransform": lambda: T.ExpTransform(), "AffineTransform": lambda: T.AffineTransform(0.3, -2.0),
            "SigmoidTransform": lambda: T.SigmoidTransform(), "TanhTransform": lambda: T.TanhTransform(),
            "SoftmaxTransform": lambda: T.SoftmaxTransform(), "PowerTransform": lambda: T.PowerTransform(1.5),
            "AbsTransform": lambda: T.AbsTransform(), "SoftplusTransform": lambda: T.SoftplusTransform(),
            "StickBreakingTransform": lambda: T.StickBreakingTransform(),
            "LowerCholeskyTransform": lambda: T.LowerCholeskyTransform(),
            "ReshapeTransform": lambda: T.ReshapeTransform((2, 3), (6,)),
            "IndependentTransform": lambda: T.IndependentTransform(T.ExpTransform(), 1),
            "CatTransform": lambda: T.CatTransform([T.ExpTransform(), T.AffineTransform(1.0, 2.0)], dim=-1,
                                                   lengths=[1, 2]),
            "StackTransform": lambda: T.StackTransform([T.ExpTransform(), T.SigmoidTransform(),
                                                        T.TanhTransform()], dim=-1),
            "ComposeTransform": lambda: T.ComposeTransform([T.AffineTransform(0.1, 0.5), T.ExpTransform()]),
        }[name]()
    x = R.normal(size=(3, 3)) * 0.5 + (1.0 if name == "PowerTransform" else 0.0)
    if name == "ReshapeTransform":
        x = R.normal(size=(4, 2, 3))
    t_t, t_l = make(PD.transforms), make(TD.transforms)
    xt = torch.tensor(x, requires_grad=True)
    xl = tl.tensor(x, requires_grad=True)
    yt, yl = t_t(xt), t_l(xl)
    np.testing.assert_allclose(yl.detach().numpy(), yt.detach().numpy(), rtol=1e-10, atol=1e-12)
    if t_t.bijective:
        np.testing.assert_allclose(t_l.inv(yl).detach().numpy(), t_t.inv(yt).detach().numpy(), rtol=1e-7,
                                   atol=1e-10)
    try:
        jt = t_t.log_abs_det_jacobian(xt, yt)
    except NotImplementedError:
        return
    jl = t_l.log_abs_det_jacobian(xl, yl)
    np.testing.assert_allclose(jl.detach().numpy(), jt.detach().numpy(), rtol=1e-8, atol=1e-10)
    (jt.sum() + yt.sum()).backward()
    (jl.sum() + yl.sum()).backward()
    np.testing.assert_allclose(xl.grad.numpy(), xt.grad.numpy(), rtol=1e-7, atol=1e-10)
    assert repr(t_l) == repr(t_t) and repr(t_l.domain) == repr(t_t.domain)
    assert repr(t_l.codomain) == repr(t_t.codomain) and t_l.sign == t_t.sign if name in (
        "ExpTransform", "AffineTransform", "SigmoidTransform", "TanhTransform") else True


@pytest.mark.parametrize("cname", ["real", "positive", "unit_interval", "simplex", "lower_cholesky",
                                   "greater_than", "interval", "real_vector", "nonnegative", "corr_cholesky",
                                   "positive_definite"])
def test_biject_to(cname):
    def c(C):
        return {"greater_than": lambda: C.greater_than(1.5), "interval": lambda: C.interval(-1.0, 2.0)}.get(
            cname, lambda: getattr(C, cname))()
    x = R.normal(size=(3, 3)) if cname not in ("corr_cholesky",) else R.normal(size=(2, 3))
    for reg in ("biject_to", "transform_to"):
        try:
            t_t = getattr(PD, reg)(c(PD.constraints))
        except NotImplementedError as e:
            with pytest.raises(NotImplementedError, match=str(e)):
                getattr(TD, reg)(c(TD.constraints))
            continue
        t_l = getattr(TD, reg)(c(TD.constraints))
        np.testing.assert_allclose(t_l(tl.tensor(x)).numpy(), t_t(torch.tensor(x)).numpy(), rtol=1e-10, atol=1e-12)
        assert type(t_l).__name__ == type(t_t).__name__


def test_straight_through_and_rsample_gradients():
    p = R.uniform(0.2, 1.0, (2, 3))
    pl = tl.tensor(p, requires_grad=True)
    tl.manual_seed(0)
    s = TD.OneHotCategoricalStraightThrough(probs=pl).rsample((4,))
    assert tuple(s.shape) == (4, 2, 3) and set(np.unique(s.detach().numpy())) <= {0.0, 1.0}
    (s * tl.tensor(np.arange(3.0))).sum().backward()
    assert pl.grad is not None and np.isfinite(pl.grad.numpy()).all()
