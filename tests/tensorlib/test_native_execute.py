"""The executor's common case in C (tensorlib/_cexecute.c) against its Python twin (tensorlib._execute.execute_py).

Every registered op's sample call (op_cases) runs twice on the same inputs, once through the C executor and once
through the Python one, and everything either leaves behind must agree: the outputs' values, dtypes, requires_grad,
views and versions, and each output's autograd node field by field (op, edges, input metadata, saved inputs and
versions, saved outputs, output metadata), then the gradients a backward pass gives. The C executor hands every
case it does not take to the Python one, so this also checks that the cases it does take are decided alike.
"""
from __future__ import annotations

import importlib
import os
import pkgutil
import subprocess
import sys

import numpy as np
import pytest

import tensorlib as tl
from tensorlib import _execute, _native, dispatch
from tensorlib.ops import _define
from tests.tensorlib import op_cases

NATIVE = _execute._cexecute is not None
OFF = os.environ.get("TENSORLIB_NATIVE", "1").strip().lower() in ("0", "false", "no", "off")


def test_the_native_executor_is_built_and_used_on_linux():
    """`pip install` builds it on Linux (setup.py); a silent build failure would leave every op on the slower
    Python path, so it fails here (TENSORLIB_NATIVE=0 turns it off on purpose)."""
    if not sys.platform.startswith("linux"):
        pytest.skip("the C executor is built on Linux only (setup.py)")
    if OFF:
        assert not NATIVE and _native.status()["tensorlib._cexecute"].startswith("off")
        return
    assert _native.status()["tensorlib._cexecute"] == "on"
    assert dispatch.execute is _execute.execute is _execute._cexecute.execute is _define.execute
    assert _execute.execute_py is not _execute.execute


def test_native_off_runs_the_python_executor():
    code = ("import tensorlib as tl, tensorlib._execute as E, tensorlib.dispatch as D;"
            "assert E.execute is E.execute_py is D.execute and E._cexecute is None;"
            "print((tl.ones(2, requires_grad=True) * 3).sum().item())")
    out = subprocess.run([sys.executable, "-c", code], env={**os.environ, "TENSORLIB_NATIVE": "0"},
                         capture_output=True, text=True, check=True).stdout
    assert out.strip() == "6.0"


def _python_executor(monkeypatch):
    for mod in (_execute, dispatch, _define):
        monkeypatch.setattr(mod, "execute", _execute.execute_py)
    dispatch.refresh_hooks()


def _reseed(seed):
    """The same inputs for both runs: every op_cases module's generator, and the library's, from `seed`."""
    import tests.tensorlib as pkg
    mods = [importlib.import_module(m.name) for m in pkgutil.walk_packages(pkg.__path__, "tests.tensorlib.")
            if m.name.rsplit(".", 1)[-1].startswith("op_cases_")]
    for m in [op_cases] + mods:
        if isinstance(getattr(m, "_rng", None), np.random.Generator):
            m._rng = np.random.default_rng(seed)
    tl.manual_seed(seed)
    np.random.seed(seed)


def _flat(x):
    if isinstance(x, tl.Tensor):
        return [x]
    if isinstance(x, (list, tuple)):
        return [t for v in x for t in _flat(v)]
    return []


def _fn_name(fn):
    return None if fn is None else type(fn).__name__


def _position(obj, inputs, outputs):
    """How a saved object relates to the call: the input or output it is, by position, or its value."""
    for i, x in enumerate(inputs):
        if obj is x:
            return ("input", i)
    for i, x in enumerate(outputs):
        if obj is x:
            return ("output", i)
    if isinstance(obj, tl.Tensor):
        return ("tensor", obj.shape, str(obj.dtype))
    return ("value", repr(obj))


def _node(fn, inputs, outputs):
    if fn is None or not hasattr(fn, "edges"):
        return _fn_name(fn)
    return (type(fn).__name__, fn.op.name if hasattr(fn, "op") else None,
            [(_fn_name(f), nr) for f, nr in fn.edges],
            repr(getattr(fn, "in_meta", None)), repr(getattr(fn, "_out_meta", None)), repr(fn.out_meta),
            None if getattr(fn, "inputs", None) is None else [_position(x, inputs, outputs) for x in fn.inputs],
            getattr(fn, "versions", None),
            None if getattr(fn, "out_data", None) is None else [(d.shape, str(d.dtype)) for d in fn.out_data],
            None if getattr(fn, "out_refs", None) is None
            else [None if r is None else _position(r(), inputs, outputs) for r in fn.out_refs])


