"""torch's `grad_fn._saved_*` / `grad_fn._raw_saved_*` attributes of autograd nodes, read off what a tensorlib
node already keeps (its saved inputs and outputs, its attrs, its inputs' shapes), computed when read: Node's
class holds one property per name of the table (`install`), so recording a node costs nothing more. (Not a
`__getattr__`: a class with one loses CPython's specialised attribute reads, and every read of a node's fields
in backward would pay about twice.) A name no table entry has (`_saved_foo`) gets Python's AttributeError,
which names the class (Node), where torch's names the node type.

SAVED is the one table: per torch node name (and, where several tensorlib ops share a name, per op), the
attributes torch 2.13's node of that name has, each a function of the node. Values follow torch's: a saved
input is the tensor itself (`is` the input, as torch's SavedVariable gives back a tensor it did not have to
detach), a saved output a new tensor over it whose grad_fn is the node (torch: `y.grad_fn._saved_result is y`
is False), a number saved as a wrapped-number tensor (torch's `a * 2.5`) a 0-d float64/int64 tensor, sizes
and int lists tuples, an absent optional None. torch's Python getter for an int64 attribute (a dim, an
ignore_index) reads it as unsigned, so a negative one shows as 2**64 + value; so does ours (`_u64`).

`_raw_saved_*` is a SavedTensor; its register_hooks(pack, unpack) works on a saved input tensor of a node
recorded without saved_tensors_hooks (the node then unpacks that input on every read, backward's included);
on a saved output, a derived value or a number it raises NotImplementedError rather than accept hooks that
would change nothing."""
from __future__ import annotations

import math
from typing import Any

import numpy as _np

from ._state import set_grad_mode
from ._tensor import Tensor

_G: Any = None     # tensorlib._graph, bound by it when it loads (it imports this module: no edge back up)


def bind(graph_module):
    global _G
    _G = graph_module


_FREED = ("Trying to backward through the graph a second time (or directly access saved tensors after they have "
          "already been freed). Saved intermediate values of the graph are freed when you call .backward() or "
          "autograd.grad(). Specify retain_graph=True if you need to backward through the graph a second time or "
          "if you need to access saved tensors after calling backward.")
_HOOKS_SET = ("Calling register_hooks on a saved tensor whose hooks have already been set. Hint: only one pair of "
              "hooks is allowed at a time.")
_HOOKS_FREED = ("Calling register_hooks on a saved tensor after it has been freed. Saved intermediate values of the "
                "graph are freed when you call .backward() or autograd.grad(). Specify retain_graph=True if you need "
                "to backward through the graph a second time or if you need to access saved variables after calling "
                "backward.")
_HOOKS_NONE = "Calling register_hooks on a saved tensor with value None is forbidden"
_REDUCTION = {"none": 0, "mean": 1, "sum": 2}


def _u64(v):
    """An int64 as torch's getter shows it (unsigned)."""
    return v + (1 << 64) if v < 0 else v


def _dims(v):
    """A dim or dims attr as torch's int64[] attribute: a tuple, each shown unsigned."""
    return tuple(_u64(int(d)) for d in (v if isinstance(v, (tuple, list)) else (v,)))


def _needs(node, k):
    e = node.edges
    return k < len(e) and e[k][0] is not None


# --- the kinds of saved value ------------------------------------------------------------------------------
class _In:
    """Saved input k (torch's SavedVariable of an input): the tensor itself, version-checked; None where the
    input is None or where torch saves it only for another input's gradient (`when` lists the inputs whose
    gradient needs it, any of them) and none needs one; a number as torch's wrapped-number tensor."""
    tensor = True

    def __init__(self, k, when=None):
        self.k, self.when = k, when

    def saved(self, node):
        return self.when is None or any(_needs(node, j) for j in self.when)

    def get(self, node):
        if node.freed:
            raise RuntimeError(_FREED)
        if not self.saved(node):
            return None
        return _input(node, self.k)


