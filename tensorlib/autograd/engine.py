"""The backward engine: runs autograd nodes in dependency order, newest forward op first.

Each node's backward runs as a named region (kind "backward", the node's name) with the dispatcher's
phase set to "backward" and its sequence number set to the node's, so every op a backward formula
dispatches is seen by the hooks as a backward step of the forward op that made the node.
"""
from __future__ import annotations

import heapq
import itertools
import sys
import warnings
from collections import deque
from typing import Any

import numpy as np

from .. import _hooks as _H
from .. import _sync
from .. import dispatch as _D
from .._device import xp_of
from .._native import load as load_native
from .. import _dtype
from .._graph import AccumulateGrad, Node, _HookedNode, accumulator, mark_view, n_outputs, tensor_of
from .._sparse import SparseCOO
from .._state import GLOBAL, STATE, backward_passes, set_grad_mode
from .._tensor import Tensor


def _as_tuple(x):
    if x is None:
        return ()
    if isinstance(x, Tensor):
        return (x,)
    return tuple(x)


def _make_grads(outputs, grad_outputs):
    grads = []
    for i, out in enumerate(outputs):
        g = grad_outputs[i] if i < len(grad_outputs) else None
        if g is None:
            if out._data.size != 1:
                raise RuntimeError("grad can be implicitly created only for scalar outputs")
            if out._data.dtype.kind != "f" and out._data.dtype != _dtype.BF16:
                raise RuntimeError(f"grad can be implicitly created only for real scalar outputs but got {out.dtype}")
            d = out._data
            if not _H.full_path and type(d) is np.ndarray:   # nothing observes: the seed made directly
                g = Tensor.__new__(Tensor)
                # ones_like's result, without its Python wrapper (nor np.ones's, for the usual 0-d loss)
                g._data = np.array(1, d.dtype) if not d.shape else np.ones(d.shape, d.dtype)
            elif type(d) is np.ndarray and _D.records_arrays():     # a profile alone: the steps on arrays
                g = tensor_of(_H.op_step("ones_like", _ops().creation.recorded_like, d.shape, d.dtype, ("fill_", 1)))
            else:       # torch's seed: ones_like's region over the steps the dispatched ones_like records
                g = _H.op_step("ones_like", _ops().creation.like_steps, d.shape, d.dtype, out.device, False,
                               ("fill_", 1))
        elif not isinstance(g, Tensor):
            raise TypeError(f"gradient must be a Tensor or None, got {type(g).__name__}")
        elif tuple(g.shape) != tuple(out.shape):
            raise RuntimeError(f"Mismatch in shape: grad_output[{i}] has a shape of {g.shape!r} and output[{i}] "
                               f"has a shape of {out.shape!r}.")
        grads.append(g)
    return grads


_CREATE_GRAPH_WARNING = (
    "Using backward() with create_graph=True will create a reference cycle between the parameter and its gradient "
    "which can cause a memory leak. We recommend using autograd.grad when creating the graph to avoid this. If you "
    "have to use this function, make sure to reset the .grad fields of your parameters to None after use to break "
    "the cycle and avoid the leak.")
_warned = {"create_graph": False}


