"""The optimizers added after SGD/Adam/RMSprop against NumPy references written from torch's documented
algorithms (float64, so agreement is to rounding), plus their state layouts, flags and profiler regions."""
import numpy as np
import pytest

import tensorlib as tl
from tensorlib import optim

STEPS = 8


@pytest.fixture
def data():
    rng = np.random.default_rng(0)
    p0 = rng.standard_normal((4, 3))
    grads = [rng.standard_normal((4, 3)) for _ in range(STEPS)]
    return p0, grads


def _run(opt_cls, p0, grads, **kw):
    p = tl.tensor(p0.copy(), requires_grad=True)
    opt = opt_cls([p], **kw)
    for g in grads:
        p.grad = tl.tensor(g.copy())
        opt.step()
    return p.detach().numpy(), opt


def _grads(grads, p, maximize, wd):
    """The gradient each rule starts from: negated when maximizing, plus L2 decay."""
    g = -grads if maximize else grads
    return g + wd * p if wd else g


# --- NumPy references (torch's algorithm boxes) --------------------------------------------------------

def _np_adagrad(p, grads, lr=1e-2, lr_decay=0, wd=0, init=0, eps=1e-10, maximize=False):
    s = np.full_like(p, init)
    for t, g in enumerate(grads, 1):
        g = _grads(g, p, maximize, wd)
        s = s + g * g
        p = p - lr / (1 + (t - 1) * lr_decay) * g / (np.sqrt(s) + eps)
    return p


def _np_adadelta(p, grads, lr=1.0, rho=0.9, eps=1e-6, wd=0, maximize=False):
    v = np.zeros_like(p)
    u = np.zeros_like(p)
    for g in grads:
        g = _grads(g, p, maximize, wd)
        v = rho * v + (1 - rho) * g * g
        delta = np.sqrt(u + eps) / np.sqrt(v + eps) * g
        u = rho * u + (1 - rho) * delta * delta
        p = p - lr * delta
    return p


def _np_adamax(p, grads, lr=2e-3, b1=0.9, b2=0.999, eps=1e-8, wd=0, maximize=False):
    m = np.zeros_like(p)
    u = np.zeros_like(p)
    for t, g in enumerate(grads, 1):
        g = _grads(g, p, maximize, wd)
        m = b1 * m + (1 - b1) * g
        u = np.maximum(b2 * u, np.abs(g) + eps)
        p = p - lr / (1 - b1 ** t) * m / u
    return p


def _np_nadam(p, grads, lr=2e-3, b1=0.9, b2=0.999, eps=1e-8, wd=0, psi=4e-3, decoupled=False, maximize=False):
    m = np.zeros_like(p)
    v = np.zeros_like(p)
    prod = np.float32(1.0)          # torch keeps the product of the mu's in a float32 scalar
    for t, g in enumerate(grads, 1):
        g = -g if maximize else g
        if wd and decoupled:
            p = p * (1 - lr * wd)
        elif wd:
            g = g + wd * p
        mu = b1 * (1 - 0.5 * 0.96 ** (t * psi))
        mu_next = b1 * (1 - 0.5 * 0.96 ** ((t + 1) * psi))
        prod = np.float32(prod * np.float32(mu))
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        d = np.sqrt(v / (1 - b2 ** t)) + eps
        p = p - lr * (1 - mu) / (1 - float(prod)) * g / d - lr * mu_next / (1 - float(prod) * mu_next) * m / d
    return p


def _np_radam(p, grads, lr=1e-3, b1=0.9, b2=0.999, eps=1e-8, wd=0, decoupled=False, maximize=False):
    m = np.zeros_like(p)
    v = np.zeros_like(p)
    rho_inf = 2 / (1 - b2) - 1
    for t, g in enumerate(grads, 1):
        g = -g if maximize else g
        if wd and decoupled:
            p = p * (1 - lr * wd)
        elif wd:
            g = g + wd * p
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        m_hat = m / (1 - b1 ** t)
        rho_t = rho_inf - 2 * t * b2 ** t / (1 - b2 ** t)
        if rho_t > 5:
            r = np.sqrt((rho_t - 4) * (rho_t - 2) * rho_inf / ((rho_inf - 4) * (rho_inf - 2) * rho_t))
            p = p - lr * m_hat * r * np.sqrt(1 - b2 ** t) / (np.sqrt(v) + eps)
        else:
            p = p - lr * m_hat
    return p