def _input(node, k, wrap=True):
    """Saved input k as torch's unpack gives it (see _In), the node alive; a number wrapped (wrap) or as is."""
    hooked = node.__dict__.get("slot_hooks")
    if hooked is not None and k in hooked:
        unpack, rec = hooked[k]             # this input's own hooks (SavedTensor.register_hooks)
        return _G.unpack_record(unpack, rec)
    if isinstance(node, _G._HookedNode):    # saved_tensors_hooks: unpack this one record
        p = node.packed
        if p is None or p[1] is None:
            raise RuntimeError(f"{node.name()}: tensorlib's op {node.op.name!r} keeps no inputs for backward")
        rec = p[1][k]
        if len(rec) > 1:
            return _G.unpack_record(p[0], rec)
        a = rec[0]
    else:
        ins = _G._INPUTS_SLOT.__get__(node)     # (not `inputs`: a _SlotHookedNode's would unpack every hooked one)
        if ins is None:
            raise RuntimeError(f"{node.name()}: tensorlib's op {node.op.name!r} keeps no inputs for backward")
        a = ins[k]
        if isinstance(a, Tensor):
            vs = node.versions
            if vs is not None and vs[k] is not None and _G._version(a) != vs[k]:
                raise _G._version_error(a, node, k, _G._version(a), vs[k], as_input=True)
    return a if a is None or isinstance(a, Tensor) or not wrap else _wrapped(a)


def _wrapped(x):
    """torch's wrapped number: a Python float a 0-d float64 tensor, an int int64, a bool bool."""
    dt = _np.bool_ if isinstance(x, bool) else _np.int64 if isinstance(x, int) else \
        _np.complex128 if isinstance(x, complex) else _np.float64
    t = object.__new__(Tensor)
    t._data = _np.asarray(x, dtype=dt)
    return t


class _Out:
    """Saved output k (torch's SavedVariable of an output): a new tensor over it whose grad_fn is the node
    (the live output when unchanged, else torch's in-place error); unpacked through saved_tensors_hooks."""
    tensor = True

    def __init__(self, k):
        self.k = k

    def get(self, node):
        if node.freed:
            raise RuntimeError(_FREED)
        if node.out_data is None:
            raise RuntimeError(f"{node.name()}: tensorlib's op {node.op.name!r} keeps no outputs for backward")
        k = self.k
        if isinstance(node, _G._HookedNode):     # saved_tensors_hooks: unpack_hook's tensor, attached to node
            p = node.packed
            packed, rg = p[2][k]
            return _G.unpack_record(p[0], (packed, node, k, rg, None))
        node.saved_outputs_from(k)               # torch's in-place check
        if k in node.op.nondiff_outputs:         # (dropout's mask, max_pool2d's indices): no history
            t = object.__new__(Tensor)
            t._data = node.out_data[k]
            return t
        return node._over(k)                     # a new tensor, as torch's: not `is` the output


class _Value:
    """A value that is no tensor (a size, a dim, a flag): f(node). Kept after backward freed the node, as torch
    keeps them."""
    tensor = False

    def __init__(self, f):
        self.f = f

    def get(self, node):
        return self.f(node)


class _Derived:
    """A tensor torch saves that tensorlib keeps in another form (nll_loss's total_weight): f(node) computed
    from what the node saved; hooks cannot be registered on it."""
    tensor = True

    def __init__(self, f):
        self.f = f

    def get(self, node):
        if node.freed:
            raise RuntimeError(_FREED)
        return self.f(node)


class _Missing:
    """A tensor torch saves that tensorlib's node does not keep (its formula needs no such thing)."""
    tensor = True

    def __init__(self, what):
        self.what = what

    def get(self, node):
        raise RuntimeError(f"{node.name()}._saved_{self.what}: tensorlib's op {node.op.name!r} does not keep its "
                           f"{self.what} for backward, so it cannot be returned")


def _attr(name, default=None, conv=None):
    def f(node):
        v = (node.attrs or {}).get(name, default)
        return conv(v) if conv is not None and v is not None else v
    return _Value(f)


def _size(k):
    return _Value(lambda node: tuple(int(n) for n in node.in_meta[k][0]))


def _stride(k):
    """Input k's strides in elements, saved (as torch) only where input k needs a gradient; () otherwise."""
    def f(node):
        if not _needs(node, k):
            return ()
        if node.freed:
            raise RuntimeError(_FREED)
        return tuple(_input(node, k).stride())
    return _Value(f)


def _numel(k):
    return _Value(lambda node: math.prod(int(n) for n in node.in_meta[k][0]))


def _conv_padding(node):
    p = tuple(node.attrs.get("padding", ()))
    lo, hi = p[0::2], p[1::2]
    if lo != hi:
        raise RuntimeError(f"{node.name()}._saved_padding: tensorlib padded this convolution asymmetrically "
                           f"{p}, which torch's node cannot express")
    return tuple(int(x) for x in lo)


