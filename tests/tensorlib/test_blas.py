"""Large CPU matrix products on MKL (tensorlib/_blas.py): every layout the binding reads in place gives
np.matmul's values, the layouts it cannot read fall back to NumPy, and the ops that use it (matmul, linear,
conv2d and its gradients) agree with their NumPy-only runs. The `mkl` wheel is in the test extras (x86-64);
where it cannot be installed these tests say so. They run with TENSORLIB_BLAS=mkl (MKL's GEMMs on any CPU; by
default only on Intel's), except where a test says otherwise."""
from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

import tensorlib as tl
from tensorlib import _blas
from tensorlib.ops import _fastmath

pytestmark = pytest.mark.skipif(not _blas.available(),
                                reason="MKL is not installed here (pip install mkl; x86-64 only)")


def _reload_blas(env_value):
    """MKL looked for again on the next product, under TENSORLIB_BLAS=env_value (None: unset)."""
    if env_value is None:
        os.environ.pop("TENSORLIB_BLAS", None)
    else:
        os.environ["TENSORLIB_BLAS"] = env_value
    _blas._lib = None
    _blas.gemms = True
    _blas._GEMM.clear()
    _fastmath._VML32.clear()
    _fastmath._VML64.clear()


@pytest.fixture(autouse=True)
def mkl_gemms():
    """Each test with MKL's GEMMs chosen whatever the CPU; the process's own setting back after it."""
    before = os.environ.get("TENSORLIB_BLAS")
    _reload_blas("mkl")
    yield
    _reload_blas(before)


@pytest.fixture
def every_size(monkeypatch):
    """Products of any size go to MKL (the size cut-off only decides speed)."""
    monkeypatch.setattr(_blas, "MIN_MNK", 0)


def _layouts(rng, rows, cols, dtype):
    """The same matrix stored by rows, by columns, as a transposed view, and as a slice of wider rows."""
    m = rng.standard_normal((rows, cols)).astype(dtype)
    wide = np.zeros((rows, cols + 7), dtype)
    wide[:, 3:3 + cols] = m
    return {"C": m, "F": np.asfortranarray(m), "T-view": np.ascontiguousarray(m.T).T, "rows-slice": wide[:, 3:3 + cols]}


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_2d_products_match_numpy_for_every_layout(every_size, dtype):
    rng = np.random.default_rng(0)
    tol = dict(rtol=1e-4, atol=1e-4) if dtype == np.float32 else dict(rtol=1e-12, atol=1e-12)
    for la, a in _layouts(rng, 33, 20, dtype).items():
        for lb, b in _layouts(rng, 20, 17, dtype).items():
            out = _blas.gemm(a, b)
            assert out is not None, (la, lb)
            assert out.shape == (33, 17) and out.dtype == dtype and out.flags.c_contiguous
            np.testing.assert_allclose(out, a @ b, **tol, err_msg=f"{la} @ {lb}")


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_batched_and_broadcast_products_match_numpy(every_size, dtype):
    rng = np.random.default_rng(1)
    tol = dict(rtol=1e-4, atol=1e-4) if dtype == np.float32 else dict(rtol=1e-12, atol=1e-12)
    x = rng.standard_normal((4, 3, 16, 12)).astype(dtype)
    cases = [
        (x, rng.standard_normal((12, 9)).astype(dtype)),                          # a weight shared by all
        (rng.standard_normal((16, 12)).astype(dtype), rng.standard_normal((5, 12, 9)).astype(dtype)),
        (x, np.swapaxes(rng.standard_normal((4, 3, 9, 12)).astype(dtype), -1, -2)),   # transposed batch
        (x[:1], rng.standard_normal((1, 3, 12, 9)).astype(dtype)),
        (x[:1, :1], rng.standard_normal((1, 1, 12, 9)).astype(dtype)),             # one matrix in a batch
    ]
    for a, b in cases:
        out = _blas.gemm(a, b)
        assert out is not None, (a.shape, b.shape)
        np.testing.assert_allclose(out, np.matmul(a, b), **tol)


