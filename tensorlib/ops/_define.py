"""How an op is declared: one definition, in one place, gives the kernel, its backward, the public function,
the Tensor method, the operator dunders and the in-place variant.

Two forms.

The decorator, for any op::

    @op("add", promote=True, node_name="AddBackward0", operators=("__add__", "__radd__"))
    def ADD(xp, a, b, alpha=1):                 # the kernel, on NumPy or CuPy arrays
        return a + b if alpha == 1 else a + alpha * b

    @ADD.def_backward                           # the backward, beside it, written with tensorlib ops
    def _(ctx, g):
        ...

    @public(method=True, aliases=("plus",))     # tensorlib.add and Tensor.add, when the public function
    def add(input, other, *, alpha=1, out=None):  # does more than dispatch (argument checks, defaults, out=)
        ...

When the public function is only `dispatch(OP, *args, **kwargs)`, `op(..., function=True, method=True)` makes
it (its signature is the kernel's without `xp`). A function that is not an op of its own (a composite such as
`clamp_min`) is exported with `@public` alone.

The table line, for simple unary ops (function, method and, with `inplace=True`, the in-place method `name_`)::

    EXP = unary("exp", lambda xp, a: xp.exp(a), lambda ctx, g: (g * ctx.saved_output,), save="o", inplace=True)

Nothing is attached while the core op modules import: `tensorlib.ops` calls `attach()` once, at the end, which
sets every Tensor method from this table and returns the public functions (the package's `__all__`); what a
layer above declares later (nn's and optim's ops) is attached as it is declared. A name declared twice is an
error naming both places.
"""
from __future__ import annotations

import inspect
import sys
import warnings
from typing import Any

import numpy as np

from .. import _dtype as D
from .. import _hooks as _H
from .. import dispatch as _dispatch
from .._execute import execute
from ..dispatch import OpDef, dispatch, register_op
from .._tensor import Tensor
from ._fastmath import astype as _fast_astype

__all__ = ["op", "unary", "public", "alias", "torch_op", "attach", "dispatch", "Tensor", "np", "unwrap_scalar",
           "write_out", "refuse_complex", "fill_value", "special_functions", "functions", "methods"]

_FUNCTIONS: dict[str, object] = {}      # public name -> function (tensorlib.<name>)
_METHODS: dict[str, object] = {}        # Tensor attribute -> function or property
_WHERE: dict[tuple[str, str], str] = {}  # (kind, name) -> "module.qualname" of its definition, for errors
_attached = False
_ALIASES: dict[tuple[int, str], object] = {}    # (id(function), alias) -> its region's wrapper (see public)


def _origin(fn) -> str:
    return f"{getattr(fn, '__module__', '?')}.{getattr(fn, '__qualname__', getattr(fn, '__name__', '?'))}"


def _declare(table: dict, kind: str, name: str, fn) -> None:
    if name in table and table[name] is not fn:
        raise RuntimeError(f"{kind} {name!r} is declared twice: by {_WHERE[kind, name]} and by {_origin(fn)}")
    table[name] = fn
    _WHERE[kind, name] = _origin(fn)
    if _attached:            # declared after tensorlib.ops finished importing (tests, plugins): attach now
        if kind == "method":
            setattr(Tensor, name, fn)
        else:
            import sys
            ops: Any = sys.modules["tensorlib.ops"]     # a package with __all__ (ModuleType declares none)
            ops.__all__ = sorted({*ops.__all__, name})
            for module in (ops, sys.modules["tensorlib"]):
                setattr(module, name, fn)


def name_by_operands(o: OpDef, names: dict, at: tuple = (0, 1)) -> OpDef:
    """Name op o's nodes as torch names the overloads a call takes: `names` maps whether the operands at `at`
    are tensors (a tuple of bools; a number's in_meta is None) to torch's node name (pow: (True, False) is
    Tensor_Scalar's PowBackward0, (True, True) Tensor_Tensor's PowBackward1, (False, True) PowBackward2)."""
    def node_name_of(node):
        m = node.in_meta
        return names[tuple(k < len(m) and m[k] is not None for k in at)]
    o.node_name_of = node_name_of
    return o


def torch_op(name: str):
    """Decorator: the function runs inside the composite op region `name` (the profiler's `aten::<name>`), as
    torch records the CompositeImplicitAutograd op it is (`aten::cosine_similarity` over its arithmetic): the
    registry's op-region decorator, `record_range(name, "op")`, whose wrapper hands the call's positional
    arguments to the region (record_shapes) and, with no profiler listening, costs one test and a call."""
    return _H.record_range(name, "op")


