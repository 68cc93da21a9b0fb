"""tensorlib.ao: torch.ao's namespace (quantization)."""
from . import quantization

__all__ = ["quantization"]
