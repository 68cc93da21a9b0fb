"""tensorlib.optim: torch.optim's optimizers and learning-rate schedulers.

The update math runs through dispatched ops (under no_grad unless an optimizer is built with
differentiable=True), so a profile shows every kernel of an update under its `Optimizer.step#<Name>.step`
region."""
from .. import ops as _ops
from ..ops import optim_ops as _optim_ops  # registers addcmul_/addcdiv_/lerp_
from . import lr_scheduler, swa_utils
from .adadelta import Adadelta
from .adafactor import Adafactor
from .adagrad import Adagrad
from .adam import Adam, AdamW
from .adamax import Adamax
from .asgd import ASGD
from .lbfgs import LBFGS
from .muon import Muon
from .nadam import NAdam
from .optimizer import Optimizer
from .radam import RAdam
from .rmsprop import RMSprop
from .rprop import Rprop
from .sgd import SGD
from .sparse_adam import SparseAdam

__all__ = ["Adafactor", "Adadelta", "Adagrad", "Adam", "Adamax", "AdamW", "ASGD", "LBFGS", "lr_scheduler", "Muon",
           "NAdam", "Optimizer", "RAdam", "RMSprop", "Rprop", "SGD", "SparseAdam", "swa_utils"]
