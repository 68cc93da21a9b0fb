"""tensorlib.compile (torch.compile): inference replays a traced graph as generated straight-line code.

The first call records one forward through the dispatcher (tensorlib.jit's tracer) and generates a Python
function with one `dispatch(op, ...)` per recorded op, parameters, buffers and literals bound as globals.
What it saves over eager: nn.Module's call machinery (hooks, regions, the name stack), the functional
wrappers' argument checks and conversions, and fresh memory: each temporary is deleted right after its
last use (the allocator hands its warm buffer to the next op), and an elementwise op on a large temporary
used nowhere else runs in place (`relu` as `relu_`, `add` as `add_`), reusing that buffer outright.

Guards, checked on every call: gradients disabled (no_grad / inference_mode), the module's training flag,
and each input's shape, dtype, device and requires_grad as traced. When one fails, or the forward takes
Python values from tensors (data-dependent control flow, which a trace cannot follow), the call runs the
model eagerly and a warning says so once per reason. Ops run through the dispatcher, so the profiler sees
them (inside one "Torch-Compiled Region" range) and results equal eager's.
"""
from __future__ import annotations

import builtins
import functools
import warnings

import numpy as np

from . import dispatch as _d
from ._tensor import Tensor
from .autograd.grad_mode import is_grad_enabled
from .jit import _graph
from .jit._graph import V
from .nn.modules import module as _module_mod
from .nn.modules.module import Module

__all__ = ["compile", "OptimizedModule"]

BACKENDS = ("inductor", "eager")
MODES = (None, "default")

_VIEWS = _graph.VIEW_OPS
# ops that always return a new buffer for output 0
_FRESH = {"linear", "conv1d", "conv2d", "matmul", "mm", "bmm", "addmm", "add", "sub", "mul", "div", "relu", "sigmoid",
          "tanh", "gelu", "silu", "exp", "log", "sqrt", "neg", "softmax", "log_softmax", "layer_norm", "batch_norm",
          "group_norm", "max_pool2d", "avg_pool2d", "adaptive_avg_pool2d", "mean", "sum", "cat", "stack", "clone",
          "embedding", "pow", "leaky_relu", "elu"}
# out-of-place op -> in-place variant over its first argument (same shape and dtype as the result)
_INPLACE = {"relu": "relu_", "sigmoid": "sigmoid_", "tanh": "tanh_", "exp": "exp_", "log": "log_", "sqrt": "sqrt_",
            "add": "add_", "sub": "sub_", "mul": "mul_", "div": "div_"}
_COMMUTATIVE = {"add", "mul"}
# below this many elements an allocation costs less than the in-place path's extra checks (measured with
# benchmarks/compile.py-style timing: in place was slower on 4096- and 8192-element ReLUs, faster on 65536)
_INPLACE_MIN_NUMEL = 16384


def _uses(g):
    """For each node output: the step indices of the nodes that use it (and whether a view op or the output
    takes it)."""
    uses: dict = {}
    aliased = set()

    def walk(a, i, op):
        if isinstance(a, V):
            uses.setdefault(a.key, []).append(i)
            if op in _VIEWS or op not in _FRESH and op not in _INPLACE:
                aliased.add(a.key)
        elif isinstance(a, (list, tuple)):
            for x in a:
                walk(x, i, op)
        elif isinstance(a, dict):
            for x in a.values():
                walk(x, i, op)
    for i, n in enumerate(g.nodes):
        walk(n.args, i, n.op)
        walk(n.attrs, i, n.op)
    out: list = []
    _flat(g.output, out)
    for v in out:
        aliased.add(v.key)
    return uses, aliased


def _flat(o, out):
    if isinstance(o, V):
        out.append(o)
    elif isinstance(o, dict):
        for v in o.values():
            _flat(v, out)
    elif isinstance(o, (list, tuple)):
        for v in o:
            _flat(v, out)


def _reusable(g, key, i, uses, aliased):
    """Whether node i may overwrite value `key`: a fresh temporary whose only use is node i."""
    if key[0] != "n" or key in aliased:
        return False
    src = g.nodes[key[1]]
    if src.op not in _FRESH:
        return False
    return uses.get(key) == [i]


