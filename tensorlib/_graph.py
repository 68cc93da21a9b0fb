"""Layer 3 of the dispatcher: autograd graph recording, what a forward op leaves behind so that its
backward can run later (public as `tensorlib.autograd.graph`). The execution layer above calls
`make_node` / `record_inplace` / `record_inplace_view` when an op's inputs require grad.

A node keeps the edges to the nodes of its inputs (torch's `next_functions`), the tensors its backward
needs with their versions at save time (so an in-place change is caught at backward, as in torch),
and the metadata of its inputs and outputs. The backward formula itself lives beside the op's kernel.
"""
from __future__ import annotations

import re as _re
import sys
import weakref
from collections.abc import Sequence
from typing import Any

import numpy as _np

from . import _hooks as _H
from . import _saved as _SV
from . import _sync
from ._device import xp_of
from ._dtype import FLOAT_NP, scalar_name
from ._state import STATE, set_grad_mode
from ._tensor import Tensor, _RemovableHandle

_np_ndarray = _np.ndarray
_new_tensor = _new_node = object.__new__
_weakref = weakref.ref
_anomaly_any = 0     # _hooks.anomaly_users, copied on every registry change: STATE.anomaly (a thread-local
                     # read) is read only while some thread has anomaly detection on
_saved_any = 0       # saved_tensors_hooks contexts open in any thread (push_saved_hooks / pop_saved_hooks)
_slow_any = 0        # _anomaly_any or _saved_any: the one flag the fast recorders (make_node1/2/3) read


def _copy_flags():
    global _anomaly_any, _slow_any
    _anomaly_any = _H.anomaly_users
    _slow_any = _anomaly_any or _saved_any


_H.subscribe(_copy_flags)


def as_array(x):
    """Kernels on 0-d operands give NumPy scalars; tensors always hold arrays."""
    if isinstance(x, _np.generic):
        return _np.asarray(x)
    if isinstance(x, (bool, int, float)):
        return _np.asarray(x)
    return x  # a CuPy array


def tensor_of(d) -> Tensor:
    """A plain tensor over array d (a quiet backward formula's gradient: see OpDef.quiet_backward); a NumPy
    scalar (what a ufunc gives for 0-d operands) is made a 0-d array, as the dispatcher wraps kernels' results."""
    t = _new_tensor(Tensor)
    t._data = d if type(d) is _np_ndarray else as_array(d)
    return t


def _tensor_of_result(d) -> Tensor:
    """tensor_of(d) for a sink formula's result (OpDef.sink_backward), made of its own intermediate arrays
    by `dispatch.run_recorded`: a view of one (d.base set) gets a base tensor over it, as the dispatched
    formula's view of its intermediate tensor has (AccumulateGrad's choice between stealing and cloning a
    gradient reads it: engine._shared_view). `tensor_of_result` is this, or its C twin
    (tensorlib/_cexecute.c) where that is built: _execute.py binds it here at import, before any op module
    imports the name."""
    t = tensor_of(d)
    b = d.base
    if b is not None:
        mark_view(t, tensor_of(b))
    return t


tensor_of_result = _tensor_of_result


def numpy_arrays(args):
    """The arrays of args (tensors, arrays or None) as a list, or None when one is not on NumPy: the operands
    of a quiet or sink formula's kernel (quiet_call; dispatch.run_recorded_op)."""
    arrays = []
    for a in args:
        if isinstance(a, Tensor):
            a = a._data
        if type(a) is not _np_ndarray and a is not None:
            return None
        arrays.append(a)
    return arrays


def quiet_run(op, *arrays, **attrs):
    """op's kernel on NumPy arrays (and Python scalars) checked by the caller, its result as the kernel gives
    it: a step of a formula on arrays serving both paths, `dispatch.run_recorded`'s twin on the quiet path."""
    return op.kernel(_np, *arrays, **attrs)


def quiet_call(op, *args, **attrs):
    """op's kernel on the NumPy arrays of args (tensors, arrays or None), its result as the kernel gives it
    (an array or a tuple of them); None when an argument is not on NumPy (the formula's own path runs). What a
    quiet backward formula (OpDef.quiet_backward) calls for a formula that is one op of several outputs."""
    arrays = numpy_arrays(args)
    return None if arrays is None else op.kernel(_np, *arrays, **attrs)


def quiet_op(op, *args, **attrs):
    """(op's kernel on the arrays of args, as a tensor,): a quiet backward formula that is one op (see
    OpDef.quiet_backward). args: tensors, arrays (a saved output's: Node.saved_output_array) or None; the
    result is None when one is not on NumPy (the formula's own path runs)."""
    arrays = numpy_arrays(args)         # (quiet_call's work inline: a frame less per node)
    if arrays is None:
        return None
    out = op.kernel(_np, *arrays, **attrs) if attrs else op.kernel(_np, *arrays)
    t = _new_tensor(Tensor)        # tensor_of(as_array(out)), without the two calls
    t._data = out if type(out) is _np_ndarray else as_array(out)
    return (t,)


def mark_view(out: Tensor, src):
    """A view shares memory, and so version counts, with its base."""
    d = out._data
    base = d.base
    if base is None:
        return
    s = src._data
    # the usual case (a view of the source's array or of what that array views) needs no memory-bounds test
    if base is s or base is s.base or type(d) is not _np_ndarray or _np.may_share_memory(d, s):
        b = src._base
        out._base = b if b is not None else src
        if src._multi_view:     # a view of an output of unbind/split: torch's creation meta passes on
            out._multi_view = True


def _version(t):
    b = t._base
    return (b if b is not None else t)._version


