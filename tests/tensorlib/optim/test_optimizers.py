"""Optimizers against NumPy references of torch's documented algorithms (and torch itself when installed)."""
import contextlib

import numpy as np
import pytest

import tensorlib as tl
from tensorlib import optim


def _np_sgd(p, grads, lr, momentum=0, dampening=0, wd=0, nesterov=False, maximize=False):
    buf = None
    for g in grads:
        g = -g if maximize else g
        if wd:
            g = g + wd * p
        if momentum:
            buf = g.copy() if buf is None else momentum * buf + (1 - dampening) * g
            g = g + momentum * buf if nesterov else buf
        p = p - lr * g
    return p


def _np_adam(p, grads, lr, b1=0.9, b2=0.999, eps=1e-8, wd=0, amsgrad=False, decoupled=False):
    m = np.zeros_like(p)
    v = np.zeros_like(p)
    vmax = np.zeros_like(p)
    for t, g in enumerate(grads, 1):
        if wd:
            if decoupled:
                p = p * (1 - lr * wd)
            else:
                g = g + wd * p
        m = m + (1 - b1) * (g - m)
        v = b2 * v + (1 - b2) * g * g
        if amsgrad:
            vmax = np.maximum(vmax, v)
        vv = vmax if amsgrad else v
        denom = np.sqrt(vv) / np.sqrt(1 - b2 ** t) + eps
        p = p - lr / (1 - b1 ** t) * m / denom
    return p


def _np_rmsprop(p, grads, lr, alpha=0.99, eps=1e-8, wd=0, momentum=0, centered=False):
    s = np.zeros_like(p)
    a = np.zeros_like(p)
    b = np.zeros_like(p)
    for g in grads:
        if wd:
            g = g + wd * p
        s = alpha * s + (1 - alpha) * g * g
        if centered:
            a = a + (1 - alpha) * (g - a)
            d = np.sqrt(s - a * a) + eps
        else:
            d = np.sqrt(s) + eps
        if momentum:
            b = momentum * b + g / d
            p = p - lr * b
        else:
            p = p - lr * g / d
    return p


def _run(opt_cls, p0, grads, **kw):
    p = tl.tensor(p0.copy(), requires_grad=True)
    opt = opt_cls([p], **kw)
    for g in grads:
        p.grad = tl.tensor(g.copy())
        opt.step()
    return p.detach().numpy(), opt


@pytest.fixture
def data():
    rng = np.random.default_rng(0)
    p0 = rng.standard_normal((4, 3))
    grads = [rng.standard_normal((4, 3)) for _ in range(6)]
    return p0, grads


@pytest.mark.parametrize("kw", [dict(), dict(momentum=0.9), dict(momentum=0.9, dampening=0.3),
                                dict(momentum=0.9, nesterov=True), dict(weight_decay=0.1, momentum=0.5),
                                dict(maximize=True, momentum=0.8)])
