"""torch.distributions, the part training programs use: Categorical (policy gradients), Normal (VAEs,
continuous actions), Bernoulli, Uniform, kl_divergence / register_kl, constraints; arguments and values
validated by default as torch does (validate_args=False turns it off)."""
from __future__ import annotations

from . import constraints, kl
from .bernoulli import Bernoulli
from .categorical import Categorical
from .distribution import Distribution
from .kl import kl_divergence, register_kl
from .normal import Normal
from .uniform import Uniform

__all__ = ["Bernoulli", "Categorical", "Distribution", "Normal", "Uniform", "constraints", "kl", "kl_divergence",
           "register_kl"]
