"""The real CuPy's public API, from the checked-in table (tests/fakecupy/_api_table.json, written by
devtools/cupy_api_table.py from the real wheels), under the rules of one CuPy major.

FAKECUPY_RULES=13 or 14 (default 14) picks the major: the fake then exposes only the names that
CuPy has, accepts only the arguments its signatures take, and applies that version's `semantics`
(the dtypes `cupyx.scatter_add` takes, cuDNN). tests/test_cupy_conformance.py loads this file by
path (without the fake on sys.path) to check the project against the major that is not installed,
so it needs nothing beyond the standard library.
"""
from __future__ import annotations

import ast
import functools
import inspect
import json
import os

TABLE_PATH = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "_api_table.json")
RULES = os.environ.get("FAKECUPY_RULES", "14")


@functools.cache
def table() -> dict:
    with open(TABLE_PATH, encoding="utf-8") as f:
        return json.load(f)


def _major(version):
    return version.split(".")[0]


def majors() -> list[str]:
    t = table()
    return sorted([_major(t["base"]["version"])] + list(t["variants"]))


@functools.cache
def view(major: str = RULES) -> dict:
    """{"version", "modules": {path: {name: entry}}, "classes": {...}, "semantics": {...}} of CuPy `major`."""
    t = table()
    base = t["base"]
    if _major(base["version"]) == major:
        out = dict(base)
    else:
        var = t["variants"].get(major)
        if var is None:
            raise KeyError(f"FAKECUPY_RULES={major}: the CuPy API table holds CuPy {', '.join(majors())}; "
                           f"use one of those or regenerate it with devtools/cupy_api_table.py")
        out = {"version": var["version"]}
        for part in ("modules", "classes"):
            out[part] = _apply(base[part], var[part])
    out["semantics"] = {k: v[major] for k, v in t["semantics"].items()}
    return out


def _apply(base: dict, changes: dict) -> dict:
    """base (path -> names) with a variant's changes: a path set to None is absent, "__replace__"
    replaces a path's names, and each other name maps to its entry there (None: absent)."""
    merged = {}
    for path in set(base) | set(changes):
        ch = changes.get(path, {})
        if ch is None:
            continue
        if "__replace__" in ch:
            merged[path] = ch["__replace__"]
            continue
        names = dict(base.get(path, {}))
        for n, e in ch.items():
            if e is None:
                names.pop(n, None)
            else:
                names[n] = e
        merged[path] = names
    return merged


def names(path: str, major: str = RULES) -> dict | None:
    """The public names of module or class `path` in CuPy `major` (None: not recorded)."""
    v = view(major)
    return v["modules"].get(path, v["classes"].get(path))


def has(path: str, name: str, major: str = RULES) -> bool:
    n = names(path, major)
    return n is not None and "__unavailable__" not in n and name in n


@functools.cache
def signature(path: str, name: str, major: str = RULES) -> inspect.Signature | None:
    """The signature of path.name in CuPy `major` as an inspect.Signature (defaults as text), or None
    where CuPy's object has none to read."""
    n = names(path, major) or {}
    text = (n.get(name) or {}).get("sig")
    return None if text is None else parse_signature(text)


def parse_signature(text: str) -> inspect.Signature:
    """inspect.Signature from "(a, /, b=1, *c, d, **e)"; defaults stay unevaluated (only their
    presence matters for binding)."""
    args = ast.parse(f"def f{text}: pass").body[0].args
    P = inspect.Parameter
    params = []
    pos = args.posonlyargs + args.args
    defaults = [None] * (len(pos) - len(args.defaults)) + list(args.defaults)
    for i, (a, d) in enumerate(zip(pos, defaults)):
        kind = P.POSITIONAL_ONLY if i < len(args.posonlyargs) else P.POSITIONAL_OR_KEYWORD
        params.append(P(a.arg, kind, default=P.empty if d is None else _Default(d)))
    if args.vararg:
        params.append(P(args.vararg.arg, P.VAR_POSITIONAL))
    for a, d in zip(args.kwonlyargs, args.kw_defaults):
        params.append(P(a.arg, P.KEYWORD_ONLY, default=P.empty if d is None else _Default(d)))
    if args.kwarg:
        params.append(P(args.kwarg.arg, P.VAR_KEYWORD))
    return inspect.Signature(params)


class _Default:
    """A default value shown as CuPy's source text."""

    def __init__(self, node):
        self.text = ast.unparse(node)

    def __repr__(self):
        return self.text


def check_call(path: str, name: str, args, kwargs, major: str = RULES, method=False):
    """TypeError, as CuPy raises it, when CuPy's path.name does not take these arguments."""
    sig = signature(path, name, major)
    if sig is None:
        return
    try:
        sig.bind(*((None,) if method else ()), *args, **kwargs)
    except TypeError as e:
        raise TypeError(f"{name}() {e} (CuPy {view(major)['version']}'s {path}.{name}{sig})") from None
