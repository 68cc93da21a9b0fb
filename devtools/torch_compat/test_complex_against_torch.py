"""Complex tensors against torch 2.13 side by side: values, result dtypes and the input gradients (torch's
convention: a real loss's gradient is dL/d(re) + i dL/d(im)) of the complex ops, of elementwise math and linear
algebra on complex inputs (the engine's conj(formula(conj(g))) for formulas written for real ones), of mixed
real/complex arithmetic (a real input's gradient is the real part), of every optimizer with complex parameters
(updated as pairs of reals, state kept complex), type promotion, printing, errors, and save/load both ways."""
from __future__ import annotations

import io
import warnings

import numpy as np
import pytest

import tensorlib as tl

torch = pytest.importorskip("torch")
R = np.random.default_rng(11)


def _c(*s):
    return (R.standard_normal(s) + 1j * R.standard_normal(s)) * 0.7


def _np(t):
    return t.detach().numpy() if hasattr(t, "detach") else np.asarray(t)


def _loss(L, y):
    """A real loss that weighs real and imaginary parts differently (so a conjugation error shows)."""
    w = L.tensor(np.cos(np.arange(y.numel())).reshape(tuple(y.shape)))
    return (y.real * w).sum() + (y.imag * w * 2).sum() if y.is_complex() else (y * w).sum()


def _run(fn, arrays):
    """fn on both libraries: (value, dtype name, input grads) per library."""
    out = []
    for L in (torch, tl):
        xs = [L.tensor(a.copy(), requires_grad=True) for a in arrays]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            y = fn(L, *xs)
            _loss(L, y).backward()
        out.append((_np(y), str(y.dtype).split(".")[-1], [None if x.grad is None else _np(x.grad) for x in xs]))
    return out


def _same(fn, arrays, rtol=1e-9, atol=1e-12):
    (tv, tdt, tg), (ov, odt, og) = _run(fn, arrays)
    assert odt == tdt
    np.testing.assert_allclose(ov, tv, rtol=rtol, atol=atol)
    for a, b in zip(tg, og):
        assert (a is None) == (b is None)
        if a is not None:
            assert b.dtype == a.dtype
            np.testing.assert_allclose(b, a, rtol=rtol, atol=atol)


UNARY = ["exp", "log", "sqrt", "rsqrt", "sin", "cos", "tan", "tanh", "sinh", "cosh", "sigmoid", "reciprocal", "neg",
         "abs", "angle", "sgn", "log1p", "expm1", "asin", "acos", "atan", "asinh", "acosh", "atanh", "square", "log2",
         "log10", "exp2", "sum", "mean", "prod", "flatten", "t", "clone", "contiguous", "var", "std", "norm", "trace",
         "diag", "tril", "triu", "sinc", "conj_physical", "resolve_conj"]


@pytest.mark.parametrize("name", UNARY)
def test_unary_values_and_gradients(name):
    _same(lambda L, x: getattr(x, name)(), [_c(3, 4)])


@pytest.mark.parametrize("name", ["real", "imag", "view_as_real"])
def test_views_values_and_gradients(name):
    _same(lambda L, x: getattr(L, name)(x * (1 - 2j)), [_c(3, 4)])


def _einsum(L, a, b, ar, m, m2, b3):
    return L.einsum("bij,bjk->bik", m2, b3)


