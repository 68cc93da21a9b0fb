"""The public API of the real CuPy, as a checked-in table: what tests/fakecupy may expose and accept,
and what tests/test_cupy_conformance.py checks the project's calls against for the CuPy major that is
not installed.

    python devtools/cupy_api_table.py [--other-cupy DIR] [--out tests/fakecupy/_api_table.json]

Run it with the real CuPy importable (not tests/fakecupy). It records, per module and per class that
the project or the fake touches, every public name with its kind and call signature (from
`inspect.signature`, or from the first docstring line of a compiled Cython function). `--other-cupy`
names a directory holding the other major's wheel unpacked (`pip install --no-deps --target DIR
'cupy-cuda12x==13.*' fastrlock`); the script reads it in a subprocess and stores only how it differs.
Importing CuPy needs no GPU, so this runs on any machine.

Behaviour that no signature shows (which dtypes `cupyx.scatter_add` takes, cuDNN) is written into
the table's "semantics" from SEMANTICS below, the one place it is kept.
"""
from __future__ import annotations

import argparse
import ast
import importlib
import inspect
import json
import os
import re
import subprocess
import sys

# modules and classes whose names are recorded (everything tensorlib, profiler and the fake reach)
MODULES = ("cupy", "cupy.linalg", "cupy.fft", "cupy.random", "cupy.lib", "cupy.lib.stride_tricks", "cupyx",
           "cupyx.scipy.special", "cupyx.profiler", "cupy.cuda", "cupy.cuda.runtime", "cupy.cuda.memory",
           "cupy.cuda.memory_hook", "cupy.cuda.profiler", "cupy.cuda.nvtx", "cupy.cuda.stream",
           "cupy.cuda.device", "cupy_backends.cuda.api.runtime", "cupyx.cudnn", "cupy.cudnn", "cupy.cuda.cudnn",
           "cupy._core", "cupy.cuda.nccl")
CLASSES = ("cupy.ndarray", "cupy.ufunc", "cupy.cuda.Device", "cupy.cuda.Stream", "cupy.cuda.ExternalStream",
           "cupy.cuda.Event", "cupy.cuda.MemoryPool", "cupy.cuda.MemoryPointer", "cupy.cuda.PinnedMemoryPool",
           "cupy.cuda.memory.Memory", "cupy.cuda.memory.PooledMemory", "cupy.cuda.memory.SingleDeviceMemoryPool",
           "cupy.cuda.memory_hook.MemoryHook", "cupy.cuda.memory.OutOfMemoryError",
           "cupy_backends.cuda.api.runtime.CUDARuntimeError", "cupy.random.RandomState", "cupy.random.Generator",
           "cupy.cuda.nccl.NcclCommunicator", "cupy.cuda.nccl.NcclError")

# Instance attributes that dir() on the class cannot show (set in __init__), read from CuPy's source
# (cupy/cuda/stream.pyx: _BaseStream.__init__ sets ptr and device_id): recorded as values of the class.
INSTANCE_ATTRIBUTES = {"cupy.cuda.Stream": ("ptr", "device_id"), "cupy.cuda.ExternalStream": ("ptr", "device_id")}

# What signatures cannot show. Sources: CuPy's _scatter_op ("cupy.add.at only supports int32, float16,
# float32, float64, uint32, uint64" in 13.6's binary; 14 adds int64) and the wheels themselves (13's
# cupy.cudnn / cupyx.cudnn need libcudnn.so.8, which no wheel brings; 14 has neither).
SEMANTICS = {
    "scatter_add_dtypes": {
        "13": ["int32", "uint32", "uint64", "float16", "float32", "float64", "complex64", "complex128"],
        "14": ["int32", "int64", "uint32", "uint64", "float16", "float32", "float64", "complex64", "complex128"],
    },
    "nccl_unique_id": {
        "13": "tuple: get_unique_id() returns a tuple of 128 ints, NcclCommunicator takes a tuple commId",
        "14": "bytes: get_unique_id() returns 128 bytes, NcclCommunicator takes bytes commId (changed in 14.0)",
    },
    "cudnn": {
        "13": "cupyx.cudnn (cupy.cudnn is its deprecated alias); importing needs cuDNN 8's libcudnn.so.8",
        "14": "none: CuPy 14 removed cuDNN support",
    },
}

