"""Optimizer: parameter groups with their own options, per-parameter state, state_dict round trips.

Every subclass's `step` and `zero_grad` run inside a named region of kind "optimizer" called as torch's
profiler names them (`Optimizer.step#SGD.step`, `Optimizer.zero_grad#SGD.zero_grad`), so a trace groups
the update kernels under the step that issued them. The wrapping happens once per class in
`__init_subclass__`, not per call.
"""
from __future__ import annotations

import functools
from collections import defaultdict
from copy import deepcopy
from itertools import chain

from .. import _hooks as _H
from .._tensor import Tensor
from ..autograd.grad_mode import no_grad, set_grad_enabled, zero_grads
from ..ops.unary_math import neg
from ._common import check_capturable, check_fused_param

__all__ = ["Optimizer", "required"]


class _RequiredParameter:
    """Marks an option without a default (SGD's lr in old torch)."""

    def __repr__(self):
        return "<required parameter>"


required = _RequiredParameter()


def _wrap_step(cls, fn, what):
    name = f"Optimizer.{what}#{cls.__name__}.{what}"
    step = what == "step"

    if step and cls._complex_as_real:
        fn = _with_real_views(fn)

    @functools.wraps(fn)
    def wrapper(self, *args, **kwargs):
        if not _H.range_hooks and not (step and (self._step_pre_hooks or self._step_post_hooks)):
            out = fn(self, *args, **kwargs)     # nothing observes regions, no step hook: the call alone
            if step:
                self._opt_called = True
            return out
        rp = _H.range_pair      # (range_enter's and range_exit's work without their frames)
        if rp is not None:
            leave, tok = rp[1], rp[0](name, "optimizer")
        try:
            if step and self._step_pre_hooks:
                for hook in tuple(self._step_pre_hooks):
                    r = hook(self, args, kwargs)
                    if r is not None:
                        args, kwargs = r
            out = fn(self, *args, **kwargs)
            if step:
                self._opt_called = True
                if self._step_post_hooks:
                    for hook in tuple(self._step_post_hooks):
                        hook(self, args, kwargs)
            return out
        finally:
            if rp is not None:
                leave(tok)

    wrapper._tensorlib_profiled = True
    return wrapper


def _with_real_views(fn):
    @functools.wraps(fn)
    def step(self, *args, **kwargs):        # complex parameters as torch's _view_as_real: see _real_views
        return _real_views(fn, self, *args, **kwargs) if self._complex_params else fn(self, *args, **kwargs)
    step._complex_views = True
    return step


def _real_views(fn, self, closure=None):
    """One step of an optimizer with complex parameters, as torch's optimizers take them (`_view_as_real` of the
    parameters, gradients and state): every complex parameter, its gradient and its complex state tensors hold
    their real view, (..., 2) of float, for the step, so each update treats the real and imaginary parts as two
    real numbers (Adam's second moment is re^2 and im^2, not z^2); the step writes through the views, and state
    the step made ((..., 2) real) is stored complex afterwards, as torch keeps it. The closure, if any, runs
    first, on the complex parameters."""
    from ..autograd.grad_mode import enable_grad
    from ..ops.complex_ops import VIEW_AS_COMPLEX, VIEW_AS_REAL
    from .._device import xp_of
    loss = None
    if closure is not None:
        with enable_grad():
            loss = closure()
    held = []       # (tensor, its complex array, the real view it holds during the step)
    complex_params = []

    def swap(t):
        d = t._data
        if d.dtype.kind == "c":
            r = VIEW_AS_REAL.kernel(xp_of(d), d)
            held.append((t, d, r))
            t._data = r
    for group in self.param_groups:
        for p in group["params"]:
            if p._data.dtype.kind != "c" or p._grad is None:
                continue
            complex_params.append(p)
            swap(p)
            swap(p._grad)
            for v in self.state[p].values() if p in self.state else ():
                if isinstance(v, Tensor):
                    swap(v)
    try:
        fn(self)
    finally:
        for t, d, r in held:
            t._data = d if t._data is r else VIEW_AS_COMPLEX.kernel(xp_of(t._data), t._data)
        for p in complex_params:        # state the step made from the real views: complex, as torch keeps it
            shape = p._data.shape + (2,)
            for v in self.state[p].values():
                if isinstance(v, Tensor) and v._data.shape == shape and v._data.dtype.kind == "f":
                    v._data = VIEW_AS_COMPLEX.kernel(xp_of(v._data), v._data)
    return loss