def _nll_total_weight(node):
    """nll_loss's total_weight (torch saves its forward's second output): the summed weight of the targets
    not ignored (their count without weights), in the input's dtype."""
    x, target, weight = _input(node, 0), _input(node, 1), _input(node, 2)
    tg = target._data
    ii = node.attrs.get("ignore_index", -100)
    keep = tg != ii
    if weight is None:
        tw = float(keep.sum())
    else:
        tw = float(weight._data[_np.where(keep, tg, 0)][keep].sum())
    t = object.__new__(Tensor)
    t._data = _np.asarray(tw, dtype=x._data.dtype)
    return t


class _IndexTuple:
    """Advanced indexing's index tensors (torch: a tuple of saved tensors; None for a dimension not indexed by
    one); tensorlib keeps them as the node's `idx` attr, so `is` the index tensor only where it kept that."""
    tensor = True

    def get(self, node):
        if node.freed:
            raise RuntimeError(_FREED)
        return _index_tensors(node)


def _index_tensors(node):
    out = []
    for i in node.attrs["idx"]:
        if isinstance(i, Tensor):
            out.append(i)
        elif isinstance(i, _np.ndarray):
            t = object.__new__(Tensor)
            t._data = i
            out.append(t)
        else:
            out.append(None)
    return tuple(out)


def _basic_step(node):
    """The last view step torch's basic indexing applies for node's idx: (kind, dim, value, input shape of the
    step); kind "select" (value the index) or "slice" (value (start, end, step)). torch's indexing applies one
    op per int or non-trivial slice, in order; the node's name is its last one's (ops.index)."""
    idx = node.attrs["idx"]
    shape = list(node.in_meta[0][0])
    lone = len(idx) == 1 and isinstance(idx[0], slice)
    d = 0
    last = None
    for pos, i in enumerate(idx):
        if i is None:
            shape.insert(d, 1)
            d += 1
        elif i is Ellipsis:      # the dimensions the ints and slices after it do not index
            d = len(shape) - sum(1 for j in idx[pos + 1:] if j is not None and j is not Ellipsis)
        elif isinstance(i, slice):
            n = shape[d]
            start, stop, step = i.indices(n)
            if lone or (start, stop, step) != (0, n, 1):
                torch_start = 0 if i.start is None else i.start
                torch_end = (1 << 63) - 1 if i.stop is None else i.stop
                last = ("slice", d, (_u64(torch_start), _u64(torch_end), 1 if i.step is None else i.step),
                        tuple(shape))
                shape[d] = len(range(start, stop, step))
            d += 1
        else:
            last = ("select", d, _u64(int(i)), tuple(shape))
            del shape[d]
    if last is None:
        raise RuntimeError(f"{node.name()}: no select or slice step in index {idx!r}")
    return last


def _step_value(kind, what):
    """One value of the last indexing step: "dim", "value" (select's index), "sizes" (the step's input shape)
    or an int (that item of a slice's (start, end, step))."""
    def f(node):
        step, d, value, sizes = _basic_step(node)
        if step != kind:
            raise RuntimeError(f"{node.name()}: its last indexing step is a {step}")
        if isinstance(what, int):
            return value[what]
        return {"dim": _u64(d), "value": value, "sizes": tuple(int(n) for n in sizes)}[what]
    return _Value(f)


def _padding_idx(node):
    p = node.attrs.get("padding_idx")
    return _u64(-1 if p is None else int(p))


def _exponent(node):
    """pow's number exponent (torch's PowBackward0 Scalar exponent)."""
    if node.freed:
        raise RuntimeError(_FREED)
    return _input(node, 1, wrap=False)


def _pow_base(node):
    """pow's number base (torch's PowBackward2 Scalar self)."""
    if node.freed:
        raise RuntimeError(_FREED)
    return _input(node, 0, wrap=False)


def _squeeze_dim(node):
    d = node.attrs.get("dim")
    return _u64(int(d[0] if isinstance(d, (tuple, list)) else d))


_REDUCE = _attr("reduction", "mean", _REDUCTION.__getitem__)
_MM = {"_saved_self": _In(0, when=(1,)), "_saved_mat2": _In(1, when=(0,)),
       "_saved_self_sym_sizes": _size(0), "_saved_self_sym_strides": _stride(0),
       "_saved_mat2_sym_sizes": _size(1), "_saved_mat2_sym_strides": _stride(1)}
