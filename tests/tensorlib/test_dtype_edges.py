"""Integral and bool tensors where torch computes in another dtype or refuses, found by a sweep of ~60 calls
against torch (devtools/torch_compat/test_zero_dim_against_torch.py keeps that sweep): each gave a wrong dtype, a
wrong value (logsumexp of uint8 in float16: inf), NumPy's error (cumprod of uint8: KeyError; sign of bool) or a
result where torch raises its own error."""
from __future__ import annotations

import math

import pytest

import tensorlib as tl


@pytest.mark.parametrize("dtype", [tl.int64, tl.int32, tl.uint8, tl.int8, tl.bool])
def test_std_var_and_norm_refuse_integral_tensors_with_torchs_messages(dtype):
    x = tl.tensor([1, 0, 2], dtype=dtype)
    for fn in (lambda: x.std(), lambda: x.var(0), lambda: tl.var_mean(x)):
        with pytest.raises(RuntimeError, match="std and var only support floating point and complex dtypes"):
            fn()
    with pytest.raises(RuntimeError, match="linalg.vector_norm: Expected a floating point or complex tensor as input"):
        x.norm()


@pytest.mark.parametrize("dtype", [tl.int64, tl.int32, tl.uint8, tl.int8, tl.bool])
def test_logsumexp_of_an_integral_tensor_is_in_the_default_float_dtype(dtype):
    vals = [1, 0, 1] if dtype is tl.bool else [1, 0, 2]
    y = tl.tensor(vals, dtype=dtype).logsumexp(0)
    assert y.dtype == tl.get_default_dtype()
    assert y.item() == pytest.approx(math.log(sum(math.exp(v) for v in vals)), rel=1e-6)


def test_cumprod_of_small_integers_is_int64_and_any_all_keep_uint8():
    x = tl.tensor([3, 0, 2], dtype=tl.uint8)
    y = x.cumprod(0)
    assert y.dtype == tl.int64 and y.tolist() == [3, 0, 0]
    assert tl.tensor([200, 2], dtype=tl.uint8).cumprod(0).tolist() == [200, 400]      # no uint8 wrap-around
    assert x.any().dtype == tl.uint8 and x.any().item() == 1 and x.all().item() == 0
    assert tl.tensor([1, 0], dtype=tl.int64).any().dtype == tl.bool


def test_bool_tensors_sign_round_and_subtract_as_torch():
    b = tl.tensor([True, False])
    s = b.sign()
    assert s.dtype == tl.bool and s.tolist() == [True, False]
    for name in ("round", "floor", "ceil", "trunc"):
        with pytest.raises(NotImplementedError, match=f'"{name}_vml_cpu" not implemented for \'Bool\''):
            getattr(b, name)()
    with pytest.raises(RuntimeError, match="Subtraction, the `-` operator, with a bool tensor is not supported"):
        b - b
    assert (tl.tensor([1.5]) - tl.tensor([1.0])).tolist() == [0.5]


@pytest.mark.parametrize("call", [lambda: tl.rand(2, dtype=tl.int64),
                                  lambda: tl.rand_like(tl.ones(2, dtype=tl.bool)),
                                  lambda: tl.empty(2, dtype=tl.int64).uniform_()])
def test_uniform_draws_refuse_integral_dtypes_as_torch(call):
    """torch refuses them; a cast draw had silently given all zeros."""
    with pytest.raises(NotImplementedError, match='"check_uniform_bounds" not implemented for'):
        call()


@pytest.mark.parametrize("call", [lambda: tl.randn(2, dtype=tl.int32),
                                  lambda: tl.randn_like(tl.ones(2, dtype=tl.int64)),
                                  lambda: tl.empty(2, dtype=tl.int64).normal_()])
def test_normal_draws_refuse_integral_dtypes_as_torch(call):
    with pytest.raises(NotImplementedError, match='"normal_kernel_cpu" not implemented for'):
        call()
    assert tl.empty(2, dtype=tl.int64).bernoulli_(0.5).dtype == tl.int64     # (bernoulli_ takes them, as torch's)
