"""tensorlib.onnx: torch.onnx's export, built on the dispatcher's tracing hook (see _export.py).

The `onnx` package is needed only to export: pip install 'tensorlib-profiler[onnx]'."""
from __future__ import annotations

from . import errors
from ._export import (DEFAULT_OPSET, MAX_OPSET, MIN_OPSET, OnnxExporterError, OperatorExportTypes, TrainingMode,
                      UnsupportedOperatorError, export)
from ..jit._graph import TracerWarning

__all__ = ["export", "TrainingMode", "OperatorExportTypes", "OnnxExporterError", "UnsupportedOperatorError",
           "TracerWarning", "errors", "is_in_onnx_export"]

def is_in_onnx_export() -> bool:
    """torch.onnx.is_in_onnx_export: True while export() runs the model."""
    from . import _export
    return _export.EXPORTING > 0
