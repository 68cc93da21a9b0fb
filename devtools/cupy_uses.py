"""Every use the project makes of CuPy, cupyx, cupy_backends, cupti and nvtx, read from the source's AST:
each attribute chain (`cupy.cuda.runtime.getDevice`), each call with its positional count and keyword
names, and each `xp.<name>` where `xp` is the array module (NumPy or CuPy, so the name must be in both).

    python devtools/cupy_uses.py            # print them, file:line per use

tests/test_cupy_conformance.py checks each against the installed packages and the CuPy API table.

How the code reaches those modules is followed, not guessed from names: imports (`import cupy as cp`,
`from cupy.cuda import memory_hook`, `from cupti import cupti`), module globals and `self.<attr>`s
assigned a handle, functions that return one (tensorlib._device.cupy() and cupy_or_none(), helpers that
return a module or `nvtx.get_domain(...)`), and calls of classes (an instance: its attributes are the
class's). A parameter named `xp` (or `cp`: CuPy), and any value that is NumPy on one branch and CuPy on
the other (`np if cpu else cupy()`), is the array module. A use inside `try:` whose handler catches
ImportError, AttributeError or Exception is optional: the code is ready for it to be missing.
"""
from __future__ import annotations

import ast
import os
import sys
from dataclasses import dataclass, field

# the project's code, and the GPU-only test scripts that call cupti/nvtx directly
ROOTS = ("tensorlib", "profiler", "samples", "benchmarks", "devtools", "tests/profiler")
PACKAGES = ("cupy", "cupyx", "cupy_backends", "cupti", "nvtx")
# functions whose results are instances of a class (what a call returns cannot be read from the AST)
RETURNS = {
    "cupy.get_default_memory_pool": "cupy.cuda.MemoryPool",
    "cupy.get_default_pinned_memory_pool": "cupy.cuda.PinnedMemoryPool",
    "cupy.cuda.get_current_stream": "cupy.cuda.Stream",
    "cupy.cuda.memory.get_default_memory_pool": "cupy.cuda.MemoryPool",
    "nvtx.get_domain": "nvtx.Domain",
}
_OPTIONAL = {"ImportError", "ModuleNotFoundError", "AttributeError", "Exception", "BaseException"}


@dataclass(frozen=True)
class Ext:
    """A value from an external package: `path` is where it lives ("cupy.cuda.Event"); `instance` when
    it is an instance of that class; `xp` when it is the array module (path relative to it)."""
    path: str
    instance: bool = False
    xp: bool = False

    def attr(self, name):
        return Ext(f"{self.path}.{name}" if self.path else name, False, self.xp)


XP = Ext("", xp=True)
# parameters by the project's naming convention: `xp` the array module, `cp` CuPy itself (a callback's
# argument, e.g. tensorlib.cuda.memory._install(cp), which no call site in the AST shows)
_PARAMS = {"xp": XP, "cp": Ext("cupy")}


@dataclass(frozen=True)
class Proj:
    """A project module ("tensorlib._device") or a function/global in one ("tensorlib._device.cupy")."""
    path: str


@dataclass
class Use:
    file: str
    line: int
    target: Ext           # what is used (attribute or callee)
    call: tuple | None    # (n positional, has *args, keyword names, has **kwargs) for a call, else None
    optional: bool
    instance_method: bool = False

    def where(self):
        return f"{self.file}:{self.line}"


@dataclass
class _Module:
    name: str
    file: str
    tree: ast.Module
    globals: dict = field(default_factory=dict)


def _mod_name(root, path):
    rel = os.path.relpath(path, root)[:-3].replace(os.sep, ".")
    return rel[:-len(".__init__")] if rel.endswith(".__init__") else rel


def load_modules(root):
    mods = {}
    for top in ROOTS:
        for d, dirs, files in os.walk(os.path.join(root, top)):
            dirs[:] = sorted(x for x in dirs if x != "__pycache__")
            for f in sorted(files):
                if f.endswith(".py"):
                    p = os.path.join(d, f)
                    with open(p, encoding="utf-8") as fh:
                        tree = ast.parse(fh.read(), p)
                    name = _mod_name(root, p)
                    mods[name] = _Module(name, os.path.relpath(p, root), tree)
    return mods


def _merge(a, b):
    """One name bound to two values: NumPy with a CuPy handle is the array module; else a handle wins."""
    if a is None:
        return b
    if b is None or a == b:
        return a
    if a == "numpy" or b == "numpy":
        other = b if a == "numpy" else a
        if isinstance(other, Ext) and other.path == "cupy" and not other.instance:
            return XP
        if isinstance(other, Ext) and other.instance:
            return None                   # a NumPy or a CuPy object (np.random.Generator or cupy's): unknown
        return other if isinstance(other, (Ext, Proj)) else a
    if isinstance(a, Ext) and isinstance(b, Ext) and {a.path, b.path} == {"", "cupy"}:
        return XP
    return a if isinstance(a, (Ext, Proj)) else b


