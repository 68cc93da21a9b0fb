"""torch.nn.utils.rnn: PackedSequence and the functions that pack, pad and unpad variable-length sequences.

A PackedSequence holds a batch's valid time steps only: `data` is (sum(lengths), *), the running sequences'
rows of step 0, then of step 1, ..., and `batch_sizes` (a CPU int64 tensor) says how many sequences run at
each step; the sequences are in decreasing length order, `sorted_indices` (None when the caller sorted them)
mapping back to the caller's order. Packing and padding are the dispatched ops of tensorlib/ops/packed.py
(torch's aten::_pack_padded_sequence and _pad_packed_sequence), so gradients flow through them; nn.RNN, LSTM
and GRU take a PackedSequence and return one (nn/modules/rnn.py).
"""
from __future__ import annotations

from collections.abc import Iterable
from typing import Any, NamedTuple

import numpy as np

from ... import _dtype as D, _hooks as _H, ops
from ..._tensor import Tensor
from ...dispatch import dispatch
from ...ops.creation import tensor as _new_tensor
from ...ops.packed import PACK_PADDED_SEQUENCE, PAD_PACKED_SEQUENCE

__all__ = ["PackedSequence", "invert_permutation", "pack_padded_sequence", "pad_packed_sequence", "pad_sequence",
           "unpad_sequence", "pack_sequence", "unpack_sequence"]


class PackedSequence_(NamedTuple):
    data: Tensor
    batch_sizes: Tensor
    sorted_indices: Tensor | None
    unsorted_indices: Tensor | None


def bind(optional, fn):
    return None if optional is None else fn(optional)


class PackedSequence(PackedSequence_):
    """torch's PackedSequence: a namedtuple (data, batch_sizes, sorted_indices, unsorted_indices) whose
    conversions (`to`, `cpu`, `cuda`, `float`, ...) move or cast `data` (the indices follow its device;
    batch_sizes stays on the CPU) and return the sequence itself when `data` is unchanged."""

    def __new__(cls, data, batch_sizes=None, sorted_indices=None, unsorted_indices=None):
        return super().__new__(cls, *_packed_sequence_init_args(data, batch_sizes, sorted_indices,
                                                                unsorted_indices))

    def pin_memory(self):
        return type(self)(self.data.pin_memory(), self.batch_sizes, bind(self.sorted_indices, lambda t: t.pin_memory()),
                          bind(self.unsorted_indices, lambda t: t.pin_memory()))

    def to(self, *args: Any, **kwargs: Any):
        data = self.data.to(*args, **kwargs)
        if data is self.data:
            return self
        non_blocking = kwargs.get("non_blocking", False)

        def call_to(t):
            return t.to(data.device, non_blocking=non_blocking)
        return type(self)(data, self.batch_sizes, bind(self.sorted_indices, call_to),
                          bind(self.unsorted_indices, call_to))

    def cuda(self, *args: Any, **kwargs: Any):
        ex = _new_tensor((), dtype=self.data.dtype, device=self.data.device).to(*args, **kwargs)
        if ex.is_cuda:
            return self.to(*args, **kwargs)
        kwargs["device"] = "cuda"
        return self.to(*args, **kwargs)

    def cpu(self, *args: Any, **kwargs: Any):
        ex = _new_tensor((), dtype=self.data.dtype, device=self.data.device).to(*args, **kwargs)
        if ex.device.type == "cpu":
            return self.to(*args, **kwargs)
        kwargs["device"] = "cpu"
        return self.to(*args, **kwargs)

    def double(self):
        return self.to(dtype=D.float64)

    def float(self):
        return self.to(dtype=D.float32)

    def half(self):
        return self.to(dtype=D.float16)

    def long(self):
        return self.to(dtype=D.int64)

    def int(self):
        return self.to(dtype=D.int32)

    def short(self):
        return self.to(dtype=D.int16)

    def char(self):
        return self.to(dtype=D.int8)

    def byte(self):
        return self.to(dtype=D.uint8)

    @property
    def is_cuda(self):
        return self.data.is_cuda

    def is_pinned(self):
        return self.data.is_pinned()


def _packed_sequence_init_args(data, batch_sizes=None, sorted_indices=None, unsorted_indices=None):
    if unsorted_indices is None:
        unsorted_indices = invert_permutation(sorted_indices)
    if batch_sizes is not None:
        if batch_sizes.device.type != "cpu":
            raise ValueError("batch_sizes should always be on CPU. Instances of PackedSequence should never be created "
                             "manually. They should be instantiated by functions like pack_sequence and "
                             "pack_padded_sequences in nn.utils.rnn. "
                             "https://pytorch.org/docs/stable/nn.html#torch.nn.utils.rnn.pack_sequence")
        return data, batch_sizes, sorted_indices, unsorted_indices
    if not (isinstance(data, (list, tuple)) and len(data) == 2):
        raise AssertionError("Expected data to be a list or tuple of length 2")
    return data[0], data[1], sorted_indices, unsorted_indices