_TYPED = re.compile(r"^(?:[A-Za-z_][\w.]*\s*\**\s+)+(?=[A-Za-z_]\w*\s*(=|$))")


def _doc_signature(obj) -> str | None:
    """The parameter list on the first docstring line of a compiled function ("name(a, b=1) -> T"),
    with Cython's C types ("size_t size") dropped; None when the docstring has none."""
    doc = (getattr(obj, "__doc__", None) or "").strip()
    m = re.match(r"^[A-Za-z_][\w.]*\((.*)\)\s*(->.*)?$", doc.splitlines()[0]) if doc else None
    if m is None:
        return None
    params = []
    for p in _split_params(m.group(1).replace("\\*", "*")):
        p = _TYPED.sub("", p.strip())
        if p:
            params.append(p)
    text = re.sub(r"\bu(['\"])", r"\1", "(" + ", ".join(params) + ")")     # Cython's u'' defaults
    try:
        ast.parse(f"def f{text}: pass")
    except SyntaxError:
        return None
    return text


def _split_params(s):
    depth, cur, out = 0, "", []
    for ch in s:
        if ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth -= 1
        if ch == "," and depth == 0:
            out.append(cur)
            cur = ""
        else:
            cur += ch
    if cur.strip():
        out.append(cur)
    return out


def signature_text(obj) -> str | None:
    """The call signature of obj as text "(a, b=1, *, c=None)" (defaults as source text), or None."""
    try:
        sig = inspect.signature(obj)
    except (TypeError, ValueError):
        return _doc_signature(obj)
    params = []
    for p in sig.parameters.values():
        params.append(p.replace(annotation=inspect.Parameter.empty,
                                default=p.default if p.default is inspect.Parameter.empty else _Repr(p.default)))
    return str(sig.replace(parameters=params, return_annotation=inspect.Signature.empty))


class _Repr:
    """A default shown by a short stable name (types by name, not "<class 'int'>")."""

    def __init__(self, v):
        self.v = v

    def __repr__(self):
        v = self.v
        if isinstance(v, type):
            return v.__name__
        r = repr(v)
        try:
            ast.parse(r, mode="eval")
        except SyntaxError:       # "<no value>", "<object at 0x...>": a default with no source text
            return "..."
        return r if len(r) < 40 else "..."


def kind_of(obj) -> str:
    if inspect.ismodule(obj):
        return "module"
    if isinstance(obj, type):
        return "class"
    if type(obj).__name__ == "ufunc":
        return "ufunc"
    if callable(obj):
        return "function"
    return "value"


def _public(mod, name):
    """Whether mod.name is part of mod's API (not a module it merely imported, nor `annotations`)."""
    if name.startswith("_"):
        return False
    try:
        obj = getattr(mod, name)
    except ImportError:        # a lazy submodule whose library is not on this machine (cupyx.lapack)
        return False
    except AttributeError:
        return False
    if inspect.ismodule(obj):
        return obj.__name__.split(".")[0] in ("cupy", "cupyx", "cupy_backends")
    return type(obj).__name__ != "_Feature"


def _lazy_names(mod) -> set:
    """Names a module's __getattr__ makes on first use (cupy.random.Generator), which dir() omits: the
    identifiers it compares its argument with."""
    fn = getattr(mod, "__getattr__", None)
    try:
        tree = ast.parse(inspect.getsource(fn)) if fn is not None else None
    except (OSError, TypeError):
        return set()
    if tree is None:
        return set()
    return {c.value for c in ast.walk(tree) if isinstance(c, ast.Constant) and isinstance(c.value, str)
            and c.value.isidentifier()}


