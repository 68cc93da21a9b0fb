"""tensorlib.onnx.export: trace one forward through the dispatcher and write it as an ONNX model."""
from __future__ import annotations

import enum
import inspect
import os
import warnings

import numpy as np

from .. import dispatch as _d
from .._tensor import Tensor
from ..ops.creation import from_numpy
from ..jit import _graph
from ..jit._graph import V, Sym, has_sym
from ._symbolic import SYMBOLICS, Unsupported

MIN_OPSET = 13
MAX_OPSET = 21
DEFAULT_OPSET = 17
EXPORTING = 0       # export() calls running (is_in_onnx_export)


class OnnxExporterError(RuntimeError):
    """torch.onnx.errors.OnnxExporterError: the base of the exporter's errors."""


class UnsupportedOperatorError(OnnxExporterError):
    """torch.onnx.errors.UnsupportedOperatorError: an op without a translation at the requested opset."""

    def __init__(self, name, version, reason=None):
        msg = f"Exporting the operator 'aten::{name}' to ONNX opset version {version} is not supported"
        msg += f": {reason}." if reason else "."
        super().__init__(msg)


class TrainingMode(enum.IntEnum):
    EVAL = 0
    PRESERVE = 1
    TRAINING = 2


class OperatorExportTypes(enum.IntEnum):
    ONNX = 0
    ONNX_ATEN = 1
    ONNX_ATEN_FALLBACK = 2
    ONNX_FALLTHROUGH = 3


# ops whose result is not a function of their inputs: never folded into constants
_RANDOM = {"rand", "randn", "randint", "randperm", "bernoulli", "bernoulli_", "normal_", "uniform_", "random_",
           "exponential_", "multinomial", "dropout", "native_dropout", "empty"}


def _np_dtype(dt):
    return np.dtype(dt)


