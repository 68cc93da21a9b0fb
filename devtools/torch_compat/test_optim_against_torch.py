"""Every torch.optim optimizer x option set and every scheduler side by side with torch 2.13 (torch is not
a dependency: this folder runs only where torch is installed).

Optimizers: same float64 initial parameters, same closure-computed gradients, 20 steps; parameters equal
to 1e-6 relative. Schedulers: two parameter groups, 100 steps; lr (and cycled momentum) equal exactly.
State dicts: torch's converted to tensorlib tensors loads and continues as torch does, and the reverse."""
import warnings

import numpy as np
import pytest

import tensorlib as tl
from tensorlib import optim
import profiler

torch = pytest.importorskip("torch")

OPTIMIZERS = [
    ("SGD", dict(lr=0.05)), ("SGD", dict(lr=0.05, momentum=0.9, nesterov=True, weight_decay=0.1)),
    ("SGD", dict(lr=0.05, momentum=0.9, dampening=0.2, maximize=True)), ("SGD", dict(lr=0.05, fused=True)),
    ("Adam", dict()), ("Adam", dict(amsgrad=True, weight_decay=0.1, maximize=True)),
    ("Adam", dict(decoupled_weight_decay=True, weight_decay=0.1)), ("Adam", dict(fused=True)),
    ("AdamW", dict()), ("AdamW", dict(amsgrad=True, maximize=True)),
    ("RMSprop", dict()), ("RMSprop", dict(momentum=0.9, centered=True, weight_decay=0.1, maximize=True)),
    ("Adagrad", dict()), ("Adagrad", dict(lr_decay=0.01, weight_decay=0.1, initial_accumulator_value=0.1,
                                          maximize=True)), ("Adagrad", dict(fused=True)),
    ("Adadelta", dict()), ("Adadelta", dict(rho=0.5, weight_decay=0.1, maximize=True)),
    ("Adamax", dict()), ("Adamax", dict(betas=(0.5, 0.9), weight_decay=0.1, maximize=True)),
    ("NAdam", dict()), ("NAdam", dict(momentum_decay=0.01, weight_decay=0.1)),
    ("NAdam", dict(weight_decay=0.1, decoupled_weight_decay=True, maximize=True)),
    ("RAdam", dict()), ("RAdam", dict(weight_decay=0.1, maximize=True)),
    ("RAdam", dict(weight_decay=0.1, decoupled_weight_decay=True)),
    ("ASGD", dict()), ("ASGD", dict(t0=5, lambd=0.01, alpha=0.5, weight_decay=0.1, maximize=True)),
    ("Rprop", dict()), ("Rprop", dict(etas=(0.3, 1.5), step_sizes=(1e-3, 0.1), maximize=True)),
    ("Adafactor", dict()), ("Adafactor", dict(beta2_decay=-0.5, eps=(1e-5, 1e-2), d=1.5, weight_decay=0.1,
                                              maximize=True)),
    ("LBFGS", dict()), ("LBFGS", dict(line_search_fn="strong_wolfe")), ("LBFGS", dict(history_size=3, max_iter=5)),
]
SHAPES = [(5, 7), (4,), (2, 3, 3)]


def _problem(lib, params, targets):
    """A smooth non-quadratic loss so every optimizer's state evolves."""
    return sum(((p - lib.tensor(t)) ** 2 * lib.tensor(np.abs(t))).sum() + 0.01 * (p ** 3).sum()
               for p, t in zip(params, targets))


def _setup(lib, name, kw, p0):
    params = [lib.tensor(x.copy(), requires_grad=True) for x in p0]
    opt = getattr(lib.optim, name)(params, **kw)
    return params, opt


def _closure(lib, opt, params, targets):
    def closure():
        opt.zero_grad()
        loss = _problem(lib, params, targets)
        loss.backward()
        return loss
    return closure


def _data(seed=1):
    rng = np.random.default_rng(seed)
    return [rng.standard_normal(s) for s in SHAPES], [rng.standard_normal(s) for s in SHAPES]


def _assert_params_equal(ours, theirs, rtol=1e-6):
    for a, b in zip(ours, theirs):
        np.testing.assert_allclose(a.detach().numpy(), b.detach().numpy(), rtol=rtol, atol=1e-12)


