"""The dispatcher as an exact tracer: every op passes `tensorlib.dispatch.dispatch`, and a registered
`Hook` sees its name, inputs, attributes and outputs. `record(fn, args)` runs `fn` once with such a hook
and returns a `Graph`: the ops in the order they ran, each argument either a graph value (`V`) or a
Python literal, plus the module regions the forward opened (replayed so that the profiler sees a traced
module as it sees eager code).

Values (`V`): ("in", i) the i-th tensor input, ("p", name) a parameter or buffer of the traced module,
("c", k) a constant tensor (one the forward read that no op made and the module does not own),
("n", i, j) output j of node i.

Dynamic sizes: `generalize(graph, probes)` compares the graph with graphs traced on inputs whose
dynamic axes have another size, and turns every integer that changed into a `Sym`
(coef * product of input sizes + offset). The two traces must run the same ops on the same values:
otherwise Python control flow depended on the size, and the axis cannot be dynamic.

Only the public dispatcher API is used: `Hook`, `add_hook`, `remove_hook`, `dispatch`, `registry()`,
`range_enter`/`range_exit` and an op's `.name`.
"""
from __future__ import annotations

import contextlib
import threading
import warnings

import numpy as np

from .. import dispatch as _d
from .._tensor import Tensor
from ..autograd.grad_mode import no_grad
from ..ops.creation import from_numpy

__all__ = ["TracerWarning", "V", "Sym", "Node", "Graph", "record", "generalize", "GraphMismatch"]


# ops whose output may share memory with their first input (views, or the input itself returned)
VIEW_OPS = frozenset({"view", "reshape", "_reshape_alias", "_unsafe_view", "transpose", "permute", "select", "slice",
                      "squeeze", "unsqueeze", "expand",
                      "narrow", "diagonal", "unbind", "split_with_sizes", "detach", "alias", "contiguous", "to",
                      "alias_dtype", "flatten", "unflatten", "as_strided", "movedim", "t", "real", "imag", "view_as",
                      "expand_as"})


class TracerWarning(Warning):
    """torch.jit.TracerWarning: the trace may not generalise (a value became a Python constant)."""


_PY_NUMBER = ("Converting a tensor to a Python {what} might cause the trace to be incorrect. We can't record the "
              "data flow of Python values, so this value will be treated as a constant in the future. This "
              "means that the trace might not generalize to other inputs!")
_NUMPY = ("Converting a tensor to a NumPy array might cause the trace to be incorrect. We can't record the data "
          "flow of Python values, so this value will be treated as a constant in the future. This means that the "
          "trace might not generalize to other inputs!")


class V:
    """A value of the graph (see the module docstring)."""
    __slots__ = ("key",)

    def __init__(self, *key):
        self.key = key

    def __eq__(self, other):
        return isinstance(other, V) and other.key == self.key

    def __hash__(self):
        return hash(self.key)

    def __repr__(self):
        k = self.key
        if k[0] == "in":
            return f"%input{k[1]}"
        if k[0] == "p":
            return f"%{k[1]}"
        if k[0] == "c":
            return f"%const{k[1]}"
        return f"%{k[1]}" if k[2] == 0 else f"%{k[1]}.{k[2]}"


class Sym:
    """An integer that depends on input sizes: coef * prod(input[i].shape[axis] for (i, axis) in dims) + offset."""
    __slots__ = ("coef", "dims", "offset")

    def __init__(self, coef, dims, offset=0):
        self.coef = int(coef)
        self.dims = tuple(tuple(d) for d in dims)
        self.offset = int(offset)

    def eval(self, shapes):
        v = self.coef
        for i, a in self.dims:
            v *= shapes[i][a]
        return v + self.offset

    def __eq__(self, other):
        return isinstance(other, Sym) and (self.coef, self.dims, self.offset) == (other.coef, other.dims, other.offset)

    def __hash__(self):
        return hash((self.coef, self.dims, self.offset))

    def __repr__(self):
        return self.text()

    def text(self, names=None):
        terms = [f"{names[i] if names else f'input{i}'}.size({a})" for i, a in self.dims]
        s = "*".join(([str(self.coef)] if self.coef != 1 or not terms else []) + terms)
        if self.offset:
            s += f"{self.offset:+d}"
        return s


