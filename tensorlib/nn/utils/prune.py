"""torch.nn.utils.prune: pruning by masks, as torch does it.

Pruning parameter `name` of a module moves it to `name + "_orig"` (the same Parameter), adds a buffer
`name + "_mask"` (1 keeps an entry, 0 prunes it) and makes `name` a plain attribute `name_orig * name_mask`,
recomputed by a forward pre-hook (the pruning method itself) before every forward: the state-dict keys
are torch's (`weight_orig`, `weight_mask`). Pruning the same parameter again combines the masks in a
PruningContainer; `remove` makes the pruning permanent (the Parameter `name` holds the pruned values).
compute_mask receives and returns tensors as in torch (the built-in methods compute on the host with
NumPy, so a custom BasePruningMethod written for torch works unchanged); the masked weight is a
dispatched `mul`, so gradients reach `name_orig` through the mask.
"""
from __future__ import annotations

import numbers
from abc import ABC, abstractmethod
from collections.abc import Iterable

import numpy as np

from ..._tensor import Tensor
from ...ops.creation import from_numpy

__all__ = ["BasePruningMethod", "PruningContainer", "Identity", "RandomUnstructured", "L1Unstructured",
           "RandomStructured", "LnStructured", "CustomFromMask", "identity", "random_unstructured",
           "l1_unstructured", "random_structured", "ln_structured", "global_unstructured", "custom_from_mask",
           "remove", "is_pruned"]


def _host(t):
    d = t._data if isinstance(t, Tensor) else np.asarray(t)
    return d if isinstance(d, np.ndarray) else d.get()


def _like(arr, ref):
    """A tensor of `arr` on `ref`'s device, in `ref`'s dtype."""
    t = from_numpy(np.ascontiguousarray(arr.astype(_host(ref).dtype, copy=False)))
    return t.to(ref.device) if str(ref.device) != "cpu" else t


def _T(arr):
    """A NumPy array as a (CPU) tensor: what compute_mask receives and returns, as in torch."""
    return from_numpy(np.ascontiguousarray(np.asarray(arr)))


def _uniform(shape):
    from ...ops.creation import rand
    return _host(rand(*shape)) if shape else _host(rand(1)).reshape(())


class BasePruningMethod(ABC):
    """torch.nn.utils.prune.BasePruningMethod: subclasses define compute_mask(t, default_mask)."""

    _tensor_name: str | None = None

    def __call__(self, module, inputs):
        setattr(module, self._tensor_name, self.apply_mask(module))

    @abstractmethod
    def compute_mask(self, t, default_mask):
        """The mask (a tensor like t) to apply, given the mask applied so far."""

    def apply_mask(self, module):
        if self._tensor_name is None:
            raise AssertionError(f"Module {module} has to be pruned")
        mask = getattr(module, self._tensor_name + "_mask")
        orig = getattr(module, self._tensor_name + "_orig")
        return mask.to(dtype=orig.dtype) * orig

    @classmethod
    def apply(cls, module, name, *args, importance_scores=None, **kwargs):
        old_method, found, to_remove = None, 0, []
        for k, hook in module._forward_pre_hooks.items():
            if isinstance(hook, BasePruningMethod) and hook._tensor_name == name:
                old_method = hook
                to_remove.append(k)
                found += 1
        if found > 1:
            raise AssertionError(f"Avoid adding multiple pruning hooks to the same tensor {name} of module {module}. "
                                 f"Use a PruningContainer.")
        for k in to_remove:
            del module._forward_pre_hooks[k]
        method = cls(*args, **kwargs)
        method._tensor_name = name
        if old_method is not None:
            if isinstance(old_method, PruningContainer):
                old_method.add_pruning_method(method)
                method = old_method
            else:
                container = PruningContainer(old_method)
                container.add_pruning_method(method)
                method = container
        orig = getattr(module, name)
        if importance_scores is not None:
            if tuple(importance_scores.shape) != tuple(orig.shape):
                raise AssertionError(f"importance_scores should have the same shape as parameter {name} of "
                                     f"{module}, got {importance_scores.shape} vs {orig.shape}")
        else:
            importance_scores = orig
        if not isinstance(method, PruningContainer):
            module.register_parameter(name + "_orig", orig)
            del module._parameters[name]
            default_mask = np.ones(tuple(orig.shape), dtype=_host(orig).dtype)
        else:
            default_mask = _host(getattr(module, name + "_mask")).copy()
        try:
            mask = method.compute_mask(_T(_host(importance_scores)), default_mask=_T(default_mask))
            module.register_buffer(name + "_mask", _like(_host(mask), orig))
            setattr(module, name, method.apply_mask(module))
            module.register_forward_pre_hook(method)
        except Exception:
            if not isinstance(method, PruningContainer):
                orig = getattr(module, name + "_orig")
                module.register_parameter(name, orig)
                del module._parameters[name + "_orig"]
            raise
        return method

    def prune(self, t, default_mask=None, importance_scores=None):
        """`t` with this method's mask applied (no module involved)."""
        if importance_scores is not None and tuple(importance_scores.shape) != tuple(t.shape):
            raise AssertionError(f"importance_scores should have the same shape as tensor t, got "
                                 f"{importance_scores.shape} vs {t.shape}")
        scores = _host(importance_scores if importance_scores is not None else t)
        dm = _host(default_mask) if default_mask is not None else np.ones(scores.shape, dtype=scores.dtype)
        return t * _like(_host(self.compute_mask(_T(scores), default_mask=_T(dm))), t)

    def remove(self, module):
        if self._tensor_name is None:
            raise AssertionError(f"Module {module} has to be pruned before pruning can be removed")
        weight = self.apply_mask(module)
        if self._tensor_name in module.__dict__:
            delattr(module, self._tensor_name)
        orig = module._parameters[self._tensor_name + "_orig"]
        orig._data = weight._data
        del module._parameters[self._tensor_name + "_orig"]
        del module._buffers[self._tensor_name + "_mask"]
        setattr(module, self._tensor_name, orig)


