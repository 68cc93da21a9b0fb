"""Sampling: multinomial, bernoulli, random_. Seeded by tensorlib's generators (tensorlib.random): only
`random` and `integers` draws are used, which NumPy's and CuPy 13's Generators both have.

multinomial without replacement uses the exponential-keys trick (the categories sorted by E/p, E ~ Exp(1),
are a draw without replacement proportional to p); with replacement, uniform draws are located in each
row's cumulative distribution. The checks of the probabilities' values need their values on the host:
made on the CPU only (torch asserts on the device for CUDA tensors, as for gather).
"""
from __future__ import annotations

from .. import _dtype as D
from .. import random as R
from .._device import device_of
from ._define import Tensor, dispatch, np, op, public, special_functions, write_outs
from .misc import RANDOM_FILL
from .broadcast import expand
from .creation import empty, empty_like
from .misc import BERNOULLI_, copy_


@op("multinomial")
def MULTINOMIAL(xp, p, num_samples, replacement=False, generator=None):
    rng = R._gen_for(device_of(p), generator)
    n = p.shape[-1]
    p2 = p.reshape(-1, n).astype(np.float64)
    rows = p2.shape[0]
    if xp is np and p2.size:
        sums = np.add.reduce(p2, 1)
        # the usual case in three reductions: the least element >= 0 (False for a NaN), every row's sum finite
        # (an inf would make it inf) and > 0; the exact cause only when it is not
        if not (np.minimum.reduce(p2, None) >= 0 and np.isfinite(sums).all() and np.minimum.reduce(sums) > 0):
            if not bool(np.isfinite(p2).all()) or bool((p2 < 0).any()):
                raise RuntimeError("probability tensor contains either `inf`, `nan` or element < 0")
            if bool((sums <= 0).any()):
                raise RuntimeError("invalid multinomial distribution (sum of probabilities <= 0)")
    if not replacement:
        e = -xp.log1p(-rng.random((rows, n), dtype=np.float64))
        pos = p2 > 0
        keys = xp.where(pos, e / xp.where(pos, p2, 1.0), xp.inf)
        idx = xp.argsort(keys, axis=1)[:, :num_samples]
    elif rows == 1:         # one distribution: the search below without the rows' offsets (the same values)
        cdf = xp.cumsum(p2[0])
        cdf /= cdf[-1]
        u = rng.random((1, num_samples), dtype=np.float64)
        idx = xp.minimum(xp.searchsorted(cdf, u, side="right"), n - 1)
    else:
        cdf = xp.cumsum(p2, axis=1)
        cdf = cdf / cdf[:, -1:]
        u = rng.random((rows, num_samples), dtype=np.float64)
        # one search over every row at once: row r's distribution shifted to (r, r + 1], its draws to r + u
        # (count of the row's cdf values <= u; memory rows x (categories + samples), not their product)
        off = xp.arange(rows, dtype=np.float64)[:, None]
        pos = xp.searchsorted((cdf + off).reshape(-1), (u + off).reshape(-1), side="right")
        idx = xp.minimum(pos.reshape(rows, num_samples) - xp.arange(rows)[:, None] * n, n - 1)
    return idx.astype(np.int64).reshape(p.shape[:-1] + (num_samples,))


@public(method=True)
def multinomial(input, num_samples, replacement=False, *, generator=None, out=None):
    if input.ndim not in (1, 2):
        raise RuntimeError("prob_dist must be 1 or 2 dim")
    if input._data.dtype.kind != "f" and input._data.dtype != D.BF16:
        raise RuntimeError(f"multinomial only supports floating-point dtypes for input, got: "
                           f"{D.scalar_name(input._data.dtype)}")
    num_samples = int(num_samples)
    if num_samples <= 0:
        raise RuntimeError("cannot sample n_sample <= 0 samples")
    if not replacement and num_samples > input.shape[-1]:
        raise RuntimeError("cannot sample n_sample > prob_dist.size(-1) samples without replacement")
    return write_outs(dispatch(MULTINOMIAL, input, num_samples, replacement=bool(replacement), generator=generator),
                      out, "multinomial")


@op("bernoulli", node_name="BernoulliBackward0")
def BERNOULLI(xp, p, generator=None):
    rng = R._gen_for(device_of(p), generator)
    return (rng.random(p.shape, dtype=np.float64) < p).astype(p.dtype)