def _packed_sequence_init(data, batch_sizes=None, sorted_indices=None, unsorted_indices=None):
    return PackedSequence(*_packed_sequence_init_args(data, batch_sizes, sorted_indices, unsorted_indices))


def invert_permutation(permutation):
    """The inverse of a 1-D permutation (None for None): output[permutation[i]] = i."""
    if permutation is None:
        return None
    output = ops.empty_like(permutation)
    output.scatter_(0, permutation, ops.arange(0, permutation.numel(), device=permutation.device))
    return output


def _batch_sizes(input, lengths, batch_first):
    """torch's checks of _pack_padded_sequence's lengths (a 1-D CPU int64 tensor) against the input, and the
    batch sizes they give (a tuple): at step t, how many lengths exceed t."""
    if lengths.ndim != 1 or lengths.device.type != "cpu" or lengths.dtype != D.int64:
        raise RuntimeError(f"'lengths' argument should be a 1D CPU int64 tensor, but got {lengths.ndim}D "
                           f"{lengths.device.type} {_scalar_name(lengths)} tensor")
    if input.ndim < 2:
        raise IndexError(f"Dimension out of range (expected to be in range of [{-max(input.ndim, 1)}, "
                         f"{max(input.ndim, 1) - 1}], but got 1)")
    batch = input.shape[0 if batch_first else 1]
    ln = lengths.numpy()
    if input.numel() == 0:
        raise RuntimeError("Cannot pack empty tensors.")
    if len(ln) != batch:
        raise RuntimeError(f"Expected `len(lengths)` to be equal to batch_size, but got {len(ln)} "
                           f"(batch_size={batch})")
    if ln[batch - 1] <= 0:
        raise RuntimeError("Length of all samples has to be greater than 0, but found an element in 'lengths' that "
                           "is <= 0")
    if np.any(ln[1:] > ln[:-1]):
        raise RuntimeError("`lengths` array must be sorted in decreasing order when `enforce_sorted` is True. You can "
                           "pass `enforce_sorted=False` to pack_padded_sequence and/or pack_sequence to sidestep this "
                           "requirement if you do not need ONNX exportability.")
    steps = input.shape[1 if batch_first else 0]
    if ln[0] > steps:       # (torch reads past the input's end here; tensorlib refuses)
        raise RuntimeError(f"pack_padded_sequence: a length ({int(ln[0])}) exceeds the input's sequence length "
                           f"({steps})")
    return tuple(int(n) for n in np.count_nonzero(ln[None, :] > np.arange(int(ln[0]))[:, None], axis=1))


def _scalar_name(t):
    return D.scalar_name(t._data.dtype)


def pack_padded_sequence(input, lengths, batch_first=False, enforce_sorted=True):
    """torch.nn.utils.rnn.pack_padded_sequence: a (T, B, *) batch (batch_first: (B, T, *)) of sequences of
    `lengths` packed into a PackedSequence. With enforce_sorted=False the sequences are sorted by decreasing
    length first (sorted_indices records how); otherwise they must come sorted."""
    if not isinstance(lengths, Tensor):
        lengths = ops.as_tensor(lengths, dtype=D.int64, device="cpu")
    else:
        lengths = lengths.to(dtype=D.int64)
    if enforce_sorted:
        sorted_indices = None
    else:
        lengths, sorted_indices = ops.sort(lengths, descending=True)
        sorted_indices = sorted_indices.to(input.device)
        input = input.index_select(0 if batch_first else 1, sorted_indices)
    if _H.range_hooks:
        data, batch_sizes = _H.op_region("_pack_padded_sequence", (input, lengths, batch_first), _pack, input,
                                         lengths, batch_first)
    else:
        data, batch_sizes = _pack(input, lengths, batch_first)
    return _packed_sequence_init(data, batch_sizes, sorted_indices, None)


def _pack(input, lengths, batch_first):
    bs = _batch_sizes(input, lengths, batch_first)
    data = dispatch(PACK_PADDED_SEQUENCE, input, batch_sizes=bs, batch_first=bool(batch_first))
    return data, ops.tensor(bs, dtype=D.int64)


