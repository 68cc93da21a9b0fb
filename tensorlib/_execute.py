"""Layer 4 of the dispatcher: kernel execution. `execute(op, args, attrs, seq)` runs one op: unwraps the
tensor arguments, checks that they share a device, applies type promotion, runs the kernel, wraps the
outputs, and records the autograd node (through the graph layer below) when an input requires grad.

It knows nothing of hooks, autocast or the op registry: `op` is anything with OpDef's attributes, and
`seq` is the sequence number the entry layer (tensorlib.dispatch) gave the op (-1: take one if a node is
recorded). The entry layer calls `execute` directly on its fast path, so this is the hot loop of every
training step: one-, two- and three-argument ops (nearly all of them) take a specialised path that
avoids building lists and re-checking what it already knows.
"""
from __future__ import annotations

import numpy as np

from . import _device, _dtype, _graph
from ._device import device_of
from ._sparse import SparseCOO
from ._graph import (as_array, make_node, make_node1, make_node2, make_node3, mark_view, record_inplace,
                     record_inplace_view)
from ._native import load as load_native
from ._state import STATE, grad_off, seq_counter
from ._tensor import Tensor

__all__ = ["execute", "execute_sparse", "sparse_refusal",
           "execute_list", "tensor_list", "list_arrays", "execute_inplace_op", "shape_error", "bump_version"]


def _device_error(op, args):
    devs = []
    for a in _flat_tensors(args):
        d = str(device_of(a._data))
        if d not in devs:
            devs.append(d)
    devs = [d for d in devs if d != "cpu"] + (["cpu"] if "cpu" in devs else [])
    return RuntimeError(f"Expected all tensors to be on the same device, but found at least two devices, "
                        f"{devs[0]} and {devs[1]}! (when checking arguments for {op.name})")


def _flat_tensors(args):
    for a in args:
        if isinstance(a, Tensor):
            yield a
        elif isinstance(a, (list, tuple)):
            yield from (x for x in a if isinstance(x, Tensor))


