"""nn.Module: parameters, buffers and submodules in registration order, hooks, state_dict, and a named
profiler region around every forward.

Region names. Each forward is reported through `tensorlib.dispatch.range_enter(name, "module")` with
the module's qualified name: the root module (one called while no other module's forward runs) is named
by its class, and a submodule by its caller's name plus its attribute path, e.g. `MLP`, `MLP.fc1`,
`Net.encoder.0.fc1`. The name follows the call, so a module shared by two parents is named by the one
that called it. Names are cached per parent (reset on add_module / attribute assignment), and nothing
of this runs unless a hook listens to ranges: with no hooks `__call__` is three checks (the two forward hook
dicts and `_slow_call`, a flag set by backward hooks and compile()), one module global (`_call_route`: range
hooks or process-wide module hooks) and `forward`.

Backward hooks are torch's: the full ones (and pre-hooks) pass the call's tensor inputs and outputs through
BackwardHookFunction nodes whose node hooks run them (`_functions.BackwardHook`); the deprecated one is a
node hook on the output's grad_fn. state_dict / load_state_dict go through each module's
_save_to_state_dict / _load_from_state_dict (the protocol subclasses override), with torch's `_metadata`
versions and hooks.
"""
from __future__ import annotations

import functools
import itertools
import threading
import warnings
import weakref
from typing import Any, Callable
from collections import OrderedDict, namedtuple
from collections.abc import Mapping

from ... import _hooks as _H
from ..._dtype import namespace
from ..._tensor import Tensor
from ..parameter import Buffer, Parameter, is_lazy

__all__ = ["register_module_forward_pre_hook", "register_module_forward_hook", "register_module_full_backward_pre_hook",
           "register_module_backward_hook", "register_module_full_backward_hook",
           "register_module_buffer_registration_hook", "register_module_module_registration_hook",
           "register_module_parameter_registration_hook", "Module", "RemovableHandle"]

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
    """Returned by the register_*_hook methods; `remove()` unregisters the hook (torch.utils.hooks.RemovableHandle:
    `extra_dict`, one dict or several, are dicts of per-hook flags cleared with it)."""

    def __init__(self, hooks: dict, *extra: dict, extra_dict=None):
        self._hooks = hooks
        if extra_dict is not None:
            extra = extra + (tuple(extra_dict) if isinstance(extra_dict, (list, tuple)) else (extra_dict,))
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


class _GlobalHandle(RemovableHandle):
    """A process-wide hook's handle: removing it also recomputes whether any global call hook is left."""

    def remove(self):
        super().remove()
        _global_hooks_changed()


class _WrappedHook:
    """torch's _WrappedHook: a hook called with its module first (held weakly), for the load_state_dict pre-hooks
    registered with_module and the non-full backward hooks."""

    def __init__(self, hook: Callable, module: Module | None = None):
        self.hook = hook
        functools.update_wrapper(self, hook)
        self.with_module = False
        if module is not None:
            self.module = weakref.ref(module)
            self.with_module = True

    def __call__(self, *args, **kwargs):
        if self.with_module:
            module = self.module()
            if module is None:
                raise RuntimeError("You are trying to call the hook of a dead Module!")
            return self.hook(module, *args, **kwargs)
        return self.hook(*args, **kwargs)

    def __getstate__(self):
        result = {"hook": self.hook, "with_module": self.with_module}
        if self.with_module:
            result["module"] = self.module()
        return result

    def __setstate__(self, state):
        self.hook = state["hook"]
        self.with_module = state["with_module"]
        if self.with_module:
            if state["module"] is None:
                raise RuntimeError("You are trying to revive the hook of a dead Module!")
            self.module = weakref.ref(state["module"])


# torch.nn.modules.module's process-wide hooks: called for every module, before the module's own
_global_buffer_registration_hooks: dict = OrderedDict()
_global_module_registration_hooks: dict = OrderedDict()
_global_parameter_registration_hooks: dict = OrderedDict()
_global_backward_pre_hooks: dict = OrderedDict()
_global_backward_hooks: dict = OrderedDict()
_global_is_full_backward_hook: bool | None = None
_global_forward_pre_hooks: dict = OrderedDict()
_global_forward_hooks: dict = OrderedDict()
_global_forward_hooks_always_called: dict = OrderedDict()
_global_forward_hooks_with_kwargs: dict = OrderedDict()
# whether any global forward or backward hook is registered (recomputed on every registration and handle
# removal: a hook put into the dicts directly, bypassing the register functions, is seen once another is
# registered)
_global_calls_hooked = False
# the one global Module.__call__'s no-hook path reads: _hooks.module_pair (None: nothing observes module
# regions and no global hook is registered: forward alone), or True when global hooks are registered (then
# _call_slow, which reads module_pair itself)
_call_route: Any = None


