"""torch.nn.utils.convert_conv2d_weight_memory_format / convert_conv3d_weight_memory_format: as torch's, each
convolution's weight data is replaced by a detached clone in the requested format (channels_last's strides,
tensorlib/_memory_format.py), its values kept."""
from __future__ import annotations

from .. import modules as M

__all__ = ["convert_conv2d_weight_memory_format", "convert_conv3d_weight_memory_format"]


def _convert(module, memory_format, kinds):
    if isinstance(module, kinds):
        module.weight.data = module.weight.detach().clone(memory_format=memory_format)
    for child in module.children():
        _convert(child, memory_format, kinds)
    return module


def convert_conv2d_weight_memory_format(module, memory_format):
    """The weights of `module`'s Conv2d and ConvTranspose2d layers (recursively) in `memory_format`; returns
    `module`."""
    return _convert(module, memory_format, (M.Conv2d, M.ConvTranspose2d))


def convert_conv3d_weight_memory_format(module, memory_format):
    """As convert_conv2d_weight_memory_format, for Conv3d and ConvTranspose3d layers."""
    return _convert(module, memory_format, (M.Conv3d, M.ConvTranspose3d))
