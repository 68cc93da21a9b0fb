"""The backward engine's loop in C (tensorlib/autograd/_cengine.c) against its Python twin (engine._drain).

Every backward() pass runs the C loop where it is built; autograd.grad and backward(inputs=) run the Python one.
Here the same backward() passes run through both, on the same inputs, and what they leave behind must agree: every
op's sample call (op_cases) with a backward of its outputs into the leaves' .grad (values, and whether a .grad is
the engine's own buffer or a copy), and the passes with what the loop hands to Python: tensor and node hooks,
retain_grad, post-accumulate hooks, custom Functions, several roots, gradients summed from several uses, retained
and freed graphs, errors, anomaly mode, create_graph, and a profiled pass's recorded events in order.
"""
from __future__ import annotations

import warnings

import numpy as np
import pytest

import tensorlib as tl
from tensorlib.autograd import engine
from tests.tensorlib import op_cases
from tests.tensorlib.test_native_execute import _flat, _reseed

NATIVE = engine._cengine is not None
pytestmark = pytest.mark.skipif(not NATIVE, reason="compares the C engine loop with the Python one: "
                                                   "TENSORLIB_NATIVE=0 or not built")


def _python_loop(monkeypatch):
    monkeypatch.setattr(engine, "_cengine", None)


def _grads(leaves, holders=()):
    """Each leaf's .grad: its bytes, dtype and shape, and whether its memory is one of `holders`' (a gradient
    the engine stole rather than copied: AccumulateGrad's steal, which only the engine's own buffers may take)."""
    out = []
    for t in leaves:
        g = t.grad
        if g is None:
            out.append(None)
            continue
        d = g._data
        out.append((d.tobytes(), str(d.dtype), d.shape, g.requires_grad, g.grad_fn is not None,
                    [np.shares_memory(d, h) for h in holders]))
    return out


def _backward(build, seed):
    _reseed(seed)
    fn, inputs = build()
    ins = _flat(list(inputs))
    try:
        out = fn(*inputs)
    except Exception as e:      # noqa: BLE001 -- an op's own error is no part of this comparison
        return ("op raised", type(e).__name__)
    diff = [t for t in _flat(out) if t.requires_grad and t.dtype.is_floating_point and not t.is_complex()]
    leaves = [x for x in ins if x.requires_grad and x.is_leaf]
    if not diff or not leaves:
        return None
    try:
        loss = sum((t.double() * (k + 1)).sum() for k, t in enumerate(diff))
        loss.backward()
    except Exception as e:      # noqa: BLE001 -- both loops must raise alike
        return ("raised", type(e).__name__, str(e))
    return _grads(leaves), [x._version for x in ins]


CASES = op_cases.all_cases()


@pytest.mark.parametrize("name", sorted(CASES))
def test_every_op_backward_is_the_same_through_both_loops(name, monkeypatch):
    seed = sum(map(ord, name))
    native = _backward(CASES[name], seed)
    _python_loop(monkeypatch)
    assert _backward(CASES[name], seed) == native


def _mlp_pass(log):
    """A small network's step with everything the loop hands to Python, logging what runs in order."""
    rng = np.random.default_rng(3)
    w1 = tl.tensor(rng.standard_normal((5, 4)).astype(np.float32), requires_grad=True)
    b1 = tl.tensor(rng.standard_normal(5).astype(np.float32), requires_grad=True)
    w2 = tl.tensor(rng.standard_normal((3, 5)).astype(np.float32), requires_grad=True)
    x = tl.tensor(rng.standard_normal((6, 4)).astype(np.float32), requires_grad=True)
    w1.register_hook(lambda g: log.append(("w1 hook", g.shape)) or g * 2)
    b1.register_post_accumulate_grad_hook(lambda t: log.append(("b1 post", float(t.grad.sum()))))
    h = tl.nn.functional.linear(x, w1, b1)
    h.retain_grad()
    h.register_hook(lambda g: log.append(("h hook", float(g.sum()))))
    r = h.relu()
    r.grad_fn.register_prehook(lambda gs: log.append(("relu prehook", len(gs))))
    r.grad_fn.register_hook(lambda gi, go: log.append(("relu hook", len(gi), len(go))))
    y = tl.nn.functional.linear(r, w2)
    loss = (y * y).mean() + (r.sum() * 0.5) + (w2 * w2).sum()     # r and w2 used twice: summed gradients
    loss.backward()
    return [w1, b1, w2, x], h