class _Ctx:
    def __init__(self, graph, opset, helper, numpy_helper, export_params, fold, input_names):
        self.g = graph
        self.opset = opset
        self.helper = helper
        self.nh = numpy_helper
        self.export_params = export_params
        self.input_names = input_names
        self.nodes = []
        self.inits = {}                    # name -> TensorProto
        self.names = {}                    # V.key -> ONNX name
        self.folded = {}                   # V.key -> numpy array (constant values)
        self.counter = 0
        self.shape_cache = {}
        self.vec_cache = {}
        self.param_inputs = []             # params as graph inputs (export_params=False)

    # --- names and constants ----------------------------------------------------------------------

    def fresh(self, base):
        self.counter += 1
        return f"/{base}_{self.counter}"

    def const(self, arr, name=None):
        arr = np.asarray(arr)
        if name is None:
            self.counter += 1
            name = f"onnx::Constant_{self.counter}"
        if name not in self.inits:
            self.inits[name] = self.nh.from_array(np.array(arr, order="C"), name)
        return name

    def tensor_attr(self, arr):
        return self.nh.from_array(np.asarray(arr))

    def scalar(self, v, dtype, rank0=False):
        dt = _np_dtype(dtype) if dtype is not None else np.dtype(np.float32)
        a = np.array(v, dtype=dt)
        key = ("s", a.tobytes(), str(dt), rank0)
        if key not in self.vec_cache:
            self.vec_cache[key] = self.const(a if rank0 else a.reshape(()))
        return self.vec_cache[key]

    def op(self, op_type, inputs, n_out=1, **attrs):
        outs = [self.fresh(op_type) for _ in range(n_out)]
        self.nodes.append(self.helper.make_node(op_type, list(inputs), outs, name=self.fresh(op_type + "_node"),
                                                **attrs))
        return outs[0] if n_out == 1 else outs

    def cast_to(self, name, dtype):
        if dtype is None:
            return name
        to = self.helper.np_dtype_to_tensor_dtype(_np_dtype(dtype))
        return self.op("Cast", [name], to=int(to))

    def reduce(self, op_type, x, axes, keepdims):
        if op_type in ("ReduceSum",) or self.opset >= 18:
            return self.op(op_type, [x, self.ivec(axes)], keepdims=int(keepdims))
        return self.op(op_type, [x], axes=list(axes), keepdims=int(keepdims))

    # --- shapes ------------------------------------------------------------------------------------

    def meta(self, v):
        k = v.key
        if k[0] == "in":
            s, d, _ = self.g.inputs[k[1]]
            return s, d
        if k[0] == "p":
            t = self.g.params[k[1]]
            return tuple(t.shape), t._data.dtype
        if k[0] == "c":
            c = self.g.consts[k[1]]
            return c.shape, c.dtype
        return self.g.nodes[k[1]].out_meta[k[2]]

    def shape(self, v):
        return self.meta(v)[0]

    def dtype(self, v):
        return self.meta(v)[1]

    def rank(self, v):
        return len(self.meta(v)[0])

    def dim(self, i, axis):
        key = (i, axis)
        if key not in self.shape_cache:
            s = self.op("Shape", [self.input_names[i]])
            self.shape_cache[key] = self.op("Gather", [s, self.ivec([axis])], axis=0)
        return self.shape_cache[key]

    def sym(self, s):
        """A Sym as a 1-element int64 tensor."""
        v = None
        for i, a in s.dims:
            d = self.dim(i, a)
            v = d if v is None else self.op("Mul", [v, d])
        if s.coef != 1:
            v = self.op("Mul", [v, self.ivec([s.coef])])
        if s.offset:
            v = self.op("Add", [v, self.ivec([s.offset])])
        return v

    def ivec(self, entries, scalar=False):
        if isinstance(entries, (int, np.integer, Sym)):
            entries = [entries]
        if not has_sym(entries):
            a = np.array(entries, dtype=np.int64)
            if scalar:
                a = a.reshape(())
            key = ("v", a.tobytes(), a.shape)
            if key not in self.vec_cache:
                self.vec_cache[key] = self.const(a)
            return self.vec_cache[key]
        parts, run = [], []
        for e in entries:
            if isinstance(e, Sym):
                if run:
                    parts.append(self.ivec(run))
                    run = []
                parts.append(self.sym(e))
            else:
                run.append(int(e))
        if run:
            parts.append(self.ivec(run))
        v = parts[0] if len(parts) == 1 else self.op("Concat", parts, axis=0)
        if scalar:
            v = self.op("Squeeze", [v, self.ivec([0])])
        return v

    # --- values -----------------------------------------------------------------------------------

    def value(self, a):
        """The ONNX name of a graph value (constants become initializers on first use)."""
        k = a.key
        if k in self.names:
            return self.names[k]
        if k[0] == "p":
            if not self.export_params:
                raise OnnxExporterError(f"parameter {k[1]} is not an input")   # bound in export()
            name = k[1]
            self.const(_graph._host(self.g.params[k[1]]._data), name)
        elif k[0] == "c":
            name = self.const(self.g.consts[k[1]], f"onnx::Const_{k[1]}")
        elif k in self.folded:
            name = self.const(self.folded[k], f"onnx::Folded_{k[1]}_{k[2]}")
        else:
            raise OnnxExporterError(f"value {a!r} is used before it is computed")
        self.names[k] = name
        return name

    def arg(self, a):
        if isinstance(a, V):
            return self.value(a)
        if isinstance(a, (list, tuple)):
            return type(a)(self.arg(x) for x in a)
        return a

    def operands(self, node, a, b, compare=False):
        """Binary operands as ONNX names of one dtype (torch's promotion: the result's, or for a
        comparison the promoted operand dtype)."""
        dt = node.out_meta[0][1]
        if compare:
            metas = [self.dtype(x) for x in node.args[:2] if isinstance(x, V)]
            dt = np.result_type(*metas) if len(metas) == 2 else metas[0]
            scalars = [x for x in node.args[:2] if not isinstance(x, V)]
            if scalars and isinstance(scalars[0], float) and np.dtype(dt).kind in "biu":
                dt = np.float32        # an integer tensor against a float: compared as floats, as torch does
        out = []
        for raw, name in ((node.args[0], a), (node.args[1], b)):
            if isinstance(raw, V):
                out.append(name if np.dtype(self.dtype(raw)) == np.dtype(dt) else self.cast_to(name, dt))
            else:
                out.append(self.scalar(raw, dt))
        return out

    def is_const(self, a):
        if isinstance(a, V):
            k = a.key
            if k[0] == "c":
                return True
            if k[0] == "p":
                return self.export_params
            if k[0] == "n":
                return k in self.folded
            return False
        if isinstance(a, (list, tuple)):
            return all(self.is_const(x) for x in a)
        return True


