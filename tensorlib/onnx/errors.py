"""torch.onnx.errors."""
from ._export import OnnxExporterError, UnsupportedOperatorError

__all__ = ["OnnxExporterError", "UnsupportedOperatorError"]
