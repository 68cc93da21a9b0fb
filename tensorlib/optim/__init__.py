"""tensorlib.optim: torch.optim's optimizers and learning-rate schedulers.

The update math runs under no_grad through dispatched in-place ops, so a profile shows every kernel of
an update under its `Optimizer.step#<Name>.step` region."""
from .. import ops as _ops  # noqa: F401
from ..ops import optim_ops as _optim_ops  # noqa: F401 - registers addcmul_/addcdiv_/lerp_
from . import lr_scheduler  # noqa: F401
from .adam import Adam, AdamW
from .optimizer import Optimizer
from .rmsprop import RMSprop
from .sgd import SGD

__all__ = ["Optimizer", "SGD", "Adam", "AdamW", "RMSprop", "lr_scheduler"]
