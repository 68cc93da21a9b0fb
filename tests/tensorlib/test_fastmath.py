"""float32 exp by tensorlib._cmath's AVX2 loop (tensorlib/ops/_fastmath.py) against NumPy's float64 exp: within 1 ulp
of the correctly rounded float32 result over the whole range, libm's results outside it (overflow, inf, NaN, values
below FLT_MIN), and the ops that call it (exp, softmax, log_softmax and its backward, sigmoid, attention) on arrays
large enough to take it. Where the CPU lacks AVX2 or FMA, or the extension is not built, the ops run NumPy's exp and
the checks on values still hold. Also layer_norm's loops over rows (forward and backward) against NumPy's path."""
from __future__ import annotations

import sys

import numpy as np
import pytest

import tensorlib as tl
from tensorlib import _native
from tensorlib.ops import _fastmath

N = _fastmath.MIN_SIZE * 4
# the bound in ulp: the AVX2 loops' where they run, NumPy's own where they do not (no AVX2/FMA, TENSORLIB_NATIVE=0)
ULP = 1 if _fastmath.FAST else 3
ROUTED = _fastmath.VECTOR_LOOPS     # (as the module chose it, before the fixture below sets it)


@pytest.fixture(autouse=True)
def _c_loops(monkeypatch):
    """exp and tanh on the C loops wherever they are built, also where NumPy's own are vectorised (where the ops
    take NumPy's: VECTOR_LOOPS), so that these tests check the loops on every machine that builds them."""
    monkeypatch.setattr(_fastmath, "VECTOR_LOOPS", _fastmath.FAST)


def _ulps(a, ref):
    """|a - ref| in units in the last place of float32, for finite positive normal values."""
    return np.abs(a.view(np.int32).astype(np.int64) - ref.view(np.int32).astype(np.int64))


def test_the_extension_is_built_and_used_on_linux_x86():
    if not sys.platform.startswith("linux"):
        pytest.skip("tensorlib._cmath is built on Linux only (setup.py)")
    status = _native.status().get("tensorlib._cmath")
    if status is not None and status.startswith("off"):     # TENSORLIB_NATIVE=0
        assert not _fastmath.FAST
        return
    assert status == "on"
    assert _fastmath._M is not None


def test_exp_is_within_one_ulp_over_the_float32_range():
    rng = np.random.default_rng(0)
    x = np.concatenate([rng.uniform(-87.3, 88.7, 2_000_000), rng.uniform(-1, 1, 200_000),
                        np.linspace(-90, 90, 100_001)]).astype(np.float32)
    y = _fastmath.exp(x)
    ref64 = np.exp(x.astype(np.float64))
    with np.errstate(over="ignore"):
        ref = ref64.astype(np.float32)
    normal = (ref64 >= np.finfo(np.float32).tiny) & (ref64 <= np.finfo(np.float32).max)
    assert _ulps(y[normal], ref[normal]).max() <= ULP
    # NumPy's own exp, for scale: its error is larger on some values
    with np.errstate(over="ignore"):
        assert _ulps(np.exp(x)[normal], ref[normal]).max() <= 3


def test_exp_outside_the_vector_range_is_libms():
    special = np.array([np.inf, -np.inf, np.nan, 0.0, -0.0, 88.72, 88.73, 89.0, 1e30, -87.0, -87.34, -88.0, -95.5,
                        -103.97, -104.0, -1e30, 1e-45, -1e-45], np.float32)
    x = np.resize(special, N)       # (long enough for the vector path, each special in every lane position)
    with np.errstate(over="ignore"):
        y = _fastmath.exp(x)
        inplace = x.copy()
        assert _fastmath.exp(inplace, out=inplace) is inplace       # (out is x: each lane's input read first)
    assert np.array_equal(inplace, y, equal_nan=True)
    assert np.isposinf(y[x == np.inf]).all() and (y[x == -np.inf] == 0).all() and np.isnan(y[np.isnan(x)]).all()
    assert (y[x == 0] == 1).all() and np.isposinf(y[x >= 88.73]).all() and (y[x <= -104] == 0).all()
    sub = (x < -87.4) & (x > -103.9)           # subnormal results: within one subnormal step of the exact value
    exact = np.exp(x[sub].astype(np.float64))
    assert np.abs(y[sub] - exact).max() <= np.finfo(np.float32).smallest_subnormal


def test_exp_layouts_and_out():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((64, 257)).astype(np.float32)
    ref = np.exp(x.astype(np.float64)).astype(np.float32)
    assert _ulps(_fastmath.exp(x), ref).max() <= ULP
    for arg in (x.T, x[:, ::2], x[::-1]):               # not C-contiguous: NumPy's exp itself
        assert np.array_equal(_fastmath.exp(arg), np.exp(arg))
    out = np.empty_like(x)
    assert _fastmath.exp(x, out=out) is out and _ulps(out, ref).max() <= ULP
    inplace = x.copy()
    assert _fastmath.exp(inplace, out=inplace) is inplace and _ulps(inplace, ref).max() <= ULP
    small = x[:1, :8]
    assert np.array_equal(_fastmath.exp(small), np.exp(small))      # below MIN_SIZE: NumPy's exp itself
    f64 = x.astype(np.float64)
    assert np.array_equal(_fastmath.exp(f64), np.exp(f64))
    with pytest.raises(ValueError, match="float32"):
        if _fastmath._M is None:
            raise ValueError("float32")
        _fastmath._M.exp_f32(x, np.empty(x.shape, np.float64))


@pytest.mark.parametrize("name", ["exp", "softmax", "log_softmax", "sigmoid", "log_softmax_backward", "attention",
                                  "gelu_backward", "logsigmoid", "logsigmoid_backward", "softplus"])