class Node:
    __slots__ = ("op", "args", "attrs", "n_out", "tuple_out", "out_meta")

    def __init__(self, op, args, attrs, n_out, tuple_out, out_meta):
        self.op = op                  # the op's name in tensorlib.dispatch.registry()
        self.args = args              # tuple: V, literals, lists/tuples of them
        self.attrs = attrs            # dict of literals
        self.n_out = n_out
        self.tuple_out = tuple_out    # the op returns a tuple (even of one tensor)
        self.out_meta = out_meta      # [(shape, numpy dtype)] per output

    def __repr__(self):
        return f"Node({self.op}, {self.args!r}, {self.attrs!r})"


class Graph:
    """A recorded forward. `steps` interleaves nodes (int: index into `nodes`) and module regions
    (("enter", name, kind) / ("exit",)) in the order they ran."""

    def __init__(self):
        self.inputs = []          # [(shape, numpy dtype, requires_grad)] of the tensor inputs
        self.input_slots = []     # where each tensor input sits in the flattened (args) structure
        self.args_spec = None     # the call's argument structure, tensors as ("in", i)
        self.nodes: list[Node] = []
        self.steps: list = []
        self.params: dict = {}    # name -> Tensor (the module's own, live)
        self.consts: list = []    # numpy arrays
        self.output = None        # the forward's return value, tensors as V
        self.warnings: list[str] = []   # TracerWarnings raised while tracing (data-dependent Python values)
        self.input_names: list[str] = []  # for printing (the forward's parameter names where known)

    def __repr__(self):
        return self.pretty()

    def const_tensors(self):
        """The constants as tensors, made once (a replay must not add creation ops of its own)."""
        ct = self.__dict__.get("_const_tensors")
        if ct is None or len(ct) != len(self.consts):
            ct = self._const_tensors = [from_numpy(np.array(c)) for c in self.consts]
        return ct

    def pretty(self, input_names=None):
        names = input_names or self.input_names or [f"input{i}" for i in range(len(self.inputs))]
        head = ", ".join(f"%{n} : {_fmt_meta(s, d, names)}" for n, (s, d, _) in zip(names, self.inputs))
        head += "".join(f",\n      %{k} : {_fmt_meta(tuple(t.shape), t._data.dtype)}" for k, t in self.params.items())
        lines = [f"graph({head}):"]
        for i, n in enumerate(self.nodes):
            outs = ", ".join(f"%{i}" if j == 0 else f"%{i}.{j}" for j in range(n.n_out))
            metas = ", ".join(_fmt_meta(s, d, names) for s, d in n.out_meta)
            args = ", ".join([_fmt(a, names) for a in n.args] + [f"{k}={_fmt(v, names)}" for k, v in n.attrs.items()])
            lines.append(f"  {outs} : {metas} = aten::{n.op}({args})")
        lines.append(f"  return ({_fmt(self.output, names)})")
        return "\n".join(lines) + "\n"


def _fmt_meta(shape, dtype, names=None):
    dt = "None" if dtype is None else np.dtype(dtype).name
    return f"{dt}({', '.join(_fmt(s, names) for s in shape)})"


def _fmt(a, names):
    if isinstance(a, V):
        return f"%{names[a.key[1]]}" if a.key[0] == "in" else repr(a)
    if isinstance(a, tuple):
        return "(" + ", ".join(_fmt(x, names) for x in a) + ("," if len(a) == 1 else "") + ")"
    if isinstance(a, list):
        return "[" + ", ".join(_fmt(x, names) for x in a) + "]"
    if isinstance(a, dict):
        return "{" + ", ".join(f"{k!r}: {_fmt(v, names)}" for k, v in a.items()) + "}"
    if isinstance(a, np.ndarray):
        return f"<array {_fmt_meta(a.shape, a.dtype)}>"
    if isinstance(a, Sym) and names:
        return a.text(names)
    return repr(a)