def _route_changed():
    global _call_route
    _call_route = True if _global_calls_hooked else _H.module_pair


_H.subscribe(_route_changed)


def _global_hooks_changed():
    global _global_calls_hooked
    _global_calls_hooked = bool(_global_forward_pre_hooks or _global_forward_hooks or _global_backward_pre_hooks
                                or _global_backward_hooks)
    _route_changed()


def _has_any_global_hook():
    return (_global_backward_pre_hooks or _global_backward_hooks or _global_forward_pre_hooks or _global_forward_hooks
            or _global_forward_hooks_always_called or _global_forward_hooks_with_kwargs)


def _add_global(hooks: dict, hook: Callable, handle: RemovableHandle | None = None) -> RemovableHandle:
    """`hook` put in a process-wide table under a new handle. A call hook's handle (_GlobalHandle, the default)
    recomputes Module.__call__'s route now and when it is removed; registration hooks are read where they apply."""
    if handle is None:
        handle = _GlobalHandle(hooks)
    hooks[handle.id] = hook
    if isinstance(handle, _GlobalHandle):
        _global_hooks_changed()
    return handle


def register_module_buffer_registration_hook(hook: Callable[..., None]) -> RemovableHandle:
    """`hook(module, name, buffer)` runs whenever any module registers a buffer (register_buffer, or a tensor
    assigned to a buffer's attribute); a tensor it returns is registered instead."""
    return _add_global(_global_buffer_registration_hooks, hook, RemovableHandle(_global_buffer_registration_hooks))


def register_module_module_registration_hook(hook: Callable[..., None]) -> RemovableHandle:
    """`hook(module, name, submodule)` runs whenever any module registers a submodule; a module it returns is
    registered instead."""
    return _add_global(_global_module_registration_hooks, hook, RemovableHandle(_global_module_registration_hooks))


def register_module_parameter_registration_hook(hook: Callable[..., None]) -> RemovableHandle:
    """`hook(module, name, param)` runs whenever any module registers a parameter; a parameter it returns is
    registered instead."""
    return _add_global(_global_parameter_registration_hooks, hook,
                       RemovableHandle(_global_parameter_registration_hooks))


def register_module_forward_pre_hook(hook: Callable[..., None]) -> RemovableHandle:
    """A forward pre-hook of every module, run before each module's own (`hook(module, args)`)."""
    return _add_global(_global_forward_pre_hooks, hook)


def register_module_forward_hook(hook: Callable[..., None], *, with_kwargs: bool = False,
                                 always_call: bool = False) -> RemovableHandle:
    """A forward hook of every module, run before each module's own (`hook(module, args, output)`, with
    kwargs before output when with_kwargs)."""
    handle = _GlobalHandle(_global_forward_hooks, extra_dict=_global_forward_hooks_always_called)
    if with_kwargs:
        _global_forward_hooks_with_kwargs[handle.id] = True
    if always_call:
        _global_forward_hooks_always_called[handle.id] = True
    return _add_global(_global_forward_hooks, hook, handle)


def _add_global_backward(hook: Callable, full: bool) -> RemovableHandle:
    """A backward hook of every module: full (register_module_full_backward_hook) or the deprecated kind, never
    both in one process (torch's rule)."""
    global _global_is_full_backward_hook
    if _global_is_full_backward_hook is (not full):
        raise RuntimeError("Cannot use both regular backward hooks and full backward hooks as a "
                           "global Module hook. Please use only one of them.")
    _global_is_full_backward_hook = full
    return _add_global(_global_backward_hooks, hook)


def register_module_backward_hook(hook: Callable) -> RemovableHandle:
    """The deprecated (non-full) backward hook of every module: see Module.register_backward_hook."""
    return _add_global_backward(hook, full=False)


def register_module_full_backward_pre_hook(hook: Callable) -> RemovableHandle:
    """A full backward pre-hook of every module, run before each module's own."""
    return _add_global(_global_backward_pre_hooks, hook)


def register_module_full_backward_hook(hook: Callable) -> RemovableHandle:
    """A full backward hook of every module, run before each module's own."""
    return _add_global_backward(hook, full=True)