class Analyzer:
    """Two passes over every module: first the handles (globals, self attributes, what functions
    return) until nothing changes, then the uses."""

    def __init__(self, root):
        self.mods = load_modules(root)
        self.returns: dict[str, object] = {}       # "module.func" / "module.Class.method" -> value
        self.self_attrs: dict[str, dict] = {}      # "module.Class" -> {attr: value}
        self.uses: list[Use] = []
        self._recording = False

    # -- evaluation ---------------------------------------------------------------------------------
    def eval(self, node, env, ctx):
        """The abstract value of expression `node` (Ext, Proj, "numpy" or None), recording uses."""
        if isinstance(node, ast.Name):
            return env.get(node.id, ctx.module.globals.get(node.id))
        if isinstance(node, ast.Attribute):
            base = self.eval(node.value, env, ctx)
            if isinstance(node.value, ast.Name) and node.value.id == "self" and ctx.cls:
                return self.self_attrs.get(ctx.cls, {}).get(node.attr)
            return "numpy" if base == "numpy" else self._attr(base, node.attr, node, ctx)
        if isinstance(node, ast.Call):
            return self._call(node, env, ctx)
        if isinstance(node, ast.IfExp):
            self.eval(node.test, env, ctx)
            return _merge(self.eval(node.body, env, ctx), self.eval(node.orelse, env, ctx))
        if isinstance(node, ast.BoolOp):
            v = None
            for x in node.values:
                v = _merge(v, self.eval(x, env, ctx))
            return v
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.expr):
                self.eval(child, env, ctx)
            elif isinstance(child, ast.comprehension):
                self.eval(child.iter, env, ctx)
                for c in child.ifs:
                    self.eval(c, env, ctx)
            elif isinstance(child, ast.keyword):
                self.eval(child.value, env, ctx)
        return None

    def _attr(self, base, name, node, ctx):
        if isinstance(base, Ext):
            target = Ext(base.attr(name).path, base.instance, base.xp)    # through an instance: bound
            self._use(node, target, None, ctx, instance=base.instance)
            return target
        if isinstance(base, Proj):
            sub = f"{base.path}.{name}"
            if sub in self.mods:
                return Proj(sub)
            mod = self.mods.get(base.path)
            if mod is not None:
                v = mod.globals.get(name)
                return v if v is not None else Proj(sub)
        return None

    def _call(self, node, env, ctx):
        fn = self.eval(node.func, env, ctx)
        for a in node.args:
            self.eval(a.value if isinstance(a, ast.Starred) else a, env, ctx)
        for k in node.keywords:
            self.eval(k.value, env, ctx)
        if isinstance(fn, Ext):
            info = (sum(not isinstance(a, ast.Starred) for a in node.args),
                    any(isinstance(a, ast.Starred) for a in node.args),
                    tuple(k.arg for k in node.keywords if k.arg is not None),
                    any(k.arg is None for k in node.keywords))
            self._use(node, fn, info, ctx, instance=fn.instance)
            if fn.xp or fn.instance:
                return None
            cls = RETURNS.get(fn.path)
            if cls is not None:
                return Ext(cls, instance=True)
            return Ext(fn.path, instance=True) if _looks_like_class(fn.path) else None
        if isinstance(fn, Proj):
            return self.returns.get(fn.path)
        return "numpy" if fn == "numpy" else None        # what NumPy makes stays NumPy's

    def _use(self, node, target, call, ctx, instance=False):
        if not self._recording or not (target.xp or target.path.split(".")[0] in PACKAGES):
            return
        parent = ctx.parent_of(node)
        if call is None and (isinstance(parent, ast.Attribute) or isinstance(parent, ast.Call) and parent.func is node):
            return                         # recorded at the full chain, or as the call
        self.uses.append(Use(ctx.module.file, node.lineno, target, call, ctx.optional(node), instance))

    # -- scopes -------------------------------------------------------------------------------------
    def _bind_import(self, node, env, module):
        if isinstance(node, ast.Import):
            for a in node.names:
                top = a.name.split(".")[0]
                if a.asname:
                    env[a.asname] = self._import_value(a.name)
                else:
                    env[top] = self._import_value(top)
        else:
            base = _resolve_from(module.name, node, self.mods)
            for a in node.names:
                full = f"{base}.{a.name}" if base else a.name
                env[a.asname or a.name] = self._import_value(full)

    def _import_value(self, full):
        top = full.split(".")[0]
        if top in PACKAGES:
            return Ext(full)
        if top == "numpy" and full == "numpy":
            return "numpy"
        if full in self.mods:
            return Proj(full)
        mod, _, name = full.rpartition(".")
        if mod in self.mods:
            v = self.mods[mod].globals.get(name)
            return v if isinstance(v, (Ext, str)) else Proj(full)
        return None

    def _scope(self, body, env, ctx):
        """Walk statements: bind imports and assignments in env, evaluate every expression."""
        for st in body:
            self._stmt(st, env, ctx)

    def _stmt(self, st, env, ctx):
        if isinstance(st, (ast.Import, ast.ImportFrom)):
            self._bind_import(st, env, ctx.module)
            if ctx.is_module:
                ctx.module.globals.update(env)
            return
        if isinstance(st, (ast.FunctionDef, ast.AsyncFunctionDef)):
            self._function(st, env, ctx)
            return
        if isinstance(st, ast.ClassDef):
            for d in st.decorator_list + st.bases:
                self.eval(d, env, ctx)
            cctx = ctx.child(cls=f"{ctx.module.name}.{st.name}")
            self._scope(st.body, dict(env), cctx)
            return
        if isinstance(st, (ast.Assign, ast.AnnAssign, ast.AugAssign)):
            value = self.eval(st.value, env, ctx) if st.value is not None else None
            targets = st.targets if isinstance(st, ast.Assign) else [st.target]
            for t in targets:
                self._assign(t, value, env, ctx)
            return
        if isinstance(st, ast.Return) and st.value is not None:
            v = self.eval(st.value, env, ctx)
            if ctx.func and isinstance(v, (Ext, Proj)):
                self.returns[ctx.func] = _merge(self.returns.get(ctx.func), v)
            return
        if isinstance(st, ast.Try):
            self._scope(st.body, env, ctx)
            for h in st.handlers:
                self._scope(h.body, env, ctx)
            self._scope(st.orelse, env, ctx)
            self._scope(st.finalbody, env, ctx)
            return
        if isinstance(st, (ast.With, ast.AsyncWith)):
            for item in st.items:
                v = self.eval(item.context_expr, env, ctx)
                if item.optional_vars is not None:
                    self._assign(item.optional_vars, v if isinstance(v, Ext) and v.instance else None, env, ctx)
            self._scope(st.body, env, ctx)
            return
        if isinstance(st, (ast.For, ast.AsyncFor)):
            self.eval(st.iter, env, ctx)
            self._scope(st.body, env, ctx)
            self._scope(st.orelse, env, ctx)
            return
        if isinstance(st, ast.If):
            self.eval(st.test, env, ctx)
            self._branches(st, env, ctx)
            return
        if isinstance(st, ast.While):
            self.eval(st.test, env, ctx)
            self._scope(st.body, env, ctx)
            self._scope(st.orelse, env, ctx)
            return
        if isinstance(st, ast.Global):
            return
        for child in ast.iter_child_nodes(st):
            if isinstance(child, ast.expr):
                self.eval(child, env, ctx)

    def _branches(self, st, env, ctx):
        """An if statement; `if xp is np:` (or `is not`) narrows the array module in each branch, and
        after a branch that returns or raises."""
        name, is_np = _np_test(st.test, env, ctx)
        if name is None:
            self._scope(st.body, env, ctx)
            self._scope(st.orelse, env, ctx)
            return
        cupy = Ext("cupy")
        for body, np_here in ((st.body, is_np), (st.orelse, not is_np)):
            branch = dict(env, **{name: "numpy" if np_here else cupy})
            self._scope(body, branch, ctx)
            env.update({k: v for k, v in branch.items() if k != name})
        if st.body and isinstance(st.body[-1], (ast.Return, ast.Raise)):
            env[name] = cupy if is_np else "numpy"

    def _assign(self, t, value, env, ctx):
        if isinstance(t, ast.Name):
            if t.id in ctx.globals_declared or ctx.is_module:
                ctx.module.globals[t.id] = _merge(ctx.module.globals.get(t.id), value)
            env[t.id] = _merge(env.get(t.id), value) if ctx.func else value
        elif isinstance(t, ast.Attribute) and isinstance(t.value, ast.Name) and t.value.id == "self" and ctx.cls:
            attrs = self.self_attrs.setdefault(ctx.cls, {})
            attrs[t.attr] = _merge(attrs.get(t.attr), value)
        elif isinstance(t, (ast.Tuple, ast.List)):
            for e in t.elts:
                self._assign(e, None, env, ctx)
        else:
            self.eval(t, env, ctx)

    def _function(self, fn, env, ctx):
        for d in fn.decorator_list:
            self.eval(d, env, ctx)
        local = dict(env) if not ctx.is_module else {}
        args = fn.args
        for a in args.posonlyargs + args.args + args.kwonlyargs + [args.vararg, args.kwarg]:
            if a is not None:
                local[a.arg] = _PARAMS.get(a.arg)
        for dflt in args.defaults + [d for d in args.kw_defaults if d is not None]:
            self.eval(dflt, env, ctx)
        qual = f"{ctx.cls}.{fn.name}" if ctx.cls else f"{ctx.module.name}.{fn.name}"
        fctx = ctx.child(func=qual, globals_declared={n for st in ast.walk(fn) if isinstance(st, ast.Global)
                                                      for n in st.names})
        self._scope(fn.body, local, fctx)
        if ctx.is_module or ctx.cls is None:
            ctx.module.globals.setdefault(fn.name, Proj(qual))

    def run(self):
        for _ in range(4):                    # handles flow through globals and returns: iterate to a fixpoint
            before = (repr(self.returns), repr(self.self_attrs), repr({m: x.globals for m, x in self.mods.items()}))
            self._pass()
            after = (repr(self.returns), repr(self.self_attrs), repr({m: x.globals for m, x in self.mods.items()}))
            if before == after:
                break
        self._recording = True
        self._pass()
        return self.uses

    def _pass(self):
        self.uses = []
        for m in self.mods.values():
            self._scope(m.tree.body, {}, _Ctx(m))