BERNOULLI.def_backward(lambda ctx, g: (g * 0,))


@public(method=True)
def bernoulli(input, p=None, *, generator=None, out=None):
    if p is not None:
        return write_outs(bernoulli_(empty_like(input), p, generator=generator), out, "bernoulli")
    return write_outs(dispatch(BERNOULLI, input, generator=generator), out, "bernoulli")


@public(method=True)
def bernoulli_(self, p=0.5, *, generator=None):
    if isinstance(p, Tensor):
        return copy_(self, bernoulli(expand(p.to(self.device), tuple(self.shape)), generator=generator))
    return dispatch(BERNOULLI_, self, p=p, generator=generator)


_MANTISSA = {"float16": 11, "bfloat16": 8, "float32": 24, "float64": 53}


def _random_k(xp, a, low, high, generator=None):
    a[...] = R.sample("randint", a.shape, a.dtype, device_of(a), generator=generator, low=low, high=high)


RANDOM_ = op("random_", inplace_of=RANDOM_FILL)(_random_k)


@public(method=True)
def random_(self, from_=0, to=None, *, generator=None, **kw):
    named_from = "from" in kw
    if named_from:
        from_ = kw.pop("from")
    if kw:
        raise TypeError(f"random_() got an unexpected keyword argument '{next(iter(kw))}'")
    if to is None and from_ != 0 and not named_from:   # random_(to): [0, to)
        from_, to = 0, from_
    dt = self._data.dtype
    if to is None:
        if dt == np.bool_:
            to = 2
        elif dt.kind == "f":
            to = (1 << _MANTISSA.get(self.dtype.name if hasattr(self.dtype, "name") else str(dt), 24)) + 1
        else:
            to = int(np.iinfo(dt).max) + 1
    if dt == np.bool_ and (from_ < 0 or to > 2):
        raise RuntimeError("to - 1 is out of bounds for bool" if to > 2 else "from is out of bounds for bool")
    if from_ >= to:
        raise RuntimeError(f"random_ expects 'from' to be less than 'to', but got from={from_} >= to={to}")
    return dispatch(RANDOM_, self, low=int(from_), high=int(to), generator=generator)




@public
def normal(mean, std=1.0, size=None, *, generator=None, dtype=None, device=None, out=None, requires_grad=False):
    """torch.normal: one draw per element of broadcast(mean, std) when either is a tensor, else `size`
    draws of N(mean, std). No gradient reaches mean or std (torch's is zero); use mean + std * randn_like
    for a reparameterized sample."""
    from ..autograd.grad_mode import no_grad
    if out is not None:
        raise NotImplementedError("tensorlib.normal: out= is not supported; assign the result instead")
    tensors = [x for x in (mean, std) if isinstance(x, Tensor)]
    if not tensors:
        if size is None:
            raise TypeError("normal() received an invalid combination of arguments: with float mean and std, "
                            "size is required")
        shape = tuple(size)
        ref = None
    else:
        if size is not None:
            raise TypeError("normal() received an invalid combination of arguments: size is only taken with "
                            "float mean and std")
        shape = tuple(np.broadcast_shapes(*(tuple(x.shape) for x in tensors)))
        ref = tensors[0]
        if isinstance(std, Tensor) and bool((std < 0).any()):
            raise RuntimeError("normal expects all elements of std >= 0.0")
    if not isinstance(std, Tensor) and std < 0:
        raise RuntimeError(f"normal expects std >= 0.0, but found std {std:g}")
    with no_grad():
        z = empty(shape, dtype=dtype or (ref.dtype if ref is not None else None),
                  device=device or (ref.device if ref is not None else None))
        z.normal_(0.0, 1.0, generator=generator)
        z = z * std + mean
    return z.requires_grad_(requires_grad)


# ---- the samplers behind torch.distributions: poisson, binomial, and the reparameterised gamma / Dirichlet ----

def _rng_for(a, generator):
    return R._gen_for(device_of(a), generator)


def _check_float(name, what, a):
    if a._data.dtype.kind != "f":
        raise RuntimeError(f"{name} only supports floating-point dtypes for {what}, got: "
                           f"{D.scalar_name(a._data.dtype)}")