def _run(build, seed):
    _reseed(seed)
    fn, inputs = build()
    ins = _flat(list(inputs))
    try:
        out = fn(*inputs)
    except Exception as e:      # noqa: BLE001 -- the error itself is what both must agree on
        return ("raised", type(e).__name__, str(e)), None
    outs = _flat(out)
    seen = []
    for t in outs:
        seen.append((tuple(t.shape), str(t.dtype), t.requires_grad, t.is_leaf,
                     t._data.tobytes() if isinstance(t._data, np.ndarray) and t._data.dtype != object else None,
                     _position(t._base, ins, outs) if t._base is not None else None,
                     t._version, t._rebase_gen, t._output_nr, sorted(vars(t)), _node(t.grad_fn, ins, outs)))
    grads = None
    diff = [t for t in outs if t.requires_grad and t.dtype.is_floating_point and not t.is_complex()]
    leaves = [x for x in ins if x.requires_grad and x.is_leaf]
    if diff and leaves:
        try:
            loss = sum((t.double() * (k + 1)).sum() for k, t in enumerate(diff))
            gs = tl.autograd.grad(loss, leaves, allow_unused=True)
            grads = [None if g is None else g._data.tobytes() for g in gs]
        except Exception as e:      # noqa: BLE001
            grads = ("raised", type(e).__name__, str(e))
    return seen, grads


CASES = op_cases.all_cases()


@pytest.mark.skipif(not NATIVE, reason="compares the C executor with the Python one: TENSORLIB_NATIVE=0 or not built")
@pytest.mark.parametrize("name", sorted(CASES))
def test_every_op_records_the_same_through_both_executors(name, monkeypatch):
    seed = sum(map(ord, name))
    native = _run(CASES[name], seed)
    _python_executor(monkeypatch)
    python = _run(CASES[name], seed)
    assert native == python


def _leaf(dtype, grad=True):
    a = np.arange(1, 7, dtype=np.float64).reshape(2, 3) / 4
    return tl.tensor(a.astype(dtype), requires_grad=grad and np.dtype(dtype).kind == "f")


def _inplace_view(t):
    """in-place ops outside autograd on a view (the base's version counts) and on a tensor, then one under no_grad
    on the leaf itself (execute_inplace_op's fast path, which the C executor takes)"""
    d = t.detach().clone()
    d[0].mul_(2)
    d.add_(d, alpha=2)
    with tl.no_grad():
        t.sub_(1)
    return d, t


def _inplace_refused(t):
    """a broadcast an in-place op cannot write: NumPy's ValueError, worded by the Python path"""
    return t.detach().clone().add_(tl.ones(5, 5, dtype=t.dtype))