def test_hooks_retain_grad_and_summed_gradients_are_the_same_through_both_loops(monkeypatch):
    log_c: list = []
    leaves, h = _mlp_pass(log_c)
    native = (_grads(leaves), h.grad.numpy().tobytes(), log_c)
    _python_loop(monkeypatch)
    log_py: list = []
    leaves, h = _mlp_pass(log_py)
    assert (_grads(leaves), h.grad.numpy().tobytes(), log_py) == native
    assert {e[0] for e in log_c} == {"w1 hook", "b1 post", "h hook", "relu prehook", "relu hook"}


class _Square(tl.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x * x

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        return 2 * x * g


def _outcome(x, run, exc=RuntimeError):
    """[x, the error `run()` raised (its message) or "no error"]: a scenario whose pass both loops must fail alike."""
    try:
        run()
    except exc as e:
        return [x, ("raised", str(e))]
    return [x, "no error"]


def _clone_fn(backward):
    """A custom Function that clones its input forward and runs `backward(ctx, g)` backward."""
    return type("Fn", (tl.autograd.Function,), {"forward": staticmethod(lambda ctx, x: x.clone()),
                                                "backward": staticmethod(backward)})


def _scenarios():
    def custom():
        x = tl.arange(4.0, requires_grad=True)
        _Square.apply(x).sum().backward()
        return [x]

    def two_roots():
        x = tl.arange(3.0, requires_grad=True)
        a, b = (x * 2).sum(), (x ** 2).sum()
        tl.autograd.backward([a, b], [tl.tensor(1.0), tl.tensor(3.0)])
        return [x]

    def dependent_roots():      # a root reachable from another: it runs once, after both gradients arrive
        x = tl.arange(3.0, requires_grad=True)
        y = x.exp()
        z = (y * 2).sum()
        tl.autograd.backward([y, z, y], [tl.ones(3), tl.tensor(0.5), tl.full((3,), 2.0)])
        return [x]

    def leaf_root():
        x = tl.tensor(2.0, requires_grad=True)
        x.backward()
        return [x]

    def leaf_root_given():
        x = tl.ones(3, requires_grad=True)
        g = tl.full((3,), 2.0)
        x.backward(g)
        return [x, (x.grad._data is g._data,)]

    def accumulate_twice():
        x = tl.arange(3.0, requires_grad=True)
        (x * 3).sum().backward()
        first = x.grad
        (x * x).sum().backward()
        return [x, (x.grad is first,)]

    def retained_then_freed():
        x = tl.arange(3.0, requires_grad=True)
        y = (x.exp() * x).sum()
        y.backward(retain_graph=True)
        y.backward()
        return _outcome(x, y.backward)

    def version_error():
        x = tl.arange(3.0, requires_grad=True)
        y = x * 2
        z = y * y
        y.add_(1)
        return _outcome(x, lambda: z.sum().backward())

    def formula_error():
        def bad(ctx, g):
            raise ValueError("bad backward")
        x = tl.arange(3.0, requires_grad=True)
        return _outcome(x, lambda: (_clone_fn(bad).apply(x) * 2).sum().backward(), ValueError)

    def wrong_shape():
        x = tl.arange(3.0, requires_grad=True)
        return _outcome(x, lambda: _clone_fn(lambda ctx, g: g[:1]).apply(x).sum().backward())

    def anomaly_nan():
        x = tl.tensor([0.0, 1.0], requires_grad=True)

        def run():
            with tl.autograd.detect_anomaly(), warnings.catch_warnings():
                warnings.simplefilter("ignore")
                (x.sqrt() * 0).sum().backward()
        return _outcome(x, run)

    def create_graph():
        x = tl.tensor([1.0, 2.0], requires_grad=True)
        (g,) = tl.autograd.grad((x ** 3).sum(), x, create_graph=True)
        g.sum().backward()
        return [x]

    def dtype_cast():
        x = tl.arange(3.0, requires_grad=True, dtype=tl.float32)
        (x.double() * 2).sum().backward()
        return [x]

    def detached_branches():
        x = tl.arange(4.0, requires_grad=True)
        y = x.view(2, 2)
        z = (y.t() @ y).sum() + y[0].sum() + x.detach().sum()
        z.backward()
        return [x]

    def no_grad_leaf_gone():
        x = tl.arange(3.0, requires_grad=True)
        y = (x * 2).sum()
        del x
        y.backward()
        return []

    return {f.__name__: f for f in (custom, two_roots, dependent_roots, leaf_root, leaf_root_given, accumulate_twice,
                                    retained_then_freed, version_error, formula_error, wrong_shape, anomaly_nan,
                                    create_graph, dtype_cast, detached_branches, no_grad_leaf_gone)}


SCENARIOS = _scenarios()


def _scenario(name):
    tl.manual_seed(0)
    res = SCENARIOS[name]()
    return [_grads([t])[0] if isinstance(t, tl.Tensor) else t for t in res]


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_scenarios_are_the_same_through_both_loops(name, monkeypatch):
    native = _scenario(name)
    _python_loop(monkeypatch)
    assert _scenario(name) == native


def test_the_engine_steals_its_own_buffers_and_copies_others():
    """AccumulateGrad's steal (the .grad is the engine's buffer, no copy) where the loop alone holds the gradient,
    a copy where something else does (a hook that kept it): the C loop counts references as the Python one."""
    kept = []
    x = tl.arange(3.0, requires_grad=True)
    y = (x * 2).exp()
    y.register_hook(lambda g: kept.append(g))
    y.sum().backward()
    assert not np.shares_memory(x.grad._data, kept[0]._data)
    kept.clear()
    v = tl.arange(3.0, requires_grad=True)
    u = v * 2
    u.grad_fn.register_hook(lambda gi, go: kept.append(gi[0]))     # holds the gradient v's sink receives
    u.exp().sum().backward()
    assert v.grad is not None and not np.shares_memory(v.grad._data, kept[0]._data)
    s = tl.arange(3.0, requires_grad=True)
    t = s * 2
    t.exp().sum().backward()
    assert t.grad_fn is not None and s.grad.tolist() == (2 * (2 * s).exp()).tolist()
    w = tl.arange(3.0, requires_grad=True)
    (w * 3).sum().backward()
    g = w.grad
    (w * 3).sum().backward()
    assert w.grad is g and g.tolist() == [6.0, 6.0, 6.0]      # accumulated in place into the stolen buffer


def _profiled(opts):
    from profiler import profile, ProfilerActivity
    rng = np.random.default_rng(1)
    w = tl.tensor(rng.standard_normal((4, 3)).astype(np.float32), requires_grad=True)
    x = tl.tensor(rng.standard_normal((5, 3)).astype(np.float32))
    with profile(activities=[ProfilerActivity.CPU], **opts) as prof:
        h = tl.nn.functional.linear(x, w)
        loss = (h.relu() * h).sum() + (w * w).sum()
        loss.backward()
    evs = prof.events()
    first = min(e.sequence_nr for e in evs if e.sequence_nr >= 0)      # (the counter is the process's)
    return [(e.name, e.sequence_nr - first if e.sequence_nr >= 0 else -1,
             tuple(map(tuple, e.input_shapes)) if opts else None) for e in evs], w.grad.numpy().tobytes()


@pytest.mark.parametrize("opts", [{}, {"record_shapes": True, "profile_memory": True}], ids=["default", "detailed"])
def test_a_profiled_backward_records_the_same_events_through_both_loops(opts, monkeypatch):
    native = _profiled(opts)
    assert any(name.endswith("Backward0") for name, _, _ in native[0])
    _python_loop(monkeypatch)
    assert _profiled(opts) == native


def test_deps_counts_as_the_python_walk():
    x = tl.arange(4.0, requires_grad=True)
    y = x * 2
    z = (y * y + y.exp()).sum()
    deps = engine._cengine.deps(z.grad_fn)
    walk: dict = {}
    stack = [z.grad_fn]
    while stack:
        for fn, _ in stack.pop().edges:
            if fn is not None:
                if fn not in walk and type(fn).__name__ != "AccumulateGrad":
                    stack.append(fn)
                walk[fn] = walk.get(fn, 0) + 1
    assert deps == walk
    assert deps[y.grad_fn] == 3


def test_a_profiled_backward_steals_and_copies_as_the_python_loop(monkeypatch):
    """An observed pass's AccumulateGrad (the C loop's region and phase around _store_grad, and its steal of a
    gradient the loop alone holds: detach's kernel recorded, the .grad marked a view of the gradient): the same
    .grad values, steal-or-copy choice, view marks and events as the Python loop's _accumulate."""
    from profiler import profile, ProfilerActivity

    def run():
        kept = []
        rng = np.random.default_rng(3)
        a = tl.tensor(rng.standard_normal((4, 3)).astype(np.float32), requires_grad=True)
        b = tl.tensor(rng.standard_normal(3).astype(np.float32), requires_grad=True)
        c = tl.tensor(rng.standard_normal((3, 4)).astype(np.float32), requires_grad=True)
        y = a * b
        y.register_hook(lambda g: kept.append(g))      # b's gradient is a sum of a held one; a's is a product
        with profile(activities=[ProfilerActivity.CPU]) as prof:
            ((y @ c).exp().sum() + (c.t() * 2).sum()).backward()
        names = [e.name for e in prof.events()]
        marks = [(t.grad._base is not None, bool(getattr(t.grad, "_detached", False))) for t in (a, b, c)]
        return _grads([a, b, c], [k._data for k in kept]), names, marks

    native = run()
    assert native[1].count("torch::autograd::AccumulateGrad") == 3
    assert native[1].count("aten::detach") >= 2 and (True, True) in native[2]   # steals: detached views
    _python_loop(monkeypatch)
    assert run() == native


def test_a_profiled_backward_in_another_thread_keeps_each_threads_state():
    """The C loop and run_recorded read and write STATE's phase and seq as the calling thread's own (tensorlib.
    _cstate's per-thread fields): a backward in another thread records what it records here, and this thread's
    phase and seq stay as they were."""
    import threading
    from tensorlib._state import STATE
    here = _profiled({})
    STATE.seq = 4321
    try:
        out = []
        th = threading.Thread(target=lambda: out.append((_profiled({}), STATE.phase, STATE.seq)))
        th.start()
        th.join()
        assert out[0][0] == here and out[0][1] == "forward"
        assert STATE.phase == "forward" and STATE.seq == 4321
    finally:
        STATE.seq = -1


def test_state_phase_and_seq_in_c_are_each_threads_own_and_go_with_it():
    """STATE.phase and STATE.seq kept in C (tensorlib._cstate) read and write as the threading.local's attributes
    did: per thread, a new thread starting at ("forward", -1); only "forward" or "backward" and an int are taken
    (the one-line errors say what was wrong); a thread's seq is let go when the thread ends."""
    import gc
    import sys
    import threading
    from tensorlib import _state
    from tensorlib._state import STATE
    assert type(vars(type(STATE))["phase"]).__name__ == "Field"
    seen = []
    big = 10 ** 30 + 7      # (an int object of its own, so its reference count is this test's)
    refs = sys.getrefcount(big)

    def other():
        seen.append((STATE.phase, STATE.seq))
        STATE.phase, STATE.seq = "backward", big
        seen.append((STATE.phase, STATE.seq, _state.current_seq(), _state.phase_seq()[:2]))
    STATE.phase, STATE.seq = "forward", 99
    try:
        _state.backward_passes.append(None)     # (phase_seq reads the phase only while some pass runs)
        th = threading.Thread(target=other)
        th.start()
        th.join()
        assert seen == [("forward", -1), ("backward", big, big, ("backward", big))]
        assert (STATE.phase, STATE.seq, _state.current_seq()) == ("forward", 99, -1)
        seen.clear()
        gc.collect()
        assert sys.getrefcount(big) == refs     # (the ended thread's seq let go)
        with pytest.raises(ValueError, match="STATE.phase is 'forward' or 'backward', not 'sideways'"):
            STATE.phase = "sideways"
        with pytest.raises(TypeError, match="STATE.seq is an int, not str"):
            STATE.seq = "3"
        assert (STATE.phase, STATE.seq) == ("forward", 99)
    finally:
        _state.backward_passes.pop()
        STATE.phase, STATE.seq = "forward", -1


def test_the_forward_counter_in_c_counts_as_itertools_count():
    """_state.seq_counter is tensorlib._cstate's Counter where that module is built: next() and __next__ give 0, 1,
    2, ... as itertools.count() does (the C recorded paths take numbers from the same count)."""
    from tensorlib import _cstate, _state
    assert type(_state.seq_counter) is _cstate.Counter
    c = _cstate.Counter()
    assert [next(c), next(c), c.__next__()] == [0, 1, 2] and iter(c) is c
    before = next(_state.seq_counter)
    assert _state.next_seq() == before + 1 and _state.phase_seq()[1] == before + 2
    with pytest.raises(TypeError, match=r"Counter\(\) takes no arguments"):
        _cstate.Counter(5)


def test_the_loop_reads_the_hooks_afresh_after_every_change():
    """The C loop copies the registry's and the dispatcher's flags on the first read after each change (_cengine.
    hooks_changed): backward passes quiet, default-profiled, detailed, default again and quiet, one after another,
    each record what that pass alone would record (and nothing once the profile is gone)."""
    from profiler import profile, ProfilerActivity

    def rows(**kw):
        a = tl.ones(2, 3, requires_grad=True)
        loss = (a.t() * 2).sum()
        with profile(activities=[ProfilerActivity.CPU], **kw) as prof:
            loss.backward()
        return [(e.name, e.sequence_nr) for e in prof.events() if e.name != "ProfilerStep*"]
    default, detailed = rows(), rows(record_shapes=True, profile_memory=True)
    assert "autograd::engine::evaluate_function: TBackward0" in [n for n, _ in default]
    assert [n for n, _ in detailed] == [n for n, _ in default]
    assert [n for n, _ in rows()] == [n for n, _ in default]
    a = tl.ones(2, requires_grad=True)
    (a * 2).sum().backward()
    assert a.grad.tolist() == [2.0, 2.0]


@pytest.mark.parametrize("profiled", [False, True], ids=["quiet", "profiled"])
@pytest.mark.parametrize("shape,dtype", [((), "float32"), ((3,), "float16"), ((2, 3), "float64"), ((4,), "complex64")])
def test_two_gradients_of_one_output_sum_as_the_python_loop(shape, dtype, profiled, monkeypatch):
    """The C loop sums two gradients of one output itself (a NumPy sum when quiet, add's kernel recorded when
    observed); a 0-d sum (a NumPy scalar, made a 0-d array), half and complex ones give what the Python loop's add
    gives, and a profiled pass records the same events."""
    from profiler import profile, ProfilerActivity

    def run():
        rng = np.random.default_rng(7)
        a = tl.tensor(rng.standard_normal(shape).astype(dtype), requires_grad=True)
        y = a * 3
        z = (y * 2 + y.exp()).sum()      # y's node receives two gradients
        if not profiled:
            z.real.backward() if a.is_complex() else z.backward()
            return _grads([a]), None
        with profile(activities=[ProfilerActivity.CPU]) as prof:
            z.real.backward() if a.is_complex() else z.backward()
        evs = prof.events()
        first = min(e.sequence_nr for e in evs if e.sequence_nr >= 0)
        return _grads([a]), [(e.name, e.sequence_nr - first if e.sequence_nr >= 0 else -1) for e in evs]

    native = run()
    assert native[0][0] is not None and native[0][0][2] == shape
    if profiled:       # (the forward ran before the profile: its add_ is the backward's sum, in place as torch's:
        # the first gradient, y * 2's, is the buffer's alone)
        assert [n for n, _ in native[1]].count("aten::add_") == 1
    _python_loop(monkeypatch)
    assert run() == native


def _backward_names(loss, profiled):
    """loss.backward(), under a default profile where `profiled` (its events' names), else unobserved (None)."""
    from profiler import profile, ProfilerActivity
    if not profiled:
        loss.backward()
        return None
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        loss.backward()
    return [e.name for e in prof.events()]


@pytest.mark.parametrize("profiled", [False, True], ids=["quiet", "profiled"])
def test_leaf_stores_of_views_as_the_python_loop(profiled, monkeypatch):
    """The C loop's leaf stores (store_fast, observed_store_fast): a gradient that is a view of a temporary (linear's
    and matmul's transposed weight gradients: a detached view of the engine's buffer, no copy), one whose base a hook
    still holds (a copy), a plain one (quiet: the buffer itself): the same values, copies, view and detached marks,
    and events as the Python loop's _store_grad."""

    def run():
        kept = []
        rng = np.random.default_rng(7)
        w = tl.tensor(rng.standard_normal((4, 3)).astype(np.float32), requires_grad=True)
        v = tl.tensor(rng.standard_normal((3, 5)).astype(np.float32), requires_grad=True)
        b = tl.tensor(rng.standard_normal(4).astype(np.float32), requires_grad=True)
        x = tl.tensor(rng.standard_normal((6, 3)).astype(np.float32))
        h = tl.nn.functional.linear(x, w, b)                  # w's gradient: the transpose of a product
        m = x @ v
        m.register_hook(lambda g: kept.append(g))             # held: v's gradient x.T @ g is still its own buffer
        q = tl.tensor(rng.standard_normal((5, 3)).astype(np.float32), requires_grad=True)
        p = q.t()                                            # q's gradient: a view whose base the hook below holds
        p.register_hook(lambda g: kept.append(g))
        loss = (h * h).sum() + m.exp().sum() + (p * 2).sum()
        names = _backward_names(loss, profiled)
        marks = [(t.grad._base is not None, bool(getattr(t.grad, "_detached", False))) for t in (w, v, b, q)]
        return _grads([w, v, b, q], [k._data for k in kept]), marks, names

    native = run()
    if profiled:        # the sink formulas mark their views (run_recorded_view): .grad a detached view, no copy
        assert native[1].count((True, True)) >= 2
    _python_loop(monkeypatch)
    assert run() == native


@pytest.mark.parametrize("detailed", [False, True], ids=["default", "detailed"])
def test_view_formulas_in_c_record_and_mark_as_the_sink_formulas(detailed, monkeypatch, tmp_path):
    """Under a default profile the C loop runs the view ops' backward itself (OpDef.sink_view: reshape's family, t,
    transpose, permute): the same events, nested alike (the op's region around _H.op_step's), the same gradients
    and the same view marks (what the leaves' AccumulateGrad steals or copies) as their sink formulas in Python.
    A reshape of a gradient that is not C-contiguous is _reshape_alias inside a reshape region where it takes the
    shape as a view, else clone and _unsafe_view there (a contiguous copy), in C too (the region by the hook's C
    form). Under record_shapes + profile_memory too (each op recorded by the hook's op_done with its arrays and
    attributes: run_recorded.call_as_arrays): the same Input Shapes and memory records."""
    from profiler import profile, ProfilerActivity
    from tensorlib.ops import shape as S
    from tests.profiler.test_same_tree_any_options import _detailed, _tree
    opts = {"record_shapes": True, "profile_memory": True} if detailed else {}

    calls = []
    for o in (S.RESHAPE, S.VIEW, S.UNSQUEEZE, S.SQUEEZE, S.T, S.TRANSPOSE, S.PERMUTE):
        sb = o.sink_backward
        monkeypatch.setattr(o, "sink_backward", lambda ctx, g, sb=sb: calls.append(1) or sb(ctx, g))

    def run():
        rng = np.random.default_rng(5)
        a = tl.tensor(rng.standard_normal((4, 6)).astype(np.float32), requires_grad=True)
        b = tl.tensor(rng.standard_normal((2, 3, 4)).astype(np.float32), requires_grad=True)
        c = tl.tensor(rng.standard_normal(6).astype(np.float32), requires_grad=True)
        w = tl.tensor(rng.standard_normal((6, 5)).astype(np.float32))
        e = tl.tensor(rng.standard_normal((4, 6)).astype(np.float32), requires_grad=True)
        h = a.view(6, 4).t().reshape(24).view(4, 6) @ w                       # view, t, reshape, a matmul's grad
        p = b.permute(2, 0, 1).transpose(0, 2).reshape(3, 2, 4)               # permute, transpose, strided reshape
        u = c.unsqueeze(0).squeeze(0).view(2, 3).transpose(0, 1)              # grads that are views of a leaf's
        loss = (h * h).sum() + (p.exp() * 2).sum() + (u * u).sum() + a.t().sum() + e.view(24).sum() * 3
        # (e's view gets sum's expanded gradient: strided, a view in e's shape)
        calls.clear()
        with profile(activities=[ProfilerActivity.CPU], **opts) as prof:
            loss.backward()
        marks = [(t.grad._base is not None, bool(getattr(t.grad, "_detached", False))) for t in (a, b, c, e)]
        tree = _detailed(prof, tmp_path / "t.json") if detailed else _tree(prof)
        return tree, _grads([a, b, c, e]), marks, len(calls)

    native = run()
    names = [r[1] for r in (native[0][0] if detailed else native[0])]
    assert {"aten::view", "aten::as_strided", "aten::permute", "aten::transpose", "aten::t",
            "aten::_reshape_alias", "aten::clone", "aten::_unsafe_view"} <= set(names)
    assert native[3] == 0       # no view node's formula ran in Python
    for o in (S.RESHAPE, S.VIEW, S.UNSQUEEZE, S.SQUEEZE, S.T, S.TRANSPOSE, S.PERMUTE):
        monkeypatch.setattr(o, "sink_view", None)
    python = run()
    assert python[3] == 11      # every view node's formula, in Python
    assert python[:3] == native[:3]


@pytest.mark.parametrize("profiled", [False, True], ids=["quiet", "profiled"])
def test_nodes_whose_other_outputs_take_no_gradient_run_in_the_c_loop(profiled, monkeypatch):
    """dropout's, layer_norm's and attention's nodes have outputs that never carry a gradient (OpDef.nondiff_outputs:
    the mask, the statistics, the probabilities); the C loop runs them itself (no engine._run_node), with the same
    gradients and events as the Python loop."""
    import sys
    F = tl.nn.functional

    def run():
        tl.manual_seed(0)
        rng = np.random.default_rng(2)
        x = tl.tensor(rng.standard_normal((2, 2, 5, 8)).astype(np.float32), requires_grad=True)
        w = tl.tensor(rng.standard_normal(8).astype(np.float32), requires_grad=True)
        h = F.layer_norm(F.dropout(x, 0.3, training=True), (8,), w)
        loss = (F.scaled_dot_product_attention(h, h, h, dropout_p=0.2) ** 2).sum()
        names: list = []
        calls: list = []

        def count(frame, event, arg):
            if event == "call" and frame.f_code is engine._run_node.__code__:
                calls.append(1)
        sys.setprofile(count)
        try:
            names = _backward_names(loss, profiled)
        finally:
            sys.setprofile(None)
        return _grads([x, w]), names, len(calls)

    native = run()
    assert native[2] == 0
    if profiled:
        assert {"MulBackward0", "NativeLayerNormBackward0", "ScaledDotProductAttentionBackward0"} <= set(native[1])
    _python_loop(monkeypatch)
    python = run()
    assert python[2] > 0 and python[:2] == native[:2]


def test_node_regions_by_the_hooks_c_form_record_as_its_two_calls(monkeypatch):
    """A default or detailed profile's recorder hands the C loop its region record in C (Hook.c_range, a capsule)
    while it is the only region hook; the C loop then times the node and AccumulateGrad regions itself: the same
    events, nested alike, as the hook's range_enter and range_exit calls (c_range taken away), as the Python loop.
    A second region hook (or with_stack, whose regions read the stack) leaves the capsule out."""
    from profiler import profile, ProfilerActivity
    from profiler.recorder import Recorder
    from tensorlib import _hooks as H
    from tests.profiler.test_same_tree_any_options import _tree

    def run(**opts):
        rng = np.random.default_rng(3)
        w = tl.tensor(rng.standard_normal((4, 3)).astype(np.float32), requires_grad=True)
        x = tl.tensor(rng.standard_normal((5, 3)).astype(np.float32))
        loss = ((tl.nn.functional.linear(x, w).view(20) + 1).relu() * 2).sum() + (w * w).mean()
        with profile(activities=[ProfilerActivity.CPU], **opts) as prof:
            capsule = H.range_c
            loss.backward()
        return capsule, _tree(prof), w.grad.numpy().tobytes()

    kinds = []      # the kinds of the regions entered by the hook's range_enter
    real = Recorder._bind

    def spying(drop_c):
        def bind(self):
            real(self)
            enter = self.range_enter
            self.range_enter = lambda name, kind: kinds.append(kind) or enter(name, kind)
            if drop_c:
                self._c_range = None      # (the capsule its c_range makes)
        return bind

    for opts in ({}, {"record_shapes": True, "profile_memory": True}):
        with monkeypatch.context() as m:
            m.setattr(Recorder, "_bind", spying(False))
            kinds.clear()
            cap, tree, grad = run(**opts)
        assert type(cap).__name__ == "PyCapsule" and H.range_c is None    # (the profile's hook is gone)
        assert "backward" not in kinds      # every node's and AccumulateGrad's region by the capsule
        names = [n for _, n, _ in tree]
        assert {"autograd::engine::evaluate_function: ViewBackward0", "torch::autograd::AccumulateGrad",
                "aten::view"} <= set(names)
        with monkeypatch.context() as m:      # the same regions by range_enter / range_exit
            m.setattr(Recorder, "_bind", spying(True))
            kinds.clear()
            cap2, tree2, grad2 = run(**opts)
            assert cap2 is None and kinds.count("backward") >= 6
            assert (tree2, grad2) == (tree, grad)
        _python_loop(monkeypatch)
        assert run(**opts)[1:] == (tree, grad)
        monkeypatch.undo()
    assert run(with_stack=True)[0] is None

    from tensorlib import dispatch

    class Other(dispatch.Hook):
        def range_enter(self, name, kind):
            return name

        def range_exit(self, token):
            pass
    other = Other()
    dispatch.add_hook(other)
    try:
        assert run()[0] is None
    finally:
        dispatch.remove_hook(other)


def test_a_node_region_by_the_c_form_ends_when_its_formula_raises():
    """The C loop's node region (Hook.c_range) is recorded when the node's formula raises (a saved input changed in
    place: torch's error), as a (exit, token) pair is closed then; the error is the one raised."""
    from profiler import profile, ProfilerActivity
    from tensorlib import _hooks as H
    w = tl.ones(3, requires_grad=True)
    a = w * 1
    y = a * a
    a.add_(1)       # MulBackward0 saved `a`: its backward refuses
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        assert H.range_c is not None
        with pytest.raises(RuntimeError, match="modified by an inplace operation"):
            y.sum().backward()
    evs = prof.events()
    node = [e for e in evs if e.name == "MulBackward0"]
    assert len(node) == 1 and node[0].time_range.end >= node[0].time_range.start
    assert "autograd::engine::evaluate_function: MulBackward0" in [e.name for e in evs]


@pytest.mark.parametrize("detailed", [False, True], ids=["default", "detailed"])
def test_linear_formula_in_c_records_and_marks_as_the_sink_formula(detailed, monkeypatch, tmp_path):
    """Under a default profile the C loop runs addmm's, mm's and 2-D matmul's backward itself (OpDef.sink_linear:
    the bias's sum and view, then t and mm for each input, a transposed weight's gradient in its layout): the same
    events, nested alike, the same gradients and view marks as their sink formulas in Python, float32 and float64,
    with and without a bias, a row bias and a full-shape one; beta or alpha other than 1 runs Python. Under
    record_shapes + profile_memory too: the same Input Shapes and memory records."""
    from profiler import profile, ProfilerActivity
    from tensorlib.ops import linalg as L
    from tests.profiler.test_same_tree_any_options import _detailed, _tree
    opts = {"record_shapes": True, "profile_memory": True} if detailed else {}

    calls = []
    for o in (L.ADDMM, L.MM, L.MATMUL):
        sb = o.sink_backward
        monkeypatch.setattr(o, "sink_backward", lambda ctx, g, sb=sb: calls.append(1) or sb(ctx, g))

    def run():
        rng = np.random.default_rng(7)
        tl.manual_seed(7)
        lin, lin2 = tl.nn.Linear(6, 5), tl.nn.Linear(5, 4, bias=False).double()
        x = tl.tensor(rng.standard_normal((3, 6)).astype(np.float32), requires_grad=True)
        x3 = tl.tensor(rng.standard_normal((2, 3, 6)).astype(np.float32))
        c = tl.tensor(rng.standard_normal((3, 4)), requires_grad=True)
        w = tl.tensor(rng.standard_normal((4, 4)), requires_grad=True)
        h = lin2(lin(x).double())
        loss = (h ** 2).sum() + lin(x3).sum() + tl.addmm(c, h, w).sum() + tl.addmm(c, h, w, beta=2).sum() + \
            tl.mm(h, w.t()).sum()
        calls.clear()
        with profile(activities=[ProfilerActivity.CPU], **opts) as prof:
            loss.backward()
        leaves = (lin.weight, lin.bias, lin2.weight, x, c, w)
        tree = _detailed(prof, tmp_path / "t.json") if detailed else _tree(prof)
        return tree, _grads(leaves), [t.grad._base is not None for t in leaves], len(calls)

    native = run()
    names = [r[1] for r in (native[0][0] if detailed else native[0])]
    assert names.count("AddmmBackward0") == 4 and names.count("MmBackward0") == 2     # (matmul's, mm's)
    assert {"aten::sum", "aten::view", "aten::mm", "aten::t"} <= set(names)
    assert native[3] == 1       # only beta=2's formula ran in Python
    for o in (L.ADDMM, L.MM, L.MATMUL):
        monkeypatch.setattr(o, "sink_linear", None)
    python = run()
    assert python[3] == 6
    assert python[:3] == native[:3]