class PruningContainer(BasePruningMethod):
    """A sequence of pruning methods applied to one parameter, each on what the earlier ones kept."""

    def __init__(self, *args):
        self._pruning_methods = ()
        if len(args) == 1:
            self._tensor_name = args[0]._tensor_name
            self.add_pruning_method(args[0])
        else:
            for method in args:
                self.add_pruning_method(method)

    def add_pruning_method(self, method):
        if not isinstance(method, BasePruningMethod) and method is not None:
            raise TypeError(f"{type(method)} is not a BasePruningMethod subclass")
        if method is not None and self._tensor_name != method._tensor_name:
            raise ValueError(f"Can only add pruning methods acting on the parameter named '{self._tensor_name}' to "
                             f"PruningContainer {self}. Found '{method._tensor_name}'")
        self._pruning_methods += (method,)

    def __len__(self):
        return len(self._pruning_methods)

    def __iter__(self):
        return iter(self._pruning_methods)

    def __getitem__(self, idx):
        return self._pruning_methods[idx]

    def compute_mask(self, t, default_mask):
        method = self._pruning_methods[-1]
        t = _host(t)
        mask = _host(default_mask).astype(t.dtype)
        if method.PRUNING_TYPE == "unstructured":
            slc = mask == 1
        elif method.PRUNING_TYPE == "structured":
            if not hasattr(method, "dim"):
                raise AttributeError('Pruning methods of PRUNING_TYPE "structured" need to have the attribute `dim` '
                                     'defined.')
            nd = t.ndim
            dim = method.dim + nd if method.dim < 0 else method.dim
            if dim < 0:
                raise IndexError(f"Index is out of bounds for tensor with dimensions {nd}")
            keep = mask.sum(axis=tuple(d for d in range(nd) if d != dim)) != 0
            slc = tuple(keep if d == dim else slice(None) for d in range(nd))
        elif method.PRUNING_TYPE == "global":
            slc = tuple(slice(None) for _ in range(t.ndim))
        else:
            raise ValueError(f"Unrecognized PRUNING_TYPE {method.PRUNING_TYPE}")
        partial = method.compute_mask(_T(t[slc]), default_mask=_T(mask[slc]))
        mask[slc] = _host(partial).astype(mask.dtype)
        return _T(mask)


class Identity(BasePruningMethod):
    PRUNING_TYPE = "unstructured"

    def compute_mask(self, t, default_mask):
        return default_mask

    @classmethod
    def apply(cls, module, name):
        return super().apply(module, name)


