"""Every use the project makes of CuPy, cupyx, cupy_backends, cupti and nvtx exists in the real packages
with a compatible signature (issue 12).

The uses come from the AST of tensorlib/, profiler/, samples/, benchmarks/ and devtools/
(devtools/cupy_uses.py); they are checked against the installed wheels (the `test` extra brings the
real cupy-cuda12x, cupti-python and nvtx: importing them needs no GPU) and, for the CuPy major that is
not installed, against the API table generated from its wheel (tests/fakecupy/_api_table.json, read
through tests/fakecupy/cupy/_api.py). `xp.<name>` is the array module: NumPy and every CuPy must have it.
A use inside try/except ImportError (or AttributeError, Exception) must exist in at least one CuPy.
"""
from __future__ import annotations

import importlib
import importlib.util
import inspect
import os
import re

import numpy
import pytest

from devtools import cupy_uses
from devtools.cupy_api_table import signature_text

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _load_api():
    spec = importlib.util.spec_from_file_location("_fakecupy_api", os.path.join(ROOT, "tests", "fakecupy", "cupy",
                                                                                 "_api.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


API = _load_api()
_MISSING = object()


@pytest.fixture(scope="module")
def real_cupy():
    import cupy
    assert not getattr(cupy, "__fake__", False), (
        "this test checks the real CuPy: run it without tests/fakecupy on PYTHONPATH")
    return cupy


def _resolve(path):
    """The installed object at dotted `path`, or _MISSING (a module that fails to import is missing)."""
    parts = path.split(".")
    obj = _MISSING
    for i in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:i]))
        except Exception:  # noqa: BLE001 - ImportError, or cuDNN's library missing (OSError/ImportError)
            continue
        for name in parts[i:]:
            obj = _attr(obj, name)
            if obj is _MISSING:
                return _MISSING
        return obj
    return obj


def _attr(obj, name):
    if hasattr(obj, name):
        return getattr(obj, name)
    if isinstance(obj, type) and _sets_in_init(obj, name):
        return _InstanceAttr()
    return _MISSING


class _InstanceAttr:
    """An attribute a class sets on its instances (its type is not known here)."""


def _sets_in_init(cls, name):
    """Whether the class's source assigns `<obj>.name = ...` (in __init__ or __new__): from the Python
    source, or for a compiled class (nvtx.Domain) the .pyx its wheel ships beside the extension."""
    src = _class_source(cls)
    return src is not None and re.search(rf"\b\w+\.{re.escape(name)}\s*=[^=]", src) is not None


def _class_source(cls):
    try:
        return inspect.getsource(cls)
    except (OSError, TypeError):
        pass
    mod = importlib.import_module(cls.__module__)
    pyx = re.sub(r"\.cpython-[^.]*\.so$|\.so$|\.pyd$", ".pyx", getattr(mod, "__file__", "") or "")
    if not pyx.endswith(".pyx") or not os.path.exists(pyx):
        return None
    with open(pyx, encoding="utf-8") as f:
        text = f.read()
    m = re.search(rf"^(cdef )?class {re.escape(cls.__name__)}\b.*?(?=^(cdef )?class |\Z)", text, re.M | re.S)
    return m.group(0) if m else None


def _signature(obj):
    if isinstance(obj, _InstanceAttr):
        return None
    text = signature_text(obj)
    return None if text is None else API.parse_signature(text)


def _bind(sig, call, bound):
    """None if a call with (n positional, *args?, keywords, **kwargs?) fits sig, else the reason."""
    n, star, kws, dstar = call
    params = list(sig.parameters.values())
    if bound and params and params[0].name == "self":
        n += 1
    args = [None] * n
    try:
        (sig.bind_partial if star or dstar else sig.bind)(*args, **dict.fromkeys(kws))
    except TypeError as e:
        return str(e)
    return None


def _where_installed(use, real_cupy):
    """[(label, object)] of the installed packages `use` refers to (NumPy and CuPy for xp.)."""
    t = use.target
    if t.xp:
        return [(f"NumPy {numpy.__version__}'s numpy.{t.path}", _resolve(f"numpy.{t.path}")),
                (f"CuPy {real_cupy.__version__}'s cupy.{t.path}", _resolve(f"cupy.{t.path}"))]
    top = t.path.split(".")[0]
    return [(f"{top} {_dist_version(top)}'s {t.path}", _resolve(t.path))]