def test_ops_on_large_float32_arrays_match_float64(name):
    rng = np.random.default_rng(2)
    x = rng.standard_normal((16, N // 8)).astype(np.float32) * 4
    t = tl.tensor(x, requires_grad=True)
    x64 = x.astype(np.float64)
    if name == "exp":
        got, ref = t.exp(), np.exp(x64)
    elif name == "softmax":
        got = tl.softmax(t, 1)
        e = np.exp(x64 - x64.max(1, keepdims=True))
        ref = e / e.sum(1, keepdims=True)
    elif name == "log_softmax":
        got = tl.log_softmax(t, 1)
        s = x64 - x64.max(1, keepdims=True)
        ref = s - np.log(np.exp(s).sum(1, keepdims=True))
    elif name == "sigmoid":
        got, ref = t.sigmoid(), 1 / (1 + np.exp(-x64))
    elif name == "log_softmax_backward":
        g = rng.standard_normal(x.shape)
        tl.log_softmax(t, 1).backward(tl.tensor(g.astype(np.float32)))
        s = x64 - x64.max(1, keepdims=True)
        p = np.exp(s) / np.exp(s).sum(1, keepdims=True)
        got, ref = t.grad, g - p * g.sum(1, keepdims=True)
    elif name == "gelu_backward":
        tl.nn.functional.gelu(t).sum().backward()
        from math import erf, pi, sqrt
        cdf = 0.5 * (1 + np.vectorize(erf)(x64 / sqrt(2)))
        got, ref = t.grad, cdf + x64 * np.exp(-x64 * x64 / 2) / sqrt(2 * pi)
    elif name == "logsigmoid":
        got, ref = tl.nn.functional.logsigmoid(t), -np.logaddexp(0, -x64)
    elif name == "logsigmoid_backward":
        tl.nn.functional.logsigmoid(t).sum().backward()
        got, ref = t.grad, 1 / (1 + np.exp(x64))
    elif name == "softplus":
        got, ref = tl.nn.functional.softplus(t), np.logaddexp(0, x64)
    else:
        q = tl.tensor(rng.standard_normal((2, 2, 64, 32)).astype(np.float32))
        k = tl.tensor(rng.standard_normal((2, 2, 64, 32)).astype(np.float32))
        v = tl.tensor(rng.standard_normal((2, 2, 64, 32)).astype(np.float32))
        got = tl.nn.functional.scaled_dot_product_attention(q, k, v)
        qa, ka, va = (a.numpy().astype(np.float64) for a in (q, k, v))
        sc = qa @ ka.swapaxes(-1, -2) / np.sqrt(32)
        w = np.exp(sc - sc.max(-1, keepdims=True))
        ref = (w / w.sum(-1, keepdims=True)) @ va
    assert got.dtype == tl.float32
    np.testing.assert_allclose(got.detach().numpy(), ref, rtol=2e-5, atol=2e-6)


def test_tanh_is_within_one_ulp_and_keeps_libms_special_values():
    rng = np.random.default_rng(3)
    x = np.concatenate([rng.uniform(-12, 12, 1_000_000), rng.uniform(-1, 1, 500_000), rng.uniform(-1e-3, 1e-3, 50_000),
                        np.linspace(-10, 10, 100_001)]).astype(np.float32)
    y = _fastmath.tanh(x)
    ref = np.tanh(x.astype(np.float64)).astype(np.float32)
    assert _ulps(y, ref).max() <= ULP
    special = np.resize(np.array([np.nan, np.inf, -np.inf, 0.0, -0.0, 1e-40, -1e-40, 9.0, -9.0, 100, -100, 0.625,
                                  -0.625, 0.6249], np.float32), N)
    got = _fastmath.tanh(special)
    inplace = special.copy()
    assert _fastmath.tanh(inplace, out=inplace) is inplace and np.array_equal(inplace, got, equal_nan=True)
    assert np.isnan(got[np.isnan(special)]).all() and np.array_equal(np.signbit(got), np.signbit(special))
    if _fastmath.FAST:      # +-1 from |x| = 9 on (libm's float32 tanh rounds there a little later)
        assert (got[special >= 9] == 1).all() and (got[special <= -9] == -1).all()
    assert np.array_equal(got[np.abs(special) < 1e-30], special[np.abs(special) < 1e-30])


@pytest.mark.parametrize("layer", ["LSTM", "GRU", "RNN"])
def test_recurrent_layers_and_tanh_agree_with_numpys_tanh(layer, monkeypatch):
    """The recurrent kernels' tanh on the AVX2 loop: outputs and gradients as with NumPy's tanh (to float32
    rounding), at sizes that take it (a batch of 16 by 160 hidden units: 2560 elements a step)."""
    def run():
        tl.manual_seed(0)
        m = getattr(tl.nn, layer)(24, 160, num_layers=1)
        x = tl.tensor(np.random.default_rng(4).standard_normal((5, 16, 24)).astype(np.float32), requires_grad=True)
        out, _ = m(x)
        (out * out).sum().backward()
        t = tl.tensor(np.random.default_rng(5).standard_normal((64, 160)).astype(np.float32) * 3).tanh()
        return out.detach().numpy(), x.grad.numpy(), m.weight_hh_l0.grad.numpy(), t.numpy()
    fast = run()
    monkeypatch.setattr(_fastmath, "FAST", False)
    slow = run()
    for a, b in zip(fast, slow):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def _layer_norm_numpy(monkeypatch, *args):
    """LAYER_NORM's kernel (or its backward's) by NumPy's path: the C loops turned off for the call."""
    from tensorlib.ops import norm_ops
    with monkeypatch.context() as m:
        m.setattr(norm_ops, "_fast_layer_norm", lambda *a: None)
        m.setattr(norm_ops, "_fast_layer_norm_backward", lambda *a: None)
        op, *rest = args
        return op.kernel(np, *rest[:-1], **rest[-1])


@pytest.mark.parametrize("shape,k,dtype", [((4, 16, 32), 1, np.float32), ((3, 5), 1, np.float64),
                                           ((2, 3, 4, 5), 2, np.float32), ((6, 7), 2, np.float64),
                                           ((5, 1), 1, np.float32)])
@pytest.mark.parametrize("affine", ["both", "weight", "none"])
def test_layer_norm_loops_match_numpys_path(shape, k, dtype, affine, monkeypatch):
    """layer_norm's forward and backward by tensorlib._cmath's loops over rows give NumPy's path's values (sums in
    double there, in the array's dtype here: within float32 rounding), shapes and dtypes, every gradient subset."""
    from tensorlib.ops.norm_ops import LAYER_NORM, LAYER_NORM_BACKWARD
    if _fastmath._LN is None:
        pytest.skip("tensorlib._cmath is not built (TENSORLIB_NATIVE=0, or not Linux): NumPy's path alone runs")
    rng = np.random.default_rng(1)
    x = (rng.standard_normal(shape) * 3 + 1).astype(dtype)
    tail = shape[len(shape) - k:]
    w = rng.standard_normal(tail).astype(dtype) if affine != "none" else None
    b = rng.standard_normal(tail).astype(dtype) if affine == "both" else None
    g = rng.standard_normal(shape).astype(dtype)
    tol = dict(rtol=2e-5, atol=2e-5) if dtype == np.float32 else dict(rtol=1e-12, atol=1e-12)
    attrs = {"normalized_shape": tail, "eps": 1e-5}
    fast = LAYER_NORM.kernel(np, x, w, b, **attrs)
    ref = _layer_norm_numpy(monkeypatch, LAYER_NORM, x, w, b, attrs)
    assert fast[0].flags.c_contiguous
    for a, r in zip(fast, ref):
        assert a.shape == r.shape and a.dtype == r.dtype
        np.testing.assert_allclose(a, r, **tol)
    mu, rstd = ref[1], ref[2]
    for need in [(True, True, True), (True, False, False), (False, True, True), (False, False, True)]:
        need = (need[0], need[1] and w is not None, need[2] and b is not None)
        battrs = {"k": k, "need": need}
        fast = LAYER_NORM_BACKWARD.kernel(np, g, x, mu, rstd, w, **battrs)
        ref = _layer_norm_numpy(monkeypatch, LAYER_NORM_BACKWARD, g, x, mu, rstd, w, battrs)
        for a, r, wanted in zip(fast, ref, need):
            assert a.shape == r.shape and a.dtype == r.dtype
            if wanted:
                np.testing.assert_allclose(a, r, **tol)
            else:
                assert a.shape == () and a == 0


def test_layer_norm_loops_leave_other_arrays_to_numpy():
    """Where the loops do not apply (a strided input, float16, an array past LN_MAX, a weight of another dtype or
    layout) _fastmath says so (None) and NumPy's path runs; the op's results are right either way."""
    x = np.ones((4, 8), np.float32)
    w = np.ones(8, np.float32)
    assert _fastmath.layer_norm(x.T.copy().T, w, None, 1, 1e-5) is None
    assert _fastmath.layer_norm(x.astype(np.float16), None, None, 1, 1e-5) is None
    assert _fastmath.layer_norm(np.ones((2, _fastmath.LN_MAX), np.float32), None, None, 1, 1e-5) is None
    assert _fastmath.layer_norm(x, w.astype(np.float64), None, 1, 1e-5) is None
    assert _fastmath.layer_norm(x, np.ones(16, np.float32)[::2], None, 1, 1e-5) is None
    assert _fastmath.layer_norm_backward(x.T.copy().T, x, x[:, :1], x[:, :1], None, 1, (True, False, False)) is None
    xt = tl.tensor(np.arange(32, dtype=np.float32).reshape(8, 4)).t()
    y = tl.nn.functional.layer_norm(xt, (8,))
    np.testing.assert_allclose(y.numpy().mean(-1), 0, atol=1e-6)
    np.testing.assert_allclose(y.numpy().std(-1), 1, atol=1e-3)


@pytest.mark.parametrize("n", [7, 8, 1000, _fastmath.MIN_SIZE * 3 + 5])
def test_gelu_loops_give_numpys_values(n, monkeypatch):
    """Exact GELU's float32 forward and backward by tensorlib._cmath's loops (normal_cdf32's steps per element, 8
    lanes with AVX2) against NumPy's 28-pass path: the forward to the bit, NaN, infinities and the clipped tails
    included; the backward to the bit where both take the vector exp (MIN_SIZE elements on), within 2 ulp of the
    pdf term elsewhere."""
    from tensorlib.ops import activation
    if _fastmath._GELU is None:
        pytest.skip("tensorlib._cmath is not built (TENSORLIB_NATIVE=0, or not Linux): NumPy's path alone runs")
    rng = np.random.default_rng(2)
    special = np.array([np.nan, np.inf, -np.inf, 0.0, -0.0, 1e30, -1e30, 6.4, -6.4, 13.3, -13.3, 40, -40], np.float32)
    x = np.concatenate([special, (rng.standard_normal(n) * 4).astype(np.float32)])[:max(n, 1)]
    g = rng.standard_normal(x.size).astype(np.float32)
    fast_y = activation.GELU.kernel(np, x)
    fast_g = activation.GELU_BACKWARD.kernel(np, g, x)
    monkeypatch.setattr(activation, "_fast_gelu", lambda *a: None)
    monkeypatch.setattr(activation, "_fast_gelu_backward", lambda *a: None)
    with np.errstate(all="ignore"):
        ref_y = activation.GELU.kernel(np, x)
        ref_g = activation.GELU_BACKWARD.kernel(np, g, x)
    assert fast_y.dtype == ref_y.dtype == np.float32 and fast_y.shape == x.shape
    assert np.array_equal(fast_y, ref_y, equal_nan=True)
    assert np.array_equal(np.isnan(fast_g), np.isnan(ref_g))
    if x.size >= _fastmath.MIN_SIZE and _fastmath.FAST:
        assert np.array_equal(fast_g, ref_g, equal_nan=True)
    else:
        ok = ~np.isnan(ref_g)
        np.testing.assert_allclose(fast_g[ok], ref_g[ok], rtol=3e-7, atol=1e-7)


def test_gelu_loops_leave_other_arrays_to_numpy():
    """float64, float16, strided and 0-d inputs, and the tanh approximation, take NumPy's path; the op's results
    agree with the float64 formula either way."""
    assert _fastmath.gelu(np.ones(4), None, None, 1.0) is None
    assert _fastmath.gelu(np.ones(8, np.float32)[::2], None, None, 1.0) is None
    assert _fastmath.gelu_backward(np.ones(4, np.float32), np.ones(4, np.float16), None, None, 1.0) is None
    import math
    x = np.linspace(-5, 5, 41)
    ref = x * 0.5 * (1 + np.array([math.erf(v / math.sqrt(2)) for v in x]))
    for dt in (np.float16, np.float32, np.float64):
        t = tl.tensor(x.astype(dt))
        for arr in (t, t[::2], t[3]):
            got = tl.nn.functional.gelu(arr).numpy().astype(np.float64)
            want = ref if arr is t else ref[::2] if arr.ndim else ref[3]
            np.testing.assert_allclose(got, want, rtol=2e-3 if dt == np.float16 else 1e-6, atol=2e-3)


@pytest.mark.parametrize("L,N,H", [(5, 4, 16), (1, 2, 3), (3, 8, 40)])
@pytest.mark.parametrize("reverse", [False, True])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_lstm_step_loops_match_numpys_loop(L, N, H, reverse, dtype, monkeypatch):
    """An LSTM layer's loops with a C call per step (tensorlib._cmath.lstm_step after each product, float32 on AVX2;
    lstm_step_backward before each, float32/float64) against the NumPy loops: the forward's states within float32
    rounding (the tanh is the AVX2 loop's, NumPy's own below 2048 elements: a few ulp apart), the backward's
    gradients from the same saved states the same to the bit (the same operations); a transposed output gradient,
    given or absent h/c gradients, short loops (W_hh's view, halved products) and long ones."""
    from tensorlib.ops import recurrent
    from tensorlib.ops.recurrent import LSTM_LAYER, LSTM_LAYER_BACKWARD
    if _fastmath._M is None:
        pytest.skip("tensorlib._cmath is not built (TENSORLIB_NATIVE=0, or not Linux): the NumPy loops alone run")
    rng = np.random.default_rng(4)
    xg = rng.standard_normal((L, N, 4 * H)).astype(dtype)
    h0, c0 = rng.standard_normal((N, H)).astype(dtype), rng.standard_normal((N, H)).astype(dtype)
    w_hh, b_hh = (rng.standard_normal((4 * H, H)) * 0.3).astype(dtype), rng.standard_normal(4 * H).astype(dtype)
    fast = LSTM_LAYER.kernel(np, xg, h0, c0, w_hh, b_hh, reverse=reverse)
    g_out = np.ascontiguousarray(rng.standard_normal((N, L, H)).astype(dtype)).transpose(1, 0, 2)   # (L, N, H), strided
    g_h = rng.standard_normal((N, H)).astype(dtype)
    out, _, _, acts, cs = fast
    back = [LSTM_LAYER_BACKWARD.kernel(np, go, gh, None, h0, c0, w_hh, out, acts, cs, reverse=reverse)
            for go, gh in ((g_out, g_h), (None, None))]
    monkeypatch.setattr(recurrent, "_fast_lstm_step", None)
    monkeypatch.setattr(recurrent, "_fast_lstm_back", None)
    ref = LSTM_LAYER.kernel(np, xg, h0, c0, w_hh, b_hh, reverse=reverse)
    for a, r in zip(fast, ref):
        assert a.shape == r.shape and a.dtype == r.dtype
        np.testing.assert_allclose(a, r, rtol=1e-5, atol=1e-6)
    ref_back = [LSTM_LAYER_BACKWARD.kernel(np, go, gh, None, h0, c0, w_hh, out, acts, cs, reverse=reverse)
                for go, gh in ((g_out, g_h), (None, None))]
    for got, want in zip(back, ref_back):
        for a, r in zip(got, want):
            assert a.shape == r.shape and a.dtype == r.dtype and np.array_equal(a, r)


def _addcdiv_numpy(a, t1, t2, value):
    """addcdiv_'s three NumPy passes (torch's order, no FMA), the reference the one-pass loop must equal to the bit."""
    r = np.multiply(t1, value)
    r = r / t2
    return a + r


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_addcdiv_in_one_pass_gives_numpy_three_passes_bit_for_bit(dtype):
    from tensorlib.ops.optim_ops import ADDCDIV_
    rng = np.random.default_rng(3)
    n = _fastmath.MIN_SIZE * 3 + 5
    ran = []
    for value in (0.1, -3.7e-5, 1, 7, 1e30, -2.5):
        a, t1 = rng.standard_normal(n).astype(dtype), rng.standard_normal(n).astype(dtype)
        t2 = (rng.random(n) + 0.05).astype(dtype)
        t2[:3] = (0.0, np.inf, np.nan)
        with np.errstate(all="ignore"):
            want = _addcdiv_numpy(a, t1, t2, value)
            got = a.copy()
            ran.append(_fastmath.addcdiv_(got, t1, t2, value))
            if ran[-1]:                                      # (declined without the extension: got untouched)
                np.testing.assert_array_equal(got, want)
            got = a.copy()
            ADDCDIV_.kernel(np, got, t1, t2, value=value)    # the kernel optimizers and Tensor.addcdiv_ run
            np.testing.assert_array_equal(got, want)
            same = a.copy()                                  # a.addcdiv_(a, a): each operand a itself
            ADDCDIV_.kernel(np, same, same, same, value=value)
            np.testing.assert_array_equal(same, _addcdiv_numpy(a, a, a, value))
    assert all(ran) == (_fastmath._ADDCDIV is not None)      # where the extension is built, the loop ran


def test_addcdiv_leaves_what_it_does_not_take_to_numpy():
    """Small, strided, integer-valued beyond 2**24, NumPy-scalar-valued or partly overlapping operands: addcdiv_
    says False (NumPy's passes run) and the kernel's values are still NumPy's; addcmul_'s fused kernel takes an
    overlapping operand through NumPy's emulation of the fused result."""
    from tensorlib.ops.optim_ops import ADDCDIV_, ADDCMUL_
    n = _fastmath.MIN_SIZE * 2
    a, t = np.ones(n, np.float32), np.full(n, 3.0, np.float32)
    assert not _fastmath.addcdiv_(a[:10], t[:10], t[:10], 0.5)
    assert not _fastmath.addcdiv_(np.ones(2 * n, np.float32)[::2], t, t, 0.5)
    assert not _fastmath.addcdiv_(a, t, t, 1 << 30)
    assert not _fastmath.addcdiv_(a, t, t, np.float64(0.5))
    assert not _fastmath.addcdiv_(a.astype(np.float16), t.astype(np.float16), t.astype(np.float16), 0.5)
    buf = np.arange(n + 8, dtype=np.float32) + 1
    a2, shifted = buf[:n], buf[8:]                             # t1 overlaps a, shifted by 8 elements
    want = _addcdiv_numpy(a2, shifted, shifted, 0.5)
    assert not _fastmath.addcdiv_(a2, shifted, shifted, 0.5)
    ADDCDIV_.kernel(np, a2, shifted.copy(), shifted.copy(), value=0.5)
    np.testing.assert_array_equal(a2, want)
    buf = np.arange(n + 8, dtype=np.float32)
    a2, shifted = buf[:n], buf[8:]
    want = _fastmath.fma(_fastmath.FMA_ADDCMUL, a2.copy(), shifted.copy(), shifted.copy(), 0.5)
    ADDCMUL_.kernel(np, a2, shifted, shifted, value=0.5)       # (fma's loop refuses the overlap: NumPy's emulation)
    np.testing.assert_array_equal(a2, want)


def _fused_exact(kind, a, b, c, s):
    """The fused results computed exactly (fractions) and rounded once to a's dtype (float64: Python's float();
    float32: via float64, a double rounding that differs from one only on float32 ties, none in these draws)."""
    from fractions import Fraction as Fr
    f = a.dtype.type
    sv = Fr(float(f(s)))
    out = []
    for x, y, z in zip(a.tolist(), b.tolist(), (c if c is not None else a).tolist()):
        if kind == _fastmath.FMA_ADD:
            r = Fr(x) + sv * Fr(y)
        elif kind == _fastmath.FMA_ADDCMUL:
            r = Fr(x) + Fr(float(f(y) * f(s))) * Fr(z)
        else:
            d = Fr(float(f(y) - f(x)))
            r = Fr(x) + sv * d if abs(float(f(s))) < 0.5 else Fr(y) + Fr(float(f(s) - f(1))) * d
        out.append(float(r))
    return np.array(out).astype(a.dtype)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("kind", [0, 1, 2], ids=["add", "lerp", "addcmul"])
def test_fma_rounds_once_as_torchs_fused_kernels(dtype, kind):
    """_fastmath.fma (tensorlib/_cmath.c's fused loop, and NumPy's emulation where the loop does not apply: strided
    operands) gives the exactly computed result rounded once, as torch's vec::fmadd kernels (add with alpha,
    lerp's two sides, addcmul); the ops' kernels, out of place and in place, give the same."""
    from tensorlib.ops.arithmetic import ADD, ADD_, SUB
    from tensorlib.ops.optim_ops import ADDCMUL, ADDCMUL_, LERP, LERP_
    rng = np.random.default_rng(kind)
    n = 301
    for s in (-0.0123, 0.1, 0.7, -0.9, 3, 1e-30):
        a, b = rng.standard_normal(n).astype(dtype), rng.standard_normal(n).astype(dtype)
        c = rng.standard_normal(n).astype(dtype) if kind == 2 else None
        want = _fused_exact(kind, a, b, c, s)
        if dtype == np.float64 and _fastmath._FMA is None:     # (no loop: NumPy's two roundings, as documented)
            want = _fastmath._fma_numpy(kind, a, b, c, s)
        got = _fastmath.fma(kind, a, b, c, s)
        np.testing.assert_array_equal(got, want)
        strided = [np.repeat(x, 2)[::2] for x in (a, b) + ((c,) if c is not None else ())]
        np.testing.assert_array_equal(_fastmath.fma(kind, *strided[:2], strided[2] if c is not None else None, s),
                                      want if dtype == np.float32 else _fastmath._fma_numpy(kind, a, b, c, s))
        x = a.copy()
        if kind == 0:
            np.testing.assert_array_equal(ADD.kernel(np, a, b, alpha=s), want)
            np.testing.assert_array_equal(SUB.kernel(np, a, b, alpha=-s), want)
            ADD_.kernel(np, x, b, s)
        elif kind == 1:
            np.testing.assert_array_equal(LERP.kernel(np, a, b, s), want)
            LERP_.kernel(np, x, b, s)
        else:
            np.testing.assert_array_equal(ADDCMUL.kernel(np, a, b, c, value=s), want)
            ADDCMUL_.kernel(np, x, b, c, value=s)
        np.testing.assert_array_equal(x, want)
    assert _fastmath.fma(kind, a.tolist(), b, c, 0.5) is None       # (not arrays: the caller's formula)


@pytest.mark.parametrize("name", ["sqrt", "exp", "log", "tanh", "sigmoid"])
@pytest.mark.parametrize("dtype", ["float32", "float64", "float16", "complex64"])
def test_in_place_unary_ops_written_straight_into_their_input_equal_the_out_of_place_ones(name, dtype):
    """sqrt_, exp_, log_, tanh_ and sigmoid_ write a float or complex tensor's result into it (ops._define's
    `into`): the out-of-place op's values to the bit, for 0-d, small, large (the AVX2 loops'), non-contiguous
    tensors."""
    rng = np.random.default_rng(5)
    for shape in ((), (7,), (3, _fastmath.MIN_SIZE), (64, 80)):
        x = tl.tensor((rng.random(shape) + 0.25).astype(np.float32)).to(getattr(tl, dtype))
        for t in ((x, x.t()) if len(shape) == 2 else (x,)):
            if name == "sigmoid" and dtype == "complex64":
                continue
            want = getattr(t, name)()
            got = t.clone() if t.is_contiguous() else t.t().clone().t()   # the same strides as t
            assert got.is_contiguous() == t.is_contiguous()
            assert getattr(got, name + "_")() is got
            np.testing.assert_array_equal(got.numpy(), want.numpy())


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("n", [0, 1, 17, 4099])
def test_threshold_backward_is_torchs_select_bit_for_bit(dtype, n):
    """where(y <= t, 0, g) in one branchless pass: a NaN y passes g, an inf or NaN g where y <= t gives +0, -0.0
    gradients kept where y > t; thresholds other than 0 included."""
    if _fastmath._THRESHOLD_BWD is None:
        pytest.skip("the C extension is not built here")
    rng = np.random.default_rng(n)
    g = rng.standard_normal(n).astype(dtype)
    y = rng.standard_normal(n).astype(dtype)
    if n >= 17:
        y[:4] = np.nan
        g[4:8] = [np.inf, -np.inf, np.nan, -0.0]
        y[4:8] = [-1, 1, -1, 1]
    for t in (0, 0.25, -1):
        out = _fastmath.threshold_backward(g, y, t)
        ref = np.where(y <= t, dtype(0), g)
        assert out.dtype == dtype and out.tobytes() == ref.tobytes()


def test_threshold_backward_op_takes_every_layout_with_torchs_values():
    """The op's other paths (a strided gradient, float16) give the C loop's values: torch's select."""
    from tensorlib.ops.activation import THRESHOLD_BACKWARD
    g = np.array([[1.0, np.inf, np.nan, -0.0], [2.0, 3.0, 4.0, 5.0]], np.float32)
    y = np.array([[-1.0, -1.0, -1.0, 1.0], [np.nan, 0.0, 1.0, -2.0]], np.float32)
    ref = np.where(y <= 0, np.float32(0), g)
    for gg, yy in ((g, y), (np.asfortranarray(g), np.asfortranarray(y)), (g.astype(np.float16), y.astype(np.float16))):
        out = THRESHOLD_BACKWARD.kernel(np, gg, yy, threshold=0)
        assert out.dtype == gg.dtype and out.shape == gg.shape
        np.testing.assert_array_equal(out.astype(np.float32), ref)
        assert np.signbit(out[0, 3])      # -0.0 where y > 0: g itself


@pytest.mark.parametrize("dtype", [np.int8, np.float32, np.float64, np.complex128])
def test_copy_walks_any_strides_as_copyto(dtype):
    """_fastmath.copy_ against np.copyto: a windows view (conv's im2col), reversed and transposed views, 0-d."""
    if _fastmath._COPY is None:
        pytest.skip("the C extension is not built here")
    x = (np.arange(2 * 3 * 9 * 8) % 251).astype(dtype).reshape(2, 3, 9, 8)
    win = np.lib.stride_tricks.sliding_window_view(x, (3, 3), axis=(2, 3)).transpose(0, 1, 4, 5, 2, 3)
    for src in (win, x[:, ::-1, ::2, ::-3], x.transpose(3, 1, 0, 2), x[0, 0, 0, 0:0], np.asarray(x[1, 2, 3, 4])):
        dst = np.zeros(src.shape, dtype)
        _fastmath.copy_(dst, src)
        np.testing.assert_array_equal(dst, src)
        view = np.zeros(src.shape + (2,), dtype)[..., 1]            # a strided destination
        _fastmath.copy_(view, src)
        np.testing.assert_array_equal(view, src)
    dst = np.zeros((3, 4), np.float32)
    _fastmath.copy_(dst, np.arange(4, dtype=np.float32))             # not one shape: np.copyto's broadcast
    assert (dst == np.arange(4)).all()
    with pytest.raises(ValueError):
        _fastmath._COPY(np.zeros(3), np.zeros(3, np.float32))         # the C function refuses another dtype


def test_float32_to_bfloat16_rounds_as_ml_dtypes_bit_for_bit():
    """The C loop against ml_dtypes' cast over a sweep of every 65521st bit pattern (NaNs, infinities, subnormals,
    ties to even included), and the fallbacks: small, strided and other dtypes go to astype."""
    import ml_dtypes
    if _fastmath._F2BF is None:
        pytest.skip("the C extension is not built here")
    bits = np.arange(0, 1 << 32, 65521, dtype=np.uint64).astype(np.uint32)
    special = np.array([0x7fc00001, 0xffc00000, 0x7f800001, 0xff800001, 0x7fffffff, 0x7f800000, 0xff800000, 1,
                        0x807fffff, 0x3f808000, 0x3f818000, 0x7f7fffff, 0x7f7f8000, 0, 0x80000000], np.uint32)
    for a in (bits.view(np.float32), np.resize(special, _fastmath.MIN_SIZE).view(np.float32)):
        with np.errstate(invalid="ignore"):
            want = a.astype(ml_dtypes.bfloat16)
        got = _fastmath.astype(a, ml_dtypes.bfloat16)
        assert got.dtype == want.dtype and got.view(np.uint16).tobytes() == want.view(np.uint16).tobytes()
    small = np.float32([1.00390625, -3.5])
    assert _fastmath.astype(small, ml_dtypes.bfloat16).tolist() == small.astype(ml_dtypes.bfloat16).tolist()
    x = np.arange(3 * _fastmath.MIN_SIZE, dtype=np.float32) / 7
    assert _fastmath.astype(x[::3], ml_dtypes.bfloat16).tobytes() == x[::3].astype(ml_dtypes.bfloat16).tobytes()
    assert _fastmath.astype(x, np.float64).dtype == np.float64


def test_exp_and_tanh_take_numpys_where_numpy_vectorises(monkeypatch):
    """Routing: the C loops only where they are built and NumPy's own exp is scalar; far outside the vector range
    (masked attention scores) the C loop gives libm's 0 and inf without calling it."""
    assert ROUTED == (_fastmath.FAST and not _fastmath._numpy_vectorises())
    x = np.resize(np.float32([0.5, -3.0, -1e9, -np.inf, 1e9, np.inf, -105.0, 90.0, 2.0]), N)
    with np.errstate(over="ignore"):
        monkeypatch.setattr(_fastmath, "VECTOR_LOOPS", False)
        assert np.array_equal(_fastmath.exp(x), np.exp(x)) and np.array_equal(_fastmath.tanh(x), np.tanh(x))
        if _fastmath.FAST:
            monkeypatch.setattr(_fastmath, "VECTOR_LOOPS", True)
            y = _fastmath.exp(x)
            assert (y[x < -104] == 0).all() and np.isposinf(y[x > 89]).all()


@pytest.mark.parametrize("with_bias", [True, False])
def test_lstm_step_makes_the_input_projection_itself_bit_for_bit(with_bias):
    """lstm_step's 9th argument: x as the raw projection and b_hh (or None), (x + b_hh) * half made in the loop,
    against the loop's own xs prepared as LSTM_LAYER's NumPy path prepares it: the same values to the bit."""
    if not _fastmath.FAST:
        pytest.skip("the LSTM step loop needs the C extension and AVX2")
    from tensorlib.ops.recurrent import _gate_consts
    rng = np.random.default_rng(7)
    N, H = 5, 24
    gates = rng.standard_normal((N, 4 * H)).astype(np.float32)
    x = rng.standard_normal((N, 4 * H)).astype(np.float32)
    b = rng.standard_normal(4 * H).astype(np.float32) if with_bias else None
    c = rng.standard_normal((N, H)).astype(np.float32)
    half, _ = _gate_consts(np, np.float32, H)
    xs = (x + b if with_bias else x.copy()) * half
    outs = []
    for args in ((xs,), (x, b)):
        acts, c_out, h_out = np.empty_like(gates), np.empty_like(c), np.empty_like(c)
        _fastmath.lstm_step(gates, args[0], True, acts, c, c_out, h_out, H, *args[1:])
        outs.append((acts, c_out, h_out))
    for a, r in zip(*outs):
        assert a.tobytes() == r.tobytes()
    with pytest.raises(ValueError, match="bias of 4H"):
        _fastmath.lstm_step(gates, x, True, np.empty_like(gates), c, np.empty_like(c), np.empty_like(c), H,
                            np.zeros(3, np.float32))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", [(512, 128), (37, 5), (1, 7), (130, 67), (0, 3), (200, 1)])
def test_transposed_is_numpys_transposed_copy(dtype, shape):
    """transposed (the recurrent layers' W_hh^T copy, tiled in tensorlib/_cmath.c) gives NumPy's contiguous copy of
    (w * scale[:, None]).T to the bit, across tile and block edges; None for what it does not take."""
    if _fastmath._M is None:
        pytest.skip("tensorlib._cmath is not built (TENSORLIB_NATIVE=0, or not Linux): NumPy's copy runs")
    rng = np.random.default_rng(1)
    w = rng.standard_normal(shape).astype(dtype)
    scale = rng.choice([0.5, 1.0, 3.0], shape[0]).astype(dtype)
    got = _fastmath.transposed(w, scale)
    want = np.ascontiguousarray((w * scale[:, None]).T)
    assert got.flags.c_contiguous and got.dtype == want.dtype and np.array_equal(got, want)
    assert np.array_equal(_fastmath.transposed(w), w.T)
    assert w.T.flags.c_contiguous or _fastmath.transposed(w.T) is None     # (a strided view: not taken)
    assert _fastmath.transposed(w.astype(np.float16)) is None
    assert _fastmath.transposed(w, scale.astype(np.float16 if dtype == np.float32 else np.float32)) is None


def test_packed_products_are_the_products():
    """_blas.pack / packed_matmul (a recurrent loop's W_hh packed once by MKL's cblas_?gemm_pack) give the product
    a @ B within GEMM rounding, B read as a transposed view or as it is, into `out` or not; None where they do not
    apply (a product that does not go to MKL, another row count or dtype, an `out` that overlaps)."""
    from tensorlib import _blas
    if not _blas.available() or not _blas._PACK:
        pytest.skip("MKL's packed GEMM is not loaded here (no mkl wheel, or not chosen for this CPU: see _blas)")
    rng = np.random.default_rng(2)
    for dt, tol in ((np.float32, 1e-5), (np.float64, 1e-12)):
        w = rng.standard_normal((512, 128)).astype(dt)
        for b in (w.T, np.ascontiguousarray(w.T)):
            a = rng.standard_normal((100, b.shape[0])).astype(dt)
            p = _blas.pack(b, 100)
            assert p is not None
            np.testing.assert_allclose(_blas.packed_matmul(a, p), a @ b, rtol=tol, atol=tol * 10)
            out = np.empty((100, b.shape[1]), dt)
            assert _blas.packed_matmul(a, p, out) is out
            np.testing.assert_allclose(out, a @ b, rtol=tol, atol=tol * 10)
            assert _blas.packed_matmul(a[:50], p) is None and _blas.packed_matmul(a.astype(np.float16), p) is None
            assert _blas.packed_matmul(a, p, out=a[:, :0]) is None
        assert _blas.pack(w[:4, :4], 2) is None         # a small product: np.matmul's


@pytest.mark.parametrize("L,N,H", [(5, 4, 16), (3, 8, 40), (4, 20, 64)])
def test_lstm_c_step_with_numpys_tanh_is_numpys_loop(L, N, H, monkeypatch):
    """Where NumPy vectorises tanh (_fastmath.VECTOR_LOOPS off), the C step runs its two tanh passes by np.tanh: the
    forward is then the NumPy loop's to the bit, states and activations included."""
    from tensorlib.ops import recurrent
    from tensorlib.ops.recurrent import LSTM_LAYER
    if recurrent._fast_lstm_step is None or not _fastmath.FAST:
        pytest.skip("the C LSTM step needs tensorlib._cmath on an AVX2 CPU")
    monkeypatch.setattr(_fastmath, "VECTOR_LOOPS", False)
    rng = np.random.default_rng(5)
    xg = rng.standard_normal((L, N, 4 * H)).astype(np.float32)
    h0, c0 = rng.standard_normal((N, H)).astype(np.float32), rng.standard_normal((N, H)).astype(np.float32)
    w_hh = (rng.standard_normal((4 * H, H)) * 0.3).astype(np.float32)
    b_hh = rng.standard_normal(4 * H).astype(np.float32)
    fast = LSTM_LAYER.kernel(np, xg, h0, c0, w_hh, b_hh)
    monkeypatch.setattr(recurrent, "_fast_lstm_step", None)
    ref = LSTM_LAYER.kernel(np, xg, h0, c0, w_hh, b_hh)
    assert all(np.array_equal(a, r) for a, r in zip(fast, ref))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_clip_norms_and_scale_are_the_kernels_bit_for_bit(dtype):
    """clip_grad_norm_'s loops (_fastmath.clip_norms / clip_scale: NumPy's pairwise sum of the squares, the sqrt;
    the in-place product) against NORM's and mul_'s kernels, over sizes around the pairwise sum's blocks (8, 128,
    its halvings), multi-dimensional layouts, an empty array, special values and magnitudes; what they do not take
    (another dtype, a strided or read-only array) returns False with nothing written."""
    from tensorlib.ops.arithmetic import MUL_
    from tensorlib.ops.reduce import NORM
    if _fastmath.ADAM is None:
        pytest.skip("tensorlib._cmath's array loops are not built (TENSORLIB_NATIVE=0 or no compiler)")
    rng = np.random.default_rng(4)
    sizes = list(range(0, 300)) + [511, 512, 513, 1000, 1023, 1024, 1025, 4097, 8191, 8192, 8193, 65537, 200003]
    arrays = []
    for k, n in enumerate(sizes):
        a = (rng.standard_normal(n) * 10.0 ** rng.integers(-4, 5)).astype(dtype)
        arrays.append(a.reshape(-1, 3) if n % 3 == 0 and n else a.reshape(1, -1, 1) if k % 5 == 0 else a)
    arrays[7][2] = np.inf
    arrays[9][1] = np.nan
    arrays[11][:] = -0.0
    out, times = np.empty(len(arrays), dtype), np.zeros(2 * len(arrays), np.int64)
    assert _fastmath.clip_norms(arrays, out, times)
    want = np.array([NORM.kernel(np, a, p=2) for a in arrays], dtype)
    np.testing.assert_array_equal(out.view(np.uint8), want.view(np.uint8))      # (the bits: NaN, -0.0 alike)
    assert (times[1::2] >= times[::2]).all() and (times[2::2] >= times[1:-1:2]).all()
    coef = np.array(0.37, dtype)
    scaled = [a.copy() for a in arrays]
    assert _fastmath.clip_scale(scaled, coef)
    for a, s in zip(arrays, scaled):
        ref = a.copy()
        MUL_.kernel(np, ref, coef)
        np.testing.assert_array_equal(s.view(np.uint8), ref.view(np.uint8))
    other = np.float64 if dtype is np.float32 else np.float32
    for bad in ([arrays[3].astype(other)], [np.arange(20, dtype=dtype)[::2]]):
        kept = [b.copy() for b in bad]
        assert not _fastmath.clip_norms(bad, out, None)
        assert not _fastmath.clip_scale(bad, coef)
        assert all(np.array_equal(b, k) for b, k in zip(bad, kept))
    ro = arrays[40].copy()
    ro.flags.writeable = False
    assert _fastmath.clip_norms([ro], out[:1], None) and not _fastmath.clip_scale([ro], coef)
    assert not _fastmath.clip_norms(arrays, out[:3], None)          # an output of the wrong length
    # the empty steps' times before each product (clip_grad_norm_'s `to` regions), and stamps() for n such steps
    steps, times = np.zeros(2 * len(arrays), np.int64), np.zeros(2 * len(arrays), np.int64)
    assert _fastmath.clip_scale([a.copy() for a in arrays], coef, times, steps)
    both = np.stack([steps.reshape(-1, 2), times.reshape(-1, 2)], 1).ravel()      # to, mul_, to, mul_, ...
    assert (both[1:] >= both[:-1]).all() and both[0] > 0
    st = np.zeros(6, np.int64)
    assert _fastmath.stamps(st) and (st[1:] >= st[:-1]).all() and st[0] > 0
    assert not _fastmath.stamps(np.zeros(6, np.int32)) and not _fastmath.clip_scale(arrays, coef, times, st)


def test_log_softmax_rows_match_float64_and_numpys_special_rows():
    """log_softmax over long float32 rows in C (_fastmath.log_softmax_rows, no array of exponentials): within
    float32 rounding of float64's log_softmax over row lengths around its vector widths and a language model's
    vocabulary; a row with a NaN, an infinite max (+inf, or all -inf) is all NaN as NumPy's path gives it, a row
    with -inf entries among finite ones gives -inf there; the op takes it for its float32 rows (not float64)."""
    from tensorlib.ops import nn_ops
    if _fastmath._LOG_SOFTMAX is None:
        pytest.skip("no AVX2/FMA vector path here (or TENSORLIB_NATIVE=0): log_softmax runs NumPy's")
    rng = np.random.default_rng(8)
    for n in (8, 9, 15, 16, 31, 32, 33, 63, 64, 100, 257, 1000, 32000):
        x = (rng.standard_normal((5, n)) * 4).astype(np.float32)
        x[1] *= 30                                       # scores from -500 to 500: most exponentials underflow
        x[2, :3] = -np.inf
        got = _fastmath.log_softmax_rows(x)
        ref = x.astype(np.float64) - x.max(1, keepdims=True)
        ref -= np.log(np.exp(ref).sum(1, keepdims=True))
        fin = np.isfinite(ref)
        assert np.abs(got[fin] - ref[fin]).max() < 4e-7 * max(1.0, np.abs(ref[fin]).max())
        assert (got[~fin] == -np.inf).all() and (~fin).sum() == 3
        np.testing.assert_array_equal(nn_ops._log_softmax_k(np, x, 1), got)     # the op's kernel takes it
    special = np.zeros((4, 40), np.float32)
    special[0, 5] = np.nan
    special[1, 7] = np.inf
    special[2] = -np.inf
    special[3, 39] = np.nan                              # (in the scalar tail)
    with np.errstate(invalid="ignore"):
        want = special - special.max(1, keepdims=True)
        want = want - np.log(np.exp(want).sum(1, keepdims=True))
    assert np.isnan(want).all() and np.isnan(_fastmath.log_softmax_rows(special)).all()
    assert _fastmath.log_softmax_rows(x.astype(np.float64)) is None
    assert _fastmath.log_softmax_rows(np.asfortranarray(x)) is None and _fastmath.log_softmax_rows(x[:, :4]) is None
    t = tl.tensor(rng.standard_normal((3, 4, 50)).astype(np.float32))
    assert np.abs(tl.nn.functional.log_softmax(t, -1).exp().sum(-1).numpy() - 1).max() < 1e-6


def test_softmax_rows_match_float64_and_attentions_two_paths_agree_bit_for_bit():
    """softmax over float32 rows in C (_fastmath.softmax_rows, torch's steps: devtools/torch_compat checks its bits
    against torch's): within float32 rounding of float64's, exactly 0 where
    the score is -inf or far below the max; NaN rows as NumPy's path (a NaN, a +inf, all -inf), or 0 for all -inf
    rows with dead_zero, in place too. Attention's forward outside a profile (_fused, dead_zero in place) and inside
    one (_math: softmax's kernel, then _safe_softmax's zeros) give the same bits, masked, causal or with dropout."""
    from tensorlib.ops import attention as A
    from tensorlib.ops import nn_ops
    if _fastmath._SOFTMAX is None:
        pytest.skip("no AVX2/FMA vector path here (or TENSORLIB_NATIVE=0): softmax runs NumPy's")
    rng = np.random.default_rng(9)
    for n in (8, 9, 16, 31, 33, 64, 257, 5000):
        x = (rng.standard_normal((4, n)) * 5).astype(np.float32)
        x[1, 0] = 200.0                                   # the rest 0: their exponentials underflow
        x[2, 1:] = -np.inf
        got = _fastmath.softmax_rows(x)
        ref = np.exp(x.astype(np.float64) - x.max(1, keepdims=True))
        ref /= ref.sum(1, keepdims=True)
        # (torch's steps: a 16- or 8-lane sum, then times 1 / sum -- two roundings where a division takes one)
        assert np.abs(got - ref).max() < 4e-7 and (got[ref == 0] == 0).all() and (got[2, 1:] == 0).all()
        np.testing.assert_array_equal(nn_ops._softmax_k(np, x, -1), got)
        inplace = x.copy()
        assert _fastmath.softmax_rows(inplace, inplace) is inplace
        np.testing.assert_array_equal(inplace, got)
    special = np.zeros((4, 40), np.float32)
    special[0, 5], special[1, 7], special[2], special[3, 39] = np.nan, np.inf, -np.inf, np.nan
    assert np.isnan(_fastmath.softmax_rows(special)).all()
    dead = _fastmath.softmax_rows(special, dead_zero=True)
    assert (dead[2] == 0).all() and np.isnan(dead[[0, 1, 3]]).all()
    q, k, v = (rng.standard_normal((2, 3, 12, 16)).astype(np.float32) for _ in range(3))
    mask = rng.random((12, 12)) > 0.3
    mask[4] = False                                       # a fully masked query row
    fmask = np.where(mask, 0, -np.inf).astype(np.float32)
    for m, causal, p in ((mask, False, 0.0), (fmask, False, 0.0), (None, True, 0.0), (mask, False, 0.25)):
        out = []
        for run in (lambda g: A._fused(np, q, k, v, m, 0.25, causal, p, g),
                    lambda g: A._math(np, A._call, q, k, v, m, 0.25, causal, p, g)):
            tl.manual_seed(3)
            out.append(run(None))
        for a, b in zip(out[0], out[1]):
            np.testing.assert_array_equal(a, b)
        if m is mask:
            assert (out[0][1][..., 4, :] == 0).all()


def test_softmax_backward_rows_match_float64_and_the_numpy_formula():
    """_softmax_backward_data over float32 rows in C (_fastmath.softmax_backward_rows: each row's sum(dp * p) in four
    fused multiply-add accumulators, then p * (dp - sum)): within float32 rounding of float64's, into a new array or
    in place in dp, NaN and infinite gradients as NumPy's formula; float64, strided or aliased operands are refused
    (None: NumPy's path runs), and the op (SOFTMAX_BACKWARD) and attention's helper give the same values either way."""
    from tensorlib.ops import _rows, nn_ops
    if _fastmath._SOFTMAX_BWD is None:
        pytest.skip("no AVX2/FMA vector path here (or TENSORLIB_NATIVE=0): softmax's backward runs NumPy's")
    rng = np.random.default_rng(11)
    for shape in ((4, 1), (3, 7), (5, 8), (2, 33), (3, 257), (2, 3, 1800)):
        p = rng.random(shape).astype(np.float32)
        p /= p.sum(-1, keepdims=True)
        dp = rng.standard_normal(shape).astype(np.float32)
        p64, dp64 = p.astype(np.float64), dp.astype(np.float64)
        ref = p64 * (dp64 - (dp64 * p64).sum(-1, keepdims=True))
        got = _fastmath.softmax_backward_rows(p, dp, np.empty_like(p))
        assert np.abs(got - ref).max() <= 4e-7 * max(1.0, np.abs(ref).max()), shape
        numpy_formula = p * (dp - (dp * p).sum(-1, keepdims=True))
        np.testing.assert_allclose(got, numpy_formula, rtol=1e-5, atol=1e-6)
        np.testing.assert_array_equal(nn_ops.SOFTMAX_BACKWARD.kernel(np, dp, p, len(shape) - 1), got)
        inplace = dp.copy()
        assert _fastmath.softmax_backward_rows(p, inplace, inplace) is inplace
        np.testing.assert_array_equal(inplace, got)
        np.testing.assert_array_equal(_rows.softmax_backward_rows(p, dp.copy()), got)
    p = np.full((3, 16), 1 / 16, np.float32)
    dp = np.ones((3, 16), np.float32)
    dp[0, 3], dp[1, 5] = np.nan, np.inf
    got = _fastmath.softmax_backward_rows(p, dp, np.empty_like(p))
    np.testing.assert_array_equal(got, p * (dp - (dp * p).sum(-1, keepdims=True)))     # (NaN, -inf: IEEE's)
    assert np.isnan(got[0]).all() and np.isneginf(got[1, :5]).all() and np.isnan(got[1, 5])
    x = np.ones((4, 16), np.float32)
    assert _fastmath.softmax_backward_rows(x.astype(np.float64), x.astype(np.float64), np.empty((4, 16))) is None
    assert _fastmath.softmax_backward_rows(x[:, ::2], x[:, ::2], np.empty((4, 8), np.float32)) is None
    assert _fastmath.softmax_backward_rows(x, x, x) is None          # (out is p: refused, NumPy's formula runs)

    class Sub(np.ndarray):      # (an array type of another library, as the fake CuPy's: its own formula runs)
        pass
    assert _fastmath.softmax_backward_rows(x.view(Sub), x, np.empty_like(x)) is None


def test_leaky_kernel_gives_torchs_values_for_every_slope():
    """leaky_relu's forward and backward in one C pass (_fastmath.leaky: where(x > 0, a, a * s)) give the values of
    NumPy's where() bit for bit -- NaN, infinities and signed zeros of the input and the gradient included -- for
    slopes in (0, 1], 0, negative and above 1, through the ops too; other dtypes and small arrays are refused."""
    from tensorlib.ops import activation as act
    if _fastmath._LEAKY is None:
        pytest.skip("no AVX2/FMA vector path here (or TENSORLIB_NATIVE=0): leaky_relu runs NumPy's")
    rng = np.random.default_rng(12)
    n = _fastmath.MIN_SIZE + 13
    x = rng.standard_normal(n).astype(np.float32)
    x[:6] = [np.nan, np.inf, -np.inf, -0.0, 0.0, 1e-45]
    g = rng.standard_normal(n).astype(np.float32)
    g[6:9] = [np.nan, -np.inf, -0.0]
    for s in (0.2, 0.01, 1.0, 0.0, -0.5, 1.5):
        fwd = np.where(x > 0, x, x * np.float32(s))
        bwd = np.where(x > 0, g, g * np.float32(s))
        for got, ref in ((_fastmath.leaky(x, x, s), fwd), (act.LEAKY_RELU.kernel(np, x, s), fwd),
                         (_fastmath.leaky(x, g, s), bwd), (act.LEAKY_RELU_BACKWARD.kernel(np, g, x, s), bwd)):
            assert got.dtype == np.float32
            np.testing.assert_array_equal(got, ref)
            np.testing.assert_array_equal(np.signbit(got), np.signbit(ref))
    assert _fastmath.leaky(x.astype(np.float64), x.astype(np.float64), 0.2) is None
    assert _fastmath.leaky(x[:100], x[:100], 0.2) is None
    assert _fastmath.leaky(x[::2], g[::2], 0.2) is None


def _ln_reference(x, w, b, eps):
    """layer_norm's C loops written out in float64 NumPy, sum by sum in their order: the mean and the variance each
    from four accumulators over elements j = k mod 4 (the tail into the first), rstd = 1 / sqrt(var + eps), then
    ((x - mean) * rstd) * w + b per element, rounded once to x's dtype."""
    m, n = x.shape
    q = n - n % 4
    y, mu, rstd = np.empty_like(x), np.empty(m, x.dtype), np.empty(m, x.dtype)
    for i in range(m):
        row = x[i].astype(np.float64)

        def lanes(v):
            s = [np.add.accumulate(v[k:q:4])[-1] if q else 0.0 for k in range(4)]
            if n > q:
                s[0] = np.add.accumulate(np.concatenate([[s[0]], v[q:]]))[-1]
            return (s[0] + s[1]) + s[2] + s[3]
        mean = lanes(row) / n
        d = row - mean
        r = 1.0 / np.sqrt(lanes(d * d) / n + eps)
        v = d * r
        if w is not None:
            v = v * w.astype(np.float64)
        if b is not None:
            v = v + b.astype(np.float64)
        y[i], mu[i], rstd[i] = v.astype(x.dtype), mean, r
    return y, mu, rstd


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_layer_norm_loops_sum_in_their_written_order_bit_for_bit(dtype):
    """The forward loops (built at O3, with an AVX2 clone where glibc picks one) give the bits of their sums written
    out in order (_ln_reference): a vectorised clone that summed in another order, or contracted a product into an FMA,
    would differ here."""
    if _fastmath._LN is None:
        pytest.skip("tensorlib._cmath is not built (TENSORLIB_NATIVE=0 or no compiler)")
    rng = np.random.default_rng(6)
    for n in (1, 3, 4, 7, 8, 13, 32, 64, 100):
        x = (rng.standard_normal((5, n)) * 3 + 2).astype(dtype)
        w, b = rng.random(n).astype(dtype), rng.standard_normal(n).astype(dtype)
        for ww, bb in ((w, b), (None, None), (w, None)):
            got = _fastmath.layer_norm(x, ww, bb, 1, 1e-5)
            want = _ln_reference(x, ww, bb, 1e-5)
            for g_, w_ in zip(got, want):
                np.testing.assert_array_equal(g_.reshape(w_.shape).view(np.uint8), w_.view(np.uint8))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_vml_ops_take_mkls_functions_where_loaded_and_numpys_elsewhere(dtype, monkeypatch):
    """sqrt, tanh, sin, cos, tan, log2, log10, erf, erfc and erfinv of C-contiguous float32/float64 arrays run on MKL
    VML's v?<Name> where MKL is loaded (torch's CPU build computes them there: its values to the bit, checked in
    devtools/torch_compat), out of place and in place; without MKL (TENSORLIB_BLAS=numpy, no mkl wheel) and for
    strided or other-dtype arrays, NumPy's (or SciPy's) values."""
    from tensorlib import _blas
    from scipy import special
    rng = np.random.default_rng(4)
    x = (np.abs(rng.standard_normal(1001)) * 0.9 + 0.01).astype(dtype)
    names = {"sqrt": "Sqrt", "tanh": "Tanh", "sin": "Sin", "cos": "Cos", "tan": "Tan", "log2": "Log2",
             "log10": "Log10", "erf": "Erf", "erfc": "Erfc", "erfinv": "ErfInv"}
    ref = {"erf": special.erf, "erfc": special.erfc, "erfinv": special.erfinv}
    loaded = _blas.vml_function("Sqrt", np.dtype(dtype)) is not None
    for name, vml_name in names.items():
        got = getattr(tl, name)(tl.tensor(x)).numpy()
        if loaded:
            np.testing.assert_array_equal(got, _fastmath.vml(vml_name, x))
        f = ref[name] if name in ref else getattr(np, name)
        np.testing.assert_allclose(got, f(x), rtol=4e-7 if dtype == np.float32 else 4e-15)
        strided = tl.tensor(np.repeat(x, 2))[::2]      # (not contiguous: the NumPy kernels)
        assert _fastmath.vml(vml_name, strided._data) is None
    assert _fastmath.vml("Sqrt", x.astype(np.float16)) is None and _fastmath.vml("Sqrt", x.tolist()) is None
    monkeypatch.setattr(_fastmath, "_VML32", dict.fromkeys(names.values()))     # as without MKL (no addresses)
    monkeypatch.setattr(_fastmath, "_VML64", dict.fromkeys(names.values()))
    for name in ("sqrt", "sin", "log10"):
        np.testing.assert_array_equal(getattr(tl, name)(tl.tensor(x)).numpy(), getattr(np, name)(x))
        t = tl.tensor(x)
        if hasattr(t, name + "_"):
            getattr(t, name + "_")()
            np.testing.assert_array_equal(t.numpy(), getattr(np, name)(x))


def _cascade_reference(x, keep=None):
    """torch's nll_loss cascade (LossNLL.cpp), element by element in x's float type, rows where keep is 0 skipped
    with their flush: the independent reference."""
    t = x.dtype.type
    p = [t(0)] * 8
    for b, v in enumerate(x):
        if keep is not None and not keep[b]:
            continue
        p[0] = t(p[0] - v)
        for j in range(7):
            if b & (15 << (4 * j)):
                break
            p[j + 1] = t(p[j + 1] + p[j])
            p[j] = t(0)
    out = t(0)
    for v in p:
        out = t(out + v)
    return out


@pytest.mark.parametrize("n", [1, 2, 16, 17, 255, 256, 257, 5000])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_nll_sum_is_torchs_cascade(n, dtype):
    """nll_loss's mean and sum add the picked log-probabilities in torch's cascade of eight partial sums: the C loop
    gives the reference loop's bits, and is close to the float64 sum."""
    if _fastmath._NLL_SUM is None:
        pytest.skip("tensorlib._cmath is not built here (TENSORLIB_NATIVE=0): NumPy's sum")
    x = -np.abs(np.random.default_rng(n).standard_normal(n) * 3).astype(dtype)
    got, count = _fastmath.nll_sum(x)
    assert got.dtype == dtype and got == _cascade_reference(x) and count == n
    assert abs(float(got) + float(x.astype(np.float64).sum())) <= 1e-5 * n
    keep = (np.arange(n) % 3 != 0).astype(dtype)            # ignored rows (the first among them)
    got, count = _fastmath.nll_sum(x, None, keep)
    assert got == _cascade_reference(x, keep) and count == keep.sum()
    if n > 2:
        assert _fastmath.nll_sum(x[::2]) is None        # strided: the caller sums as NumPy does


def test_log_softmax_backward_rows_match_the_formula():
    """_log_softmax_backward_data over float32 rows in C (torch's steps: devtools checks its bits against torch's):
    g - exp(y) * sum(g) within float32 rounding of float64's, every row length, short rows in small arrays too."""
    if _fastmath._LOG_SOFTMAX_BWD is None:
        pytest.skip("no AVX2/FMA vector path here (or TENSORLIB_NATIVE=0): NumPy's formula")
    rng = np.random.default_rng(5)
    for shape in ((3, 1), (2, 7), (5, 8), (4, 17), (3, 33), (2, 1000)):
        x = rng.standard_normal(shape).astype(np.float32)
        y = (x - np.log(np.exp(x.astype(np.float64)).sum(1, keepdims=True))).astype(np.float32)
        g = rng.standard_normal(shape).astype(np.float32)
        got = _fastmath.log_softmax_backward_rows(g, y)
        want = g - np.exp(y.astype(np.float64)) * g.astype(np.float64).sum(1, keepdims=True)
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5 * shape[1])
    assert _fastmath.log_softmax_backward_rows(g, y.astype(np.float64)) is None


def test_add_rows_is_add_at_bit_for_bit():
    """add_rows (the accumulating index_put_/index_add_ along dim 0, an embedding's or an index's backward) adds in
    add.at's order: the same bits, repeated and negative indices, an index of any shape; where it does not apply or an
    index is out of range it writes nothing and says False (add.at then runs, and raises its IndexError)."""
    if _fastmath._ADD_ROWS is None:
        pytest.skip("tensorlib._cmath is not built here (TENSORLIB_NATIVE=0): NumPy's add.at")
    rng = np.random.default_rng(8)
    for dtype, out_shape, idx_shape in ((np.float32, (27, 27), (32, 16)), (np.float64, (5,), (40,)),
                                        (np.float32, (7, 3, 4), (9,))):
        idx = rng.integers(-out_shape[0], out_shape[0], idx_shape)
        src = (rng.standard_normal(idx_shape + out_shape[1:]) * 1e3).astype(dtype)
        base = rng.standard_normal(out_shape).astype(dtype)
        got, want = base.copy(), base.copy()
        assert _fastmath.add_rows(got, idx, src)
        np.add.at(want, idx, src)
        np.testing.assert_array_equal(got, want)
    out = np.zeros((4, 2), np.float32)
    assert not _fastmath.add_rows(out, np.array([0, 4]), np.ones((2, 2), np.float32))     # out of range
    assert not _fastmath.add_rows(out, np.array([0, -5]), np.ones((2, 2), np.float32))
    assert not _fastmath.add_rows(out, np.array([0, 1], np.uint8) + 250, np.ones((2, 2), np.float32))
    assert not (out != 0).any()
    assert not _fastmath.add_rows(out[:, :1], np.array([0]), np.ones((1, 1), np.float32))    # strided out
    wide = np.arange(8, dtype=np.float32).reshape(2, 4)
    assert _fastmath.add_rows(out, np.array([1, 1]), wide[:, ::2]) and (out[1] == [4, 8]).all()     # strided src
    assert not _fastmath.add_rows(out, np.array([0]), np.ones((1, 2)))                     # another dtype
    assert not _fastmath.add_rows(out, np.array([0, 1]), out[2:])                           # src inside out


def test_silu_and_its_backward_follow_the_formula():
    """_fastmath.silu (torch's float32 kernels: Sleef's exp, libm's in the tail; devtools checks torch's bits): the
    forward x / (1 + exp(-x)) within 2 ulp of float64's and the backward g * s * (1 + x * (1 - s)) near it, every
    length's tail too; the ops take it."""
    from tensorlib.ops import _fastmath as FM
    rng = np.random.default_rng(5)
    for n in (5, 31, 32, 33, 1000):
        x = (rng.standard_normal(n) * 4).astype(np.float32)
        g = rng.standard_normal(n).astype(np.float32)
        y, d = FM.silu(x), FM.silu(x, g)
        if y is None:
            pytest.skip("no AVX2 here: NumPy's formula runs")
        x64 = x.astype(np.float64)
        s = 1 / (1 + np.exp(-x64))
        np.testing.assert_array_max_ulp(y, (x64 * s).astype(np.float32), 2)
        np.testing.assert_allclose(d, g * s * (1 + x64 * (1 - s)), rtol=2e-6, atol=2e-6)     # (float32 rounding)
        t = tl.tensor(x, requires_grad=True)
        out = tl.nn.functional.silu(t)
        out.backward(tl.tensor(g))
        np.testing.assert_array_equal(out.detach().numpy(), y)
        np.testing.assert_array_equal(t.grad.numpy(), d)
