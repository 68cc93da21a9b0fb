"""Complex tensors' own ops: conj, real and imag (views), view_as_real / view_as_complex (views), complex, polar
and angle, each with torch's autograd node and formula.

Complex gradients follow torch's convention (a real loss's gradient is dL/d(re) + i dL/d(im)). The formulas here
are written for complex gradients (OpDef.complex_formula); every other op's real formula is made complex by the
engine (conj(formula(conj(g))), autograd.engine._run_complex). torch's conj is lazy (a conjugate bit on a view);
tensorlib's conj of a complex tensor is a copy, so `is_conj()` is always False and `resolve_conj()` is the tensor.
"""
from __future__ import annotations

from .. import _dtype as D
from .broadcast import sum_to
from .comparison import where
from .meta_methods import _storage
from ._define import dispatch, op, public, torch_op, write_out


def _complex_op(name, **kw):
    """An op whose backward takes complex gradients as they are (OpDef.complex_formula)."""
    def deco(kernel):
        o = op(name, **kw)(kernel)
        o.complex_formula = True
        return o
    return deco


def _require_complex(a, what):
    if a.dtype.kind != "c":
        raise RuntimeError(what)


# --- conj ------------------------------------------------------------------------------------------------

@_complex_op("conj_physical", node_name="ConjPhysicalBackward0")
def CONJ_PHYSICAL(xp, a):
    return xp.conj(a)


@CONJ_PHYSICAL.def_backward
def _(ctx, g):
    return (conj_physical(g),)


@_complex_op("conj", node_name="ConjBackward0")
def CONJ(xp, a):
    return xp.conj(a)


CONJ.def_backward(CONJ_PHYSICAL.backward)


@public(method=True)
def conj_physical(input):
    """The conjugate, a new tensor; a real tensor's is a copy of it (torch's conj_physical)."""
    return dispatch(CONJ_PHYSICAL, input)


@public(method=True)
def conj(input):
    """torch's conj: a real tensor itself; a complex tensor's conjugate (a copy here: torch's is a lazy view)."""
    if input._data.dtype.kind != "c":
        return input
    return dispatch(CONJ, input)


# --- real, imag --------------------------------------------------------------------------------------------

@_complex_op("real", view=True, node_name="RealBackward0")
def REAL(xp, a):
    return a.real


@REAL.def_backward
def _(ctx, g):
    return (complex(g, g.new_zeros(tuple(g.shape))),)


@_complex_op("imag", view=True, node_name="ImagBackward0")
def IMAG(xp, a):
    _require_complex(a, "imag is not implemented for tensors with non-complex dtypes.")
    return a.imag


@IMAG.def_backward
def _(ctx, g):
    return (complex(g.new_zeros(tuple(g.shape)), g),)


@public
@torch_op("real")
def real(input):
    """The real part, a view of a complex tensor (written through it, as torch's); a real tensor itself."""
    if input._data.dtype.kind != "c":
        return input
    return dispatch(REAL, input)


@public
def imag(input):
    """The imaginary part, a view of a complex tensor; an error for a real one, as torch's."""
    return dispatch(IMAG, input)


def _set_part(getter):
    def setter(self, value):
        getter(self).copy_(value)
    return setter


# Tensor.real / Tensor.imag: torch's attributes, views that can be assigned to (`z.imag = t` copies into the view)
public(property(real, _set_part(real), doc="The real part: a view of a complex tensor, the tensor itself if real."),
       name="real", function=False, method=True)
public(property(imag, _set_part(imag), doc="The imaginary part of a complex tensor, a view."), name="imag",
       function=False, method=True)


# --- view_as_real, view_as_complex ------------------------------------------------------------------------

@_complex_op("view_as_real", view=True, node_name="ViewAsRealBackward0")
def VIEW_AS_REAL(xp, a):
    _require_complex(a, "view_as_real is only supported for complex tensors")
    re = a.real
    return xp.lib.stride_tricks.as_strided(re, a.shape + (2,), a.strides + (re.itemsize,))


@VIEW_AS_REAL.def_backward
def _(ctx, g):
    return (view_as_complex(g.contiguous()),)


