"""The packed-sequence ops of torch.nn.utils.rnn: `_pack_padded_sequence` (a padded batch's valid steps, time
step after time step, as one (sum(lengths), *) tensor), its backward `_pack_padded_sequence_backward` (the
gradient scattered back into the padded shape, zeros elsewhere) and `_pad_packed_sequence` (the packed rows
put back into a padded batch, `padding_value` elsewhere).

Each op takes its `batch_sizes` (how many sequences are still running at each time step, torch's
PackedSequence.batch_sizes) as an attribute, a tuple of ints: it is CPU metadata in torch too, read on the
host by every kernel, so the arrays an op reads and writes are only the data's, on any device. The three are
linear maps and each one's backward is one of the others (pack <-> its backward; pad's backward packs), so
gradients of any order flow through them.
"""
from __future__ import annotations

import numpy as np

from ._define import dispatch, op


def _positions(batch_sizes, B):
    """The packed rows' flat positions t * B + b in a time-major (T, B) batch, in packed order (a NumPy int64
    array): time step by time step, the first batch_sizes[t] sequences of each."""
    bs = np.asarray(batch_sizes, dtype=np.int64)
    total = int(bs.sum())
    starts = np.repeat(np.cumsum(bs) - bs, bs)                  # each row's time step's first packed row
    t = np.repeat(np.arange(len(bs), dtype=np.int64), bs)
    return t * B + (np.arange(total, dtype=np.int64) - starts)


def _time_major(xp, a, batch_first):
    return xp.swapaxes(a, 0, 1) if batch_first else a


def _scatter(xp, data, batch_sizes, T, B, batch_first, fill):
    """The packed `data` written into a (T, B, *) batch (batch-first: (B, T, *)) filled with `fill`."""
    out = xp.full((T * B,) + data.shape[1:], fill, dtype=data.dtype)
    out[xp.asarray(_positions(batch_sizes, B))] = data
    out = out.reshape((T, B) + data.shape[1:])
    return xp.ascontiguousarray(xp.swapaxes(out, 0, 1)) if batch_first else out


@op("_pack_padded_sequence", node_name="PackPaddedSequenceBackward0")
def PACK_PADDED_SEQUENCE(xp, input, batch_sizes=(), batch_first=False):
    """torch's _pack_padded_sequence's data: the rows of a (T, B, *) batch (batch-first: (B, T, *)) whose
    sequences are running, step by step; the caller has checked the lengths and made `batch_sizes`."""
    x = _time_major(xp, input, batch_first)
    T, B = len(batch_sizes), x.shape[1]
    flat = x[:T].reshape((T * B,) + x.shape[2:])
    return flat[xp.asarray(_positions(batch_sizes, B))]


@op("_pack_padded_sequence_backward", node_name="PackPaddedSequenceBackwardBackward0")
def PACK_PADDED_SEQUENCE_BACKWARD(xp, grad, input_size=(), batch_sizes=(), batch_first=False):
    """torch's _pack_padded_sequence_backward: the packed gradient in the padded input's shape `input_size`,
    zeros at the padding (and past the longest sequence)."""
    T, B = (input_size[1], input_size[0]) if batch_first else (input_size[0], input_size[1])
    out = _scatter(xp, grad, batch_sizes, T, B, False, 0)
    return xp.ascontiguousarray(xp.swapaxes(out, 0, 1)) if batch_first else out


@PACK_PADDED_SEQUENCE.def_backward
def _(ctx, g):
    a = ctx.attrs
    return (dispatch(PACK_PADDED_SEQUENCE_BACKWARD, g, input_size=tuple(ctx.in_meta[0][0]),
                     batch_sizes=a["batch_sizes"], batch_first=a.get("batch_first", False)),)


@PACK_PADDED_SEQUENCE_BACKWARD.def_backward
def _(ctx, g):
    a = ctx.attrs
    return (dispatch(PACK_PADDED_SEQUENCE, g, batch_sizes=a["batch_sizes"], batch_first=a.get("batch_first", False)),)


# torch's _pad_packed_sequence is a composite of copies into slices: its output's grad_fn is CopySlices
@op("_pad_packed_sequence", node_name="tensorlib::autograd::CopySlices")
def PAD_PACKED_SEQUENCE(xp, data, batch_sizes=(), batch_first=False, padding_value=0.0, total_length=0):
    """torch's _pad_packed_sequence's padded output: the packed rows in a (total_length, B, *) batch
    (batch-first: (B, total_length, *)) of `padding_value` (total_length >= len(batch_sizes))."""
    return _scatter(xp, data, batch_sizes, max(total_length, len(batch_sizes)), batch_sizes[0], batch_first,
                    padding_value)


@PAD_PACKED_SEQUENCE.def_backward
def _(ctx, g):
    a = ctx.attrs
    return (dispatch(PACK_PADDED_SEQUENCE, g, batch_sizes=a["batch_sizes"], batch_first=a.get("batch_first", False)),)
