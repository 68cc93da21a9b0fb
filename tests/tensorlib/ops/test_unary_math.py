"""tensorlib/ops/unary_math.py against NumPy references."""
from __future__ import annotations

import numpy as np
import pytest

import tensorlib as tl
from tensorlib.autograd import gradcheck
from tests.tensorlib.ops._util import T, eq, rng


UNARY = {"log10": np.log10, "exp2": np.exp2, "expm1": np.expm1, "sinh": np.sinh, "cosh": np.cosh,
         "asin": np.arcsin, "acos": np.arccos, "atan": np.arctan, "arcsin": np.arcsin, "square": np.square,
         "frac": lambda a: a - np.trunc(a)}


@pytest.mark.parametrize("name", sorted(UNARY))
def test_unary_math(name):
    a = rng.uniform(0.1, 0.9, (3, 4)) * rng.choice([-1, 1], (3, 4))
    if name == "log10":
        a = np.abs(a)
    eq(getattr(tl, name)(T(a)), UNARY[name](a))
    eq(getattr(T(a), name)(), UNARY[name](a))
    assert gradcheck(getattr(tl, name), [T(a, grad=True)])
    assert getattr(tl, name)(T(a.astype(np.float32))).dtype == tl.float32


def test_sign_of_a_0d_float_tensor():
    """NumPy's sign of a 0-d array is a scalar: the NaN-to-0 fix must still write into an array."""
    assert float(tl.sign(tl.tensor(-2.0, dtype=tl.float64))) == -1.0
    assert float(tl.sign(tl.tensor(float("nan")))) == 0.0
