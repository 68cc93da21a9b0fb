"""The weights-only unpickler: torch's `_weights_only_unpickler` for tensorlib archives and PyTorch's own.

A pickle is a program for a stack machine whose GLOBAL opcode imports any name and whose REDUCE calls it,
so plain pickle.load runs whatever a file asks. This one runs a pickle in two passes:

1. A scan (pickletools' parser, which only decodes opcodes) refuses, before anything is built or called,
   any opcode outside the data-only set below (STACK_GLOBAL, INST, OBJ, EXT*, NEWOBJ_EX, PERSID... are
   "Unsupported operand", as torch says) and any GLOBAL not in the allowlist: `os.system`, `builtins.eval`,
   `builtins.getattr`, a user's class nobody allowed. Modules torch blocks (sys, os, posix, nt) are refused
   even when a user allowlists a name from them.
2. An interpreter of those opcodes, which resolves GLOBALs only through the allowlist (never an import),
   calls REDUCE only on allowed callables, creates NEWOBJ only of allowed classes, applies BUILD only to
   instances of allowed classes, APPENDs only to lists and SETITEMs only into dicts, and hands persistent
   ids to the caller's `persistent_load` (which maps them to the archive's own entries and nothing else).

Memory is bounded: each opcode is charged at least what it can allocate (a container, a stack slot, a
string's bytes) against a budget the caller sets from the file's size, so a small file cannot build a
large object graph (1 MiB of EMPTY_DICT opcodes is ~70 MiB of dicts).

The allowlist: OrderedDict, Counter, set, frozenset, complex, bytearray, `_codecs.encode` (protocol 2's
bytes), whatever the caller passes (tensorlib's dtype and device rebuilders, torch's tensor and storage
names mapped to tensorlib's), and the names users add with `add_safe_globals` / `safe_globals`.
"""
from __future__ import annotations

import _compat_pickle
import codecs
import collections
import io
import pickle
import pickletools
import struct

__all__ = [
    "Unpickler",
    "add_safe_globals",
    "clear_safe_globals",
    "get_safe_globals",
    "globals_in_pickle",
    "safe_globals",
]

# modules torch never allows, even when a user allowlists a name from them
BLOCKED_MODULES = ("sys", "os", "posix", "nt")

# the opcodes of pickle protocols 0-3 that only build data (and the five the allowlist governs)
SUPPORTED = frozenset((
    "PROTO", "STOP", "GLOBAL", "REDUCE", "NEWOBJ", "BUILD", "BINPERSID",
    "MARK", "POP", "POP_MARK", "DUP", "APPEND", "APPENDS", "SETITEM", "SETITEMS",
    "TUPLE", "TUPLE1", "TUPLE2", "TUPLE3", "EMPTY_TUPLE", "EMPTY_LIST", "EMPTY_DICT",
    "NONE", "NEWTRUE", "NEWFALSE", "BININT", "BININT1", "BININT2", "LONG1", "LONG4", "BINFLOAT",
    "BINUNICODE", "SHORT_BINSTRING", "BINSTRING", "BINBYTES", "SHORT_BINBYTES",
    "BINGET", "LONG_BINGET", "BINPUT", "LONG_BINPUT",
))

_CONTAINER = 96   # bytes charged for an opcode that makes a container or an object (an empty dict is 64)
_SLOT = 16        # bytes charged for a stack slot, a memo entry's share or a list item

_user_globals: set = set()


class DamagedPickle(pickle.UnpicklingError):
    """The pickle is not well formed (truncated, a stack or memo it never filled) or builds more than its
    budget: damage or a bomb, not a refusal that weights_only=False would lift."""


def add_safe_globals(safe_globals: list) -> None:
    """Marks the given globals (classes, functions, or (global, "module.qualname") pairs) as safe for
    weights_only loading, as torch.serialization.add_safe_globals does."""
    global _user_globals
    _user_globals = _user_globals | set(safe_globals)


def get_safe_globals() -> list:
    """The globals users added with add_safe_globals (torch.serialization.get_safe_globals)."""
    return list(_user_globals)


def clear_safe_globals() -> None:
    """Forget every global users added (torch.serialization.clear_safe_globals)."""
    global _user_globals
    _user_globals = set()


class safe_globals:
    """Context manager that allows the given globals for weights_only loading inside its block."""

    def __init__(self, safe_globals: list):
        self.safe_globals = safe_globals

    def __enter__(self):
        add_safe_globals(self.safe_globals)

    def __exit__(self, *exc):
        global _user_globals
        _user_globals = _user_globals - set(self.safe_globals)


