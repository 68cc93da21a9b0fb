"""default_collate / default_convert: turn a list of samples into a batch, as torch's do.

Tensors, NumPy arrays and numbers are stacked into one tensor with a new leading dimension (Python floats
become float64, ints int64, bools bool, as torch.tensor would make them); dicts, namedtuples, tuples and
lists are collated field by field (tuples come back as lists, as in torch); strings and bytes stay lists.
"""
from __future__ import annotations

import collections.abc as cabc
import numbers

import numpy as np

from ..._tensor import Tensor

__all__ = ["default_collate", "default_convert"]

_ERR = "default_collate: batch must contain tensors, numpy arrays, numbers, dicts or lists; found {}"


def _np_ok(arr):
    return arr.dtype.kind in "biufc"


def default_collate(batch):
    from ... import ops
    if not isinstance(batch, (list, tuple)):
        batch = list(batch)
    if len(batch) == 0:
        raise ValueError("default_collate: got an empty batch")
    elem = batch[0]
    if isinstance(elem, Tensor):
        first = elem._data.shape
        for i, b in enumerate(batch):       # (the arrays' own shapes: no Size made per sample)
            if not isinstance(b, Tensor):
                raise TypeError(f"default_collate: element {i} of the batch is a {type(b).__name__} where "
                                "element 0 is a Tensor; every sample must have the same structure")
            s = b._data.shape
            if s != first:
                raise RuntimeError(f"stack expects each tensor to be equal size, but got {list(first)} at entry 0 "
                                   f"and {list(s)} at entry {i}")
        return ops.stack(list(batch), 0)
    if isinstance(elem, np.ndarray):
        if not _np_ok(elem):
            raise TypeError(_ERR.format(elem.dtype))
        return default_collate([ops.as_tensor(b) for b in batch])
    if isinstance(elem, np.generic):
        if not _np_ok(np.asarray(elem)):
            raise TypeError(_ERR.format(elem.dtype))
        return ops.as_tensor(np.asarray(batch))
    if isinstance(elem, bool):
        return ops.tensor(list(batch))
    if isinstance(elem, float):
        from ... import _dtype
        return ops.tensor(list(batch), dtype=_dtype.float64)
    if isinstance(elem, int):
        return ops.tensor(list(batch))
    if isinstance(elem, numbers.Number):
        return ops.tensor([complex(b) if isinstance(b, complex) else float(b) for b in batch])
    if isinstance(elem, (str, bytes)):
        return list(batch)
    if isinstance(elem, cabc.Mapping):
        try:
            return type(elem)({k: default_collate([d[k] for d in batch]) for k in elem})
        except TypeError:
            return {k: default_collate([d[k] for d in batch]) for k in elem}
    if isinstance(elem, tuple) and hasattr(elem, "_fields"):  # namedtuple
        return type(elem)(*(default_collate(list(s)) for s in zip(*batch)))
    if isinstance(elem, cabc.Sequence):
        n = len(elem)
        if not all(len(e) == n for e in batch):
            raise RuntimeError("each element in list of batch should be of equal size")
        transposed = list(zip(*batch))
        if isinstance(elem, tuple):
            return [default_collate(list(s)) for s in transposed]
        try:
            return type(elem)([default_collate(list(s)) for s in transposed])
        except TypeError:
            return [default_collate(list(s)) for s in transposed]
    raise TypeError(_ERR.format(type(elem)))


def default_convert(data):
    """Without auto-batching (batch_size=None): NumPy arrays become tensors, containers are walked."""
    from ... import ops
    if isinstance(data, Tensor):
        return data
    if isinstance(data, np.ndarray):
        return ops.as_tensor(data) if _np_ok(data) else data
    if isinstance(data, np.generic):
        return ops.as_tensor(np.asarray(data)) if _np_ok(np.asarray(data)) else data
    if isinstance(data, cabc.Mapping):
        return type(data)({k: default_convert(v) for k, v in data.items()})
    if isinstance(data, tuple) and hasattr(data, "_fields"):
        return type(data)(*(default_convert(d) for d in data))
    if isinstance(data, tuple):
        return [default_convert(d) for d in data]
    if isinstance(data, cabc.Sequence) and not isinstance(data, (str, bytes)):
        try:
            return type(data)([default_convert(d) for d in data])
        except TypeError:
            return [default_convert(d) for d in data]
    return data
