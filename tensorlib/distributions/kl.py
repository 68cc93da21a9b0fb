"""torch.distributions.kl: kl_divergence(p, q) for the pairs registered (Normal, Categorical, Bernoulli,
Uniform with themselves), and register_kl for more; an unregistered pair raises NotImplementedError."""
from __future__ import annotations

import math

from .. import ops as _ops
from ..nn import functional as F
from .bernoulli import Bernoulli
from .categorical import Categorical
from .normal import Normal
from .uniform import Uniform

_KL_REGISTRY: dict = {}


def register_kl(type_p, type_q):
    def decorator(fun):
        _KL_REGISTRY[type_p, type_q] = fun
        return fun
    return decorator


def _lookup(type_p, type_q):
    """The registered function for the most specific (p, q) base classes (torch's rule, without its
    ambiguity warning)."""
    best, rank = None, None
    for (sp, sq), fun in _KL_REGISTRY.items():
        if issubclass(type_p, sp) and issubclass(type_q, sq):
            r = (type_p.__mro__.index(sp), type_q.__mro__.index(sq))
            if rank is None or r < rank:
                best, rank = fun, r
    return best


def kl_divergence(p, q):
    fun = _lookup(type(p), type(q))
    if fun is None:
        raise NotImplementedError(f"No KL(p || q) is implemented for p type {type(p).__name__} and q type "
                                  f"{type(q).__name__}")
    return fun(p, q)


@register_kl(Normal, Normal)
def _kl_normal_normal(p, q):
    var_ratio = (p.scale / q.scale).pow(2)
    t1 = ((p.loc - q.loc) / q.scale).pow(2)
    return 0.5 * (var_ratio + t1 - 1 - var_ratio.log())


@register_kl(Categorical, Categorical)
def _kl_categorical_categorical(p, q):
    t = p.probs * (p.logits - q.logits)
    t = _ops.where((q.probs == 0).expand_as(t), _ops.full_like(t, math.inf), t)
    t = _ops.where((p.probs == 0).expand_as(t), _ops.zeros_like(t), t)
    return t.sum(-1)


@register_kl(Bernoulli, Bernoulli)
def _kl_bernoulli_bernoulli(p, q):
    t1 = p.probs * (F.softplus(-q.logits) - F.softplus(-p.logits))
    t1 = _ops.where(q.probs == 0, _ops.full_like(t1, math.inf), t1)
    t1 = _ops.where(p.probs == 0, _ops.zeros_like(t1), t1)
    t2 = (1 - p.probs) * (F.softplus(q.logits) - F.softplus(p.logits))
    t2 = _ops.where(q.probs == 1, _ops.full_like(t2, math.inf), t2)
    t2 = _ops.where(p.probs == 1, _ops.zeros_like(t2), t2)
    return t1 + t2


@register_kl(Uniform, Uniform)
def _kl_uniform_uniform(p, q):
    result = ((q.high - q.low) / (p.high - p.low)).log()
    bad = (q.low > p.low) | (q.high < p.high)
    return _ops.where(bad, _ops.full_like(result, math.inf), result)


__all__ = ["kl_divergence", "register_kl"]
