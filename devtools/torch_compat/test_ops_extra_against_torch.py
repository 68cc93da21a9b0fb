"""Tensor methods added in tensorlib/ops/extra_methods.py against torch 2.13: values (float64), and each
in-place variant against torch's in-place method on the same tensor (result and that it is the same object)."""
from __future__ import annotations

import numpy as np
import pytest

import tensorlib as tl
from tensorlib.ops import extra_methods as X

torch = pytest.importorskip("torch")
R = np.random.default_rng(0)
A = R.uniform(-0.9, 0.9, (3, 4))
B = R.uniform(0.1, 0.9, (3, 4))
M = R.uniform(-1, 1, (4, 4))

# method -> (receiver, args) as NumPy values; a float receiver unless it is given
ARGS = {
    "acosh": (B + 1.5, ()), "arccosh": (B + 1.5, ()), "logit": (B, (1e-3,)), "xlogy": (np.abs(A), (B,)),
    "heaviside": (np.round(A), (B,)), "logaddexp2": (A, (B,)), "dist": (A, (B, 3)), "take": (A, (np.array([0, 5]),)),
    "float_power": (np.abs(A), (2.5,)), "mv": (M, (M[0],)), "vdot": (M[0], (M[1],)), "trace": (M, ()),
    "matrix_power": (M, (3,)), "hardshrink": (A, (0.3,)), "prelu": (A.reshape(3, 4, 1), (np.array([0.25] * 4),)),
    "split_with_sizes": (A, ([1, 2],)), "hsplit": (A, (2,)), "vsplit": (M, (2,)), "narrow_copy": (A, (1, 1, 2)),
    "adjoint": (A, ()), "aminmax": (A, ()), "is_same_size": (A, (B,)), "is_nonzero": (A[:1, :1], ()),
    "unsafe_chunk": (A, (2,)), "unsafe_split": (A, (2,)), "dsplit": (A.reshape(3, 2, 2), (2,)),
    "addmm_": (M, (M, M)), "baddbmm_": (M[None], (M[None], M[None])), "atan2_": (A, (B,)), "arctan2_": (A, (B,)),
    "clamp_max_": (A, (0.1,)), "clamp_min_": (A, (0.1,)), "cumsum_": (A, (1,)), "cumprod_": (A, (0,)),
    "hypot_": (A, (B,)), "fmod_": (A, (0.3,)), "remainder_": (A, (0.3,)), "floor_divide_": (A, (0.3,)),
    "nan_to_num_": (A, ()), "round_": (A * 10, ()), "float_power_": (np.abs(A), (2.0,)),
}
BINARY = {"divide_", "multiply_", "subtract_", "true_divide_", "eq_", "ge_", "greater_", "greater_equal_", "gt_", "le_",
          "less_", "less_equal_", "lt_", "ne_", "not_equal_", "xlogy_", "logical_and_", "logical_or_",
          "logical_xor_", "heaviside_"}
INTEGER = {"bitwise_and_", "bitwise_or_", "bitwise_xor_", "bitwise_not_"}


def _case(name):
    if name in ARGS:
        return ARGS[name]
    if name in INTEGER:
        ints = R.integers(0, 9, (3, 4))
        return ints, (() if name == "bitwise_not_" else (ints[::-1].copy(),))
    if name in BINARY:
        return (np.round(A * 3) if name == "heaviside_" else np.abs(A) if name == "xlogy_" else A), (B,)
    return (B if name.startswith(("acos", "arccos", "asin", "arcsin", "atanh", "arctanh", "log", "rsqrt", "logit"))
            else A), ()


def _to(lib, v):
    return lib.tensor(v.copy()) if isinstance(v, np.ndarray) else v


def _np(v):
    if isinstance(v, (tuple, list)):
        return [_np(x) for x in v]
    return v.detach().numpy() if hasattr(v, "detach") else v


NAMES = sorted(set(X.COMPOSED) - {"positive", "is_signed", "isreal", "isposinf", "isneginf"}) + sorted(X.INPLACE_OF)


@pytest.mark.parametrize("name", NAMES)
def test_same_as_torch(name):
    recv, args = _case(name)
    ours, theirs = _to(tl, recv), _to(torch, recv)
    a = getattr(ours, name)(*[_to(tl, x) for x in args])
    b = getattr(theirs, name)(*[_to(torch, x) for x in args])
    if name.endswith("_"):
        assert a is ours and b is theirs
        assert ours.dtype.name == str(theirs.dtype).split(".")[1]
    got, want = _np(a), _np(b)
    if isinstance(want, list):
        assert len(got) == len(want)
        for g, w in zip(got, want):
            np.testing.assert_allclose(g, w, rtol=1e-12, atol=1e-14)
    else:
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-14)


def test_predicates_and_errors_as_torch():
    x = np.array([1.0, -np.inf, np.inf, 0.0])
    for name in ("isposinf", "isneginf", "isreal"):
        assert getattr(tl.tensor(x), name)().tolist() == getattr(torch.tensor(x), name)().tolist()
    assert tl.tensor([1]).is_signed() == torch.tensor([1]).is_signed()
    assert tl.tensor([1], dtype=tl.uint8).is_signed() == torch.tensor([1], dtype=torch.uint8).is_signed()
    for lib in (tl, torch):
        with pytest.raises(RuntimeError, match="result type Float can't be cast to the desired output type Long"):
            lib.tensor([1, 2]).sqrt_()
        with pytest.raises(RuntimeError, match="Boolean value of Tensor with more than one value is ambiguous"):
            lib.tensor([1, 2]).is_nonzero()