def test_out_with_padded_rows_is_written_in_place(every_size):
    rng = np.random.default_rng(2)
    a, b = rng.standard_normal((2, 8, 6)), rng.standard_normal((6, 10))
    room = np.full((2, 8, 13), 7.0)
    out = room[..., :10]
    assert _blas.gemm(a, b, out) is out
    np.testing.assert_allclose(out, a @ b, rtol=1e-12)
    assert (room[..., 10:] == 7.0).all()            # the padding is left alone
    flat = np.zeros((8, 12))[:, :10]
    assert _blas.matmul(a[0], b, out=flat) is flat
    np.testing.assert_allclose(flat, a[0] @ b, rtol=1e-12)


def test_what_mkl_cannot_take_falls_back_to_numpy(every_size):
    rng = np.random.default_rng(3)
    f = rng.standard_normal((8, 8)).astype(np.float32)
    assert _blas.gemm(f.astype(np.int64), f.astype(np.int64)) is None              # integers
    assert _blas.gemm(f.astype(np.float16), f.astype(np.float16)) is None          # half precision
    assert _blas.gemm(f, f.astype(np.float64)) is None                             # mixed dtypes
    assert _blas.gemm(f[::2, ::2], f[::2, ::2]) is None                           # no unit stride
    x = rng.standard_normal((2, 3, 8, 8))
    assert _blas.gemm(x.transpose(1, 0, 2, 3), rng.standard_normal((3, 2, 8, 8))) is None   # uneven batch
    assert _blas.gemm(x[:, :1], rng.standard_normal((2, 3, 8, 8))) is None          # broadcast inside a run
    buf = np.zeros((8, 8))
    assert _blas.gemm(buf, f.astype(np.float64), out=buf) is None                  # out overlaps an operand
    assert _blas.gemm(f[:1], f) is None                                            # a single row: NumPy's
    one = rng.standard_normal((1, 1, 8, 8))
    assert _blas.gemm(one, one, out=np.empty((2, 1, 8, 8))) is None                # an out of another shape
    # the fallback gives NumPy's answer all the same
    np.testing.assert_array_equal(_blas.matmul(f[::2, ::2], f[::2, ::2]), f[::2, ::2] @ f[::2, ::2])


@pytest.mark.parametrize("intel", [True, False])
def test_gemms_run_on_mkl_on_intel_cpus(monkeypatch, intel):
    """By default (TENSORLIB_BLAS unset) MKL's GEMMs are chosen on Intel CPUs only (on an AMD EPYC they took
    1.00-1.13x OpenBLAS's time); the library is loaded on every CPU."""
    _reload_blas(None)
    monkeypatch.setattr(_blas, "intel_cpu", lambda: intel)
    big = np.ones((256, 256), np.float32)
    assert (_blas.gemm(big, big) is not None) is intel
    assert _blas.gemms_on_mkl() is intel and _blas.available() is True
    np.testing.assert_array_equal(_blas.matmul(big, big), big @ big)


def test_the_cpu_vendor_is_read_from_the_machine():
    try:
        with open("/proc/cpuinfo") as f:
            vendor = next((line for line in f if line.startswith("vendor_id")), "")
    except OSError:
        vendor = ""
    if not vendor:
        pytest.skip("this machine's /proc/cpuinfo names no vendor_id (not x86 Linux); where it names one, that decides")
    assert _blas.intel_cpu() is ("GenuineIntel" in vendor)


def test_small_products_stay_on_numpy():
    a = np.ones((8, 8), np.float32)
    assert _blas.gemm(a, a) is None
    big = np.ones((256, 256), np.float32)
    assert _blas.gemm(big, big) is not None


def _step(model, x):
    model.zero_grad()
    out = model(x)
    out.sum().backward()
    return [out.detach().numpy()] + [p.grad.numpy() for p in model.parameters()]