@op("poisson", node_name="PoissonBackward0")
def POISSON(xp, rates, generator=None):
    """One Poisson draw per rate, of the rates' dtype (NumPy's / CuPy's Poisson sampler)."""
    lam = rates.astype(np.float64)
    return _rng_for(rates, generator).poisson(lam, lam.shape).astype(rates.dtype)


POISSON.def_backward(lambda ctx, g: (g * 0,))     # torch's: zeros_like(self)


@public
def poisson(input, generator=None):
    """torch.poisson: no gradient reaches the rates (torch's backward is zero)."""
    if input._data.dtype.kind != "f":
        raise NotImplementedError(f'"poisson_cpu" not implemented for \'{D.scalar_name(input._data.dtype)}\'')
    if input.device.type == "cpu" and input.numel() and not bool((input >= 0).all()):
        raise RuntimeError("invalid Poisson rate, expected rate to be non-negative")
    return dispatch(POISSON, input, generator=generator)


@op("binomial")
def BINOMIAL(xp, count, prob, generator=None):
    """Binomial(count, prob) draws of count's dtype; the sampler takes integer counts (torch's truncates)."""
    n = xp.maximum(count, 0).astype(np.int64)
    p = xp.clip(prob.astype(np.float64), 0.0, 1.0)
    n, p = xp.broadcast_arrays(n, p)
    return _rng_for(count, generator).binomial(n, p, n.shape).astype(count.dtype)


@public
def binomial(count, prob, generator=None):
    """torch.binomial: not differentiable (torch's backward is not implemented)."""
    for what, a in (("count", count), ("prob", prob)):
        if a._data.dtype.kind != "f":
            raise ValueError(f"binomial only supports floating-point dtypes for {what}, got: "
                             f"{D.scalar_name(a._data.dtype)}")
    return dispatch(BINOMIAL, count, prob, generator=generator)


def _gamma_draw(xp, alpha, generator):
    """Gamma(alpha, 1) draws in float64, at least the smallest normal number as torch's sampler returns
    (a sample of 0 would make log_prob and the gradients below infinite)."""
    a = xp.maximum(alpha.astype(np.float64), 0.0)
    rng = _rng_for(alpha, generator)
    x = rng.standard_gamma(a) if xp is np else rng.gamma(a, 1.0, a.shape)
    return xp.maximum(x, np.finfo(alpha.dtype).tiny)


@op("_standard_gamma", save="io", node_name="StandardGammaBackward0")
def STANDARD_GAMMA(xp, alpha, generator=None):
    """Gamma(alpha, 1) draws (NumPy's / CuPy's standard gamma sampler), differentiable in alpha: torch's
    implicit reparameterisation, d sample / d alpha from _standard_gamma_grad."""
    return _gamma_draw(xp, alpha, generator).astype(alpha.dtype)


@STANDARD_GAMMA.def_backward
def _(ctx, g):
    return (g * standard_gamma_grad(ctx.saved_inputs[0], ctx.saved_output),)


@public(name="_standard_gamma")
def standard_gamma(input, generator=None):
    return dispatch(STANDARD_GAMMA, input, generator=generator)


def _digamma(xp, x):
    """digamma on arrays (a kernel's helper; the ops' own digamma is dispatched)."""
    return special_functions(xp).digamma(x)


def _standard_gamma_grad_k(xp, alpha, x):
    """torch's standard_gamma_grad_one (aten/src/ATen/native/Distributions.h) on whole arrays: -(d cdf /
    d alpha) / pdf at the sample, by a Taylor series for x < 0.8, Rice's saddle point expansion for alpha > 8
    and a bivariate rational approximation otherwise; each branch computed where it applies."""
    dt = np.promote_types(alpha.dtype, x.dtype)
    alpha, x = xp.broadcast_arrays(alpha.astype(np.float64), x.astype(np.float64))
    out = xp.empty(alpha.shape, dtype=np.float64)
    small = x < 0.8
    large = ~small & (alpha > 8.0)
    with np.errstate(all="ignore"):
        _by_branch(xp, out, alpha, x, ((small, _gamma_grad_small), (large, _gamma_grad_large),
                                        (~small & ~large, _gamma_grad_mid)))
    return out.astype(dt)