class Node:
    """One recorded op. The fields every node sets are slots; the rare ones (tensor hooks, retain_grad,
    anomaly traces, a custom Function's ctx, metadata, freed) are class-level defaults that an instance
    overrides in its `__dict__` only when set, so recording a node stores six fields, not twelve."""
    __slots__ = ("op", "seq", "edges", "inputs", "versions", "out_data", "out_refs", "attrs", "in_meta",
                 "_out_meta", "__dict__", "__weakref__")
    edges: Sequence[Any]       # set by record()/AccumulateGrad, not __init__
    in_meta: Sequence[Any]
    _out_meta: Any             # see out_meta
    tensor_hooks: Any = None   # {output_nr: hooks} of register_hook on an output
    retained: Any = None       # {output_nr: weakref} of retain_grad on an output
    trace: Any = None          # anomaly mode: the forward's stack
    ctx_data: Any = None       # a custom Function's ctx
    node_hooks: Any = None     # ([pre-hooks], [post-hooks]) of register_prehook / register_hook (run by the engine)
    fn_views: Any = None       # a custom Function's outputs that are its inputs returned as-is (torch: views)
    _metadata: Any = None
    freed = False              # released after a backward without retain_graph

    def __init__(self, op, seq):
        self.op = op
        self.seq = seq
        self.inputs = self.versions = self.out_data = self.out_refs = None

    @property
    def out_meta(self):
        """(shape, dtype) per output. An elementwise binary op (`OpDef.promote`) records only its output's
        dtype, as reading the output's shape costs a tenth of recording the node; the shape, its inputs'
        broadcast, is computed here when read. The engine needs only the count (`n_outputs`)."""
        m = self._out_meta
        if type(m) is tuple:
            return m
        m = self._out_meta = ((tuple(_np.broadcast_shapes(*[x[0] for x in self.in_meta if x is not None])), m),)
        return m

    @out_meta.setter
    def out_meta(self, value):
        self._out_meta = value

    @property
    def metadata(self):
        if self._metadata is None:
            self._metadata = {}
        return self._metadata

    # --- torch's public surface ------------------------------------------------------------
    def name(self):
        """torch's node name; ops whose overload with `dim` torch names apart (sum, mean, prod) carry that
        name as `node_name_dim`; ops whose name depends on their arguments (basic indexing: select, slice,
        unsqueeze or alias, by its last step) carry a function of the node as `node_name_of`."""
        op = self.op
        named = getattr(op, "node_name_of", None)      # (an OpDef's slots; None on the other ops: AccumulateGrad's)
        if named is not None:
            return named(self)
        alt = getattr(op, "node_name_dim", None)
        if alt is not None and self.attrs and self.attrs.get("dim") is not None:
            return alt
        return op.node_name

    @property
    def next_functions(self):
        return tuple((fn, nr) for (fn, nr), m in zip(self.edges, self.in_meta) if m is not None)

    def __repr__(self):
        return f"<{self.name()} object at {hex(id(self))}>"

    def __dir__(self):
        """torch's `_saved_*` / `_raw_saved_*` names of this node's type (tensorlib._saved); Node's class holds
        one property per name any type has (no __getattr__: it would slow every attribute read of a node)."""
        own = set(_SV.names(self))
        return sorted(n for n in set(super().__dir__()) | own if n in own or not n.startswith(_SV.PREFIXES))

    def register_hook(self, fn):
        """torch's Node.register_hook: `fn(grad_inputs, grad_outputs)` after this node's backward ran, with the
        gradients it computed for its inputs and those it received (None where none arrived); a tuple it
        returns replaces grad_inputs. nn.Module's backward hooks are made of these."""
        return self._add_node_hook(1, fn)

    def register_prehook(self, fn):
        """torch's Node.register_prehook: `fn(grad_outputs)` before this node's backward runs (after the
        tensor hooks of its outputs); a tuple it returns replaces grad_outputs."""
        return self._add_node_hook(0, fn)

    def _add_node_hook(self, which, fn):
        if type(self) is AccumulateGrad:
            raise NotImplementedError("hooks on a leaf's AccumulateGrad node are not supported; use the leaf's "
                                      "Tensor.register_hook or register_post_accumulate_grad_hook")
        if self.node_hooks is None:
            self.node_hooks = ([], [])
        hooks = self.node_hooks[which]
        hooks.append(fn)
        return _RemovableHandle(hooks, fn)

    # --- what backward formulas read -------------------------------------------------------
    @property
    def needs_input_grad(self):
        return tuple([e[0] is not None for e in self.edges])

    @property
    def shapes(self):
        return tuple(m[0] if m is not None else None for m in self.in_meta)

    def _check_alive(self):
        if self.freed:
            raise RuntimeError(
                "Trying to backward through the graph a second time (or directly access saved tensors after they "
                "have already been freed). Saved intermediate values of the graph are freed when you call "
                ".backward() or autograd.grad(). Specify retain_graph=True if you need to backward through the "
                "graph a second time or if you need to access saved tensors after calling backward.")

    @property
    def saved_inputs(self):
        if self.freed:
            self._check_alive()
        if self.inputs is None:
            raise RuntimeError(f"{self.name()}: inputs were not saved for backward (op {self.op.name!r} declares save="
                               f"{self.op.save!r})")
        return self.inputs

    inputs_ = saved_inputs

    @property
    def saved_output(self):
        if self.freed:
            self._check_alive()
        if len(self.out_data) == 1:       # the usual case: the live output tensor itself
            ref = self.out_refs[0]
            t = ref() if ref is not None else None
            if t is None:    # the output is gone (so are its views, which hold it): a tensor over the array
                return self._over(0)
            if t._grad_fn is self:
                b = t._base
                if (b if b is not None else t)._version == 0:
                    return t
        outs = self._checked_outputs(0)
        return outs[0] if len(outs) == 1 else outs

    def saved_outputs_from(self, start):
        """Outputs start.. alone (each checked for in-place changes, as saved_output checks them all): what a
        backward that reads only those unpacks, as torch saves only them (native_batch_norm's save_mean and
        save_invstd, not its result, which `nn.ReLU(inplace=True)` may then rewrite)."""
        if self.freed:
            self._check_alive()
        return self._checked_outputs(start)

    def _checked_outputs(self, start):
        """Outputs start.., each the live output tensor (unchanged since, else torch's in-place error) or, when it
        is gone or was rebased, a tensor over the saved array."""
        outs = []
        for i in range(start, len(self.out_data)):
            ref = self.out_refs[i]
            t = ref() if ref is not None else None
            if t is not None and _version(t) != 0:
                raise _version_error(t, self, i, _version(t), 0)
            outs.append(t if t is not None and t._grad_fn is self else self._over(i))
        return tuple(outs)

    def saved_output_array(self):
        """A one-output node's saved output as its array, for a quiet formula (OpDef.quiet_backward): what
        saved_output checks and returns, without the tensor it makes over the array when the output is gone
        (as a layer's activation is once the next layer's node has released it)."""
        refs = self.out_refs           # (None once released: saved_output raises)
        if refs is not None and len(refs) == 1:
            ref = refs[0]
            if ref is not None and ref() is None:
                return self.out_data[0]
        return self.saved_output._data

    def _over(self, i):
        """A tensor over output i's saved array, as this node's output (for when its own is gone)."""
        t = object.__new__(Tensor)
        t._data = self.out_data[i]
        t._grad_fn = self
        t._output_nr = i
        t._requires_grad = True
        return t

    def check_versions(self):
        if self.versions is None:
            return
        for i, (t, v) in enumerate(zip(self.inputs, self.versions)):
            if v is not None and _version(t) != v:
                raise _version_error(t, self, i, _version(t), v, as_input=True)

    def release(self):
        """Free what backward needed (after a backward without retain_graph)."""
        if self.inputs is not None or self.out_data is not None:
            self.inputs = self.out_data = self.out_refs = None
            if self.ctx_data is not None:   # (an instance value only where a custom Function set one)
                self.ctx_data = None
            self.freed = True


