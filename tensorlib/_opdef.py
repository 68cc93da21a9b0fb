"""Layer 5 of the dispatcher: what an op is (`OpDef`: its kernel, its backward formula and the flags the
executor reads) and the registry of ops by name. Imports the executor below only to pick, per op, the
executor of the ops that need one of their own (lists of tensors, in-place ops)."""
from __future__ import annotations

import types
from typing import Any, Callable

from ._execute import execute_inplace_op, execute_list

__all__ = ["OpDef", "register_op", "unregister_op", "registry", "op_named", "op_at", "with_defaults"]


class OpDef:
    """An op: its kernel and, beside it, its backward formula (written with tensorlib ops).

    kernel(xp, *arrays, **attrs) -> array | tuple of arrays; xp is numpy or cupy. Tensor arguments come
      as arrays, everything else as given; attrs are the op's keyword arguments.
    backward(ctx, *grads) -> a gradient per positional input (tensor or None). `ctx` is the autograd node
      (tensorlib._graph.Node); what a formula reads:
        ctx.saved_inputs      the op's positional inputs (save="i"), checked against in-place changes
        ctx.saved_output      its output tensor, or tuple of them (save="o"), checked likewise
        ctx.in_meta[i]        (shape, numpy dtype) of input i, None for a non-tensor input
        ctx.attrs             the op's keyword attrs, as the kernel got them
        ctx.needs_input_grad  per input, whether a gradient flows to it (compute only those)
    save: "i" to save the inputs, "o" to save the output, both or neither.
    promote: binary arithmetic; operands are brought to torch's result dtype before the kernel.
    amp: autocast policy: "lower" (run in the autocast dtype), "fp32", "promote" or None.
    inplace_of: for `add_` etc., the out-of-place op whose backward applies.
    view: the output shares the input's memory (versions are shared with the base).
    nondiff_outputs: indices of outputs that never carry a gradient (the indices output of sort, max(dim), ...).
    listarg: the first argument is a sequence of tensors (cat, stack).
    creation: no tensor inputs; device and dtype come from attrs.
    any_device: the op moves data between devices itself (to, copy_).
    special: an executor of the op's own, `fn(op, args, attrs, seq)`, in place of the common one (set for
      list and in-place ops; autograd.Function sets its own).
    quiet_backward: optional, `fn(ctx, *grads)`: the backward formula on the arrays, calling kernels directly
      (the same kernels, so the same values) where `backward` dispatches ops; the engine runs it when
      nothing can see those ops (no hook, profiler or mode; no create_graph). It returns None for a case
      it does not take (then `backward` runs). The common nodes of training steps have one (linear and
      matmul, the elementwise arithmetic and activations, reductions, views, stack, softmax, norms,
      attention, embedding, convolutions, pooling, the pointwise losses); tests/tensorlib/test_autograd.py
      checks each against `backward` bit for bit.
    sparse: optional, an OpDef: the op's kernel and backward for sparse COO operands (torch's SparseCPU key),
      run by _execute.execute_sparse under the op's own dispatch; an op without one refuses sparse operands.
    sink_backward: optional, `fn(ctx, *grads)`: `backward` on the arrays, its ops' kernels run by
      `dispatch.run_recorded` (recorded by the op sink as dispatched ops are, without the dispatches: the
      same trace); the engine runs it when the profiler's op sink is the only observer of ops (its default
      options) and no graph is recorded. None for a case it does not take (then `backward` runs).
    sink_view: optional, (op recorded, kind[, ...]): the view ops (reshape's family, t, transpose, permute)
      whose sink_backward is one recorded view of the gradient; the C engine (autograd/_cengine.c, view_sink) runs
      it itself where the op sink alone records, kind naming the view (0 reshape to the input's shape, 1 t,
      2 transpose of attrs dim0 and dim1, 3 permute by the inverse of attrs dims): the same records and tensors
      as sink_backward's. A reshape's further items are its strided path's, for a gradient that is not
      contiguous, inside a "reshape" region: _reshape_alias (where the strides allow the shape as a view), else
      clone, _unsafe_view, contiguous_format and tensor_of_result (a contiguous copy viewed in the shape).
      sink_backward stays the reference and runs every other case.
    sink_linear: optional, addmm's, mm's and matmul's (SUM, VIEW, T, MM, the sum (_fastmath.add_reduce: NumPy's
      add.reduce's signature), the product, numpy, tensor_of_result, float32, float64): the ops and functions of
      their sink_backward's common case (a linear layer's: 2-D float operands of one dtype, beta and alpha 1), which
      the C engine (autograd/_cengine.c, linear_sink) runs itself where the op sink alone records: the same records
      and tensors; sink_backward runs every other case.
    complex_formula: the backward takes complex gradients as they are (see the class attribute below).
    """

    # (the engine reads the slots from quiet_backward on per node, in C at their offsets: autograd/_cengine.c)
    __slots__ = ("name", "kernel", "backward", "node_name", "save", "promote", "amp", "inplace_of",
                 "view", "nondiff_outputs", "listarg", "creation", "differentiable", "any_device", "special",
                 "quiet_backward", "sink_backward", "sink_view", "sink_linear", "node_name_of", "node_name_dim",
                 "__dict__")
    function: Callable[..., Any]   # the public function, set by ops._define.op for ops that have one
    quiet_backward: Callable[..., Any] | None     # see above; None until set
    sink_backward: Callable[..., Any] | None      # likewise
    sink_view: tuple | None        # (op, kind[, op]): see above; the C engine runs it (autograd/_cengine.c)
    sink_linear: tuple | None      # addmm's, mm's, matmul's: see above; likewise
    # the node's name where torch names the op's node by its arguments: a function of the node (basic indexing's
    # select and slice, by their last step), or the name of the overload with `dim` (sum, mean, prod, squeeze)
    node_name_of: Callable[..., str] | None
    node_name_dim: str | None
    inplace: OpDef                 # the `<name>_` op, set by ops._define.op(inplace=True)
    sparse: OpDef | None = None    # the kernel and backward for sparse COO operands (_execute.execute_sparse)
    # fn(a, b) raising torch's error for operands the op refuses before they are promoted (a cast would hide what
    # they were: a bool promoted with a number is an integer); the kernel checks the operands that need no cast
    operand_check: Callable[..., Any] | None = None
    # Complex gradients (torch's convention: a real loss's grad is dL/d(re) + i dL/d(im)). A formula written as the
    # real one, the Jacobian's transpose applied to g (g * f'(z), g @ B.T, a view's inverse), gives that
    # convention's grad as conj(formula(conj(g))): the engine wraps every node whose gradient is complex so
    # (autograd.engine._run_node). An op whose formula is written for complex gradients itself (conj, view_as_*,
    # polar, the FFTs) says so here, and the engine runs it as is.
    complex_formula: bool = False

    def __init__(self, name, kernel, backward=None, *, node_name=None, save="", promote=False, amp=None,
                 inplace_of=None, view=False, nondiff_outputs=(), listarg=False, creation=False, any_device=False):
        self.name = name
        self.kernel = kernel
        self.backward = backward
        self.node_name = node_name or (_camel(name) + "Backward0")
        self.save = save
        self.promote = promote
        self.amp = amp
        self.inplace_of = inplace_of
        self.view = view
        self.nondiff_outputs = nondiff_outputs
        self.listarg = listarg
        self.creation = creation
        self.any_device = any_device
        self.special = execute_list if listarg else execute_inplace_op if inplace_of is not None else None
        self.differentiable = backward is not None or (inplace_of is not None and inplace_of.backward is not None)
        self.quiet_backward = self.sink_backward = self.sink_view = self.sink_linear = None
        self.node_name_of = self.node_name_dim = None

    def __repr__(self):
        return f"<op {self.name}>"

    def def_backward(self, fn):
        self.backward = fn
        self.differentiable = True
        return fn