def _plan_inplace(g):
    """node index -> (in-place op name, args) for the nodes that can reuse an input's buffer."""
    uses, aliased = _uses(g)
    plan = {}
    for i, n in enumerate(g.nodes):
        ip = _INPLACE.get(n.op)
        if ip is None or n.n_out != 1 or len(n.args) < 1:
            continue
        meta = n.out_meta[0]
        if int(np.prod(meta[0])) < _INPLACE_MIN_NUMEL:
            continue
        args = list(n.args)
        for k in ((0, 1) if n.op in _COMMUTATIVE and len(args) == 2 else (0,)):
            a = args[k]
            if not isinstance(a, V) or not _reusable(g, a.key, i, uses, aliased):
                continue
            src = g.nodes[a.key[1]].out_meta[a.key[2]]
            if tuple(src[0]) != tuple(meta[0]) or src[1] != meta[1]:
                continue
            if k == 1:
                if n.attrs:
                    continue
                args = [args[1], args[0]]
            plan[i] = (ip, tuple(args))
            break
    return plan


def _codegen(g, params, ops, name):
    """A Python function running g's ops as straight-line code. Every value that is not a local tensor is a
    global of the function (no literal is written into the source), so the code is made from identifiers
    and the op order only."""
    plan = _plan_inplace(g)
    gl = {"_D": _d.dispatch}
    lines = []
    counter = [0]

    def glob(obj, prefix):
        counter[0] += 1
        k = f"{prefix}{counter[0]}"
        gl[k] = obj
        return k

    names = {}
    for i in range(len(g.inputs)):
        names[("in", i)] = f"x{i}"
    for k, t in params.items():
        names[("p", k)] = glob(t, "p")
    for k, t in enumerate(g.const_tensors()):
        names[("c", k)] = glob(t, "c")

    def expr(a):
        if isinstance(a, V):
            return names[a.key]
        if isinstance(a, list):
            return "[" + ", ".join(expr(x) for x in a) + "]"
        if isinstance(a, tuple) and _has_v(a):
            return "(" + ", ".join(expr(x) for x in a) + ",)"
        return glob(a, "k")

    # each local is deleted after its last use, as eager code drops its temporaries: the allocator then hands
    # their (warm) memory to the next op instead of fresh pages
    last = {}
    for i, n in enumerate(g.nodes):
        for v in _vs((plan.get(i, (n.op, n.args))[1], n.attrs)):
            if v.key[0] in ("n", "in"):
                local = f"t{v.key[1]}" if v.key[0] == "n" and g.nodes[v.key[1]].tuple_out else \
                    f"v{v.key[1]}" if v.key[0] == "n" else f"x{v.key[1]}"
                last[local] = i
    kept: list = []
    _flat(g.output, kept)
    for v in kept:
        for local in list(last):
            if v.key[0] == "n" and local in (f"t{v.key[1]}", f"v{v.key[1]}") or v.key[0] == "in" and \
                    local == f"x{v.key[1]}":
                del last[local]
    dels: dict = {}
    for local, i in last.items():
        dels.setdefault(i, []).append(local)

    op_globals = {}
    for i, n in enumerate(g.nodes):
        op_name, args = plan.get(i, (n.op, n.args))
        if op_name not in op_globals:
            op_globals[op_name] = glob(ops[op_name], "op")
        call = [op_globals[op_name]] + [expr(a) for a in args]
        if n.attrs:
            if _has_v(tuple(n.attrs.values())):
                call.append("**{" + ", ".join(f"{k!r}: {expr(v)}" for k, v in n.attrs.items()
                                              if k.isidentifier()) + "}")
            else:
                call.append("**" + glob(dict(n.attrs), "a"))
        target = f"t{i}" if n.tuple_out else f"v{i}"
        lines.append(f"    {target} = _D({', '.join(call)})")
        if n.tuple_out:
            for j in range(n.n_out):
                names[("n", i, j)] = f"{target}[{j}]"
        else:
            names[("n", i, 0)] = target
        if i in dels:
            lines.append(f"    del {', '.join(sorted(dels[i]))}")

    def out_expr(o):
        if isinstance(o, V):
            return names[o.key]
        if isinstance(o, dict):
            return "{" + ", ".join(f"{glob(k, 'k')}: {out_expr(v)}" for k, v in o.items()) + "}"
        if isinstance(o, list):
            return "[" + ", ".join(out_expr(x) for x in o) + "]"
        if isinstance(o, tuple):
            return "(" + ", ".join(out_expr(x) for x in o) + ",)"
        return glob(o, "k")
    lines.append(f"    return {out_expr(g.output)}")
    src = f"def compiled({', '.join(f'x{i}' for i in range(len(g.inputs)))}):\n" + "\n".join(lines) + "\n"
    code = builtins.compile(src, f"<tensorlib.compile {name}>", "exec")
    exec(code, gl)     # noqa: S102 - source made above from identifiers only
    fn = gl["compiled"]
    fn.source = src
    fn.inplace = len(plan)
    return fn


def _vs(a):
    if isinstance(a, V):
        yield a
    elif isinstance(a, (list, tuple)):
        for x in a:
            yield from _vs(x)
    elif isinstance(a, dict):
        for x in a.values():
            yield from _vs(x)