class _Ctx:
    def __init__(self, module, func=None, cls=None, globals_declared=frozenset()):
        self.module, self.func, self.cls, self.globals_declared = module, func, cls, globals_declared
        self.is_module = func is None and cls is None
        if not hasattr(module, "_parents"):
            module._parents, module._guarded = {}, set()
            for n in ast.walk(module.tree):
                for c in ast.iter_child_nodes(n):
                    module._parents[c] = n
                if isinstance(n, ast.Try) and any(_catches_optional(h) for h in n.handlers):
                    for st in n.body:
                        module._guarded.update(ast.walk(st))

    def child(self, **kw):
        args = dict(module=self.module, func=self.func, cls=self.cls, globals_declared=self.globals_declared)
        args.update(kw)
        return _Ctx(**args)

    def parent_of(self, node):
        return self.module._parents.get(node)

    def optional(self, node):
        return node in self.module._guarded


def _np_test(test, env, ctx):
    """(name, True) for `name is np`, (name, False) for `name is not np`, where name is the array
    module; (None, None) for any other test."""
    if (isinstance(test, ast.Compare) and isinstance(test.left, ast.Name) and len(test.ops) == 1
            and isinstance(test.ops[0], (ast.Is, ast.IsNot)) and isinstance(test.comparators[0], ast.Name)
            and env.get(test.left.id, ctx.module.globals.get(test.left.id)) == XP
            and env.get(test.comparators[0].id, ctx.module.globals.get(test.comparators[0].id)) == "numpy"):
        return test.left.id, isinstance(test.ops[0], ast.Is)
    return None, None


