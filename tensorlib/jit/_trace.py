"""torch.jit.trace / save / load on the dispatcher's tracing hook.

A traced module replays the recorded ops through `tensorlib.dispatch.dispatch` (so hooks and the profiler
see them as eager ops, inside the module regions the original forward opened), with the module's own
parameters and buffers looked up by name at each call. Each input's first dimension is probed once at
trace time (the forward run again with one more row): sizes that follow it are replayed from the actual
input, so a module traced with batch 4 runs with batch 7; where that probe shows the ops change, the
traced shape is required and another one is refused with a clear error.

Files (`save` / `load`) are tensorlib.save archives, JSON and .npy entries only (no pickle): the graph as
JSON, the parameters, buffers and constants as tensors.
"""
from __future__ import annotations

import math
import os
import warnings

import numpy as np

from .. import _dtype
from .. import dispatch as _d
from .._device import device as _device_cls
from .._tensor import Tensor
from ..nn.modules.module import Module
from ..nn.parameter import Parameter
from ..ops.creation import from_numpy
from . import _graph
from ._graph import Graph, GraphMismatch, Node, Sym, TracerWarning, V

FORMAT = "tensorlib.jit"
VERSION = 1


def _as_tuple(example_inputs):
    if isinstance(example_inputs, Tensor):
        return (example_inputs,)
    if isinstance(example_inputs, list):
        return tuple(example_inputs)
    if isinstance(example_inputs, tuple):
        return example_inputs
    raise TypeError(f"example_inputs must be a Tensor or a tuple of inputs, got {type(example_inputs).__name__}")


def _named_state(model):
    params = dict(model.named_parameters())
    buffers = {k: b for k, b in model.named_buffers() if k not in params}
    return params, buffers


class _Snapshot:
    """The buffers' values and the RNG state before a probe run, put back after it: probing a size must
    not update BatchNorm's running statistics or advance the random stream a second time."""

    def __init__(self, buffers):
        from .. import random as _random
        self._random = _random
        try:
            self.rng = _random.get_rng_state()
        except (TypeError, ValueError):     # a generator state get_rng_state cannot encode: left as it is
            self.rng = None
        self.saved = [(b, _graph._host(b._data).copy()) for b in buffers.values() if b is not None]

    def restore(self):
        for b, a in self.saved:
            if type(b._data) is np.ndarray and b._data.shape == a.shape:
                b._data[...] = a
        if self.rng is not None:
            self._random.set_rng_state(self.rng)


def _probe_batch(fn, args, g, params, buffers):
    """Generalise `g` over dimension 0 of the tensor inputs: inputs whose first dimensions are equal grow
    together (one probe per group, the forward run once more with one more row). Returns the groups (lists of
    input indices) whose dimension 0 may vary; a probe whose ops differ leaves that group's shapes fixed."""
    tensors: list = []
    spec = _graph._flatten(tuple(args), tensors)
    groups: dict = {}
    for i, t in enumerate(tensors):
        if t.ndim:
            groups.setdefault(t.shape[0], []).append(i)
    free = []
    for members in groups.values():
        probe = [_graph.grown(t, 0) if j in members else t for j, t in enumerate(tensors)]
        probe_args = _graph.unflatten(spec, probe)
        snap = _Snapshot(buffers)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                g2, _ = _graph.record(fn, probe_args, {**params, **buffers})
            _graph.generalize(g, [([(i, 0) for i in members], g2)])
            free.append(members)
        except (GraphMismatch, ValueError, RuntimeError, TypeError, IndexError):
            continue
        finally:
            snap.restore()
    return free