def _version_error(t, node, idx, now, expected, as_input=False):
    """torch's message: a saved input is described by its own history now (none for a tensor outside the
    graph), a saved output by the node that saved it; node names lose their "Backward0" suffix, as torch's."""
    kind = {"float32": "FloatTensor", "float64": "DoubleTensor", "float16": "HalfTensor", "int64": "LongTensor",
            "int32": "IntTensor", "bool": "BoolTensor"}.get(t.dtype.name, t.dtype.name)
    dev = "" if t.is_cpu else "cuda."
    fn, nr = (t._grad_fn, t._output_nr) if as_input else (node, idx)
    where = f", which is output {nr} of {_re.sub(r'Backward[0-9]*$', '', fn.name())}," if fn is not None else ""
    return RuntimeError(
        f"one of the variables needed for gradient computation has been modified by an inplace operation: "
        f"[tensorlib.{dev}{kind} {list(t.shape)}]{where} is at version {now}; expected version {expected} "
        f"instead. Hint: enable anomaly detection to find the operation that failed to compute its gradient, "
        f"with tensorlib.autograd.set_detect_anomaly(True, check_nan=False).")


class _AccumulateOp:
    name = "AccumulateGrad"
    node_name = "tensorlib::autograd::AccumulateGrad"
    save = ""


class AccumulateGrad(Node):
    """Sink node of a leaf: adds the incoming gradient into `variable.grad`.

    A leaf keeps its accumulator for its whole life and the edge to it ready made (`Tensor._acc_edge`):
    every op on a leaf (a parameter, an input that requires grad) reuses them instead of making a node per
    graph. The node holds its leaf weakly, so no cycle keeps a leaf's memory alive; a leaf with tensor
    hooks is held strongly as well (`keep`), so that its hooks run, as in torch, when the graph outlives
    every other reference to it."""
    __slots__ = ("_ref",)
    _ref: Any                  # weakref.ref to the leaf
    keep: Any = None

    def __init__(self, variable):
        raise TypeError("AccumulateGrad nodes are made by autograd (tensorlib.autograd.graph.accumulator)")

    @property
    def variable(self):
        """The leaf (None once it is gone and had no hooks: nothing could read its gradient)."""
        return self._ref()

    def _leaf_meta(self):
        """The leaf's shape and dtype now (computed when read: nothing reads it on the hot path)."""
        t = self._ref()
        if t is None:
            return ((None, None),)
        d = t._data
        return ((tuple(d.shape), d.dtype),)

    def _no_set(self, value):
        raise AttributeError("an AccumulateGrad's out_meta is its leaf's shape and dtype")

    out_meta = property(_leaf_meta, _no_set)

    @property
    def next_functions(self):
        return ()

    def __repr__(self):
        return f"<AccumulateGrad object at {hex(id(self))}>"


def accumulator(t: Tensor) -> AccumulateGrad:
    """The AccumulateGrad node of leaf `t` (made on first use, then kept by the leaf)."""
    edge = t._acc_edge
    if edge is not None:
        return edge[0]
    node = _new_node(AccumulateGrad)
    node.op = _AccumulateOp
    node.seq = 1 << 62
    node.inputs = node.versions = node.out_data = node.out_refs = None
    if t._hooks or t._post_acc_hooks:
        node.keep = t       # see AccumulateGrad
    node._ref = _weakref(t)
    node.edges = node.in_meta = ()
    node._out_meta = None    # one output (AccumulateGrad.out_meta reads the leaf)
    t._acc_edge = (node, 0)
    return node