# the operators' forms the sample calls do not all reach: a number first (reflected), mixed dtypes, bools, ints
EXPRESSIONS = {
    "rsub": lambda t: 1 - t, "rmul": lambda t: 2 * t, "radd": lambda t: 3.5 + t, "rdiv": lambda t: 1 / t,
    "rpow": lambda t: 2 ** t, "rsub_bool": lambda t: True - t.double(), "mul_bool": lambda t: t * False,
    "add_int_scalar": lambda t: t + 2, "sub_big_int": lambda t: t - 2 ** 40,
    "mul_np_scalar": lambda t: t * np.float64(3),
    "rmul_np_scalar": lambda t: np.float32(3) * t, "mixed": lambda t: t + t.double(), "half": lambda t: t.half() * 2.5,
    "chain": lambda t: ((1 - t) * t + 2 * t.exp()).sum(), "view": lambda t: (2 * t).view(-1)[1:] * 3,
    "linear": lambda t: tl.nn.functional.linear(t, t, t[0]), "linear_nobias": lambda t: tl.nn.functional.linear(t, t),
    "broadcast_error": lambda t: t + t.t(),
    # a Python int with an int64 tensor needs no cast (the C executor takes it), beyond int64 it does not
    "beyond_int64": lambda t: t + 2 ** 63, "rsub_int": lambda t: 2 ** 40 - t, "div_int": lambda t: t / 3,
    "floordiv_int": lambda t: t // 2, "lt_int": lambda t: t < 1, "pow_int": lambda t: t ** 2,
    "rem_int": lambda t: t % 3, "and_int": lambda t: t & 3, "max_int": lambda t: tl.maximum(t, tl.tensor(1)),
    # full reductions and ints indexing a 1-d tensor: NumPy scalars wrapped as 0-d arrays
    "inplace_view": _inplace_view, "inplace_refused": _inplace_refused,
    # views marked in C (a view of a view: the base's base; an output of unbind passes _multi_view on)
    "view_of_views": lambda t: (t * 2).view(-1)[1:].unsqueeze(0).t(),
    "view_of_unbind": lambda t: t.unbind(0)[0].view(-1),
    "view_nograd": lambda t: t.detach().reshape(3, 2).transpose(0, 1)[0],
    "sum": lambda t: t.sum(), "mean": lambda t: t.double().mean(), "select_1d": lambda t: t.reshape(-1)[4],
    # cat and stack (execute_list's common case in C): more inputs than the other paths' three, mixed ones
    "cat_many": lambda t: tl.cat([t, t * 2, t.detach(), t[0:1], t.t().t()], 0),
    "stack_many": lambda t: tl.stack([t, t + 1, t.detach(), t, t], 1), "cat_tuple": lambda t: tl.cat((t, t), -1),
    "cat_detached": lambda t: tl.cat([t.detach(), t.detach()]), "cat_one": lambda t: tl.cat([t]),
}


@pytest.mark.skipif(not NATIVE, reason="compares the C executor with the Python one: TENSORLIB_NATIVE=0 or not built")
@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int64])
@pytest.mark.parametrize("name", sorted(EXPRESSIONS))
def test_operator_forms_record_the_same_through_both_executors(name, dtype, monkeypatch):
    def build():
        t = _leaf(dtype)
        return EXPRESSIONS[name], [t]
    native = _run(build, 0)
    _python_executor(monkeypatch)
    assert _run(build, 0) == native


def test_threads_record_their_own_graphs_while_another_runs_without_grad():
    """The C executor reads grad mode as the Python one does (`grad_off`, then the thread's own STATE): threads
    training at once, one of them under no_grad throughout, get what each gets alone."""
    import threading

    def train(seed, steps, out, key, no_grad=False):
        rng = np.random.default_rng(seed)
        w = tl.tensor(rng.standard_normal((6, 5)).astype(np.float32), requires_grad=True)
        b = tl.tensor(np.zeros(6, np.float32), requires_grad=True)
        x = tl.tensor(rng.standard_normal((8, 5)).astype(np.float32))
        for _ in range(steps):
            if no_grad:
                with tl.no_grad():
                    y = (1 - tl.nn.functional.linear(x, w, b)).relu().sum()
                    assert y.grad_fn is None and not y.requires_grad
                continue
            loss = ((1 - tl.nn.functional.linear(x, w, b)).relu() * 2).mean()
            w.grad = b.grad = None
            loss.backward()
            with tl.no_grad():
                w -= 0.1 * w.grad
                b -= 0.1 * b.grad
        out[key] = (w.detach().numpy().copy(), b.detach().numpy().copy())

    alone: dict = {}
    for k in range(3):
        train(k, 200, alone, k)
    together: dict = {}
    threads = [threading.Thread(target=train, args=(k, 200, together, k)) for k in range(3)]
    threads.append(threading.Thread(target=train, args=(9, 400, together, "ng", True)))
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for k in range(3):
        np.testing.assert_array_equal(together[k][0], alone[k][0])
        np.testing.assert_array_equal(together[k][1], alone[k][1])
    assert "ng" in together