@_complex_op("view_as_complex", view=True, node_name="ViewAsComplexBackward0")
def VIEW_AS_COMPLEX(xp, a):
    if a.dtype.kind != "f" or a.dtype.itemsize not in (4, 8):
        if a.dtype == D.float16.np:
            raise RuntimeError("view_as_complex of a half tensor needs complex32 (torch.chalf), which tensorlib does "
                               "not have (NumPy has no complex32): use .float() first")
        raise RuntimeError("view_as_complex is only supported for half, float and double tensors, but got a tensor "
                           f"of scalar type: {D.scalar_name(a.dtype)}")
    if not a.ndim or a.shape[-1] != 2:
        raise RuntimeError("Tensor must have a last dimension of size 2")
    item = a.itemsize
    if a.strides[-1] != item:
        raise RuntimeError("Tensor must have a last dimension with stride 1")
    if any(s % (2 * item) for s in a.strides[:-1]):
        raise RuntimeError("Tensor must have a stride divisible by 2 for all but last dimension")
    if _storage(a)[1] % 2:
        raise RuntimeError("Tensor must have a storage_offset divisible by 2")
    return a.view(D.to_dtype(a.dtype).to_complex().np)[..., 0]


@VIEW_AS_COMPLEX.def_backward
def _(ctx, g):
    return (view_as_real(g),)


@public
def view_as_real(input):
    """A complex tensor's real view, its last dimension (re, im) (torch's view_as_real)."""
    return dispatch(VIEW_AS_REAL, input)


@public
def view_as_complex(input):
    """A complex view of a float/double tensor whose last dimension is (re, im) with stride 1."""
    return dispatch(VIEW_AS_COMPLEX, input)


# --- complex, polar, angle ---------------------------------------------------------------------------------

def _same_float(real, imag):
    if real.dtype != imag.dtype:
        raise RuntimeError(f"Expected object of scalar type {D.scalar_name(real.dtype)} but got scalar type "
                           f"{D.scalar_name(imag.dtype)} for second argument")
    if real.dtype.kind != "f" or real.dtype.itemsize not in (4, 8):
        raise RuntimeError(f"Expected both inputs to be Half, Float or Double tensors but got "
                           f"{D.scalar_name(real.dtype)} and {D.scalar_name(imag.dtype)}")
    return D.to_dtype(real.dtype).to_complex().np


@_complex_op("complex", node_name="ComplexBackward0")
def COMPLEX(xp, real, imag):
    out = xp.empty(xp.broadcast_shapes(real.shape, imag.shape), _same_float(real, imag))
    out.real[...] = real        # (through the views: CuPy's arrays have no setter for real/imag)
    out.imag[...] = imag
    return out


@COMPLEX.def_backward
def _(ctx, g):
    return (sum_to(real(g), ctx.in_meta[0][0]) if ctx.needs_input_grad[0] else None,
            sum_to(imag(g), ctx.in_meta[1][0]) if ctx.needs_input_grad[1] else None)


@public
def complex(real, imag, *, out=None):
    """torch.complex: real + i imag, complex64 from float32 parts, complex128 from float64 ones."""
    return write_out(dispatch(COMPLEX, real, imag), out)


@_complex_op("polar", node_name="PolarBackward0", save="o")
def POLAR(xp, abs, angle):
    out = xp.empty(xp.broadcast_shapes(abs.shape, angle.shape), _same_float(abs, angle))
    out.real[...] = abs * xp.cos(angle)
    out.imag[...] = abs * xp.sin(angle)
    return out


@POLAR.def_backward
def _(ctx, g):
    # torch's polar_backward: grad_abs = re(conj(g) sgn(z)), grad_angle = re(conj(g) i z)
    z = ctx.saved_output
    gc = conj(g)
    ga = sum_to(real(gc * z.sgn()), ctx.in_meta[0][0]) if ctx.needs_input_grad[0] else None
    gt = sum_to(real(gc * (z * 1j)), ctx.in_meta[1][0]) if ctx.needs_input_grad[1] else None
    return ga, gt


@public
def polar(abs, angle, *, out=None):
    """torch.polar: abs * (cos(angle) + i sin(angle))."""
    return write_out(dispatch(POLAR, abs, angle), out)


@_complex_op("angle", save="i", node_name="AngleBackward0")
def ANGLE(xp, a):
    if a.dtype.kind == "c":
        return xp.angle(a)
    if a.dtype.kind != "f":         # torch: an integer tensor's angle is in the default float dtype
        a = a.astype(D.get_default_dtype().np)
    return xp.where(xp.isnan(a), a, xp.where(a < 0, xp.asarray(xp.pi, a.dtype), xp.zeros((), a.dtype)))


@ANGLE.def_backward
def _(ctx, g):
    # torch's angle_backward: where(z == 0, 0, g * z / |z|^2 * i) for complex z; zeros for real
    x = ctx.saved_inputs[0]
    if x._data.dtype.kind != "c":
        return (g.new_zeros(tuple(g.shape)),)
    return (where(x == 0, 0, g * x / (x.abs() ** 2) * 1j),)


@public(method=True)
def angle(input, *, out=None):
    return write_out(dispatch(ANGLE, input), out)