class RandomUnstructured(BasePruningMethod):
    PRUNING_TYPE = "unstructured"

    def __init__(self, amount):
        _validate_pruning_amount_init(amount)
        self.amount = amount

    def compute_mask(self, t, default_mask):
        t = _host(t)
        size = t.size
        k = _compute_nparams_toprune(self.amount, size)
        _validate_pruning_amount(k, size)
        mask = _host(default_mask).copy()
        if k:
            prob = _uniform(t.shape).reshape(-1)
            mask.reshape(-1)[np.argsort(-prob, kind="stable")[:k]] = 0
        return _T(mask)

    @classmethod
    def apply(cls, module, name, amount):
        return super().apply(module, name, amount=amount)


class L1Unstructured(BasePruningMethod):
    PRUNING_TYPE = "unstructured"

    def __init__(self, amount):
        _validate_pruning_amount_init(amount)
        self.amount = amount

    def compute_mask(self, t, default_mask):
        t = _host(t)
        size = t.size
        k = _compute_nparams_toprune(self.amount, size)
        _validate_pruning_amount(k, size)
        mask = _host(default_mask).copy()
        if k:
            mask.reshape(-1)[np.argsort(np.abs(t).reshape(-1), kind="stable")[:k]] = 0
        return _T(mask)

    @classmethod
    def apply(cls, module, name, amount, importance_scores=None):
        return super().apply(module, name, amount=amount, importance_scores=importance_scores)


class RandomStructured(BasePruningMethod):
    PRUNING_TYPE = "structured"

    def __init__(self, amount, dim=-1):
        _validate_pruning_amount_init(amount)
        self.amount = amount
        self.dim = dim

    def compute_mask(self, t, default_mask):
        t = _host(t)
        _validate_structured_pruning(t)
        _validate_pruning_dim(t, self.dim)
        n = t.shape[self.dim]
        k = _compute_nparams_toprune(self.amount, n)
        _validate_pruning_amount(k, n)
        if k == 0:
            return _T(_host(default_mask))
        prob = _uniform((n,))
        keep = np.ones(n, dtype=bool)
        keep[np.argsort(prob, kind="stable")[:k]] = False
        return _T(_channel_mask(t, self.dim, keep) * _host(default_mask).astype(t.dtype))

    @classmethod
    def apply(cls, module, name, amount, dim=-1):
        return super().apply(module, name, amount=amount, dim=dim)


class LnStructured(BasePruningMethod):
    PRUNING_TYPE = "structured"

    def __init__(self, amount, n, dim=-1):
        _validate_pruning_amount_init(amount)
        self.amount = amount
        self.n = n
        self.dim = dim

    def compute_mask(self, t, default_mask):
        t = _host(t)
        _validate_structured_pruning(t)
        _validate_pruning_dim(t, self.dim)
        size = t.shape[self.dim]
        k = _compute_nparams_toprune(self.amount, size)
        _validate_pruning_amount(k, size)
        if k == 0:
            return _T(_host(default_mask))
        norm = _compute_norm(t, self.n, self.dim)
        keep = np.zeros(size, dtype=bool)
        keep[np.argsort(-norm, kind="stable")[:size - k]] = True
        return _T(_channel_mask(t, self.dim, keep) * _host(default_mask).astype(t.dtype))

    @classmethod
    def apply(cls, module, name, amount, n, dim, importance_scores=None):
        return super().apply(module, name, amount=amount, n=n, dim=dim, importance_scores=importance_scores)


class CustomFromMask(BasePruningMethod):
    PRUNING_TYPE = "global"

    def __init__(self, mask):
        self.mask = mask

    def compute_mask(self, t, default_mask):
        m, dm = _host(self.mask), _host(default_mask)
        if dm.shape != m.shape:
            raise AssertionError(f"default_mask shape {dm.shape} must match self.mask shape {m.shape}")
        return _T(dm * m.astype(dm.dtype))

    @classmethod
    def apply(cls, module, name, mask):
        return super().apply(module, name, mask=mask)


def _channel_mask(t, dim, keep):
    mask = np.zeros(t.shape, dtype=t.dtype)
    slc = [slice(None)] * t.ndim
    slc[dim] = keep
    mask[tuple(slc)] = 1
    return mask


def identity(module, name):
    Identity.apply(module, name)
    return module


def random_unstructured(module, name, amount):
    RandomUnstructured.apply(module, name, amount)
    return module


def l1_unstructured(module, name, amount, importance_scores=None):
    L1Unstructured.apply(module, name, amount=amount, importance_scores=importance_scores)
    return module


def random_structured(module, name, amount, dim):
    RandomStructured.apply(module, name, amount, dim)
    return module


def ln_structured(module, name, amount, n, dim, importance_scores=None):
    LnStructured.apply(module, name, amount, n, dim, importance_scores=importance_scores)
    return module


