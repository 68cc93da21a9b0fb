"""tensorlib.ao.quantization: torch.ao.quantization, the same functions as tensorlib.quantization."""
from ...quantization import (DynamicQuantizedLinear, QConfig, default_dynamic_qconfig, per_channel_dynamic_qconfig,
                             qint8, quantize_dynamic, quint8)

__all__ = ["quantize_dynamic", "qint8", "quint8", "default_dynamic_qconfig", "per_channel_dynamic_qconfig",
           "DynamicQuantizedLinear", "QConfig"]