def alias(name: str, fn):
    """torch's alias `name` of `fn` (multiply of mul, arctan of atan, clip_ of clamp_): `fn` inside the region
    `name`, so that a profile shows `aten::multiply` over `aten::mul` as torch's does (an alias is an op of its
    own in torch's dispatcher, which then calls the op it names). Named `name` (torch.multiply.__name__)."""
    f = torch_op(name)(fn)
    f.__name__ = name
    f.__qualname__ = name
    return f


def public(fn=None, *, name: str | None = None, function: bool = True, method: bool | str = False,
           aliases: tuple[str, ...] = (), method_aliases: tuple[str, ...] | None = None, prop: bool = False,
           alias_regions: bool = True):
    """Declare a public name: `tensorlib.<name>` (unless function=False) and, with method=True (or a
    method name), `Tensor.<name>`; each alias is declared the same way (as a method too, unless
    `method_aliases` names the method aliases). prop=True makes the method a read-only property.
    An alias runs inside its own region (`alias`: torch's profile shows `aten::<alias>` over the op), unless
    alias_regions=False (where torch's profile shows only the op: to_sparse_coo is to_sparse there).
    Returns the function unchanged."""
    def deco(f):
        n = name or f.__name__

        def named(a):           # one wrapper per alias (function and method share it), however often declared
            if a == n or not alias_regions or prop:
                return f
            key = (id(f), a)
            if key not in _ALIASES:
                _ALIASES[key] = alias(a, f)
            return _ALIASES[key]
        if function:
            for a in (n, *aliases):
                _declare(_FUNCTIONS, "function", a, named(a))
        if method:
            m = n if method is True else method
            for a in (m, *(aliases if method_aliases is None else method_aliases)):
                _declare(_METHODS, "method", a, property(f) if prop else (f if a == m else named(a)))
        return f
    return deco if fn is None else deco(fn)


def _dispatching(o: OpDef, name: str, kernel, self_first: bool):
    """The public function (or method) of an op that is nothing but its dispatch. The kernel's parameters
    without a default are the op's inputs (positional); those with one are its attributes, which the
    dispatcher takes by keyword (hooks, traces and the backward read them there): an attribute given by
    position is passed on by name."""
    try:
        params = list(inspect.signature(kernel).parameters.values())[1:]      # without xp
    except (TypeError, ValueError):
        params = None
    P = inspect.Parameter
    attr_names: tuple[str, ...]
    if params is None or any(p.kind is P.VAR_POSITIONAL for p in params):
        n_inputs, attr_names = 1 << 30, ()
    else:
        n_inputs = sum(1 for p in params if p.default is P.empty and p.kind is not P.KEYWORD_ONLY
                       and p.kind is not P.VAR_KEYWORD)
        attr_names = tuple(p.name for p in params if p.default is not P.empty and p.kind is P.POSITIONAL_OR_KEYWORD)
    # a function (not a method) whose kernel has no `out` of its own takes torch's out= (write_out)
    takes_out = not self_first and not (params is not None and any(p.name == "out" for p in params))

    def f(*args, **kwargs):
        if len(args) > n_inputs:
            if len(args) > n_inputs + len(attr_names):
                raise TypeError(f"{name}() takes {n_inputs + len(attr_names)} positional arguments but {len(args)} "
                                f"were given")
            kwargs.update(zip(attr_names, args[n_inputs:]))
            args = args[:n_inputs]
        if kwargs and takes_out and "out" in kwargs:     # torch's out=: the result written into it
            out = kwargs.pop("out")
            return write_out(f(*args, **kwargs), out, name)
        if _dispatch._full_path:
            rec = _dispatch._rec_run      # (the recorded path in C: dispatch's first case, without its call)
            return rec(o, args, kwargs) if rec is not None else dispatch(o, *args, **kwargs)
        return execute(o, args, kwargs, -1)     # dispatch's fast path, without its call
    f.__name__ = f.__qualname__ = name
    f.__module__ = kernel.__module__
    f.__doc__ = kernel.__doc__
    if params is not None:
        if self_first and params:
            params[0] = params[0].replace(name="self")
        elif params and params[0].name in ("a", "x"):
            params[0] = params[0].replace(name="input")
        f.__signature__ = inspect.Signature(params)  # type: ignore[attr-defined]  # inspect.signature reads it
    return f


_OPERAND = (Tensor, bool, int, float, complex, np.generic)


def binary_operator(o: OpDef, reflected: bool = False):
    """Tensor's `__add__`-style operator for op `o`: NotImplemented for operands that are not tensors or
    numbers (so Python tries the other side), the two-argument dispatch entry otherwise."""
    f = _dispatch.binary_operator(o, reflected, _OPERAND)
    f.__name__ = f.__qualname__ = f"{o.name}_{'r' if reflected else ''}operator"
    return f