_INFERENCE_SAVED = ("Inference tensors cannot be saved for backward. Please do not use Tensors created in inference "
                    "mode in computation tracked by autograd. To work around this, you can make a clone to get a "
                    "normal tensor and use it in autograd, or use `tensorlib.no_grad()` instead of "
                    "`tensorlib.inference_mode()`.")


def build_node(op, args, attrs, seq):
    node = Node(op, seq)
    node.attrs = attrs
    edges = []
    meta = []
    save = op.save
    versions = [] if save and "i" in save else None     # saved inputs: their versions at save time
    for a in args:
        if isinstance(a, Tensor):
            d = a._data
            meta.append((d.shape, d.dtype))
            if a._requires_grad:
                b = a._base
                if b is not None and b._rebase_gen != a._rebase_gen and not a._detached:
                    _fresh_view_fn(a)
                fn = a._grad_fn
                edges.append((fn, a._output_nr) if fn is not None else _leaf_edge(a))
            else:
                edges.append(_NO_EDGE)
            if versions is not None:
                if a._inference:
                    raise RuntimeError(_INFERENCE_SAVED)
                b = a._base
                versions.append((b if b is not None else a)._version)
        else:
            meta.append(None)
            edges.append(_NO_EDGE)
            if versions is not None:
                versions.append(None)
    if versions is not None:
        node.inputs = args
        node.versions = versions
    node.edges = edges
    node.in_meta = meta
    if _anomaly_any and STATE.anomaly:
        import traceback
        node.trace = traceback.format_stack()[:-3]
    return node


_NO_EDGE = (None, 0)
_GRAD_DTYPES = FLOAT_NP       # the floating dtypes' (bfloat16's once loaded)
"""dtypes whose outputs require grad (with any other of kind "f"): a set test is quicker than `.kind`"""


def n_outputs(node) -> int:
    """len(node.out_meta), without computing an elementwise op's output shape (see Node.out_meta)."""
    m = node._out_meta
    return len(m) if type(m) is tuple else 1


def _leaf_edge(a):
    """The edge to a leaf that requires grad: (its accumulator, 0), made once per leaf."""
    edge = a._acc_edge
    if edge is None:
        accumulator(a)
        edge = a._acc_edge
    return edge


def make_node1(op, a, attrs, out, seq):
    """make_node for one tensor argument that requires grad and one array output (unary ops, views,
    reductions) or a tuple of them (`_outputs`), written out: the same node, attribute for attribute, at
    about half the cost."""
    if (type(out) is not _np_ndarray and type(out) is not tuple) or _slow_any and (STATE.anomaly or STATE.saved_hooks):
        return make_node(op, (a,), attrs, out, seq)
    node = _new_node(Node)
    node.op = op
    node.seq = seq
    node.attrs = attrs
    d = a._data
    node.in_meta = ((d.shape, d.dtype),)
    b = a._base
    if b is not None and b._rebase_gen != a._rebase_gen and not a._detached:
        _fresh_view_fn(a)
    fn = a._grad_fn
    node.edges = ((fn, a._output_nr),) if fn is not None else (a._acc_edge or _leaf_edge(a),)
    save = op.save
    if save and "i" in save:
        if a._inference:
            raise RuntimeError(_INFERENCE_SAVED)
        node.inputs = (a,)
        node.versions = [(b if b is not None else a)._version]
    else:
        node.inputs = node.versions = None
    if type(out) is tuple:      # several outputs (dropout's mask, max's indices, split's pieces)
        return _outputs(node, op, out, a)
    t = _new_tensor(Tensor)
    t._data = out
    dt = out.dtype
    if dt in _GRAD_DTYPES or dt.kind in "fc":
        t._grad_fn = node
        t._requires_grad = True
    node._out_meta = ((out.shape, dt),)
    if save and "o" in save:
        node.out_data = (out,)
        node.out_refs = (_weakref(t),)
    else:
        node.out_data = node.out_refs = None
    if op.view:
        mark_view(t, a)
        v = t._base
        if v is not None and v._rebase_gen:
            t._rebase_gen = v._rebase_gen
    return t