def _has_v(a):
    if isinstance(a, V):
        return True
    if isinstance(a, (list, tuple)):
        return any(_has_v(x) for x in a)
    if isinstance(a, dict):
        return any(_has_v(x) for x in a.values())
    return False


class _Compiled:
    """The compiled form of one callable for one guard key."""

    def __init__(self, fn, key, n_inputs, buffers):
        self.fn = fn
        self.key = key
        self.n_inputs = n_inputs
        self.buffers = buffers          # [(dict, name, tensor)]: buffers bound by object (replaced by .to())


def _guard_key(tensors, training):
    return (training,) + tuple((tuple(t.shape), t._data.dtype, type(t._data), t.requires_grad) for t in tensors)


def _describe(old, new):
    if old[0] != new[0]:
        return f"the module's training flag changed ({old[0]} -> {new[0]})"
    if len(old) != len(new):
        return f"the number of tensor inputs changed ({len(old) - 1} -> {len(new) - 1})"
    for i, (a, b) in enumerate(zip(old[1:], new[1:])):
        if a[0] != b[0]:
            return f"input {i} has shape {list(b[0])}, compiled for {list(a[0])}"
        if a[1] != b[1]:
            return f"input {i} has dtype {b[1]}, compiled for {a[1]}"
        if a[2] is not b[2]:
            return f"input {i} is on another device than the compiled one"
        if a[3] != b[3]:
            return f"input {i} has requires_grad={b[3]}, compiled for {a[3]}"
    return "a guard failed"


class _Runner:
    def __init__(self, fn, name, fullgraph, backend):
        self.fn = fn
        # the module whose parameters and buffers the replay binds: fn itself, or the module of a bound method
        # (Module.compile compiles its module's _call_impl)
        owner = getattr(fn, "__self__", None)
        self.module = fn if isinstance(fn, Module) else owner if isinstance(owner, Module) else None
        self.name = name
        self.fullgraph = fullgraph
        self.backend = backend
        self.compiled = None
        self.eager_only = None       # the reason this callable always runs eagerly (e.g. data-dependent flow)
        self.warned = set()

    def _eager(self, reason, args, kwargs):
        if reason not in self.warned:
            self.warned.add(reason)
            warnings.warn(f"tensorlib.compile: running {self.name} eagerly: {reason}", UserWarning, stacklevel=4)
        return self.fn(*args, **kwargs)

    def __call__(self, args, kwargs):
        if self.backend == "eager":
            return self.fn(*args, **kwargs)
        if is_grad_enabled():
            return self._eager("gradients are enabled (training); the compiled graph runs under no_grad() or "
                               "inference_mode()", args, kwargs)
        if self.eager_only is not None:
            return self._eager(self.eager_only, args, kwargs)
        if kwargs or not all(isinstance(a, Tensor) for a in args):
            return self._eager("the call passes keyword or non-tensor arguments; the compiled graph takes "
                               "tensors positionally", args, kwargs)
        training = getattr(self.module, "training", None)
        key = _guard_key(args, training)
        c = self.compiled
        if c is not None and c.key == key and all(d.get(k) is t for d, k, t in c.buffers):
            with _d.record_range("Torch-Compiled Region: 0/0"):
                return c.fn(*args)
        if c is not None and c.key != key:
            return self._eager(f"a guard failed: {_describe(c.key, key)} (compiled once, for the first call's "
                               f"inputs)", args, kwargs)
        return self._compile(args, key)

    def _compile(self, args, key):
        fn = self.fn
        mod = self.module
        params, buffers, bound = {}, {}, []
        if mod is not None:
            params = dict(mod.named_parameters())
            for mod_name, m in mod.named_modules():
                for k, b in m._buffers.items():
                    if b is not None:
                        full = f"{mod_name}.{k}" if mod_name else k
                        buffers.setdefault(full, b)
                        bound.append((m._buffers, k, b))
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", _graph.TracerWarning)
            g, out = _graph.record(fn, args, {**params, **buffers})
        flow = [w for w in caught if issubclass(w.category, _graph.TracerWarning)]
        for w in caught:
            if not issubclass(w.category, _graph.TracerWarning):
                warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
        if flow:
            reason = ("its forward takes Python values from tensors (data-dependent control flow), which a "
                      "traced graph cannot follow")
            if self.fullgraph:
                raise RuntimeError(f"tensorlib.compile(fullgraph=True): {self.name}: {reason}: "
                                   f"{flow[0].message}")
            self.eager_only = reason
            warnings.warn(f"tensorlib.compile: running {self.name} eagerly: {reason}", UserWarning, stacklevel=3)
            self.warned.add(reason)
            return out
        try:
            code = _codegen(g, {**params, **buffers}, _d.registry(), self.name)
        except KeyError as e:
            raise RuntimeError(f"tensorlib.compile: {self.name}: op {e} is not in the dispatcher's registry") from None
        self.compiled = _Compiled(code, key, len(args), bound)
        return out          # the traced call's own result: the first call runs eagerly once