def inplace_unary_kernel(base: OpDef, into=None):
    """`exp_` from `exp`: the out-of-place kernel, written back into the input, refusing a result dtype the
    input cannot hold (torch's "result type Float can't be cast to the desired output type Long"). With
    `into(xp, a)`, a float or complex input is written straight into (the out-of-place kernel's values without
    its temporary and the pass copying it back: sqrt_ of a 1M-element float32 array 640 -> 240 µs)."""
    def kernel(xp, a):
        if into is not None and a.dtype.kind in "fc":
            into(xp, a)
            return None
        r = base.kernel(xp, a)
        if r.dtype != a.dtype and not np.can_cast(r.dtype, a.dtype, "same_kind"):
            raise RuntimeError(f"result type {D.scalar_name(r.dtype)} can't be cast to the desired output type "
                               f"{D.scalar_name(a.dtype)}")
        a[...] = r
    kernel.__module__ = base.kernel.__module__
    return kernel


def op(name: str, *, function: bool | str = False, method: bool | str = False, aliases: tuple[str, ...] = (),
       operators: tuple[str, ...] = (), inplace: bool = False, into=None, **opdef):
    """Decorator: register `kernel(xp, *arrays, **attrs)` as op `name` (OpDef's options: save, promote, amp,
    node_name, view, inplace_of, ...) and return its OpDef.

    function / method: also declare the public function `tensorlib.<name>` / the method `Tensor.<name>` (or the
      name given) as plain dispatches of this op; aliases are declared the same way.
    operators: Tensor dunders bound to this op's two-argument dispatch (`"__radd__"`: the reflected one).
    inplace: also register `<name>_`, the kernel written back into its one input (unary ops), with the
      method `Tensor.<name>_` (and the function, when this op has one); its backward is this op's.
    into: with inplace, `fn(xp, a)` writing the kernel's result into a float or complex `a` itself (the same
      values: ufuncs with out=a), for `<name>_`; other dtypes take the kernel and a copy back."""
    def deco(kernel) -> OpDef:
        o = register_op(name, kernel, **opdef)
        if function or method:
            fname = name if function is True else (function or name)
            f = _dispatching(o, fname, kernel, self_first=not function)
            public(f, name=fname, function=bool(function), method=method, aliases=aliases)
            o.function = f
        for dunder in operators:
            reflected = dunder.startswith("__r") and dunder not in ("__rshift__",)
            _declare(_METHODS, "method", dunder, binary_operator(o, reflected))
        if inplace:
            ip = register_op(name + "_", inplace_unary_kernel(o, into), inplace_of=o)
            public(_dispatching(ip, name + "_", kernel, self_first=True), function=bool(function), method=True)
            o.inplace = ip
        return o
    return deco


def unary(name: str, kernel, backward=None, *, save: str = "i", amp=None, node_name=None, inplace: bool = False,
          into=None, method: bool = True, aliases: tuple[str, ...] = ()) -> OpDef:
    """The one-line form: a unary op with its backward, `tensorlib.<name>`, `Tensor.<name>` and, with
    inplace=True, `Tensor.<name>_` (`into`: see op)."""
    o = op(name, function=True, method=method, aliases=aliases, inplace=inplace, into=into, save=save, amp=amp,
           node_name=node_name)(kernel)
    if backward is not None:
        o.def_backward(backward)
    return o


F16 = np.dtype(np.float16)


def half_in_float32(kernel, xp, *args, **kwargs):
    """kernel(xp, *args, **kwargs) with its NumPy float16/bfloat16 arguments computed in float32 and its float32
    outputs rounded back to that dtype once: torch's opmath for reduced-precision floats (on the CPU, float16 in its
    own loops: a softmax's values differed from torch's in 65% of elements, layer_norm's in 53%, none through
    float32; bfloat16 in ml_dtypes' loops, which run element by element: layer_norm of (4, 32, 768) took 1.5 ms,
    torch's 0.044). None where the floating arguments are not all of one half dtype (a mix promotes, and the
    kernel's own dtypes stand). A kernel calls it first when its first argument is half, tested by identity
    (`dt is D.BF16 or dt is F16`): the other dtypes pay nothing, where a wrapper around the kernel cost every call
    0.3 µs and a dtype's == with bfloat16 0.35."""
    half = None
    arr = xp.ndarray
    for a in args:
        if isinstance(a, arr) and D.kind(a.dtype) == "f":
            if half is None:
                half = a.dtype
            elif a.dtype is not half:
                return None
    if half is not D.BF16 and half is not F16:
        return None
    out = kernel(xp, *(a.astype(np.float32) if isinstance(a, arr) and a.dtype is half else a for a in args),
                 **kwargs)
    if type(out) is tuple:
        return tuple(_round_half(o, half, arr) for o in out)
    return _round_half(out, half, arr)


