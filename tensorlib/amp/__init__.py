"""Automatic mixed precision (autocast). The GradScaler arrives with the training stack."""
from .autocast_mode import autocast, is_autocast_enabled
from .grad_scaler import GradScaler  # the training stack's loss scaling
