"""The dispatcher is the one choke point: every registered op, forward and backward, reaches the hooks."""
from __future__ import annotations

import threading

import numpy as np
import pytest

import tensorlib as tl
from tensorlib import dispatch as D
from tests.tensorlib.op_cases import all_cases, backward_only

# cut the graph by definition
RANDOM_FILLS = {"uniform_", "normal_", "bernoulli_", "exponential_", "random_fill", "random_"}


class Recorder(D.Hook):
    def __init__(self):
        self.events = []
        self.lock = threading.Lock()

    def op_enter(self, op, inputs, attrs, phase, seq):
        with self.lock:
            self.events.append(("enter", op.name, phase, seq, threading.get_ident()))
        return (op.name, phase, seq)

    def op_exit(self, token, outputs):
        with self.lock:
            self.events.append(("exit",) + token + (threading.get_ident(),))

    def range_enter(self, name, kind):
        with self.lock:
            self.events.append(("range", name, kind, D.current_seq(), threading.get_ident()))
        return name

    def range_exit(self, token):
        with self.lock:
            self.events.append(("range_exit", token, None, None, threading.get_ident()))


@pytest.fixture
def rec():
    r = Recorder()
    D.add_hook(r)
    yield r
    D.remove_hook(r)


def test_every_op_has_a_case():
    missing = sorted(set(D.registry()) - set(all_cases()))
    assert not missing, f"ops without a sample call in tests/tensorlib/op_cases*.py: {missing}"


def _first_float(out):
    outs = out if isinstance(out, tuple) else (out,)
    for o in outs:
        if isinstance(o, tl.Tensor) and o.requires_grad:
            return o
    return None


@pytest.mark.parametrize("name", sorted(all_cases()))
def test_op_reaches_hook_forward_and_backward(name, rec):
    fn, inputs = all_cases()[name]()
    out = fn(*inputs)
    if name not in D.registry():    # a composite (linear): a range of kind "op" around the ops it dispatches
        assert any(e[0] == "range" and e[1] == name and e[2] == "op" for e in rec.events), rec.events[:10]
        return
    shown = D.registry()[name].name     # the name records carry (clamp_tensor's: torch's overload, clamp)
    if name in backward_only():
        assert any(e[0] == "enter" and e[1] == shown and e[2] == "backward" for e in rec.events), \
            f"backward-only op {name!r} never reached op_enter in a backward pass"
        return
    fwd = [e for e in rec.events if e[0] == "enter" and e[1] == shown and e[2] == "forward"]
    if not fwd and any(e[0] == "range" and e[1] == name and e[2] == "op" for e in rec.events):
        return      # an op that folds into others for these inputs, as torch's (matmul of 3-d by 2-d: view, mm)
    assert fwd, f"op {name!r} never reached op_enter (events: {rec.events[:10]})"
    assert any(e[0] == "exit" and e[1] == shown for e in rec.events)
    op = D.registry().get(name)
    target = _first_float(out)
    if op is None or not op.differentiable or target is None or name in RANDOM_FILLS:
        return
    seqs = {e[3] for e in fwd}
    rec.events.clear()
    target.sum().backward()
    base = op if op.inplace_of is None else op.inplace_of
    node_name = base.node_name
    names = {node_name, base.node_name_dim or node_name}      # sum(dim) is SumBackward1, as torch's
    if base.node_name_of is not None and target.grad_fn is not None:    # named by its arguments (lstm_layer)
        names.add(target.grad_fn.name())
    ranges = [e for e in rec.events if e[0] == "range" and e[2] == "backward" and e[1] in names]
    assert ranges, f"backward node {node_name} of {name!r} never reached range_enter"
    assert any(r[3] in seqs for r in ranges), "the backward node does not carry its forward op's sequence number"
    # every op dispatched inside a backward node is a backward-phase op carrying that node's sequence number
    stack = []
    for e in rec.events:
        if e[0] == "range":
            stack.append(e)
        elif e[0] == "range_exit":
            stack.pop()
        elif e[0] == "enter" and stack and stack[-1][2] == "backward":
            assert e[2] == "backward" and e[3] == stack[-1][3], e


def test_no_hooks_means_fast_path():
    assert not D.full_path_active()
    r = Recorder()
    D.add_hook(r)
    assert D.full_path_active()
    D.remove_hook(r)
    assert not D.full_path_active()


def test_hook_registration_errors():
    r = Recorder()
    D.add_hook(r)
    with pytest.raises(RuntimeError, match="already registered"):
        D.add_hook(r)
    D.remove_hook(r)
    with pytest.raises(RuntimeError, match="not registered"):
        D.remove_hook(r)


def test_enter_exit_nest_and_exits_reverse_order():
    order = []

    class H(D.Hook):
        def __init__(self, tag):
            self.tag = tag

        def op_enter(self, op, inputs, attrs, phase, seq):
            order.append(("enter", self.tag))

        def op_exit(self, token, outputs):
            order.append(("exit", self.tag))

    h1, h2 = H(1), H(2)
    D.add_hook(h1)
    D.add_hook(h2)
    try:
        tl.ones(2) + 1
    finally:
        D.remove_hook(h1)
        D.remove_hook(h2)
    assert order[-4:] == [("enter", 1), ("enter", 2), ("exit", 2), ("exit", 1)]


