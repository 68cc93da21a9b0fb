"""Run a PyTorch program on tensorlib with nothing changed: `python -m tensorlib.compat script.py [args]`.

`install()` puts an import hook in front of the others that answers `import torch` and every `torch.X`
with tensorlib's module of the same path (`torch.nn.functional` is `tensorlib.nn.functional`), so a script
written for PyTorch imports tensorlib instead. Where tensorlib lacks a module or a name, the runner stops
at the first one with a single line saying which name, where the script used it, and that it is
tensorlib's gap, not the script's bug.
"""
from __future__ import annotations

import importlib
import importlib.abc
import importlib.util
import os
import sys
import traceback
import types

__all__ = ["install", "uninstall", "MissingInTensorlib", "missing_message", "gap_message"]


class MissingInTensorlib(ModuleNotFoundError):
    """`import torch.X` where tensorlib has no `tensorlib.X`."""


def _real(fullname: str) -> str | None:
    if fullname == "torch" or fullname.startswith("torch."):
        return "tensorlib" + fullname[len("torch"):]
    return None


class _Alias(importlib.abc.Loader):
    def __init__(self, real: str):
        self.real = real

    def create_module(self, spec):
        return importlib.import_module(self.real)

    def exec_module(self, module):
        pass                                    # tensorlib's module is already executed


class TorchAsTensorlib(importlib.abc.MetaPathFinder):
    def find_spec(self, fullname, path, target=None):
        real = _real(fullname)
        if real is None:
            return None
        try:
            found = importlib.util.find_spec(real)     # tensorlib.profiler too (tensorlib's hook)
        except ModuleNotFoundError:
            found = None
        if found is None:
            raise MissingInTensorlib(f"No module named '{fullname}' (tensorlib has no {real})", name=fullname)
        return importlib.util.spec_from_loader(fullname, _Alias(real), is_package=found.submodule_search_locations
                                               is not None)


_FINDER = TorchAsTensorlib()


def install() -> None:
    """Answer `import torch` with tensorlib from now on (idempotent). A real torch already imported in
    this process is left as it is."""
    if _FINDER not in sys.meta_path:
        sys.meta_path.insert(0, _FINDER)
    from .._dtype import set_namespace
    set_namespace("torch")                      # the script calls tensorlib torch: reprs say torch.float32
    _spawned_children_install()


_SPAWN_LINE = None      # multiprocessing.spawn.get_command_line as it was before install()


def _spawned_children_install() -> None:
    """A process started by "spawn" (torch.multiprocessing.spawn, mp.set_start_method("spawn")) is a fresh
    interpreter that imports the script's main module again, `import torch` first: its command line gets this
    hook installed before anything else runs, so the child is on tensorlib as the parent is (and can unpickle
    the tensorlib tensors it is sent)."""
    global _SPAWN_LINE
    import multiprocessing.spawn as spawn
    if _SPAWN_LINE is not None:
        return
    _SPAWN_LINE = original = spawn.get_command_line

    def get_command_line(**kwds):
        line = original(**kwds)
        if "-c" in line:
            i = line.index("-c") + 1
            line = [*line[:i], "import tensorlib.compat as _c; _c.install(); " + line[i], *line[i + 1:]]
        return line
    spawn.get_command_line = get_command_line


def uninstall() -> None:
    global _SPAWN_LINE
    if _FINDER in sys.meta_path:
        sys.meta_path.remove(_FINDER)
    if _SPAWN_LINE is not None:
        import multiprocessing.spawn as spawn
        spawn.get_command_line, _SPAWN_LINE = _SPAWN_LINE, None
    from .._dtype import set_namespace
    set_namespace("tensorlib")
    for name in [n for n in sys.modules if n == "torch" or n.startswith("torch.")]:
        if getattr(sys.modules[name], "__name__", "").startswith("tensorlib"):
            del sys.modules[name]


def _script_line(exc: BaseException, script: str) -> str:
    """Where in the user's script the missing name was used (the innermost frame in that file)."""
    where = ""
    for frame in traceback.extract_tb(exc.__traceback__):
        if os.path.abspath(frame.filename) == script:
            where = f"{os.path.basename(script)}:{frame.lineno}"
    return where or os.path.basename(script)


def _missing_name(exc: BaseException) -> str | None:
    if isinstance(exc, MissingInTensorlib):
        return exc.name
    obj = getattr(exc, "obj", None)
    if isinstance(exc, AttributeError) and isinstance(obj, types.ModuleType):
        mod = obj.__name__
        if mod == "tensorlib" or mod.startswith("tensorlib."):
            return "torch" + mod[len("tensorlib"):] + "." + str(exc.name)
    if isinstance(exc, ImportError) and not isinstance(exc, ModuleNotFoundError) and exc.name \
            and (exc.name == "tensorlib" or exc.name.startswith("tensorlib.")):
        what = str(exc).split("'")[1] if str(exc).count("'") >= 2 else "?"
        return "torch" + exc.name[len("tensorlib"):] + "." + what
    return None


def missing_message(exc: BaseException, script: str) -> str | None:
    """``prog.py:3 uses torch.frobnicate, which tensorlib does not have yet`` when `exc` (raised while the
    script at path `script` ran under install()) is tensorlib lacking a name; None when it is another error."""
    name = _missing_name(exc)
    if name is None:
        return None
    return f"{_script_line(exc, os.path.abspath(script))} uses {name}, which tensorlib does not have yet"


_TENSORLIB_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def gap_message(exc: BaseException, script: str) -> str | None:
    """``prog.py:7: NotImplementedError: tensorlib.nested is not supported ...`` when `exc` is tensorlib
    refusing a feature it lacks (a NotImplementedError, or a RuntimeError or ValueError saying "tensorlib has
    no ..." or "tensorlib.X ... not supported", raised inside tensorlib); None for every other error, which
    keeps its traceback."""
    if not isinstance(exc, (NotImplementedError, RuntimeError, ValueError)):
        return None
    tb = traceback.extract_tb(exc.__traceback__)
    if not tb or not os.path.abspath(tb[-1].filename).startswith(_TENSORLIB_DIR + os.sep):
        return None
    text = str(exc)
    first = text.splitlines()[0] if text else ""
    refused = first.startswith("tensorlib has no ") or (first.startswith("tensorlib.") and " not supported" in first)
    if not (isinstance(exc, NotImplementedError) or refused):
        return None
    return f"{_script_line(exc, os.path.abspath(script))}: {type(exc).__name__}: {first}"