BINARY = {
    "add": lambda L, a, b, ar, m, m2, b3: a + b,
    "add_real": lambda L, a, b, ar, m, m2, b3: a + ar,
    "sub_alpha": lambda L, a, b, ar, m, m2, b3: L.sub(ar, a, alpha=2),
    "mul_real": lambda L, a, b, ar, m, m2, b3: a * ar,
    "div": lambda L, a, b, ar, m, m2, b3: a / b,
    "rdiv_real": lambda L, a, b, ar, m, m2, b3: ar / a,
    "pow_int": lambda L, a, b, ar, m, m2, b3: a ** 2,
    "pow_complex_scalar": lambda L, a, b, ar, m, m2, b3: a ** (1.5 + 0.5j),
    "pow_tensor": lambda L, a, b, ar, m, m2, b3: a ** b,
    "matmul": lambda L, a, b, ar, m, m2, b3: a @ m,
    "mv": lambda L, a, b, ar, m, m2, b3: a @ b,
    "bmm": lambda L, a, b, ar, m, m2, b3: L.bmm(m2, b3),
    "matmul_batched": lambda L, a, b, ar, m, m2, b3: m2 @ b3,
    "einsum": _einsum,
    "where": lambda L, a, b, ar, m, m2, b3: L.where(ar > 0, a, b),
    "cat": lambda L, a, b, ar, m, m2, b3: L.cat([a, b[None]], 0),
    "index": lambda L, a, b, ar, m, m2, b3: a[[0, 2], 1:3],
    "masked_fill": lambda L, a, b, ar, m, m2, b3: a.masked_fill(ar > 0, 0),
    "linear": lambda L, a, b, ar, m, m2, b3: L.nn.functional.linear(a, m.t()),
    "expand": lambda L, a, b, ar, m, m2, b3: b.expand(3, 4) * a,
    "roll": lambda L, a, b, ar, m, m2, b3: a.roll(1, 1),
    "outer": lambda L, a, b, ar, m, m2, b3: L.outer(b, b),
    "dot": lambda L, a, b, ar, m, m2, b3: L.dot(b, b),
    "vdot": lambda L, a, b, ar, m, m2, b3: L.vdot(b, a[0]),
    "to_complex128": lambda L, a, b, ar, m, m2, b3: ar.to(L.complex128) * b,
    "type_as": lambda L, a, b, ar, m, m2, b3: ar.type_as(a) * a,
    "real_times_complex_scalar": lambda L, a, b, ar, m, m2, b3: ar * (2 - 1j),
    "addmm": lambda L, a, b, ar, m, m2, b3: L.addmm(m[0:3], a, m),
    "tensordot": lambda L, a, b, ar, m, m2, b3: L.tensordot(a, m, dims=1),
    "kron": lambda L, a, b, ar, m, m2, b3: L.kron(b, b),
    "abs_squared": lambda L, a, b, ar, m, m2, b3: a * a.conj(),
    "complex": lambda L, a, b, ar, m, m2, b3: L.complex(ar, ar * 3) * a,
    "polar": lambda L, a, b, ar, m, m2, b3: L.polar(ar.abs(), ar) * a,
    "view_as_complex": lambda L, a, b, ar, m, m2, b3: L.view_as_complex(L.stack([ar, ar * ar], -1)) * a,
    "rotary": lambda L, a, b, ar, m, m2, b3: L.view_as_real(  # LLaMA's apply_rotary_emb
        L.view_as_complex(m2.real.contiguous().reshape(2, 3, 2, 2))
        * L.polar(L.ones(2, dtype=L.float64), b.real[:2])).flatten(2),
}


@pytest.mark.parametrize("name", list(BINARY))
def test_arithmetic_and_linear_algebra(name):
    _same(BINARY[name], [_c(3, 4), _c(4), R.standard_normal((3, 4)), _c(4, 5), _c(2, 3, 4), _c(2, 4, 5)])


def test_setitem_into_complex():
    def f(L, a, b, ar):
        y = a * 1
        y[1] = b * 2
        y[:, 0] = ar[:, 0]
        return y
    _same(f, [_c(3, 4), _c(4), R.standard_normal((3, 4))])


OPTIMIZERS = ["SGD", "Adam", "AdamW", "RMSprop", "Adagrad", "Adadelta", "Adamax", "NAdam", "RAdam", "ASGD", "Rprop"]


@pytest.mark.parametrize("name", OPTIMIZERS)
def test_optimizers_update_complex_parameters_as_torch(name):
    w0, x, y = _c(4, 3), _c(5, 4), R.standard_normal((5, 3))
    out = []
    for L in (torch, tl):
        w = L.tensor(w0.copy(), requires_grad=True)
        kw: dict = dict(lr=0.05)
        if name == "SGD":
            kw.update(momentum=0.9, weight_decay=0.01)
        if name in ("Adam", "AdamW"):
            kw.update(amsgrad=True, weight_decay=0.01)
        opt = getattr(L.optim, name)([w], **kw)
        for _ in range(4):
            opt.zero_grad()
            ((L.tensor(x) @ w).abs() - L.tensor(y)).pow(2).mean().backward()
            opt.step()
        out.append((_np(w), {k: np.asarray(_np(v)) for k, v in opt.state[w].items()}))
    (tw, ts), (ow, os_) = out
    np.testing.assert_allclose(ow, tw, rtol=1e-9, atol=1e-12)
    assert set(os_) == set(ts)
    for k in ts:
        assert os_[k].dtype == ts[k].dtype, k
        np.testing.assert_allclose(os_[k], ts[k], rtol=1e-9, atol=1e-12)