def _const_value(ctx, a):
    k = a.key
    if k[0] == "p":
        return ctx.g.params[k[1]]
    if k[0] == "c":
        return from_numpy(ctx.g.consts[k[1]].copy())
    return from_numpy(ctx.folded[k].copy())


_PARAM_VIEWS = frozenset({"t", "transpose", "permute"})


def _views_a_parameter(node):
    """linear's t(weight): kept as a Transpose of the named initializer, not folded into an anonymous copy of
    the weight (the exported file names every parameter, as torch's does)."""
    return node.op in _PARAM_VIEWS and isinstance(node.args[0], V) and node.args[0].key[0] == "p"


def _fold(ctx, node, ops):
    """Evaluate a node whose inputs are all constants (torch's do_constant_folding)."""

    def res(a):
        if isinstance(a, V):
            return _const_value(ctx, a)
        if isinstance(a, (list, tuple)):
            return type(a)(res(x) for x in a)
        return a
    out = _d.dispatch(ops[node.op], *res(node.args), **{k: res(v) for k, v in node.attrs.items()})
    return out if node.tuple_out else (out,)


_TORCH_ONLY = {"dynamo", "external_data", "dynamic_shapes", "custom_translation_table", "report", "optimize",
               "verify", "profile", "dump_exported_program", "artifacts_dir", "custom_opsets",
               "export_modules_as_functions", "autograd_inlining"}


def export(model, args=(), f=None, *, kwargs=None, verbose=None, input_names=None, output_names=None,
           opset_version=None, export_params=True, keep_initializers_as_inputs=False, dynamic_axes=None,
           training=TrainingMode.EVAL, operator_export_type=OperatorExportTypes.ONNX, do_constant_folding=True,
           **unsupported):
    """torch.onnx.export (the TorchScript-style exporter, `dynamo=False`): runs `model(*args)` once with a
    tracing hook on the dispatcher and writes the recorded ops as an ONNX graph to `f` (a path or a binary
    file object), parameters as initializers. Returns the `onnx.ModelProto`.

    dynamic_axes: {input or output name: {axis: name} or [axes]}. The model is traced once more per dynamic
    axis with that axis one larger; sizes that follow it (reshape targets, zeros(...) shapes) are computed in
    the graph from the input's shape. An axis whose size changes which ops run cannot be dynamic (error)."""
    for k in unsupported:
        if k in _TORCH_ONLY:
            raise TypeError(f"tensorlib.onnx.export: argument {k!r} is not supported (tensorlib exports by "
                            f"tracing through its dispatcher, as torch.onnx.export(..., dynamo=False)); remove it")
        raise TypeError(f"export() got an unexpected keyword argument {k!r}")
    try:
        import onnx
        from onnx import helper, numpy_helper
    except ImportError:
        raise ImportError("tensorlib.onnx.export needs the onnx package: pip install 'tensorlib-profiler[onnx]' "
                          "(or pip install onnx)") from None
    opset = DEFAULT_OPSET if opset_version is None else opset_version
    if not isinstance(opset, int) or isinstance(opset, bool) or not MIN_OPSET <= opset <= MAX_OPSET:
        raise ValueError(f"Unsupported ONNX opset version: {opset_version}. tensorlib.onnx.export supports opset "
                         f"versions {MIN_OPSET} to {MAX_OPSET}")
    if operator_export_type != OperatorExportTypes.ONNX:
        raise ValueError(f"operator_export_type={operator_export_type!r} is not supported: tensorlib exports "
                         f"standard ONNX operators only (OperatorExportTypes.ONNX)")
    if training not in (TrainingMode.EVAL, TrainingMode.PRESERVE, TrainingMode.TRAINING):
        raise ValueError(f"training must be a tensorlib.onnx.TrainingMode, got {training!r}")
    if isinstance(args, Tensor):
        args = (args,)
    elif isinstance(args, list):
        args = tuple(args)
    if not isinstance(args, tuple):
        raise TypeError(f"args must be a tuple of inputs (or a single Tensor), got {type(args).__name__}")
    if args and isinstance(args[-1], dict) and kwargs is None:
        args, kwargs = args[:-1], args[-1]
    if kwargs:
        raise ValueError("tensorlib.onnx.export: keyword inputs (kwargs) are not supported; pass the inputs "
                         "positionally in args")
    for i, a in enumerate(args):
        bad = _non_tensor_leaf(a)
        if bad is not None:
            raise ValueError(f"tensorlib.onnx.export: input {i} is a {type(a).__name__}"
                             f"{' holding a ' + type(bad).__name__ if bad is not a else ''}; only Tensor inputs "
                             f"(or tuples and lists of them) can be graph inputs")

    from ..nn.modules.module import Module
    is_module = isinstance(model, Module)
    was_training = model.training if is_module else False
    if is_module and training == TrainingMode.EVAL:
        model.train(False)
    elif is_module and training == TrainingMode.TRAINING:
        model.train(True)
    global EXPORTING
    EXPORTING += 1
    try:
        graph = _trace_for_export(model, args, input_names, output_names, dynamic_axes)
    finally:
        EXPORTING -= 1
        if is_module:
            model.train(was_training)
    g, in_names, out_names, dyn = graph
    model_proto = _emit(g, opset, onnx, helper, numpy_helper, bool(export_params), bool(do_constant_folding),
                        in_names, out_names, dyn, bool(keep_initializers_as_inputs))
    onnx.checker.check_model(model_proto)
    if verbose:
        print(helper.printable_graph(model_proto.graph))
    if f is not None:
        data = model_proto.SerializeToString()
        if isinstance(f, (str, os.PathLike)):
            from safeio import write_bytes
            write_bytes(f, data)
        elif hasattr(f, "write"):
            f.write(data)
        else:
            raise TypeError(f"f must be a path or a binary file object, got {type(f).__name__}")
    return model_proto


