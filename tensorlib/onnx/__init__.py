"""torch.onnx's entry points, so that `import torch.onnx` works in scripts that export only on request
(pytorch/examples' word_language_model). tensorlib has no graph tracer, so exporting is refused plainly."""
from __future__ import annotations

__all__ = ["export", "is_in_onnx_export", "OnnxExporterError"]


class OnnxExporterError(RuntimeError):
    """torch.onnx's error class for a failed export."""


def is_in_onnx_export() -> bool:
    """False: tensorlib never runs a model under an ONNX export."""
    return False


def export(model, args=(), f=None, *a, **kw):
    raise OnnxExporterError("tensorlib.onnx.export: tensorlib cannot export ONNX (it has no graph tracer); "
                            "load the weights into the same model in PyTorch and export it there")