def run_backward(outputs, grad_outputs, retain_graph, create_graph, inputs=None, accumulate=True,
                 allow_unused=False, grad_call=True):
    """The engine. With `inputs` and accumulate=False it returns their gradients (autograd.grad; backward(inputs=)
    too, which accumulates them itself and passes grad_call=False: its graph task is a backward's)."""
    ops = _OPS if _OPS is not None else _ops()
    outputs = (outputs,) if type(outputs) is Tensor else _as_tuple(outputs)     # loss.backward(): one tensor
    grad_outputs = _as_tuple(grad_outputs) if grad_outputs is not None else ()
    if retain_graph is None:
        retain_graph = create_graph
    if create_graph and accumulate and (not _warned["create_graph"] or GLOBAL.warn_always):
        _warned["create_graph"] = True      # once per process, as torch's TORCH_WARN_ONCE (set_warn_always: each)
        warnings.warn(_CREATE_GRAPH_WARNING, UserWarning, stacklevel=3)
    for o in outputs:
        if not isinstance(o, Tensor):
            raise TypeError(f"backward() expects Tensors, got {type(o).__name__}")
        if not o._requires_grad:
            raise RuntimeError("element 0 of tensors does not require grad and does not have a grad_fn")
    grads = _make_grads(outputs, grad_outputs)
    if _H.backward_hooks and inputs is None:       # Hook.backward_begin: a pass that accumulates into .grad
        _H.backward_begin()
    # arrays handed out already (user-given grads, grads stored in a .grad): a leaf never shares one
    handed = {id(g._data) for g in grad_outputs if isinstance(g, Tensor)} if grad_outputs else set()

    # where to capture gradients: {(node, output_nr): index into inputs}
    capture = None
    results = None
    if inputs is not None:
        capture = {}
        results = [None] * len(inputs)
        for k, t in enumerate(inputs):
            if not isinstance(t, Tensor):
                raise TypeError(f"inputs must be Tensors, got {type(t).__name__}")
            if not t._requires_grad:
                raise RuntimeError("One of the differentiated Tensors does not require grad")
            key = (t._grad_fn, t._output_nr) if t._grad_fn is not None else (accumulator(t), 0)
            capture.setdefault(key, []).append(k)

    # roots
    buffers: dict = {}
    roots = []
    for o, g in zip(outputs, grads):
        fn = o._grad_fn if o._grad_fn is not None else accumulator(o)
        nr = o._output_nr if o._grad_fn is not None else 0
        buf = buffers.get(fn)
        if buf is None:
            buf = buffers[fn] = [None] * n_outputs(fn)
            roots.append(fn)
        buf[nr] = g if buf[nr] is None else ops.add(buf[nr], g)

    # dependency counts over the reachable graph; autograd.grad's (capture): over the nodes that must run, those
    # with an input's node beyond them (`runs`), as torch's engine runs only what the inputs' gradients need
    deps: dict = {}
    stack = list(roots)
    runs = None
    if capture is not None:
        targets = {fn for fn, _ in capture}
        runs = _needed(roots, targets)
        for n in runs:
            for fn, _ in n.edges:
                if fn is not None and (fn in runs or fn in targets):
                    deps[fn] = deps.get(fn, 0) + 1
    elif len(roots) == 1 and _cengine is not None:
        deps = _cengine.deps(roots[0])
    elif len(roots) == 1:      # a single root is reachable from nothing: first sight of a node is its first edge
        while stack:
            for fn, _ in stack.pop().edges:
                if fn is not None:
                    c = deps.get(fn)
                    if c is None:
                        deps[fn] = 1
                        if type(fn) is not AccumulateGrad:     # a leaf's sink has no edges to walk
                            stack.append(fn)
                    else:
                        deps[fn] = c + 1
    else:
        seen = set(roots)
        while stack:
            n = stack.pop()
            for fn, _ in n.edges:
                if fn is None:
                    continue
                deps[fn] = deps.get(fn, 0) + 1
                if fn not in seen:
                    seen.add(fn)
                    stack.append(fn)

    ready = []              # the heap: (-seq, counter, node, its gradients)
    acc_ready = deque()     # (AccumulateGrad, its summed gradient): they outrank every other node
    counter = 0
    for r in roots:
        if deps.get(r, 0) == 0:
            if type(r) is AccumulateGrad:
                acc_ready.append((r, buffers.pop(r)[0]))
            else:
                heapq.heappush(ready, (-r.seq, counter, r, buffers.pop(r)))
                counter += 1

    # this pass, for torch.autograd.graph's multi-grad hooks: its id and whether it runs a node
    st = STATE
    prev_task = st.graph_task
    st.graph_task = GraphTask(roots, deps, runs, capture, grad_call)

    # nothing observes the ops a backward formula runs (no hook, profiler, mode) and no graph is recorded
    # through them: a node whose op has a `quiet_backward` runs it, its formula on arrays (see OpDef)
    quiet = not create_graph and not _H.full_path and not _H.range_hooks
    prev_phase, prev_seq = st.phase, st.seq
    prev_grad = set_grad_mode(bool(create_graph))
    backward_passes.append(None)    # the dispatcher reads phases only while some thread is in here
    held: list = []                 # the running node's region, open while its gradients are passed on
    try:
        if capture is None and accumulate and _cengine is not None:     # backward(): the loop in C, the same steps
            pending = list(acc_ready)
            acc_ready.clear()       # (drain empties `ready` and `pending`: their gradients are its alone)
            _cengine.drain(ready, pending, deps, buffers, handed, quiet, create_graph, retain_graph, held)
        else:
            _drain(ready, acc_ready, counter, deps, buffers, handed, quiet, create_graph, retain_graph, held,
                   runs, capture, results, accumulate)
    finally:
        while held:                 # an exception while passing a node's gradients on: its region still ends
            exit_, token = held.pop()
            exit_(token)
        set_grad_mode(prev_grad)
        st.phase, st.seq = prev_phase, prev_seq
        st.graph_task = prev_task
        backward_passes.pop()

    if results is not None:
        for k, r in enumerate(results):
            if r is None and not allow_unused:
                raise RuntimeError(f"The differentiated Tensor at index {k} appears to not have been used in the "
                                   f"graph. Set allow_unused=True if this is the desired behavior.")
        return tuple(results)
    if _H.backward_hooks:
        _H.backward_end()
    return None