def test_promotion_rules():
    cases = [((3,), "float64", (), "complex64"), ((3,), "float32", (), "complex128"),
             ((3,), "complex64", (3,), "float64"), ((3,), "int64", (), "complex64"),
             ((), "float64", (3,), "complex64"), ((3,), "float16", (3,), "complex64")]
    for sa, da, sb, db in cases:
        t = torch.zeros(sa, dtype=getattr(torch, da)) + torch.zeros(sb, dtype=getattr(torch, db))
        o = tl.zeros(sa, dtype=getattr(tl, da)) + tl.zeros(sb, dtype=getattr(tl, db))
        assert str(o.dtype).split(".")[-1] == str(t.dtype).split(".")[-1], (sa, da, sb, db)
    for da in ("float32", "float64", "int64", "bool"):
        t = torch.ones(2, dtype=getattr(torch, da)) * 1j
        o = tl.ones(2, dtype=getattr(tl, da)) * 1j
        assert str(o.dtype).split(".")[-1] == str(t.dtype).split(".")[-1], da
    assert tl.tensor([1, 2j]).dtype is tl.complex64 and tl.tensor(1j, dtype=tl.cdouble).dtype is tl.complex128
    assert tl.promote_types(tl.complex64, tl.float64) is tl.complex128
    assert tl.float32.to_complex() is tl.complex64 and tl.complex128.to_real() is tl.float64
    assert tl.finfo(tl.complex64).eps == torch.finfo(torch.complex64).eps


def test_printing():
    for data in ([1 + 2j, 3.5 - 1j], [[1e-5 + 2j, 3 - 1j]], 1j, [-3.5j, 0j], [1 + 1j, 2.25 - 100j, -7 + 0.5j]):
        assert repr(tl.tensor(data)) == repr(torch.tensor(data))
    assert repr(tl.tensor([1 + 2j], dtype=tl.cdouble)).replace("tensorlib", "torch") == \
        repr(torch.tensor([1 + 2j], dtype=torch.cdouble))


def _message(fn, lib):
    try:
        fn(lib)
    except Exception as e:      # noqa: BLE001 - the message is what is compared
        return type(e).__name__, str(e)
    return None


@pytest.mark.parametrize("case", [
    lambda L: L.view_as_real(L.ones(2)),
    lambda L: L.view_as_complex(L.ones(2, 3)),
    lambda L: L.view_as_complex(L.ones(3, 2).t()),
    lambda L: L.view_as_complex(L.ones(2, dtype=L.int64)),
    lambda L: L.view_as_complex(L.ones(5, 2)[:, :1].expand(5, 2)),
    lambda L: L.imag(L.ones(2)),
    lambda L: L.sign(L.ones(2, dtype=L.complex64)),
    lambda L: L.complex(L.ones(2), L.ones(2, dtype=L.float64)),
    lambda L: L.ones(2, dtype=L.complex64).sum().backward(),
    lambda L: L.ones(2, dtype=L.int64).requires_grad_(),
    lambda L: L.ones(2, dtype=L.cdouble) < 1,
    lambda L: L.ones(2, dtype=L.cfloat).max(),
    lambda L: L.ones(2, dtype=L.cfloat).max(0),
    lambda L: L.ones(2, dtype=L.cfloat).argmax(),
    lambda L: L.ones(2, dtype=L.cfloat).sort(),
    lambda L: L.ones(2, dtype=L.cfloat).topk(1),
    lambda L: L.ones(2, dtype=L.cfloat).clamp(0, 1),
    lambda L: L.ones(2, dtype=L.cfloat).H,
    lambda L: L.ones(2, 2, 2, dtype=L.cfloat).H,
    lambda L: L.ones(2, dtype=L.cfloat).mH,
    lambda L: float(L.ones(1, dtype=L.cfloat) * 1j),
    lambda L: L.ones(2).add_(L.ones(2, dtype=L.cdouble)),
])
def test_errors(case):
    assert _message(case, tl) == _message(case, torch)


def test_real_and_imag_are_views_written_through():
    for L in (torch, tl):
        z = L.tensor([1 + 2j, 3 - 1j])
        z.real.mul_(2)
        z.imag = L.tensor([5.0, 6.0])
        r = L.view_as_real(z)
        r[0, 1] = -1
        assert z.tolist() == [(2 - 1j), (6 + 6j)]


