"""Indexing where torch's reading differs from NumPy's (devtools/torch_compat/test_indexing_against_torch.py checks
the same forms against torch): ints mixed with index tensors select first, as torch applies them (NumPy counts the
ints as advanced indices and, across a slice, moves the indexed dimensions to the front); a list holding sequences
is a tuple of indices (torch's treatSequenceAsTuple); a uint8 index tensor is a mask, with torch's deprecation
warning. Each gave a silently different result before."""
from __future__ import annotations

import numpy as np
import pytest

import tensorlib as tl

BASE = np.arange(24, dtype=np.float32).reshape(2, 3, 4)


def test_an_int_and_an_index_across_a_slice_select_first():
    x = tl.tensor(BASE, requires_grad=True)
    y = x[1, :, [0, 3]]
    assert tuple(y.shape) == (3, 2)
    np.testing.assert_array_equal(y.detach().numpy(), BASE[1][:, [0, 3]])
    (y * tl.arange(6.0).reshape(3, 2)).sum().backward()
    want = np.zeros_like(BASE)
    want[1][:, [0, 3]] = np.arange(6.0).reshape(3, 2)
    np.testing.assert_array_equal(x.grad.numpy(), want)
    assert tuple(x[0, ..., [1, 2]].shape) == (3, 2) and tuple(x[[1, 0], :, 2].shape) == (2, 3)
    assert tuple(x[1, [0, 2]].shape) == (2, 4)      # adjacent: the same in both readings


def test_assignment_through_an_int_and_an_index_takes_torchs_shape():
    z = tl.tensor(BASE.copy())
    z[1, :, [0, 3]] = tl.arange(6.0).reshape(3, 2) + 100
    want = BASE.copy()
    want[1][:, [0, 3]] = np.arange(6.0).reshape(3, 2) + 100
    np.testing.assert_array_equal(z.numpy(), want)
    with pytest.raises(RuntimeError, match="must match the existing size"):
        z[1, :, [0, 3]] = tl.ones(2, 3)


def test_a_list_of_sequences_is_a_tuple_of_indices():
    x = tl.tensor(BASE)
    np.testing.assert_array_equal(x[[[0, 1], [1, 0]]].numpy(), BASE[[0, 1], [1, 0]])
    np.testing.assert_array_equal(x[[0, slice(1, 3)]].numpy(), BASE[0, 1:3])
    assert tuple(x[[1, 0]].shape) == (2, 3, 4)      # a flat list is one index


def test_a_uint8_index_is_a_mask_with_torchs_warning():
    x = tl.tensor(BASE)
    with pytest.warns(UserWarning, match="indexing with dtype torch.uint8 is now deprecated"):
        y = x[tl.tensor([1, 0], dtype=tl.uint8)]
    np.testing.assert_array_equal(y.numpy(), BASE[[True, False]])