def _drain(ready, acc_ready, counter, deps, buffers, handed, quiet, create_graph, retain_graph, held, runs=None,
           capture=None, results=None, accumulate=True):
    """The engine's loop: the ready leaves' sinks first, then the next node (kept out of the heap, or the heap's
    newest), its hooks, its formula, its release, its gradients passed on to the nodes they feed (counted down in
    `deps`, summed in `buffers` where several arrive), its region closed. `ready`: the heap of (-seq, counter, node,
    its gradients); `acc_ready`: the deque of (AccumulateGrad, its summed gradient) ready to run. Its C twin
    (tensorlib/autograd/_cengine.c, `drain`) runs backward() passes, which capture nothing."""
    st = STATE
    heappop, heappush = heapq.heappop, heapq.heappush
    nxt = None              # the ready node that runs next, kept out of the heap (see below)
    nxt_buf = None          # its gradients
    while True:
        if acc_ready:           # a leaf's sink: no edges, nothing saved to release, no hooks of its own
            node, g = acc_ready.popleft()      # (a leaf's hooks are its tensor's: _accumulate runs them)
            if capture is not None:
                buf = [g]
                if not accumulate and (node, 0) in capture:     # a captured leaf: its tensor hooks first,
                    t = node._ref()                             # as torch runs them before capturing
                    if t is not None and t._hooks:
                        buf[0] = _leaf_hooked(t, buf[0])
                _hooks_and_captures(node, buf, create_graph, capture, results, handed)
                g = buf[0]
                buf = None
                if (node, 0) not in capture:
                    g = None
            if accumulate and g is not None:
                t = node._ref()
                if quiet and t is not None and not t._hooks and not t._post_acc_hooks:   # the store alone
                    _store_grad(t, g, False, handed, True, _LOOP_REFS)
                else:
                    _accumulate(node, g, create_graph, handed, quiet)
            g = t = None
            continue
        if nxt is not None:
            node, buf = nxt, nxt_buf
            nxt = nxt_buf = None
        elif ready:
            _, _, node, buf = heappop(ready)
        else:
            break
        if capture is not None or node.tensor_hooks or node.retained:
            _hooks_and_captures(node, buf, create_graph, capture, results, handed)
            if runs is not None and node not in runs:     # an input's node with no other input beyond it
                buf = None
                continue
        if node.node_hooks is None:
            in_grads = _run_node(node, buf, capture, accumulate, quiet, held)
        else:
            in_grads = _run_hooked(node, buf, capture, accumulate, quiet, held)
        if not retain_graph and (node.out_data is not None or node.inputs is not None):
            node.release()
        for (fn, nr), g in zip(node.edges, in_grads):
            if fn is None or (runs is not None and fn not in deps):   # (autograd.grad: a node no input needs)
                continue
            d = deps[fn] - 1
            deps[fn] = d
            if d == 0 and fn not in buffers:    # its only gradient (a chain's usual case): no buffer kept
                if type(fn) is AccumulateGrad:
                    acc_ready.append((fn, g))
                    continue
                m = fn._out_meta                # n_outputs(fn), inline
                if type(m) is not tuple or len(m) == 1:
                    b = [g]
                else:
                    b = [None] * len(m)
                    b[nr] = g
            else:
                if g is not None:
                    b = buffers.get(fn)
                    if b is None:
                        b = buffers[fn] = [None] * n_outputs(fn)
                    if b[nr] is None:
                        b[nr] = g
                    else:
                        inplace = not create_graph and _accumulable(b[nr], _BUFFER_REFS)     # (asked first)
                        if quiet:
                            b[nr] = _sum_grads(b[nr], g, create_graph, inplace)
                        else:   # summing gradients is backward work of the node that produced them
                            st.phase, st.seq = "backward", node.seq
                            try:
                                b[nr] = _sum_grads(b[nr], g, create_graph, inplace)
                            finally:
                                st.phase = "forward"
                if d:
                    continue
                b = buffers.pop(fn)
                if type(fn) is AccumulateGrad:
                    acc_ready.append((fn, b[0]))
                    continue
            # `nxt` outranks every node in the heap: it is set when the heap is empty (a chain, as the MLP
            # step's: no heap push and pop, no tuple per node) or to a node that outranks it
            if nxt is None and not ready:
                nxt, nxt_buf = fn, b
            elif nxt is not None and fn.seq > nxt.seq:      # (linear's weight.t() over its input)
                heappush(ready, (-nxt.seq, counter, nxt, nxt_buf))
                counter += 1
                nxt, nxt_buf = fn, b
            else:
                heappush(ready, (-fn.seq, counter, fn, b))
                counter += 1
        if held:                # the node's region ends once its gradients are summed into the buffers
            exit_, token = held.pop()
            exit_(token)
        # drop this step's references before the next one (the gradient lists included), so a
        # gradient whose only holder is the next node can be handed to .grad without a copy
        buf = in_grads = g = b = None


