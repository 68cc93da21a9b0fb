"""Complex operands of ops torch has no complex kernel for are refused with torch's exception and message (NumPy
would order complex numbers lexicographically, round their parts, or raise its own TypeError); logaddexp of complex
numbers computes log(exp(a) + exp(b)), as torch's does."""
from __future__ import annotations

import numpy as np
import pytest

import tensorlib as tl

Z = tl.tensor([[1 + 2j, -0.5 + 0.25j], [3 - 1j, 0.1j]], dtype=tl.complex128)
W = tl.tensor([[0.5 - 1j, 2 + 0j], [-1 + 1j, 0.3 + 0.2j]], dtype=tl.complex128)


@pytest.mark.parametrize("fn,error,message", [
    (lambda: tl.maximum(Z, W), RuntimeError, "maximum not implemented for complex tensors."),
    (lambda: tl.minimum(Z, W), RuntimeError, "minimum not implemented for complex tensors."),
    (lambda: tl.fmax(Z, W), RuntimeError, "fmax not implemented for complex tensors."),
    (lambda: tl.fmin(Z, W), RuntimeError, "fmin not implemented for complex tensors."),
    (lambda: tl.maximum(Z.real, W), RuntimeError, "maximum not implemented for complex tensors."),
    (lambda: tl.deg2rad(Z), RuntimeError, "deg2rad is not supported for complex tensors."),
    (lambda: tl.floor(Z), NotImplementedError, "floor is not supported for complex inputs"),
    (lambda: tl.ceil(Z), NotImplementedError, "ceil is not supported for complex inputs"),
    (lambda: tl.trunc(Z), NotImplementedError, "trunc is not supported for complex inputs"),
    (lambda: tl.fix(Z), NotImplementedError, "trunc is not supported for complex inputs"),
    (lambda: tl.round(Z), NotImplementedError, "\"round_vml_cpu\" not implemented for 'ComplexDouble'"),
    (lambda: tl.frac(Z.to(tl.complex64)), NotImplementedError, "\"frac_cpu\" not implemented for 'ComplexFloat'"),
    (lambda: tl.floor_divide(Z, W), NotImplementedError, "\"div_floor_cpu\" not implemented for 'ComplexDouble'"),
    (lambda: Z // 2, NotImplementedError, "\"div_floor_cpu\" not implemented for 'ComplexDouble'"),
    (lambda: tl.remainder(Z, W), NotImplementedError, "\"remainder_cpu\" not implemented for 'ComplexDouble'"),
    (lambda: Z.real % W, NotImplementedError, "\"remainder_cpu\" not implemented for 'ComplexDouble'"),
    (lambda: tl.fmod(Z, 2), NotImplementedError, "\"fmod_cpu\" not implemented for 'ComplexDouble'"),
    (lambda: tl.xlogy(Z, W), NotImplementedError, "\"xlogy_cpu\" not implemented for 'ComplexDouble'"),
])
def test_complex_operands_are_refused_as_torch(fn, error, message):
    with pytest.raises(error) as e:
        fn()
    assert str(e.value) == message


def test_real_operands_still_compute():
    a, b = np.array([[1.5, -2.0], [0.25, 3.0]]), np.array([[0.5, 1.0], [-1.0, 2.0]])
    ta, tb = tl.tensor(a), tl.tensor(b)
    np.testing.assert_array_equal(tl.maximum(ta, tb).numpy(), np.maximum(a, b))
    np.testing.assert_array_equal(tl.floor(ta).numpy(), np.floor(a))
    np.testing.assert_array_equal(tl.remainder(ta, tb).numpy(), np.remainder(a, b))
    np.testing.assert_allclose(tl.deg2rad(ta).numpy(), np.deg2rad(a))


def test_logaddexp_of_complex_numbers():
    z, w = Z.numpy(), W.numpy()
    out = tl.logaddexp(Z, W)
    assert out.dtype is tl.complex128
    np.testing.assert_allclose(out.numpy(), np.log(np.exp(z) + np.exp(w)), rtol=1e-13)
    np.testing.assert_allclose(tl.logaddexp(Z, W.real).numpy(), np.log(np.exp(z) + np.exp(w.real)), rtol=1e-13)
    # large real parts: exp alone would overflow, the shifted form does not
    big = tl.tensor([800 + 1j], dtype=tl.complex128)
    np.testing.assert_allclose(tl.logaddexp(big, big).numpy(), [800 + np.log(2) + 1j], rtol=1e-13)
    np.testing.assert_allclose(np.exp(tl.logaddexp(Z, Z).numpy()), 2 * np.exp(z), rtol=1e-12)