def _round_half(a, half, arr):
    """A kernel's float32 output rounded to `half`: an array, or the NumPy scalar a 0-d array's operation gives."""
    return _fast_astype(a, half) if isinstance(a, arr) and a.dtype == np.float32 or type(a) is np.float32 else a


def special_functions(xp):
    """scipy.special on the CPU, cupyx.scipy.special on a GPU, for the kernels of special functions (imported on
    first use: `import tensorlib` stays free of SciPy's import)."""
    if xp is np:
        import scipy.special as s
    else:
        import cupyx.scipy.special as s
    return s


def refuse_complex(a, message, error=NotImplementedError):
    """torch's refusal of an ordering op (lt, max, sort, clamp...) on complex operands, where NumPy would order them
    lexicographically; `message` may name the dtype as {dtype} (torch's "ComplexFloat")."""
    dt = getattr(a, "dtype", None)
    if dt is not None and dt.kind == "c":
        raise error(message.format(dtype=D.scalar_name(dt)))


def kind_of(x) -> str:
    """The dtype kind of a kernel's operand: an array's or NumPy scalar's, else the one NumPy gives a Python number
    ("b" bool, "i" int, "f" float, "c" complex)."""
    dt = getattr(x, "dtype", None)
    return dt.kind if dt is not None else np.dtype(type(x)).kind


def fill_value(value, dtype):
    """A Python number written into a tensor of NumPy `dtype` (fill_, masked_fill): a complex one only into a complex
    tensor, or with no imaginary part (torch's check; NumPy would drop the imaginary part or raise its TypeError)."""
    if type(value) is complex and dtype.kind != "c":
        if value.imag:
            raise RuntimeError(f"value cannot be converted to type {D.C_NAMES.get(dtype.name, dtype.name)} without "
                               "overflow")
        return value.real
    return value


def unwrap_scalar(x):
    """A 0-dim tensor used where a Python number is expected (e.g. clamp(min=t))."""
    if isinstance(x, Tensor):
        return x.item()
    return x


def functions() -> dict:
    """Every public function by name (what `tensorlib.ops` exports)."""
    return dict(_FUNCTIONS)


def methods() -> dict:
    """Every Tensor attribute declared by the ops, by name."""
    return dict(_METHODS)


def attach() -> dict:
    """Set every declared Tensor method; return the public functions. Called once by `tensorlib.ops`."""
    global _attached
    for n, f in _METHODS.items():
        setattr(Tensor, n, f)
    _attached = True
    return dict(_FUNCTIONS)


def write_out(result, out, name=None):
    """The `out=` argument of public functions: the result copied into `out`, which is returned, as torch's out=:
    refused when the result would carry a gradient (an argument requires grad, grad mode on; `name` is the
    function's, the caller's by default) or when its dtype cannot hold the result's (a float result into an
    integer `out`: torch's canCast); an `out` of another shape is resized to the result's, with torch's
    deprecation warning when it had elements (it is not broadcast into)."""
    if out is None:
        return result
    if isinstance(result, Tensor):
        if result._requires_grad:
            raise RuntimeError(f"{name or sys._getframe(1).f_code.co_name}(): functions with out=... arguments "
                               "don't support automatic differentiation, but one of the arguments requires grad.")
        src, dst = result._data.dtype, out._data.dtype
        if src != dst and not _can_cast(src, dst):
            raise RuntimeError(f"result type {D.scalar_name(src)} can't be cast to the desired output type "
                               f"{D.scalar_name(dst)}")
        if tuple(out.shape) != tuple(result.shape):
            if out.numel():
                warnings.warn(f"An output with one or more elements was resized since it had shape {list(out.shape)}, "
                              f"which does not match the required output shape {list(result.shape)}. This behavior "
                              f"is deprecated, and in a future PyTorch release outputs will not be resized unless "
                              f"they have zero elements. You can explicitly reuse an out tensor t by resizing it, "
                              f"inplace, to zero elements with t.resize_(0).", UserWarning, stacklevel=3)
            out.resize_(tuple(result.shape))
    out.copy_(result)
    return out


def write_outs(result, out, name):
    """write_out of a function of several results (sort's values and indices, into `out`'s tensors, returned as
    the same named tuple) or of one."""
    if out is None:
        return result
    if isinstance(result, tuple):
        for r, o in zip(result, out):
            write_out(r, o, name)
        return type(result)(*out)
    return write_out(result, out, name)


def _can_cast(src, dst) -> bool:
    """torch's canCast(from, to) of NumPy dtypes: no complex into a real type, no floating into an integral one,
    nothing but bool into bool."""
    s = "f" if src == D.BF16 else src.kind     # (ml_dtypes' bfloat16 is of kind "V")
    d = "f" if dst == D.BF16 else dst.kind
    if s == "c" and d != "c":
        return False
    if s == "f" and d in "biu":
        return False
    return not (s != "b" and d == "b")