def _dist_version(top):
    from importlib import metadata
    dist = {"cupy": "cupy-cuda12x", "cupyx": "cupy-cuda12x", "cupy_backends": "cupy-cuda12x",
            "cupti": "cupti-python"}.get(top, top)
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "(not installed)"


def _table_path(use):
    """(recorded module/class, name) of a CuPy use in the API table, or None where the table has no record."""
    path = ("cupy." + use.target.path) if use.target.xp else use.target.path
    if path.split(".")[0] not in ("cupy", "cupyx", "cupy_backends"):
        return None
    parent, _, name = path.rpartition(".")
    if name.startswith("__") or not parent:          # the table records public names only
        return None
    return (parent, name) if any(API.names(parent, m) is not None for m in API.majors()) else None


def _recorded_signature(use, real_cupy):
    """What the API table, generated from this very CuPy's wheel, records for a use the installed package
    does not show here: a module whose library this machine lacks (cupy.cuda.nccl without libnccl: its
    `available` is False and its names absent) or an instance attribute of a compiled class (Stream.ptr).
    The recorded signature (None: a value), or _MISSING when the table has no record either."""
    tp = _table_path(use)
    major = real_cupy.__version__.split(".")[0]
    if tp is None or major not in API.majors() or API.view(major)["version"] != real_cupy.__version__:
        return _MISSING
    names = API.names(tp[0], major)
    if names is None or tp[1] not in names:
        return _MISSING
    return API.signature(tp[0], tp[1], major) if use.call is not None else None


def _other_majors(real_cupy):
    return [m for m in API.majors() if m != real_cupy.__version__.split(".")[0]]


def check(use, real_cupy) -> list[str]:
    """What is wrong with one use, as lines naming file:line and the real API."""
    problems, found = [], 0
    for label, obj in _where_installed(use, real_cupy):
        if obj is _MISSING:
            sig = _recorded_signature(use, real_cupy)
            if sig is _MISSING:
                problems.append(f"{label} does not exist")
                continue
            found += 1
            why = _bind(sig, use.call, use.instance_method) if sig is not None and use.call is not None else None
            if why:
                problems.append(f"{label}{sig} (tests/fakecupy/_api_table.json): {why}")
            continue
        found += 1
        sig = _signature(obj) if use.call is not None and callable(obj) else None
        why = _bind(sig, use.call, use.instance_method) if sig is not None else None
        if why:
            problems.append(f"{label}{sig}: {why}")
    tp = _table_path(use)
    for major in _other_majors(real_cupy) if tp else ():
        version = API.view(major)["version"]
        names = API.names(tp[0], major)
        if names is not None and "__unavailable__" in names:
            found += 1                        # that CuPy has the module, which needs a library (cuDNN) to load
            continue
        if names is None:
            problems.append(f"CuPy {version}'s {tp[0]} does not exist (tests/fakecupy/_api_table.json)")
            continue
        if tp[1] not in names:
            problems.append(f"CuPy {version}'s {tp[0]}.{tp[1]} does not exist (tests/fakecupy/_api_table.json)")
            continue
        found += 1
        sig = API.signature(tp[0], tp[1], major) if use.call is not None else None
        why = _bind(sig, use.call, use.instance_method) if sig is not None else None
        if why:
            problems.append(f"CuPy {version}'s {tp[0]}.{tp[1]}{sig}: {why}")
    if use.optional:     # guarded by try/except: fine where missing, as long as some version has it
        problems = [p for p in problems if not p.endswith("does not exist")] if found else problems
    return [f"{cupy_uses.describe(use)}: {p}" for p in problems]


# The stand-in's own controls (tests/fakecupy: its simulated queues, its device count), used only where
# `cupy.__fake__` is true; they are not CuPy's API and are not checked against it.
FAKE_CONTROLS = ("cupy.cuda._sim", "cupy.cuda.runtime._COUNT")