_CONV = {"_saved_input": _In(0), "_saved_weight": _In(1),
         "_saved_bias_sym_sizes_opt": _Value(lambda n: tuple(n.in_meta[2][0]) if n.in_meta[2] is not None else (0,)),
         "_saved_stride": _attr("stride", None, tuple), "_saved_padding": _Value(_conv_padding),
         "_saved_dilation": _attr("dilation", None, tuple), "_saved_transposed": _Value(lambda n: False),
         "_saved_output_padding": _Value(lambda n: (0,) * len(n.attrs.get("stride", (1, 1)))),
         "_saved_groups": _attr("groups", 1)}
_RESULT = {"_saved_result": _Out(0)}
_SELF = {"_saved_self": _In(0)}

# torch node name -> {attribute: kind}, or -> {tensorlib op name: {attribute: kind}} where the name is shared
SAVED: dict[str, dict[str, Any]] = {
    "AddBackward0": {"_saved_alpha": _attr("alpha", 1)},
    "SubBackward0": {"_saved_alpha": _attr("alpha", 1)},
    "MulBackward0": {
        "mul": {"_saved_self": _In(0, when=(1,)), "_saved_other": _In(1, when=(0,))},
        "dropout": {"_saved_self": _Value(lambda n: None), "_saved_other": _Out(1)},
    },
    "DivBackward0": {"_saved_self": _In(0, when=(1,)), "_saved_other": _In(1, when=(0, 1))},
    "MmBackward0": _MM,
    "AddmmBackward0": {"_saved_alpha": _attr("alpha", 1), "_saved_beta": _attr("beta", 1),
                       "_saved_mat1": _In(1, when=(2,)), "_saved_mat2": _In(2, when=(1,)),
                       "_saved_mat1_sym_sizes": _size(1), "_saved_mat1_sym_strides": _stride(1),
                       "_saved_mat2_sym_sizes": _size(2), "_saved_mat2_sym_strides": _stride(2)},
    "ReluBackward0": _RESULT, "SigmoidBackward0": _RESULT, "TanhBackward0": _RESULT, "ExpBackward0": _RESULT,
    "SqrtBackward0": _RESULT,
    "LogBackward0": _SELF, "AbsBackward0": _SELF, "SinBackward0": _SELF, "CosBackward0": _SELF,
    "PowBackward0": {"_saved_self": _In(0), "_saved_exponent": _Value(_exponent)},
    "PowBackward1": {"_saved_self": _In(0), "_saved_exponent": _In(1), "_saved_result": _Out(0)},
    "PowBackward2": {"_saved_self": _Value(_pow_base), "_saved_exponent": _In(1), "_saved_result": _Out(0)},
    "SumBackward0": {"_saved_self_sym_sizes": _size(0)},
    "SumBackward1": {"_saved_dim": _attr("dim", None, _dims), "_saved_keepdim": _attr("keepdim", False),
                     "_saved_self_sym_sizes": _size(0)},
    "MeanBackward0": {"_saved_self_sym_numel": _numel(0), "_saved_self_sym_sizes": _size(0)},
    "MeanBackward1": {"_saved_dim": _attr("dim", None, _dims), "_saved_keepdim": _attr("keepdim", False),
                      "_saved_self_sym_numel": _numel(0), "_saved_self_sym_sizes": _size(0)},
    "SoftmaxBackward0": {"_saved_dim": _attr("dim", None, _u64), **_RESULT},
    "LogSoftmaxBackward0": {"_saved_dim": _attr("dim", None, _u64), **_RESULT},
    "NllLossBackward0": {"_saved_self": _In(0), "_saved_target": _In(1), "_saved_weight": _In(2),
                         "_saved_ignore_index": _attr("ignore_index", -100, _u64), "_saved_reduction": _REDUCE,
                         "_saved_total_weight": _Derived(_nll_total_weight)},
    "MseLossBackward0": {"_saved_self": _In(0), "_saved_target": _In(1), "_saved_reduction": _REDUCE},
    "ViewBackward0": {"_saved_self_sym_sizes": _size(0)},
    "ExpandBackward0": {"_saved_self_sym_sizes": _size(0)},
    "TransposeBackward0": {"_saved_dim0": _attr("dim0", None, _u64), "_saved_dim1": _attr("dim1", None, _u64)},
    "TBackward0": {}, "NegBackward0": {}, "CloneBackward0": {},
    "PermuteBackward0": {"_saved_dims": _attr("dims", None, _dims)},
    "UnsqueezeBackward0": {"unsqueeze": {"_saved_dim": _attr("dim", None, _u64)}},
    "SqueezeBackward1": {"_saved_dim": _Value(_squeeze_dim), "_saved_self_sym_sizes": _size(0)},
    "SelectBackward0": {"_saved_dim": _step_value("select", "dim"), "_saved_index": _step_value("select", "value"),
                        "_saved_self_sym_sizes": _step_value("select", "sizes")},
    "SliceBackward0": {
        "slice": {"_saved_dim": _step_value("slice", "dim"), "_saved_start": _step_value("slice", 0),
                  "_saved_end": _step_value("slice", 1), "_saved_step": _step_value("slice", 2),
                  "_saved_self_sym_sizes": _step_value("slice", "sizes")}},
    "IndexBackward0": {"index": {"_saved_indices": _IndexTuple(), "_saved_self_sym_sizes": _size(0)}},
    "CatBackward0": {"_saved_dim": _attr("dim", 0, _u64)},
    "StackBackward0": {"_saved_dim": _attr("dim", 0, _u64)},
    "ConvolutionBackward0": {"conv2d": _CONV, "conv1d": _CONV},
    "MaxPool2DWithIndicesBackward0": {
        "max_pool2d": {"_saved_self": _Missing("input"), "_saved_result1": _Out(1),
                       "_saved_kernel_size": _attr("kernel_size", None, tuple), "_saved_stride": _attr("stride", None,
                                                                                                       tuple),
                       "_saved_padding": _attr("padding", None, tuple), "_saved_dilation": _attr("dilation", None,
                                                                                                  tuple),
                       "_saved_ceil_mode": _attr("ceil_mode", False)}},
    "NativeLayerNormBackward0": {
        "layer_norm": {"_saved_input": _In(0), "_saved_weight": _In(1), "_saved_bias": _In(2),
                       "_saved_normalized_shape": _attr("normalized_shape", None, tuple),
                       "_saved_result1": _Out(1), "_saved_result2": _Out(2)}},
    "EmbeddingBackward0": {
        "embedding": {"_saved_indices": _In(1), "_saved_padding_idx": _Value(_padding_idx),
                      "_saved_scale_grad_by_freq": _attr("scale_grad_by_freq", False),
                      "_saved_sparse": _attr("sparse", False),
                      "_saved_weight_sym_argsize_0": _Value(lambda n: int(n.in_meta[0][0][0]))}},
    "GeluBackward0": {"_saved_self": _In(0), "_saved_approximate": _attr("approximate", "none")},
}


