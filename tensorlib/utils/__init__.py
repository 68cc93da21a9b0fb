"""tensorlib.utils: torch.utils's data loading (utils.data), activation checkpointing (utils.checkpoint) and
swap_tensors."""
from . import checkpoint, data, dlpack
from ._swap import swap_tensors

__all__ = ["checkpoint", "data", "dlpack", "swap_tensors"]
