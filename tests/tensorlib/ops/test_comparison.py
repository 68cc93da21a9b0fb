"""tensorlib/ops/comparison.py against NumPy references."""
from __future__ import annotations

import numpy as np
import pytest

import tensorlib as tl
from tests.tensorlib.ops._util import T, eq


def test_isclose_allclose_equal():
    a = T([1.0, np.nan, np.inf, 1e-9, 1.0])
    b = T([1.0 + 1e-7, np.nan, np.inf, 0.0, 1.1])
    ref = np.isclose(a.numpy(), b.numpy())
    eq(tl.isclose(a, b), ref, tl.bool)
    eq(a.isclose(b, equal_nan=True), np.isclose(a.numpy(), b.numpy(), equal_nan=True))
    assert tl.allclose(a, b) is False
    assert tl.allclose(a[:1], b[:1]) is True
    assert tl.allclose(a, a, equal_nan=True) is True
    assert tl.equal(a[2:], a[2:]) is True and a.equal(a) is False        # NaN != NaN
    assert tl.equal(tl.ones(2), tl.ones(3)) is False
    with pytest.raises(RuntimeError, match="^Double did not match Long$"):
        tl.isclose(a, tl.ones(5, dtype=tl.int64))