class GraphTask:
    """One backward pass (torch's GraphTask) as torch.autograd.graph's multi-grad hooks see it: a number of its
    own and whether it runs a node (`will_execute`: the nodes reachable from its roots, or for autograd.grad
    with `inputs` those it must run and the inputs' own nodes)."""
    __slots__ = ("id", "_roots", "_deps", "_runs", "_targets", "_grad_call")
    _ids = itertools.count()

    def __init__(self, roots, deps, runs, capture, grad_call=True):
        self.id = next(GraphTask._ids)
        self._grad_call = grad_call and capture is not None
        self._roots = roots
        self._deps = deps
        self._runs = runs
        self._targets = None if capture is None else {fn for fn, _ in capture}

    def will_execute(self, node) -> bool:
        if self._runs is not None:      # autograd.grad, or backward(inputs=), which runs as it: captures
            if self._grad_call and type(node) is AccumulateGrad:
                raise RuntimeError("A leaf node was passed to _will_engine_execute_node but we are currently running "
                                   "autograd.grad(). This is currently not supported.")
            return node in self._runs or node in self._targets
        return node in self._deps or node in self._roots


def _needed(roots, targets):
    """The nodes autograd.grad must run: those with one of `targets` (the inputs' nodes) beyond them, found by a
    depth-first walk that settles each node after its children (the graph is acyclic, so a child seen
    before is settled when its parent is)."""
    needed: dict = {}
    stack = [(r, False) for r in roots]
    while stack:
        n, settle = stack.pop()
        if settle:
            needed[n] = any(fn is not None and (fn in targets or needed[fn]) for fn, _ in n.edges)
        elif n not in needed:
            needed[n] = False
            stack.append((n, True))
            stack.extend((fn, False) for fn, _ in n.edges if fn is not None and fn not in needed)
    return {n for n, v in needed.items() if v}


def _sum_in_node(node, x, g, create_graph, inplace=False):
    """x + g, two gradients of one output, as backward work of the node that produced the second (the engine's
    loop, when something observes the ops). The C loop sums NumPy arrays of one shape and dtype itself, as
    _sum_grads would (_cengine.c sum_fast), and calls this for the rest; `inplace`: the C loop's
    accumulable(x) (see _accumulable)."""
    st = STATE
    st.phase, st.seq = "backward", node.seq
    try:
        return _sum_grads(x, g, create_graph, inplace)
    finally:
        st.phase = "forward"


def _accumulable(x, refs):
    """torch's InputBuffer rule (create_graph off): the second gradient is summed into x in place (x.add_(g))
    where x is the buffer's alone: `refs` references to x (what sys.getrefcount sees here where only a buffer
    holds it: _BUFFER_REFS), a plain tensor (no view mark) over a dense writeable NumPy array that only x holds
    and that owns its memory; else out of place (x + g). (An array over another's memory is left out even where
    torch would take it, a transposed product's: whether a view's base tensor is alive differs between the
    dispatched and the sink formulas, and both must decide alike.) _cengine.c's accumulable() is the C loop's."""
    if sys.getrefcount(x) != refs or type(x) is not Tensor or x._base is not None:
        return False
    d = x._data
    if type(d) is not np.ndarray or sys.getrefcount(d) != 3:       # (x's slot, d, the call's argument)
        return False
    flags = d.flags
    return d.base is None and flags.writeable and (flags.c_contiguous or flags.f_contiguous)


def _sum_grads(x, g, create_graph, inplace=False):
    """x + g, two gradients of one output, as a backward step (phase set by the caller); into x (add_) where
    `inplace` (_accumulable). Where the sink formulas run (the op sink the only observer, or an op hook taking
    ops on arrays), no graph recorded and NumPy arrays of one shape and dtype, add's (add_'s) kernel run and
    recorded as the dispatched op (dispatch.run_recorded); else the dispatched op."""
    xd, gd = x._data, g._data
    same = type(xd) is np.ndarray and type(gd) is np.ndarray and xd.shape == gd.shape and xd.dtype == gd.dtype
    if _D._sink_formulas and not create_graph and same:
        if inplace:
            _D.run_recorded(_D.op_named("add_"), xd, gd)
            return x
        return tensor_of(_D.run_recorded(_D.op_named("add"), xd, gd))
    if inplace and same and not create_graph:
        return x.add_(g)
    return _ops().add(x, g)