def _entry(obj):
    k = kind_of(obj)
    e = {"kind": k}
    if k in ("function", "class", "ufunc"):
        e["sig"] = signature_text(obj)
    return e


def _resolve(path):
    """The object at a dotted path (module, or attribute of one); raises ImportError/AttributeError."""
    try:
        return importlib.import_module(path)
    except ImportError:
        mod, _, attr = path.rpartition(".")
        if not mod:
            raise
        return getattr(_resolve(mod), attr)


def snapshot() -> dict:
    """{"version", "modules": {path: {name: entry} | {"__unavailable__": why}}, "classes": {...}}."""
    import cupy
    out = {"version": cupy.__version__, "modules": {}, "classes": {}}
    for path in MODULES:
        try:
            mod = importlib.import_module(path)
        except Exception as e:  # noqa: BLE001 - a probe: cupy.cudnn without libcudnn, modules a version lacks
            out["modules"][path] = {"__unavailable__": f"{type(e).__name__}: {e}"[:200]}
            continue
        if getattr(mod, "available", True) is False:     # cupy.cuda.cudnn without libcudnn: a shim
            out["modules"][path] = {"__unavailable__": "its library does not load (available is False)"}
            continue
        names = set(dir(mod)) | _lazy_names(mod)
        out["modules"][path] = {n: _entry(getattr(mod, n)) for n in sorted(names) if _public(mod, n)}
    for path in CLASSES:
        try:
            cls = _resolve(path)
        except (ImportError, AttributeError):
            continue
        names = {n: _entry(getattr(cls, n)) for n in sorted(dir(cls))
                 if (not n.startswith("_") or n in ("__init__", "__enter__", "__exit__", "__call__"))
                 and hasattr(cls, n)}
        for n in INSTANCE_ATTRIBUTES.get(path, ()):
            names.setdefault(n, {"kind": "value"})
        out["classes"][path] = names
    return out


def diff(base: dict, other: dict) -> dict:
    """What `other` changes relative to `base`: per module/class, names it lacks (None) or has differently."""
    d = {"version": other["version"], "modules": {}, "classes": {}}
    for part in ("modules", "classes"):
        for path in set(base[part]) | set(other[part]):
            a, b = base[part].get(path), other[part].get(path)
            if b is None:
                d[part][path] = None
                continue
            if a is None or "__unavailable__" in a or "__unavailable__" in b:
                if a != b:
                    d[part][path] = {"__replace__": b}
                continue
            ch = {n: b.get(n) for n in set(a) | set(b) if a.get(n) != b.get(n)}
            if ch:
                d[part][path] = ch
    return d


def _major(version):
    return version.split(".")[0]


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "..", "tests", "fakecupy",
                                                  "_api_table.json"))
    ap.add_argument("--other-cupy", help="a directory with the other CuPy major unpacked (pip --target)")
    ap.add_argument("--print", action="store_true", help="print this interpreter's snapshot (used internally)")
    args = ap.parse_args(argv)
    snap = snapshot()
    if args.print:
        json.dump(snap, sys.stdout)
        return 0
    table = {"base": snap, "variants": {}, "semantics": SEMANTICS}
    if args.other_cupy:
        env = dict(os.environ, PYTHONPATH=os.pathsep.join([args.other_cupy, os.environ.get("PYTHONPATH", "")]))
        res = subprocess.run([sys.executable, os.path.abspath(__file__), "--print"], env=env, check=True,
                             capture_output=True, text=True)
        other = json.loads(res.stdout)
        if _major(other["version"]) == _major(snap["version"]):
            ap.error(f"--other-cupy holds CuPy {other['version']}, the same major as the installed {snap['version']}")
        table["variants"][_major(other["version"])] = diff(snap, other)
    with open(args.out, "w", encoding="utf-8") as f:
        json.dump(table, f, indent=0, sort_keys=True)
        f.write("\n")
    print(f"wrote {args.out}: CuPy {snap['version']}"
          + "".join(f" + CuPy {v['version']} differences" for v in table["variants"].values()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
