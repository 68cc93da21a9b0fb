"""Custom autograd functions (torch.autograd.Function): user forward/backward, dispatched as one op."""
from __future__ import annotations

from .. import _dtype
from .. import _graph as _G
from .._graph import build_node
from .._state import STATE, next_seq
from .._tensor import Tensor
from ..dispatch import OpDef, dispatch
from .grad_mode import no_grad


class FunctionCtx:
    def __init__(self):
        self.to_save = ()
        self.non_differentiable = set()
        self.needs_input_grad = ()
        self.materialize_grads = True
        self._node = None
        self._packed = None     # (unpack_hook, records) when saved-tensor hooks packed to_save

    def save_for_backward(self, *tensors):
        for t in tensors:
            if t is not None and not isinstance(t, Tensor):
                raise TypeError(f"save_for_backward can only save variables, but argument 0 is of type "
                                f"{type(t).__name__}")
        self.to_save = tensors

    @property
    def saved_tensors(self):
        node = self._node
        if node is not None:
            node._check_alive()
            if node.ctx_data is None:
                node._check_alive()
        p = self._packed
        if p is not None:           # each read unpacks, as torch's
            unpack = p[0]
            return tuple([r if r is None else r[0] if len(r) == 1 else _G.unpack_record(unpack, r) for r in p[1]])
        return self.to_save

    def mark_non_differentiable(self, *tensors):
        self.non_differentiable.update(id(t) for t in tensors)

    def mark_dirty(self, *tensors):
        pass

    def set_materialize_grads(self, value):
        self.materialize_grads = value


class _FunctionMeta(type):
    def __init__(cls, name, bases, ns):
        super().__init__(name, bases, ns)
        cls._opdef = OpDef(name, None, lambda node, *g: _fn_backward(node, *g), node_name=f"{name}Backward")
        cls._opdef.special = lambda op, args, attrs, seq: _run_function(op, args, attrs, seq)
        cls._opdef.complex_formula = True      # a user's backward takes torch's complex gradients as they come


class Function(metaclass=_FunctionMeta):
    """Subclass with static `forward(ctx, *args)` and `backward(ctx, *grads)`; call `Fn.apply(*args)`."""

    @staticmethod
    def forward(ctx, *args, **kwargs):
        raise NotImplementedError("You must implement the forward function for custom autograd.Function.")

    @staticmethod
    def backward(ctx, *grad_outputs):
        raise NotImplementedError("You must implement either the backward or vjp method for your custom "
                                  "autograd.Function to use it with backward mode AD.")

    @classmethod
    def apply(cls, *args, **kwargs):
        return dispatch(cls._opdef, *args, _fn=cls, _kw=kwargs)


def _run_function(op, args, attrs, seq):
    fn = attrs["_fn"]
    ctx = FunctionCtx()
    ctx.needs_input_grad = tuple(isinstance(a, Tensor) and a._requires_grad for a in args)
    with no_grad():
        out = fn.forward(ctx, *args, **attrs["_kw"])
    if not (any(ctx.needs_input_grad) and STATE.grad_enabled):
        return out
    node = build_node(op, args, attrs, seq if seq >= 0 else next_seq())
    node.ctx_data = ctx
    node.inputs = ()          # marks that something is saved: release() then frees ctx
    ctx._node = node
    multi = isinstance(out, tuple)
    outs = out if multi else (out,)
    results = []
    for i, o in enumerate(outs):
        if isinstance(o, Tensor):
            t = object.__new__(Tensor)
            t._data = o._data
            if id(o) not in ctx.non_differentiable and (o._data.dtype.kind in "fc" or o._data.dtype == _dtype.BF16):
                t._grad_fn = node
                t._output_nr = i
                t._requires_grad = True
                if any(o is a for a in args):   # an input returned as-is: torch's view, not to be changed in place
                    if node.fn_views is None:
                        node.fn_views = set()
                    node.fn_views.add(i)
            o = t
        results.append(o)
    node.out_meta = tuple((r._data.shape, r._data.dtype) if isinstance(r, Tensor) else ((), None) for r in results)
    if _G._saved_any and STATE.saved_hooks and ctx.to_save:     # torch packs what was saved, outputs as outputs
        outputs = {id(o): (r, i) for i, (o, r) in enumerate(zip(outs, results)) if isinstance(r, Tensor)}
        ctx._packed = _G.pack_tensors(ctx.to_save, outputs, node)
        ctx.to_save = ()
    return tuple(results) if multi else results[0]


def _fn_backward(node, *grads):
    ctx = node.ctx_data
    if ctx is None:
        node._check_alive()
    out = node.attrs["_fn"].backward(ctx, *grads)
    if not isinstance(out, tuple):
        out = (out,)
    n = len(node.edges)
    if len(out) != n:
        if len(out) > n and all(o is None for o in out[n:]):
            out = out[:n]
        else:
            raise RuntimeError(f"function {node.name()} returned an incorrect number of gradients (expected {n}, "
                               f"got {len(out)})")
    return out