# ------------------------------------------------------------------------------------------------
# recording
# ------------------------------------------------------------------------------------------------

class _Recorder(_d.Hook):
    """Records the ops (and module regions) this thread runs at the top level; nested ones (an op that a
    kernel or autocast dispatches inside another) are the outer op's business."""

    def __init__(self):
        self.thread = threading.get_ident()
        self.depth = 0
        self.records = []      # ("op", name, inputs, attrs, outputs) / ("enter", name, kind) / ("exit",)
        self.range_depth = 0

    def op_enter(self, op, inputs, attrs, phase, seq):
        if threading.get_ident() != self.thread or phase != "forward":
            return None
        self.depth += 1
        if self.depth > 1:
            return False
        return [op.name, inputs, dict(attrs)]

    def op_exit(self, token, outputs):
        if token is None:
            return
        self.depth -= 1
        if token is False or outputs is None:
            return
        self.records.append(("op", token[0], token[1], token[2], outputs))

    def range_enter(self, name, kind):
        if threading.get_ident() != self.thread or self.depth or kind != "module":
            return None
        self.records.append(("enter", name, kind))
        return True

    def range_exit(self, token):
        if token:
            self.records.append(("exit",))


_trace_state = threading.local()


def _tracing():
    return getattr(_trace_state, "active", 0)


def _warn_py(what, msg=None):
    if _tracing():
        text = msg or _PY_NUMBER.format(what=what)
        _trace_state.warned.append(text)
        warnings.warn(text, TracerWarning, stacklevel=3)


_WATCHED = {"item": "number", "__bool__": "boolean", "__int__": "number", "__float__": "number",
            "__index__": "index", "tolist": "list", "numpy": None}
_watch_lock = threading.Lock()
_watch_users = 0            # traces running, over all threads: the conversions are wrapped while any runs
_watch_saved: dict = {}


def _watch_wrap(name, orig, what):
    def f(self, *a, **k):
        _warn_py(what, _NUMPY if what is None else None)
        return orig(self, *a, **k)
    f.__name__ = name
    f.__wrapped__ = orig
    return f


@contextlib.contextmanager
def _python_value_watch():
    """torch's tracer warns when a tensor becomes a Python value (a branch on `bool(t)`, `t.item()`): the
    trace keeps the value as a constant. The conversions are Tensor methods without an op, so they are
    wrapped while some trace runs (one wrapping for all threads; only the tracing thread is warned)."""
    global _watch_users
    with _watch_lock:
        if _watch_users == 0:
            for n, what in _WATCHED.items():
                orig = Tensor.__dict__.get(n)
                if orig is not None:
                    _watch_saved[n] = orig
                    setattr(Tensor, n, _watch_wrap(n, orig, what))
        _watch_users += 1
    outer = not _tracing()
    _trace_state.active = _tracing() + 1
    if outer:
        _trace_state.warned = []
    try:
        yield _trace_state.warned
    finally:
        _trace_state.active -= 1
        with _watch_lock:
            _watch_users -= 1
            if _watch_users == 0:
                for n, orig in _watch_saved.items():
                    setattr(Tensor, n, orig)
                _watch_saved.clear()


def _flatten(obj, out, path=()):
    """The tensors of a nested args structure, in order, and the structure with them as placeholders."""
    if isinstance(obj, Tensor):
        out.append(obj)
        return ("in", len(out) - 1)
    if isinstance(obj, tuple) and not hasattr(obj, "_fields"):
        return ("tuple", [_flatten(o, out) for o in obj])
    if isinstance(obj, list):
        return ("list", [_flatten(o, out) for o in obj])
    if isinstance(obj, dict):
        return ("dict", [(k, _flatten(v, out)) for k, v in obj.items()])
    return ("lit", obj)


