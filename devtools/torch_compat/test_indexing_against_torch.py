"""Indexing and index assignment against torch 2.13, side by side: 33 index forms (ints, negative ints, slices and
steps, None, Ellipsis, lists, nested lists, index and mask tensors of each integer kind, mixes of ints with index
tensors across slices, out-of-range and invalid indices) and 14 assignments and in-place index ops; values, shape and
dtype, or the error's type (tests/tensorlib/test_index_order.py checks the forms where torch's reading is not
NumPy's without torch)."""
from __future__ import annotations

import warnings

import numpy as np
import pytest

import tensorlib as tl

torch = pytest.importorskip("torch")

BASE = np.arange(24, dtype=np.float32).reshape(2, 3, 4)
GETS = {
    "int": lambda m, x: x[1], "neg": lambda m, x: x[-1, -2], "slice": lambda m, x: x[:, 1:],
    "step": lambda m, x: x[..., ::2], "none": lambda m, x: x[None, 0], "ellipsis": lambda m, x: x[..., 1],
    "list": lambda m, x: x[[1, 0]], "list2": lambda m, x: x[[1, 0], [2, 1]], "tensor": lambda m, x: x[m.tensor([1, 0])],
    "mask": lambda m, x: x[x > 10], "bool_row": lambda m, x: x[m.tensor([True, False])],
    "mixed": lambda m, x: x[:, [0, 2], 1:3], "int_slice_list": lambda m, x: x[1, :, [0, 3]],
    "list_slice_list": lambda m, x: x[[0, 1], :, [1, 2]], "int_ellipsis_list": lambda m, x: x[0, ..., [1, 2]],
    "list_slice_int": lambda m, x: x[[1, 0], :, 2], "0d_tensor": lambda m, x: x[m.tensor(1)],
    "neg_list": lambda m, x: x[[-1, -2]], "empty_list": lambda m, x: x[[]], "out_of_range": lambda m, x: x[5],
    "float": lambda m, x: x[1.0], "true": lambda m, x: x[True], "false": lambda m, x: x[False],
    "tuple_of_lists": lambda m, x: x[([0, 1], [1, 2])], "nested_list": lambda m, x: x[[[0, 1], [1, 0]]],
    "2d_tensor": lambda m, x: x[m.tensor([[0, 1], [1, 0]])], "slice_past_end": lambda m, x: x[:, 10:],
    "neg_tensor": lambda m, x: x[m.tensor([-1])], "uint8_mask": lambda m, x: x[m.tensor([1, 0], dtype=m.uint8)],
    "too_many": lambda m, x: x[0, 0, 0, 0], "index_select": lambda m, x: x.index_select(1, m.tensor([2, 0])),
    "take": lambda m, x: m.take(x, m.tensor([0, 23])), "masked_select": lambda m, x: x.masked_select(x > 20),
}
SETS = {
    "int": lambda m, x: x.__setitem__(0, 1.0), "slice": lambda m, x: x.__setitem__((slice(None), 0), m.ones(4)),
    "mask": lambda m, x: x.__setitem__(x > 5, 0.0), "list": lambda m, x: x.__setitem__([0, 1], m.zeros(3, 4)),
    "int_slice_list": lambda m, x: x.__setitem__((1, slice(None), [0, 3]), m.arange(6.0).reshape(3, 2)),
    "broadcast_error": lambda m, x: x.__setitem__(0, m.ones(5)),
    "step": lambda m, x: x.__setitem__((Ellipsis, slice(None, None, 2)), 7.0),
    "index_put": lambda m, x: x.index_put_((m.tensor([0, 1]),), m.tensor(3.0)),
    "index_put_acc": lambda m, x: x.index_put_((m.tensor([0, 0]),), m.tensor(1.0), accumulate=True),
    "masked_fill": lambda m, x: x.masked_fill_(x < 3, -1.0),
    "scatter": lambda m, x: x.scatter_(2, m.zeros(2, 3, 1, dtype=m.int64), 9.0),
    "index_add": lambda m, x: x.index_add_(0, m.tensor([1, 1]), m.ones(2, 3, 4)),
    "int64_value": lambda m, x: x.__setitem__(0, m.ones(3, 4, dtype=m.int64)),
    "float64_value": lambda m, x: x.__setitem__(1, m.ones(3, 4, dtype=m.float64)),
}


def _result(lib, fn, assigns):
    x = lib.tensor(BASE.copy())
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            y = fn(lib, x)
    except (IndexError, RuntimeError, TypeError, ValueError) as e:
        return ("raised", type(e).__name__)
    y = x if assigns else y
    return tuple(y.shape), str(y.dtype).split(".")[-1], y.reshape(-1).tolist()


@pytest.mark.parametrize("name", sorted(GETS))
def test_an_index_reads_as_torchs(name):
    assert _result(tl, GETS[name], False) == _result(torch, GETS[name], False)


@pytest.mark.parametrize("name", sorted(SETS))
def test_an_assignment_writes_as_torchs(name):
    assert _result(tl, SETS[name], True) == _result(torch, SETS[name], True)
