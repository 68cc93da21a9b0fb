"""tensorlib/ops/linalg.py against NumPy references."""
from __future__ import annotations

import numpy as np
import pytest

import tensorlib as tl
from tensorlib.autograd import gradcheck
from tests.tensorlib.ops._util import T, eq, rng


@pytest.mark.parametrize("eq_,shapes", [
    ("ij,jk->ik", [(2, 3), (3, 4)]),
    ("bij,bjk", [(2, 3, 4), (2, 4, 5)]),
    ("...j,j->...", [(2, 3, 4), (4,)]),
    ("ij,kl->jl", [(2, 3), (4, 5)]),
    ("i,i,i->", [(4,), (4,), (4,)]),
    ("ij->j", [(3, 4)]),
])
def test_einsum(eq_, shapes):
    arrs = [rng.standard_normal(s) for s in shapes]
    eq(tl.einsum(eq_, *[T(a) for a in arrs]), np.einsum(eq_, *arrs))
    eq(tl.einsum(eq_, [T(a) for a in arrs]), np.einsum(eq_, *arrs))
    assert gradcheck(lambda *xs: tl.einsum(eq_, *xs), [T(a, grad=True) for a in arrs])


def test_einsum_errors():
    with pytest.raises(RuntimeError, match="fewer operands were provided"):
        tl.einsum("ij,jk", tl.ones(2, 3))
    with pytest.raises(RuntimeError, match="subscript j has size 4 for operand 1"):
        tl.einsum("ij,jk->ik", tl.ones(2, 3), tl.ones(4, 5))


def test_addmm_baddbmm_cross():
    c, a, b = rng.standard_normal(4), rng.standard_normal((2, 3)), rng.standard_normal((3, 4))
    eq(tl.addmm(T(c), T(a), T(b), beta=0.5, alpha=2), 0.5 * c + 2 * a @ b)
    eq(tl.addmm(T([np.nan] * 4), T(a), T(b), beta=0), a @ b)
    bc, ba, bb = rng.standard_normal((2, 2, 4)), rng.standard_normal((2, 2, 3)), rng.standard_normal((2, 3, 4))
    eq(T(bc).baddbmm(T(ba), T(bb), alpha=3), bc + 3 * ba @ bb)
    assert gradcheck(lambda *xs: tl.baddbmm(*xs, beta=2), [T(bc, grad=True), T(ba, grad=True), T(bb, grad=True)])
    u, v = rng.standard_normal((4, 3)), rng.standard_normal(3)
    eq(tl.cross(T(u), T(v), dim=-1), np.cross(u, v))
    assert gradcheck(lambda p, q: tl.cross(p, q, dim=1), [T(u, grad=True), T(v, grad=True)])
    with pytest.raises(RuntimeError, match="linalg.cross: inputs dimension 1 must have length 3. Got 4 and 4"):
        tl.cross(tl.ones(3, 4), tl.ones(3, 4), dim=1)