@pytest.fixture(scope="module")
def uses():
    return [u for u in cupy_uses.collect(ROOT) if not u.target.path.startswith(FAKE_CONTROLS)]


def test_every_cupy_cupti_and_nvtx_use_exists_with_a_compatible_signature(uses, real_cupy):
    problems = [p for u in uses for p in check(u, real_cupy)]
    assert not problems, f"{len(problems)} uses the real packages refuse:\n" + "\n".join(problems)


def test_the_reader_finds_the_uses_it_must(uses):
    """The AST reader follows the project's ways to its handles (a guard against reading nothing)."""
    seen = {(u.file, u.target.path) for u in uses}
    for want in [("tensorlib/cuda/memory.py", "cupy.cuda.set_allocator"),          # a callback's `cp`
                 ("tensorlib/cuda/memory.py", "cupy.cuda.Device"),                  # cupy() via _ready()
                 ("tensorlib/ops/broadcast.py", "cupyx.scatter_add"),
                 ("profiler/cuda_timing.py", "cupy.cuda.get_elapsed_time"),         # self._cp = cupy
                 ("profiler/cupti.py", "cupti.cupti.activity_enable"),              # self._cu = load_cupti()
                 ("profiler/nvtx.py", "nvtx.Domain.push_range"),                    # nvtx.get_domain(...)
                 ("tensorlib/ops/conv_ops.py", "cupy.cuda.get_current_stream"),     # xp after `if xp is np: return`
                 ("tensorlib/ops/index.py", "take_along_axis")]:                    # xp.<name>
        assert want in seen, f"devtools/cupy_uses.py no longer sees {want[1]} in {want[0]}"
    assert len(uses) > 300


def test_a_wrong_use_is_named_with_its_line_and_the_real_api(tmp_path, real_cupy):
    """The check itself: a keyword CuPy lacks, a name only NumPy has, a name CuPy 13 lacks."""
    pkg = tmp_path / "tensorlib"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "k.py").write_text("import cupy as cp\n\n\ndef k(xp, s):\n"
                              "    g = xp.indices(s, sparse=True)\n"
                              "    xp.frompyfunc(len, 1, 1)\n"
                              "    return cp.put_along_axis(g, g, 1, axis=0)\n")
    problems = [p for u in cupy_uses.collect(str(tmp_path)) for p in check(u, real_cupy)]
    text = "\n".join(problems)
    assert re.search(r"tensorlib/k.py:5: xp.indices\(1 positional, sparse=\): CuPy [\d.]+'s cupy.indices"
                     r"\(dimensions, dtype=int\): got an unexpected keyword argument 'sparse'", text), text
    assert "tensorlib/k.py:6: xp.frompyfunc(3 positional): CuPy" in text and "does not exist" in text
    if "13" in _other_majors(real_cupy):
        assert "tensorlib/k.py:7: cupy.put_along_axis(3 positional, axis=): CuPy 13.6.0's cupy.put_along_axis " \
               "does not exist" in text


# lowest versions of the non-CuPy packages with every name profiler/ uses (the AST check above sees only
# the installed one): nvtx 0.2.10 has no get_domain, 0.2.11 no Domain.push_range
MINIMUM = {"nvtx": (0, 2, 12)}


def test_pyproject_asks_for_versions_that_have_what_the_code_uses():
    import tomllib
    with open(os.path.join(ROOT, "pyproject.toml"), "rb") as f:
        deps = tomllib.load(f)["project"]["dependencies"]
    for name, low in MINIMUM.items():
        spec = next(d for d in deps if re.match(rf"{name}\b", d))
        m = re.search(r">=\s*([\d.]+)", spec)
        assert m and tuple(int(x) for x in m.group(1).split(".")) >= low, (
            f"pyproject.toml asks for {spec!r}; the code needs {name}>={'.'.join(map(str, low))}")


def test_names_the_gpu_scripts_take_from_profiler_are_exported():
    """tests/profiler/nvtx_via_cupti.py calls profiler.emit_nvtx (torch.autograd.profiler.emit_nvtx)."""
    import profiler
    from profiler.nvtx import emit_nvtx
    assert profiler.emit_nvtx is emit_nvtx and "emit_nvtx" in profiler.__all__