class _Traced:
    """What TracedModule and TracedFunction share: the graph, the guards, the replay."""

    def _setup(self, graph, free_groups, name):
        self._graph = graph
        self._free_groups = [list(m) for m in free_groups]      # inputs whose dim 0 varies together
        self._group_of = {i: k for k, m in enumerate(self._free_groups) for i in m}
        self._traced_name = name

    @property
    def graph(self):
        """The recorded graph; print() shows it (torch's `traced.graph`)."""
        return self._graph

    @property
    def code(self):
        return self._graph.pretty()

    def _check_inputs(self, tensors, spec):
        g = self._graph
        if len(tensors) != len(g.inputs):
            raise RuntimeError(f"{self._traced_name}: the traced function takes {len(g.inputs)} tensor inputs, "
                               f"got {len(tensors)}")
        if not _same_structure(spec, g.args_spec[1][0] if g.args_spec else None):
            raise RuntimeError(f"{self._traced_name}: the arguments differ from the traced ones in structure or in "
                               f"a non-tensor value; trace again with these arguments")
        for i, (t, (shape, dt, _)) in enumerate(zip(tensors, g.inputs)):
            if not isinstance(t, Tensor):
                raise TypeError(f"{self._traced_name}: input {i} must be a Tensor, got {type(t).__name__}")
            s = tuple(t.shape)
            grp = self._group_of.get(i)
            if grp is not None and s and s[0] != tensors[self._free_groups[grp][0]].shape[0]:
                raise RuntimeError(f"{self._traced_name}: inputs {self._free_groups[grp]} were traced with one first "
                                   f"dimension and must keep sharing it (input {i} has {s[0]})")
            if len(s) != len(shape) or any(a != b and not (k == 0 and grp is not None)
                                           for k, (a, b) in enumerate(zip(s, shape))):
                raise RuntimeError(f"{self._traced_name}: input {i} was traced with shape {list(shape)} and the "
                                   f"trace does not generalise to shape {list(s)} (only a dimension 0 that the "
                                   f"traced ops follow may change); trace again with an input of this shape")
            if t._data.dtype != dt:
                raise RuntimeError(f"{self._traced_name}: input {i} was traced as {np.dtype(dt).name} and got "
                                   f"{t._data.dtype.name}; trace again with this dtype")

    def _run(self, args, params):
        tensors: list = []
        spec = _graph._flatten(tuple(args), tensors)
        self._check_inputs(tensors, spec)
        return _graph.replay(self._graph, tensors, params=params)


def _same_structure(a, b):
    if b is None:
        return True
    if a[0] != b[0]:
        return False
    if a[0] == "in":
        return True
    if a[0] == "lit":
        return a[1] == b[1] if not isinstance(a[1], float) or not math.isnan(a[1]) else True
    if a[0] == "dict":
        return [k for k, _ in a[1]] == [k for k, _ in b[1]] and all(_same_structure(x, y) for (_, x), (_, y)
                                                                     in zip(a[1], b[1]))
    return len(a[1]) == len(b[1]) and all(_same_structure(x, y) for x, y in zip(a[1], b[1]))


class TracedModule(_Traced, Module):
    """torch.jit.TopLevelTracedModule: the traced forward over the original module's parameters and buffers
    (shared, not copied: training the original trains the trace), under the same state-dict keys."""

    def __init__(self, graph, params, buffers, free_dims, name="TracedModule", kinds=None):
        Module.__init__(self)
        self._setup(graph, free_dims, name)
        for k, p in params.items():
            _place(self, k, p, "param")
        for k, b in buffers.items():
            _place(self, k, b, "buffer")
        self.original_name = name

    def forward(self, *args):
        return self._run(args, self._live_params())

    def _live_params(self):
        out = {}
        for k in self._graph.params:
            mod, _, leaf = k.rpartition(".")
            m = self.get_submodule(mod) if mod else self
            out[k] = getattr(m, leaf)
        return out

    def _get_name(self):
        return self.original_name

    def extra_repr(self):
        return "original_name=" + self.original_name

    def save(self, f):
        save(self, f)