def execute(op, args, attrs, seq):
    """Run one op: unwrap, check devices, promote, kernel, wrap, record autograd.

    One-, two- and three-argument ops (nearly all of them) take a specialised path: this is the hot loop of
    every training step, so it avoids building lists and re-checking what it already knows."""
    if op.special is not None:
        return op.special(op, args, attrs, seq)
    n = len(args)
    if n == 2:
        a, b = args
        if isinstance(a, Tensor):
            x = a._data
            rg = a._requires_grad
            if isinstance(b, Tensor):
                y = b._data
                if b._requires_grad:
                    rg = True
                if type(x) is not type(y) and not op.any_device:
                    if type(x) is SparseCOO or type(y) is SparseCOO:
                        return execute_sparse(op, args, attrs, seq)
                    raise _device_error(op, args)
                if type(x) is np.ndarray:       # the backend before promotion: a cast is a kernel too
                    xp = np
                else:
                    xp = _xp_of(x, y)
                    if xp is None:
                        return _guarded(execute, op, args, attrs, seq)
                if op.promote and x.dtype is not y.dtype:
                    x, y = _promote([x, y], op.operand_check)
            else:
                y = b
                if type(x) is np.ndarray:
                    xp = np
                else:
                    xp = _xp_of(x, y)
                    if xp is None:
                        return _guarded(execute, op, args, attrs, seq)
                if op.promote and (x.dtype.kind != "f" or (type(y) is not float and type(y) is not int)):
                    x, y = _promote([x, y], op.operand_check)
        elif isinstance(b, Tensor):
            x = a
            y = b._data
            rg = b._requires_grad
            if type(y) is np.ndarray:
                xp = np
            else:
                xp = _xp_of(x, y)
                if xp is None:
                    return _guarded(execute, op, args, attrs, seq)
            if op.promote:
                x, y = _promote([x, y], op.operand_check)
        else:
            return _execute_general(op, args, attrs, seq)
        try:
            out = op.kernel(xp, x, y, **attrs) if attrs else op.kernel(xp, x, y)
        except ValueError as e:     # NumPy's "could not be broadcast": torch's RuntimeError and message
            raise shape_error(e, (x, y)) from None
        if rg and (not grad_off or STATE.grad_enabled) and op.differentiable:
            return make_node2(op, a, b, attrs, out, seq if seq >= 0 else next(seq_counter))
    elif n == 1:
        a = args[0]
        if not isinstance(a, Tensor):
            return _execute_general(op, args, attrs, seq)
        x = a._data
        rg = a._requires_grad
        if type(x) is np.ndarray:
            xp = np
        else:
            xp = _xp_of(x)
            if xp is None:
                return _guarded(execute, op, args, attrs, seq)
        out = op.kernel(xp, x, **attrs) if attrs else op.kernel(xp, x)
        if rg and (not grad_off or STATE.grad_enabled) and op.differentiable:
            return make_node1(op, a, attrs, out, seq if seq >= 0 else next(seq_counter))
    elif n == 3 and not op.promote:
        # three arguments, the last a tensor or None (linear's bias, nll_loss's weight), all on the CPU
        a, b, c = args
        if not (isinstance(a, Tensor) and isinstance(b, Tensor)):
            return _execute_general(op, args, attrs, seq)
        x = a._data
        y = b._data
        if type(x) is not np.ndarray or type(y) is not np.ndarray:
            return _execute_general(op, args, attrs, seq)
        rg = a._requires_grad or b._requires_grad
        if c is None:
            z = None
        elif isinstance(c, Tensor) and type(c._data) is np.ndarray:
            z = c._data
            if c._requires_grad:
                rg = True
        else:
            return _execute_general(op, args, attrs, seq)
        try:
            out = op.kernel(np, x, y, z, **attrs) if attrs else op.kernel(np, x, y, z)
        except ValueError as e:
            raise shape_error(e, (x, y, z)) from None
        if rg and (not grad_off or STATE.grad_enabled) and op.differentiable:
            return make_node3(op, a, b, c, attrs, out, seq if seq >= 0 else next(seq_counter))
    elif n == 0:
        # factories (the engine's implicit ones gradient every backward): nothing to unwrap, check or record
        out = op.kernel(np, **attrs)
    else:
        return _execute_general(op, args, attrs, seq)
    if type(out) is not np.ndarray and type(out) is not _CP_ARRAY:
        return _wrap_result(op, args, out)
    t = object.__new__(Tensor)          # the usual result (a NumPy or CuPy array), wrapped inline
    t._data = out
    if op.view:
        mark_view(t, args[0])
    return t


def shape_error(e: ValueError, arrays, out=None) -> Exception:
    """What to raise for a kernel's ValueError: NumPy's broadcasting failure as torch's RuntimeError (the
    first mismatch from the right, numbered as a dimension of the broadcast result; with `out`, an in-place
    target's shape, a broadcast result larger than it), anything else unchanged. The dispatcher calls it
    for every op, so no kernel or wrapper translates these itself."""
    if "broadcast" not in str(e):
        return e
    shapes = [a.shape for a in arrays if hasattr(a, "shape")]
    nd = max(map(len, shapes), default=0)
    full: list[int] = []
    for k in range(1, nd + 1):
        big = [s[-k] for s in shapes if k <= len(s) and s[-k] != 1]
        if any(d != big[0] for d in big):
            other = next(d for d in big if d != big[0])
            return RuntimeError(f"The size of tensor a ({big[0]}) must match the size of tensor b ({other}) at "
                                f"non-singleton dimension {nd - k}")
        full.insert(0, big[0] if big else 1)
    if out is not None and tuple(full) != tuple(out):
        return RuntimeError(f"output with shape {list(out)} doesn't match the broadcast shape {full}")
    return e


def _wrap_result(op, args, out):
    """A kernel's result (array or tuple of arrays) as tensors outside autograd; a view op's outputs
    share versions with its first argument."""
    t = _wrap(out)
    if op.view:
        for o in (t if type(t) is tuple else (t,)):
            mark_view(o, args[0])
    return t


# CuPy's array type and its current-device query, set when CuPy is first initialised (_cupy_ready): the CUDA
# path asks them for every op, so it takes them from here rather than through cupy.cuda.runtime each time
_CP_ARRAY: type = np.ndarray
_get_device = None