class Optimizer:
    """Base class of all optimizers (torch.optim.Optimizer's API).

    params: an iterable of tensors, or of dicts each holding "params" plus options overriding `defaults`.
    """

    # complex parameters are updated as pairs of reals (_real_views), torch's way; False for an optimizer that
    # refuses them itself (SparseAdam, Adafactor, Muon) or whose step runs the model (LBFGS's closure)
    _complex_as_real = True
    _complex_params = False

    def __init_subclass__(cls, **kw):
        super().__init_subclass__(**kw)
        for what in ("step", "zero_grad"):
            fn = cls.__dict__.get(what)
            if fn is None:    # inherited: wrap the plain implementation again under this class's name
                fn = getattr(cls, what)
                fn = getattr(fn, "__wrapped__", fn)
                if getattr(fn, "_complex_views", False):      # the class's own step under _real_views
                    fn = fn.__wrapped__
            elif getattr(fn, "_tensorlib_profiled", False):
                continue
            setattr(cls, what, _wrap_step(cls, fn, what))

    def __init__(self, params, defaults: dict):
        self.defaults = defaults
        self._step_pre_hooks: list = []
        self._step_post_hooks: list = []
        self._opt_called = False
        if isinstance(params, Tensor):
            raise TypeError("params argument given to the optimizer should be an iterable of Tensors or dicts, "
                            f"but got {type(params).__name__}")
        self.state: defaultdict = defaultdict(dict)
        self.param_groups: list[dict] = []
        param_groups = list(params)
        if len(param_groups) == 0:
            raise ValueError("optimizer got an empty parameter list")
        if not isinstance(param_groups[0], dict):
            param_groups = [{"params": param_groups}]
        for g in param_groups:
            self.add_param_group(g)

    def __repr__(self):
        lines = [self.__class__.__name__ + " ("]
        for i, group in enumerate(self.param_groups):
            lines.append(f"Parameter Group {i}")
            for key in sorted(group):
                if key != "params":
                    lines.append(f"    {key}: {group[key]}")
        lines.append(")")
        return "\n".join(lines)

    def __getstate__(self):
        return {"defaults": self.defaults, "state": self.state, "param_groups": self.param_groups}

    def __setstate__(self, state):
        """An unpickled optimizer (tensorlib.load of a whole checkpoint) gets fresh hook lists, as torch's
        __setstate__ restores what __getstate__ leaves out."""
        self.__dict__.update(state)
        self._step_pre_hooks, self._step_post_hooks = [], []
        self._opt_called = False

    # --- groups ---------------------------------------------------------------------------------
    def add_param_group(self, param_group: dict):
        if not isinstance(param_group, dict):
            raise TypeError(f"param_group must be a dict, but got {type(param_group).__name__}")
        params = param_group["params"]
        if isinstance(params, Tensor):
            param_group["params"] = [params]
        elif isinstance(params, set):
            raise TypeError("optimizer parameters need to be organized in ordered collections, but the ordering "
                            "of tensors in sets will change between runs. Please use a list instead.")
        else:
            param_group["params"] = list(params)
        for p in param_group["params"]:
            if not isinstance(p, Tensor):
                raise TypeError(f"optimizer can only optimize Tensors, but one of the params is {type(p).__name__}")
            if p._grad_fn is not None and not self.defaults.get("differentiable"):
                raise ValueError("can't optimize a non-leaf Tensor")   # allowed when the step is differentiable
        for name, default in self.defaults.items():
            if default is required and name not in param_group:
                raise ValueError(f"parameter group didn't specify a value of required optimization parameter {name}")
            param_group.setdefault(name, default)
        ids = [id(p) for p in param_group["params"]]
        if len(set(ids)) != len(ids):
            import warnings
            warnings.warn("optimizer contains a parameter group with duplicate parameters; in future, this will "
                          "cause an error; see github.com/pytorch/pytorch/issues/40967 for more information",
                          stacklevel=3)
        seen = {id(p) for g in self.param_groups for p in g["params"]}
        if seen & set(ids):
            raise ValueError("some parameters appear in more than one parameter group")
        self.param_groups.append(param_group)
        if any(p._data.dtype.kind == "c" for p in param_group["params"]):
            self._complex_params = True

    # --- gradients ------------------------------------------------------------------------------
    def zero_grad(self, set_to_none: bool = True):
        """Reset every parameter's gradient: to None (the default, frees memory) or to zeros in place."""
        for group in self.param_groups:
            zero_grads(group["params"], set_to_none)

    # what torch's capturable check names, and the devices it lists (Adadelta's list lacks xla)
    _capturable_what = "params and state_steps"
    _capturable_devices: list[str] | None = None

    def _grads(self, group, negate=True):
        """A list of (parameter, gradient) for each parameter of the group that has one, the gradient negated
        when the group maximizes (unless negate=False: a per-parameter loop negates each in turn, as torch's
        does): what every update rule starts from. Checks fused/capturable as torch does before the first
        update."""
        pairs = [(p, p._grad) for p in group["params"] if p._grad is not None]
        if group.get("fused") or group.get("capturable"):      # the checks, for the groups they concern
            for p, _ in pairs:
                if group.get("fused"):
                    check_fused_param(p)
                check_capturable(group, p, self._capturable_what, self._capturable_devices)
        return self._maximized(group, pairs) if negate else pairs

    @staticmethod
    def _maximized(group, pairs):
        """`pairs` (from _grads(group, negate=False)) with each gradient negated when the group maximizes."""
        return [(p, neg(g)) for p, g in pairs] if group.get("maximize", False) else pairs

    def _update_mode(self):
        """The grad mode of the update: off, or on when the optimizer was built with differentiable=True
        (torch's _use_grad_for_differentiable), so the step is then recorded by autograd."""
        return set_grad_enabled(bool(self.defaults.get("differentiable", False)))

    def step(self, closure=None):
        raise NotImplementedError(f"{type(self).__name__}.step() is not implemented")

    def _closure_loss(self, closure):
        if closure is None:
            return None
        from ..autograd.grad_mode import enable_grad
        with enable_grad():
            return closure()

    # --- hooks ----------------------------------------------------------------------------------
    def register_step_pre_hook(self, hook):
        """hook(optimizer, args, kwargs) -> None or (new_args, new_kwargs), called before each step."""
        self._step_pre_hooks.append(hook)
        return _Handle(self._step_pre_hooks, hook)

    def register_step_post_hook(self, hook):
        self._step_post_hooks.append(hook)
        return _Handle(self._step_post_hooks, hook)

    # --- state_dict -----------------------------------------------------------------------------
    def state_dict(self) -> dict:
        """{"state": {index: {name: value}}, "param_groups": [{options..., "params": [index...]}]} as torch.

        Parameters are named by their position across groups, so the dict can be loaded into an optimizer
        built over a fresh copy of the model. State tensors are the live ones (save/load copies them)."""
        index: dict[int, int] = {}
        start = 0

        def pack(group):
            nonlocal start
            packed = {k: v for k, v in group.items() if k != "params"}
            for i, p in enumerate(group["params"], start):
                index.setdefault(id(p), i)
            packed["params"] = [index[id(p)] for p in group["params"]]
            start += len(packed["params"])
            return packed

        groups = [pack(g) for g in self.param_groups]
        state = {index[id(p)]: s for p, s in self._state_items() if id(p) in index}
        return {"state": state, "param_groups": groups}

    def _state_items(self):
        by_id = {id(p): p for g in self.param_groups for p in g["params"]}
        for key, s in self.state.items():
            p = key if isinstance(key, Tensor) else by_id.get(key)
            if p is not None:
                yield p, s

    def load_state_dict(self, state_dict: dict):
        """Load a dict made by state_dict(): checks the groups match, copies state onto each parameter's
        dtype and device (except "step", which stays as saved), and restores every group's options."""
        if not isinstance(state_dict, dict) or "param_groups" not in state_dict or "state" not in state_dict:
            raise ValueError("optimizer state_dict must be a dict with 'state' and 'param_groups' entries, as "
                             "returned by Optimizer.state_dict()")
        state_dict = dict(state_dict)
        groups = self.param_groups
        saved_groups = deepcopy(state_dict["param_groups"])
        if len(groups) != len(saved_groups):
            raise ValueError("loaded state dict has a different number of parameter groups")
        for g, sg in zip(groups, saved_groups):
            if len(g["params"]) != len(sg["params"]):
                raise ValueError("loaded state dict contains a parameter group that doesn't match the size of "
                                 "optimizer's group")
        id_map = dict(zip(chain.from_iterable(g["params"] for g in saved_groups),
                          chain.from_iterable(g["params"] for g in groups)))
        group_of = {i: sg for sg in saved_groups for i in sg["params"]}
        state: defaultdict = defaultdict(dict)
        for k, v in state_dict["state"].items():
            key = int(k) if isinstance(k, str) and k.isdigit() else k
            if key in id_map:
                p = id_map[key]
                state[p] = {name: self._cast_state(p, name, val, group_of[key]) for name, val in v.items()}
            else:
                state[k] = v
        new_groups = []
        for g, sg in zip(groups, saved_groups):
            sg["params"] = g["params"]
            new_groups.append(sg)
        self.state = state
        self.param_groups = new_groups

    @staticmethod
    def _cast_state(param, key, value, group=None):
        """torch's _process_value_according_to_param_policy (on a copy): "step" stays as saved unless the
        group is fused or capturable (then float32 on the parameter's device); other tensors take the
        parameter's dtype when the parameter is floating point, and its device."""
        if isinstance(value, Tensor):
            with no_grad():
                if key == "step":
                    if group is not None and (group.get("fused") or group.get("capturable")):
                        from .. import _dtype
                        return value.to(dtype=_dtype.float32, device=param.device, copy=True)
                    return value.clone()
                if param.is_floating_point():
                    return value.to(dtype=param.dtype, device=param.device, copy=True)
                return value.to(device=param.device, copy=True)
        if isinstance(value, dict):
            return {k: Optimizer._cast_state(param, k, v, group) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return type(value)(Optimizer._cast_state(param, key, v, group) for v in value)
        return value


class _Handle:
    def __init__(self, lst, item):
        self._lst, self._item = lst, item

    def remove(self):
        if self._item in self._lst:
            self._lst.remove(self._item)
