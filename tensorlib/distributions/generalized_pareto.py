"""torch.distributions.GeneralizedPareto: creates a Generalized Pareto distribution parameterized by :attr:`loc`,
:attr:`scale`, and :attr:`concentration`. Torch 2.13's, on tensorlib's ops."""
from __future__ import annotations

import math
from math import inf, nan
from numbers import Number, Real

from .. import ops as _ops
from .._tensor import Size
from . import constraints
from .distribution import Distribution
from .utils import broadcast_all

__all__ = ["GeneralizedPareto"]


class GeneralizedPareto(Distribution):
    """Creates a Generalized Pareto distribution parameterized by :attr:`loc`, :attr:`scale`, and
    :attr:`concentration`."""

    arg_constraints = {"loc": constraints.real, "scale": constraints.positive, "concentration": constraints.real}
    has_rsample = True

    def __init__(self, loc, scale, concentration, validate_args=None):
        self.loc, self.scale, self.concentration = broadcast_all(loc, scale, concentration)
        if isinstance(loc, Number) and isinstance(scale, Number) and isinstance(concentration, Number):
            batch_shape = Size()
        else:
            batch_shape = self.loc.size()
        super().__init__(batch_shape, validate_args=validate_args)

    def expand(self, batch_shape, _instance=None):
        new = self._get_checked_instance(GeneralizedPareto, _instance)
        batch_shape = Size(batch_shape)
        new.loc = self.loc.expand(batch_shape)
        new.scale = self.scale.expand(batch_shape)
        new.concentration = self.concentration.expand(batch_shape)
        super(GeneralizedPareto, new).__init__(batch_shape, validate_args=False)
        new._validate_args = self._validate_args
        return new

    def rsample(self, sample_shape=Size()):
        shape = self._extended_shape(sample_shape)
        u = _ops.rand(shape, dtype=self.loc.dtype, device=self.loc.device)
        return self.icdf(u)

    def log_prob(self, value):
        if self._validate_args:
            self._validate_sample(value)
        z = self._z(value)
        eq_zero = _ops.isclose(self.concentration, _ops.zeros_like(self.concentration))
        safe_conc = _ops.where(eq_zero, _ops.ones_like(self.concentration), self.concentration)
        y = 1 / safe_conc + _ops.ones_like(z)
        where_nonzero = _ops.where(y == 0, y, y * _ops.log1p(safe_conc * z))
        log_scale = math.log(self.scale) if isinstance(self.scale, Real) else self.scale.log()
        return -log_scale - _ops.where(eq_zero, z, where_nonzero)

    def log_survival_function(self, value):
        if self._validate_args:
            self._validate_sample(value)
        z = self._z(value)
        eq_zero = _ops.isclose(self.concentration, _ops.zeros_like(self.concentration))
        safe_conc = _ops.where(eq_zero, _ops.ones_like(self.concentration), self.concentration)
        where_nonzero = -_ops.log1p(safe_conc * z) / safe_conc
        return _ops.where(eq_zero, -z, where_nonzero)

    def log_cdf(self, value):
        return _ops.log1p(-_ops.exp(self.log_survival_function(value)))

    def cdf(self, value):
        return _ops.exp(self.log_cdf(value))

    def icdf(self, value):
        loc = self.loc
        scale = self.scale
        concentration = self.concentration
        eq_zero = _ops.isclose(concentration, _ops.zeros_like(concentration))
        safe_conc = _ops.where(eq_zero, _ops.ones_like(concentration), concentration)
        logu = _ops.log1p(-value)
        where_nonzero = loc + scale / safe_conc * _ops.expm1(-safe_conc * logu)
        where_zero = loc - scale * logu
        return _ops.where(eq_zero, where_zero, where_nonzero)

    def _z(self, x):
        return (x - self.loc) / self.scale

    @property
    def mean(self):
        concentration = self.concentration
        valid = concentration < 1
        safe_conc = _ops.where(valid, concentration, 0.5)
        result = self.loc + self.scale / (1 - safe_conc)
        return _ops.where(valid, result, nan)

    @property
    def variance(self):
        concentration = self.concentration
        valid = concentration < 0.5
        safe_conc = _ops.where(valid, concentration, 0.25)
        result = self.scale**2 / ((1 - safe_conc) ** 2 * (1 - 2 * safe_conc))
        return _ops.where(valid, result, nan)

    def entropy(self):
        ans = _ops.log(self.scale) + self.concentration + 1
        return _ops.broadcast_to(ans, self._batch_shape)

    @property
    def mode(self):
        return self.loc

    @constraints.dependent_property(is_discrete=False, event_dim=0)
    def support(self):
        lower = self.loc
        upper = _ops.where(self.concentration < 0, lower - self.scale / self.concentration, inf)
        return constraints.interval(lower, upper)
