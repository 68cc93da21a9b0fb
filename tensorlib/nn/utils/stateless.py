"""torch.nn.utils.stateless.functional_call (deprecated in torch for torch.func.functional_call, the same call):
a module's forward run with some of its parameters and buffers replaced by the given tensors, which are
swapped in for the call and swapped back after it (so gradients flow to the given tensors, not to the module's
own)."""
from __future__ import annotations

import contextlib
import warnings

from ..._tensor import Tensor
from ..modules.module import Module

__all__ = ["functional_call"]

_MISSING = object()     # a name the module does not have: set for the call, deleted after it


def _untie_named_tensors_map(module, parameters_and_buffers):
    """The given tensors extended to every name tied to a given name (one tensor under several names, as an
    embedding's weight shared with an output layer), as torch's: so a replaced tied weight is replaced
    everywhere; two different tensors for names of one tied tensor are refused."""
    all_named = dict(module.named_parameters(remove_duplicate=False))
    all_named.update(module.named_buffers(remove_duplicate=False))
    tied: dict[int, set] = {}
    for name, t in all_named.items():
        tied.setdefault(id(t), set()).add(name)
    tied_names_map = {n: names for names in tied.values() if len(names) > 1 for n in names}
    given = set(parameters_and_buffers)
    given_tied = {n for n in given if n in tied_names_map}
    for name in given_tied:
        names = tied_names_map[name]
        if len(names & given_tied) > 1 and len({id(parameters_and_buffers[n]) for n in names & given_tied}) != 1:
            raise ValueError(f"functional_call got multiple values for keys {sorted(names)}, which are tied. "
                             "Consider using tie_weights=False")
    untied = dict(parameters_and_buffers)
    for name in given_tied:
        for n in tied_names_map[name]:
            untied[n] = parameters_and_buffers[name]
    return untied


def _submodule(module, name, memo):
    if not name:
        return module
    if name not in memo:
        prefix, dot, attr = name.rpartition(".")
        parent = _submodule(module, prefix, memo) if dot else module
        try:
            sub = getattr(parent, attr)
        except AttributeError as ex:
            raise AttributeError(f"{parent._get_name()} has no attribute `{attr}`") from ex
        if not isinstance(sub, Module):
            raise TypeError(f"submodule `{name}`: {sub} is not an instance of {_module_class_name()}")
        memo[name] = sub
    return memo[name]


def _module_class_name():
    from ..._dtype import namespace
    return f"{namespace()}.nn.Module"


def _swap_tensor(module, name, tensor):
    """torch's NamedMemberAccessor.swap_tensor: `tensor` into the parameter, buffer or attribute `name` of
    `module` (without Parameter's checks: a plain tensor may stand for a parameter during the call); returns
    what was there (_MISSING for nothing)."""
    if tensor is not _MISSING and tensor is not None and not isinstance(tensor, Tensor):
        raise TypeError(f"{tensor} is not an instance of {_module_class_name()[:-len('nn.Module')]}Tensor")
    for table in (module._parameters, module._buffers):
        if name in table:
            orig = table[name]
            if tensor is not _MISSING:
                table[name] = tensor
            else:
                del table[name]
            return orig
    orig = getattr(module, name) if hasattr(module, name) else _MISSING
    if orig is not _MISSING and orig is not None and not isinstance(orig, Tensor):
        raise TypeError(f"attribute `{name}`: {orig} is not an instance of "
                        f"{_module_class_name()[:-len('nn.Module')]}Tensor")
    if tensor is not _MISSING:
        setattr(module, name, tensor)
    elif hasattr(module, name):
        delattr(module, name)
    return orig


def _swap_tensors_dict(module, named, memo):
    orig = {}
    try:
        for name, tensor in named.items():
            prefix, _, attr = name.rpartition(".")
            orig[name] = _swap_tensor(_submodule(module, prefix, memo), attr, tensor)
    except Exception:
        for name, t in orig.items():
            prefix, _, attr = name.rpartition(".")
            _swap_tensor(_submodule(module, prefix, memo), attr, t)
        raise
    return orig


@contextlib.contextmanager
def _reparametrize_module(module, parameters_and_buffers, tie_weights=False, strict=False):
    untied = _untie_named_tensors_map(module, parameters_and_buffers) if tie_weights else parameters_and_buffers
    if strict:
        valid = {n for n, _ in module.named_parameters(remove_duplicate=False)}
        valid |= {n for n, _ in module.named_buffers(remove_duplicate=False)}
        missing, unexpected = sorted(valid - set(untied)), sorted(set(untied) - valid)
        msgs = []
        if unexpected:
            msgs.append(f"Unexpected key(s): {', '.join(map(repr, unexpected))}.")
        if missing:
            msgs.append(f"Missing key(s): {', '.join(map(repr, missing))}.")
        if msgs:
            raise RuntimeError("Error(s) in reparametrizing for {}:\n\t{}".format(module._get_name(),
                                                                                 "\n\t".join(msgs)))
    memo: dict = {}
    orig: dict = {}
    try:
        orig = _swap_tensors_dict(module, untied, memo)
        yield
    finally:
        new = _swap_tensors_dict(module, orig, memo)
        # what the forward assigned in place of a given tensor (`self.foo = self.foo + 1`) goes back to the caller
        parameters_and_buffers.update({k: new[k] for k in parameters_and_buffers if k in new})


def functional_call(module, parameters_and_buffers, args=None, kwargs=None, *, tie_weights=True, strict=False):
    """Deprecated in torch (use tensorlib.func.functional_call, the same call); warns as torch does."""
    warnings.warn("`torch.nn.utils.stateless.functional_call` is deprecated as of PyTorch 2.0 and will be removed in "
                  "a future version of PyTorch. Please use `torch.func.functional_call` instead which is a drop-in "
                  "replacement.", FutureWarning, stacklevel=2)
    return _functional_call(module, parameters_and_buffers, args, kwargs, tie_weights=tie_weights, strict=strict)


def _functional_call(module, parameters_and_buffers, args=None, kwargs=None, *, tie_weights=True, strict=False):
    from ..parallel import DataParallel
    if isinstance(module, DataParallel):
        raise RuntimeError("The stateless API can't be used with nn.DataParallel module")
    if kwargs is None:
        kwargs = {}
    if args is None:
        args = ()
    elif not isinstance(args, tuple):
        args = (args,)
    with _reparametrize_module(module, parameters_and_buffers, tie_weights=tie_weights, strict=strict):
        return module(*args, **kwargs)