_EXTRA_STATE_KEY_SUFFIX = "_extra_state"
# tensorlib.compile, put here by tensorlib._compile (which imports this module; `import tensorlib` imports it)
_compile_fn: list = [None]


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
    _compiled_call_impl: Callable | None = None     # Module.compile's

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
        sa(self, "_backward_pre_hooks", OrderedDict())
        sa(self, "_backward_hooks", OrderedDict())
        sa(self, "_is_full_backward_hook", None)
        sa(self, "_state_dict_hooks", OrderedDict())
        sa(self, "_state_dict_pre_hooks", OrderedDict())
        sa(self, "_load_state_dict_pre_hooks", OrderedDict())
        sa(self, "_load_state_dict_post_hooks", OrderedDict())
        sa(self, "_slow_call", False)       # backward hooks or compiled: see __call__
        sa(self, "_child_names", None)      # {id(child): (qualname prefix, {id(child): qualified name})}

    forward: Callable[..., Any]

    def _forward_unimplemented(self, *input):
        raise NotImplementedError(f'Module [{type(self).__name__}] is missing the required "forward" function')

    # --- calling ------------------------------------------------------------------------------
    def __call__(self, *args, **kwargs):
        # `_slow_call` is set by registering a backward hook or pre-hook and by compile() (and cleared by
        # _call_slow once they are gone)
        if self._forward_pre_hooks or self._forward_hooks or self._slow_call:
            if self._compiled_call_impl is not None:
                return self._compiled_call_impl(*args, **kwargs)
            return self._call_slow(args, kwargs)
        rp = _call_route        # (None: no range hook and no process-wide module hook)
        if rp is None:
            return self.forward(*args, **kwargs) if kwargs else self.forward(*args)
        if _global_calls_hooked:
            return self._call_slow(args, kwargs)
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

    def _call_impl(self, *args, **kwargs):
        """The call without compile()'s replay (what compile() compiles)."""
        return self._call_slow(args, kwargs)

    def _call_slow(self, args, kwargs):
        """torch's _call_impl with hooks: global then own forward pre-hooks; the inputs through a
        BackwardHookFunction when there are full backward hooks or pre-hooks; forward; global then own
        forward hooks; the outputs through a BackwardHookFunction; the non-full backward hooks on the
        output's grad_fn. Inside the module's region when range hooks listen."""
        if self._slow_call and not (self._backward_hooks or self._backward_pre_hooks
                                    or self._compiled_call_impl is not None):
            object.__setattr__(self, "_slow_call", False)       # their handles were removed
        frames = _STACK.frames
        token = None
        rp = _H.module_pair
        if rp is not None:
            name = self._qualname_under(frames)
            frames.append((self, name))
            token = rp[0](name, "module")
        result = None
        called = set()
        try:
            full_backward_hooks: list = []
            non_full_backward_hooks: list = []
            backward_pre_hooks: list = []
            if self._backward_pre_hooks or _global_backward_pre_hooks:
                backward_pre_hooks = self._get_backward_pre_hooks()
            if self._backward_hooks or _global_backward_hooks:
                full_backward_hooks, non_full_backward_hooks = self._get_backward_hooks()

            if _global_forward_pre_hooks or self._forward_pre_hooks:
                for hid, hook in (*_global_forward_pre_hooks.items(), *self._forward_pre_hooks.items()):
                    if hid in self._forward_pre_hooks_with_kwargs:
                        r = hook(self, args, kwargs)
                        if r is not None:
                            if isinstance(r, tuple) and len(r) == 2:
                                args, kwargs = r
                            else:
                                raise RuntimeError("forward pre-hook must return None or a tuple of (new_args, "
                                                   f"new_kwargs), but got {r}.")
                    else:
                        r = hook(self, args)
                        if r is not None:
                            args = r if isinstance(r, tuple) else (r,)

            bw_hook = None
            if full_backward_hooks or backward_pre_hooks:
                from ._functions import BackwardHook
                bw_hook = BackwardHook(self, full_backward_hooks, backward_pre_hooks)
                args = bw_hook.setup_input_hook(args)

            result = self.forward(*args, **kwargs)
            if _global_forward_hooks or self._forward_hooks:
                for hid, hook in (*_global_forward_hooks.items(), *self._forward_hooks.items()):
                    if hid in self._forward_hooks_always_called or hid in _global_forward_hooks_always_called:
                        called.add(hid)
                    if hid in self._forward_hooks_with_kwargs or hid in _global_forward_hooks_with_kwargs:
                        r = hook(self, args, kwargs, result)
                    else:
                        r = hook(self, args, result)
                    if r is not None:
                        result = r

            if bw_hook is not None:
                if not isinstance(result, (Tensor, tuple)):
                    warnings.warn("For backward hooks to be called, module output should be a Tensor or a tuple of "
                                  f"Tensors but received {type(result)}", stacklevel=3)
                result = bw_hook.setup_output_hook(result)

            if non_full_backward_hooks:
                var = result
                while not isinstance(var, Tensor):
                    if isinstance(var, dict):
                        var = next(v for v in var.values() if isinstance(v, Tensor))
                    else:
                        var = var[0]
                grad_fn = var.grad_fn
                if grad_fn is not None:
                    for hook in non_full_backward_hooks:
                        grad_fn.register_hook(_WrappedHook(hook, self))
                    self._maybe_warn_non_full_backward_hook(args, result, grad_fn)
            return result
        except Exception:
            # as torch: forward hooks registered with always_call=True that have not run yet run even when
            # forward (or a hook) raised; an exception of theirs is reported as a warning, and the first
            # exception propagates
            for hid, hook in list(_global_forward_hooks.items()):
                if hid in _global_forward_hooks_always_called and hid not in called:
                    try:
                        r = hook(self, args, result)
                        if r is not None:
                            result = r
                    except Exception as e:  # noqa: BLE001  (reported; the forward's exception propagates)
                        warnings.warn("global module forward hook with ``always_call=True`` raised an exception "
                                      f"that was silenced as another error was raised in forward: {str(e)}",
                                      stacklevel=3)
            for hid, hook in list(self._forward_hooks.items()):
                if hid in self._forward_hooks_always_called and hid not in called:
                    try:
                        if hid in self._forward_hooks_with_kwargs:
                            r = hook(self, args, kwargs, result)
                        else:
                            r = hook(self, args, result)
                        if r is not None:
                            result = r
                    except Exception as e:  # noqa: BLE001  (reported; the forward's exception propagates)
                        warnings.warn("module forward hook with ``always_call=True`` raised an exception that was "
                                      f"silenced as another error was raised in forward: {str(e)}", stacklevel=3)
            raise
        finally:
            if rp is not None:
                rp[1](token)
                frames.pop()

    def _get_backward_hooks(self):
        """(full, non-full) backward hooks of this module's call: the global ones first."""
        full_backward_hooks: list = []
        if _global_is_full_backward_hook is True:
            full_backward_hooks += _global_backward_hooks.values()
        if self._is_full_backward_hook is True:
            full_backward_hooks += self._backward_hooks.values()
        non_full_backward_hooks: list = []
        if _global_is_full_backward_hook is False:
            non_full_backward_hooks += _global_backward_hooks.values()
        if self._is_full_backward_hook is False:
            non_full_backward_hooks += self._backward_hooks.values()
        return full_backward_hooks, non_full_backward_hooks

    def _get_backward_pre_hooks(self):
        return [*_global_backward_pre_hooks.values(), *self._backward_pre_hooks.values()]

    def _maybe_warn_non_full_backward_hook(self, inputs, result, grad_fn):
        """torch's FutureWarnings for the cases where a non-full hook (one on the output's grad_fn) misses
        gradients."""
        if not isinstance(result, Tensor):
            if not (isinstance(result, tuple) and all(isinstance(r, Tensor) for r in result)):
                warnings.warn("Using non-full backward hooks on a Module that does not return a single Tensor or a "
                              "tuple of Tensors is deprecated and will be removed in future versions. This hook will "
                              "be missing some of the grad_output. Please use register_full_backward_hook to get the "
                              "documented behavior.", FutureWarning, stacklevel=3)
                return
        else:
            result = (result,)
        if not isinstance(inputs, Tensor):
            if not (isinstance(inputs, tuple) and all(isinstance(i, Tensor) for i in inputs)):
                warnings.warn("Using non-full backward hooks on a Module that does not take as input a single Tensor "
                              "or a tuple of Tensors is deprecated and will be removed in future versions. This hook "
                              "will be missing some of the grad_input. Please use register_full_backward_hook to get "
                              "the documented behavior.", FutureWarning, stacklevel=3)
                return
        else:
            inputs = (inputs,)
        out_grad_fn = {r.grad_fn for r in result if r.grad_fn is not None}
        if len(out_grad_fn) == 0 or (len(out_grad_fn) == 1 and grad_fn not in out_grad_fn):
            warnings.warn("Using a non-full backward hook when outputs are nested in python data structure is "
                          "deprecated and will be removed in future versions. This hook will be missing some "
                          "grad_output.", FutureWarning, stacklevel=3)
        elif len(out_grad_fn) > 1:
            warnings.warn("Using a non-full backward hook when outputs are generated by different autograd Nodes is "
                          "deprecated and will be removed in future versions. This hook will be missing some "
                          "grad_output. Please use register_full_backward_hook to get the documented behavior.",
                          FutureWarning, stacklevel=3)
        else:
            inputs_grad_fn = {i.grad_fn for i in inputs if i.grad_fn is not None}
            next_functions = {n[0] for n in grad_fn.next_functions}
            if inputs_grad_fn != next_functions:
                warnings.warn("Using a non-full backward hook when the forward contains multiple autograd Nodes is "
                              "deprecated and will be removed in future versions. This hook will be missing some "
                              "grad_input. Please use register_full_backward_hook to get the documented behavior.",
                              FutureWarning, stacklevel=3)

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

    def register_full_backward_pre_hook(self, hook, prepend=False):
        """`hook(module, grad_output)` runs when the gradients with respect to the module's outputs have been
        computed, before its inputs' (grad_output: a tuple, None for outputs that got no gradient); a tuple
        it returns replaces grad_output. Once per backward through each call."""
        h = self._add_hook(self._backward_pre_hooks, hook, prepend, [])
        object.__setattr__(self, "_slow_call", True)
        return h

    def register_backward_hook(self, hook):
        """Deprecated (torch's non-full hook): `hook(module, grad_input, grad_output)` is a post-hook of the
        output's grad_fn, so grad_input are the gradients of that last op's inputs, not the module's; a
        FutureWarning says so where it differs. Use register_full_backward_hook."""
        if self._is_full_backward_hook is True:
            raise RuntimeError("Cannot use both regular backward hooks and full backward hooks on a "
                               "single Module. Please use only one of them.")
        object.__setattr__(self, "_is_full_backward_hook", False)
        h = self._add_hook(self._backward_hooks, hook, False, [])
        object.__setattr__(self, "_slow_call", True)
        return h

    def register_full_backward_hook(self, hook, prepend=False):
        """`hook(module, grad_input, grad_output)` runs when the gradients with respect to the module's
        positional inputs have been computed: grad_input has one entry per positional argument (None for
        non-tensors; zeros for tensors that do not require grad, as torch's), grad_output one per output; a
        tuple it returns replaces grad_input. Made of two BackwardHookFunction nodes (see BackwardHook); an
        output of such a call (or an input inside forward) must not be changed in place."""
        if self._is_full_backward_hook is False:
            raise RuntimeError("Cannot use both regular backward hooks and full backward hooks on a "
                               "single Module. Please use only one of them.")
        object.__setattr__(self, "_is_full_backward_hook", True)
        h = self._add_hook(self._backward_hooks, hook, prepend, [])
        object.__setattr__(self, "_slow_call", True)
        return h

    def compile(self, *args, **kwargs):
        """torch's in-place compile: calls of this module go through tensorlib.compile of its call (the
        replay under no_grad / inference_mode, eager otherwise; see tensorlib._compile); the module itself,
        its class and its state_dict keys stay as they are (unlike tensorlib.compile(module), whose
        OptimizedModule prefixes them with `_orig_mod.`)."""
        object.__setattr__(self, "_compiled_call_impl", _compile_fn[0](self._call_impl, *args, **kwargs))
        object.__setattr__(self, "_slow_call", True)

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
            for hook in _global_parameter_registration_hooks.values():
                output = hook(self, name, param)
                if output is not None:
                    param = output
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
        for hook in _global_buffer_registration_hooks.values():
            output = hook(self, name, tensor)
            if output is not None:
                tensor = output
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
        for hook in _global_module_registration_hooks.values():
            output = hook(self, name, module)
            if output is not None:
                module = output
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

    def set_submodule(self, target: str, module: Module, strict: bool = False) -> None:
        """Put `module` at the dotted path `target` (its parent must exist); with strict, the last name must
        already be an attribute of the parent. What is replaced must be a module (or absent)."""
        if target == "":
            raise ValueError("Cannot set the submodule without a target name!")
        atoms = target.split(".")
        if not isinstance(module, Module):
            raise ValueError("`" + "module" + f"` is not an nn.Module, found {type(module)}")
        parent = self if len(atoms) == 1 else self.get_submodule(".".join(atoms[:-1]))
        if strict and not hasattr(parent, atoms[-1]):
            raise AttributeError(parent._get_name() + " has no attribute `" + atoms[-1] + "`")
        if hasattr(parent, atoms[-1]):
            mod = getattr(parent, atoms[-1])
            if not isinstance(mod, Module):
                raise AttributeError("`" + atoms[-1] + "` is not an nn.Module")
        setattr(parent, atoms[-1], module)

    def get_extra_state(self) -> Any:
        """Override (with set_extra_state) to keep a value that is not a parameter or buffer in the state dict,
        under the key `<prefix>_extra_state`; only subclasses that override it get the key."""
        raise RuntimeError(
            "Reached a code path in Module.get_extra_state() that should never be called. "
            "Please file an issue at https://github.com/pytorch/pytorch/issues/new?template=bug-report.yml "
            "to report this bug.")

    def set_extra_state(self, state: Any) -> None:
        """Override (with get_extra_state): load_state_dict passes it what get_extra_state saved."""
        raise RuntimeError(
            "Reached a code path in Module.set_extra_state() that should never be called. "
            "Please file an issue at https://github.com/pytorch/pytorch/issues/new?template=bug-report.yml "
            "to report this bug.")

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
            for hook in _global_module_registration_hooks.values():
                output = hook(self, name, value)
                if output is not None:
                    value = output
            self._modules[name] = value
            self._names_changed()
            return
        mods = d.get("_modules")
        if mods is not None and name in mods:
            if value is not None:
                raise TypeError(f"cannot assign '{_typename(value)}' as child module '{name}' "
                                "(tensorlib.nn.Module or None expected)")
            for hook in _global_module_registration_hooks.values():
                output = hook(self, name, value)
                if output is not None:
                    value = output
            mods[name] = value
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
            for hook in _global_buffer_registration_hooks.values():
                output = hook(self, name, value)
                if output is not None:
                    value = output
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
        """torch's parameters(): named_parameters' tensors, here without making their names (a training step that
        clips `model.parameters()` walks the tree every step: nn.Transformer(16, 2, 2, 2, 32)'s 64 in 56 -> 30 us)
        where nothing in the tree overrides how modules and parameters are listed; else through named_parameters."""
        mods = _preorder(self) if recurse else [self]
        if mods is None or type(self).named_parameters is not _NAMED_PARAMETERS:
            for _, p in self.named_parameters(recurse=recurse):
                yield p
            return
        memo = set()
        for m in mods:
            for p in m._parameters.values():
                if p is not None and id(p) not in memo:
                    memo.add(id(p))
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

    def to_empty(self, *, device, recurse=True):
        """Parameters and buffers moved to `device` without their values (torch.empty_like each): for a model
        built on the meta device, before load_state_dict fills it."""
        from ... import ops
        return self._apply(lambda t: ops.empty_like(t, device=device), recurse=recurse)

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
    def _register_state_dict_hook(self, hook):
        """torch's private state_dict post-hook: `hook(module, state_dict, prefix, local_metadata)`; a dict it
        returns replaces the state dict (spectral_norm's and real code's older hooks use it)."""
        if getattr(hook, "_from_public_api", False):
            raise RuntimeError("Cannot register the same function as the state dict post hook that was "
                               "previously registered via register_state_dict_post_hook")
        return self._add_hook(self._state_dict_hooks, hook, False, [])

    def register_state_dict_post_hook(self, hook):
        """`hook(module, state_dict, prefix, local_metadata)` after this module's (and its children's) entries
        are in the state dict; it changes the dict in place and must return None."""
        hook._from_public_api = True
        return self._add_hook(self._state_dict_hooks, hook, False, [])

    def register_state_dict_pre_hook(self, hook):
        """`hook(module, prefix, keep_vars)` before this module's state_dict writes anything."""
        return self._add_hook(self._state_dict_pre_hooks, hook, False, [])

    def _save_to_state_dict(self, destination, prefix, keep_vars):
        """This module's own entries (not its children's): parameters, persistent buffers and, where a subclass
        overrides get_extra_state, `<prefix>_extra_state`. Subclasses override it to save something else."""
        for name, param in self._parameters.items():
            if param is not None:
                destination[prefix + name] = param if keep_vars else param.detach()
        for name, buf in self._buffers.items():
            if buf is not None and name not in self._non_persistent_buffers_set:
                destination[prefix + name] = buf if keep_vars else buf.detach()
        if getattr(self.__class__, "get_extra_state", Module.get_extra_state) is not Module.get_extra_state:
            destination[prefix + _EXTRA_STATE_KEY_SUFFIX] = self.get_extra_state()

    def state_dict(self, *args, destination=None, prefix="", keep_vars=False):
        """torch's: an OrderedDict of every module's _save_to_state_dict, parents before children, with
        `_metadata` ({module prefix: {"version": its class's _version}}, which load_state_dict hands each
        _load_from_state_dict as local_metadata) and the pre- and post-hooks run per module."""
        if len(args) > 0:
            warnings.warn("Positional args are being deprecated, use kwargs instead. Refer to "
                          "https://pytorch.org/docs/main/generated/torch.nn.Module.html#torch.nn.Module.state_dict"
                          " for details.", FutureWarning, stacklevel=2)
            if destination is None:
                destination = args[0]
            if len(args) > 1 and prefix == "":
                prefix = args[1]
            if len(args) > 2 and keep_vars is False:
                keep_vars = args[2]
        if destination is None:
            destination = OrderedDict()
            destination._metadata = OrderedDict()

        local_metadata = dict(version=self._version)
        if hasattr(destination, "_metadata"):
            destination._metadata[prefix[:-1]] = local_metadata

        for hook in self._state_dict_pre_hooks.values():
            hook(self, prefix, keep_vars)
        self._save_to_state_dict(destination, prefix, keep_vars)
        for name, module in self._modules.items():
            if module is not None:
                module.state_dict(destination=destination, prefix=prefix + name + ".", keep_vars=keep_vars)
        for hook in self._state_dict_hooks.values():
            hook_result = hook(self, destination, prefix, local_metadata)
            if not getattr(hook, "_from_public_api", False):
                if hook_result is not None:
                    destination = hook_result
            elif hook_result is not None:
                raise RuntimeError("state_dict post-hook must return None")
        return destination

    def _register_load_state_dict_pre_hook(self, hook, with_module=False):
        """torch's private hook (nn.utils.parametrizations.weight_norm loads the hook-based weight_norm's keys
        with it): `hook(state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys, error_msgs)`
        at the start of this module's _load_from_state_dict (with_module: the module first), free to rename,
        add or drop the keys under its prefix."""
        h = RemovableHandle(self._load_state_dict_pre_hooks)
        self._load_state_dict_pre_hooks[h.id] = _WrappedHook(hook, self if with_module else None)
        return h

    def register_load_state_dict_pre_hook(self, hook):
        """`hook(module, state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys, error_msgs)`
        before this module loads its entries."""
        return self._register_load_state_dict_pre_hook(hook, with_module=True)

    def register_load_state_dict_post_hook(self, hook):
        """`hook(module, incompatible_keys)` after this module and its children loaded; it may change the
        missing / unexpected key lists in place, and must return None."""
        return self._add_hook(self._load_state_dict_post_hooks, hook, False, [])

    def _load_from_state_dict(self, state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys,
                              error_msgs):
        """This module's own part of load_state_dict, as torch's (subclasses override it to rename an older
        version's keys, reading local_metadata["version"]): its pre-hooks; each parameter and persistent buffer
        copied from `prefix + name` (a one-element checkpoint value into a 0-d one; assigned instead under
        load_state_dict(assign=True)); extra state; with strict, the missing keys and the keys under its prefix
        that name nothing of its own or of a child. Problems are appended to error_msgs, not raised."""
        from ...autograd.grad_mode import no_grad
        for hook in self._load_state_dict_pre_hooks.values():
            hook(state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys, error_msgs)

        persistent_buffers = {k: v for k, v in self._buffers.items() if k not in self._non_persistent_buffers_set}
        local_name_params = itertools.chain(self._parameters.items(), persistent_buffers.items())
        local_state = {k: v for k, v in local_name_params if v is not None}
        assign_to_params_buffers = local_metadata.get("assign_to_params_buffers", False)

        for name, param in local_state.items():
            key = prefix + name
            if key in state_dict:
                input_param = state_dict[key]
                if not isinstance(input_param, Tensor):
                    error_msgs.append(f'While copying the parameter named "{key}", expected {namespace()}.Tensor or '
                                      f'Tensor-like object from checkpoint but received {type(input_param)}')
                    continue
                # an uninitialized parameter (a lazy module's) has no shape to check (torch's is_param_lazy)
                is_param_lazy = is_lazy(param)
                if not is_param_lazy and len(param.shape) == 0 and len(input_param.shape) == 1 \
                        and input_param.shape[0] == 1:
                    input_param = input_param[0]
                if not is_param_lazy and input_param.shape != param.shape:
                    error_msgs.append(f"size mismatch for {key}: copying a param with shape {input_param.shape} from "
                                      f"checkpoint, the shape in current model is {param.shape}.")
                    continue
                try:
                    with no_grad():
                        if assign_to_params_buffers:
                            if isinstance(param, Parameter):
                                if not isinstance(input_param, Parameter):
                                    input_param = Parameter(input_param, requires_grad=param.requires_grad)
                                else:
                                    input_param.requires_grad_(param.requires_grad)
                            setattr(self, name, input_param)
                        else:
                            param.copy_(input_param)
                except Exception as ex:  # noqa: BLE001  (collected in error_msgs, as torch's)
                    error_msgs.append(f'While copying the parameter named "{key}", whose dimensions in the model are '
                                      f"{param.size()} and whose dimensions in the checkpoint are "
                                      f"{input_param.size()}, an exception occurred : {ex.args}.")
            elif strict:
                missing_keys.append(key)

        extra_state_key = prefix + _EXTRA_STATE_KEY_SUFFIX
        if getattr(self.__class__, "set_extra_state", Module.set_extra_state) is not Module.set_extra_state:
            if extra_state_key in state_dict:
                self.set_extra_state(state_dict[extra_state_key])
            elif strict:
                missing_keys.append(extra_state_key)
        elif strict and (extra_state_key in state_dict):
            unexpected_keys.append(extra_state_key)

        if strict:
            for key in state_dict:
                if key.startswith(prefix) and key != extra_state_key:
                    input_name = key[len(prefix):].split(".", 1)
                    if len(input_name) > 1:
                        if input_name[0] not in self._modules:
                            unexpected_keys.append(key)
                    elif input_name[0] not in local_state:
                        unexpected_keys.append(key)

    def load_state_dict(self, state_dict, strict=True, assign=False):
        """torch's: each module's _load_from_state_dict (always with strict=True, so missing and unexpected keys
        are collected) on a copy of the state dict, a child on the entries under its prefix, then its load
        post-hooks; with strict, missing and unexpected keys are errors, reported with every other problem at
        once in torch's words."""
        if not isinstance(state_dict, Mapping):
            raise TypeError(f"Expected state_dict to be dict-like, got {type(state_dict)}.")

        missing_keys: list = []
        unexpected_keys: list = []
        error_msgs: list = []

        metadata = getattr(state_dict, "_metadata", None)
        state_dict = OrderedDict(state_dict)
        if metadata is not None:
            state_dict._metadata = metadata

        def load(module, local_state_dict, prefix=""):
            local_metadata = {} if metadata is None else metadata.get(prefix[:-1], {})
            if assign:
                local_metadata["assign_to_params_buffers"] = assign
            module._load_from_state_dict(local_state_dict, prefix, local_metadata, True, missing_keys,
                                         unexpected_keys, error_msgs)
            for name, child in module._modules.items():
                if child is not None:
                    child_prefix = prefix + name + "."
                    child_state_dict = {k: v for k, v in local_state_dict.items() if k.startswith(child_prefix)}
                    load(child, child_state_dict, child_prefix)
            incompatible_keys = _IncompatibleKeys(missing_keys, unexpected_keys)
            for hook in module._load_state_dict_post_hooks.values():
                out = hook(module, incompatible_keys)
                if out is not None:
                    raise AssertionError("Hooks registered with ``register_load_state_dict_post_hook`` are not "
                                         "expected to return new values, if incompatible_keys need to be modified, "
                                         "it should be done inplace.")

        load(self, state_dict)

        if strict:
            if len(unexpected_keys) > 0:
                error_msgs.insert(0, "Unexpected key(s) in state_dict: {}. ".format(
                    ", ".join(f'"{k}"' for k in unexpected_keys)))
            if len(missing_keys) > 0:
                error_msgs.insert(0, "Missing key(s) in state_dict: {}. ".format(
                    ", ".join(f'"{k}"' for k in missing_keys)))
        if len(error_msgs) > 0:
            raise RuntimeError("Error(s) in loading state_dict for {}:\n\t{}".format(
                self.__class__.__name__, "\n\t".join(error_msgs)))
        return _IncompatibleKeys(missing_keys, unexpected_keys)

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

    def __getstate__(self):
        state = self.__dict__.copy()
        state.pop("_compiled_call_impl", None)
        return state

    def __setstate__(self, state):
        self.__dict__.update(state)
        d = self.__dict__
        # modules pickled before these attributes existed (or by torch, which has no _slow_call)
        for k in ("_forward_pre_hooks", "_forward_hooks", "_backward_pre_hooks", "_backward_hooks",
                  "_state_dict_hooks", "_state_dict_pre_hooks", "_load_state_dict_pre_hooks",
                  "_load_state_dict_post_hooks"):
            if k not in d:
                d[k] = OrderedDict()
        for k in ("_forward_pre_hooks_with_kwargs", "_forward_hooks_with_kwargs", "_forward_hooks_always_called"):
            if k not in d:
                d[k] = {}
        d.setdefault("_non_persistent_buffers_set", set())
        d.setdefault("_is_full_backward_hook", None)
        d.setdefault("_child_names", None)
        d["_slow_call"] = bool(d["_backward_hooks"] or d["_backward_pre_hooks"])

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


_NAMED_PARAMETERS = Module.named_parameters
_NAMED_MODULES = Module.named_modules
_NAMED_MEMBERS = Module._named_members


def _preorder(root):
    """The modules of root's tree in named_modules' order (depth first, each once, a child after its parent in
    _modules' order), or None where a module in it lists its modules or members its own way (an override of
    named_modules or _named_members): parameters() then takes named_parameters' path."""
    out, seen, stack = [], set(), [root]
    pop, push = stack.pop, stack.extend
    while stack:
        m = pop()
        if m is None or id(m) in seen:
            continue
        cls = type(m)
        if cls.named_modules is not _NAMED_MODULES or cls._named_members is not _NAMED_MEMBERS:
            return None
        seen.add(id(m))
        out.append(m)
        mods = m._modules
        if mods:
            push(reversed(mods.values()))
    return out