def with_defaults(fn, **values):
    """A copy of the Python function `fn` whose parameters named in `values` default to those values: what
    `functools.partial(fn, **values)` computes for every call partial takes, without the dict partial builds and
    merges on every call (the engine calls a backward formula per node). Every parameter after the first one
    named must have a default or be named."""
    code = fn.__code__
    names = code.co_varnames[:code.co_argcount]
    kwonly = code.co_varnames[code.co_argcount:code.co_argcount + code.co_kwonlyargcount]
    old = fn.__defaults__ or ()
    first_old = len(names) - len(old)           # the first parameter with a default
    start = min([names.index(k) for k in values if k in names] + [first_old])
    defaults = []
    for i in range(start, len(names)):
        if names[i] in values:
            defaults.append(values[names[i]])
        elif i >= first_old:
            defaults.append(old[i - first_old])
        else:
            raise TypeError(f"with_defaults: {fn.__qualname__}'s parameter {names[i]!r} after a bound one has "
                            "no default")
    kwdefaults = dict(fn.__kwdefaults__ or {})
    for k, v in values.items():
        if k in kwonly:
            kwdefaults[k] = v
        elif k not in names:
            raise TypeError(f"with_defaults: {fn.__qualname__} has no parameter {k!r}")
    out = types.FunctionType(code, fn.__globals__, fn.__name__, tuple(defaults) or None, fn.__closure__)
    out.__kwdefaults__ = kwdefaults or None
    out.__qualname__, out.__doc__, out.__module__ = fn.__qualname__, fn.__doc__, fn.__module__
    return out


def _camel(name):
    return "".join(p[:1].upper() + p[1:] for p in name.strip("_").split("_"))


_REGISTRY: dict[str, OpDef] = {}


def register_op(name, kernel, backward=None, **kw) -> OpDef:
    if name in _REGISTRY:
        raise RuntimeError(f"op {name!r} is already registered")
    op = OpDef(name, kernel, backward, **kw)
    _REGISTRY[name] = op
    return op


def unregister_op(name):
    """Remove an op from the registry (ops defined by tests or plugins, when they are done)."""
    try:
        del _REGISTRY[name]
    except KeyError:
        raise KeyError(f"no op named {name!r} is registered") from None


def registry() -> dict:
    return dict(_REGISTRY)


def op_named(name) -> OpDef:
    """The registered op `name` (how layers below the ops reach one, e.g. autocast's `to`)."""
    try:
        return _REGISTRY[name]
    except KeyError:
        raise KeyError(f"no op named {name!r} is registered") from None


# op_named without its message for a missing name, for per-call lookups of ops that exist: the registry's own
# __getitem__ (no Python frame; a KeyError names the op)
op_at = _REGISTRY.__getitem__
