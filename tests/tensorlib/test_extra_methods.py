"""Tensor methods composed in tensorlib/ops/extra_methods.py: gradients (float64 finite differences), the
in-place variants' torch semantics (same object, cast refusal, autograd's leaf check). Values against torch:
devtools/torch_compat/test_ops_extra_against_torch.py (115 cases)."""
from __future__ import annotations

import numpy as np
import pytest

import tensorlib as tl
from tensorlib.autograd import gradcheck
from tensorlib.ops import extra_methods as X

R = np.random.default_rng(0)


def t(*shape, lo=-0.9, hi=0.9):
    return tl.tensor(R.uniform(lo, hi, shape)).requires_grad_(True)


@pytest.mark.parametrize("fn, inputs", [
    (lambda x: x.atanh(), [t(3, 4)]), (lambda x: x.asinh(), [t(3, 4)]), (lambda x: x.acosh(), [t(3, 4, lo=1.2, hi=3)]),
    (lambda x: x.logit(), [t(3, 4, lo=0.1, hi=0.9)]), (lambda x, y: x.xlogy(y), [t(3, 4), t(3, 4, lo=0.2, hi=2)]),
    (lambda x: x.sinc(), [t(3, 4, lo=0.1)]), (lambda x, y: x.logaddexp2(y), [t(3, 4), t(3, 4)]),
    (lambda m, v: m.mv(v), [t(3, 4), t(4)]), (lambda m: m.trace(), [t(4, 4)]), (lambda m: m.matrix_power(3), [t(3, 3)]),
    (lambda x, y: x.dist(y, 3), [t(5), t(5)]), (lambda x: x.float_power(2.5), [t(4, lo=0.2, hi=2)]),
    (lambda x: x.clone().cos_(), [t(3, 4)]), (lambda x, y: x.clone().hypot_(y), [t(3, 4), t(3, 4)]),
])
def test_gradients(fn, inputs):
    assert gradcheck(fn, inputs)


def test_inplace_variants_are_torchs():
    assert len(X.INPLACE_OF) >= 70 and all(hasattr(tl.Tensor, n) for n in X.INPLACE_OF)
    x = tl.tensor([0.25, -0.5])
    assert x.cos_() is x and np.allclose(x.numpy(), np.cos([0.25, -0.5]))
    m = tl.tensor([1.0, 5.0])
    assert m.ge_(tl.tensor([2.0, 2.0])).tolist() == [0.0, 1.0]          # the comparison, in self's dtype
    with pytest.raises(RuntimeError, match="result type Float can't be cast to the desired output type Long"):
        tl.tensor([1, 2]).sqrt_()
    with pytest.raises(RuntimeError, match="a leaf Variable that requires grad is being used in an in-place"):
        tl.ones(2, requires_grad=True).cos_()
    y = tl.ones(3, requires_grad=True) * 1
    y.exp2_()
    y.sum().backward()                                                   # a non-leaf's in-place op is recorded


def test_predicates_and_aliases():
    x = tl.tensor([1.0, -np.inf, np.inf, 0.0])
    assert x.isposinf().tolist() == [False, False, True, False] and x.isneginf().tolist()[1]
    assert tl.Tensor.arctanh.__wrapped__ is tl.Tensor.atanh and tl.tensor([1]).is_signed()
    assert not tl.tensor([1], dtype=tl.uint8).is_signed() and tl.ones(2).is_same_size(tl.zeros(2))
    with pytest.raises(RuntimeError, match="Boolean value of Tensor with more than one value is ambiguous"):
        tl.ones(2).is_nonzero()
    assert [p.shape for p in tl.ones(4, 6).hsplit(3)] == [(4, 2)] * 3
    mn, mx = tl.tensor([[3.0, 1.0], [2.0, 5.0]]).aminmax()
    assert (mn.item(), mx.item()) == (1.0, 5.0)