def test_sgd_matches_reference(data, kw):
    p0, grads = data
    ref = _np_sgd(p0, grads, 0.1, kw.get("momentum", 0), kw.get("dampening", 0), kw.get("weight_decay", 0),
                  kw.get("nesterov", False), kw.get("maximize", False))
    got, _ = _run(optim.SGD, p0, grads, lr=0.1, **kw)
    np.testing.assert_allclose(got, ref, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("kw", [dict(), dict(weight_decay=0.1), dict(amsgrad=True), dict(betas=(0.5, 0.9), eps=1e-3)])
def test_adam_matches_reference(data, kw):
    p0, grads = data
    b1, b2 = kw.get("betas", (0.9, 0.999))
    ref = _np_adam(p0, grads, 0.01, b1, b2, kw.get("eps", 1e-8), kw.get("weight_decay", 0), kw.get("amsgrad", False))
    got, opt = _run(optim.Adam, p0, grads, lr=0.01, **kw)
    np.testing.assert_allclose(got, ref, rtol=1e-10, atol=1e-12)
    assert opt.state_dict()["state"][0]["step"].item() == len(grads)


@pytest.mark.parametrize("kw", [dict(), dict(weight_decay=0.5, amsgrad=True)])
def test_adamw_matches_reference(data, kw):
    p0, grads = data
    ref = _np_adam(p0, grads, 0.01, wd=kw.get("weight_decay", 1e-2), amsgrad=kw.get("amsgrad", False),
                   decoupled=True)
    got, _ = _run(optim.AdamW, p0, grads, lr=0.01, **kw)
    np.testing.assert_allclose(got, ref, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("kw", [dict(), dict(momentum=0.9), dict(centered=True), dict(centered=True, momentum=0.5,
                                                                                      weight_decay=0.1)])
def test_rmsprop_matches_reference(data, kw):
    p0, grads = data
    ref = _np_rmsprop(p0, grads, 0.01, wd=kw.get("weight_decay", 0), momentum=kw.get("momentum", 0),
                      centered=kw.get("centered", False))
    got, _ = _run(optim.RMSprop, p0, grads, lr=0.01, **kw)
    np.testing.assert_allclose(got, ref, rtol=1e-10, atol=1e-12)


def test_param_groups_have_their_own_options(data):
    p0, grads = data
    a = tl.tensor(p0.copy(), requires_grad=True)
    b = tl.tensor(p0.copy(), requires_grad=True)
    opt = optim.SGD([{"params": [a]}, {"params": [b], "lr": 0.5, "momentum": 0.9}], lr=0.1)
    assert opt.param_groups[0]["momentum"] == 0 and opt.param_groups[1]["lr"] == 0.5
    for g in grads:
        a.grad = tl.tensor(g.copy())
        b.grad = tl.tensor(g.copy())
        opt.step()
    np.testing.assert_allclose(a.detach().numpy(), _np_sgd(p0, grads, 0.1), rtol=1e-12)
    np.testing.assert_allclose(b.detach().numpy(), _np_sgd(p0, grads, 0.5, 0.9), rtol=1e-12)


def test_parameter_in_two_groups_is_refused():
    p = tl.zeros(2, requires_grad=True)
    with pytest.raises(ValueError, match="more than one parameter group"):
        optim.SGD([{"params": [p]}, {"params": [p]}], lr=0.1)


@pytest.mark.parametrize("make,msg", [(lambda p: optim.SGD([p], lr=-1), "Invalid learning rate: -1"),
                                      (lambda p: optim.Adam([p], betas=(1.0, 0.9)), "beta parameter at index 0"),
                                      (lambda p: optim.SGD([p], lr=0.1, nesterov=True), "Nesterov momentum"),
                                      (lambda p: optim.SGD([], lr=0.1), "empty parameter list"),
                                      (lambda p: optim.RMSprop([p], eps=-1), "Invalid epsilon value")])
def test_bad_hyperparameters_are_refused(make, msg):
    with pytest.raises(ValueError, match=msg):
        make(tl.zeros(2, requires_grad=True))


def test_non_leaf_is_refused():
    p = tl.zeros(2, requires_grad=True) * 2
    with pytest.raises(ValueError, match="non-leaf"):
        optim.SGD([p], lr=0.1)


def test_zero_grad_to_none_and_to_zeros():
    p = tl.ones(3, requires_grad=True)
    opt = optim.SGD([p], lr=0.1)
    (p * 2).sum().backward()
    g = p.grad
    opt.zero_grad(set_to_none=False)
    assert p.grad is g and g.tolist() == [0.0, 0.0, 0.0]
    opt.zero_grad()
    assert p.grad is None


def test_params_without_grad_are_skipped():
    a = tl.ones(2, requires_grad=True)
    b = tl.ones(2, requires_grad=True)
    opt = optim.Adam([a, b], lr=0.1)
    a.grad = tl.ones(2)
    opt.step()
    assert b.tolist() == [1.0, 1.0] and len(opt.state) == 1


def test_closure_is_called_with_grad_enabled():
    p = tl.tensor([2.0], requires_grad=True)
    opt = optim.SGD([p], lr=0.25)

    def closure():
        opt.zero_grad()
        loss = (p * p).sum()
        loss.backward()
        return loss

    with tl.no_grad():
        loss = opt.step(closure)
    assert loss.item() == 4.0 and p.item() == 1.0


def test_state_dict_round_trip_continues_identically(data):
    p0, grads = data
    a = tl.tensor(p0.copy(), requires_grad=True)
    opt = optim.Adam([a], lr=0.01, amsgrad=True)
    for g in grads[:3]:
        a.grad = tl.tensor(g.copy())
        opt.step()
    sd = opt.state_dict()
    assert set(sd["state"][0]) == {"step", "exp_avg", "exp_avg_sq", "max_exp_avg_sq"}
    assert sd["param_groups"][0]["params"] == [0]
    b = tl.tensor(a.detach().numpy().copy(), requires_grad=True)
    opt2 = optim.Adam([b], lr=0.5)
    opt2.load_state_dict(sd)
    assert opt2.param_groups[0]["lr"] == 0.01 and opt2.param_groups[0]["params"][0] is b
    assert opt2.state[b]["exp_avg"] is not opt.state[a]["exp_avg"]   # copied, not shared
    for g in grads[3:]:
        a.grad = tl.tensor(g.copy())
        b.grad = tl.tensor(g.copy())
        opt.step()
        opt2.step()
    np.testing.assert_array_equal(a.detach().numpy(), b.detach().numpy())


def test_load_state_dict_casts_state_to_param_dtype():
    a = tl.zeros(2, requires_grad=True, dtype=tl.float64)
    opt = optim.SGD([a], lr=0.1, momentum=0.9)
    a.grad = tl.ones(2, dtype=tl.float64)
    opt.step()
    b = tl.zeros(2, requires_grad=True)   # float32
    opt2 = optim.SGD([b], lr=0.1, momentum=0.9)
    opt2.load_state_dict(opt.state_dict())
    assert opt2.state[b]["momentum_buffer"].dtype == tl.float32


def test_load_state_dict_mismatch_errors():
    a, b = tl.zeros(2, requires_grad=True), tl.zeros(2, requires_grad=True)
    sd = optim.SGD([a, b], lr=0.1).state_dict()
    with pytest.raises(ValueError, match="doesn't match the size"):
        optim.SGD([a], lr=0.1).load_state_dict(sd)
    with pytest.raises(ValueError, match="different number of parameter groups"):
        optim.SGD([{"params": [a]}, {"params": [b]}], lr=0.1).load_state_dict(sd)


def test_step_and_zero_grad_are_named_optimizer_regions():
    seen = []

    class H(tl.dispatch.Hook):
        def range_enter(self, name, kind):
            seen.append((name, kind))

        def op_enter(self, op, inputs, attrs, phase, seq):
            seen.append(op.name)

    p = tl.ones(2, requires_grad=True)
    p.grad = tl.ones(2)
    opt = optim.Adam([p], lr=0.1)
    h = H()
    tl.dispatch.add_hook(h)
    try:
        opt.step()
        opt.zero_grad()
    finally:
        tl.dispatch.remove_hook(h)
    assert seen[0] == ("Optimizer.step#Adam.step", "optimizer")
    assert {"lerp_", "addcmul_", "addcdiv_", "sqrt"} <= set(s for s in seen if isinstance(s, str))
    assert ("Optimizer.zero_grad#Adam.zero_grad", "optimizer") in seen


def test_step_hooks():
    p = tl.ones(2, requires_grad=True)
    p.grad = tl.ones(2)
    opt = optim.SGD([p], lr=0.5)
    calls = []
    h = opt.register_step_pre_hook(lambda o, a, k: calls.append("pre"))
    opt.register_step_post_hook(lambda o, a, k: calls.append("post"))
    opt.step()
    h.remove()
    opt.step()
    assert calls == ["pre", "post", "post"]


@pytest.mark.parametrize("cls,kw", [(optim.Adam, {}), (optim.AdamW, {"amsgrad": True}),
                                    (optim.Adam, {"weight_decay": 0.1, "maximize": True}),
                                    (optim.AdamW, {"betas": (0.3, 0.9)}), (optim.Adadelta, {"weight_decay": 0.1}),
                                    (optim.SGD, {}), (optim.SGD, {"momentum": 0.9}),
                                    (optim.SGD, {"momentum": 0.5, "dampening": 0.3, "weight_decay": 0.1}),
                                    (optim.SGD, {"momentum": 0.9, "nesterov": True, "maximize": True})])
def test_array_update_is_the_op_by_op_update(cls, kw):
    """The multi-tensor NumPy update (no hook watching) gives the per-op loop's (foreach=False) values to
    the bit, state included."""
    def run(**extra):
        tl.manual_seed(0)
        ps = [tl.nn.Parameter(tl.randn(5, 3)), tl.nn.Parameter(tl.randn(3))]
        opt = cls(ps, lr=0.01, **kw, **extra)
        for i in range(4):
            for p in ps:
                p.grad = tl.sin(p.detach() * (i + 1))
            opt.step()
        return ps, opt.state_dict()["state"]
    (pa, sa), (pb, sb) = run(), run(foreach=False)
    a, b = [p.detach().numpy() for p in pa], [p.detach().numpy() for p in pb]
    assert all(np.array_equal(x, y) for x, y in zip(a, b))
    assert [p._version for p in pa] == [p._version for p in pb]
    for i in sa:
        for k, v in sa[i].items():
            assert np.array_equal(v.numpy(), sb[i][k].numpy()), k


class _Watching(tl.dispatch.Hook):
    """An op hook: the optimizers' loops dispatch every op while it is registered."""

    def op_enter(self, op, inputs, attrs, phase, seq):
        return None


@pytest.mark.parametrize("cls,kw", [(optim.Adam, {}), (optim.AdamW, {}), (optim.Adam, {"weight_decay": 0.1}),
                                    (optim.AdamW, {"betas": (0.3, 0.9), "maximize": True}), (optim.SGD, {}),
                                    (optim.SGD, {"momentum": 0.9, "weight_decay": 0.1}),
                                    (optim.SGD, {"momentum": 0.5, "dampening": 0.3, "nesterov": False}),
                                    (optim.SGD, {"momentum": 0.9, "nesterov": True, "maximize": True}),
                                    (optim.Adadelta, {}), (optim.Adadelta, {"weight_decay": 0.1, "rho": 0.5}),
                                    (optim.RMSprop, {}), (optim.RMSprop, {"momentum": 0.9, "weight_decay": 0.1}),
                                    (optim.RMSprop, {"centered": True, "maximize": True}),
                                    (optim.RMSprop, {"centered": True, "momentum": 0.5, "alpha": 0.9}),
                                    (optim.Adagrad, {}),
                                    (optim.Adagrad, {"lr_decay": 0.1, "weight_decay": 0.1, "maximize": True,
                                                     "initial_accumulator_value": 0.5}),
                                    (optim.Adam, {"amsgrad": True, "weight_decay": 0.1}), (optim.Adamax, {}),
                                    (optim.Adamax, {"weight_decay": 0.1, "maximize": True}),
                                    (optim.NAdam, {}),
                                    (optim.NAdam, {"weight_decay": 0.1, "decoupled_weight_decay": True}),
                                    (optim.RAdam, {}), (optim.RAdam, {"weight_decay": 0.1}),
                                    (optim.ASGD, {}), (optim.ASGD, {"t0": 2, "weight_decay": 0.1}),
                                    (optim.Rprop, {}), (optim.Rprop, {"etas": (0.3, 1.5), "step_sizes": (1e-3, 0.02)})])
def test_every_path_of_the_update_gives_the_same_bits(cls, kw):
    """The multi-tensor update (nothing watching; the loop's kernels where an optimizer has none), the loop on
    arrays (foreach=False: kernels only; under a profile: its ops recorded, see optim._common.Loop) and the
    dispatched loop (an op hook watching) give the same parameters, states and versions over 7 steps (RAdam
    rectifies from the sixth, ASGD averages after t0); a large parameter (add_'s, lerp_'s and addcmul_'s fused
    one-pass loops, _fastmath.fma) included, and a 0-d one. Adam's and AdamW's C step
    (tensorlib/_cmath.c: the small parameters, unprofiled and under a profile) against the same paths without
    it ("-py": _fastmath.ADAM off)."""
    import profiler
    from tensorlib.ops import _fastmath

    def run(mode):
        tl.manual_seed(0)
        ps = [tl.nn.Parameter(tl.randn(5, 3)), tl.nn.Parameter(tl.randn(3)), tl.nn.Parameter(tl.randn(200, 200)),
              tl.nn.Parameter(tl.randn(()))]
        opt = cls(ps, lr=0.01, foreach=False if mode == "loop" else None, **kw)
        hook = tl.dispatch.add_hook(_Watching()) if mode == "dispatched" else None
        c_step = _fastmath.ADAM
        if mode.endswith("-py"):
            _fastmath.ADAM = None
            mode = mode[:-3]
        try:
            with profiler.profile() if mode == "profiled" else contextlib.nullcontext() as prof:
                for i in range(7):
                    for p in ps:
                        p.grad = tl.sin(p.detach() * (i + 1))
                    opt.step()
        finally:
            _fastmath.ADAM = c_step
            if hook is not None:
                tl.dispatch.remove_hook(hook)
        if mode == "profiled":
            last = {optim.SGD: "aten::add_", optim.Adadelta: "aten::sqrt_", optim.Adagrad: "aten::sqrt",
                    optim.RAdam: "aten::add_", optim.ASGD: "aten::fill_",
                    optim.Rprop: "aten::masked_fill_"}.get(cls, "aten::addcdiv_")
            assert sum(e.name == last for e in prof.events()) >= 21
        return ([p.detach().numpy() for p in ps], [p._version for p in ps],
                {i: {k: v.numpy() for k, v in st.items()} for i, st in opt.state_dict()["state"].items()})
    want = run("dispatched")
    for mode in ("multi", "loop", "profiled", "multi-py", "loop-py", "profiled-py"):
        got = run(mode)
        assert all(np.array_equal(a, b) for a, b in zip(got[0], want[0])), mode
        assert got[1] == want[1], mode
        for i in want[2]:
            for k, v in want[2][i].items():
                assert np.array_equal(got[2][i][k], v), (mode, k)


class _Counting:
    """tensorlib._cmath's Adam entry points, counted (a stand-in for _fastmath.ADAM)."""

    def __init__(self, m):
        self.calls = {"adam_step": 0, "adam_moments": 0, "adam_update": 0, "adam_group": 0}
        for name in self.calls:
            setattr(self, name, self._counted(name, getattr(m, name)))

    def _counted(self, name, fn):
        def call(*a):
            out = fn(*a)
            self.calls[name] += bool(out)
            return out
        return call


def _adam_trace(tmp_path, options, kw):
    """A profiled Adam/AdamW step's trace (the first step's state made in it, then a second): per event its name,
    Input Dims and types, whether it has a sequence number; per memory record its bytes and the total from the
    profile's start, in time order."""
    import gc
    import json

    import profiler
    gc.collect()
    tl.manual_seed(0)
    ps = [tl.nn.Parameter(tl.randn(4, 3)), tl.nn.Parameter(tl.randn(300, 300)), tl.nn.Parameter(tl.randn(()))]
    for p in ps:
        p.grad = tl.ones_like(p)
    opt = (optim.AdamW if kw.pop("decoupled", False) else optim.Adam)(ps, lr=0.01, **kw)
    with profiler.profile(**options) as prof:
        opt.step()
        opt.step()
    prof.export_chrome_trace(str(tmp_path / "t.json"))
    events = sorted((e for e in json.loads((tmp_path / "t.json").read_text())["traceEvents"] if e.get("ph") in "Xi"),
                    key=lambda e: (e["ts"], -e.get("dur", 0)))
    mem = [e["args"] for e in events if e["ph"] == "i"]
    base = mem[0]["Total Allocated"] - mem[0]["Bytes"] if mem else 0
    return [(e["name"], str(e["args"].get("Input Dims")), str(e["args"].get("Input type")),
             e["args"].get("Sequence number") is not None) if e["ph"] == "X"
            else ("[memory]", e["args"]["Bytes"], e["args"]["Total Allocated"] - base) for e in events], \
        [p.detach().numpy().tobytes() for p in ps] + [v.numpy().tobytes() for st in opt.state.values()
                                                      for v in st.values()]


@pytest.mark.skipif(__import__("tensorlib.ops._fastmath", fromlist=["ADAM"]).ADAM is None,
                    reason="tensorlib._cmath is not built (no C compiler at install)")
@pytest.mark.parametrize("options", [{}, {"record_shapes": True, "profile_memory": True},
                                     {"profile_memory": True, "with_stack": True}])
@pytest.mark.parametrize("kw", [{"decoupled": True}, {"weight_decay": 0.1}])
@pytest.mark.parametrize("native", [True, False])
def test_adam_c_step_records_the_loops_trace(native, kw, options, monkeypatch, tmp_path):
    """Adam's and AdamW's small parameters take the C step (adam_step unprofiled; under a profile adam_moments and
    adam_update), and a profile of it is the dispatched loop's to the record: the same events in the same order,
    Input Dims and types, and memory records (the decayed gradient, the sqrt and the denominators allocated and
    freed where the loop's are), under default and detailed options, through the C recorders and their Python
    twins (native=False)."""
    from profiler import memory_record, recorder
    from tensorlib import dispatch
    from tensorlib.ops import _fastmath

    if not native:      # the Python recorders (as TENSORLIB_NATIVE=0 at import)
        monkeypatch.setattr(recorder, "crecord", None)
        monkeypatch.setattr(memory_record, "crecord", None)
        monkeypatch.setattr(dispatch, "_crecorded", None)
        dispatch.refresh_hooks()
    counting = _Counting(_fastmath.ADAM)
    monkeypatch.setattr(_fastmath, "ADAM", None)
    want = _adam_trace(tmp_path, options, dict(kw))
    monkeypatch.setattr(_fastmath, "ADAM", counting)
    got = _adam_trace(tmp_path, options, dict(kw))
    # 2 small parameters a step; under default options by the C recorders the second step takes each in a group
    # call (adam_group: its moments, item and update), before and after the large one the C step refuses (the
    # first step makes the states, in the loop's order: adam_moments, adam_update)
    grouped = counting.calls["adam_group"]
    assert grouped == (2 if native and not options else 0)
    assert counting.calls["adam_moments"] + grouped == 4 and counting.calls["adam_update"] + grouped >= 4
    assert got[1] == want[1]        # the parameters and states, to the bit
    assert got[0] == want[0]
    assert sum(e[0] == "aten::addcdiv_" for e in got[0]) == 6
    if options:
        assert sum(e[0] == "[memory]" for e in got[0]) >= 20


@pytest.mark.skipif(__import__("tensorlib.ops._fastmath", fromlist=["ADAM"]).ADAM is None,
                    reason="tensorlib._cmath is not built (no C compiler at install)")
@pytest.mark.parametrize("kw", [{}, {"weight_decay": 0.1}, {"decoupled": True, "weight_decay": 0.05}])
def test_adam_group_in_c_records_the_loops_trace(kw, monkeypatch):
    """Under a default profile a group's small parameters that have their state take one C call (adam_group) and
    two record calls: the same events in the same order, the same sequence numbers and values as the dispatched
    loop's, over several steps and parameters of both dtypes, a large one (refused: the loop) between them."""
    import profiler
    from tensorlib.ops import _fastmath
    if getattr(_fastmath.ADAM, "adam_group", None) is None:
        pytest.skip("tensorlib._cmath was built before adam_group")

    def trace():
        tl.manual_seed(1)
        ps = [tl.nn.Parameter(tl.randn(4, 3)), tl.nn.Parameter(tl.randn(5, dtype=tl.float64)),
              tl.nn.Parameter(tl.randn(100, 100)), tl.nn.Parameter(tl.randn(7))]
        opt = (optim.AdamW if kw.get("decoupled") else optim.Adam)(
            ps, lr=0.01, weight_decay=kw.get("weight_decay", 0.0))
        with profiler.profile() as prof:
            for i in range(3):
                for p in ps:
                    p.grad = tl.full_like(p, 0.5 + i)
                opt.step()
        evs = prof.events()
        first = min(e.sequence_nr for e in evs if e.sequence_nr >= 0)
        return ([(e.name, e.sequence_nr - first if e.sequence_nr >= 0 else -1, len(e.cpu_children)) for e in evs],
                [p.detach().numpy().tobytes() for p in ps])

    calls = []
    real = _fastmath.ADAM.adam_group
    monkeypatch.setattr(_fastmath, "ADAM", type("A", (), {n: getattr(_fastmath.ADAM, n) for n in dir(_fastmath.ADAM)
                                                          if not n.startswith("__")}))
    monkeypatch.setattr(_fastmath.ADAM, "adam_group", lambda *a: calls.append(real(*a)) or calls[-1])
    got = trace()
    assert calls == [2, 1, 2, 1]    # steps 2 and 3: the two small ones, (the large one: the loop), the last
    monkeypatch.setattr(_fastmath, "ADAM", None)
    want = trace()
    assert got == want
    names = [n for n, _, _ in got[0]]
    assert names.count("aten::item") == 12 and names.count("aten::_local_scalar_dense") == 12


@pytest.mark.skipif(__import__("tensorlib.ops._fastmath", fromlist=["ADAM"]).ADAM is None,
                    reason="tensorlib._cmath is not built (no C compiler at install)")
def test_adam_c_step_refuses_what_it_does_not_take():
    """The C step returns False and writes nothing for operands it does not take: a strided gradient, another
    dtype, overlapping arrays, a read-only parameter, an int step, more than ADAM_MAX elements."""
    from tensorlib.ops import _fastmath
    step = _fastmath.ADAM.adam_step

    def arrays(n=6, dt=np.float32):
        return [np.full(n, 0.5, dt), np.full(n, 0.25, dt), np.zeros(n, dt), np.zeros(n, dt), np.zeros((), np.float32)]

    def refused(x, g, m, v, s):
        before = [a.copy() for a in (x, g, m, v, s)]
        out = step(x, g, m, v, s, 0.01, 0.01, True, 0.9, 0.999, 1e-8)
        return out is False and all(np.array_equal(a, b) for a, b in zip(before, (x, g, m, v, s)))

    x, g, m, v, s = arrays()
    assert refused(x, np.full(12, 0.25, np.float32)[::2], m, v, s)
    assert refused(x, g.astype(np.float64), m, v, s)
    assert refused(x, g, x, v, s)
    buf = np.zeros(9, np.float32)
    assert refused(x, g, buf[:6], buf[3:], s)
    x.flags.writeable = False
    assert refused(x, g, m, v, s)
    x, g, m, v, s = arrays()
    assert refused(x, g, m, v, np.zeros((), np.int64))
    assert refused(*arrays(_fastmath.ADAM_MAX + 1))
    assert step(*arrays(), 0.01, 0.01, True, 0.9, 0.999, 1e-8) is True
