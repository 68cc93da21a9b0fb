"""Automatic mixed precision (autocast). The GradScaler arrives with the training stack."""
from .autocast_mode import autocast, is_autocast_enabled  # noqa: F401
from .grad_scaler import GradScaler  # noqa: F401,E402 - the training stack's loss scaling
