"""The payload of a sparse COO tensor, and torch's layout objects.

A sparse tensor is a plain `Tensor` whose `_data` is a `SparseCOO` (torch's triple: an int64 `indices` array
of shape (sparse_dim, nnz), a `values` array of shape (nnz, *dense_shape) and the size), not a subclass: the
autograd slots, hooks and the dispatcher stay the same objects. The dispatcher tells the two kinds apart by
the payload's type where it already asks for the CUDA one (`_execute._xp_of`), so dense ops pay nothing; an op
given a sparse operand runs its sparse kernel (`OpDef.sparse`, as torch's SparseCPU dispatch key) or raises
torch's "Could not run ... 'SparseCPU' backend". A leaf module: NumPy only.
"""
from __future__ import annotations

from math import prod

import numpy as np

__all__ = ["SparseCOO", "layout", "strided", "sparse_coo", "coalesce_arrays", "dense_of"]


class layout(str):
    """torch.layout: `torch.strided`, `torch.sparse_coo`. A str (the layout's name) so that code comparing
    `t.layout == "strided"` keeps working; its repr is torch's."""
    __slots__ = ()

    def __repr__(self):
        return f"torch.{str.__str__(self)}"

    __str__ = __repr__


strided = layout("strided")
sparse_coo = layout("sparse_coo")


class SparseCOO:
    """indices (int64, (sparse_dim, nnz)), values ((nnz, *dense_shape)), shape (a tuple of ints) and whether
    the indices are known sorted and unique (torch's is_coalesced flag). Reads as an array where Tensor's
    metadata reads one (shape, ndim, dtype, size, itemsize); holds NumPy or CuPy arrays alike."""
    __slots__ = ("indices", "values", "shape", "coalesced")
    base = None                 # never a view of another payload (the engine's aliasing checks read it)

    def __init__(self, indices, values, shape, coalesced=False):
        self.indices = indices
        self.values = values
        self.shape = tuple(int(s) for s in shape)
        self.coalesced = bool(coalesced)

    @property
    def dtype(self):
        return self.values.dtype

    @property
    def ndim(self):
        return len(self.shape)

    @property
    def size(self):
        """The dense element count (torch's numel of a sparse tensor)."""
        return prod(self.shape)

    @property
    def itemsize(self):
        return self.values.itemsize

    @property
    def nnz(self):
        return int(self.indices.shape[1])

    @property
    def sparse_dim(self):
        return int(self.indices.shape[0])

    @property
    def dense_dim(self):
        return self.values.ndim - 1

    def with_values(self, values, coalesced=None):
        """The same indices and size over other values (a cast, a product with a scalar)."""
        return SparseCOO(self.indices, values, self.shape, self.coalesced if coalesced is None else coalesced)


def _linear(xp, indices, shape):
    """Each nonzero's row-major position among the sparse dims (its sort key)."""
    sd = indices.shape[0]
    if sd == 0:
        return xp.zeros(indices.shape[1], dtype=np.int64)
    return xp.ravel_multi_index(tuple(indices), shape[:sd]) if sd > 1 else indices[0].copy()


def coalesce_arrays(xp, s: SparseCOO) -> SparseCOO:
    """torch's coalesce: the indices sorted and unique, the values of repeated indices summed."""
    if s.nnz == 0:
        return SparseCOO(s.indices, s.values, s.shape, True)
    key = _linear(xp, s.indices, s.shape)
    uniq, inverse = xp.unique(key, return_inverse=True)
    values = xp.zeros((uniq.shape[0],) + s.values.shape[1:], dtype=s.values.dtype)
    if s.values.dtype == np.bool_:
        xp.logical_or.at(values, inverse, s.values)
    else:
        xp.add.at(values, inverse, s.values)
    sd = s.sparse_dim
    idx = (xp.stack(xp.unravel_index(uniq, s.shape[:sd])) if sd > 1 else uniq[None]).astype(np.int64)
    return SparseCOO(idx, values, s.shape, True)


def dense_of(xp, s: SparseCOO, dtype=None):
    """The dense array: values scattered to their indices, repeated indices summed (torch's to_dense)."""
    out = xp.zeros(s.shape, dtype=dtype or s.values.dtype)
    if s.nnz:
        v = s.values if dtype is None else s.values.astype(dtype)
        if not s.sparse_dim:        # no sparse dims: every entry is the whole (dense) tensor, summed
            out[...] = v.sum(axis=0)
        elif s.coalesced:
            out[tuple(s.indices)] = v
        else:
            xp.add.at(out, tuple(s.indices), v)
    return out