def _hooks_and_captures(node, grads, create_graph, capture, results, handed):
    """Tensor hooks and retain_grad on this node's outputs, then captures for autograd.grad."""
    ops = _ops()
    if node.tensor_hooks:
        for nr, hooks in node.tensor_hooks.items():
            if grads[nr] is not None:
                for h in list(hooks):
                    r = h(grads[nr])
                    if r is not None:
                        grads[nr] = r
    if node.retained:
        for nr, ref in node.retained.items():
            t = ref()
            if t is not None and grads[nr] is not None:
                g = grads[nr] if create_graph else ops.detach(grads[nr])
                handed.add(id(g._data))
                t._grad = g if t._grad is None else ops.add(t._grad, g)
    if capture is not None:
        for nr in range(len(grads)):
            idx = capture.get((node, nr))
            if idx and grads[nr] is not None:
                for k in idx:
                    results[k] = grads[nr] if results[k] is None else ops.add(results[k], grads[nr])


def _run_node(node: Node, grads, capture, accumulate, quiet, held=None):
    """Run one (non-leaf) node's backward formula (its op's `quiet_backward` when `quiet` and it has one and
    it takes the case); returns a gradient per edge (None where there is none)."""
    edges = node.edges
    if capture is not None and not accumulate and not edges:
        return ()
    if len(grads) == 1:         # one output (nearly every node)
        if grads[0] is None:
            return [None] * len(edges)
        missing = 0
    else:
        missing = 0             # not grads.count(None): that would call Tensor.__eq__ on every gradient
        for g in grads:
            if g is None:
                missing += 1
        if missing == len(grads):
            return [None] * len(edges)
    op = node.op
    if (grads[0] if len(grads) == 1 else _first(grads))._data.dtype.kind == "c" and not op.complex_formula:
        return _run_complex(node, grads, missing, held)
    out = None
    # a quiet formula takes every gradient, or (an op with outputs that never carry one: layer_norm's
    # statistics) None for those and checks its own
    qb = op.quiet_backward if quiet and (not missing or op.nondiff_outputs) else None
    # (not on a node whose saved tensors went through saved-tensor hooks: what the unpack hook returned may
    # not be what was saved, and the dispatched formula checks it as torch's does). No phase or range to set:
    # nothing it runs is dispatched
    if qb is not None and type(node) is not _HookedNode:
        if node.versions is not None or node.freed:
            _check_saved(node, op)
        try:
            out = qb(node, *grads)
        except Exception:
            if node.trace is not None:
                _anomaly_warn(node)
            raise
    if out is None:
        out = _run_formula(node, op, grads, missing, held)
    if type(out) is not tuple:
        out = tuple(out) if isinstance(out, (tuple, list)) else (out,)
    n = len(edges)
    if len(out) < n:
        out = out + (None,) * (n - len(out))
    # the usual case: every gradient has its input's shape and dtype, no anomaly mode: hand `out` on as is
    # (one tuple comparison: its items compare by identity first, the dtype's __eq__ only when not the same;
    # an input metadata that is equal but not a tuple of the same types goes to _fix_grads, which passes it)
    for g, e, meta in zip(out, edges, node.in_meta):
        if g is not None and e[0] is not None:
            d = g._data
            if (d.shape, d.dtype) != meta:
                return _fix_grads(node, out)
    if _H.anomaly_users and STATE.anomaly and STATE.anomaly_check_nan:    # the thread-local read only when on
        return _fix_grads(node, out)
    return out


def _run_hooked(node: Node, grads, capture, accumulate, quiet, held):
    """_run_node for a node with hooks of its own (Node.register_prehook / register_hook), as torch's
    call_function runs them: the pre-hooks may replace the gradients the node received, the post-hooks see
    (the gradients it computed for its inputs, those it received: None where none arrived) and may replace the
    former. A built-in formula's gradient for an input that takes none is None, as torch's formulas leave it;
    a custom Function's are what its backward returned (torch's PyNode hands them on as they are)."""
    pre, post = node.node_hooks
    for h in list(pre):
        r = h(tuple(grads))
        if r is not None:
            grads = list(_hook_result(h, r, len(grads)))
    received = tuple(grads)
    out = _run_node(node, list(grads), capture, accumulate, quiet, held)
    if not post:
        return out
    out = tuple(out)
    if node.ctx_data is None:
        out = tuple([None if e[0] is None else g for g, e in zip(out, node.edges)])
    for h in list(post):
        r = h(out, received)
        if r is not None:
            out = _hook_result(h, r, len(out))
    return out


def _hook_result(h, r, n):
    """A node hook's replacement gradients, checked as torch checks them."""
    if not isinstance(r, (tuple, list)):
        raise TypeError(f"expected tuple, but hook returned '{type(r).__name__}'")
    if len(r) != n:
        raise RuntimeError(f"hook '{getattr(h, '__name__', type(h).__name__)}' has returned an incorrect number of "
                           f"values (got {len(r)}, but expected {n})")
    return tuple(r)