@pytest.mark.skipif(not NATIVE, reason="compares the C twin with the Python one: TENSORLIB_NATIVE=0 or not built")
def test_tensor_of_result_in_c_is_the_python_twins():
    """_graph.tensor_of_result (a sink formula's result as a tensor) is the C twin, bound before the op modules
    import it; it gives what the Python twin gives: the array itself, and for a view of an intermediate array a
    base tensor over that array (AccumulateGrad steals or clones by it), a NumPy scalar as a 0-d array."""
    from tensorlib import _graph
    from tensorlib.ops import linalg, reduce, shape
    assert _graph.tensor_of_result is _execute._cexecute.tensor_of_result
    assert linalg.tensor_of_result is reduce.tensor_of_result is shape.tensor_of_result is _graph.tensor_of_result
    own = np.arange(12, dtype=np.float32).reshape(3, 4)
    for d in (own, own.T, own[1:], own.T[::2], np.float32(2.5), np.float64(1.0)):
        c, p = _graph.tensor_of_result(d), _graph._tensor_of_result(d)
        assert type(c) is type(p) is tl.Tensor
        assert type(c._data) is type(p._data) and np.array_equal(c._data, p._data)
        assert (c._data is d) == (p._data is d)
        assert (c._base is None) == (p._base is None)
        if p._base is not None:
            assert c._base._data is p._base._data is d.base and c._base._base is None
        assert bool(c._multi_view) == bool(p._multi_view)


@pytest.mark.skipif(not NATIVE, reason="compares the C twin with the Python one: TENSORLIB_NATIVE=0 or not built")
def test_list_arrays_in_c_is_the_python_twins():
    """cat's and stack's common case (execute_list): the C twin gives the Python twin's (arrays, need_grad) for a
    list or tuple of plain tensors on NumPy arrays of one dtype, and None for everything else."""
    c, p = _execute._cexecute.list_arrays, _execute.list_arrays_py
    assert _execute.list_arrays is c
    a, b = tl.ones(2), tl.zeros(3, requires_grad=True)
    cases = [[a], [a, a], (a, b), [b, a], [a, tl.ones(2, dtype=tl.float64)], [a, 1], [tl.nn.Parameter(a)], [a, a.T],
             (), [], iter([a]), [a, a.to_sparse()]]
    for case in cases:
        got, want = c(case), p(case)
        if want is None:
            assert got is None, case
            continue
        assert got[1] is want[1]
        assert [id(x) for x in got[0]] == [id(x) for x in want[0]] == [id(t._data) for t in case]
    assert c([b, a])[1] is True and c([a, a])[1] is False and c([a, 1]) is None and p([a, 1]) is None


def test_cat_wraps_dim_and_refuses_zero_dim_inputs_as_torch():
    """torch's legacy_cat_wrap_dim: dim wrapped by the first input that is not a legacy empty 1-d tensor (not by
    the largest rank), left as it is when all are; a 0-d input refused with its position."""
    with pytest.raises(RuntimeError, match=r"zero-dimensional tensor \(at position 1\) cannot be concatenated"):
        tl.cat([tl.ones(2), tl.tensor(1.0)])
    with pytest.raises(RuntimeError, match=r"zero-dimensional tensor \(at position 2\) cannot be concatenated"):
        tl.cat([tl.ones(2), tl.ones(3), tl.tensor(1.0)])       # (past the dim's input: the kernel's failure path)
    with pytest.raises(IndexError, match=r"expected to be in range of \[-1, 0\], but got 1"):
        tl.cat([tl.ones(2), tl.ones(2, 2)], dim=1)
    assert tl.cat([tl.empty(0), tl.empty(0)], dim=5).shape == (0,)
    assert tl.cat([tl.empty(0), tl.ones(2, 2)], dim=-1).shape == (2, 2)
    assert tl.cat((tl.ones(2), tl.ones(3, dtype=tl.int64))).dtype == tl.float32
    with pytest.raises(TypeError, match="expected Tensor as element 1 in argument 0, but got int"):
        tl.cat([tl.ones(2), 3])
    with pytest.raises(TypeError, match="expected Tensor as element 1 in argument 0, but got int"):
        tl.stack([tl.ones(2), 3])
    x = tl.arange(6).view(2, 3)
    for d in (0, 1, 2, -1, -2, -3):
        want = np.stack([x.numpy(), 10 + x.numpy()], axis=d)
        np.testing.assert_array_equal(tl.stack([x, 10 + x], d).numpy(), want)
