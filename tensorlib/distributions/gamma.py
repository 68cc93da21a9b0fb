"""torch.distributions.Gamma(concentration, rate). rsample is torch's implicit reparameterisation: the
_standard_gamma op draws from tensorlib's generator and its backward is torch's _standard_gamma_grad, so
Beta, Dirichlet, Chi2, StudentT, FisherSnedecor and InverseGamma samples are differentiable too."""
from __future__ import annotations

from .. import ops as _ops
from .._dtype import finfo as _finfo
from .._tensor import Size
from . import constraints
from .exp_family import ExponentialFamily
from .utils import _Number, broadcast_all

__all__ = ["Gamma"]


def _standard_gamma(concentration):
    return _ops._standard_gamma(concentration)


class Gamma(ExponentialFamily):
    """Creates a Gamma distribution parameterized by shape :attr:`concentration` and :attr:`rate`."""

    arg_constraints = {"concentration": constraints.positive, "rate": constraints.positive}
    support = constraints.nonnegative
    has_rsample = True
    _mean_carrier_measure = 0

    @property
    def mean(self):
        return self.concentration / self.rate

    @property
    def mode(self):
        return ((self.concentration - 1) / self.rate).clamp(min=0)

    @property
    def variance(self):
        return self.concentration / self.rate.pow(2)

    def __init__(self, concentration, rate, validate_args=None):
        self.concentration, self.rate = broadcast_all(concentration, rate)
        if isinstance(concentration, _Number) and isinstance(rate, _Number):
            batch_shape = Size()
        else:
            batch_shape = self.concentration.size()
        super().__init__(batch_shape, validate_args=validate_args)

    def expand(self, batch_shape, _instance=None):
        new = self._get_checked_instance(Gamma, _instance)
        batch_shape = Size(batch_shape)
        new.concentration = self.concentration.expand(batch_shape)
        new.rate = self.rate.expand(batch_shape)
        super(Gamma, new).__init__(batch_shape, validate_args=False)
        new._validate_args = self._validate_args
        return new

    def rsample(self, sample_shape=Size()):
        shape = self._extended_shape(sample_shape)
        value = _standard_gamma(self.concentration.expand(shape)) / self.rate.expand(shape)
        value.detach().clamp_(min=_finfo(value.dtype).tiny)
        return value

    def log_prob(self, value):
        value = _ops.as_tensor(value, dtype=self.rate.dtype, device=self.rate.device)
        if self._validate_args:
            self._validate_sample(value)
        return (
            _ops.xlogy(self.concentration, self.rate)
            + _ops.xlogy(self.concentration - 1, value)
            - self.rate * value
            - _ops.lgamma(self.concentration)
        )

    def entropy(self):
        return (
            self.concentration
            - _ops.log(self.rate)
            + _ops.lgamma(self.concentration)
            + (1.0 - self.concentration) * _ops.digamma(self.concentration)
        )

    @property
    def _natural_params(self):
        return (self.concentration - 1, -self.rate)

    def _log_normalizer(self, x, y):
        return _ops.lgamma(x + 1) + (x + 1) * _ops.log(-y.reciprocal())

    def cdf(self, value):
        if self._validate_args:
            self._validate_sample(value)
        return _ops.igamma(self.concentration, self.rate * value)