def make_node2(op, a, b, attrs, out, seq):
    """make_node for the commonest case, written out: two arguments (tensors or numbers), one array
    output, no anomaly mode. build_node and Node.__init__ inlined; the same node, attribute for attribute."""
    if type(out) is not _np_ndarray or _slow_any and (STATE.anomaly or STATE.saved_hooks):
        return make_node(op, (a, b), attrs, out, seq)
    node = _new_node(Node)
    node.op = op
    node.seq = seq
    node.attrs = attrs
    if isinstance(a, Tensor):
        d = a._data
        ma = (d.shape, d.dtype)
        if a._requires_grad:
            x = a._base
            if x is not None and x._rebase_gen != a._rebase_gen and not a._detached:
                _fresh_view_fn(a)
            fn = a._grad_fn
            ea = (fn, a._output_nr) if fn is not None else a._acc_edge or _leaf_edge(a)
        else:
            ea = _NO_EDGE
    else:
        ma = None
        ea = _NO_EDGE
    if isinstance(b, Tensor):
        d = b._data
        mb = (d.shape, d.dtype)
        if b._requires_grad:
            y = b._base
            if y is not None and y._rebase_gen != b._rebase_gen and not b._detached:
                _fresh_view_fn(b)
            fn = b._grad_fn
            eb = (fn, b._output_nr) if fn is not None else b._acc_edge or _leaf_edge(b)
        else:
            eb = _NO_EDGE
    else:
        mb = None
        eb = _NO_EDGE
    node.edges = (ea, eb)       # tuples: nothing changes a node's edges or input metadata once recorded
    node.in_meta = (ma, mb)
    t = _new_tensor(Tensor)
    t._data = out
    dt = out.dtype
    if dt in _GRAD_DTYPES or dt.kind in "fc":
        t._grad_fn = node
        t._requires_grad = True
    node._out_meta = dt if op.promote else ((out.shape, dt),)    # see Node.out_meta
    save = op.save
    if save:
        if "i" in save:
            node.inputs = (a, b)
            node.versions = [_saved_version(a) if ma is not None else None,
                             _saved_version(b) if mb is not None else None]
        else:
            node.inputs = node.versions = None
        if "o" in save:
            node.out_data = (out,)
            node.out_refs = (_weakref(t),)
        else:
            node.out_data = node.out_refs = None
    else:
        node.inputs = node.versions = node.out_data = node.out_refs = None
    if op.view:
        mark_view(t, a)
        v = t._base
        if v is not None and v._rebase_gen:
            t._rebase_gen = v._rebase_gen
    return t


def make_node3(op, a, b, c, attrs, out, seq):
    """make_node for three arguments, the first two tensors and the last a tensor or None (addmm's bias
    first, linear's and nll_loss's optional last), one array output, written out as make_node2."""
    if type(out) is not _np_ndarray and isinstance(out, _np.generic):
        out = _np.asarray(out)      # a 0-d result (nll_loss's mean) as the array its tensor holds
    if (type(out) is not _np_ndarray and type(out) is not tuple) or _slow_any and (STATE.anomaly or STATE.saved_hooks):
        return make_node(op, (a, b, c), attrs, out, seq)
    node = _new_node(Node)
    node.op = op
    node.seq = seq
    node.attrs = attrs
    d = a._data
    ma = (d.shape, d.dtype)
    if a._requires_grad:
        x = a._base
        if x is not None and x._rebase_gen != a._rebase_gen and not a._detached:
            _fresh_view_fn(a)
        fn = a._grad_fn
        ea = (fn, a._output_nr) if fn is not None else a._acc_edge or _leaf_edge(a)
    else:
        ea = _NO_EDGE
    d = b._data
    mb = (d.shape, d.dtype)
    if b._requires_grad:
        x = b._base
        if x is not None and x._rebase_gen != b._rebase_gen and not b._detached:
            _fresh_view_fn(b)
        fn = b._grad_fn
        eb = (fn, b._output_nr) if fn is not None else b._acc_edge or _leaf_edge(b)
    else:
        eb = _NO_EDGE
    if c is not None:
        d = c._data
        mc = (d.shape, d.dtype)
        if c._requires_grad:
            x = c._base
            if x is not None and x._rebase_gen != c._rebase_gen and not c._detached:
                _fresh_view_fn(c)
            fn = c._grad_fn
            ec = (fn, c._output_nr) if fn is not None else c._acc_edge or _leaf_edge(c)
        else:
            ec = _NO_EDGE
    else:
        mc = None
        ec = _NO_EDGE
    node.edges = (ea, eb, ec)
    node.in_meta = (ma, mb, mc)
    save = op.save
    if save and "i" in save:     # _saved_version of each, inline
        if a._inference or b._inference or c is not None and c._inference:
            raise RuntimeError(_INFERENCE_SAVED)
        node.inputs = (a, b, c)
        x = a._base
        y = b._base
        if c is None:
            vc = None
        else:
            vc = c._base
            vc = (vc if vc is not None else c)._version
        node.versions = [(x if x is not None else a)._version, (y if y is not None else b)._version, vc]
    else:
        node.inputs = node.versions = None
    if type(out) is tuple:      # several outputs (layer_norm's output and statistics)
        return _outputs(node, op, out, a)
    t = _new_tensor(Tensor)
    t._data = out
    dt = out.dtype
    if dt in _GRAD_DTYPES or dt.kind in "fc":
        t._grad_fn = node
        t._requires_grad = True
    node._out_meta = ((out.shape, dt),)
    if save and "o" in save:
        node.out_data = (out,)
        node.out_refs = (_weakref(t),)
    else:
        node.out_data = node.out_refs = None
    if op.view:
        mark_view(t, a)
        v = t._base
        if v is not None and v._rebase_gen:
            t._rebase_gen = v._rebase_gen
    return t


def _saved_version(t):
    """A saved input's version now (build_node's check: an inference tensor cannot be saved)."""
    if t._inference:
        raise RuntimeError(_INFERENCE_SAVED)
    b = t._base
    return (b if b is not None else t)._version


def make_node(op, args, attrs, out, seq):
    """Record a node for a forward op and return its output tensor(s) attached to it."""
    node = build_node(op, args, attrs, seq)
    if type(out) is tuple:
        results = _outputs(node, op, out, args[0])
        if _saved_any and STATE.saved_hooks:
            pack_saved(node, results)
        return results
    results = _outputs(node, op, (out,), args[0])
    if _saved_any and STATE.saved_hooks:
        pack_saved(node, results)
    return results[0]