def pad_packed_sequence(sequence, batch_first=False, padding_value=0.0, total_length=None):
    """torch.nn.utils.rnn.pad_packed_sequence: (padded batch, lengths), the inverse of pack_padded_sequence;
    the batch is in the caller's original order, padded with `padding_value` to `total_length` steps (default:
    the longest sequence's)."""
    max_seq_length = sequence.batch_sizes.size(0)
    if total_length is not None:
        if total_length < max_seq_length:
            raise ValueError("Expected total_length to be at least the length of the longest sequence in input, but "
                             f"got total_length={total_length} and max sequence length being {max_seq_length}")
        max_seq_length = total_length
    bs = tuple(int(n) for n in sequence.batch_sizes.tolist())
    args = (sequence.data, bs, batch_first, padding_value, max_seq_length)
    padded_output, lengths = _H.op_region("_pad_packed_sequence", args, _pad, *args) if _H.range_hooks else \
        _pad(*args)
    unsorted_indices = sequence.unsorted_indices
    if unsorted_indices is not None:
        batch_dim = 0 if batch_first else 1
        return padded_output.index_select(batch_dim, unsorted_indices), lengths[unsorted_indices.cpu()]
    return padded_output, lengths


def _pad(data, bs, batch_first, padding_value, total_length):
    out = dispatch(PAD_PACKED_SEQUENCE, data, batch_sizes=bs, batch_first=bool(batch_first),
                   padding_value=float(padding_value), total_length=int(total_length))
    b = np.asarray(bs)
    lengths = np.count_nonzero(np.arange(b[0])[:, None] < b[None, :], axis=1)
    return out, ops.tensor(lengths.astype(np.int64))


def pad_sequence(sequences, batch_first=False, padding_value=0.0, padding_side="right"):
    """torch.nn.utils.rnn.pad_sequence: a list of (L_i, *) tensors stacked into a (max L, B, *) batch
    (batch_first: (B, max L, *)) of `padding_value`, each sequence at the start (padding_side="right") or the
    end ("left") of its column; copies into slices of a new tensor, as torch's aten::pad_sequence."""
    if not isinstance(sequences, Iterable):
        raise RuntimeError("pad_sequence: Expected iterable for input sequences, but got arg of type: "
                           f"{type(sequences)}")
    sequences = tuple(sequences)
    if _H.range_hooks:
        return _H.op_region("pad_sequence", (list(sequences), batch_first, padding_value, padding_side), _pad_sequence,
                            sequences, batch_first, padding_value, padding_side)
    return _pad_sequence(sequences, batch_first, padding_value, padding_side)


def _pad_sequence(sequences, batch_first, padding_value, padding_side):
    if not sequences:
        raise RuntimeError("received an empty list of sequences")
    if padding_side not in ("left", "right"):
        raise RuntimeError(f"Expected padding_side to be one of left or right, but got {padding_side}.")
    first = sequences[0]
    L = max(s.shape[0] for s in sequences)
    B = len(sequences)
    trail = tuple(first.shape[1:])
    out = ops.full((B, L) + trail if batch_first else (L, B) + trail, padding_value, dtype=first.dtype,
                   device=first.device)
    for i, s in enumerate(sequences):
        if tuple(s.shape[1:]) != trail:
            for d, (a, b) in enumerate(zip(trail, s.shape[1:])):
                if a != b and b != 1:
                    raise RuntimeError(f"The size of tensor a ({a}) must match the size of tensor b ({b}) at "
                                       f"non-singleton dimension {d + 1}")
        n = s.shape[0]
        steps = slice(0, n) if padding_side == "right" else slice(L - n, L)
        if batch_first:
            out[i, steps] = s
        else:
            out[steps, i] = s
    return out


def unpad_sequence(padded_sequences, lengths, batch_first=False):
    """torch.nn.utils.rnn.unpad_sequence: the list of sequences of a padded batch, each cut to its length.
    (torch transposes a time-major `padded_sequences` in place, a side effect on the caller's tensor;
    tensorlib reads a transposed view and leaves the tensor as it was.)"""
    if not batch_first:
        padded_sequences = padded_sequences.transpose(0, 1)
    max_length = padded_sequences.shape[1]
    idx = ops.arange(max_length, device=lengths.device)
    out = []
    for seq, length in zip(padded_sequences, lengths, strict=True):
        out.append(seq[idx < length])
    return out


def pack_sequence(sequences, enforce_sorted=True):
    """torch.nn.utils.rnn.pack_sequence: a list of (L_i, *) tensors packed (pad_sequence, then
    pack_padded_sequence)."""
    lengths = ops.as_tensor([v.size(0) for v in sequences])
    return pack_padded_sequence(pad_sequence(sequences), lengths, enforce_sorted=enforce_sorted)


def unpack_sequence(packed_sequences):
    """torch.nn.utils.rnn.unpack_sequence: a PackedSequence back to its list of sequences, in the original
    order."""
    padded_sequences, lengths = pad_packed_sequence(packed_sequences, batch_first=True)
    return unpad_sequence(padded_sequences, lengths, batch_first=True)