def user_allowed_globals() -> dict:
    """{"module.qualname": object} of the user's globals, with torch's checks of the pair form."""
    rc = {}
    for g in _user_globals:
        if isinstance(g, tuple):
            if len(g) != 2:
                raise ValueError(f"Expected tuple of length 2 (global, str of callable full path), but got tuple of "
                                 f"length: {len(g)}")
            if type(g[1]) is not str:
                raise TypeError(f"Expected second item in tuple to be str of callable full path, but got: "
                                f"{type(g[1])}")
            rc[g[1]] = g[0]
        else:
            rc[f"{g.__module__}.{g.__qualname__}"] = g
    return rc


def default_allowed_globals() -> dict:
    return {"collections.OrderedDict": collections.OrderedDict, "collections.Counter": collections.Counter,
            "builtins.set": set, "builtins.frozenset": frozenset, "builtins.complex": complex,
            "builtins.bytearray": bytearray, "_codecs.encode": codecs.encode}


def global_name(module: str, name: str) -> str:
    """"module.name" of a GLOBAL, with protocol 2's Python 2 names mapped (`__builtin__ set`), as torch does."""
    if (module, name) in _compat_pickle.NAME_MAPPING:
        module, name = _compat_pickle.NAME_MAPPING[(module, name)]
    elif module in _compat_pickle.IMPORT_MAPPING:
        module = _compat_pickle.IMPORT_MAPPING[module]
    return f"{module}.{name}"


def _unsupported_global(full_path: str) -> pickle.UnpicklingError:
    """torch's message, naming tensorlib's functions; a builtin is named without 'builtins.' as torch does."""
    shown = full_path.removeprefix("builtins.")
    return pickle.UnpicklingError(
        f"Unsupported global: GLOBAL {shown} was not an allowed global by default. Please use "
        f"`tensorlib.serialization.add_safe_globals([{shown}])` or the `tensorlib.serialization.safe_globals("
        f"[{shown}])` context manager to allowlist this global if you trust this class/function.")


def _split_global(arg: str) -> tuple[str, str]:
    module, _, name = arg.partition(" ")
    return module, name


def globals_in_pickle(data: bytes) -> list[str]:
    """Every GLOBAL of a pickle, in order, parsed without running anything (torch's get_globals_in_pkl)."""
    return [global_name(*_split_global(arg)) for op, arg, _ in _ops(data) if op.name == "GLOBAL"]


def _ops(data: bytes):
    """pickletools' opcode parser, with its errors as UnpicklingError; a pickle must end with STOP."""
    try:
        yield from pickletools.genops(data)
    except (ValueError, struct.error, UnicodeDecodeError) as e:
        raise DamagedPickle(f"the pickle is damaged ({e})") from None


def scan(data: bytes, allowed: dict) -> None:
    """Pass 1: refuse an unsupported opcode or a GLOBAL outside `allowed`, before anything runs."""
    for op, arg, _ in _ops(data):
        if op.name not in SUPPORTED:
            raise pickle.UnpicklingError(f"Unsupported operand {op.code.encode('latin-1')[0]}")
        if op.name == "GLOBAL":
            module, name = _split_global(arg)
            full_path = global_name(module, name)
            top = full_path.partition(".")[0]
            if top in BLOCKED_MODULES:
                raise pickle.UnpicklingError(f"Trying to load unsupported GLOBAL {full_path} whose module {top} is "
                                             "blocked.")
            if full_path not in allowed:
                raise _unsupported_global(full_path)


class Budget:
    """Bytes a load may still build: charged by the unpickler per opcode and by rebuild functions per
    tensor they copy (a torch pickle may rebuild one storage many times)."""

    def __init__(self, limit: int):
        self.limit = self.left = limit

    def charge(self, n: int) -> None:
        self.left -= n
        if self.left < 0:
            raise DamagedPickle(f"the pickle builds more than the {self.limit} bytes of objects a file of this size "
                                "may hold (a memory bomb?); if you trust the file, weights_only=False loads it "
                                "without this limit")