def _outputs(node, op, outs, src):
    """The tensors of `node`'s outputs `outs` (a tuple of arrays; NumPy scalars made 0-d arrays), those that
    can carry a gradient attached to it (not OpDef.nondiff_outputs), its output metadata and saved outputs
    set; views of `src` for a view op. One loop, for every op of several outputs (layer_norm's and attention's
    statistics, dropout's mask, max's indices, split's pieces)."""
    results = []
    meta = []
    nondiff = op.nondiff_outputs
    i = 0
    for o in outs:
        if type(o) is not _np_ndarray:
            o = as_array(o)
        t = _new_tensor(Tensor)
        t._data = o
        dt = o.dtype
        if (dt in _GRAD_DTYPES or dt.kind in "fc") and i not in nondiff:
            t._grad_fn = node
            t._output_nr = i
            t._requires_grad = True
        results.append(t)
        meta.append((o.shape, dt))
        i += 1
    node._out_meta = tuple(meta)
    save = op.save
    if save and "o" in save:
        node.out_data = tuple([r._data for r in results])
        node.out_refs = tuple([_weakref(r) for r in results])
    else:
        node.out_data = node.out_refs = None
    if op.view:
        for r in results:
            mark_view(r, src)
            b = r._base
            if b is not None and b._rebase_gen:
                r._rebase_gen = b._rebase_gen
    return tuple(results)


def record_inplace(op, base, args, attrs, result, seq):
    """An in-place op on a tensor in the graph: the target takes the node of the out-of-place op."""
    np = _np
    target = args[0]
    if "i" in base.save:
        snap = object.__new__(Tensor)
        snap._data = target._data.copy()
        if target._requires_grad:
            snap._requires_grad = True
            snap._grad_fn = target._grad_fn
            snap._output_nr = target._output_nr
            if target._grad_fn is None:
                snap._acc_edge = target._acc_edge
        args = (snap,) + tuple(args[1:])
    node = build_node(base, args, attrs, seq)
    if type(result) is not type(target._data) and isinstance(result, np.generic):
        result = np.asarray(result)
    _check_cast(result.dtype, target._data.dtype)
    target._data[...] = result
    b = target._base
    if b is None:
        target._version += 1
        target._rebase_gen += 1     # its views made before take the new history when next used (torch replays them)
    else:
        b._version += 1
    target._grad_fn = node
    target._output_nr = 0
    target._requires_grad = True
    node.out_meta = ((target._data.shape, target._data.dtype),)
    if "o" in base.save:
        node.out_data = (result,)
        node.out_refs = (None,)
    if _saved_any and STATE.saved_hooks:
        pack_saved(node, (target,))
    return target


_VIEW_OF_LEAF = "a view of a leaf Variable that requires grad is being used in an in-place operation."
_NO_GRAD_VIEW = ("A view was created in no_grad mode and is being modified inplace with grad mode enabled. Given "
                 "that this use case is ambiguous and error-prone, it is forbidden. You can clarify your code by "
                 "moving both the view and the inplace either both inside the no_grad block (if you don't want the "
                 "inplace to be tracked) or both outside (if you want the inplace to be tracked).")
_MULTI_VIEW = ("Output {} of {} is a view and is being modified inplace. This view is the output of a function that "
               "returns multiple views. Such functions do not allow the output views to be modified inplace. You "
               "should replace the inplace operation by an out-of-place one.")
_OVERLAP = ("unsupported operation: more than one element of the written-to tensor refers to a single memory "
            "location. Please clone() the tensor before performing the operation.")


def record_inplace_view(op, args, attrs):
    """An in-place op on a view while autograd records (torch's CopySlices). The base takes the history
    `index_put(base_old, pos, op(base_old[pos], *rest))`, where `pos` locates the view's elements in the
    base, so the gradient reaches the base's earlier history and the op's other inputs; the view becomes
    `base[pos]`. Other views of the base pick up the new history when next used (see `_fresh_view_fn`)."""
    dispatch, op_named = _dispatcher()
    COPY_SLICES, GETITEM = op_named("copy_slices"), op_named("index")
    view = args[0]
    base = view._base
    multi = view._multi_view
    if multi and view._requires_grad:
        fn = view._grad_fn
        name = multi if type(multi) is str or fn is None else fn.name().rsplit("Backward", 1)[0]
        raise RuntimeError(_MULTI_VIEW.format(view._output_nr, name))
    if base._requires_grad and not view._requires_grad:
        raise RuntimeError(_NO_GRAD_VIEW)
    if view._requires_grad and base._grad_fn is None:
        raise RuntimeError(_VIEW_OF_LEAF)
    pos = view_positions(base._data, view._data, check_overlap=True)
    old = _new_tensor(Tensor)      # the base as it is now; the ops below read its array before it changes
    old._data = base._data
    if base._requires_grad:
        old._requires_grad = True
        old._grad_fn = base._grad_fn
        old._output_nr = base._output_nr
    value = dispatch(op.inplace_of, dispatch(GETITEM, old, idx=pos), *args[1:], **attrs)
    _check_cast(value._data.dtype, view._data.dtype)
    new = dispatch(COPY_SLICES, old, value, idx=pos)
    view._data[...] = value._data
    base._version += 1
    base._grad_fn = new._grad_fn
    base._output_nr = 0
    base._requires_grad = True
    base._rebase_gen += 1
    _fresh_view_fn(view, pos)
    return view


def _fresh_view_fn(view, pos=None):
    """Attach a view to its base's current history (after an in-place op rewrote that history), as torch
    replays a view over its base: a gradient then flows through the in-place op into the base's past."""
    dispatch, op_named = _dispatcher()
    GETITEM = op_named("index")
    base = view._base
    if pos is None:
        pos = view_positions(base._data, view._data)
    view._grad_fn = dispatch(GETITEM, base, idx=pos)._grad_fn
    view._output_nr = 0
    view._requires_grad = True
    view._rebase_gen = base._rebase_gen