def entries(node) -> dict[str, Any]:
    """{`_saved_x`: kind} of node's type, {} where the table does not cover it."""
    name = node.name()
    e = SAVED.get(name)
    if not e:
        return {}
    first = next(iter(e.values()))
    if isinstance(first, dict):       # per tensorlib op
        return e.get(node.op.name, {})
    return e


def names(node) -> list[str]:
    """The `_saved_*` and `_raw_saved_*` names torch's node of node's type lists (dir)."""
    e = entries(node)
    return sorted(list(e) + ["_raw" + n for n, k in e.items() if k.tensor])


PREFIXES = ("_saved_", "_raw_saved_")


def install(cls):
    """One property on cls (Node) per `_saved_*` / `_raw_saved_*` name of the table; each raises torch's
    AttributeError on a node whose type lacks it."""
    every = set()
    for e in SAVED.values():
        groups = e.values() if e and isinstance(next(iter(e.values())), dict) else [e]
        for g in groups:
            every.update(g)
            every.update("_raw" + n for n, k in g.items() if k.tensor)
    for n in sorted(every):
        setattr(cls, n, property(lambda node, n=n: saved_attribute(node, n)))


def saved_attribute(node, attr):
    """node.`attr` for a `_saved_*` / `_raw_saved_*` name; torch's AttributeError for a name its node lacks."""
    e = entries(node)
    if attr.startswith("_raw_saved_"):
        kind = e.get(attr[4:])
        if kind is not None and kind.tensor:
            if isinstance(kind, _IndexTuple):
                return tuple(SavedTensor(node, attr[4:], _IndexItem(i)) for i in range(len(node.attrs["idx"])))
            return SavedTensor(node, attr[4:], kind)
    else:
        kind = e.get(attr)
        if kind is not None:
            return kind.get(node)
    raise AttributeError(f"'{node.name()}' object has no attribute '{attr}'")