class Unpickler:
    """Pass 2: runs a scanned pickle with only allowed globals; `persistent_load(pid)` maps archive ids."""

    def __init__(self, data: bytes, persistent_load, allowed: dict, budget: Budget):
        self.file = io.BytesIO(data)
        self.data = data
        self.persistent_load = persistent_load
        self.allowed = allowed
        self.allowed_ids = {id(v) for v in allowed.values()}
        self.budget = budget
        self.memo: dict = {}

    def load(self):
        scan(self.data, self.allowed)
        self.stack: list = []
        self.metastack: list = []
        read = self.file.read
        while True:
            code = read(1)
            if not code:
                raise DamagedPickle("the pickle ends before its STOP opcode")
            op = _DISPATCH.get(code[0])
            if op is None:
                raise pickle.UnpicklingError(f"Unsupported operand {code[0]}")
            if op is _stop:
                return self.pop()
            op(self)

    # --- helpers ---------------------------------------------------------------------------------
    def charge(self, n: int) -> None:
        self.budget.charge(n)

    def push(self, obj, cost=_SLOT):
        self.charge(cost)
        self.stack.append(obj)

    def pop(self):
        if not self.stack:
            raise DamagedPickle("the pickle pops an empty stack (damaged file)")
        return self.stack.pop()

    def top(self):
        if not self.stack:
            raise DamagedPickle("the pickle reads an empty stack (damaged file)")
        return self.stack[-1]

    def pop_mark(self):
        if not self.metastack:
            raise DamagedPickle("the pickle closes a MARK it never opened (damaged file)")
        items = self.stack
        self.stack = self.metastack.pop()
        return items

    def read_exact(self, n: int) -> bytes:
        data = self.file.read(n)
        if len(data) != n:
            raise DamagedPickle("the pickle ends inside an opcode's argument (damaged file)")
        return data

    def unpack(self, fmt: str):
        return struct.unpack(fmt, self.read_exact(struct.calcsize(fmt)))[0]

    def is_allowed(self, obj) -> bool:
        return id(obj) in self.allowed_ids

    def dict_target(self, opcode: str):
        target = self.top()
        if type(target) not in (dict, collections.OrderedDict, collections.Counter) and not (
                isinstance(target, dict) and self.is_allowed(type(target))):   # a dict subclass the user allowed
            raise pickle.UnpicklingError(f"Can only {opcode} for dict, collections.OrderedDict, collections.Counter, "
                                         f"but got {type(target)}")
        return target

    def list_target(self, what: str):
        target = self.top()
        if type(target) is not list:
            raise pickle.UnpicklingError(f"Can only {what} lists, but got {type(target)}")
        return target


# --- opcodes: each a function of the unpickler -------------------------------------------------

def _stop(u):   # handled in load()
    raise AssertionError


def _proto(u):
    u.read_exact(1)


def _global(u):
    module = u.file.readline()[:-1].decode("utf-8")
    name = u.file.readline()[:-1].decode("utf-8")
    u.push(u.allowed[global_name(module, name)])   # scan() refused every other name


def _reduce(u):
    args = u.pop()
    func = u.top()
    if not u.is_allowed(func):
        raise pickle.UnpicklingError(f"Trying to call reduce for unrecognized function {func!r}"[:200])
    if type(args) is not tuple:
        raise pickle.UnpicklingError(f"REDUCE's arguments must be a tuple, but got {type(args)}")
    u.charge(_CONTAINER)
    u.stack[-1] = func(*args)


def _newobj(u):
    args = u.pop()
    cls = u.pop()
    if not (isinstance(cls, type) and u.is_allowed(cls)):
        raise pickle.UnpicklingError(f"Can only create new object for classes allowlisted via `add_safe_globals` "
                                     f"but got {cls!r}"[:200])
    if type(args) is not tuple:
        raise pickle.UnpicklingError(f"NEWOBJ's arguments must be a tuple, but got {type(args)}")
    u.push(cls.__new__(cls, *args), _CONTAINER)


def _build(u):
    state = u.pop()
    inst = u.top()
    if not u.is_allowed(type(inst)):
        raise pickle.UnpicklingError(f"Can only build OrderedDict or types allowlisted via `add_safe_globals`, but got "
                                     f"{type(inst)}"[:200])
    setstate = getattr(inst, "__setstate__", None)
    if setstate is not None:
        setstate(state)
        return
    slotstate = None
    if isinstance(state, tuple) and len(state) == 2:   # pickle's load_build
        state, slotstate = state
    if state:
        inst.__dict__.update(state)
    if slotstate:
        for k, v in slotstate.items():
            setattr(inst, k, v)


def _binpersid(u):
    pid = u.pop()
    if type(pid) is not tuple and type(pid) is not int:
        raise pickle.UnpicklingError(f"persistent_load id must be tuple or int, but got {type(pid)}")
    u.push(u.persistent_load(pid), _CONTAINER)


def _mark(u):
    u.charge(_CONTAINER)
    u.metastack.append(u.stack)
    u.stack = []


def _pop(u):
    if u.stack:
        u.stack.pop()
    else:
        u.pop_mark()