@pytest.mark.parametrize("dtype", [tl.float32, tl.float64])
def test_layers_agree_with_their_numpy_runs(every_size, monkeypatch, dtype):
    """A conv net's and an MLP's outputs and gradients with MKL's products and with NumPy's."""
    tl.manual_seed(0)
    nn = tl.nn
    models = [
        (nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 6, 3, stride=2), nn.Flatten(),
                       nn.Linear(6 * 5 * 5, 4)), tl.randn(5, 3, 12, 12)),
        (nn.Sequential(nn.Conv2d(4, 8, 3, groups=2), nn.ConvTranspose2d(8, 3, 3, stride=2)), tl.randn(3, 4, 9, 9)),
        (nn.Sequential(nn.Linear(20, 30), nn.Tanh(), nn.Linear(30, 7)), tl.randn(16, 20)),
    ]
    tol = dict(rtol=1e-4, atol=1e-4) if dtype == tl.float32 else dict(rtol=1e-10, atol=1e-10)
    for model, x in models:
        model.to(dtype)
        x = x.to(dtype)
        calls = []

        def spy(real):      # (2-d products go through _blas.small, batched ones through _blas.gemm)
            def f(*args, **kwargs):
                r = real(*args, **kwargs)
                calls.append(r is not None)
                return r
            return f
        monkeypatch.setattr(_blas, "gemm", spy(_blas.gemm))
        monkeypatch.setattr(_blas, "small", spy(_blas.small))
        with_mkl = _step(model, x)
        assert any(calls), "no product of this model ran on MKL"
        monkeypatch.setattr(_blas, "_lib", False)
        numpy_only = _step(model, x)
        monkeypatch.undo()
        monkeypatch.setattr(_blas, "MIN_MNK", 0)
        for got, want in zip(with_mkl, numpy_only):
            np.testing.assert_allclose(got, want, **tol)


def test_set_num_threads_reaches_mkl():
    from threadpoolctl import threadpool_info
    before = tl.get_num_threads()
    try:
        tl.set_num_threads(1)
        assert [p["num_threads"] for p in threadpool_info() if p["internal_api"] == "mkl"] == [1]
    finally:
        tl.set_num_threads(before)


def test_backends_mkl_matches_torch_names():
    assert tl.backends.mkl.is_available() is True
    assert (tl.backends.mkl.VERBOSE_OFF, tl.backends.mkl.VERBOSE_ON) == (0, 1)
    with tl.backends.mkl.verbose(tl.backends.mkl.VERBOSE_OFF):
        pass


def test_tensorlib_blas_numpy_keeps_every_product_on_numpy():
    code = ("import tensorlib as tl, numpy as np; from tensorlib import _blas; "
            "a = np.ones((300, 300), np.float32); "
            "print(tl.backends.mkl.is_available(), _blas.gemm(a, a) is None)")
    env = dict(os.environ, TENSORLIB_BLAS="numpy")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    assert out.stdout.split() == ["False", "True"]


def test_a_named_library_that_does_not_load_is_reported_once():
    code = ("import warnings, tensorlib as tl\n"
            "with warnings.catch_warnings(record=True) as w:\n"
            "    warnings.simplefilter('always')\n"
            "    a, b = tl.backends.mkl.is_available(), tl.backends.mkl.is_available()\n"
            "print(a, b, len(w)); print(w[0].message)")
    env = dict(os.environ, TENSORLIB_BLAS="/no/such/libmkl_rt.so")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    first, message = out.stdout.splitlines()
    assert first == "False False 1"
    assert "TENSORLIB_BLAS='/no/such/libmkl_rt.so' could not be used (no such file)" in message


