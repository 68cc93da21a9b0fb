"""torch's ``python_function`` trace events, derived after recording from with_stack's stacks.

torch's Python tracer writes an event per Python call and per nn.Module forward (``nn.Module:
Linear_0``, with ``Python module id``), joined into a tree by ``Python id`` / ``Python parent id``;
TensorBoard's Module view (torch-tb-profiler) and HTA's call stacks read that tree. Tracing every call
would cost far more than the profiler itself, so here the tree is rebuilt from what with_stack records
anyway: each op's and range's user frames (outermost first) and, for each nn.Module range, the module's
class and identity (recorder.py). Module events are exact (the module's own range). A frame's event
spans from the start of the first event recorded under it to the end of the last, so time spent in
Python between ops is not attributed, and back-to-back calls made from the same line of the caller (a
loop calling ``step()``) read as one call; calls from different lines are told apart.

Names follow torch: ``file(first line): function`` for a frame, ``nn.Module: <class>_<k>`` for a module,
k counting the modules of that class in order of first call, as ``Python module id``.
"""
from __future__ import annotations

from .recorder import FUNCTION_OF_FRAME


class _Node:
    __slots__ = ("key", "module_id", "name", "parent", "python_id", "t0", "t1")

    def __init__(self, key, name, t0, t1, parent, module_id=None):
        self.key, self.name, self.t0, self.t1 = key, name, t0, t1
        self.parent, self.module_id = parent, module_id
        self.python_id = 0


def has_python_events(store) -> bool:
    """True when the store holds stacks or module identities (with_stack=True)."""
    return store.extra is not None and any(e is not None and (e[1] or len(e) > 3) for e in store.extra)


def module_event_rows(store) -> set:
    """Indices of the nn.Module ranges written as python_function events rather than user_annotation."""
    return {i for i, e in enumerate(store.extra) if e is not None and len(e) > 3} if store.extra is not None else set()


def python_events(store, pid: int, call_stack: bool = True) -> list:
    """The python_function events (dicts, torch's argument names) for every thread of `store`; `call_stack`: with
    each one's "Call stack" arg (its callers' names; tensorlib's addition, off when the profile's
    experimental_config has verbose=False)."""
    nodes = _nodes(store)
    tb = store.t_base
    threads = {t: k for k, t in enumerate(sorted({n[0] for n in nodes}))}
    ev = []
    for tid, node in nodes:
        args = {"Python thread": threads[tid], "Python parent id": node.parent.python_id if node.parent else None,
                "Python id": node.python_id}
        chain = []
        p = node.parent
        while p is not None:
            chain.append(p.name)
            p = p.parent
        if chain and call_stack:
            args["Call stack"] = ";".join(chain)
        if node.module_id is not None:
            args["Python module id"] = node.module_id
        ev.append({"ph": "X", "cat": "python_function", "name": node.name, "pid": pid, "tid": tid,
                   "ts": round((node.t0 - tb) / 1000.0, 3), "dur": round((node.t1 - node.t0) / 1000.0, 3),
                   "args": args})
    return ev


def _nodes(store):
    """[(thread id, node)] in order of start (a parent before its children), Python ids numbered 1, 2,
    ... in that order as torch numbers them."""
    extra = store.extra
    t0 = store.t0.tolist()
    t1 = store.t1.tolist()
    tid = store.tid.tolist()
    depth = store.depth.tolist()
    module_ids: dict = {}           # class name -> {id(module): k}
    out = []
    open_: list[_Node] = []         # the open python nodes of the current thread, outermost first
    modules: list[tuple] = []       # the open module ranges (event index, stack length, node key)
    cur = None
    for i, ex in enumerate(extra):
        if tid[i] != cur:
            cur, open_, modules = tid[i], [], []
        if ex is None:
            continue
        st = ex[1] or ()
        while modules and not _encloses(modules[-1][0], i, t0, t1, depth):
            modules.pop()
        mods = list(modules)
        if len(ex) > 3:
            mods.append((i, len(st)))
        path = _path(st, mods)
        k = 0
        while k < len(open_) and k < len(path) and open_[k].key == path[k][0]:
            k += 1
        del open_[k:]
        for key, name, mod in path[k:]:
            parent = open_[-1] if open_ else None
            if mod is None:
                node = _Node(key, name, t0[i], t1[i], parent)
            else:
                cls, ident = extra[mod][3]
                per_class = module_ids.setdefault(cls, {})
                mid = per_class.setdefault(ident, len(per_class))
                node = _Node(key, f"nn.Module: {cls}_{mid}", t0[mod], t1[mod], parent, mid)
            out.append((cur, node))
            open_.append(node)
        for node in open_:
            if node.module_id is None and node.t1 < t1[i]:
                node.t1 = t1[i]
        if len(ex) > 3:
            modules.append((i, len(st)))
    out.sort(key=lambda tn: (tn[0], tn[1].t0, -tn[1].t1))
    for n, (_, node) in enumerate(out, 1):
        node.python_id = n
    return out


def _encloses(j, i, t0, t1, depth) -> bool:
    return depth[j] < depth[i] and t0[j] <= t0[i] and t1[i] <= t1[j]


def _path(stack, mods):
    """The python nodes from the outermost frame down to an event: its frames, with each enclosing
    module (event index, length of the stack at its call) placed under the frames that called it.
    A frame's key is its function and its caller's current line, so calls from different lines of the
    caller are different nodes; a module's key is its range."""
    path = []
    f = 0
    for mod, k in mods:
        while f < k and f < len(stack):
            path.append(_frame(stack, f))
            f += 1
        path.append((("m", mod), None, mod))
    while f < len(stack):
        path.append(_frame(stack, f))
        f += 1
    return path


def _frame(stack, f):
    fn = FUNCTION_OF_FRAME.get(stack[f], stack[f])
    return (("f", stack[f - 1] if f else None, fn), fn, None)