def _first(grads):
    for g in grads:
        if g is not None:
            return g


def _run_complex(node, grads, missing, held):
    """A node whose gradient is complex, its formula written as the real one (OpDef.complex_formula): torch's
    grad is conj(formula(conj(g))) (for g * f'(z): g * conj(f'(z)); for a matrix product: g @ B^H). A real input's
    gradient is then the real part (torch's handle_r_to_c), which _fix_grads takes. The dispatched formula
    always (the quiet ones are written for real arrays)."""
    out = _run_formula(node, node.op, grads, missing, held, conj=_ops().conj_physical)
    return _fix_grads(node, out + (None,) * (len(node.edges) - len(out)))


def _check_saved(node, op):
    """What a node saved is still there (no backward freed it) and unchanged (no in-place op since)."""
    if node.freed and op.save:
        node._check_alive()
    versions = node.versions
    if versions is not None:
        for t, v in zip(node.inputs, versions):
            if v is not None:
                b = t._base
                if (b if b is not None else t)._version != v:
                    node.check_versions()        # raises, with torch's message


def _run_formula(node, op, grads, missing, held=None, conj=None):
    """The node's backward formula as a backward step of its forward op: phase and sequence number set for
    the dispatcher, inside the node's named region when range hooks listen; missing gradients as zeros,
    except those of outputs that never carry one (OpDef.nondiff_outputs: norms' statistics, indices, masks),
    which stay None as the quiet formulas get them (torch's engine makes no zeros for those either).
    `held`: a list the node's region is left open in, (exit, token), once the formula has run, for the caller to
    close after it has passed the gradients on: summing two gradients of one input is then inside the node
    that produced the second, as torch's InputBuffer adds them inside that node's evaluate_function.
    `conj`: the formula runs as conj(formula(conj(g))) (_run_complex), the conjugations inside the node's region."""
    st = STATE
    st.phase = "backward"
    st.seq = node.seq        # set first, so range hooks can read it (tensorlib.dispatch.current_seq())
    rp = _H.range_pair       # the region hooks' own (enter, exit): range_enter's work without its call
    token = rp[0](node.name(), "backward") if rp is not None else None
    try:
        if node.versions is not None or node.freed:
            _check_saved(node, op)
        # a default profile (the op sink the only observer), or a detailed one (its recorder the only op hook,
        # taking ops on arrays: Hook.op_arrays): OpDef.sink_backward, if the op has one
        sb = op.sink_backward if _D._sink_formulas and not STATE.grad_enabled else None
        if missing:
            ops = _ops()
            nondiff = op.nondiff_outputs
            recorded = sb is not None and all(g is None or type(g._data) is np.ndarray for g in grads)
            for i, g in enumerate(grads):
                if g is None and i not in nondiff:
                    shape, dt = node.out_meta[i]
                    # (for the sink formula, zeros' kernel recorded as the dispatched zeros)
                    grads[i] = tensor_of(ops.creation.recorded_zeros(shape, dt)) if recorded else \
                        ops.zeros(shape, dtype=dt, device=_device_like(node, grads))
        try:
            if conj is not None:
                out = op.backward(node, *[g if g is None or g._data.dtype.kind != "c" else conj(g) for g in grads])
                if type(out) is not tuple:
                    out = tuple(out) if isinstance(out, (tuple, list)) else (out,)
                out = tuple([g if g is None or g._data.dtype.kind != "c" else conj(g) for g in out])
            else:
                out = sb(node, *grads) if sb is not None else None
                if out is None:
                    out = op.backward(node, *grads)
        except Exception:
            if node.trace is not None:
                _anomaly_warn(node)
            raise
        if held is not None and rp is not None:
            held.append((rp[1], token))
            rp = None                   # closed by the caller
        return out
    finally:
        st.phase = "forward"
        if rp is not None:
            rp[1](token)


def _fix_grads(node, out):
    """Check each gradient's shape against its input's, cast its dtype, and (anomaly mode) look for NaNs."""
    fixed = []
    check_nan = STATE.anomaly and STATE.anomaly_check_nan
    in_meta = node.in_meta
    for i, (g, (fn, _)) in enumerate(zip(out, node.edges)):
        if g is None or fn is None:
            fixed.append(None)
            continue
        meta = in_meta[i]
        d = g._data
        if d.shape != meta[0] and tuple(d.shape) != tuple(meta[0]):
            raise RuntimeError(f"Function {node.name()} returned an invalid gradient at index {i} - got "
                               f"{list(g.shape)} but expected shape compatible with {list(meta[0])}")
        if d.dtype != meta[1]:
            if d.dtype.kind == "c" and meta[1].kind != "c":      # a real input's gradient: the real part
                g = _ops().real(g)
            g = g.to(dtype=meta[1])
        if check_nan and _has_nan(g):
            if node.trace is not None:
                _anomaly_warn(node)
            raise RuntimeError(f"Function '{node.name()}' returned nan values in its {i}th output.")
        fixed.append(g)
    return fixed