def _cupy_ready(cp):
    global _CP_ARRAY, _get_device
    _CP_ARRAY, _get_device = cp.ndarray, cp.cuda.runtime.getDevice


_device.on_cupy_init.append(_cupy_ready)


def _xp_of(*arrays):
    """The backend of CUDA arrays: CuPy, or None when their device is not the current one (the caller
    then runs the op again under `_guarded`). Only the CUDA path calls this, so CPU ops pay nothing.
    A CuPy array's device index is `_device.cuda_index`'s read, inlined (this runs for every operand)."""
    dev = None
    for a in arrays:
        t = type(a)
        if t is np.ndarray:
            continue
        if t is _CP_ARRAY:
            d = a.data.device_id
        elif t is SparseCOO:
            return None         # a sparse operand: _guarded runs the op's sparse kernel (or refuses it)
        elif hasattr(a, "device") and hasattr(a, "ndim"):
            d = a.device.id
        else:
            continue
        if dev is None:
            dev = d
        elif d != dev:
            raise RuntimeError(f"Expected all tensors to be on the same device, but found at least two devices, "
                               f"cuda:{dev} and cuda:{d}!")
    if dev is None:
        return np
    get = _get_device
    if get is None:             # CuPy arrays made outside tensorlib before its first CUDA use
        _device.cupy()
        get = _get_device
    return _device._cupy if dev == get() else None


def _guarded(run, op, args, attrs, seq):
    """torch's device guard: run the op with its tensors' device current (CuPy launches kernels on the
    current device and refuses operands from another). Taken only when that device is not current
    already, so a single-GPU program never pays for the switch. A sparse operand comes here too (_xp_of
    answers None for it): the op's sparse kernel runs instead, as torch's Sparse dispatch key."""
    if any(type(t._data) is SparseCOO for t in _flat_tensors(args)):
        return execute_sparse(op, args, attrs, seq)
    idx = next(_device.cuda_index(t._data) for t in _flat_tensors(args) if type(t._data) is not np.ndarray)
    with _device._cupy.cuda.Device(idx):
        return run(op, args, attrs, seq)


def sparse_refusal(op, args) -> NotImplementedError:
    """torch's refusal of an op that has no kernel for sparse COO operands."""
    backend = "SparseCUDA" if any(type(t._data) is SparseCOO and type(t._data.values) is not np.ndarray
                                  for t in _flat_tensors(args)) else "SparseCPU"
    name = op.name
    return NotImplementedError(
        f"Could not run 'aten::{name}' with arguments from the '{backend}' backend. This could be because the "
        f"operator doesn't exist for this backend, or was omitted during the selective/custom build process (if "
        f"using custom build). If you are a Facebook employee using PyTorch on mobile, please visit "
        f"https://fburl.com/ptmfixes for possible resolutions. 'aten::{name}' is only available for these "
        f"backends: [CPU, CUDA, Meta].")


def execute_sparse(op, args, attrs, seq):
    """An op with a sparse COO operand: `op.sparse` (an OpDef: the sparse kernel, and the backward its node
    records) run on the payloads as they are, on the backend of their values; torch's refusal when the op has
    none. The entry layer dispatched `op` itself, so hooks and traces see the op by its own name, as torch's
    profiler shows aten::mm for a sparse product."""
    sp = op.sparse
    if sp is None:
        raise sparse_refusal(op, args)
    arrays = []
    xp = np
    need_grad = False
    for a in args:
        if isinstance(a, Tensor):
            d = a._data
            if type(d) is not np.ndarray and (type(d) is not SparseCOO or type(d.values) is not np.ndarray):
                xp = _device.xp_of(d.values if type(d) is SparseCOO else d)
            need_grad = need_grad or a._requires_grad
            arrays.append(d)
        else:
            arrays.append(a)
    out = sp.kernel(xp, *arrays, **attrs)
    if need_grad and STATE.grad_enabled and sp.differentiable:
        return make_node(sp, args, attrs, out, seq if seq >= 0 else next(seq_counter))
    return _wrap_result(sp, args, out)


