"""torch.memory_format (torch.contiguous_format, channels_last, ...). tensorlib keeps every tensor row-major
(C order), so `to(memory_format=...)`, `contiguous(memory_format=...)` and Module.to(memory_format=...) accept
a format and leave the layout (never the values) as it is; `is_contiguous(memory_format=...)` answers for the
tensor's actual strides."""
from __future__ import annotations

from ._dtype import namespace

__all__ = ["memory_format", "contiguous_format", "preserve_format", "channels_last", "channels_last_3d"]


class memory_format:
    __slots__ = ("name",)

    def __init__(self, name: str):
        self.name = name

    def __repr__(self) -> str:
        return f"{namespace()}.{self.name}"

    def __reduce__(self):
        return (_by_name, (self.name,))


def _by_name(name: str) -> memory_format:
    return _FORMATS[name]


contiguous_format = memory_format("contiguous_format")
preserve_format = memory_format("preserve_format")
channels_last = memory_format("channels_last")
channels_last_3d = memory_format("channels_last_3d")
_FORMATS = {f.name: f for f in (contiguous_format, preserve_format, channels_last, channels_last_3d)}
_LAST = {channels_last: (4, (0, 2, 3, 1)), channels_last_3d: (5, (0, 2, 3, 4, 1))}


def is_contiguous_as(data, fmt) -> bool:
    """Whether an array's strides are dense in `fmt`'s order (None: row-major, torch's contiguous_format)."""
    if fmt is None or fmt is contiguous_format:
        return bool(data.flags.c_contiguous)
    if fmt is preserve_format:
        return bool(data.flags.c_contiguous)
    if fmt not in _LAST:
        raise TypeError(f"is_contiguous(): argument 'memory_format' must be {namespace()}.memory_format, not "
                        f"{type(fmt).__name__}")
    ndim, order = _LAST[fmt]
    return data.ndim == ndim and bool(data.transpose(order).flags.c_contiguous)