def _np_asgd(p, grads, lr=1e-2, lambd=1e-4, alpha=0.75, t0=1e6, wd=0, maximize=False):
    eta, mu = np.float32(lr), np.float32(1.0)    # torch's float32 scalar state
    ax = np.zeros_like(p)
    for t, g in enumerate(grads, 1):
        g = _grads(g, p, maximize, wd)
        p = p * (1 - lambd * float(eta)) - float(eta) * g
        ax = ax + float(mu) * (p - ax) if mu != 1 else p.copy()
        eta = np.float32(lr / (1 + lambd * lr * t) ** alpha)
        mu = np.float32(1 / max(1, t - t0))
    return p, ax


def _np_rprop(p, grads, lr=1e-2, etas=(0.5, 1.2), sizes=(1e-6, 50), maximize=False):
    prev = np.zeros_like(p)
    s = np.full_like(p, lr)
    for g in grads:
        g = -g if maximize else g
        sign = np.sign(g * prev)
        factor = np.where(sign > 0, etas[1], np.where(sign < 0, etas[0], 1.0))
        s = np.clip(s * factor, *sizes)
        g = np.where(factor == etas[0], 0.0, g)
        p = p - np.sign(g) * s
        prev = g
    return p


def _np_adafactor(p, grads, lr=1e-2, decay=-0.8, eps1=None, eps2=1e-3, d=1.0, wd=0.0, maximize=False):
    eps1 = np.finfo(p.dtype).eps if eps1 is None else eps1
    r = np.zeros(p.shape[:-1] + (1,)) if p.ndim > 1 else None
    c = np.zeros(p.shape[:-2] + (1, p.shape[-1])) if p.ndim > 1 else None
    v = np.zeros_like(p)
    for t, g in enumerate(grads, 1):
        g = -g if maximize else g
        beta = t ** decay
        alpha = max(eps2, np.sqrt(np.mean(p * p))) * min(lr, 1 / np.sqrt(t))
        p = p * (1 - lr * wd)
        if p.ndim > 1:
            r = r + beta * (np.mean(g * g, axis=-1, keepdims=True) - r)
            c = c + beta * (np.mean(g * g, axis=-2, keepdims=True) - c)
            var = r @ c / np.maximum(np.mean(r, axis=-2, keepdims=True), eps1)
        else:
            v = v + beta * (g * g - v)
            var = v
        u = g / np.sqrt(np.maximum(var, eps1 * eps1))
        p = p - alpha / max(1.0, np.sqrt(np.mean(u * u)) / d) * u
    return p


CASES = [
    (optim.Adagrad, _np_adagrad, dict(), dict()),
    (optim.Adagrad, _np_adagrad, dict(lr=0.1, lr_decay=0.05, weight_decay=0.1, initial_accumulator_value=0.3,
                                      eps=1e-4, maximize=True),
     dict(lr=0.1, lr_decay=0.05, wd=0.1, init=0.3, eps=1e-4, maximize=True)),
    (optim.Adadelta, _np_adadelta, dict(), dict()),
    (optim.Adadelta, _np_adadelta, dict(lr=0.5, rho=0.7, eps=1e-4, weight_decay=0.2, maximize=True),
     dict(lr=0.5, rho=0.7, eps=1e-4, wd=0.2, maximize=True)),
    (optim.Adamax, _np_adamax, dict(), dict()),
    (optim.Adamax, _np_adamax, dict(lr=0.05, betas=(0.5, 0.8), weight_decay=0.1, maximize=True),
     dict(lr=0.05, b1=0.5, b2=0.8, wd=0.1, maximize=True)),
    (optim.NAdam, _np_nadam, dict(), dict()),
    (optim.NAdam, _np_nadam, dict(weight_decay=0.1, momentum_decay=0.01), dict(wd=0.1, psi=0.01)),
    (optim.NAdam, _np_nadam, dict(weight_decay=0.1, decoupled_weight_decay=True, maximize=True),
     dict(wd=0.1, decoupled=True, maximize=True)),
    (optim.RAdam, _np_radam, dict(), dict()),
    (optim.RAdam, _np_radam, dict(betas=(0.8, 0.9)), dict(b1=0.8, b2=0.9)),   # rho_t > 5 from step 6
    (optim.RAdam, _np_radam, dict(betas=(0.8, 0.9), weight_decay=0.1, maximize=True),
     dict(b1=0.8, b2=0.9, wd=0.1, maximize=True)),
    (optim.RAdam, _np_radam, dict(betas=(0.8, 0.9), weight_decay=0.1, decoupled_weight_decay=True),
     dict(b1=0.8, b2=0.9, wd=0.1, decoupled=True)),
    (optim.Rprop, _np_rprop, dict(), dict()),
    (optim.Rprop, _np_rprop, dict(lr=0.1, etas=(0.3, 1.5), step_sizes=(0.02, 0.2), maximize=True),
     dict(lr=0.1, etas=(0.3, 1.5), sizes=(0.02, 0.2), maximize=True)),
    (optim.Adafactor, _np_adafactor, dict(), dict()),
    (optim.Adafactor, _np_adafactor, dict(lr=0.05, beta2_decay=-0.5, eps=(1e-5, 1e-2), d=1.5, weight_decay=0.1,
                                          maximize=True),
     dict(lr=0.05, decay=-0.5, eps1=1e-5, eps2=1e-2, d=1.5, wd=0.1, maximize=True)),
]


