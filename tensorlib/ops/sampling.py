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
from ._define import Tensor, dispatch, np, op, public
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
    if input._data.dtype.kind != "f":
        raise RuntimeError(f"multinomial only supports floating-point dtypes for input, got: "
                           f"{D.scalar_name(input._data.dtype)}")
    num_samples = int(num_samples)
    if num_samples <= 0:
        raise RuntimeError("cannot sample n_sample <= 0 samples")
    if not replacement and num_samples > input.shape[-1]:
        raise RuntimeError("cannot sample n_sample > prob_dist.size(-1) samples without replacement")
    return dispatch(MULTINOMIAL, input, num_samples, replacement=bool(replacement), generator=generator)


@op("bernoulli", node_name="BernoulliBackward0")
def BERNOULLI(xp, p, generator=None):
    rng = R._gen_for(device_of(p), generator)
    return (rng.random(p.shape, dtype=np.float64) < p).astype(p.dtype)


BERNOULLI.def_backward(lambda ctx, g: (g * 0,))


@public(method=True)
def bernoulli(input, p=None, *, generator=None, out=None):
    if p is not None:
        return bernoulli_(empty_like(input), p, generator=generator)
    return dispatch(BERNOULLI, input, generator=generator)


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
