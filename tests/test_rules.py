"""DESIGN.md's rules, enforced on the source itself (ARCHITECTURE.md lists them).

- Safe writes: no module outside safeio opens a file for writing, renames over one or writes a Path directly;
  everything goes through safeio.atomic_open / write_bytes (atomic, mode-keeping, devices written through).
- Bounded reads: no module outside safeio opens a named file for reading by itself; it uses
  safeio.open_input / read_bounded (non-regular files refused, sizes known before allocating).
- Layers: safeio imports nothing of ours; viewer imports neither tensorlib nor profiler; tensorlib imports
  nothing of profiler or viewer.
A failure names file:line so the fix is one look away.
"""
from __future__ import annotations

import ast
import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
PRODUCT = ["tensorlib", "profiler", "viewer", "samples"]
WRITE_METHODS = {"write_text", "write_bytes"}
RENAMES = {("os", "replace"), ("os", "rename"), ("shutil", "move"), ("tempfile", "mkstemp"),
           ("tempfile", "NamedTemporaryFile")}


def _sources(packages):
    for pkg in packages:
        for path in sorted((ROOT / pkg).rglob("*.py")):
            yield path, ast.parse(path.read_text(encoding="utf-8"), filename=str(path))


def _mode(call: ast.Call) -> str | None:
    """open()'s mode when it is a constant ("r" when absent); None when it is computed."""
    arg = call.args[1] if len(call.args) > 1 else next((k.value for k in call.keywords if k.arg == "mode"), None)
    if arg is None:
        return "r"
    return arg.value if isinstance(arg, ast.Constant) and isinstance(arg.value, str) else None


def _where(path, node):
    return f"{path.relative_to(ROOT)}:{node.lineno}"


def _calls(tree):
    return (n for n in ast.walk(tree) if isinstance(n, ast.Call))


def test_every_file_write_goes_through_safeio():
    bad = []
    for path, tree in _sources(PRODUCT):
        for call in _calls(tree):
            f = call.func
            if isinstance(f, ast.Name) and f.id == "open":
                mode = _mode(call)
                if mode is None or set(mode) & set("wax+"):
                    bad.append(f"{_where(path, call)}: open(..., {mode!r}) writes a file; use safeio.atomic_open")
            elif isinstance(f, ast.Attribute) and f.attr in WRITE_METHODS:
                bad.append(f"{_where(path, call)}: .{f.attr}() writes a file; use safeio.write_bytes")
            elif isinstance(f, ast.Attribute) and isinstance(f.value, ast.Name) and (f.value.id, f.attr) in RENAMES:
                bad.append(f"{_where(path, call)}: {f.value.id}.{f.attr}() replaces files by hand; use safeio")
    assert not bad, "\n".join(bad)


def test_every_named_file_read_goes_through_safeio():
    """open(path) for reading is the road to a FIFO that blocks or /dev/zero that never ends."""
    bad = []
    for path, tree in _sources(PRODUCT):
        for call in _calls(tree):
            f = call.func
            if isinstance(f, ast.Name) and f.id == "open" and _mode(call) is not None \
                    and not set(_mode(call)) & set("wax+"):
                bad.append(f"{_where(path, call)}: open() reads a file unbounded; use safeio.open_input")
            elif isinstance(f, ast.Attribute) and f.attr in {"read_text", "read_bytes"}:
                bad.append(f"{_where(path, call)}: .{f.attr}() reads a file unbounded; use safeio.read_bounded")
    assert not bad, "\n".join(bad)


def _imports(tree):
    for n in ast.walk(tree):
        if isinstance(n, ast.Import):
            yield from ((n, a.name.split(".")[0]) for a in n.names)
        elif isinstance(n, ast.ImportFrom) and n.level == 0 and n.module:
            yield n, n.module.split(".")[0]


@pytest.mark.parametrize("pkg, forbidden", [
    ("safeio", {"tensorlib", "profiler", "viewer"}),
    ("viewer", {"tensorlib", "profiler"}),
    ("tensorlib", {"profiler", "viewer"}),
])
def test_layers_import_one_way(pkg, forbidden):
    bad = [f"{_where(path, node)}: {pkg} imports {name}" for path, tree in _sources([pkg])
           for node, name in _imports(tree) if name in forbidden]
    assert not bad, "\n".join(bad)


_TENSOR_PRIVATE = {"_data", "_grad", "_grad_fn", "_requires_grad", "_base", "_version", "_output_nr", "_retains_grad"}


def test_the_profiler_uses_tensorlibs_public_surface_only():
    """The instrument surface (ARCHITECTURE.md): the profiler imports no private module or name of tensorlib
    and reads no private attribute of a tensor (tensorlib.dispatch.array_of gives the array a tensor lives in)."""
    bad = []
    for path in sorted((ROOT / "profiler").rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            where = f"{path.relative_to(ROOT)}:{getattr(node, 'lineno', 0)}"
            if isinstance(node, ast.ImportFrom) and node.level == 0 and (node.module or "").startswith("tensorlib"):
                parts = node.module.split(".") + [a.name for a in node.names]
                if any(p.startswith("_") for p in parts):
                    bad.append(f"{where} from {node.module} import {', '.join(a.name for a in node.names)}")
            elif isinstance(node, ast.Import):
                bad += [f"{where} import {a.name}" for a in node.names
                        if a.name.startswith("tensorlib") and any(p.startswith("_") for p in a.name.split("."))]
            elif isinstance(node, ast.Attribute) and node.attr in _TENSOR_PRIVATE:
                bad.append(f"{where} .{node.attr}")
    assert not bad, "the profiler reaches into tensorlib's private parts:\n" + "\n".join(bad)


def test_no_array_shape_is_set_outside_the_cupy_view_path():
    """NumPy 2.5 deprecates setting `.shape` (every view op warned on Python 3.12+, where pip installs it):
    a view is taken by reshape (`tensorlib.ops.shape._shaped_view`); only CuPy's arrays there keep the setter.
    CI's NumPy (Python 3.11) does not warn yet, so this rule is what keeps the assignment from coming back."""
    found = []
    for path, tree in _sources(PRODUCT):
        for node in ast.walk(tree):
            if isinstance(node, (ast.Assign, ast.AugAssign, ast.AnnAssign)):
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                for t in targets:
                    if isinstance(t, ast.Attribute) and t.attr == "shape" and \
                            not (isinstance(t.value, ast.Name) and t.value.id == "self"):   # a class's own field
                        found.append(_where(path, node))
    assert found == ["tensorlib/ops/shape.py:" + str(_cupy_shape_line())], found


def _cupy_shape_line() -> int:
    src = (ROOT / "tensorlib/ops/shape.py").read_text(encoding="utf-8").splitlines()
    return next(i for i, line in enumerate(src, 1) if line.strip() == "v.shape = shape")
