"""nn.Module: parameters, buffers and submodules in registration order, hooks, state_dict, and a named
profiler region around every forward.

Region names. Each forward is reported through `tensorlib.dispatch.range_enter(name, "module")` with
the module's qualified name: the root module (one called while no other module's forward runs) is named
by its class, and a submodule by its caller's name plus its attribute path, e.g. `MLP`, `MLP.fc1`,
`Net.encoder.0.fc1`. The name follows the call, so a module shared by two parents is named by the one
that called it. Names are cached per parent (reset on add_module / attribute assignment), and nothing
of this runs unless a hook listens to ranges: with no hooks `__call__` is one check and `forward`.
"""
from __future__ import annotations

import functools
import itertools
import threading
from typing import Any, Callable
from collections import OrderedDict, namedtuple

from ... import _hooks as _H
from ..._dtype import namespace
from ..._tensor import Tensor
from ..parameter import Buffer, Parameter

__all__ = ["Module", "RemovableHandle"]

class _IncompatibleKeys(namedtuple("IncompatibleKeys", ["missing_keys", "unexpected_keys"])):
    """What `load_state_dict` returns; printed as torch prints it when every key matched."""

    __slots__ = ()

    def __repr__(self):
        if not self.missing_keys and not self.unexpected_keys:
            return "<All keys matched successfully>"
        return super().__repr__()

    __str__ = __repr__


IncompatibleKeys = _IncompatibleKeys


class _CallStack(threading.local):
    def __init__(self):
        self.frames = []      # (module, qualified name) of the forwards running on this thread


_STACK = _CallStack()


def module_stack() -> list:
    """This thread's running forwards as (module, qualified name), innermost last: while a hook's
    range_enter(name, "module") runs, the module entered is the last entry. Kept only while some hook
    observes ranges (otherwise modules are not tracked and the list stays empty); read it, do not change it."""
    return _STACK.frames
_hook_ids = itertools.count()


class RemovableHandle:
    """Returned by the register_*_hook methods; `remove()` unregisters the hook."""

    def __init__(self, hooks: dict, *extra: dict):
        self._hooks = hooks
        self._extra = extra          # dicts of per-hook flags (with_kwargs, always_call)
        self.id = next(_hook_ids)

    def remove(self):
        self._hooks.pop(self.id, None)
        for d in self._extra:
            d.pop(self.id, None)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.remove()


def _addindent(s, n):
    lines = s.split("\n")
    if len(lines) == 1:
        return s
    return lines[0] + "\n" + "\n".join(" " * n + line for line in lines[1:])


