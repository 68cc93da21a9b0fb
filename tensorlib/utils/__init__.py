"""tensorlib.utils: torch.utils's data loading (utils.data) and activation checkpointing (utils.checkpoint)."""
from . import checkpoint, data