def unflatten(spec, values):
    kind = spec[0]
    if kind == "in":
        return values[spec[1]]
    if kind == "tuple":
        return tuple(unflatten(s, values) for s in spec[1])
    if kind == "list":
        return [unflatten(s, values) for s in spec[1]]
    if kind == "dict":
        return {k: unflatten(s, values) for k, s in spec[1]}
    return spec[1]


def record(fn, args, params=None, kwargs=None):
    """Run `fn(*args, **kwargs)` once under a recording hook (grad disabled) and return (Graph, its output).
    `params`: name -> tensor of the module's parameters and buffers (graph values ("p", name))."""
    tensors: list = []
    spec = _flatten((tuple(args), dict(kwargs or {})), tensors)
    rec = _Recorder()
    with _python_value_watch() as warned:
        _d.add_hook(rec)
        try:
            with no_grad():
                out = fn(*args, **(kwargs or {}))
        finally:
            _d.remove_hook(rec)
    g = _build(rec.records, tensors, params or {}, out)
    g.args_spec = spec
    g.warnings = list(warned)
    return g, out


def _build(records, tensors, params, out):
    g = Graph()
    names: dict[int, V] = {}
    keep = []                                    # pins every tensor seen, so no id is reused meanwhile
    for i, t in enumerate(tensors):
        names[id(t)] = V("in", i)
        g.inputs.append((tuple(t.shape), t._data.dtype, bool(t.requires_grad)))
    for k, t in params.items():
        if id(t) not in names:
            names[id(t)] = V("p", k)
            g.params[k] = t
    const_ids: dict[int, V] = {}

    def ref(a):
        if isinstance(a, Tensor):
            v = names.get(id(a))
            if v is None:
                v = const_ids.get(id(a))
                if v is None:
                    keep.append(a)
                    g.consts.append(np.array(_host(a._data)))
                    v = const_ids[id(a)] = V("c", len(g.consts) - 1)
            return v
        if isinstance(a, tuple) and not hasattr(a, "_fields"):
            return tuple(ref(x) for x in a)
        if isinstance(a, list):
            return [ref(x) for x in a]
        return a

    for r in records:
        if r[0] != "op":
            g.steps.append(r)
            continue
        _, name, inputs, attrs, outputs = r
        args = tuple(ref(a) for a in inputs)
        attrs = {k: ref(v) for k, v in attrs.items()}
        tuple_out = type(outputs) is tuple
        outs = outputs if tuple_out else (outputs,)
        i = len(g.nodes)
        meta = []
        for j, o in enumerate(outs):
            if isinstance(o, Tensor):
                keep.append(o)
                names[id(o)] = V("n", i, j)
                meta.append((tuple(o.shape), o._data.dtype))
            else:
                meta.append(((), None))
        g.nodes.append(Node(name, args, attrs, len(outs), tuple_out, meta))
        g.steps.append(i)
    g.output = _out_ref(out, ref)
    return g


def _out_ref(out, ref):
    if isinstance(out, dict):
        return {k: _out_ref(v, ref) for k, v in out.items()}
    if isinstance(out, (tuple, list)) and not hasattr(out, "_fields"):
        return type(out)(_out_ref(o, ref) for o in out)
    return ref(out)


def _host(a):
    return a if isinstance(a, np.ndarray) else a.get()


# ------------------------------------------------------------------------------------------------
# dynamic sizes
# ------------------------------------------------------------------------------------------------

class GraphMismatch(RuntimeError):
    pass