class TracedFunction(_Traced):
    """torch.jit.ScriptFunction made by tracing a plain function."""

    def __init__(self, graph, free_dims, name):
        self._setup(graph, free_dims, name)
        self.__name__ = name

    def __call__(self, *args):
        return self._run(args, self._graph.params)

    def save(self, f):
        save(self, f)


def _place(root, key, tensor, kind):
    parts = key.split(".")
    m = root
    for p in parts[:-1]:
        sub = m._modules.get(p) if hasattr(m, "_modules") else None
        if sub is None:
            sub = Module()
            m.add_module(p, sub)
        m = sub
    if kind == "param":
        m.register_parameter(parts[-1], tensor if isinstance(tensor, Parameter) or tensor is None
                             else Parameter(tensor, requires_grad=tensor.requires_grad))
    else:
        m.register_buffer(parts[-1], tensor)


_CHECK_MSG = ("Output nr {n}. of the traced function does not match the corresponding output of the Python function. "
              "Detailed error:\n{detail}")


def trace(func, example_inputs=None, optimize=None, check_trace=True, check_inputs=None, check_tolerance=1e-5,
          strict=True, _force_outplace=False, _module_class=None, _compilation_unit=None,
          example_kwarg_inputs=None, _store_inputs=True):
    """torch.jit.trace: run `func(*example_inputs)` once, recording every op through the dispatcher.

    Returns a TracedModule (for an nn.Module) or a TracedFunction. Python values taken from tensors during
    the trace (`bool(t)`, `t.item()`) become constants: each is warned about as a TracerWarning, as torch
    does. check_trace replays the trace on the example inputs (and on each of check_inputs) and warns
    where it differs from the Python function by more than check_tolerance."""
    if example_kwarg_inputs is not None:
        raise ValueError("tensorlib.jit.trace: example_kwarg_inputs is not supported; pass the inputs "
                         "positionally in example_inputs")
    if optimize is not None:
        warnings.warn("`optimize` is deprecated and has no effect.", DeprecationWarning, stacklevel=2)
    if example_inputs is None:
        raise RuntimeError("tensorlib.jit.trace needs example_inputs (a Tensor or a tuple of inputs)")
    args = _as_tuple(example_inputs)
    if isinstance(func, _Traced):
        raise TypeError("tensorlib.jit.trace: this function is traced already")
    if isinstance(func, Module):
        params, buffers = _named_state(func)
        name = type(func).__name__
    elif callable(func):
        params, buffers, name = {}, {}, getattr(func, "__name__", "traced_fn")
    else:
        raise TypeError(f"tensorlib.jit.trace expects an nn.Module or a function, got {type(func).__name__}")
    g, out = _graph.record(func, args, {**params, **buffers})
    g.input_names = _input_names(func, args, len(g.inputs))
    _check_outputs_are_tensors(g.output)
    snap_out = _snapshot(out)
    free = _probe_batch(func, args, g, params, buffers)
    traced = (TracedModule(g, params, buffers, free, name) if isinstance(func, Module)
              else TracedFunction(g, free, name))
    if check_trace:
        for inputs in [args] + [_as_tuple(c) for c in (check_inputs or [])]:
            expected = snap_out if inputs is args else _snapshot(_run_eager(func, inputs))
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", TracerWarning)
                got = _snapshot(_run_no_grad(traced, inputs))
            _compare(expected, got, check_tolerance)
    return traced


def _input_names(func, args, n):
    """The forward's parameter names for printing, where each argument is one tensor."""
    import inspect
    names = []
    if len(args) == n and all(isinstance(a, Tensor) for a in args):
        try:
            sig = inspect.signature(func.forward if isinstance(func, Module) else func)
            names = [p.name for p in sig.parameters.values()
                     if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)][:n]
        except (TypeError, ValueError):
            names = []
    return names if len(names) == n else [f"input{i}" for i in range(n)]


def _run_no_grad(fn, inputs):
    from ..autograd.grad_mode import no_grad
    with no_grad():
        return fn(*inputs)