def _non_tensor_leaf(a):
    """The first leaf of an input that is not a Tensor (None when all are): an input is a Tensor or a tuple or
    list of inputs, as torch's exporter flattens `(x, (h, c))` into three graph inputs."""
    if isinstance(a, Tensor):
        return None
    if isinstance(a, (tuple, list)) and not hasattr(a, "_fields"):
        for x in a:
            bad = _non_tensor_leaf(x)
            if bad is not None:
                return bad
        return None
    return a


def _default_input_names(model, args):
    """The forward's parameter names, one per graph input; a tuple or list argument's tensors are named by
    their path, as torch.export names them (word_language_model's `hidden=(h, c)`: hidden_0, hidden_1)."""
    fn = getattr(model, "forward", model)
    try:
        params = [p.name for p in inspect.signature(fn).parameters.values()
                  if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    except (TypeError, ValueError):
        params = []
    names: list[str] = []

    def leaves(a, name):
        if isinstance(a, Tensor):
            names.append(name)
        else:
            for j, x in enumerate(a):
                leaves(x, f"{name}_{j}")
    for i, a in enumerate(args):
        leaves(a, params[i] if i < len(params) else f"input_{i}")
    return names


def _trace_for_export(model, args, input_names, output_names, dynamic_axes):
    from ..nn.modules.module import Module
    params = {}
    if isinstance(model, Module):
        params.update(dict(model.named_parameters()))
        for k, b in model.named_buffers():
            params.setdefault(k, b)
    g, out = _graph.record(model, args, params)
    flat: list = []
    spec = _graph._flatten(tuple(args), flat)       # the graph's inputs: the tensors of args, nested ones too
    names = list(input_names or [])
    if len(names) > len(flat):
        raise ValueError(f"input_names has {len(names)} names but the model takes {len(flat)} inputs")
    names += _default_input_names(model, args)[len(names):]
    flat_out = []
    _flat_outputs(g.output, flat_out)
    onames = list(output_names or [])
    if len(onames) > len(flat_out):
        raise ValueError(f"output_names has {len(onames)} names but the model returns {len(flat_out)} tensors")
    onames += [f"output_{i}" if i else "output" for i in range(len(onames), len(flat_out))]
    if len(flat_out) == 1 and not output_names:
        onames = ["output"]
    dyn = _dynamic_axes(dynamic_axes, names, onames, g)
    by_symbol: dict = {}
    for (kind, i), axes in dyn.items():
        if kind == "in":
            for axis, sym_name in axes.items():
                by_symbol.setdefault(sym_name, []).append((i, axis))
    probes = []
    for sym_name, dims in by_symbol.items():
        grown = list(flat)
        for i, axis in dims:
            grown[i] = _graph.grown(grown[i], axis)
        probe_args = _graph.unflatten(spec, grown)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", _graph.TracerWarning)
            try:
                g2, _ = _graph.record(model, tuple(probe_args), params)
            except Exception as e:  # noqa: BLE001 - the model's own error, reported with the axis it came from
                raise OnnxExporterError(f"dynamic axis {sym_name!r}: the model fails when that size changes "
                                        f"({type(e).__name__}: {e}); it cannot be dynamic") from e
        probes.append((dims, g2))
    if probes:
        try:
            _graph.generalize(g, probes)
        except _graph.GraphMismatch as e:
            raise OnnxExporterError(f"dynamic axes {list(by_symbol)}: the traced ops change with the size of "
                                    f"these axes ({e}): Python control flow or an unrolled loop depends on them, "
                                    f"so they cannot be dynamic") from None
        except ValueError as e:
            raise OnnxExporterError(f"dynamic axes {list(by_symbol)}: {e}") from None
    return g, names, onames, dyn


def _flat_outputs(o, out):
    if isinstance(o, V):
        out.append(o)
    elif isinstance(o, dict):
        for v in o.values():
            _flat_outputs(v, out)
    elif isinstance(o, (tuple, list)):
        for v in o:
            _flat_outputs(v, out)
    else:
        raise OnnxExporterError(f"the model returns a {type(o).__name__}; only tensors (in tuples, lists or "
                                f"dicts) can be graph outputs")


def _dynamic_axes(dynamic_axes, in_names, out_names, g):
    dyn = {}
    if not dynamic_axes:
        return dyn
    for key, axes in dynamic_axes.items():
        if key in in_names:
            where = ("in", in_names.index(key))
            nd = len(g.inputs[where[1]][0])
        elif key in out_names:
            where = ("out", out_names.index(key))
            nd = None
        else:
            raise ValueError(f"dynamic_axes names {key!r}, which is neither an input name {in_names} nor an "
                             f"output name {out_names}")
        if isinstance(axes, dict):
            m = {int(a): str(n) for a, n in axes.items()}
        elif isinstance(axes, (list, tuple)):
            m = {int(a): f"{key}_dynamic_axes_{j + 1}" for j, a in enumerate(axes)}
        else:
            raise TypeError(f"dynamic_axes[{key!r}] must be a dict {{axis: name}} or a list of axes")
        if nd is not None:
            for a in m:
                if not -nd <= a < nd:
                    raise ValueError(f"dynamic_axes[{key!r}]: axis {a} is out of range for an input of "
                                     f"{nd} dimensions")
            m = {a % nd: n for a, n in m.items()}
        dyn[where] = m
    return dyn


def _check_inplace(g, opset):
    """An in-place op becomes a new ONNX value; that is right unless another tensor shares the target's
    memory (a view of it, or what it views) and is read after the update: refused, naming the op."""
    parent: dict = {}

    def find(k):
        while parent.get(k, k) != k:
            k = parent[k]
        return k

    def keys(a, out):
        if isinstance(a, V):
            out.append(a.key)
        elif isinstance(a, (list, tuple)):
            for x in a:
                keys(x, out)
        return out
    last_use: dict = {}
    for i, n in enumerate(g.nodes):
        for k in keys(n.args, []) + keys(list(n.attrs.values()), []):
            last_use[k] = i
    for k in keys(_out_list(g.output), []):
        last_use[k] = len(g.nodes)
    for i, n in enumerate(g.nodes):
        first = n.args[0] if n.args else None
        if n.op in _graph.VIEW_OPS and isinstance(first, V):
            for j in range(n.n_out):
                parent[find(("n", i, j))] = find(first.key)
        elif n.op.endswith("_") and isinstance(first, V):
            root = find(first.key)
            shared = [k for k in list(parent) + list({find(k) for k in parent}) if k != first.key and find(k) == root]
            if any(last_use.get(k, -1) > i for k in shared):
                raise UnsupportedOperatorError(n.op, opset, "it updates in place a tensor that shares memory with "
                                                            "another one read later (a view); use the out-of-place op")
            parent[("n", i, 0)] = root


def _out_list(o):
    out: list = []
    if isinstance(o, V):
        out.append(o)
    elif isinstance(o, dict):
        out.extend(o.values())
    elif isinstance(o, (list, tuple)):
        out.extend(o)
    return out


def _emit(g, opset, onnx, helper, numpy_helper, export_params, fold, in_names, out_names, dyn, keep_inits):
    _check_inplace(g, opset)
    ctx = _Ctx(g, opset, helper, numpy_helper, export_params, fold, in_names)
    ops = _d.registry()
    for i, n in enumerate(in_names):
        ctx.names[("in", i)] = n
    if not export_params:
        for k in g.params:
            ctx.names[("p", k)] = k
    for i, node in enumerate(g.nodes):
        if fold and node.op not in _RANDOM and not has_sym(node.args) and not has_sym(node.attrs) \
                and ctx.is_const(node.args) and ctx.is_const(tuple(node.attrs.values())) \
                and not _views_a_parameter(node):
            outs = _fold(ctx, node, ops)
            for j, o in enumerate(outs):
                if isinstance(o, Tensor):
                    ctx.folded[("n", i, j)] = _graph._host(o._data)
            continue
        fn = SYMBOLICS.get(node.op.rstrip("_") if node.op not in SYMBOLICS else node.op)
        if fn is None:
            raise UnsupportedOperatorError(node.op, opset)
        args = tuple(ctx.arg(a) for a in node.args)
        attrs = {k: ctx.arg(v) for k, v in node.attrs.items()}
        try:
            outs = fn(ctx, node, args, attrs)
        except Unsupported as e:
            raise UnsupportedOperatorError(node.op, opset, str(e)) from None
        for j, o in enumerate(outs):
            if o is not None:
                ctx.names[("n", i, j)] = o
    flat_out = []
    _flat_outputs(g.output, flat_out)
    # graph outputs: renamed by Identity nodes (a value may be an input, a constant or returned twice)
    outputs = []
    for k, (v, name) in enumerate(zip(flat_out, out_names)):
        if v.key not in ctx.names and v.key[0] == "n" and v.key not in ctx.folded:
            raise UnsupportedOperatorError(g.nodes[v.key[1]].op, opset, "its secondary output is not exported")
        src = ctx.value(v)
        ctx.nodes.append(helper.make_node("Identity", [src], [name], name=f"/output_{k}"))
        shape, dt = ctx.meta(v)
        dims = _dims_proto(shape, dyn.get(("out", k), {}))
        outputs.append(helper.make_tensor_value_info(name, helper.np_dtype_to_tensor_dtype(np.dtype(dt)), dims))
    inputs = []
    for i, (shape, dt, _) in enumerate(g.inputs):
        dims = _dims_proto(shape, dyn.get(("in", i), {}))
        inputs.append(helper.make_tensor_value_info(in_names[i], helper.np_dtype_to_tensor_dtype(np.dtype(dt)),
                                                    dims))
    if not export_params:
        used = {x for n in ctx.nodes for x in n.input}
        for k, t in g.params.items():
            if k in used:
                inputs.append(helper.make_tensor_value_info(
                    k, helper.np_dtype_to_tensor_dtype(np.dtype(t._data.dtype)), list(t.shape)))
    used = {x for n in ctx.nodes for x in n.input}
    inits = [t for name, t in ctx.inits.items() if name in used]
    if keep_inits:
        inputs += [helper.make_tensor_value_info(t.name, t.data_type, list(t.dims)) for t in inits]
    graph = helper.make_graph(ctx.nodes, "main_graph", inputs, outputs, initializer=inits)
    model = helper.make_model(graph, producer_name="tensorlib",
                              opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = min(model.ir_version, 8 if opset <= 17 else 9 if opset <= 19 else 10)
    return model


def _dims_proto(shape, names):
    out = []
    for a, s in enumerate(shape):
        if a in names:
            out.append(names[a])
        elif isinstance(s, Sym):
            out.append(None)
        else:
            out.append(int(s))
    return out