def view_positions(base, view, check_overlap=False):
    """Index arrays (one per dimension of `base`, each of the view's shape) of where each element of `view`,
    an array sharing `base`'s memory, lies in `base`: any chain of view ops, from the arrays' layouts.
    check_overlap: refuse, as torch does, a view of which several elements share one memory location."""
    xp = _np if type(base) is _np.ndarray else _cupy_of(base)
    offsets = _byte_offsets(xp, view.shape, view.strides, _ptr(view) - _ptr(base))
    if base.flags.c_contiguous:
        flat = offsets // base.itemsize
    else:
        all_offsets = _byte_offsets(xp, base.shape, base.strides, 0).reshape(-1)
        order = xp.argsort(all_offsets)
        flat = order[xp.searchsorted(all_offsets[order], offsets)]
    if check_overlap and not _overlap_free(view) and _distinct(xp, view, flat) != flat.size:
        raise RuntimeError(_OVERLAP)
    return tuple(xp.unravel_index(flat, base.shape)) if base.ndim else ()


def _overlap_free(a) -> bool:
    """Whether `a`'s layout proves that no two elements share memory, decided on the host: with the
    dimensions sorted by stride, each stride steps past the whole extent of the smaller ones (every
    view made by slicing, permuting or selecting passes; an expand or an odd as_strided does not)."""
    extent = a.itemsize
    for st, n in sorted((abs(st), n) for n, st in zip(a.shape, a.strides) if n > 1):
        if st < extent:
            return False
        extent += st * (n - 1)
    return True


def _distinct(xp, view, flat) -> int:
    """How many distinct positions `flat` holds: on CUDA a synchronisation (CuPy's unique reads its size)."""
    _sync.note(view, "in-place op on a view (overlap check)")
    return int(xp.unique(flat).size)


def _byte_offsets(xp, shape, strides, start):
    o = xp.full((), start, dtype=_np.int64)
    for n, s in zip(shape, strides):
        o = o[..., None] + xp.arange(n, dtype=_np.int64) * s
    return o


def _ptr(a):
    return a.ctypes.data if type(a) is _np.ndarray else a.data.ptr


def _cupy_of(a):
    return xp_of(a)


def _check_cast(src, dst):
    if src != dst and not _np.can_cast(src, dst, "same_kind"):
        raise RuntimeError(f"result type {scalar_name(src)} can't be cast to the desired output type "
                           f"{scalar_name(dst)}")


def _dispatcher():
    """(dispatch, op_named) for the two places where recording history runs ops (torch's CopySlices, and a
    view re-attached to its rebased base): those ops pass the dispatcher like any other, hooks included.
    The one deliberate upward edge of this layer (tests/test_import_graph.py)."""
    from .dispatch import dispatch, op_named
    return dispatch, op_named


# --- saved-tensor hooks (torch.autograd.graph.saved_tensors_hooks) --------------------------------------
# While a thread has hooks pushed, every node it records passes what it saved through the innermost pack
# hook, and keeps only what the hook returned: the node becomes a _HookedNode, whose saved inputs and
# outputs are unpack_hook(packed) each time they are read (torch's SavedVariable with hooks). Recording
# stays as cheap as before: the fast recorders read one module flag (_slow_any), true only while some
# thread has a context open.

_PACK_INPLACE = ("A saved tensor pack hook is modifying its input in place. Tensors provided as input to pack hook "
                 "cannot be modified by in-place operations as this can lead to unexpected side-effects. Please "
                 "open an issue if you need to perform in-place operations on the input to a pack hook.")


def push_saved_hooks(pack_hook, unpack_hook):
    """saved_tensors_hooks.__enter__: push the pair on this thread's stack (torch's message when
    disable_saved_tensors_hooks is on)."""
    global _saved_any, _slow_any
    st = STATE
    msg = st.saved_hooks_off
    if msg is not None:
        raise RuntimeError(msg)
    st.saved_hooks = st.saved_hooks + ((pack_hook, unpack_hook),)
    _saved_any += 1
    _slow_any = _anomaly_any or _saved_any


def pop_saved_hooks():
    """saved_tensors_hooks.__exit__."""
    global _saved_any, _slow_any
    st = STATE
    if st.saved_hooks:
        st.saved_hooks = st.saved_hooks[:-1]
        _saved_any -= 1
        _slow_any = _anomaly_any or _saved_any


def _pack_one(pack, t):
    """pack(t), refused (torch's message) when the hook changed t in place."""
    b = t._base
    owner = b if b is not None else t
    v = owner._version
    packed = pack(t)
    if owner._version != v:
        raise RuntimeError(_PACK_INPLACE)
    return packed


def _pack_input(pack, a):
    """A saved input's record: (packed, grad_fn, output_nr, requires_grad, leaf edge) for a tensor (what the
    unpacked tensor is attached to, as torch's SavedVariable keeps its grad_fn), the value itself otherwise."""
    if not isinstance(a, Tensor):
        return (a,)     # a number or None: kept as is
    fn = a._grad_fn
    rg = a._requires_grad
    edge = None if fn is not None or not rg else (a._acc_edge or _leaf_edge(a))
    return (_pack_one(pack, a), fn, a._output_nr, rg, edge)


def pack_hooks_now():
    """This thread's innermost (pack, unpack), or None."""
    hooks = STATE.saved_hooks
    return hooks[-1] if hooks else None