def test_exit_called_when_kernel_raises(rec):
    with pytest.raises(RuntimeError):
        tl.ones(2, 3) @ tl.ones(2, 3)
    names = [(e[0], e[1]) for e in rec.events]
    assert ("enter", "matmul") in names and ("exit", "matmul") in names


def test_sequence_numbers_increase_and_backward_reuses_them(rec):
    x = tl.randn(3, requires_grad=True)
    y = (x * 2).exp().sum()
    fwd = {e[1]: e[3] for e in rec.events if e[0] == "enter" and e[2] == "forward"}
    assert fwd["mul"] < fwd["exp"] < fwd["sum"]
    rec.events.clear()
    y.backward()
    bw = [e for e in rec.events if e[0] == "range" and e[2] == "backward"]
    by_name = {e[1]: e[3] for e in bw}
    assert by_name["SumBackward0"] == fwd["sum"]
    assert by_name["ExpBackward0"] == fwd["exp"]
    assert by_name["MulBackward0"] == fwd["mul"]
    # newest forward op first, as torch's engine
    order = [e[1] for e in bw if e[1].endswith("Backward0")]
    assert order.index("SumBackward0") < order.index("ExpBackward0") < order.index("MulBackward0")


def test_ops_on_every_thread_reach_the_hook(rec):
    barrier = threading.Barrier(3)

    def work():
        barrier.wait()   # all three alive at once, so their idents differ
        for _ in range(20):
            tl.ones(3) * 2
    ts = [threading.Thread(target=work) for _ in range(3)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    threads = {e[4] for e in rec.events if e[0] == "enter" and e[1] == "mul"}
    assert len(threads) == 3
    assert sum(1 for e in rec.events if e[0] == "enter" and e[1] == "mul") == 60


def test_record_range_reaches_hook(rec):
    with D.record_range("my region", "user"):
        tl.ones(1) + 1

    @D.record_range("decorated", "user")
    def f():
        return tl.ones(1) * 3
    f()
    kinds = [(e[1], e[2]) for e in rec.events if e[0] == "range"]
    assert ("my region", "user") in kinds and ("decorated", "user") in kinds


def test_device_mismatch_error_names_op(monkeypatch):
    # simulate a second device type: an array type the dispatcher has not seen on the other input
    class FakeCuda(np.ndarray):
        pass
    a = tl.ones(3)
    b = tl.ones(3)
    b._data = np.ones(3).view(FakeCuda)
    monkeypatch.setattr(tl._device, "device_of", lambda arr: tl.device("cpu") if type(arr) is np.ndarray
                        else tl._device.cuda_device(0))
    monkeypatch.setattr(tl._execute, "device_of", tl._device.device_of)     # the executor names the devices
    with pytest.raises(RuntimeError, match=r"Expected all tensors to be on the same device, but found at least two "
                                           r"devices, cuda:0 and cpu! \(when checking arguments for add\)"):
        a + b


def test_no_op_output_aliases_an_input_unless_the_op_is_a_view():
    """Every sample op: an output that shares memory with an input must come from a view op (which shares
    the input's version counter) or an in-place op; anything else is a silent aliasing bug (flip was one)."""
    import numpy as np

    from tensorlib import dispatch as D

    found = {}

    class Aliases(D.Hook):
        def op_enter(self, op, inputs, attrs, phase, seq):
            arrs = []
            for x in inputs:
                for y in (x if isinstance(x, (list, tuple)) else (x,)):
                    if isinstance(y, tl.Tensor) and type(y._data) is np.ndarray:
                        arrs.append(y._data)
            return op, arrs

        def op_exit(self, token, outputs):
            op, arrs = token
            if op.view or op.inplace_of is not None or op.name.endswith("_") or op.name == "_unsafe_view":
                return      # (_unsafe_view: torch's, of an array only it holds: reshape's copy, matmul's product)
            for o in outputs if isinstance(outputs, tuple) else (outputs,):
                if isinstance(o, tl.Tensor) and type(o._data) is np.ndarray and o._data.size:
                    if any(np.shares_memory(o._data, a) for a in arrs):
                        found[op.name] = found.get(op.name, 0) + 1

    hook = D.add_hook(Aliases())
    try:
        for name, build in all_cases().items():
            fn, inputs = build()
            try:
                fn(*inputs)
            except RuntimeError:        # ops that need CUDA raise torch's error here; their dispatch still ran
                pass
    finally:
        D.remove_hook(hook)
    assert not found, f"non-view ops whose output aliases an input: {found}"


class _Passes(D.Hook):
    def __init__(self):
        self.calls = []

    def backward_begin(self):
        self.calls.append("begin")

    def backward_end(self):
        self.calls.append("end")


def test_backward_hooks_bracket_each_accumulating_pass_at_no_cost_to_ops():
    h = D.add_hook(_Passes())
    try:
        assert not D.full_path_active()     # observing passes leaves every op on the fast path
        x = tl.ones(3, requires_grad=True)
        (x * 2).sum().backward()
        tl.autograd.grad((x * 3).sum(), x)  # autograd.grad accumulates nothing: not a pass for these hooks
        assert h.calls == ["begin", "end"]
    finally:
        D.remove_hook(h)


def test_op_sink_records_are_oprecord_shaped():
    class Sink:
        tls = threading.local()
    Sink.tls.buf = []
    D.set_op_sink(Sink)
    try:
        tl.ones(2) + 1
    finally:
        D.set_op_sink(None)
    recs = [D.OpRecord(*r) for r in Sink.tls.buf]
    assert [(r.name, r.phase) for r in recs] == [("ones", "forward"), ("add", "forward")]
    assert all(r.t0_ns <= r.t1_ns for r in recs) and recs[0].seq < recs[1].seq


class _ArrayOps(Recorder):
    """An op hook that also takes the engine's sink formulas' ops on arrays (Hook.op_arrays)."""

    def op_arrays(self, op, arrays, attrs, phase, seq):
        with self.lock:
            self.events.append(("arrays", op.name, phase, seq, tuple(type(a).__name__ for a in arrays)))
        return op.kernel(np, *arrays, **attrs)


def _mlp_grads(hook):
    tl.manual_seed(0)
    lin = tl.nn.Linear(6, 4)
    x = tl.randn(5, 6)
    if hook is not None:
        D.add_hook(hook)
    try:
        tl.nn.functional.relu(lin(x)).sum().backward()
    finally:
        if hook is not None:
            D.remove_hook(hook)
    return lin.weight.grad.numpy(), lin.bias.grad.numpy()


def test_only_op_hook_with_op_arrays_takes_the_sink_formulas_ops():
    plain, arrays = Recorder(), _ArrayOps()
    want = _mlp_grads(None)
    for hook in (plain, arrays):
        got = _mlp_grads(hook)
        for g, w in zip(got, want):
            np.testing.assert_array_equal(g, w)
    # without op_arrays every backward op is dispatched to the hook; with it, the sink formulas' ops come
    # as arrays, in the same order, with the same phases (the gradients' sequence numbers are the forward's)
    backward = [e[1:3] for e in plain.events if e[0] == "enter" and e[2] == "backward"]
    taken = [e for e in arrays.events if e[0] == "arrays" and e[2] == "backward"]
    # (the backward seed's ones_like steps too, before the backward: autograd.engine._make_grads)
    seed = [e[1] for e in arrays.events if e[0] == "arrays" and e[2] != "backward"]
    assert taken and seed == ["empty_strided", "fill_"]
    assert all(set(e[4]) <= {"ndarray", "NoneType", "list"} for e in taken)
    mixed = [e[1:3] for e in arrays.events if e[0] in ("enter", "arrays") and e[2] == "backward"]
    assert mixed == backward
    # a second hook, or the op sink, on the full path: back to dispatched formulas
    other = Recorder()
    D.add_hook(other)
    try:
        arrays.events.clear()
        _mlp_grads(arrays)
    finally:
        D.remove_hook(other)
    assert not [e for e in arrays.events if e[0] == "arrays"]


@pytest.mark.parametrize("name,args", [("maximum", 2), ("minimum", 2), ("fmax", 2), ("fmin", 2), ("atan2", 2),
                                       ("hypot", 2), ("exp", 1), ("sin", 1), ("abs", 1), ("neg", 1), ("sqrt", 1),
                                       ("sigmoid", 1), ("eq", 2), ("lt", 2), ("logical_and", 2)])
def test_functions_take_torchs_out_argument(name, args):
    """A public function that is its op's dispatch takes torch's `out=`: the result written into it and
    returned (maximum and minimum failed with a TypeError from their kernels)."""
    import tensorlib as tl
    x, y = tl.rand(3, 4) + 0.5, tl.rand(3, 4) + 0.5
    operands = (x, y)[:args]
    want = getattr(tl, name)(*operands)
    out = tl.empty(3, 4, dtype=want.dtype)
    got = getattr(tl, name)(*operands, out=out)
    assert got is out and bool((out == want).all())


@pytest.mark.parametrize("name", ["add", "mul", "maximum", "exp", "matmul"])
def test_out_is_refused_where_the_result_would_carry_a_gradient(name):
    """torch's rule and words: out= with an argument that requires grad (grad mode on) is an error; under
    no_grad it writes."""
    import tensorlib as tl
    a = tl.rand(3, 3, requires_grad=True)
    operands = (a,) if name == "exp" else (a, a)
    out = tl.empty(3, 3)
    with pytest.raises(RuntimeError, match=rf"^{name}\(\): functions with out=\.\.\. arguments don't support automatic "
                                           r"differentiation, but one of the arguments requires grad\.$"):
        getattr(tl, name)(*operands, out=out)
    with tl.no_grad():
        assert getattr(tl, name)(*operands, out=out) is out