def _by_branch(xp, out, a, b, branches, *more):
    """out[mask] = f(xp, a[mask], b[mask], ...) for each (mask, f): on NumPy each branch on its own elements;
    on CuPy every branch on all elements, selected by where() (a boolean index would read its count back to
    the host: a synchronisation per branch)."""
    if xp is np:
        for mask, f in branches:
            out[mask] = f(xp, a[mask], b[mask], *(m[mask] for m in more))
        return
    for mask, f in branches:
        xp.copyto(out, f(xp, a, b, *more), where=mask)


def _gamma_grad_small(xp, a, xs):
    """x < 0.8: the Taylor series of the incomplete gamma function and its alpha derivative."""
    numer = xp.ones_like(a)
    denom = a.copy()
    series1, series2 = numer / denom, numer / (denom * denom)
    for i in range(1, 6):
        numer = numer * (-xs / i)
        denom = denom + 1
        series1 = series1 + numer / denom
        series2 = series2 + numer / (denom * denom)
    pow_x_alpha = xs ** a
    gamma_pdf = xs ** (a - 1) * xp.exp(-xs)
    gamma_cdf = pow_x_alpha * series1
    gamma_cdf_alpha = (xp.log(xs) - _digamma(xp, a)) * gamma_cdf - pow_x_alpha * series2
    r = -gamma_cdf_alpha / gamma_pdf
    return xp.where(xp.isnan(r), 0.0, r)


def _gamma_grad_large(xp, a, xs):
    """alpha > 8: Rice's saddle point expansion (its near-mean form within 10% of alpha)."""
    near = (0.9 * a <= xs) & (xs <= 1.1 * a)
    numer_1 = 1 + 24 * a * (1 + 12 * a)
    numer_2 = 1440 * (a * a) + 6 * xs * (53 - 120 * xs) - 65 * xs * xs / a + a * (107 + 3600 * xs)
    r_near = numer_1 * numer_2 / (1244160 * (a * a) * (a * a))
    denom = xp.sqrt(8 * a)
    term2 = denom / (a - xs)
    term3 = (xs - a - a * xp.log(xs / a)) ** -1.5
    term23 = xp.where(xs < a, term2 - term3, term2 + term3)
    term1 = xp.log(xs / a) * term23 - xp.sqrt(2 / a) * (a + xs) / ((a - xs) * (a - xs))
    stirling = 1 + 1 / (12 * a) * (1 + 1 / (24 * a))
    return xp.where(near, r_near, -stirling * (xs * term1) / denom)


def _gamma_grad_mid(xp, a, xs):
    """Otherwise: the bivariate rational approximation in log(x / alpha) and log(alpha)."""
    u, v = xp.log(xs / a), xp.log(a)
    cv = [c0 + u * (c1 + u * c2) for c0, c1, c2 in zip(*_GAMMA_UV)]
    p = cv[0] + v * (cv[1] + v * (cv[2] + v * cv[3]))
    q = cv[4] + v * (cv[5] + v * (cv[6] + v * cv[7]))
    return xp.exp(p / q)


_GAMMA_UV = (
    (0.16009398, -0.094634809, 0.025146376, -0.0030648343, 1, 0.32668115, 0.10406089, 0.0014179084),
    (0.53487893, 0.1298071, 0.065735949, -0.0015649758, 0.16639465, 0.020070113, -0.0035938915, -0.00058392623),
    (0.040121004, -0.0065914022, -0.0026286047, -0.0013441777, 0.017050642, -0.0021309326, 0.00085092367,
     -1.5247877e-07),
)

# torch's backward of _standard_gamma_grad is not implemented: no backward here either
STANDARD_GAMMA_GRAD = op("_standard_gamma_grad")(_standard_gamma_grad_k)


@public(name="_standard_gamma_grad")
def standard_gamma_grad(input, output):
    """torch._standard_gamma_grad(alpha, sample): d sample / d alpha of a Gamma(alpha, 1) sample."""
    return dispatch(STANDARD_GAMMA_GRAD, input, output)


@op("_sample_dirichlet", save="io", node_name="_DirichletBackward")
def SAMPLE_DIRICHLET(xp, alpha, generator=None):
    """Dirichlet(alpha) draws along the last dimension: Gamma(alpha_i, 1) draws normalised, as torch's
    sampler, each component kept within [smallest normal, 1 - eps]. Its backward is the one of torch's
    `_Dirichlet` function (Dirichlet.rsample's node): _dirichlet_grad chained through the normalisation."""
    g = _gamma_draw(xp, alpha, generator)
    fi = np.finfo(alpha.dtype)
    return xp.clip(g / g.sum(-1, keepdims=True), fi.tiny, 1 - fi.eps).astype(alpha.dtype)