def test_small_products_run_on_mkls_sums(monkeypatch):
    """Products below MIN_MNK run on MKL too, in one C call (_cmath.gemm_small): torch's sums, which OpenBLAS's
    are not. Its results are the ctypes GEMM's to the bit (the bias copied in, then beta 1, as torch's addmm); it
    declines what it does not take, and a Linear layer's forward and backward products (the gradient a sum's
    broadcast) go through it."""
    if not _blas.gemms_on_mkl() or _blas._SMALL is None:
        pytest.skip("MKL's GEMMs are not chosen here (no mkl wheel, TENSORLIB_BLAS=numpy, or not an Intel CPU)")
    rng = np.random.default_rng(0)
    for dt in (np.float32, np.float64):
        a = rng.standard_normal((16, 32)).astype(dt)
        w = rng.standard_normal((16, 32)).astype(dt)
        bias = rng.standard_normal(16).astype(dt)
        for c, b in [(bias, w.T), (bias.reshape(1, 16), np.ascontiguousarray(w.T)), (None, w.T),
                     (rng.standard_normal((16, 16)).astype(dt), w.T)]:
            out = np.zeros((16, 16), dt) if c is None else np.broadcast_to(c, (16, 16)).copy()
            want = _blas._gemm2(_blas._GEMM[np.dtype(dt)], a, b, 16, 16, 32, out, 0.0 if c is None else 1.0, 1.0)
            got = _blas.small(c, a, b)
            assert got.flags.c_contiguous and got.dtype == dt
            np.testing.assert_array_equal(got, want)
        c = rng.standard_normal((16, 16)).astype(dt)
        want = _blas._gemm2(_blas._GEMM[np.dtype(dt)], a, w.T, 16, 16, 32, c.copy(), 2.0, 0.5)
        np.testing.assert_array_equal(_blas.small(c.T, a, w.T, 2.0, 0.5),      # (a transposed c: any strides)
                                      _blas._gemm2(_blas._GEMM[np.dtype(dt)], a, w.T, 16, 16, 32, c.T.copy(), 2.0, 0.5))
        np.testing.assert_array_equal(_blas.small(c, a, w.T, 2.0, 0.5), want)
        c[0, 0] = np.nan        # beta 0: c not read (torch's addmm ignores its input then)
        assert not np.isnan(_blas.small(c, a, w.T, 0, 3)).any()
        # operands CBLAS cannot read in place (a broadcast gradient, a strided slice): copied first, as torch's
        g, s = np.broadcast_to(bias[:1], (16, 32)), rng.standard_normal((32, 32)).astype(dt)[:, ::2]
        for x, y in [(g, w.T), (a, s), (a[:, ::-1], s)]:
            want = _blas._gemm2(_blas._GEMM[np.dtype(dt)], np.ascontiguousarray(x), np.ascontiguousarray(y), 16, 16,
                                32, None)
            np.testing.assert_array_equal(_blas.small(None, x, y), want)
    f = np.ones((8, 8), np.float32)
    for c, a, b in [(None, f.astype(np.int64), f.astype(np.int64)), (None, f[:0], f), (None, f, f[:4]),
                    (np.ones(3, np.float32), f, f), (np.ones(8), f, f), (None, f, f.astype(np.float64)),
                    (np.ones((2, 8, 8), np.float32), f, f), (None, f.astype(np.float16), f.astype(np.float16))]:
        assert _blas.small(c, a, b) is None
    for c in (np.arange(8, dtype=np.float32).reshape(8, 1), np.array(2.5, np.float32)):     # any broadcast c
        np.testing.assert_array_equal(_blas.small(c, f, f), c + f @ f)
    calls = []
    real = _blas.small
    monkeypatch.setattr(_blas, "small", lambda *args: calls.append(real(*args) is not None) or real(*args))
    layer = tl.nn.Linear(8, 4)
    layer(tl.randn(16, 8, requires_grad=True)).sum().backward()
    assert calls and all(calls) and len(calls) >= 3      # the forward's addmm, the backward's two mm