_OPS: Any = None     # tensorlib.ops once _ops() ran (run_backward calls it before any node runs)


def _ops():
    """tensorlib.ops, imported once (it imports this module)."""
    global _OPS
    if _OPS is None:
        from .. import ops
        _OPS = ops
    return _OPS


def _device_like(node, grads):
    for g in grads:
        if g is not None:
            return g.device
    return None


def _has_nan(g):
    """Whether gradient g holds a NaN (torch's anomaly check: one host sync per gradient on CUDA). The
    array module comes from tensorlib's device table: cupy.ndarray has no __array_namespace__."""
    d = g._data
    if type(d) is np.ndarray:
        return bool(np.isnan(d).any())
    return bool(_sync.to_host(xp_of(d).isnan(d).any(), "detect_anomaly"))


def _anomaly_warn(node):
    warnings.warn(f"Error detected in {node.name()}. Traceback of forward call that caused the error:\n"
                  + "".join(node.trace), RuntimeWarning, stacklevel=4)


def _expanded(d) -> bool:
    """Whether array d repeats memory (an expanded gradient, mean's or sum's: zero strides; NumPy marks it
    read-only). torch's AccumulateGrad clones a gradient that does not have the leaf's layout; a .grad
    that repeats memory could not be accumulated into in place."""
    if type(d) is np.ndarray:
        return not d.flags.writeable
    return d.size > 1 and 0 in d.strides


def _shared_view(t) -> bool:
    """True when t's memory is a view of a buffer that something besides t still holds. A view of a
    temporary (the transpose of a weight's gradient) holds the only references: its array's .base, and the
    base tensor its _base points to."""
    base = t._data.base
    if base is None:
        return False
    holders = sys.getrefcount(base) - 3          # minus the view's .base, `base` and the argument
    bt = t._base
    if bt is not None and bt._data is base and sys.getrefcount(bt) == 3:   # t._base, bt, the argument
        holders -= 1                             # the base tensor is held by t alone
    return holders > 0


def _leaf_hooked(t, g):
    """g through leaf t's tensor hooks, in order (a hook's non-None result replaces it): before .grad takes it
    (_accumulate), or before autograd.grad / backward(inputs=) capture it."""
    for h in list(t._hooks):
        r = h(g)
        if r is not None:
            g = r
    return g


def _accumulate(node: AccumulateGrad, g, create_graph, handed, quiet=False):
    """AccumulateGrad's node: the leaf's hooks, its store (in an observed pass inside the region and phase of
    backward work linked to no forward op) and its post-accumulate hooks. The C loop does the phase and region
    itself for a live leaf without hooks (_cengine.c observed_store) and calls _store_grad."""
    t = node._ref()
    if t is None:       # the leaf is gone (it had no hooks): no one can read its gradient
        return
    if t._hooks:
        g = _leaf_hooked(t, g)      # (the hooks' results die with its frame: g alone holds one, see _ENGINE_REFS)
    if quiet:      # nothing observes the ops below: no phase or region to set
        _store_grad(t, g, create_graph, handed, True, _ENGINE_REFS)
    else:
        st = STATE
        st.phase, st.seq = "backward", -1     # backward work, linked to no forward op (as torch's)
        rp = _H.range_pair
        token = rp[0]("tensorlib::autograd::AccumulateGrad", "backward") if rp is not None else None
        try:
            _store_grad(t, g, create_graph, handed, False, _ENGINE_REFS)
        finally:
            if rp is not None:
                rp[1](token)
            st.phase = "forward"
    if t._post_acc_hooks:      # register_post_accumulate_grad_hook: after the .grad is in place
        for h in list(t._post_acc_hooks):
            if h(t) is not None:
                raise RuntimeError("post accumulate grad hooks cannot return anything other than None")


def _refs_seen(calls: int) -> int:
    """What sys.getrefcount reports for an object held by one local and passed down `calls` calls (1 or 2), as
    run_backward hands a gradient to _store_grad, or to _accumulate and on to _store_grad (3 and 4 on CPython
    3.11-3.13; 3.10 counts more): measured, not assumed, since each interpreter counts a frame's arguments
    its own way."""
    def middle(x):
        return _refs_probe(x)

    local = object()
    return _refs_probe(local) if calls == 1 else middle(local)