def _execute_general(op, args, attrs, seq):
    arrays, xp, need_grad = _unwrap_all(op, args)
    if xp is None:
        return _guarded(_execute_general, op, args, attrs, seq)
    try:
        out = op.kernel(xp, *arrays, **attrs)
    except ValueError as e:
        raise shape_error(e, arrays) from None
    if need_grad and STATE.grad_enabled and op.differentiable:
        return make_node(op, args, attrs, out, seq if seq >= 0 else next(seq_counter))
    return _wrap_result(op, args, out)


def _unwrap_all(op, args):
    """Arrays of the tensor arguments (device-checked), the backend (None: their device is not the current
    one, see _guarded), and whether any requires grad."""
    arrays = []
    atype = None
    need_grad = False
    for a in args:
        if isinstance(a, Tensor):
            d = a._data
            if atype is None:
                atype = type(d)
            elif type(d) is not atype and not op.any_device:
                if type(d) is SparseCOO or atype is SparseCOO:
                    return arrays, None, need_grad      # the caller's _guarded runs the sparse kernel
                raise _device_error(op, args)
            need_grad = need_grad or a._requires_grad
            arrays.append(d)
        else:
            arrays.append(a)
    if atype is np.ndarray or atype is None:
        xp = np
    else:
        xp = _xp_of(*arrays) if not op.any_device else _device_xp()
        if xp is None:
            return arrays, None, need_grad
    if op.promote:
        arrays = _promote(arrays, op.operand_check)
    return arrays, xp, need_grad


def execute_inplace_op(op, args, attrs, seq):
    """Every in-place op (its `special`): the CPU fast path of two or three arguments, else the general one; NumPy's
    broadcasting failures become torch's errors against the target's shape."""
    try:
        n = len(args)
        if (n == 2 or n == 3) and not op.promote:
            # x.add_(y), x.mul_(2.0), an optimizer's addcmul_/addcdiv_/lerp_ on the CPU: no general unwrapping
            a = args[0]
            if isinstance(a, Tensor) and type(a._data) is np.ndarray and not a._inference:
                rg = a._requires_grad
                arrays = [a._data]
                for o in args[1:]:
                    if isinstance(o, Tensor):
                        d = o._data
                        if type(d) is not np.ndarray:
                            break
                        rg = rg or o._requires_grad
                        arrays.append(d)
                    else:
                        arrays.append(o)
                else:
                    base = a._base
                    if (rg or base is not None and base._requires_grad) and (not grad_off or STATE.grad_enabled):
                        return _execute_inplace(op, args, arrays, attrs, np, rg, seq)
                    # outside autograd (an optimizer's update) _execute_inplace does just this, less its
                    # call and argument list
                    op.kernel(np, *arrays, **attrs)
                    (base if base is not None else a)._version += 1
                    return a
        arrays, xp, need_grad = _unwrap_all(op, args)
        if xp is None:
            return _guarded(execute_inplace_op, op, args, attrs, seq)
        return _execute_inplace(op, args, arrays, attrs, xp, need_grad, seq)
    except ValueError as e:
        t = args[0]
        if "read-only" in str(e) and isinstance(t, Tensor) and 0 in getattr(t._data, "strides", ()) and t.numel() > 1:
            raise RuntimeError(_OVERLAP) from None      # an expanded tensor's (NumPy's broadcast views are read-only)
        raise shape_error(e, [a._data if isinstance(a, Tensor) else a for a in args],
                          out=t.shape if isinstance(t, Tensor) else None) from None


_OVERLAP = ("unsupported operation: more than one element of the written-to tensor refers to a single memory "
            "location. Please clone() the tensor before performing the operation.")


def tensor_list(tensors):
    """A list of tensors given to cat/stack, as a list, or torch's TypeError for an element that is no tensor."""
    tensors = list(tensors)
    for i, t in enumerate(tensors):
        if not isinstance(t, Tensor):
            raise TypeError(f"expected Tensor as element {i} in argument 0, but got {type(t).__name__}")
    return tensors