def _pop_mark(u):
    u.pop_mark()


def _dup(u):
    u.push(u.top())


def _append(u):
    item = u.pop()
    u.charge(_SLOT)
    u.list_target("append to").append(item)


def _appends(u):
    items = u.pop_mark()
    u.charge(_SLOT * len(items))
    u.list_target("extend").extend(items)


def _setitem(u):
    v = u.pop()
    k = u.pop()
    u.charge(_CONTAINER)
    u.dict_target("SETITEM")[k] = v


def _setitems(u):
    items = u.pop_mark()
    if len(items) % 2:
        raise DamagedPickle("SETITEMS got an odd number of items (damaged file)")
    target = u.dict_target("SETITEMS")
    u.charge(_CONTAINER * (len(items) // 2))
    for i in range(0, len(items), 2):
        target[items[i]] = items[i + 1]


def _tuple(u):
    items = u.pop_mark()
    u.push(tuple(items), _CONTAINER + _SLOT * len(items))


def _tuple_n(n):
    def op(u):
        if len(u.stack) < n:
            raise DamagedPickle(f"TUPLE{n} needs {n} items on the stack (damaged file)")
        items = tuple(u.stack[-n:])
        del u.stack[-n:]
        u.push(items, _CONTAINER)
    return op


def _const(value, cost=_SLOT):
    def op(u):
        u.push(value() if callable(value) else value, cost)
    return op


def _binint(u):
    u.push(u.unpack("<i"))


def _binint1(u):
    u.push(u.read_exact(1)[0])


def _binint2(u):
    u.push(u.unpack("<H"))


def _long(fmt):
    def op(u):
        n = u.unpack(fmt)
        if n < 0:
            raise DamagedPickle("LONG4 pickle has negative byte count")
        u.charge(n + _SLOT)
        u.push(pickle.decode_long(u.read_exact(n)))
    return op


def _binfloat(u):
    u.push(u.unpack(">d"))


def _text(fmt, kind):
    """BINUNICODE, SHORT_BINSTRING/BINSTRING (a Python 2 str, decoded as UTF-8 as torch.load's default
    encoding does), BINBYTES, SHORT_BINBYTES."""
    def op(u):
        n = u.unpack(fmt)
        if n < 0:
            raise DamagedPickle("the pickle declares a negative string length (damaged file)")
        u.charge(n + _CONTAINER)
        data = u.read_exact(n)
        u.push(str(data, "utf-8", "surrogatepass") if kind == "str" else data, 0)
    return op


def _get(fmt):
    def op(u):
        i = u.unpack(fmt)
        if i not in u.memo:
            raise DamagedPickle(f"Memo value not found at index {i}")
        u.push(u.memo[i])
    return op


def _put(fmt):
    def op(u):
        u.charge(_CONTAINER)
        u.memo[u.unpack(fmt)] = u.top()
    return op


_OPS = {
    "PROTO": _proto, "STOP": _stop, "GLOBAL": _global, "REDUCE": _reduce, "NEWOBJ": _newobj, "BUILD": _build,
    "BINPERSID": _binpersid, "MARK": _mark, "POP": _pop, "POP_MARK": _pop_mark, "DUP": _dup, "APPEND": _append,
    "APPENDS": _appends, "SETITEM": _setitem, "SETITEMS": _setitems, "TUPLE": _tuple, "TUPLE1": _tuple_n(1),
    "TUPLE2": _tuple_n(2), "TUPLE3": _tuple_n(3), "EMPTY_TUPLE": _const(()), "EMPTY_LIST": _const(list, _CONTAINER),
    "EMPTY_DICT": _const(dict, _CONTAINER), "NONE": _const(None), "NEWTRUE": _const(True), "NEWFALSE": _const(False),
    "BININT": _binint, "BININT1": _binint1, "BININT2": _binint2, "LONG1": _long("<B"), "LONG4": _long("<i"),
    "BINFLOAT": _binfloat, "BINUNICODE": _text("<I", "str"), "SHORT_BINSTRING": _text("<B", "str"),
    "BINSTRING": _text("<i", "str"), "BINBYTES": _text("<I", "bytes"), "SHORT_BINBYTES": _text("<B", "bytes"),
    "BINGET": _get("<B"), "LONG_BINGET": _get("<I"), "BINPUT": _put("<B"), "LONG_BINPUT": _put("<I"),
}
assert set(_OPS) == SUPPORTED
_DISPATCH = {op.code.encode("latin-1")[0]: _OPS[op.name] for op in pickletools.opcodes if op.name in _OPS}