@pytest.mark.parametrize("cls,ref,kw,ref_kw", CASES, ids=[f"{c[0].__name__}-{i}" for i, c in enumerate(CASES)])
def test_matches_reference(data, cls, ref, kw, ref_kw):
    p0, grads = data
    got, _ = _run(cls, p0, grads, **kw)
    np.testing.assert_allclose(got, ref(p0, grads, **ref_kw), rtol=1e-10, atol=1e-12)


def test_adafactor_vector_and_batched_matrices():
    rng = np.random.default_rng(3)
    for shape in [(5,), (2, 3, 4)]:
        p0 = rng.standard_normal(shape)
        grads = [rng.standard_normal(shape) for _ in range(4)]
        got, opt = _run(optim.Adafactor, p0, grads)
        np.testing.assert_allclose(got, _np_adafactor(p0, grads), rtol=1e-10, atol=1e-12)
        keys = {"step", "variance"} if len(shape) == 1 else {"step", "row_var", "col_var"}
        assert set(opt.state_dict()["state"][0]) == keys


@pytest.mark.parametrize("kw,ref_kw", [(dict(), dict()), (dict(t0=3, lambd=0.05, alpha=0.5, weight_decay=0.1,
                                                               maximize=True),
                                                          dict(t0=3, lambd=0.05, alpha=0.5, wd=0.1, maximize=True))])
