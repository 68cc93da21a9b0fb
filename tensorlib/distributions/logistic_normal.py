"""torch.distributions.LogisticNormal: creates a logistic-normal distribution parameterized by :attr:`loc` and
:attr:`scale` that define the base `Normal` distribution transformed with the `StickBreakingTransform` such that::.
Torch 2.13's, on tensorlib's ops."""
from __future__ import annotations

from . import constraints
from .normal import Normal
from .transformed_distribution import TransformedDistribution
from .transforms import StickBreakingTransform

__all__ = ["LogisticNormal"]


class LogisticNormal(TransformedDistribution):
    """Creates a logistic-normal distribution parameterized by :attr:`loc` and :attr:`scale` that define the base
    `Normal` distribution transformed with the `StickBreakingTransform` such that::"""

    arg_constraints = {"loc": constraints.real, "scale": constraints.positive}
    support = constraints.simplex
    has_rsample = True

    def __init__(self, loc, scale, validate_args=None):
        base_dist = Normal(loc, scale, validate_args=validate_args)
        if not base_dist.batch_shape:
            base_dist = base_dist.expand([1])
        super().__init__(base_dist, StickBreakingTransform(), validate_args=validate_args)

    def expand(self, batch_shape, _instance=None):
        new = self._get_checked_instance(LogisticNormal, _instance)
        return super().expand(batch_shape, _instance=new)

    @property
    def loc(self):
        return self.base_dist.base_dist.loc

    @property
    def scale(self):
        return self.base_dist.base_dist.scale