class Module:
    """Base class of every layer and model, as torch.nn.Module."""

    _version = 1
    call_super_init = False
    dump_patches = False

    def __init__(self, *args, **kwargs):
        if args or kwargs:
            raise TypeError(f"{type(self).__name__}.__init__() got unexpected arguments {args} {kwargs}")
        sa = object.__setattr__
        sa(self, "training", True)
        sa(self, "_parameters", OrderedDict())
        sa(self, "_buffers", OrderedDict())
        sa(self, "_non_persistent_buffers_set", set())
        sa(self, "_modules", OrderedDict())
        sa(self, "_forward_pre_hooks", OrderedDict())
        sa(self, "_forward_hooks", OrderedDict())
        sa(self, "_forward_hooks_with_kwargs", {})
        sa(self, "_forward_pre_hooks_with_kwargs", {})
        sa(self, "_forward_hooks_always_called", {})
        sa(self, "_child_names", None)      # {id(child): (qualname prefix, {id(child): qualified name})}

    forward: Callable[..., Any]

    def _forward_unimplemented(self, *input):
        raise NotImplementedError(f'Module [{type(self).__name__}] is missing the required "forward" function')

    # --- calling ------------------------------------------------------------------------------
    def __call__(self, *args, **kwargs):
        if self._forward_pre_hooks or self._forward_hooks:
            return self._call_slow(args, kwargs)
        rp = _H.module_pair
        if rp is None:
            return self.forward(*args, **kwargs) if kwargs else self.forward(*args)
        # observed, no forward hooks (a profiled model's usual case): _call_slow's region, without its
        # hook loops
        frames = _STACK.frames
        name = self._qualname_under(frames)
        frames.append((self, name))
        try:
            token = rp[0](name, "module")
            try:
                return self.forward(*args, **kwargs) if kwargs else self.forward(*args)
            finally:
                rp[1](token)
        finally:
            frames.pop()

    def _qualname_under(self, frames):
        if not frames:
            return type(self).__name__
        parent, pname = frames[-1]
        cache = parent._child_names
        if cache is None or cache[0] != pname:
            cache = (pname, {})
            object.__setattr__(parent, "_child_names", cache)
        names = cache[1]
        q = names.get(id(self))
        if q is None:
            q = None
            for n, m in parent._modules.items():
                if m is self:
                    q = f"{pname}.{n}"
                    break
            else:           # deeper: reached through containers that are never called (ModuleList, ModuleDict)
                for n, m in parent.named_modules():
                    if m is self and n:
                        q = f"{pname}.{n}"
                        break
            if q is None:   # called from the parent's forward but not one of its descendants: not
                return f"{pname}.{type(self).__name__}"   # cached (a short-lived module's id can be reused)
            names[id(self)] = q
        return q

    def _call_slow(self, args, kwargs):
        frames = _STACK.frames
        token = None
        rp = _H.module_pair
        if rp is not None:
            name = self._qualname_under(frames)
            frames.append((self, name))
            token = rp[0](name, "module")
        called = set()
        try:
            for hid, hook in list(self._forward_pre_hooks.items()):
                if hid in self._forward_pre_hooks_with_kwargs:
                    r = hook(self, args, kwargs)
                    if r is not None:
                        args, kwargs = r
                else:
                    r = hook(self, args)
                    if r is not None:
                        args = r if isinstance(r, tuple) else (r,)
            out = self.forward(*args, **kwargs)
            for hid, hook in list(self._forward_hooks.items()):
                called.add(hid)
                r = self._run_forward_hook(hid, hook, args, kwargs, out)
                if r is not None:
                    out = r
            return out
        except Exception:
            # as torch: hooks registered with always_call=True run even when forward (or a hook) raised,
            # with None for the output; what they return is ignored and the exception propagates
            for hid, hook in list(self._forward_hooks.items()):
                if hid in self._forward_hooks_always_called and hid not in called:
                    self._run_forward_hook(hid, hook, args, kwargs, None)
            raise
        finally:
            if rp is not None:
                rp[1](token)
                frames.pop()

    def _run_forward_hook(self, hid, hook, args, kwargs, out):
        return hook(self, args, kwargs, out) if hid in self._forward_hooks_with_kwargs else hook(self, args, out)

    @staticmethod
    def _add_hook(hooks, hook, prepend, flags):
        """Register `hook` in `hooks` (first when prepend), marking its id in each flag dict whose flag is
        set; the handle removes it from all of them."""
        h = RemovableHandle(hooks, *(d for d, _ in flags))
        hooks[h.id] = hook
        for d, on in flags:
            if on:
                d[h.id] = True
        if prepend:
            hooks.move_to_end(h.id, last=False)
        return h

    def register_forward_pre_hook(self, hook, *, prepend=False, with_kwargs=False):
        return self._add_hook(self._forward_pre_hooks, hook, prepend,
                              [(self._forward_pre_hooks_with_kwargs, with_kwargs)])

    def register_forward_hook(self, hook, *, prepend=False, with_kwargs=False, always_call=False):
        return self._add_hook(self._forward_hooks, hook, prepend,
                              [(self._forward_hooks_with_kwargs, with_kwargs),
                               (self._forward_hooks_always_called, always_call)])

    # --- registration -------------------------------------------------------------------------
    def _names_changed(self):
        object.__setattr__(self, "_child_names", None)

    def register_parameter(self, name, param):
        if "_parameters" not in self.__dict__:
            raise AttributeError("cannot assign parameter before Module.__init__() call")
        _check_name(name, "parameter")
        if hasattr(self, name) and name not in self._parameters:
            raise KeyError(f"attribute '{name}' already exists")
        if param is None:
            self._parameters[name] = None
        elif not isinstance(param, Parameter):
            raise TypeError(f"cannot assign '{_typename(param)}' object to parameter '{name}' "
                            "(tensorlib.nn.Parameter or None required)")
        elif param.grad_fn is not None:
            raise ValueError(f"Cannot assign non-leaf Tensor to parameter '{name}'. Model parameters must be "
                             f"created explicitly. To express '{name}' as a function of another Tensor, compute "
                             "the value in the forward() method.")
        else:
            self._parameters[name] = param

    def register_buffer(self, name, tensor, persistent=True):
        if "_buffers" not in self.__dict__:
            raise AttributeError("cannot assign buffer before Module.__init__() call")
        _check_name(name, "buffer")
        if hasattr(self, name) and name not in self._buffers:
            raise KeyError(f"attribute '{name}' already exists")
        if tensor is not None and not isinstance(tensor, Tensor):
            raise TypeError(f"cannot assign '{_typename(tensor)}' object to buffer '{name}' "
                            "(tensorlib.Tensor or None required)")
        self._buffers[name] = tensor
        if persistent:
            self._non_persistent_buffers_set.discard(name)
        else:
            self._non_persistent_buffers_set.add(name)

    def add_module(self, name, module):
        if module is not None and not isinstance(module, Module):
            raise TypeError(f"{_typename(module)} is not a Module subclass")
        _check_name(name, "module")
        if hasattr(self, name) and name not in self._modules:
            raise KeyError(f"attribute '{name}' already exists")
        self._modules[name] = module
        self._names_changed()

    register_module = add_module

    def get_submodule(self, target):
        if target == "":
            return self
        mod = self
        for item in target.split("."):
            if item not in mod._modules:
                raise AttributeError(f"{type(mod).__name__} has no attribute `{item}`")
            mod = mod._modules[item]
        return mod

    def get_parameter(self, target):
        mod_path, _, name = target.rpartition(".")
        mod = self.get_submodule(mod_path)
        if name not in mod._parameters:
            raise AttributeError(f"{type(mod).__name__} has no parameter `{name}`")
        return mod._parameters[name]

    def get_buffer(self, target):
        mod_path, _, name = target.rpartition(".")
        mod = self.get_submodule(mod_path)
        if name not in mod._buffers:
            raise AttributeError(f"{type(mod).__name__} has no buffer `{name}`")
        return mod._buffers[name]

    def __setattr__(self, name, value):
        d = self.__dict__
        params = d.get("_parameters")
        if isinstance(value, Parameter):
            if params is None:
                raise AttributeError("cannot assign parameters before Module.__init__() call")
            self._remove_from(name, d, keep="_parameters")
            self.register_parameter(name, value)
            return
        if params is not None and name in params:
            if value is not None:
                raise TypeError(f"cannot assign '{_typename(value)}' as parameter '{name}' "
                                "(tensorlib.nn.Parameter or None expected)")
            params[name] = None
            return
        if isinstance(value, Module):
            if "_modules" not in d:
                raise AttributeError("cannot assign module before Module.__init__() call")
            self._remove_from(name, d, keep="_modules")
            self._modules[name] = value
            self._names_changed()
            return
        mods = d.get("_modules")
        if mods is not None and name in mods:
            if value is not None:
                raise TypeError(f"cannot assign '{_typename(value)}' as child module '{name}' "
                                "(tensorlib.nn.Module or None expected)")
            mods[name] = None
            self._names_changed()
            return
        if isinstance(value, Buffer):
            self._remove_from(name, d, keep="_buffers")
            plain = object.__new__(Tensor)
            plain._data = value._data
            self.register_buffer(name, plain, value.persistent)
            return
        bufs = d.get("_buffers")
        if bufs is not None and name in bufs:
            if value is not None and not isinstance(value, Tensor):
                raise TypeError(f"cannot assign '{_typename(value)}' as buffer '{name}' "
                                "(tensorlib.Tensor or None expected)")
            bufs[name] = value
            return
        object.__setattr__(self, name, value)

    def _remove_from(self, name, d, keep):
        d.pop(name, None)
        for k in ("_parameters", "_buffers", "_modules"):
            if k != keep and k in d:
                d[k].pop(name, None)
        if keep != "_buffers" and "_non_persistent_buffers_set" in d:
            d["_non_persistent_buffers_set"].discard(name)

    def __getattr__(self, name):
        d = self.__dict__
        for k in ("_parameters", "_buffers", "_modules"):
            sub = d.get(k)
            if sub is not None and name in sub:
                return sub[name]
        raise AttributeError(f"'{type(self).__name__}' object has no attribute '{name}'")

    def __delattr__(self, name):
        for k in ("_parameters", "_buffers", "_modules"):
            if name in self.__dict__.get(k, ()):
                del self.__dict__[k][name]
                self._non_persistent_buffers_set.discard(name)
                self._names_changed()
                return
        object.__delattr__(self, name)

    def __dir__(self):
        return sorted(set(super().__dir__()) | set(self._parameters) | set(self._buffers) | set(self._modules))

    # --- iteration ----------------------------------------------------------------------------
    def _named_members(self, get, prefix="", recurse=True, remove_duplicate=True):
        memo = set()
        mods = self.named_modules(prefix=prefix, remove_duplicate=remove_duplicate) if recurse else [(prefix, self)]
        for mprefix, m in mods:
            for k, v in get(m):
                if v is None or (remove_duplicate and id(v) in memo):
                    continue
                if remove_duplicate:
                    memo.add(id(v))
                yield (mprefix + ("." if mprefix else "") + k, v)

    def parameters(self, recurse=True):
        for _, p in self.named_parameters(recurse=recurse):
            yield p

    def named_parameters(self, prefix="", recurse=True, remove_duplicate=True):
        return self._named_members(lambda m: m._parameters.items(), prefix, recurse, remove_duplicate)

    def buffers(self, recurse=True):
        for _, b in self.named_buffers(recurse=recurse):
            yield b

    def named_buffers(self, prefix="", recurse=True, remove_duplicate=True):
        return self._named_members(lambda m: m._buffers.items(), prefix, recurse, remove_duplicate)

    def children(self):
        for _, m in self.named_children():
            yield m

    def named_children(self):
        memo = set()
        for name, m in self._modules.items():
            if m is not None and id(m) not in memo:
                memo.add(id(m))
                yield name, m

    def modules(self):
        for _, m in self.named_modules():
            yield m

    def named_modules(self, memo=None, prefix="", remove_duplicate=True):
        if memo is None:
            memo = set()
        if remove_duplicate:
            if id(self) in memo:
                return
            memo.add(id(self))
        yield prefix, self
        for name, m in self._modules.items():
            if m is None:
                continue
            yield from m.named_modules(memo, prefix + ("." if prefix else "") + name, remove_duplicate)

    # --- modes and conversions ----------------------------------------------------------------
    def train(self, mode=True):
        if not isinstance(mode, bool):
            raise ValueError("training mode is expected to be boolean")
        for m in self.modules():
            object.__setattr__(m, "training", mode)
        return self

    def eval(self):
        return self.train(False)

    def requires_grad_(self, requires_grad=True):
        for p in self.parameters():
            p.requires_grad_(requires_grad)
        return self

    def zero_grad(self, set_to_none=True):
        from ...autograd.grad_mode import zero_grads
        zero_grads(self.parameters(), set_to_none)

    def apply(self, fn):
        for m in self.children():
            m.apply(fn)
        fn(self)
        return self

    def _apply(self, fn, recurse=True):
        """Converts every parameter, buffer and gradient with fn (tensor -> tensor), keeping the objects:
        parameters stay the same Parameter instances (optimizers holding them keep working)."""
        from ...autograd.grad_mode import no_grad
        with no_grad():
            for m in self.modules() if recurse else [self]:
                for p in m._parameters.values():
                    if p is None:
                        continue
                    p._data = fn(p)._data
                    if p._grad is not None:
                        p._grad._data = fn(p._grad)._data
                for k, b in m._buffers.items():
                    if b is not None:
                        m._buffers[k] = fn(b)
        return self

    def to(self, *args, **kwargs):
        from ... import _dtype as D
        device = kwargs.pop("device", None)
        dtype = kwargs.pop("dtype", None)
        kwargs.pop("non_blocking", None)
        fmt = kwargs.pop("memory_format", None)       # torch's: for the 4-d and 5-d parameters and buffers
        if kwargs:
            raise TypeError(f"to() got unexpected keyword arguments {sorted(kwargs)}")
        for a in args:
            if isinstance(a, Tensor):
                device, dtype = a.device, a.dtype
            elif isinstance(a, D.dtype):
                dtype = a
            elif a is not None:
                device = a
        if dtype is not None:
            dtype = D.to_dtype(dtype)
            if not dtype.is_floating_point:
                raise TypeError(f"nn.Module.to only accepts floating point or complex dtypes, but got desired "
                                f"dtype={dtype}")

        def convert(t):
            if fmt is not None and t.dim() in (4, 5):
                return t.to(device=device, dtype=dtype if t.is_floating_point() else None, memory_format=fmt)
            if dtype is not None and t.is_floating_point():
                return t.to(device=device, dtype=dtype)
            return t.to(device=device) if device is not None else t
        return self._apply(convert)

    def cuda(self, device=None):
        return self._apply(lambda t: t.cuda(device))

    def cpu(self):
        return self._apply(lambda t: t.cpu())

    def _cast(self, dtype):
        return self._apply(lambda t: t.to(dtype=dtype) if t.is_floating_point() else t)

    def half(self):
        from ... import _dtype as D
        return self._cast(D.float16)

    def float(self):
        from ... import _dtype as D
        return self._cast(D.float32)

    def bfloat16(self):
        from ... import _dtype as D
        return self._cast(D.bfloat16)

    def double(self):
        from ... import _dtype as D
        return self._cast(D.float64)

    def type(self, dst_type):
        return self._cast(dst_type)

    # --- state ---------------------------------------------------------------------------------
    def state_dict(self, *args, destination=None, prefix="", keep_vars=False):
        if args:
            destination = args[0] if len(args) > 0 else destination
            prefix = args[1] if len(args) > 1 else prefix
            keep_vars = args[2] if len(args) > 2 else keep_vars
        if destination is None:
            destination = OrderedDict()
        for name, p in self._parameters.items():
            if p is not None:
                destination[prefix + name] = p if keep_vars else p.detach()
        for name, b in self._buffers.items():
            if b is not None and name not in self._non_persistent_buffers_set:
                destination[prefix + name] = b if keep_vars else b.detach()
        for name, m in self._modules.items():
            if m is not None:
                m.state_dict(destination=destination, prefix=prefix + name + ".", keep_vars=keep_vars)
        return destination

    def load_state_dict(self, state_dict, strict=True, assign=False):
        """Copies parameters and buffers from state_dict; reports missing / unexpected keys and shape
        mismatches in torch's words (all errors at once)."""
        from ...autograd.grad_mode import no_grad
        if not hasattr(state_dict, "keys"):
            raise TypeError(f"Expected state_dict to be dict-like, got {type(state_dict)}.")
        errors: list = []
        hook_missing: list = []
        state_dict = self._run_load_state_dict_pre_hooks(state_dict, strict, hook_missing, errors)
        expected = {}
        for mprefix, m in self.named_modules():
            pre = mprefix + "." if mprefix else ""
            for n, p in m._parameters.items():
                if p is not None:
                    expected[pre + n] = (m, "_parameters", n)
            for n, b in m._buffers.items():
                if b is not None and n not in m._non_persistent_buffers_set:
                    expected[pre + n] = (m, "_buffers", n)
        missing = hook_missing + [k for k in expected if k not in state_dict]
        unexpected = [k for k in state_dict if k not in expected]
        with no_grad():
            for k, (m, kind, n) in expected.items():
                if k not in state_dict:
                    continue
                src = state_dict[k]
                if not isinstance(src, Tensor):
                    errors.append(f'While copying the parameter named "{k}", expected tensorlib.Tensor or Tensor-like '
                                  f'object from checkpoint but received {type(src)}')
                    continue
                dst = getattr(m, kind)[n]
                if tuple(src.shape) != tuple(dst.shape):
                    errors.append(f"size mismatch for {k}: copying a param with shape {src.shape} from checkpoint, "
                                  f"the shape in current model is {dst.shape}.")
                    continue
                if assign:
                    if kind == "_parameters":
                        getattr(m, kind)[n] = Parameter(src.detach(), dst.requires_grad)
                    else:
                        getattr(m, kind)[n] = src.detach()
                else:
                    dst.copy_(src)
        if strict:
            if unexpected:
                errors.insert(0, "Unexpected key(s) in state_dict: {}. ".format(
                    ", ".join(f'"{k}"' for k in unexpected)))
            if missing:
                errors.insert(0, "Missing key(s) in state_dict: {}. ".format(", ".join(f'"{k}"' for k in missing)))
        if errors:
            raise RuntimeError("Error(s) in loading state_dict for {}:\n\t{}".format(type(self).__name__,
                                                                                 "\n\t".join(errors)))
        return _IncompatibleKeys(missing, unexpected)

    def _register_load_state_dict_pre_hook(self, hook, with_module=False):
        """torch's private hook, which nn.utils.parametrizations.weight_norm uses to load the hook-based
        weight_norm's keys: `hook(state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys,
        error_msgs)` runs on the state dict's copy before any of it is loaded (with_module: the module first)."""
        hooks = self.__dict__.setdefault("_load_state_dict_pre_hooks", OrderedDict())
        if with_module:
            hook = functools.partial(hook, self)
        return self._add_hook(hooks, hook, False, [])

    def _run_load_state_dict_pre_hooks(self, state_dict, strict, missing, errors):
        """The state dict as the submodules' load pre-hooks leave it (a copy, when there are any; torch copies
        it always): each hook sees the keys under its module's prefix and may rename, add or drop them."""
        hooked = [(p, m) for p, m in self.named_modules() if m.__dict__.get("_load_state_dict_pre_hooks")]
        if not hooked:
            return state_dict
        metadata = getattr(state_dict, "_metadata", None)
        state_dict = OrderedDict(state_dict)
        unexpected: list = []
        for p, m in hooked:
            local = metadata.get(p, {}) if metadata is not None else {}
            for hook in list(m._load_state_dict_pre_hooks.values()):
                hook(state_dict, p + "." if p else "", local, strict, missing, unexpected, errors)
        return state_dict

    # --- repr ----------------------------------------------------------------------------------
    def extra_repr(self):
        return ""

    def _get_name(self):
        return type(self).__name__

    def __repr__(self):
        extra = self.extra_repr()
        lines = extra.split("\n") if extra else []
        for key, m in self._modules.items():
            lines.append(f"({key}): " + _addindent(repr(m), 2))
        main = self._get_name() + "("
        if lines:
            if len(lines) == 1 and not self._modules:
                main += lines[0]
            else:
                main += "\n  " + "\n  ".join(lines) + "\n"
        return main + ")"

    def __setstate__(self, state):
        self.__dict__.update(state)

    def share_memory(self):
        """torch's Module.share_memory: every parameter, gradient and buffer moved to shared memory in place
        (Tensor.share_memory_), so processes made after (fork) or sent the module (tensorlib.multiprocessing)
        update one set of values: Hogwild training."""
        return self._apply(lambda t: t.share_memory_())


Module.forward = Module._forward_unimplemented


def _typename(v):
    """How torch names a value's type in its assignment errors ('torch.FloatTensor', 'int', ...)."""
    if isinstance(v, Tensor):
        from ...ops.nn_ops import type_name
        return f"{namespace()}.{type_name(v)}Tensor"
    mod = type(v).__module__
    return type(v).__name__ if mod == "builtins" else f"{mod}.{type(v).__name__}"


def _check_name(name, what):
    if not isinstance(name, str):
        raise TypeError(f"{what} name should be a string. Got {type(name).__name__}")
    if "." in name:
        raise KeyError(f'{what} name can\'t contain "."')
    if name == "":
        raise KeyError(f'{what} name can\'t be empty string ""')