def test_save_and_load_complex_both_ways():
    b = io.BytesIO()
    torch.save({"w": torch.tensor([1 + 2j, 3j]),
                "p": torch.nn.Parameter(torch.tensor([0.5 - 1j], dtype=torch.cdouble))}, b)
    b.seek(0)
    d = tl.load(b)
    assert d["w"].dtype is tl.complex64 and d["w"].tolist() == [1 + 2j, 3j]
    assert d["p"].dtype is tl.complex128 and d["p"].requires_grad
    b2 = io.BytesIO()
    tl.save(d, b2)
    b2.seek(0)
    back = torch.load(b2)
    assert back["p"].dtype == torch.complex128 and back["w"].tolist() == [1 + 2j, 3j]


@pytest.mark.parametrize("name", ["inv", "det", "solve", "vector_norm"])
def test_linalg_of_complex_matrices(name):
    a = _c(3, 3) + 3 * np.eye(3)
    fns = {"inv": lambda L, x: L.linalg.inv(x), "det": lambda L, x: L.linalg.det(x),
           "solve": lambda L, x: L.linalg.solve(x, x[:, :1] * 2), "vector_norm": lambda L, x: L.linalg.vector_norm(x)}
    _same(fns[name], [a])


def test_custom_function_backward_gets_torch_convention_gradients():
    def grad_of(L):
        class Sq(L.autograd.Function):
            @staticmethod
            def forward(ctx, z):
                ctx.save_for_backward(z)
                return z * z

            @staticmethod
            def backward(ctx, g):
                z, = ctx.saved_tensors
                return g * 2 * z.conj()
        z = L.tensor([1 + 2j, 0.5 - 1j], requires_grad=True)
        y = Sq.apply(z)
        (y.real * 3 + y.imag).sum().backward()
        return z.grad.tolist()
    assert grad_of(tl) == grad_of(torch)


def test_conjugate_transposes_and_scalars():
    z0 = _c(2, 3)
    for name in ("mH", "H", "mT", "T"):
        ours, theirs = getattr(tl.tensor(z0), name), getattr(torch.tensor(z0), name)
        assert np.array_equal(ours.numpy(), theirs.resolve_conj().numpy())
    assert np.array_equal(tl.tensor(z0).adjoint().numpy(), torch.tensor(z0).adjoint().resolve_conj().numpy())
    assert complex(tl.tensor(1 + 2j)) == complex(torch.tensor(1 + 2j))
    assert str(tl.full((2,), 1j).dtype).split(".")[-1] == str(torch.full((2,), 1j).dtype).split(".")[-1]
    z = tl.tensor(z0)
    z.add_(tl.ones(2, 3, dtype=tl.float64))
    np.testing.assert_allclose(z.numpy(), z0 + 1)


@pytest.mark.parametrize("case", [
    lambda L: L.ones(2).mul_(1j), lambda L: L.ones(2).add_(1j), lambda L: L.ones(2).sub_(1j),
    lambda L: L.ones(2).div_(L.ones(2, dtype=L.cfloat)), lambda L: L.ones(2).copy_(L.tensor([1 + 1j, 2j])),
    lambda L: L.ones(2, dtype=L.cfloat).copy_(L.tensor([1., 2.])), lambda L: L.zeros(2, dtype=L.cfloat).fill_(2j),
    lambda L: L.zeros(2).fill_(2j), lambda L: L.zeros(2).fill_(2 + 0j),
    lambda L: L.ones(2, dtype=L.cfloat).mul_(L.ones(2)),
    lambda L: L.ones(2, dtype=L.cfloat).pow_(2), lambda L: L.where(L.ones(2) > 0, L.ones(2), 1j),
    lambda L: L.where(L.ones(2) > 0, L.tensor([1, 2]), 0.5), lambda L: L.where(L.ones(2) > 0, 1j, L.ones(2)),
    lambda L: L.ones(2, dtype=L.cfloat).masked_fill_(L.ones(2) > 0, 3j),
    lambda L: L.ones(2).masked_fill(L.ones(2) > 0, 3j),
    lambda L: L.ones(2, dtype=L.cfloat).index_fill_(0, L.tensor([0]), 2j),
])
def test_writes_between_real_and_complex(case):
    def outcome(L):
        try:
            v = case(L)
            return v.tolist(), str(v.dtype).split(".")[-1]
        except Exception as e:      # noqa: BLE001 - the message is what is compared
            return type(e).__name__, str(e)
    assert outcome(tl) == outcome(torch)