def _refs_probe(x):
    """sys.getrefcount(x) one call down: the C loop (_cengine.configure) measures its own `refs` with it too."""
    return sys.getrefcount(x)


# the references to a gradient that _store_grad sees when the engine alone holds it: run_backward's local,
# _accumulate's and _store_grad's arguments, and getrefcount's own; _LOOP_REFS when run_backward calls
# _store_grad itself (a quiet pass, a leaf without hooks). More means someone else holds it (a hook that
# kept it, a custom Function that returned a tensor of its own, the user's `gradient=`)
_ENGINE_REFS = _refs_seen(2)
_LOOP_REFS = _refs_seen(1)


def _buffer_probe(x, refs):
    return sys.getrefcount(x)


_probe_buffer = [object()]
_BUFFER_REFS = _buffer_probe(_probe_buffer[0], 0)      # what _accumulable sees of a gradient only a buffer holds
del _probe_buffer


def _store_sparse_grad(t, g, ops):
    """AccumulateGrad with a sparse gradient (torch.sparse.mm's, to_dense's) or a sparse .grad: a copy of the
    first, then sums (sparse + sparse stays sparse; a dense one and a sparse one make a dense .grad, added
    as torch adds them, dense + sparse)."""
    if t._grad is None:
        t._grad = ops.clone(ops.detach(g))
    elif type(t._grad._data) is SparseCOO and type(g._data) is not SparseCOO:
        t._grad = ops.add(g.detach(), t._grad)
    else:
        t._grad = ops.add(t._grad, g.detach())


def _store_grad(t, g, create_graph, handed, quiet, refs):
    """AccumulateGrad's work: g becomes t.grad (its buffer stolen where nothing else holds it, as torch's
    AccumulateGrad steals a gradient whose use count says the engine alone has it), or is added to it.
    `refs`: the references to g when the engine alone holds it (see _ENGINE_REFS)."""
    ops = _OPS      # run_backward imported it
    if type(g._data) is SparseCOO or t._grad is not None and type(t._grad._data) is SparseCOO:
        return _store_sparse_grad(t, g, ops)
    if t._grad is None:
        d = g._data
        if create_graph:    # a differentiable copy, never g itself (torch: grad_fn CopyBackwards)
            t._grad = ops.empty_like(g).copy_(g)
        elif id(d) in handed or (d.base is not None and _shared_view(g)) or \
                (not d.flags.writeable if type(d) is np.ndarray else _expanded(d)) or sys.getrefcount(g) > refs:
            # never alias another .grad, a tensor something else holds, or live memory (clip_grad_ and
            # optimizers work on .grad in place): a copy, as torch's clone_obey_contract
            t._grad = ops.clone(g)
        elif quiet and g._base is None and g._grad_fn is None and not g._requires_grad:
            t._grad = g              # the engine's own tensor: what detach would give, without the copy
        elif quiet or (_D._sink_formulas and type(d) is np.ndarray):    # detach's work, without its dispatch:
            t._grad = v = Tensor.__new__(Tensor)    # nothing observes, or the sink or op_arrays alone, recording it
            v._data = d.view() if quiet else _D.run_recorded(ops.misc.DETACH, d)
            mark_view(v, g)
            v._detached = True
        else:
            t._grad = ops.detach(g)  # steal the buffer, as torch does when nothing else holds it
        handed.add(id(t._grad._data))
    elif create_graph:
        t._grad = ops.add(t._grad, g)
    else:
        t._grad.add_(g)


# The loop of a backward() pass in C (tensorlib/autograd/_cengine.c, see tensorlib/_native.py); `_drain` stays the
# reference and runs every pass that captures gradients (autograd.grad, backward(inputs=)); TENSORLIB_NATIVE=0
# runs it alone
_cengine = load_native("tensorlib.autograd._cengine")
if _cengine is not None:
    _cengine.configure(Node, AccumulateGrad, Tensor, np.ndarray, _run_node, _run_hooked, _hooks_and_captures,
                       _check_saved, _run_formula, _fix_grads, _store_grad, _accumulate, _sum_in_node,
                       lambda x, g: _ops().add(x, g), vars(_H), vars(_D), STATE, _refs_probe)
    _H.subscribe(_cengine.hooks_changed)    # (after the dispatcher's _copy_flags: the loop copies flags of both)
    _cengine.set_op_class(_D.OpDef)
    _p = np.zeros((2, 3), np.float32)     # the view formulas' reads of NumPy's array struct, checked (OpDef.sink_view)
    _cengine.setup_arrays(tuple((a, a.flags.num, a.base, a.ndim) for a in (_p, _p.T, _p[:, 1:], _p.reshape(6), _p[0])))
    del _p
