"""Shared helpers of the op tests: tensors from NumPy, comparison with a NumPy reference."""
from __future__ import annotations

import numpy as np

import tensorlib as tl

rng = np.random.default_rng(7)


def T(a, grad=False):
    return tl.tensor(np.asarray(a), requires_grad=grad)


def eq(t, ref, dtype=None):
    a = t.detach().numpy()
    np.testing.assert_allclose(a, ref, rtol=1e-12, atol=1e-12, equal_nan=True)
    assert a.shape == np.shape(ref)
    if dtype is not None:
        assert t.dtype == dtype


X = rng.standard_normal((4, 5))
TIES = np.array([[2.0, 1.0, 2.0, 0.0, 1.0], [3.0, 3.0, -1.0, 3.0, 0.0]])