def list_arrays_py(tensors):
    """The arrays of a list or tuple of tensors (cat's, stack's) in execute_list's common case -- plain Tensors on NumPy
    arrays of one dtype -- as (arrays, need_grad); None for anything else (promotion, devices, subclasses,
    errors: the general path). tensorlib._cexecute.list_arrays is its C twin."""
    if type(tensors) is not list and type(tensors) is not tuple:
        return None
    arrays = []
    need_grad = False
    dt = None
    for a in tensors:
        if type(a) is not Tensor:
            return None
        d = a._data
        if type(d) is not np.ndarray or (dt is not None and d.dtype is not dt):
            return None
        dt = d.dtype
        need_grad = need_grad or a._requires_grad
        arrays.append(d)
    return arrays, need_grad


list_arrays = list_arrays_py


def execute_list(op, args, attrs, seq):
    """cat/stack: a sequence of tensors, promoted together to one dtype."""
    tensors = list(args[0])
    if not tensors:
        raise RuntimeError(f"{op.name}(): expected a non-empty list of Tensors")
    common = list_arrays(tensors)
    if common is not None:
        arrays, need_grad = common
        out = op.kernel(np, arrays, *args[1:], **attrs)
        if need_grad and STATE.grad_enabled and op.differentiable:
            return make_node(op, tuple(tensors), attrs, out, seq if seq >= 0 else next(seq_counter))
        return _wrap(out)
    tensor_list(tensors)
    arrays, xp, need_grad = _unwrap_all(op, tensors)
    if xp is None:
        return _guarded(execute_list, op, args, attrs, seq)
    if len({a.dtype for a in arrays}) > 1:
        rt = _dtype.from_np(arrays[0].dtype)
        for a in arrays[1:]:
            rt = _dtype.promote_types(rt, _dtype.from_np(a.dtype))
        arrays = [a.astype(rt.np, copy=False) for a in arrays]
    out = op.kernel(xp, arrays, *args[1:], **attrs)
    if need_grad and STATE.grad_enabled and op.differentiable:
        return make_node(op, tuple(tensors), attrs, out, seq if seq >= 0 else next(seq_counter))
    return _wrap(out)


def _device_xp():
    return _device._cupy


def _wrap(out):
    if type(out) is tuple:
        return tuple([_wrap(o) for o in out])
    if type(out) is not np.ndarray:
        out = as_array(out)
    t = object.__new__(Tensor)
    t._data = out
    return t


def _promote(arrays, check=None):
    """torch's result dtype for a binary op: casts the operand(s) that differ; the op's operand_check, if any, on
    the operands as they were given."""
    a, b = arrays[0], arrays[1]
    if check is not None:
        check(a, b)
    ta = type(a)
    tb = type(b)
    a_arr = ta is np.ndarray or hasattr(a, "dtype") and not isinstance(a, np.generic)
    b_arr = tb is np.ndarray or hasattr(b, "dtype") and not isinstance(b, np.generic)
    if a_arr and b_arr:
        if a.dtype == b.dtype:
            return arrays
        rt = _dtype.result_type(_dtype.from_np(a.dtype), a.ndim == 0, _dtype.from_np(b.dtype), b.ndim == 0).np
        return [a.astype(rt, copy=False), b.astype(rt, copy=False)] + arrays[2:]
    if a_arr:
        rt = _dtype.scalar_result(_dtype.from_np(a.dtype), b).np
        if rt != a.dtype:
            a = a.astype(rt)
        return [a, _scalar_as(b, rt)] + arrays[2:]
    if b_arr:
        rt = _dtype.scalar_result(_dtype.from_np(b.dtype), a).np
        if rt != b.dtype:
            b = b.astype(rt)
        return [_scalar_as(a, rt), b] + arrays[2:]
    return arrays


def _scalar_as(s, rt):
    """A number operand as the kernel takes it: a Python number (NumPy >= 2 treats those as weak, as torch does;
    NumPy scalars are made Python ones). An integer outside an integral result type's range is wrapped into it, as
    torch casts it (`uint8 + -2` adds 254, `uint8 < -2` compares with 254); NumPy would raise OverflowError, or
    compare the values as they are. Beyond int64 it is left to NumPy's error, as torch refuses it too."""
    if isinstance(s, np.generic):
        s = s.item()
    if type(s) is int and rt.kind in "iu":
        lo, hi = _INT_RANGES.get(rt) or _int_range(rt)
        if not lo <= s <= hi and -(1 << 63) <= s < (1 << 64):
            bits = rt.itemsize * 8
            s &= (1 << bits) - 1
            if rt.kind == "i" and s >= 1 << (bits - 1):
                s -= 1 << bits
    return s