def pack_tensors(tensors, outputs, node):
    """The records of tensors (a custom Function's save_for_backward: None kept as None, as a 1-tuple) packed by the
    innermost hook, with grad mode off as torch packs; those among `outputs` (id -> (result, i)) saved as
    node's output i."""
    pack, unpack = STATE.saved_hooks[-1]
    prev = set_grad_mode(False)
    try:
        recs = []
        for t in tensors:
            if t is None or not isinstance(t, Tensor):
                recs.append(None if t is None else (t,))
                continue
            o = outputs.get(id(t))
            if o is not None:
                r, i = o
                recs.append((_pack_one(pack, r), node, i, r._requires_grad, None))
            else:
                recs.append(_pack_input(pack, t))
    finally:
        set_grad_mode(prev)
    return unpack, tuple(recs)


def pack_saved(node, outs):
    """Pass what `node` saved (its inputs, its outputs `outs`) through this thread's innermost pack hook."""
    if node.inputs is None and node.out_data is None:
        return
    pack, unpack = STATE.saved_hooks[-1]
    prev = set_grad_mode(False)
    try:
        ins = node.inputs
        p_in = None if ins is None else tuple([_pack_input(pack, a) for a in ins])
        p_out = None
        if node.out_data is not None:
            p_out = tuple([(_pack_one(pack, o), o._requires_grad) for o in outs])
    finally:
        set_grad_mode(prev)
    node.__class__ = _HookedNode
    _INPUTS_SLOT.__set__(node, None)
    node.packed = (unpack, p_in, p_out)
    node.versions = None                # torch checks no version through hooks
    node.out_data = ()                  # marks "something saved" (the engine's release test reads it first)
    node.out_refs = None


def unpack_record(unpack, rec):
    """A tensor from a saved tensor's record: unpack_hook(packed) (torch's type check), attached where the
    saved tensor was (its grad_fn and output_nr, or its leaf's accumulator)."""
    packed, fn, nr, rg, edge = rec
    u = unpack(packed)
    if not isinstance(u, Tensor):
        raise TypeError(f"Output of saved tensor unpack_hook expected to be a Tensor but got result of type "
                        f"{type(u).__name__}")
    t = _new_tensor(Tensor)
    t._data = u._data
    if rg:
        t._requires_grad = True
        if fn is not None:
            t._grad_fn = fn
            t._output_nr = nr
        else:
            t._acc_edge = edge
    return t


_INPUTS_SLOT = Node.__dict__["inputs"]


class _HookedNode(Node):
    """A node whose saved tensors went through saved-tensor hooks (see pack_saved): `packed` is
    (unpack_hook, input records or None, output records or None); each read of `inputs` or of a saved output
    unpacks, as each unpack of torch's SavedVariable does."""
    __slots__ = ()
    packed: Any = None

    def _get_inputs(self):
        p = self.packed
        if p is None or p[1] is None:
            return None
        unpack = p[0]
        return tuple([r[0] if len(r) == 1 else unpack_record(unpack, r) for r in p[1]])

    def _set_inputs(self, value):
        _INPUTS_SLOT.__set__(self, value)

    inputs = property(_get_inputs, _set_inputs)

    @property
    def saved_inputs(self):
        if self.freed:
            self._check_alive()
        ins = self.inputs
        if ins is None:
            raise RuntimeError(f"{self.name()}: inputs were not saved for backward (op {self.op.name!r} declares save="
                               f"{self.op.save!r})")
        return ins

    inputs_ = saved_inputs

    def _unpacked_outputs(self, start):
        p = self.packed
        if p is None or p[2] is None:
            raise RuntimeError(f"{self.name()}: outputs were not saved for backward (op {self.op.name!r} declares "
                               f"save={self.op.save!r})")
        unpack = p[0]
        return tuple([unpack_record(unpack, (packed, self, i, rg, None))
                      for i, (packed, rg) in enumerate(p[2]) if i >= start])

    @property
    def saved_output(self):
        if self.freed:
            self._check_alive()
        outs = self._unpacked_outputs(0)
        return outs[0] if len(outs) == 1 else outs

    def saved_outputs_from(self, start):
        if self.freed:
            self._check_alive()
        return self._unpacked_outputs(start)

    def saved_output_array(self):
        return self.saved_output._data

    def release(self):
        if self.packed is not None or not self.freed:
            self.packed = None
            _INPUTS_SLOT.__set__(self, None)
            self.out_data = self.out_refs = None
            if self.ctx_data is not None:
                self.ctx_data = None
            self.freed = True


class _SlotHookedNode(Node):
    """A node some of whose saved inputs have their own pack / unpack hooks (torch's
    `grad_fn._raw_saved_x.register_hooks`, tensorlib._saved): `slot_hooks` is {input position: (unpack_hook,
    record)}; each read of `inputs` unpacks those, the others are read as saved."""
    __slots__ = ()
    slot_hooks: Any = None

    def _get_inputs(self):
        ins = _INPUTS_SLOT.__get__(self)
        if ins is None:
            return None
        ins = list(ins)
        for k, (unpack, rec) in self.slot_hooks.items():
            ins[k] = unpack_record(unpack, rec)
        return tuple(ins)

    inputs = property(_get_inputs, _HookedNode._set_inputs)

    @property
    def saved_inputs(self):
        if self.freed:
            self._check_alive()
        return self.inputs          # (read once: each read unpacks)

    inputs_ = saved_inputs

    def release(self):
        if not self.freed:
            _INPUTS_SLOT.__set__(self, None)
            self.slot_hooks = {}
            self.out_data = self.out_refs = None
            if self.ctx_data is not None:
                self.ctx_data = None
            self.freed = True


_SV.bind(sys.modules[__name__])
_SV.install(Node)
