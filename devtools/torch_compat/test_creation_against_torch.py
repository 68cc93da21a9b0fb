"""Tensor creation against torch 2.13, side by side: dtype inference from Python and NumPy data, factories'
dtypes and lengths (arange's float steps, linspace, full's fill value), the *_like and new_* methods, random draws'
refusals for integral dtypes, and the default dtype. Shape, dtype, values and requires_grad, or the error's type."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import tensorlib as tl

torch = pytest.importorskip("torch")

CALLS = {
    "t_int": lambda L: L.tensor([1, 2]),
    "t_mixed": lambda L: L.tensor([1, 2.5]),
    "t_bool": lambda L: L.tensor([True, False]),
    "t_bool_int": lambda L: L.tensor([True, 2]),
    "t_complex": lambda L: L.tensor([1, 2j]),
    "t_np_i32": lambda L: L.tensor(np.array([1, 2], np.int32)),
    "t_np_f64": lambda L: L.tensor(np.array([1.5])),
    "t_np_scalar": lambda L: L.tensor(np.float64(1.5)),
    "t_np_int_scalar": lambda L: L.tensor(np.int16(3)),
    "t_list_np_scalars": lambda L: L.tensor([np.float32(1), np.float32(2)]),
    "t_tensor_list": lambda L: L.tensor([L.tensor(1.0), L.tensor(2.0)]),
    "t_empty": lambda L: L.tensor([]),
    "t_nested_empty": lambda L: L.tensor([[], []]),
    "t_big_int": lambda L: L.tensor([2**40]),
    "t_py_float_dtype_int": lambda L: L.tensor([1.7, -1.7], dtype=L.int64),
    "as_tensor_list": lambda L: L.as_tensor([1, 2], dtype=L.float16),
    "arange_f": lambda L: L.arange(0, 1, 0.1),
    "arange_int": lambda L: L.arange(5),
    "arange_mixed": lambda L: L.arange(0, 5, 1.5),
    "arange_neg": lambda L: L.arange(5, 0, -2),
    "arange_f_end": lambda L: L.arange(1.0, 2.0, 0.3),
    "linspace": lambda L: L.linspace(0, 1, 5),
    "linspace_int_dtype": lambda L: L.linspace(0, 10, 4, dtype=L.int64),
    "logspace": lambda L: L.logspace(0, 2, 3),
    "full_int": lambda L: L.full((2,), 3),
    "full_bool": lambda L: L.full((2,), True),
    "full_float": lambda L: L.full((2,), 1.5),
    "zeros_like_dtype": lambda L: L.zeros_like(L.ones(2), dtype=L.int32),
    "ones_int_shape_list": lambda L: L.ones([2, 3]),
    "empty_strided": lambda L: L.empty_strided((2, 2), (1, 2)).fill_(1),
    "eye_rect": lambda L: L.eye(2, 3),
    "tril_idx": lambda L: L.tril_indices(3, 3),
    "randint_dtype": lambda L: L.randint(0, 5, (3,)).dtype == L.int64 and L.ones(1),
    "rand_like_int": lambda L: L.rand_like(L.ones(2, dtype=L.int64)),
    "tensor_requires_grad_int": lambda L: L.tensor([1, 2], requires_grad=True),
    "new_tensor": lambda L: L.ones(2, dtype=L.float16).new_tensor([1, 2]),
    "new_full": lambda L: L.ones(2, dtype=L.int32).new_full((2,), 2.7),
    "new_zeros": lambda L: L.ones(2, dtype=L.float64).new_zeros(3),
    "full_like_float_into_int": lambda L: L.full_like(L.ones(2, dtype=L.int64), 2.7),
    "heaviside": lambda L: L.heaviside(L.tensor([-1.0, 0.0, 2.0]), L.tensor(0.5)),
    "complex_fn": lambda L: L.complex(L.tensor([1.0]), L.tensor([2.0])),
    "polar": lambda L: L.polar(L.tensor([1.0]), L.tensor([0.0])),
    "scalar_tensor": lambda L: L.scalar_tensor(3),
    "t_int_overflow": lambda L: L.tensor([2**63]),
    "t_float_inf": lambda L: L.tensor([float("inf"), -0.0]),
    "default_dtype_double": lambda L: (L.set_default_dtype(L.float64), L.tensor([1.5]), L.set_default_dtype(L.float32))[
        1
    ],
    "default_dtype_arange": lambda L: (
        L.set_default_dtype(L.float64),
        L.arange(0, 1, 0.5),
        L.set_default_dtype(L.float32),
    )[1],
}


def _result(lib, fn):
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            y = fn(lib)
    except (RuntimeError, TypeError, ValueError, NotImplementedError, OverflowError) as e:
        return ("raised", type(e).__name__)
    vals = [
        complex(round(v.real, 4), round(v.imag, 4))
        if isinstance(v, complex)
        else round(v, 4)
        if isinstance(v, float)
        else v
        for v in y.detach().reshape(-1).tolist()
    ]
    return tuple(y.shape), str(y.dtype).split(".")[-1], vals, y.requires_grad


@pytest.mark.parametrize("name", sorted(k for k in CALLS if k != "randint_dtype"))
def test_creation_as_torchs(name):
    assert _result(tl, CALLS[name]) == _result(torch, CALLS[name])
