"""torch.distributions.ContinuousBernoulli: creates a continuous Bernoulli distribution parameterized by :attr:`probs`
or :attr:`logits` (but not both). Torch 2.13's, on tensorlib's ops."""
from __future__ import annotations

import math

from .. import ops as _ops
from .._tensor import Size
from ..autograd.grad_mode import no_grad
from ..nn.functional import binary_cross_entropy_with_logits
from . import constraints
from .exp_family import ExponentialFamily
from .utils import (
    _Number,
    broadcast_all,
    clamp_probs,
    lazy_property,
    logits_to_probs,
    probs_to_logits,
)

__all__ = ["ContinuousBernoulli"]


class ContinuousBernoulli(ExponentialFamily):
    """Creates a continuous Bernoulli distribution parameterized by :attr:`probs` or :attr:`logits` (but not both)."""

    arg_constraints = {"probs": constraints.unit_interval, "logits": constraints.real}
    support = constraints.unit_interval
    _mean_carrier_measure = 0
    has_rsample = True

    def __init__(self, probs=None, logits=None, lims=(0.499, 0.501), validate_args=None):
        if (probs is None) == (logits is None):
            raise ValueError("Either `probs` or `logits` must be specified, but not both.")
        if probs is not None:
            is_scalar = isinstance(probs, _Number)
            (self.probs,) = broadcast_all(probs)
            if validate_args is not None:
                if not self.arg_constraints["probs"].check(self.probs).all():
                    raise ValueError("The parameter probs has invalid values")
            self.probs = clamp_probs(self.probs)
        else:
            if logits is None:
                raise AssertionError("logits is unexpectedly None")
            is_scalar = isinstance(logits, _Number)
            (self.logits,) = broadcast_all(logits)
        self._param = self.probs if probs is not None else self.logits
        if is_scalar:
            batch_shape = Size()
        else:
            batch_shape = self._param.size()
        self._lims = lims
        super().__init__(batch_shape, validate_args=validate_args)

    def expand(self, batch_shape, _instance=None):
        new = self._get_checked_instance(ContinuousBernoulli, _instance)
        new._lims = self._lims
        batch_shape = Size(batch_shape)
        if "probs" in self.__dict__:
            new.probs = self.probs.expand(batch_shape)
            new._param = new.probs
        if "logits" in self.__dict__:
            new.logits = self.logits.expand(batch_shape)
            new._param = new.logits
        super(ContinuousBernoulli, new).__init__(batch_shape, validate_args=False)
        new._validate_args = self._validate_args
        return new

    def _new(self, *args, **kwargs):
        return self._param.new(*args, **kwargs)

    def _outside_unstable_region(self):
        return _ops.max(_ops.le(self.probs, self._lims[0]), _ops.gt(self.probs, self._lims[1]))

    def _cut_probs(self):
        return _ops.where(self._outside_unstable_region(), self.probs, self._lims[0] * _ops.ones_like(self.probs))

    def _cont_bern_log_norm(self):
        cut_probs = self._cut_probs()
        cut_probs_below_half = _ops.where(_ops.le(cut_probs, 0.5), cut_probs, _ops.zeros_like(cut_probs))
        cut_probs_above_half = _ops.where(_ops.ge(cut_probs, 0.5), cut_probs, _ops.ones_like(cut_probs))
        log_norm = _ops.log(_ops.abs(_ops.log1p(-cut_probs) - _ops.log(cut_probs))) - _ops.where(
            _ops.le(cut_probs, 0.5), _ops.log1p(-2.0 * cut_probs_below_half), _ops.log(2.0 * cut_probs_above_half - 1.0)
        )
        x = _ops.pow(self.probs - 0.5, 2)
        taylor = math.log(2.0) + (4.0 / 3.0 + 104.0 / 45.0 * x) * x
        return _ops.where(self._outside_unstable_region(), log_norm, taylor)

    @property
    def mean(self):
        cut_probs = self._cut_probs()
        mus = cut_probs / (2.0 * cut_probs - 1.0) + 1.0 / (_ops.log1p(-cut_probs) - _ops.log(cut_probs))
        x = self.probs - 0.5
        taylor = 0.5 + (1.0 / 3.0 + 16.0 / 45.0 * _ops.pow(x, 2)) * x
        return _ops.where(self._outside_unstable_region(), mus, taylor)

    @property
    def stddev(self):
        return _ops.sqrt(self.variance)

    @property
    def variance(self):
        cut_probs = self._cut_probs()
        vars = cut_probs * (cut_probs - 1.0) / _ops.pow(1.0 - 2.0 * cut_probs, 2) + 1.0 / _ops.pow(
            _ops.log1p(-cut_probs) - _ops.log(cut_probs), 2
        )
        x = _ops.pow(self.probs - 0.5, 2)
        taylor = 1.0 / 12.0 - (1.0 / 15.0 - 128.0 / 945.0 * x) * x
        return _ops.where(self._outside_unstable_region(), vars, taylor)

    @lazy_property
    def logits(self):
        return probs_to_logits(self.probs, is_binary=True)

    @lazy_property
    def probs(self):
        return clamp_probs(logits_to_probs(self.logits, is_binary=True))

    @property
    def param_shape(self):
        return self._param.size()

    def sample(self, sample_shape=Size()):
        shape = self._extended_shape(sample_shape)
        u = _ops.rand(shape, dtype=self.probs.dtype, device=self.probs.device)
        with no_grad():
            return self.icdf(u)

    def rsample(self, sample_shape=Size()):
        shape = self._extended_shape(sample_shape)
        u = _ops.rand(shape, dtype=self.probs.dtype, device=self.probs.device)
        return self.icdf(u)

    def log_prob(self, value):
        if self._validate_args:
            self._validate_sample(value)
        logits, value = broadcast_all(self.logits, value)
        return -binary_cross_entropy_with_logits(logits, value, reduction="none") + self._cont_bern_log_norm()

    def cdf(self, value):
        if self._validate_args:
            self._validate_sample(value)
        cut_probs = self._cut_probs()
        cdfs = (_ops.pow(cut_probs, value) * _ops.pow(1.0 - cut_probs, 1.0 - value) + cut_probs - 1.0) / (
            2.0 * cut_probs - 1.0
        )
        unbounded_cdfs = _ops.where(self._outside_unstable_region(), cdfs, value)
        return _ops.where(
            _ops.le(value, 0.0),
            _ops.zeros_like(value),
            _ops.where(_ops.ge(value, 1.0), _ops.ones_like(value), unbounded_cdfs),
        )

    def icdf(self, value):
        cut_probs = self._cut_probs()
        return _ops.where(
            self._outside_unstable_region(),
            (_ops.log1p(-cut_probs + value * (2.0 * cut_probs - 1.0)) - _ops.log1p(-cut_probs))
            / (_ops.log(cut_probs) - _ops.log1p(-cut_probs)),
            value,
        )

    def entropy(self):
        log_probs0 = _ops.log1p(-self.probs)
        log_probs1 = _ops.log(self.probs)
        return self.mean * (log_probs0 - log_probs1) - self._cont_bern_log_norm() - log_probs0

    @property
    def _natural_params(self):
        return (self.logits,)

    def _log_normalizer(self, x):
        out_unst_reg = _ops.max(_ops.le(x, self._lims[0] - 0.5), _ops.gt(x, self._lims[1] - 0.5))
        cut_nat_params = _ops.where(out_unst_reg, x, (self._lims[0] - 0.5) * _ops.ones_like(x))
        log_norm = _ops.log(_ops.abs(_ops.expm1(cut_nat_params))) - _ops.log(_ops.abs(cut_nat_params))
        taylor = 0.5 * x + _ops.pow(x, 2) / 24.0 - _ops.pow(x, 4) / 2880.0
        return _ops.where(out_unst_reg, log_norm, taylor)