class OptimizedModule(Module):
    """torch._dynamo.eval_frame.OptimizedModule: wraps the module as `_orig_mod` (state-dict keys are
    prefixed "_orig_mod.", as torch's)."""

    def __init__(self, mod, runner):
        super().__init__()
        self._orig_mod = mod
        object.__setattr__(self, "_runner", runner)

    def __call__(self, *args, **kwargs):
        return self._runner(args, kwargs)

    def forward(self, *args, **kwargs):
        return self._runner(args, kwargs)

    def __getattr__(self, name):
        """The wrapped module's attributes read through the wrapper, as torch's (`compiled.pos_emb`,
        `compiled.config`): what the wrapper itself lacks is looked up on `_orig_mod`."""
        modules = self.__dict__.get("_modules")
        if modules is None or "_orig_mod" not in modules:
            raise AttributeError(f"'{type(self).__name__}' object has no attribute '{name}'")
        if name == "_orig_mod":
            return modules["_orig_mod"]
        return getattr(modules["_orig_mod"], name)

    def train(self, mode=True):
        self._orig_mod.train(mode)
        return Module.train(self, mode)

    @property
    def compiled_source(self):
        """The generated code (None before the first compiled call)."""
        c = self._runner.compiled
        return None if c is None else c.fn.source

    def __repr__(self):
        return "OptimizedModule(\n  (_orig_mod): " + "\n  ".join(repr(self._orig_mod).split("\n")) + "\n)"


_UNSUPPORTED = ("recompile_limit", "isolate_recompiles", "shapes_spec", "name")


def compile(model=None, *, fullgraph=False, dynamic=None, backend="inductor", mode=None, options=None,
            disable=False, **unsupported):
    """torch.compile for inference: see the module docstring. `backend`: "inductor" (the default: the
    generated replay) or "eager" (no compilation, the model as it is); `mode`: None or "default";
    `fullgraph=True` makes data-dependent control flow an error instead of an eager fallback;
    `dynamic=True` is refused (the replay is specialised to the first call's shapes); `disable=True`
    returns the model itself."""
    for k in unsupported:
        if k in _UNSUPPORTED:
            raise TypeError(f"tensorlib.compile: argument {k!r} is not supported (one graph per compiled "
                            f"callable, never recompiled); remove it")
        raise TypeError(f"compile() got an unexpected keyword argument {k!r}")
    if callable(backend) and not isinstance(backend, str):
        raise ValueError("tensorlib.compile: custom backend callables are not supported; backend must be one of "
                         f"{list(BACKENDS)}")
    if backend not in BACKENDS:
        raise ValueError(f"tensorlib.compile: backend {backend!r} is not available; tensorlib has "
                         f"{list(BACKENDS)} ('inductor' replays the traced graph as generated code, 'eager' runs the "
                         f"model unchanged)")
    if mode not in MODES:
        raise ValueError(f"tensorlib.compile: mode {mode!r} is not supported: tensorlib has one mode, 'default' "
                         f"(no autotuning and no CUDA graphs)")
    if options:
        raise ValueError("tensorlib.compile: options are not supported (the generated replay has no settings)")
    if dynamic:
        raise ValueError("tensorlib.compile: dynamic=True is not supported: the replay is specialised to the "
                         "first call's shapes (another shape runs eagerly); pass dynamic=None or False")
    if model is None:
        return functools.partial(compile, fullgraph=fullgraph, dynamic=dynamic, backend=backend, mode=mode,
                                 options=options, disable=disable)
    if not callable(model):
        raise RuntimeError(f"tensorlib.compile expects a Module or a callable, got {type(model).__name__}")
    if disable:
        return model
    owner = getattr(model, "__self__", None)
    name = type(model).__name__ if isinstance(model, Module) else type(owner).__name__ if isinstance(owner, Module) \
        else getattr(model, "__name__", "function")
    runner = _Runner(model, name, bool(fullgraph), backend)
    if isinstance(model, Module):
        return OptimizedModule(model, runner)

    @functools.wraps(model)
    def compiled_fn(*args, **kwargs):
        return runner(args, kwargs)
    compiled_fn._runner = runner
    return compiled_fn


_module_mod._compile_fn[0] = compile      # Module.compile's (nn.modules.module cannot import this module)