@SAMPLE_DIRICHLET.def_backward
def _(ctx, g):
    (alpha,), x = ctx.saved_inputs, ctx.saved_output
    total = alpha.sum(-1, keepdim=True).expand_as(alpha)
    grad = dirichlet_grad(x, alpha, total)
    return (grad * (g - (x * g).sum(-1, keepdim=True)),)


@public(name="_sample_dirichlet")
def sample_dirichlet(input, generator=None):
    return dispatch(SAMPLE_DIRICHLET, input, generator=generator)


def _beta_grad_alpha_small(xp, x, alpha, beta):
    factor = _digamma(xp, alpha) - _digamma(xp, alpha + beta) - xp.log(x)
    numer = xp.ones_like(x)
    series = numer / alpha * (factor + 1 / alpha)
    for i in range(1, 11):
        numer = numer * ((i - beta) * x / i)
        denom = alpha + i
        series = series + numer / denom * (factor + 1 / denom)
    r = x * (1 - x) ** -beta * series
    return xp.where(xp.isnan(r), 0.0, r)


def _beta_grad_beta_small(xp, x, alpha, beta):
    factor = _digamma(xp, alpha + beta) - _digamma(xp, beta)
    numer, betas, dbetas = xp.ones_like(x), xp.ones_like(x), xp.zeros_like(x)
    series = factor / alpha
    for i in range(1, 9):
        numer = numer * (-x / i)
        dbetas = dbetas * (beta - i) + betas
        betas = betas * (beta - i)
        series = series + numer / (alpha + i) * (dbetas + factor * betas)
    r = -((1 - x) ** (1 - beta)) * series
    return xp.where(xp.isnan(r), 0.0, r)


def _beta_grad_alpha_mid(xp, x, alpha, beta):
    total = alpha + beta
    mean = alpha / total
    std = xp.sqrt(alpha * beta / (total + 1)) / total
    near = (mean - 0.1 * std <= x) & (x <= mean + 0.1 * std)
    poly = 47 * x * (beta * beta) * (beta * beta) + alpha * (
        (43 + 20 * (16 + 27 * beta) * x) * (beta * beta) * beta + alpha * (
            3 * (59 + 180 * beta - 90 * x) * (beta * beta) + alpha * (
                (453 + 1620 * beta * (1 - x) - 455 * x) * beta + alpha * (
                    8 * (1 - x) * (135 * beta - 11)))))
    prefactor_num = (1 + 12 * alpha) * (1 + 12 * beta) / (total * total)
    prefactor_den = 12960 * alpha * alpha * alpha * beta * beta * (1 + 12 * total)
    r_near = prefactor_num / (1 - x) * poly / prefactor_den
    prefactor = -x / xp.sqrt(2 * alpha * beta / total)
    stirling = ((1 + 1 / (12 * alpha) + 1 / (288 * alpha * alpha)) * (1 + 1 / (12 * beta) + 1 / (288 * beta * beta))
                / (1 + 1 / (12 * total) + 1 / (288 * total * total)))
    term1_num = 2 * (alpha * alpha) * (x - 1) + alpha * beta * (x - 1) - x * (beta * beta)
    axbx = alpha * (x - 1) + beta * x
    term1 = term1_num / (xp.sqrt(2 * alpha / beta) * total ** 1.5 * axbx * axbx)
    term2 = 0.5 * xp.log(alpha / (total * x))
    term3 = xp.sqrt(8 * alpha * beta / total) / (beta * x + alpha * (x - 1))
    term4 = (beta * xp.log(beta / (total * (1 - x))) + alpha * xp.log(alpha / (total * x))) ** -1.5
    term1234 = term1 + term2 * (term3 + xp.where(x < mean, term4, -term4))
    return xp.where(near, r_near, stirling * prefactor * term1234)