def _run_eager(fn, inputs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", TracerWarning)
        return _run_no_grad(fn, inputs)


def _snapshot(o):
    flat: list = []
    _graph._flatten(o, flat)
    return [_graph._host(t._data).copy() for t in flat]


def _compare(expected, got, tol):
    for n, (a, b) in enumerate(zip(expected, got)):
        if a.shape != b.shape:
            detail = f"shape {list(a.shape)} vs {list(b.shape)}"
        elif a.dtype.kind in "fc" and np.allclose(a, b, rtol=tol, atol=tol, equal_nan=True):
            continue
        elif a.dtype.kind not in "fc" and np.array_equal(a, b):
            continue
        else:
            diff = np.abs(a.astype(np.float64) - b.astype(np.float64))
            detail = f"Tensor-likes are not close!\n\nGreatest absolute difference: {float(np.max(diff))}"
        warnings.warn(_CHECK_MSG.format(n=n + 1, detail=detail), TracerWarning, stacklevel=3)


def _check_outputs_are_tensors(o):
    if isinstance(o, V):
        return
    if isinstance(o, dict):
        for v in o.values():
            _check_outputs_are_tensors(v)
        return
    if isinstance(o, (tuple, list)):
        for v in o:
            _check_outputs_are_tensors(v)
        return
    raise RuntimeError(f"Tracer cannot infer type of output: only tensors and (nested) tuples, lists or dicts of "
                       f"tensors can be traced outputs, got {type(o).__name__}")


def script(obj, optimize=None, _frames_up=0, _rcb=None, example_inputs=None):
    """torch.jit.script compiles Python source; tensorlib records ops instead and cannot script."""
    raise RuntimeError("tensorlib.jit.script is not supported: tensorlib has no TorchScript compiler. Use "
                       "tensorlib.jit.trace(model, example_inputs), which records the ops a forward runs "
                       "(Python control flow is fixed at the traced path)")


# ------------------------------------------------------------------------------------------------
# save / load: tensorlib.save archives (JSON + .npy, no pickle)
# ------------------------------------------------------------------------------------------------

class _Enc:
    def __init__(self):
        self.arrays = []

    def enc(self, a, where):
        if a is None or isinstance(a, (bool, str)):
            return a
        if isinstance(a, int) and not isinstance(a, bool):
            return a
        if isinstance(a, float):
            return a if math.isfinite(a) else {"F": repr(a)}
        if isinstance(a, V):
            return {"V": list(a.key)}
        if isinstance(a, Sym):
            return {"S": [a.coef, [list(d) for d in a.dims], a.offset]}
        if isinstance(a, tuple):
            return {"T": [self.enc(x, where) for x in a]}
        if isinstance(a, list):
            return [self.enc(x, where) for x in a]
        if isinstance(a, dict):
            return {"D": [[self.enc(k, where), self.enc(v, where)] for k, v in a.items()]}
        if isinstance(a, slice):
            return {"slice": [self.enc(a.start, where), self.enc(a.stop, where), self.enc(a.step, where)]}
        if a is Ellipsis:
            return {"E": 1}
        if isinstance(a, np.dtype) or (isinstance(a, type) and issubclass(a, np.generic)):
            return {"dt": np.dtype(a).name}
        if isinstance(a, _dtype.dtype):
            return {"tdt": np.dtype(a.np).name}
        if isinstance(a, _device_cls):
            return {"dev": str(a)}
        if isinstance(a, np.generic):
            return {"np": [a.dtype.name, self.enc(a.item(), where)]}
        if isinstance(a, np.ndarray):
            self.arrays.append(a)
            return {"A": len(self.arrays) - 1}
        raise TypeError(f"cannot save the traced graph: {where} has a value of type {type(a).__name__}, which "
                        f"the JSON graph format does not hold")


def _dec(a, arrays):
    if isinstance(a, list):
        return [_dec(x, arrays) for x in a]
    if not isinstance(a, dict):
        if a is None or isinstance(a, (bool, int, float, str)):
            return a
        raise ValueError(f"unexpected value {type(a).__name__} in the graph")
    if len(a) != 1:
        raise ValueError("malformed graph entry")
    (tag, v), = a.items()
    if tag == "F":
        if v not in ("nan", "inf", "-inf"):
            raise ValueError("malformed float in the graph")
        return float(v)
    if tag == "V":
        if not (isinstance(v, list) and v and v[0] in ("in", "p", "c", "n")):
            raise ValueError("malformed value reference in the graph")
        return V(*v)
    if tag == "S":
        return Sym(int(v[0]), [(int(i), int(ax)) for i, ax in v[1]], int(v[2]))
    if tag == "T":
        return tuple(_dec(x, arrays) for x in v)
    if tag == "D":
        return {_dec(k, arrays): _dec(x, arrays) for k, x in v}
    if tag == "slice":
        return slice(*(_dec(x, arrays) for x in v))
    if tag == "E":
        return Ellipsis
    if tag == "dt":
        return np.dtype(str(v))
    if tag == "tdt":
        return _dtype.from_np(np.dtype(str(v)))
    if tag == "dev":
        return _device_cls(str(v))
    if tag == "np":
        return np.dtype(str(v[0])).type(_dec(v[1], arrays))
    if tag == "A":
        return arrays[int(v)]
    raise ValueError(f"unknown entry {tag!r} in the graph")


def _graph_to_json(g, kinds):
    e = _Enc()
    nodes = [{"op": n.op, "args": e.enc(n.args, f"op {i} ({n.op})"), "attrs": e.enc(n.attrs, f"op {i} ({n.op})"),
              "n_out": n.n_out, "tuple_out": n.tuple_out,
              "out_meta": [[e.enc(list(s), "meta"), None if d is None else np.dtype(d).name] for s, d in n.out_meta]}
             for i, n in enumerate(g.nodes)]
    doc = {"inputs": [[list(s), np.dtype(d).name, rg] for s, d, rg in g.inputs],
           "args_spec": e.enc(g.args_spec, "the arguments"), "nodes": nodes,
           "steps": [s if type(s) is int else list(s) for s in g.steps],
           "params": kinds, "n_consts": len(g.consts), "output": e.enc(g.output, "the output"),
           "input_names": list(g.input_names)}
    return doc, e.arrays


def save(m, f, _extra_files=None):
    """torch.jit.save: the traced module or function as a tensorlib.save archive (JSON + .npy, no pickle)."""
    if not isinstance(m, _Traced):
        raise TypeError(f"tensorlib.jit.save expects a traced module or function (tensorlib.jit.trace), got "
                        f"{type(m).__name__}")
    if _extra_files:
        raise ValueError("tensorlib.jit.save: _extra_files is not supported")
    import orjson
    from ..serialization import _save_tensorlib_format
    g = m._graph
    if isinstance(m, TracedModule):
        params = m._live_params()
        kinds = {k: ("param" if isinstance(t, Parameter) else "buffer") for k, t in params.items()}
    else:
        params, kinds = g.params, {k: "buffer" for k in g.params}
    doc, arrays = _graph_to_json(g, kinds)
    doc["name"] = m._traced_name
    doc["free_dims"] = m._free_groups
    doc["module"] = isinstance(m, TracedModule)
    tensors = {f"p.{k}": (t.detach() if t is not None else t) for k, t in params.items()}
    tensors.update({f"c.{i}": from_numpy(np.array(c)) for i, c in enumerate(g.consts)})
    tensors.update({f"a.{i}": from_numpy(np.array(a)) for i, a in enumerate(arrays)})
    obj = {"format": FORMAT, "version": VERSION, "graph": orjson.dumps(doc).decode(), "tensors": tensors}
    _save_tensorlib_format(obj, f)       # tensorlib's archive: JSON + .npy (torch.jit.load could not read it anyway)


def load(f, map_location=None, _extra_files=None):
    """torch.jit.load: a module saved by tensorlib.jit.save (read with tensorlib.load, weights_only)."""
    import orjson
    from ..serialization import load as tl_load
    name = os.fspath(f) if isinstance(f, (str, os.PathLike)) else getattr(f, "name", "<file>")
    obj = tl_load(f, map_location=map_location, weights_only=True)
    if not isinstance(obj, dict) or obj.get("format") != FORMAT:
        raise RuntimeError(f"{name}: not a tensorlib.jit.save file (no '{FORMAT}' header)")
    if obj.get("version") != VERSION:
        raise RuntimeError(f"{name}: tensorlib.jit format version {obj.get('version')!r} is not supported "
                           f"(this tensorlib reads version {VERSION})")
    try:
        doc = orjson.loads(obj["graph"])
        tensors = obj["tensors"]
        arrays = [_graph._host(tensors[f"a.{i}"]._data) for i in range(sum(1 for k in tensors if k.startswith("a.")))]
        g = Graph()
        g.inputs = [(tuple(int(x) for x in s), np.dtype(str(d)), bool(rg)) for s, d, rg in doc["inputs"]]
        g.args_spec = _dec(doc["args_spec"], arrays)
        g.args_spec = _spec_from_json(g.args_spec)
        ops = _d.registry()
        for n in doc["nodes"]:
            if n["op"] not in ops:
                raise RuntimeError(f"op {n['op']!r} is not registered in this tensorlib")
            meta = [(tuple(_dec(s, arrays)), None if d is None else np.dtype(str(d))) for s, d in n["out_meta"]]
            g.nodes.append(Node(str(n["op"]), tuple(_dec(n["args"], arrays)), dict(_dec(n["attrs"], arrays)),
                                int(n["n_out"]), bool(n["tuple_out"]), meta))
        g.steps = [s if isinstance(s, int) else tuple(s) for s in doc["steps"]]
        for s in g.steps:
            if not (isinstance(s, int) and 0 <= s < len(g.nodes) or s in (("exit",),) or
                    (isinstance(s, tuple) and len(s) == 3 and s[0] == "enter" and all(isinstance(x, str) for x in s))):
                raise RuntimeError("malformed step list")
        g.consts = [_graph._host(tensors[f"c.{i}"]._data) for i in range(int(doc["n_consts"]))]
        g.output = _dec(doc["output"], arrays)
        g.input_names = [str(x) for x in doc.get("input_names", [])][:len(g.inputs)]
        kinds = doc["params"]
        params = {k: tensors[f"p.{k}"] for k, kind in kinds.items() if kind == "param"}
        buffers = {k: tensors[f"p.{k}"] for k, kind in kinds.items() if kind != "param"}
        g.params = {**params, **buffers}
        free = [[int(i) for i in grp] for grp in doc["free_dims"]]
        label = str(doc["name"])
    except (KeyError, ValueError, TypeError, IndexError, orjson.JSONDecodeError) as e:
        raise RuntimeError(f"{name}: damaged tensorlib.jit file ({type(e).__name__}: {e})") from None
    if doc.get("module", True):
        return TracedModule(g, {k: Parameter(t) for k, t in params.items()}, buffers, free, label)
    return TracedFunction(g, free, label)


def _spec_from_json(s):
    """The args structure comes back with its tuples as lists; put ("kind", payload) pairs back."""
    if isinstance(s, (list, tuple)) and len(s) == 2 and s[0] in ("in", "lit", "tuple", "list", "dict"):
        kind, payload = s
        if kind == "in":
            return ("in", int(payload))
        if kind == "lit":
            return ("lit", payload)
        if kind == "dict":
            return ("dict", [(k, _spec_from_json(v)) for k, v in payload])
        return (kind, [_spec_from_json(x) for x in payload])
    raise ValueError("malformed argument structure")