def global_unstructured(parameters, pruning_method, importance_scores=None, **kwargs):
    """Prune the given (module, name) pairs together: the amount counts over all of them."""
    if not isinstance(parameters, Iterable):
        raise TypeError("global_unstructured(): parameters is not an Iterable")
    parameters = list(parameters)
    importance_scores = importance_scores if importance_scores is not None else {}
    if not isinstance(importance_scores, dict):
        raise TypeError("global_unstructured(): importance_scores must be of type dict")
    scores = np.concatenate([_host(importance_scores.get((m, n), getattr(m, n))).reshape(-1) for m, n in parameters])
    default = np.concatenate([
        _host(getattr(m, n + "_mask")).reshape(-1) if hasattr(m, n + "_mask")
        else np.ones(int(np.prod(getattr(m, n).shape)), dtype=_host(getattr(m, n)).dtype)
        for m, n in parameters])
    container = PruningContainer()
    container._tensor_name = "temp"
    method = pruning_method(**kwargs)
    method._tensor_name = "temp"
    if method.PRUNING_TYPE != "unstructured":
        raise TypeError(f'Only "unstructured" PRUNING_TYPE supported for the `pruning_method`. Found method '
                        f"{pruning_method} of type {method.PRUNING_TYPE}")
    container.add_pruning_method(method)
    final = _host(container.compute_mask(_T(scores), _T(default)))
    pointer = 0
    for module, name in parameters:
        param = getattr(module, name)
        k = int(np.prod(param.shape))
        custom_from_mask(module, name, mask=final[pointer:pointer + k].reshape(tuple(param.shape)))
        pointer += k


def custom_from_mask(module, name, mask):
    CustomFromMask.apply(module, name, mask)
    return module


def remove(module, name):
    """Make the pruning of `name` permanent: `name` is again a Parameter (holding the pruned values), and
    `name_orig`, `name_mask` and the hook are gone."""
    for k, hook in module._forward_pre_hooks.items():
        if isinstance(hook, BasePruningMethod) and hook._tensor_name == name:
            hook.remove(module)
            del module._forward_pre_hooks[k]
            return module
    raise ValueError(f"Parameter '{name}' of module {module} has to be pruned before pruning can be removed")


def is_pruned(module) -> bool:
    for _, sub in module.named_modules():
        for hook in sub._forward_pre_hooks.values():
            if isinstance(hook, BasePruningMethod):
                return True
    return False


def _validate_pruning_amount_init(amount):
    if not isinstance(amount, numbers.Real):
        raise TypeError(f"Invalid type for amount: {amount}. Must be int or float.")
    if (isinstance(amount, numbers.Integral) and amount < 0) or (
            not isinstance(amount, numbers.Integral) and (float(amount) > 1.0 or float(amount) < 0.0)):
        raise ValueError(f"amount={amount} should either be a float in the range [0, 1] or a non-negative integer")


def _validate_pruning_amount(amount, tensor_size):
    if isinstance(amount, numbers.Integral) and amount > tensor_size:
        raise ValueError(f"amount={amount} should be smaller than the number of parameters to prune={tensor_size}")


def _validate_structured_pruning(t):
    shape = tuple(t.shape)
    if len(shape) <= 1:
        raise ValueError(f"Structured pruning can only be applied to multidimensional tensors. Found tensor of shape "
                         f"torch.Size({list(shape)}) with {len(shape)} dims")


def _compute_nparams_toprune(amount, tensor_size):
    if isinstance(amount, numbers.Integral):
        return amount
    return round(amount * tensor_size)


def _validate_pruning_dim(t, dim):
    if dim >= t.ndim:
        raise IndexError(f"Invalid index {dim} for tensor of size torch.Size({list(t.shape)})")


def _compute_norm(t, n, dim):
    dims = list(range(t.ndim))
    if dim < 0:
        dim = dims[dim]
    dims.remove(dim)
    flat = np.moveaxis(t, dim, 0).reshape(t.shape[dim], -1).astype(np.float64)
    if n in ("fro", 2):
        return np.sqrt((flat ** 2).sum(axis=1))
    if n == float("inf"):
        return np.abs(flat).max(axis=1)
    if n == float("-inf"):
        return np.abs(flat).min(axis=1)
    if n == 0:
        return (flat != 0).sum(axis=1).astype(np.float64)
    return (np.abs(flat) ** n).sum(axis=1) ** (1.0 / n)
