"""Matrix products: matmul (batched, broadcast, 1-D cases as torch), mm, bmm, dot, outer."""
from __future__ import annotations

from ._helpers import sum_to
from ._registry import Tensor, dispatch, method, op
from ..dispatch import dispatch2


def _matmul_kernel(xp, a, b):
    if a.ndim == 0 or b.ndim == 0:
        raise RuntimeError(f"both arguments to matmul need to be at least 1D, but they are {a.ndim}D and {b.ndim}D")
    if a.shape[-1] != b.shape[-2 if b.ndim > 1 else 0]:
        sa = "x".join(map(str, a.shape if a.ndim == 2 else (1,) + a.shape if a.ndim == 1 else
                          (int(xp.prod(xp.asarray(a.shape[:-1]))), a.shape[-1])))
        sb = "x".join(map(str, b.shape if b.ndim == 2 else b.shape + (1,) if b.ndim == 1 else b.shape[-2:]))
        raise RuntimeError(f"mat1 and mat2 shapes cannot be multiplied ({sa} and {sb})")
    if a.dtype != b.dtype:
        raise RuntimeError(f"expected m1 and m2 to have the same dtype, but got: {a.dtype} != {b.dtype}")
    return xp.matmul(a, b)


def _matmul_bwd(ctx, g):
    a, b = ctx.saved_inputs
    ga = gb = None
    if a.ndim == 1 and b.ndim == 1:
        return (g * b if ctx.needs_input_grad[0] else None, g * a if ctx.needs_input_grad[1] else None)
    a2 = a.unsqueeze(0) if a.ndim == 1 else a
    b2 = b.unsqueeze(-1) if b.ndim == 1 else b
    g2 = g
    if a.ndim == 1:
        g2 = g2.unsqueeze(-2)
    if b.ndim == 1:
        g2 = g2.unsqueeze(-1)
    if ctx.needs_input_grad[0]:
        ga = sum_to(matmul(g2, b2.mT), a2.shape)
        if a.ndim == 1:
            ga = ga.squeeze(0)
    if ctx.needs_input_grad[1]:
        gb = sum_to(matmul(a2.mT, g2), b2.shape)
        if b.ndim == 1:
            gb = gb.squeeze(-1)
    return ga, gb


MATMUL = op("matmul", save="i", amp="lower", node_name="MmBackward0")(_matmul_kernel)
MATMUL.def_backward(_matmul_bwd)


def _mm_kernel(xp, a, b):
    if a.ndim != 2:
        raise RuntimeError("self must be a matrix")
    if b.ndim != 2:
        raise RuntimeError("mat2 must be a matrix")
    return _matmul_kernel(xp, a, b)


MM = op("mm", save="i", amp="lower", node_name="MmBackward0")(_mm_kernel)
MM.def_backward(_matmul_bwd)


def _bmm_kernel(xp, a, b):
    if a.ndim != 3 or b.ndim != 3:
        raise RuntimeError("batch1 must be a 3D tensor" if a.ndim != 3 else "batch2 must be a 3D tensor")
    if a.shape[0] != b.shape[0]:
        raise RuntimeError(f"Expected size for first two dimensions of batch2 tensor to be: [{a.shape[0]}, "
                           f"{a.shape[2]}] but got: [{b.shape[0]}, {b.shape[1]}].")
    return _matmul_kernel(xp, a, b)


BMM = op("bmm", save="i", amp="lower", node_name="BmmBackward0")(_bmm_kernel)
BMM.def_backward(_matmul_bwd)


def _dot_kernel(xp, a, b):
    if a.ndim != 1 or b.ndim != 1:
        raise RuntimeError(f"1D tensors expected, but got {a.ndim}D and {b.ndim}D tensors")
    if a.shape[0] != b.shape[0]:
        raise RuntimeError(f"inconsistent tensor size, expected tensor [{a.shape[0]}] and src [{b.shape[0]}] to have "
                           f"the same number of elements, but got {a.shape[0]} and {b.shape[0]} elements respectively")
    return xp.dot(a, b)


DOT = op("dot", save="i", amp="lower")(_dot_kernel)
DOT.def_backward(_matmul_bwd)


@op("outer", save="i")
def OUTER(xp, a, b):
    return xp.outer(a, b)


@OUTER.def_backward
def _(ctx, g):
    a, b = ctx.saved_inputs
    return (matmul(g, b) if ctx.needs_input_grad[0] else None, matmul(g.mT, a) if ctx.needs_input_grad[1] else None)


def matmul(input, other):
    return dispatch2(MATMUL, input, other)


def mm(input, mat2):
    return dispatch(MM, input, mat2)


def bmm(input, mat2):
    return dispatch(BMM, input, mat2)


def dot(input, other):
    return dispatch(DOT, input, other)


def outer(input, vec2):
    return dispatch(OUTER, input, vec2)


ger = outer
Tensor.__matmul__ = lambda self, other: dispatch(MATMUL, self, other)
Tensor.__rmatmul__ = lambda self, other: dispatch(MATMUL, other, self)
for _n, _f in dict(matmul=matmul, mm=mm, bmm=bmm, dot=dot, outer=outer, ger=outer).items():
    method(_n, _f)