def test_which_products_go_to_mkl():
    """Past 2M multiply-adds, or a few rows by a large matrix (an RNN step's product), where OpenBLAS's few-row
    kernels lost to MKL's; small square-ish products stay on np.matmul, whose call costs less."""
    assert _blas.pays(20, 800, 200) and _blas.pays(4, 512, 512) and _blas.pays(128, 128, 128)
    assert not _blas.pays(64, 128, 128) and not _blas.pays(8, 256, 64) and not _blas.pays(20, 400, 100)


def test_recurrent_steps_products_go_through_blas(monkeypatch):
    calls = []
    real = _blas.matmul

    def counting(a, b, out=None):
        calls.append((a.shape, b.shape))
        return real(a, b, out)
    monkeypatch.setattr(_blas, "matmul", counting)
    for layer in (tl.nn.LSTM(8, 16), tl.nn.GRU(8, 16), tl.nn.RNN(8, 16)):
        calls.clear()
        out, _ = layer(tl.randn(5, 3, 8))
        out.sum().backward()
        assert [c for c in calls if c[0] == (3, 16)] and len(calls) >= 10, type(layer).__name__


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_addmm_accumulates_onto_its_input_in_the_gemm(every_size, monkeypatch, dtype):
    """addmm on MKL runs as torch's: the input broadcast into the output, one GEMM with alpha and beta (beta 0
    ignores the input, its NaNs too). Every broadcast shape of the input, the values as NumPy's in float64."""
    calls = []
    real = _blas.small      # (a 2-d product's GEMM: _cmath.gemm_small)
    monkeypatch.setattr(_blas, "small", lambda c, a, b, beta=1.0, alpha=1.0: calls.append(
        {"beta": float(beta), "alpha": float(alpha)}) or real(c, a, b, beta, alpha))
    rng = np.random.default_rng(3)
    a, b = rng.standard_normal((6, 40)).astype(dtype), rng.standard_normal((40, 5)).astype(dtype)
    for c in (rng.standard_normal(5), rng.standard_normal((6, 5)), rng.standard_normal((1, 5)),
              rng.standard_normal((6, 1)), np.array(2.5), np.full(5, np.nan)):
        c = c.astype(dtype)
        for beta, alpha in ((1, 1), (2.0, -0.5), (0, 3)):
            calls.clear()
            got = tl.addmm(tl.tensor(c), tl.tensor(a), tl.tensor(b), beta=beta, alpha=alpha).numpy()
            want = beta * c.astype(np.float64) + alpha * (a.astype(np.float64) @ b) if beta else \
                alpha * (a.astype(np.float64) @ b)
            np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
            assert got.dtype == dtype and calls == [{"beta": float(beta), "alpha": float(alpha)}]
    with pytest.raises(ValueError, match="accumulates onto"):
        _blas.gemm(a, b, beta=1.0)


def test_a_linear_layers_bias_goes_into_its_gemm(every_size, monkeypatch):
    """F.linear with a bias: addmm, the bias in the GEMM (beta 1), forward and through autograd."""
    calls = []
    real = _blas.small      # (a 2-d product's GEMM: _cmath.gemm_small; a plain product has no c, beta 0)
    monkeypatch.setattr(_blas, "small", lambda c, a, b, beta=1.0, alpha=1.0: calls.append(
        0.0 if c is None else float(beta)) or real(c, a, b, beta, alpha))
    rng = np.random.default_rng(4)
    x = tl.tensor(rng.standard_normal((4, 3, 30)).astype(np.float32), requires_grad=True)
    layer = tl.nn.Linear(30, 7)
    y = layer(x)
    assert calls[0] == 1.0
    np.testing.assert_allclose(y.detach().numpy(), x.detach().numpy() @ layer.weight.detach().numpy().T
                               + layer.bias.detach().numpy(), rtol=1e-5, atol=1e-5)
    y.sum().backward()
    np.testing.assert_allclose(layer.bias.grad.numpy(), np.full(7, 12.0))