def test_asgd_matches_reference_with_average(data, kw, ref_kw):
    p0, grads = data
    got, opt = _run(optim.ASGD, p0, grads, **kw)
    ref_p, ref_ax = _np_asgd(p0, grads, **ref_kw)
    np.testing.assert_allclose(got, ref_p, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(opt.state_dict()["state"][0]["ax"].numpy(), ref_ax, rtol=1e-10, atol=1e-12)


STATE_KEYS = {
    optim.Adagrad: {"step", "sum"}, optim.Adadelta: {"step", "square_avg", "acc_delta"},
    optim.Adamax: {"step", "exp_avg", "exp_inf"}, optim.NAdam: {"step", "mu_product", "exp_avg", "exp_avg_sq"},
    optim.RAdam: {"step", "exp_avg", "exp_avg_sq"}, optim.ASGD: {"step", "eta", "mu", "ax"},
    optim.Rprop: {"step", "prev", "step_size"}, optim.Adafactor: {"step", "row_var", "col_var"},
}


@pytest.mark.parametrize("cls", list(STATE_KEYS), ids=lambda c: c.__name__)
def test_state_dict_layout_and_round_trip(data, cls):
    """torch's per-parameter state names, 0-dim float32 scalars, and a resumed optimizer continuing
    exactly as the original. float32 parameters: torch casts scalar state such as NAdam's mu_product to the
    parameter's dtype on load, so float64 parameters resume in float64 arithmetic (in torch too)."""
    p0, grads = data
    p0, grads = p0.astype(np.float32), [g.astype(np.float32) for g in grads]
    a = tl.tensor(p0.copy(), requires_grad=True)
    opt = cls([a])
    for g in grads[:3]:
        a.grad = tl.tensor(g.copy())
        opt.step()
    sd = opt.state_dict()
    assert set(sd["state"][0]) == STATE_KEYS[cls]
    assert sd["state"][0]["step"].dtype == tl.float32 and sd["state"][0]["step"].dim() == 0
    assert sd["state"][0]["step"].item() == 3
    assert set(sd["param_groups"][0]) == set(opt.defaults) | {"params"}
    b = tl.tensor(a.detach().numpy().copy(), requires_grad=True)
    opt2 = cls([b])
    opt2.load_state_dict(sd)
    for g in grads[3:]:
        a.grad = tl.tensor(g.copy())
        b.grad = tl.tensor(g.copy())
        opt.step()
        opt2.step()
    np.testing.assert_array_equal(a.detach().numpy(), b.detach().numpy())


def test_adagrad_state_exists_before_the_first_step():
    p = tl.zeros(3, requires_grad=True)
    opt = optim.Adagrad([p], initial_accumulator_value=0.5)
    assert opt.state[p]["sum"].tolist() == [0.5, 0.5, 0.5] and opt.state[p]["step"].item() == 0


def test_torch_layout_state_dict_loads():
    """A state dict in torch's layout (as a converted torch checkpoint gives): integer ids, torch's names;
    float32 state is cast to the parameter's dtype, "step" stays as saved."""
    p = tl.zeros(2, requires_grad=True, dtype=tl.float64)
    opt = optim.NAdam([p], lr=0.1)
    sd = {"state": {0: {"step": tl.tensor(2.0), "mu_product": tl.tensor(0.8), "exp_avg": tl.ones(2),
                        "exp_avg_sq": tl.ones(2)}},
          "param_groups": [dict(opt.state_dict()["param_groups"][0], lr=0.01)]}
    opt.load_state_dict(sd)
    st = opt.state[p]
    assert st["step"].dtype == tl.float32 and st["exp_avg"].dtype == tl.float64
    assert st["mu_product"].dtype == tl.float64      # torch casts every non-step tensor to the param's dtype
    assert opt.param_groups[0]["lr"] == 0.01


# --- LBFGS ----------------------------------------------------------------------------------------------

def _quadratic():
    rng = np.random.default_rng(1)
    m = rng.standard_normal((6, 6))
    a = m @ m.T + 6 * np.eye(6)
    b = rng.standard_normal(6)
    return a, b, np.linalg.solve(a, b)


@pytest.mark.parametrize("kw", [dict(), dict(line_search_fn="strong_wolfe"), dict(history_size=2, lr=0.5)])
def test_lbfgs_solves_a_quadratic(kw):
    a, b, x_star = _quadratic()
    x = tl.zeros(6, dtype=tl.float64, requires_grad=True)
    A, B = tl.tensor(a), tl.tensor(b)
    opt = optim.LBFGS([x], max_iter=50, tolerance_grad=1e-12, tolerance_change=1e-15, **kw)
    calls = []

    def closure():
        opt.zero_grad()
        loss = 0.5 * (x @ (A @ x)) - B @ x
        loss.backward()
        calls.append(1)
        return loss

    for _ in range(5):
        opt.step(closure)
    np.testing.assert_allclose(x.detach().numpy(), x_star, rtol=1e-6, atol=1e-8)
    st = opt.state_dict()["state"][0]
    assert {"func_evals", "n_iter", "d", "t", "old_dirs", "old_stps", "ro", "H_diag", "prev_flat_grad",
            "prev_loss", "al"} <= set(st)
    assert st["func_evals"] == len(calls)
    assert len(st["old_dirs"]) <= kw.get("history_size", 100)


def test_lbfgs_strong_wolfe_on_rosenbrock():
    x = tl.tensor([-1.5, 2.0], dtype=tl.float64, requires_grad=True)
    opt = optim.LBFGS([x], line_search_fn="strong_wolfe", max_iter=100, tolerance_grad=1e-12, tolerance_change=1e-15)

    def closure():
        opt.zero_grad()
        loss = (1 - x[0]) ** 2 + 100 * (x[1] - x[0] ** 2) ** 2
        loss.backward()
        return loss

    for _ in range(3):
        opt.step(closure)
    np.testing.assert_allclose(x.detach().numpy(), [1.0, 1.0], atol=1e-6)


def test_lbfgs_refuses_groups_and_other_line_searches():
    a, b = tl.zeros(1, requires_grad=True), tl.zeros(1, requires_grad=True)
    with pytest.raises(ValueError, match="doesn't support per-parameter options"):
        optim.LBFGS([{"params": [a]}, {"params": [b]}])
    opt = optim.LBFGS([a], line_search_fn="armijo")

    def closure():
        loss = ((a - 1) ** 2).sum()
        opt.zero_grad()
        loss.backward()
        return loss
    with pytest.raises(RuntimeError, match="only 'strong_wolfe' is supported"):
        opt.step(closure)


# --- flags and checks -----------------------------------------------------------------------------------

def test_sparse_adam_refuses_dense_gradients_as_torch():
    p = tl.zeros(2, requires_grad=True)
    opt = optim.SparseAdam([p])
    p.grad = tl.ones(2)
    with pytest.raises(RuntimeError, match="SparseAdam does not support dense gradients, please consider Adam"):
        opt.step()
    with pytest.raises(ValueError, match="Invalid learning rate: 0"):
        optim.SparseAdam([p], lr=0)


@pytest.mark.parametrize("make,err,msg", [
    (lambda p: optim.Adagrad([p], lr_decay=-1), ValueError, "Invalid lr_decay value: -1"),
    (lambda p: optim.Adagrad([p], initial_accumulator_value=-1), ValueError,
     "Invalid initial_accumulator_value value: -1"),
    (lambda p: optim.Adadelta([p], rho=1.5), ValueError, "Invalid rho value: 1.5"),
    (lambda p: optim.Adamax([p], betas=(0.9, 1.0)), ValueError, "Invalid beta parameter at index 1: 1.0"),
    (lambda p: optim.NAdam([p], momentum_decay=-1), ValueError, "Invalid momentum_decay value: -1"),
    (lambda p: optim.RAdam([p], eps=-1), ValueError, "Invalid epsilon value: -1"),
    (lambda p: optim.Rprop([p], etas=(1.1, 1.2)), ValueError, "Invalid eta values: 1.1, 1.2"),
    (lambda p: optim.ASGD([p], lr=tl.ones(2)), ValueError, "Tensor lr must be 1-element"),
    (lambda p: optim.Adafactor([p], d=0.5), ValueError, "Clipping threshold d should be >= 1 but is: 0.5"),
    (lambda p: optim.Adafactor([p], beta2_decay=0.1), ValueError, "beta2_decay should be <= 0 but is: 0.1"),
    (lambda p: optim.Adam([p], fused=True, differentiable=True), RuntimeError, "`fused` does not support"),
    (lambda p: optim.SGD([p], fused=True, foreach=True), RuntimeError, "`fused` and `foreach` cannot be `True`"),
])
def test_bad_arguments_are_refused_with_torchs_words(make, err, msg):
    with pytest.raises(err, match=msg.replace("(", r"\(").replace(")", r"\)")):
        make(tl.zeros(2, requires_grad=True))


@pytest.mark.parametrize("cls", [optim.SGD, optim.Adam, optim.AdamW, optim.Adagrad])
def test_fused_runs_the_same_update(data, cls):
    p0, grads = data
    plain, _ = _run(cls, p0, grads, lr=0.01)
    fused, _ = _run(cls, p0, grads, lr=0.01, fused=True)
    np.testing.assert_array_equal(plain, fused)


def test_fused_needs_floating_point_params():
    p = tl.zeros(2, dtype=tl.int64)
    opt = optim.SGD([p], lr=0.1, fused=True)
    p.grad = tl.zeros(2, dtype=tl.int64)
    with pytest.raises(RuntimeError, match="`fused=True` requires all the params to be floating point"):
        opt.step()


@pytest.mark.parametrize("cls,what", [(optim.Adam, "params and state_steps"),
                                      (optim.NAdam, "params, mu_products and state_steps"),
                                      (optim.ASGD, "params, mus, etas, and state_steps"),
                                      (optim.Rprop, "params and state_steps"),
                                      (optim.Adadelta, "params and state_steps")])
def test_capturable_on_cpu_params_fails_as_torch(cls, what):
    p = tl.zeros(2, requires_grad=True)
    opt = cls([p], capturable=True)
    p.grad = tl.ones(2)
    with pytest.raises(AssertionError, match=f"If capturable=True, {what} must be on supported devices"):
        opt.step()
    assert (p.detach().numpy() == 0).all()


@pytest.mark.parametrize("cls", [optim.Adam, optim.Adamax, optim.NAdam, optim.RAdam, optim.Adadelta,
                                 optim.Adagrad, optim.Rprop, optim.ASGD])
def test_foreach_true_is_the_same_update(data, cls):
    p0, grads = data
    a, _ = _run(cls, p0, grads)
    b, _ = _run(cls, p0, grads, foreach=True)
    np.testing.assert_array_equal(a, b)


def test_differentiable_records_the_update():
    """differentiable=True: the step is part of the graph, so d(updated param)/d(initial param) flows;
    a non-leaf parameter is then allowed, as in torch."""
    w0 = tl.tensor([1.0, 2.0], dtype=tl.float64, requires_grad=True)
    p = w0.clone()
    p.grad = tl.tensor([0.5, -1.0], dtype=tl.float64)
    optim.SGD([p], lr=0.1, weight_decay=0.5, differentiable=True).step()
    p.sum().backward()
    np.testing.assert_allclose(w0.grad.numpy(), [1 - 0.1 * 0.5] * 2)      # p1 = p0 - lr * (g + wd * p0)
    with pytest.raises(ValueError, match="can't optimize a non-leaf Tensor"):
        optim.SGD([w0.clone()], lr=0.1)
    q = tl.tensor([1.0], requires_grad=True)
    q.grad = tl.ones(1)
    with pytest.raises(RuntimeError, match="leaf Variable that requires grad"):
        optim.SGD([q], lr=0.1, differentiable=True).step()


@pytest.mark.parametrize("cls", [optim.Adagrad, optim.Adadelta, optim.Adamax, optim.NAdam, optim.RAdam, optim.ASGD,
                                 optim.Rprop, optim.Adafactor])
def test_step_is_a_named_region_with_dispatched_ops(cls):
    seen = []

    class H(tl.dispatch.Hook):
        def range_enter(self, name, kind):
            seen.append((name, kind))

        def op_enter(self, op, inputs, attrs, phase, seq):
            seen.append(op.name)

    p = tl.ones(2, 2, requires_grad=True)
    p.grad = tl.ones(2, 2)
    opt = cls([p])
    h = H()
    tl.dispatch.add_hook(h)
    try:
        opt.step()
    finally:
        tl.dispatch.remove_hook(h)
    assert seen[0] == (f"Optimizer.step#{cls.__name__}.step", "optimizer")
    assert sum(isinstance(s, str) for s in seen) >= 3


def test_optim_names_are_torchs():
    import tensorlib.optim.lr_scheduler as L
    for name in ["Adafactor", "Adadelta", "Adagrad", "Adam", "Adamax", "AdamW", "ASGD", "LBFGS", "NAdam", "Optimizer",
                 "RAdam", "RMSprop", "Rprop", "SGD", "SparseAdam", "lr_scheduler", "swa_utils"]:
        assert name in optim.__all__ and hasattr(optim, name)
    for name in ["LambdaLR", "MultiplicativeLR", "StepLR", "MultiStepLR", "ConstantLR", "LinearLR", "ExponentialLR",
                 "SequentialLR", "CosineAnnealingLR", "ChainedScheduler", "ReduceLROnPlateau", "CyclicLR",
                 "CosineAnnealingWarmRestarts", "OneCycleLR", "PolynomialLR", "LRScheduler"]:
        assert name in L.__all__ and hasattr(L, name)


@pytest.mark.cuda
@pytest.mark.parametrize("cls,kw", [(optim.Adagrad, {}), (optim.Adadelta, {}), (optim.Adamax, {}),
                                    (optim.NAdam, dict(capturable=True)), (optim.RAdam, {}), (optim.ASGD, {}),
                                    (optim.Rprop, {}), (optim.Adafactor, {}), (optim.Adam, dict(capturable=True))])
def test_cuda_parameters_match_cpu(data, cls, kw):
    """CUDA parameters with the CPU scalar state torch keeps (capturable accepted there): the CPU result."""
    p0, grads = data
    cpu, _ = _run(cls, p0, grads)
    p = tl.tensor(p0.copy(), device="cuda", requires_grad=True)
    opt = cls([p], **kw)
    for g in grads:
        p.grad = tl.tensor(g.copy(), device="cuda")
        opt.step()
    np.testing.assert_allclose(p.detach().cpu().numpy(), cpu, rtol=1e-12, atol=1e-14)


@pytest.mark.cuda
def test_lbfgs_on_cuda():
    x = tl.zeros(3, device="cuda", dtype=tl.float64, requires_grad=True)
    opt = optim.LBFGS([x], line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        loss = ((x - 2) ** 2).sum()
        loss.backward()
        return loss
    opt.step(closure)
    np.testing.assert_allclose(x.detach().cpu().numpy(), [2.0] * 3, atol=1e-6)
