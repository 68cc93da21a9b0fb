"""tensorlib.nested: torch.nested is not implemented. Each function raises NotImplementedError saying what to
use instead for the ragged-batch case the guides show: pad the sequences to one length and pass the padding
mask (nn.TransformerEncoder's src_key_padding_mask, nn.MultiheadAttention's key_padding_mask)."""
from __future__ import annotations

__all__ = ["nested_tensor", "as_nested_tensor", "to_padded_tensor", "narrow"]

_INSTEAD = ("tensorlib.nested is not supported: tensorlib has no ragged tensors. Pad the sequences to one length "
            "(tensorlib.stack of tensorlib.nn.functional.pad'ed tensors) and pass a boolean padding mask "
            "(src_key_padding_mask for nn.TransformerEncoder, key_padding_mask for nn.MultiheadAttention)")


def nested_tensor(tensor_list, *, dtype=None, layout=None, device=None, requires_grad=False, pin_memory=False):
    raise NotImplementedError(_INSTEAD)


def as_nested_tensor(ts, dtype=None, device=None, layout=None):
    raise NotImplementedError(_INSTEAD)


def to_padded_tensor(input, padding, output_size=None, out=None):
    raise NotImplementedError(_INSTEAD)


def narrow(tensor, dim, start, length, layout=None):
    raise NotImplementedError(_INSTEAD)