class _IndexItem:
    tensor = True

    def __init__(self, i):
        self.i = i

    def get(self, node):
        return _index_tensors(node)[self.i]


class SavedTensor:
    """torch._C._autograd.SavedTensor: one saved tensor of a node (`grad_fn._raw_saved_x`)."""

    def __init__(self, node, attr, kind):
        self._node, self._attr, self._kind = node, attr, kind

    def __repr__(self):
        return f"<tensorlib.autograd.graph.SavedTensor object at {hex(id(self))}>"

    def unpack(self):
        """The saved tensor as backward reads it (through its unpack hook where it has one)."""
        return self._kind.get(self._node)

    @property
    def data(self):
        """What the pack hook returned, where one ran; the saved tensor otherwise (None once freed)."""
        node = self._node
        if node.freed:
            return None
        rec = self._record()
        if rec is not None:
            return rec[1][0]
        return self.unpack()

    @property
    def unpack_hook(self):
        rec = self._record()
        return rec[0] if rec is not None else None

    def _record(self):
        """(unpack hook, input record) where hooks packed this input, else None."""
        node, kind = self._node, self._kind
        if not isinstance(kind, _In):
            return None
        hooked = node.__dict__.get("slot_hooks")
        if hooked is not None and kind.k in hooked:
            return hooked[kind.k]
        if isinstance(node, _G._HookedNode):
            p = node.packed
            if p is not None and p[1] is not None and len(p[1][kind.k]) > 1:
                return p[0], p[1][kind.k]
        return None

    def register_hooks(self, pack_hook, unpack_hook):
        """torch's SavedTensor.register_hooks: pack_hook(tensor) runs now, its result is kept instead of the
        tensor, and every later read (backward's, `_saved_x`'s) is unpack_hook(packed)."""
        if not callable(pack_hook) or not callable(unpack_hook):
            raise TypeError("register_hooks(): incompatible function arguments: pack_hook and unpack_hook must be "
                            "callables")
        node, kind = self._node, self._kind
        if node.freed:
            raise RuntimeError(_HOOKS_FREED)
        if isinstance(kind, _In):
            if self._record() is not None:
                raise RuntimeError(_HOOKS_SET)
            if kind.get(node) is None:        # (with the version check torch's unpack makes)
                raise RuntimeError(_HOOKS_NONE)
            if node.inputs is not None and not isinstance(node.inputs[kind.k], Tensor):
                raise NotImplementedError(f"{node.name()}.{self._attr}: tensorlib keeps this input as a Python "
                                          f"number, not a tensor; register_hooks is not supported on it")
            if isinstance(node, _G._HookedNode):
                raise RuntimeError(_HOOKS_SET)
            _hook_input(node, kind.k, pack_hook, unpack_hook)
            return
        if isinstance(kind, _Value) and kind.get(node) is None:
            raise RuntimeError(_HOOKS_NONE)
        what = "a saved output" if isinstance(kind, _Out) else "a value tensorlib derives on access"
        raise NotImplementedError(f"{node.name()}.{self._attr}: register_hooks on {what} is not supported by "
                                  f"tensorlib (only on a saved input tensor)")


def _hook_input(node, k, pack_hook, unpack_hook):
    """Pack node's input k with pack_hook (grad mode off, torch's in-place check) and make node read it back
    through unpack_hook from now on; torch checks no version of a hooked saved tensor."""
    a = node.inputs[k]
    prev = set_grad_mode(False)
    try:
        rec = _G._pack_input(pack_hook, a)
    finally:
        set_grad_mode(prev)
    if type(node) is _G.Node:
        node.__class__ = _G._SlotHookedNode
        node.slot_hooks = {}
    node.slot_hooks[k] = (unpack_hook, rec)
    vs = list(node.versions)
    vs[k] = None
    # backward's version check reads `inputs` (unpacking the hooked ones): only where another input needs it
    node.versions = vs if any(v is not None for v in vs) else None
    if node.out_data is None:
        node.out_data = ()            # "something saved", read first by backward's release test (no unpack)
    ins = list(_G._INPUTS_SLOT.__get__(node))
    ins[k] = None                     # the node keeps only what pack_hook returned
    _G._INPUTS_SLOT.__set__(node, tuple(ins))