@pytest.mark.parametrize("name,kw", OPTIMIZERS, ids=[f"{n}-{i}" for i, (n, _) in enumerate(OPTIMIZERS)])
def test_optimizer_matches_torch_over_20_steps(name, kw):
    p0, targets = _data()
    ours, o1 = _setup(tl, name, kw, p0)
    theirs, o2 = _setup(torch, name, dict(kw, **({} if kw.get("fused") or name == "LBFGS" else {"foreach": False})),
                        p0)
    c1, c2 = _closure(tl, o1, ours, targets), _closure(torch, o2, theirs, targets)
    for _ in range(20):
        l1, l2 = o1.step(c1), o2.step(c2)
        assert abs(l1.item() - l2.item()) <= 1e-6 * abs(l2.item()) + 1e-12
    _assert_params_equal(ours, theirs)
    sd1, sd2 = o1.state_dict(), o2.state_dict()
    assert set(sd1["param_groups"][0]) == set(sd2["param_groups"][0])
    for k in sd2["state"]:
        assert set(sd1["state"][k]) == set(sd2["state"][k])


def _to_tl(x):
    if isinstance(x, torch.Tensor):
        return tl.tensor(x.detach().numpy().copy(), dtype=getattr(tl, str(x.dtype).split(".")[1]))
    if isinstance(x, dict):
        return {k: _to_tl(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return type(x)(_to_tl(v) for v in x)
    return x


def _to_torch(x):
    if isinstance(x, tl.Tensor):
        return torch.tensor(x.numpy().copy())
    if isinstance(x, dict):
        return {k: _to_torch(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return type(x)(_to_torch(v) for v in x)
    return x


@pytest.mark.parametrize("name,kw", [o for o in OPTIMIZERS if o[0] != "LBFGS" and not o[1].get("fused")],
                         ids=lambda v: v if isinstance(v, str) else "")
def test_state_dicts_cross_load_both_ways(name, kw):
    """torch state dict -> tensorlib tensors -> load, and the reverse: both continue as the original."""
    p0, targets = _data(2)
    ours, o1 = _setup(tl, name, kw, p0)
    theirs, o2 = _setup(torch, name, dict(kw, foreach=False), p0)
    c1, c2 = _closure(tl, o1, ours, targets), _closure(torch, o2, theirs, targets)
    for _ in range(5):
        o1.step(c1)
        o2.step(c2)
    sd_from_torch, sd_from_tl = _to_tl(o2.state_dict()), _to_torch(o1.state_dict())
    cur = [p.detach().numpy().copy() for p in theirs]
    ours2, o1b = _setup(tl, name, kw, cur)
    theirs2, o2b = _setup(torch, name, dict(kw, foreach=False), cur)
    o1b.load_state_dict(sd_from_torch)
    o2b.load_state_dict(sd_from_tl)
    c1b, c2b = _closure(tl, o1b, ours2, targets), _closure(torch, o2b, theirs2, targets)
    for _ in range(5):
        o1b.step(c1b)
        o2b.step(c2b)
        o2.step(c2)
    _assert_params_equal(ours2, theirs, rtol=1e-6)
    _assert_params_equal(theirs2, theirs, rtol=1e-6)


def _sched_opt(lib, cls="SGD"):
    ps = [lib.zeros(2, requires_grad=True), lib.zeros(3, requires_grad=True)]
    extra = {"momentum": 0.9} if cls == "SGD" else {}
    return getattr(lib.optim, cls)([{"params": [ps[0]]}, {"params": [ps[1]], "lr": 0.05}], lr=0.1, **extra)


SCHEDULERS = {
    "LambdaLR": lambda L, o: L.LambdaLR(o, [lambda e: 0.95 ** e, lambda e: 1 / (1 + e)]),
    "MultiplicativeLR": lambda L, o: L.MultiplicativeLR(o, lambda e: 0.97),
    "StepLR": lambda L, o: L.StepLR(o, 7, 0.5),
    "MultiStepLR": lambda L, o: L.MultiStepLR(o, [10, 30, 30, 60], 0.3),
    "ConstantLR": lambda L, o: L.ConstantLR(o, 0.25, 20),
    "LinearLR": lambda L, o: L.LinearLR(o, 0.1, 0.9, 40),
    "ExponentialLR": lambda L, o: L.ExponentialLR(o, 0.97),
    "SequentialLR": lambda L, o: L.SequentialLR(o, [L.LinearLR(o, 0.1, 1.0, 10), L.CosineAnnealingLR(o, 30),
                                                    L.ExponentialLR(o, 0.9)], [10, 50]),
    "CosineAnnealingLR": lambda L, o: L.CosineAnnealingLR(o, 17, 0.001),
    "ChainedScheduler": lambda L, o: L.ChainedScheduler([L.ConstantLR(o, 0.5, 10), L.ExponentialLR(o, 0.98)]),
    "CyclicLR": lambda L, o: L.CyclicLR(o, 0.01, 0.1, 7, 5, mode="triangular2"),
    "CyclicLR-exp_range": lambda L, o: L.CyclicLR(o, [0.01, 0.02], 0.1, 9, mode="exp_range", gamma=0.99),
    "CosineAnnealingWarmRestarts": lambda L, o: L.CosineAnnealingWarmRestarts(o, 5, 2, 0.001),
    "OneCycleLR": lambda L, o: L.OneCycleLR(o, 0.5, total_steps=101, three_phase=True),
    "OneCycleLR-linear": lambda L, o: L.OneCycleLR(o, [0.5, 0.2], total_steps=100, anneal_strategy="linear"),
    "PolynomialLR": lambda L, o: L.PolynomialLR(o, 60, 2.0),
    "SWALR": lambda L, o: __import__(L.__name__.replace("lr_scheduler", "swa_utils"),
                                     fromlist=["SWALR"]).SWALR(o, 0.05, anneal_epochs=20),
}


@pytest.mark.parametrize("name", list(SCHEDULERS))
def test_scheduler_lr_sequence_equals_torch_over_100_steps(name):
    o1, o2 = _sched_opt(tl), _sched_opt(torch)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        s1, s2 = SCHEDULERS[name](optim.lr_scheduler, o1), SCHEDULERS[name](torch.optim.lr_scheduler, o2)
        for _ in range(100):
            for g1, g2 in zip(o1.param_groups, o2.param_groups):
                assert g1["lr"] == g2["lr"] and g1.get("momentum") == g2.get("momentum")
            assert s1.get_last_lr() == s2.get_last_lr()
            o1.step()
            o2.step()
            s1.step()
            s2.step()
    sd1, sd2 = s1.state_dict(), s2.state_dict()
    assert set(sd1) == set(sd2)


def test_plateau_over_100_steps_equals_torch():
    o1, o2 = _sched_opt(tl), _sched_opt(torch)
    s1 = optim.lr_scheduler.ReduceLROnPlateau(o1, patience=3, cooldown=2, threshold_mode="abs", min_lr=[0.001, 0.0])
    s2 = torch.optim.lr_scheduler.ReduceLROnPlateau(o2, patience=3, cooldown=2, threshold_mode="abs",
                                                    min_lr=[0.001, 0.0])
    metric = np.abs(np.sin(np.arange(100) / 7.0)) + 1 / (1 + np.arange(100))
    for m in metric:
        o1.step()
        o2.step()
        s1.step(m)
        s2.step(m)
        assert s1.get_last_lr() == s2.get_last_lr()
    assert set(s1.state_dict()) == set(s2.state_dict())


@pytest.mark.parametrize("name", ["ExponentialLR", "CosineAnnealingLR", "CyclicLR", "OneCycleLR", "SequentialLR"])
def test_scheduler_state_dict_resume_equals_torch(name):
    """Stop after 30 steps, rebuild both from their state dicts, 30 more steps: the same lrs."""
    o1, o2 = _sched_opt(tl), _sched_opt(torch)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        s1, s2 = SCHEDULERS[name](optim.lr_scheduler, o1), SCHEDULERS[name](torch.optim.lr_scheduler, o2)
        for _ in range(30):
            o1.step()
            o2.step()
            s1.step()
            s2.step()
        sd1 = s1.state_dict()
        r1 = SCHEDULERS[name](optim.lr_scheduler, o1)
        r1.load_state_dict(sd1)
        for g, lr in zip(o1.param_groups, s1.get_last_lr()):
            g["lr"] = lr
        for _ in range(30):
            o1.step()
            o2.step()
            r1.step()
            s2.step()
            assert r1.get_last_lr() == s2.get_last_lr()


def test_warnings_match_torch():
    def caught(lib):
        o = _sched_opt(lib)
        with warnings.catch_warnings(record=True) as w:
            warnings.simplefilter("always")
            s = lib.optim.lr_scheduler.StepLR(o, 3)
            s.step()
            s.get_lr()
            s.step(5)
        return [str(x.message) for x in w]
    assert caught(tl) == caught(torch)


def test_swa_averaged_model_and_update_bn_match_torch():
    rng = np.random.default_rng(0)
    xs = [rng.standard_normal((8, 3)) for _ in range(5)]
    out = []
    for lib in (tl, torch):
        lib.manual_seed(0)
        m = lib.nn.Sequential(lib.nn.Linear(3, 4), lib.nn.BatchNorm1d(4), lib.nn.Linear(4, 1)).double()
        init = np.random.default_rng(1)
        with lib.no_grad():
            for p in m.parameters():
                p.copy_(lib.tensor(init.standard_normal(tuple(p.shape))))
        opt = lib.optim.SGD(m.parameters(), lr=0.1)
        swa = lib.optim.swa_utils.AveragedModel(m)
        ema = lib.optim.swa_utils.AveragedModel(m, multi_avg_fn=lib.optim.swa_utils.get_ema_multi_avg_fn(0.9))
        for x in xs:
            opt.zero_grad()
            m(lib.tensor(x)).pow(2).mean().backward()
            opt.step()
            swa.update_parameters(m)
            ema.update_parameters(m)
        lib.optim.swa_utils.update_bn([lib.tensor(x) for x in xs], swa)
        out.append([t.detach().numpy().copy() for mod in (swa, ema) for t in (*mod.parameters(), *mod.buffers())])
    for a, b in zip(*out):
        np.testing.assert_allclose(a, b, rtol=1e-8, atol=1e-12)   # float64; BatchNorm kernels differ in rounding


# where tensorlib's loop runs other ops than torch's (the same values): maximum(out=) as maximum + copy_ (Adamax,
# amsgrad), fill_ for copy_(as_tensor(...)) (ASGD), masked_fill_ for a boolean index's index_put_ (Rprop)
_LOOP_DIFFERS = {"Adamax", "ASGD", "Rprop"}


@pytest.mark.parametrize("name,kw", [(n, k) for n, k in OPTIMIZERS if n not in _LOOP_DIFFERS | {"Adafactor", "LBFGS"}
                                     and not k.get("amsgrad") and not k.get("fused")])
def test_a_profiled_step_runs_torchs_single_tensor_loop_op_for_op(name, kw):
    """Under a profile (where tensorlib's loop runs on the arrays, recorded as dispatched: optim._common.Loop)
    one step with foreach=False records torch.profiler's op sequence for the same step on torch, leaving out
    torch's conversion of a Python scalar operand (an aten::to inside the op), which tensorlib does not do."""
    import profiler

    def ours():
        tl.manual_seed(0)
        ps = [tl.nn.Parameter(tl.randn(4, 3)), tl.nn.Parameter(tl.randn(3))]
        opt = getattr(optim, name)(ps, foreach=False, **kw)
        for i in range(3):
            for p in ps:
                p.grad = tl.sin(p.detach() * (i + 1))
            if i < 2:
                opt.step()
        with profiler.profile() as prof:
            opt.step()
        return [e.name for e in sorted(prof.events(), key=lambda e: e.start_ns)]

    def theirs():
        torch.manual_seed(0)
        ps = [torch.nn.Parameter(torch.randn(4, 3)), torch.nn.Parameter(torch.randn(3))]
        opt = getattr(torch.optim, name)(ps, foreach=False, **kw)
        for i in range(3):
            for p in ps:
                p.grad = torch.sin(p.detach() * (i + 1))
            if i < 2:
                opt.step()
        with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
            opt.step()
        names = []
        for e in sorted(prof.events(), key=lambda e: e.time_range.start):
            a = e
            while a is not None and not (a.name == "aten::to" and a.cpu_parent is not None
                                         and a.cpu_parent.name.startswith("aten::")):
                a = a.cpu_parent
            if a is None:
                names.append(e.name)
        return names
    assert ours() == theirs()


_BITWISE = [(n, kw) for n, kw in OPTIMIZERS if n not in ("LBFGS", "Adafactor") and not kw.get("fused")]


@pytest.mark.parametrize("mode", ["multi-tensor", "loop", "profiled"])
@pytest.mark.parametrize("name,kw", _BITWISE, ids=[f"{n}-{i}" for i, (n, _) in enumerate(_BITWISE)])
def test_float32_updates_are_torchs_bit_for_bit(name, kw, mode):
    """Fed the same float32 gradients for 8 steps, the parameters are torch's (its single-tensor CPU loop) to the
    bit: add with alpha, lerp and addcmul fused as torch's vec::fmadd kernels (_fastmath.fma), sqrt by MKL VML as
    torch's (_fastmath.vml), on a small, a 0-d-free odd-sized and a large parameter (the one-pass loops, Adam's C
    step below ADAM_MAX), unprofiled (the multi-tensor path), foreach=False (the loop on arrays) and under a
    profile (the recorded loop). (RAdam's number-over-tensor is torch's Tensor.__rdiv__: reciprocal, then times.)"""
    import profiler
    rng = np.random.default_rng(11)
    shapes = [(5, 3), (7,), (300, 200)]
    init = [rng.standard_normal(s).astype(np.float32) for s in shapes]
    grads = [[rng.standard_normal(s).astype(np.float32) for s in shapes] for _ in range(8)]
    out = []
    for lib in (tl, torch):
        ps = [lib.nn.Parameter(lib.tensor(x.copy())) for x in init]
        extra = {"foreach": False} if lib is torch or mode == "loop" else {}
        opt = getattr(lib.optim, name)(ps, **kw, **extra)
        prof = profiler.profile() if lib is tl and mode == "profiled" else None
        if prof is not None:
            prof.__enter__()
        for gs in grads:
            for p, g in zip(ps, gs):
                p.grad = lib.tensor(g.copy())
            opt.step()
        if prof is not None:
            prof.__exit__(None, None, None)
        out.append([p.detach().numpy().copy() for p in ps])
    for a, b in zip(*out):
        np.testing.assert_array_equal(a, b)


_HALF = [("SGD", dict(lr=0.05, momentum=0.9, nesterov=True, weight_decay=0.1)), ("Adam", dict()),
         ("Adam", dict(amsgrad=True, weight_decay=0.1)), ("AdamW", dict(lr=1e-2, weight_decay=0.1)),
         ("RMSprop", dict(momentum=0.9, centered=True)), ("Adagrad", dict(lr=0.1))]


@pytest.mark.parametrize("dtype", ["bfloat16", "float16"])
@pytest.mark.parametrize("name,kw", _HALF, ids=[f"{n}-{i}" for i, (n, _) in enumerate(_HALF)])
def test_half_updates_are_torchs_bit_for_bit(name, kw, dtype):
    """bfloat16 and float16 parameters (a model trained in bfloat16) stepped 8 times with the same gradients are
    torch's single-tensor loop's to the bit: each op in float32 with its numbers as float32, rounded once (torch's
    opmath), where NumPy's and ml_dtypes' loops rounded the numbers to the half dtype first (Adam's denominator
    / bias_correction2_sqrt differed in 72% of elements) and addcmul_/lerp_ at every step."""
    rng = np.random.default_rng(12)
    shapes = [(64, 32), (7,)]
    init = [rng.standard_normal(s).astype(np.float32) for s in shapes]
    grads = [[rng.standard_normal(s).astype(np.float32) for s in shapes] for _ in range(8)]
    out = []
    for lib in (tl, torch):
        dt = getattr(lib, dtype)
        ps = [lib.nn.Parameter(lib.tensor(x).to(dt)) for x in init]
        opt = getattr(lib.optim, name)(ps, **kw, **({"foreach": False} if lib is torch else {}))
        for gs in grads:
            for p, g in zip(ps, gs):
                p.grad = lib.tensor(g).to(dt)
            opt.step()
        out.append([p.detach().float().numpy() for p in ps])
    for a, b in zip(*out):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("dtype", ["float32", "bfloat16", "float16"])
@pytest.mark.parametrize("name,kw", [
    ("AdamW", {"weight_decay": 0.05}),
    ("Adam", {"weight_decay": 0.05}),
    ("Adam", {}),
    ("AdamW", {"weight_decay": 0.05, "amsgrad": True, "maximize": True}),
    ("Adam", {"betas": (0.3, 0.999)}),          # 1 - beta1 >= 0.5: the lerp's other form
])
def test_fused_adam_is_torchs_fused_kernel_bit_for_bit(name, kw, dtype):
    """fused=True is torch's _fused_adam_ / _fused_adamw_ CPU kernel to the bit, not its single-tensor loop (43% of a
    bfloat16 AdamW's elements differed): float32 arithmetic with one rounding per stored result, the multiply-adds
    GCC built torch's kernel with, on sizes whose vector loop and scalar rest both occur; the profile's
    tree is torch's (_foreach_add_ over each counter's add_, _fused_adamw_ over each item)."""
    rng = np.random.default_rng(21)
    sizes = [1, 7, 8, 15, 16, 17, 31, 33, 40, 63, 64 * 33 + 13, 1000]
    init = [rng.standard_normal(n).astype(np.float32) for n in sizes]
    grads = [[rng.standard_normal(n).astype(np.float32) * 0.05 for n in sizes] for _ in range(6)]
    out = []
    for lib in (tl, torch):
        dt = getattr(lib, dtype)
        ps = [lib.nn.Parameter(lib.tensor(x).to(dt)) for x in init]
        opt = getattr(lib.optim, name)(ps, lr=3e-3, fused=True, **kw)
        for gs in grads:
            for p, g in zip(ps, gs):
                p.grad = lib.tensor(g).to(dt)
            opt.step()
        out.append([p.detach().float().numpy() for p in ps] +
                   [opt.state[p][k].float().numpy() for p in ps for k in ("exp_avg", "exp_avg_sq")])
    for a, b in zip(*out):
        np.testing.assert_array_equal(a, b)
    trees = []
    for lib, prof in ((tl, profiler), (torch, torch.profiler)):
        ps = [lib.nn.Parameter(lib.ones(4)) for _ in range(2)]
        opt = getattr(lib.optim, name)(ps, lr=3e-3, fused=True, **kw)
        for p in ps:
            p.grad = lib.ones(4)
        opt.step()
        with prof.profile() as pr:
            opt.step()
        trees.append([(e.name, e.cpu_parent.name if e.cpu_parent is not None else None) for e in pr.events()])
    assert trees[0] == trees[1]


@pytest.mark.parametrize("name,vml", [("sqrt", "Sqrt"), ("tanh", "Tanh"), ("sin", "Sin"), ("cos", "Cos"),
                                      ("tan", "Tan"), ("log2", "Log2"), ("log10", "Log10"), ("erf", "Erf"),
                                      ("erfc", "Erfc"), ("erfinv", "ErfInv"), ("exp", "Exp"), ("log", "Ln"),
                                      ("atan", "Atan"), ("asin", "Asin"), ("acos", "Acos")])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_vml_ops_are_torchs_bit_for_bit(name, vml, dtype):
    """torch's CPU build computes these on MKL VML (ATen/cpu/vml.h: `"erf_vml_cpu" not implemented`), not all
    correctly rounded (float32 tanh differed from NumPy's in a third of elements, sqrt in 0.7%): tensorlib's ops
    through the same functions (_fastmath.vml, where the mkl wheel is installed) give torch's values, small and
    large, out of place and in place. exp, log, atan, asin and acos are torch's with torch's MKL release line
    (2024.2 for torch 2.13, the `mkl` extra's pin): MKL 2026.2's exp differed in 3% of float32 elements."""
    from tensorlib import _blas
    if _blas.vml_function(vml, np.dtype(dtype)) is None:
        pytest.skip("MKL is not loaded here (no mkl wheel, or TENSORLIB_BLAS=numpy): NumPy's values stand")
    rng = np.random.default_rng(2)
    for n in (7, 100_003):
        x = rng.standard_normal(n) * (3 if name in ("tanh", "sin", "cos", "exp", "atan") else 1)
        if name in ("sqrt", "log2", "log10", "log"):
            x = np.abs(x) + 1e-3
        if name in ("erfinv", "asin", "acos"):
            x = np.tanh(x)
        if n > 7:       # the special values: torch's too
            x[:9] = (0.0, -0.0, np.inf, -np.inf, np.nan, 1.0, -1.0, 1e-40, -104.5)
        x = x.astype(dtype)
        want = getattr(torch, name)(torch.tensor(x)).numpy()
        np.testing.assert_array_equal(getattr(tl, name)(tl.tensor(x)).numpy(), want)
        t = tl.tensor(x)
        if hasattr(t, name + "_"):
            getattr(t, name + "_")()
            np.testing.assert_array_equal(t.numpy(), want)