_INT_RANGES: dict = {}


def _int_range(rt):
    info = np.iinfo(rt)
    r = _INT_RANGES[rt] = (int(info.min), int(info.max))
    return r


def _execute_inplace(op, args, arrays, attrs, xp, need_grad, seq):
    target = args[0]
    if not isinstance(target, Tensor):
        raise TypeError(f"{op.name}(): expected a Tensor as the first argument")
    if target._inference and not STATE.inference:
        raise RuntimeError(_INFERENCE_INPLACE)
    grad_mode = STATE.grad_enabled
    b = target._base
    if grad_mode and b is not None and (need_grad or b._requires_grad) and not target._detached:
        return record_inplace_view(op, args, attrs)     # torch's CopySlices: the base's history changes
    if need_grad and grad_mode:
        fn = target._grad_fn
        if target._requires_grad and fn is None:
            raise RuntimeError("a leaf Variable that requires grad is being used in an in-place operation.")
        if fn is not None and fn.fn_views is not None and target._output_nr in fn.fn_views:
            raise RuntimeError(_FN_VIEW_INPLACE.format(target._output_nr, fn.name()[:-len("Backward")]))
        base = op.inplace_of
        result = base.kernel(xp, *arrays, **attrs)
        if seq < 0:
            seq = next(seq_counter)
        return record_inplace(op, base, args, attrs, result, seq)
    if target._inference is False and target._requires_grad and target._grad_fn is None and grad_mode:
        raise RuntimeError("a leaf Variable that requires grad is being used in an in-place operation.")
    op.kernel(xp, *arrays, **attrs)
    (b if b is not None else target)._version += 1
    return target


_FN_VIEW_INPLACE = ("Output {} of {} is a view and is being modified inplace. This view was created inside a custom "
                    "Function (or because an input was returned as-is) and the autograd logic to handle view+inplace "
                    "would override the custom backward associated with the custom Function, leading to incorrect "
                    "gradients. This behavior is forbidden. You can fix this by cloning the output of the custom "
                    "Function.")

_INFERENCE_INPLACE = ("Inplace update to inference tensor outside InferenceMode is not allowed.You can make a clone "
                      "to get a normal tensor before doing inplace update.See https://github.com/pytorch/rfcs/pull/17 "
                      "for more details.")


def bump_version(t: Tensor):
    b = t._base
    (b if b is not None else t)._version += 1


# The common case of `execute` in C (tensorlib/_cexecute.c, see tensorlib/_native.py): one, two or three
# arguments on NumPy arrays, nothing to promote, or none (a factory), execute_list's common case (cat, stack) and
# execute_inplace_op's fast path outside autograd; it hands every other case to the Python function above, which
# stays the reference (TENSORLIB_NATIVE=0 runs it alone). Importers of `execute` take whichever is bound here.
execute_py = execute
_cexecute = load_native("tensorlib._cexecute")
if _cexecute is not None:
    _cexecute.configure(Tensor, np.ndarray, np, STATE, grad_off, seq_counter, execute_py, make_node1, make_node2,
                        make_node3, _wrap_result, mark_view, execute_inplace_op, execute_list)
    # and the nodes of that case, recorded as make_node1/2/3 record them (which take the rest: anomaly mode,
    # saved-tensor hooks, rewritten views' bases, several outputs)
    _cexecute.configure_graph(_graph.Node, vars(_graph), _graph._NO_EDGE, _graph._leaf_edge, _graph._GRAD_DTYPES)
    # (the op modules import it after this module; an extension built before it keeps the Python twin)
    _graph.tensor_of_result = getattr(_cexecute, "tensor_of_result", _graph.tensor_of_result)
    execute = _cexecute.execute     # noqa: F811
    list_arrays = _cexecute.list_arrays     # noqa: F811