def _catches_optional(handler):
    t = handler.type
    if t is None:
        return True
    names = [t] if not isinstance(t, ast.Tuple) else t.elts
    return any(isinstance(n, ast.Name) and n.id in _OPTIONAL for n in names)


def _looks_like_class(path):
    return path.rsplit(".", 1)[-1][:1].isupper()


def _resolve_from(modname, node, mods):
    if node.level == 0:
        return node.module or ""
    parts = modname.split(".")
    is_pkg = any(m.startswith(modname + ".") for m in mods)
    base = parts if is_pkg else parts[:-1]
    base = base[:len(base) - (node.level - 1)] if node.level > 1 else base
    return ".".join(base + ([node.module] if node.module else []))


def collect(root=None) -> list[Use]:
    root = root or os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    return Analyzer(root).run()


def describe(u: Use) -> str:
    name = ("xp." if u.target.xp else "") + u.target.path
    if u.call is not None:
        n, star, kws, dstar = u.call
        name += "(" + ", ".join([f"{n} positional"] * bool(n) + ["*args"] * star + [f"{k}=" for k in kws]
                               + ["**kwargs"] * dstar) + ")"
    return f"{u.where()}: {name}" + (" [optional]" if u.optional else "")


if __name__ == "__main__":
    for use in collect():
        print(describe(use))
    sys.exit(0)