def _walk_diff(a, b, where, found):
    """Parallel walk of two traced structures: ints that differ are collected (path -> (a, b)); anything
    else that differs is a GraphMismatch."""
    if isinstance(a, bool) or isinstance(b, bool):
        if a != b:
            raise GraphMismatch(f"{where}: {a!r} vs {b!r}")
        return a
    if isinstance(a, (int, np.integer)) and isinstance(b, (int, np.integer)):
        if a != b:
            found[where] = (int(a), int(b))
        return a
    if type(a) is not type(b):
        raise GraphMismatch(f"{where}: {a!r} vs {b!r}")
    if isinstance(a, (tuple, list)):
        if len(a) != len(b):
            raise GraphMismatch(f"{where}: {len(a)} vs {len(b)} elements")
        for k, (x, y) in enumerate(zip(a, b)):
            _walk_diff(x, y, where + (k,), found)
        return a
    if isinstance(a, dict):
        if list(a) != list(b):
            raise GraphMismatch(f"{where}: keys {list(a)} vs {list(b)}")
        for k in a:
            _walk_diff(a[k], b[k], where + (k,), found)
        return a
    if isinstance(a, slice):
        for f in ("start", "stop", "step"):
            _walk_diff(getattr(a, f), getattr(b, f), where + (f,), found)
        return a
    if isinstance(a, np.ndarray):
        if a.shape != b.shape or a.dtype != b.dtype or not np.array_equal(a, b):
            raise GraphMismatch(f"{where}: a constant array differs")
        return a
    if isinstance(a, float) and isinstance(b, float):
        if a != b and not (a != a and b != b):
            raise GraphMismatch(f"{where}: {a!r} vs {b!r}")
        return a
    if a != b:
        raise GraphMismatch(f"{where}: {a!r} vs {b!r}")
    return a


def _diff_graphs(g1, g2):
    found: dict = {}
    if len(g1.nodes) != len(g2.nodes):
        raise GraphMismatch(f"{len(g1.nodes)} ops vs {len(g2.nodes)} ops")
    for i, (a, b) in enumerate(zip(g1.nodes, g2.nodes)):
        if a.op != b.op:
            raise GraphMismatch(f"op {i}: {a.op} vs {b.op}")
        _walk_diff(a.args, b.args, ("node", i, "args"), found)
        _walk_diff(a.attrs, b.attrs, ("node", i, "attrs"), found)
        _walk_diff([list(s) for s, _ in a.out_meta], [list(s) for s, _ in b.out_meta], ("node", i, "meta"), found)
    _walk_diff(g1.output, g2.output, ("output",), found)
    if len(g1.consts) != len(g2.consts):
        raise GraphMismatch("constants differ")
    return found