_DIRICHLET_C = np.array([
    [[[1.003668233, -0.01061107488, -0.0657888334, 0.01201642863],
      [0.6336835991, -0.3557432599, 0.05486251648, -0.001465281033],
      [-0.03276231906, 0.004474107445, 0.002429354597, -0.0001557569013]],
     [[0.221950385, -0.3187676331, 0.01799915743, 0.01074823814],
      [-0.2951249643, 0.06219954479, 0.01535556598, 0.001550077057],
      [0.02155310298, 0.004170831599, 0.001292462449, 6.976601077e-05]],
     [[-0.05980841433, 0.008441916499, 0.01085618172, 0.002319392565],
      [0.02911413504, 0.01400243777, -0.002721828457, 0.000751041181],
      [0.005900514878, -0.001936558688, -9.495446725e-06, 5.385558597e-05]]],
    [[[1, -0.02924021934, -0.04438342661, 0.007285809825],
      [0.6357567472, -0.3473456711, 0.05454656494, -0.002407477521],
      [-0.03301322327, 0.004845219414, 0.00231480583, -0.0002307248149]],
     [[0.5925320577, -0.1757678135, 0.01505928619, 0.000564515273],
      [0.1014815858, -0.06589186703, 0.01272886114, -0.0007316646956],
      [-0.007258481865, 0.001096195486, 0.0003934994223, -4.12701925e-05]],
     [[0.06469649321, -0.0236701437, 0.002902096474, -5.896963079e-05],
      [0.001925008108, -0.002869809258, 0.0008000589141, -6.063713228e-05],
      [-0.0003477407336, 6.959756487e-05, 1.097287507e-05, -1.650964693e-06]]],
])


def _dirichlet_grad_k(xp, x, alpha, total):
    """torch's dirichlet_grad_one on whole arrays: the scaled reparameterised gradient
    -(d/dalpha cdf(x; alpha, total - alpha)) / pdf / (1 - x) of a Beta marginal, by its four regimes."""
    dt = np.promote_types(np.promote_types(x.dtype, alpha.dtype), total.dtype)
    x, alpha, total = xp.broadcast_arrays(x.astype(np.float64), alpha.astype(np.float64), total.astype(np.float64))
    out = xp.empty(x.shape, dtype=np.float64)
    beta = total - alpha
    boundary = total * x * (1 - x)
    m1 = (x <= 0.5) & (boundary < 2.5)
    m2 = ~m1 & (x >= 0.5) & (boundary < 0.75)
    m3 = ~m1 & ~m2 & (alpha > 6) & (beta > 6)
    with np.errstate(all="ignore"):
        _by_branch(xp, out, x, alpha, ((m1, _dirichlet_small_alpha), (m2, _dirichlet_small_beta),
                                       (m3, _dirichlet_mid), (~m1 & ~m2 & ~m3, _dirichlet_rational)), beta, total)
    return out.astype(dt)


def _dirichlet_small_alpha(xp, x, alpha, beta, total):
    return _beta_grad_alpha_small(xp, x, alpha, beta)


def _dirichlet_small_beta(xp, x, alpha, beta, total):
    return -_beta_grad_beta_small(xp, 1 - x, beta, alpha)


def _dirichlet_mid(xp, x, alpha, beta, total):
    return _beta_grad_alpha_mid(xp, x, alpha, beta)


def _dirichlet_rational(xp, xs, a, b_, t):
    """The rational approximation of torch's dirichlet_grad_one in log x, log(alpha / x), log(total)."""
    u = xp.log(xs)
    av = xp.log(a) - u
    bv = xp.log(t) - av
    pow_u, pow_a = (1.0, u, u * u), (1.0, av, av * av)
    p = q = 0.0
    for i in range(3):
        for j in range(3):
            ua = pow_u[i] * pow_a[j]
            c0, c1 = _DIRICHLET_C[0, i, j], _DIRICHLET_C[1, i, j]
            p = p + ua * (c0[0] + bv * (c0[1] + bv * (c0[2] + bv * c0[3])))
            q = q + ua * (c1[0] + bv * (c1[1] + bv * (c1[2] + bv * c1[3])))
    approx = xs * (_digamma(xp, t) - _digamma(xp, a)) / b_
    return p / q * approx


DIRICHLET_GRAD = op("_dirichlet_grad")(_dirichlet_grad_k)     # torch's backward: not implemented


@public(name="_dirichlet_grad")
def dirichlet_grad(x, alpha, total):
    return dispatch(DIRICHLET_GRAD, x, alpha, total)