def generalize(g, probes):
    """`probes`: [(dims, graph)] where `dims` lists the (input, axis) pairs of one dynamic axis whose size was
    changed from n to n + 1 in `graph`. Every integer that changed becomes a Sym in `g` (in place); raises
    GraphMismatch when the op sequence changed, ValueError when a changed integer follows no such rule."""
    per_path: dict = {}
    for dims, g2 in probes:
        found = _diff_graphs(g, g2)
        n = g.inputs[dims[0][0]][0][dims[0][1]]
        for path, (v1, v2) in found.items():
            per_path.setdefault(path, []).append((dims, n, v1, v2))
    syms = {}
    for path, changes in per_path.items():
        v1 = changes[0][2]
        mul, add = [], []
        for dims, n, _, v2 in changes:
            if n and v1 * (n + 1) == v2 * n:
                mul.append((dims[0], n))
            elif v2 - v1 == 1:
                add.append(dims[0])
            else:
                raise ValueError(f"{_path_text(path)} changes from {v1} to {v2} when input{dims[0][0]}.size("
                                 f"{dims[0][1]}) goes from {n} to {n + 1}")
        if mul and add or len(add) > 1:
            raise ValueError(f"{_path_text(path)} depends on several dynamic sizes in a way that cannot be expressed")
        if add:
            n = g.inputs[add[0][0]][0][add[0][1]]
            syms[path] = Sym(1, [add[0]], v1 - n)
        else:
            prod = 1
            for _, n in mul:
                prod *= n
            syms[path] = Sym(v1 // prod, [d for d, _ in mul])
    for path, s in syms.items():
        _substitute(g, path, s)
    return syms


def _path_text(path):
    if path[0] == "node":
        return f"an argument of op {path[1]}"
    return "a size of the output"


def _substitute(g, path, s):
    if path[0] == "output":
        return      # output shapes are carried by node metadata
    _, i, part = path[:3]
    rest = path[3:]
    node = g.nodes[i]
    if part == "meta":
        k, axis = rest
        shape = list(node.out_meta[k][0])
        shape[axis] = s
        node.out_meta[k] = (tuple(shape), node.out_meta[k][1])
        return
    if part == "args":
        node.args = _set_in(node.args, rest, s)
    else:
        node.attrs = _set_in(node.attrs, rest, s)


def _set_in(obj, path, value):
    if not path:
        return value
    k, rest = path[0], path[1:]
    if isinstance(obj, tuple):
        return tuple(_set_in(x, rest, value) if j == k else x for j, x in enumerate(obj))
    if isinstance(obj, list):
        return [_set_in(x, rest, value) if j == k else x for j, x in enumerate(obj)]
    if isinstance(obj, dict):
        d = dict(obj)
        d[k] = _set_in(obj[k], rest, value)
        return d
    if isinstance(obj, slice):
        parts = {"start": obj.start, "stop": obj.stop, "step": obj.step}
        parts[k] = _set_in(parts[k], rest, value)
        return slice(parts["start"], parts["stop"], parts["step"])
    raise TypeError(f"cannot place a dynamic size in {type(obj).__name__}")


def has_sym(obj):
    if isinstance(obj, Sym):
        return True
    if isinstance(obj, (tuple, list)):
        return any(has_sym(x) for x in obj)
    if isinstance(obj, dict):
        return any(has_sym(x) for x in obj.values())
    if isinstance(obj, slice):
        return has_sym((obj.start, obj.stop, obj.step))
    return False


def grown(t, axis):
    """`t` with one more element along `axis` (its first slice repeated): a probe input."""
    a = _host(t._data)
    a = np.concatenate([a, np.take(a, [0], axis=axis)], axis=axis)
    return from_numpy(np.ascontiguousarray(a))


# ------------------------------------------------------------------------------------------------
# replay
# ------------------------------------------------------------------------------------------------

def resolve(a, env, shapes):
    if isinstance(a, V):
        return env[a.key]
    if isinstance(a, Sym):
        return a.eval(shapes)
    if isinstance(a, tuple):
        return tuple(resolve(x, env, shapes) for x in a)
    if isinstance(a, list):
        return [resolve(x, env, shapes) for x in a]
    if isinstance(a, dict):
        return {k: resolve(v, env, shapes) for k, v in a.items()}
    if isinstance(a, slice) and has_sym(a):
        return slice(resolve(a.start, env, shapes), resolve(a.stop, env, shapes), resolve(a.step, env, shapes))
    return a


def replay(g, inputs, ops=None, ranges=True, params=None):
    """Run the recorded ops again, each through the dispatcher (hooks and the profiler see them as eager
    ops), on `inputs` (the tensor inputs in order). Returns the output structure."""
    ops = ops if ops is not None else _d.registry()
    env = {}
    for i, t in enumerate(inputs):
        env[("in", i)] = t
    for k, t in (g.params if params is None else params).items():
        env[("p", k)] = t
    for k, c in enumerate(g.const_tensors()):
        env[("c", k)] = c
    shapes = [tuple(t.shape) for t in inputs]
    tokens = []
    try:
        for s in g.steps:
            if type(s) is int:
                n = g.nodes[s]
                args = resolve(n.args, env, shapes)
                attrs = resolve(n.attrs, env, shapes) if n.attrs else {}
                out = _d.dispatch(ops[n.op], *args, **attrs)
                if n.tuple_out:
                    for j, o in enumerate(out):
                        env[("n", s, j)] = o
                else:
                    env[("n", s, 0)] = out
            elif ranges:
                if s[0] == "enter":
                    tokens.append(_d.range_enter(s[1], s[2]))
                else:
                    _d.range_exit(tokens.pop())
    finally:
        while tokens:
            _d.range_exit(tokens.pop())
    return _out_value(g.output, env)


def _out_value(o, env):
    if isinstance(o, V):
        return env[o.key]
    if isinstance(o, dict):
        return {k: _out_value(v, env) for k, v in o.items()}
    if isinstance(o, (tuple, list)):
        return type(o)(_out_value(x, env) for x in o)
    return o
