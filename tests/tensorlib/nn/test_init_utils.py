"""nn.init distributions, nn.utils clipping, and the cudnn algorithm flags."""
import gc
import math

import numpy as np
import pytest

import tensorlib as tl
from tensorlib import nn
from tensorlib.backends import cudnn
from tensorlib.nn import init


def test_init_bounds_and_moments():
    tl.manual_seed(0)
    w = tl.empty(400, 300)
    init.xavier_uniform_(w)
    a = math.sqrt(6 / 700)
    assert np.abs(w.numpy()).max() <= a and np.abs(w.numpy()).max() > 0.95 * a
    init.xavier_normal_(w, gain=2.0)
    assert abs(w.numpy().std() - 2 * math.sqrt(2 / 700)) < 0.01 * 2 * math.sqrt(2 / 700) * 3
    init.kaiming_uniform_(w, nonlinearity="relu")
    b = math.sqrt(6 / 300)
    assert np.abs(w.numpy()).max() <= b and np.abs(w.numpy()).max() > 0.95 * b
    init.kaiming_normal_(w, mode="fan_out")
    assert abs(w.numpy().std() - math.sqrt(2 / (1 + 0.01 ** 2) / 400)) < 0.003
    init.normal_(w, 3.0, 0.5)
    assert abs(w.numpy().mean() - 3) < 0.01 and abs(w.numpy().std() - 0.5) < 0.01
    init.uniform_(w, -2, -1)
    assert w.numpy().min() >= -2 and w.numpy().max() <= -1
    init.constant_(w, 0.25)
    assert np.all(w.numpy() == 0.25)
    init.zeros_(w)
    assert not w.numpy().any()
    init.ones_(w)
    assert np.all(w.numpy() == 1)


def test_init_on_parameters_is_not_recorded_and_seeded():
    tl.manual_seed(5)
    a = nn.Linear(4, 4).weight.detach().numpy().copy()
    tl.manual_seed(5)
    lin = nn.Linear(4, 4)
    np.testing.assert_array_equal(a, lin.weight.detach().numpy())
    init.xavier_uniform_(lin.weight)
    assert lin.weight.is_leaf and lin.weight.grad_fn is None


def test_orthogonal_and_gain():
    tl.manual_seed(0)
    for shape in [(5, 3), (3, 5), (4, 2, 2)]:
        w = tl.empty(*shape)
        init.orthogonal_(w, gain=2.0)
        m = w.numpy().reshape(shape[0], -1)
        gram = m @ m.T if shape[0] <= m.shape[1] else m.T @ m
        np.testing.assert_allclose(gram, 4 * np.eye(gram.shape[0]), atol=1e-5)
    assert init.calculate_gain("leaky_relu", 0.2) == math.sqrt(2 / 1.04)
    with pytest.raises(ValueError, match="Unsupported nonlinearity"):
        init.calculate_gain("swish")
    with pytest.raises(ValueError, match="fewer than 2 dimensions"):
        init.xavier_uniform_(tl.empty(3))


def test_clip_grad_norm_returns_total_norm_and_scales():
    a = nn.Parameter(tl.zeros(3))
    b = nn.Parameter(tl.zeros(2))
    a.grad = tl.tensor([3.0, 0.0, 0.0])
    b.grad = tl.tensor([0.0, 4.0])
    total = nn.utils.clip_grad_norm_([a, b], max_norm=1.0)
    assert abs(float(total) - 5.0) < 1e-6
    joint = math.sqrt(float((a.grad ** 2).sum()) + float((b.grad ** 2).sum()))
    assert abs(joint - 1.0) < 1e-4
    np.testing.assert_allclose(a.grad.numpy(), [0.6, 0, 0], rtol=1e-4)
    a.grad = tl.tensor([1.0, -2.0, 0.5])
    assert abs(float(nn.utils.clip_grad_norm_(a, 10.0, norm_type="inf")) - 2.0) < 1e-6
    np.testing.assert_allclose(a.grad.numpy(), [1.0, -2.0, 0.5])    # under the limit: untouched
    a.grad = tl.tensor([float("nan"), 1.0, 1.0])
    with pytest.raises(RuntimeError, match="non-finite"):
        nn.utils.clip_grad_norm_(a, 1.0, error_if_nonfinite=True)


def test_clip_grad_value_and_vector_round_trip():
    p = nn.Parameter(tl.zeros(4))
    p.grad = tl.tensor([-3.0, -0.5, 0.5, 3.0])
    nn.utils.clip_grad_value_([p], 1.0)
    np.testing.assert_array_equal(p.grad.numpy(), [-1.0, -0.5, 0.5, 1.0])
    m = nn.Linear(3, 2)
    vec = nn.utils.parameters_to_vector(m.parameters())
    assert vec.shape == (8,)
    nn.utils.vector_to_parameters(vec * 0 + 1, m.parameters())
    assert np.all(m.weight.detach().numpy() == 1) and np.all(m.bias.detach().numpy() == 1)


@pytest.fixture
def flags():
    saved = (cudnn.benchmark, cudnn.deterministic, cudnn.enabled)
    cudnn.clear_cache()
    yield cudnn
    cudnn.benchmark, cudnn.deterministic, cudnn.enabled = saved
    cudnn.clear_cache()


def _algos(log):
    import time
    def slow():
        log.append("slow")
        time.sleep(0.005)
        return "slow"

    def fast():
        log.append("fast")
        return "fast"
    return {"slow": slow, "fast": fast}


def test_cudnn_benchmark_times_once_and_keeps_fastest(flags):
    flags.benchmark = True
    log = []
    assert flags.pick("k", _algos(log), default="slow", sync=lambda: None) == "fast"
    assert sorted(log) == ["fast", "slow"]
    log.clear()
    assert flags.pick("k", _algos(log), default="slow", sync=lambda: None) == "fast"
    assert log == ["fast"]                       # the choice is remembered per key
    assert set(flags.timings[("k", False)]) == {"slow", "fast"}


def test_cudnn_default_and_deterministic(flags):
    log = []
    assert flags.pick("k", _algos(log), default="slow", sync=lambda: None) == "slow"   # benchmark off: default
    flags.benchmark = True
    flags.deterministic = True
    log.clear()
    out = flags.pick("k2", _algos(log), nondeterministic=("fast",), default="slow", sync=lambda: None)
    assert out == "slow" and log == ["slow"]     # the nondeterministic algorithm is never run
    with pytest.raises(RuntimeError, match="no deterministic algorithm"):
        flags.pick("k3", {"a": lambda: 1}, nondeterministic=("a",), default="a", sync=lambda: None)
    log.clear()
    assert flags.pick("k4", _algos(log), default="slow", sync=None) == "slow"     # CPU: defaults


def test_conv_algorithms_agree():
    from tensorlib.ops import conv_ops as C
    r = np.random.default_rng(0)
    xpad = np.pad(r.standard_normal((2, 4, 7, 6)), ((0, 0), (0, 0), (1, 1), (1, 1)))
    w = r.standard_normal((6, 2, 3, 3))
    np.testing.assert_allclose(C._fwd_gemm(np, xpad, w, (2, 1), (1, 2), 2), C._fwd_taps(np, xpad, w, (2, 1), (1, 2), 2),
                               rtol=1e-10, atol=1e-12)
    gc = r.standard_normal((2, 3, 3, 2, 4, 5))
    np.testing.assert_allclose(C._col2im_slices(np, gc, (12, 9), (2, 1), (1, 2)),
                               C._col2im_scatter(np, gc, (12, 9), (2, 1), (1, 2)), rtol=1e-10, atol=1e-12)


@pytest.mark.cuda
def test_cuda_conv_benchmark_and_deterministic(flags):
    if not tl.cuda.is_available():
        pytest.skip("no CUDA device with CuPy on this machine")
    x = tl.randn(4, 8, 16, 16, device="cuda")
    w = tl.randn(16, 8, 3, 3, device="cuda", requires_grad=True)
    ref = tl.nn.functional.conv2d(x.cpu(), w.detach().cpu(), padding=1).numpy()
    flags.benchmark = True
    y = tl.nn.functional.conv2d(x, w, padding=1)
    np.testing.assert_allclose(y.detach().cpu().numpy(), ref, rtol=1e-3, atol=1e-3)
    assert any(k[0][0] == "conv2d" for k in flags.timings)
    flags.deterministic = True
    x.requires_grad_(True)
    outs = []
    for _ in range(2):
        x.grad = None
        tl.nn.functional.conv2d(x, w, padding=1).sum().backward()
        outs.append(x.grad.cpu().numpy())
    np.testing.assert_array_equal(outs[0], outs[1])


@pytest.mark.parametrize("norm_type", [2.0, 1.0, 3.0, math.inf])
def test_clip_grad_norm_paths_agree(norm_type):
    """The array path (default), the op-by-op path (foreach=False, which used to leave the total unset)
    and the path a profiler sees give the same total and the same clipped gradients."""
    def run(**kw):
        tl.manual_seed(0)
        ps = [nn.Parameter(tl.randn(5, 3)), nn.Parameter(tl.randn(3))]
        for p in ps:
            p.grad = tl.randn(*p.shape) * 3
        total = nn.utils.clip_grad_norm_(ps, 0.5, norm_type=norm_type, **kw)
        return total.numpy(), [p.grad.numpy() for p in ps]
    t0, g0 = run()
    t1, g1 = run(foreach=False)
    assert t0 == t1 and t0 > 0.5
    assert all(np.array_equal(a, b) for a, b in zip(g0, g1))
    clipped = float(np.linalg.norm(np.concatenate([g.ravel() for g in g0]).astype(np.float64), ord=norm_type))
    assert abs(clipped - 0.5) < 1e-4


@pytest.mark.parametrize("dtype", [tl.float32, tl.float64])
def test_clip_grad_norm_in_c_is_the_kernels_unprofiled_and_profiled(dtype, monkeypatch):
    """p=2 over many gradients: unobserved and under a default profile the norms and the scaling run in one C call
    each (_fastmath.clip_norms / clip_scale); with a detailed profile and with foreach=False the kernels run per
    gradient. The same total and clipped gradients to the bit, the same versions bumped, and the two profiles hold
    the same events in the same nesting. A read-only gradient sends the scaling to the kernels, which refuse it."""
    import profiler
    from tensorlib.ops import _fastmath
    from tests.profiler.test_same_tree_any_options import _tree
    ran = []
    for name in ("clip_norms", "clip_scale"):
        fn = getattr(_fastmath, name)
        monkeypatch.setattr(_fastmath, name, lambda *a, fn=fn, name=name: fn(*a) and not ran.append(name))

    def run(kind, read_only=False):
        rng = np.random.default_rng(1)
        ps = [nn.Parameter(tl.tensor(rng.standard_normal(s) * 3, dtype=dtype))
              for s in ((5, 3), (3,), (40, 7), (130,), (1,), (2, 2, 300))]
        for p in ps:
            p.grad = tl.tensor(rng.standard_normal(tuple(p.shape)) * 3, dtype=dtype)
        if read_only:
            ps[3].grad._data.flags.writeable = False
        versions = [p.grad._version for p in ps]
        opts = {"default": {}, "detailed": {"record_shapes": True, "profile_memory": True}}.get(kind)
        tree = None
        if opts is None:
            total = nn.utils.clip_grad_norm_(ps, 0.5, **({"foreach": False} if kind == "loop" else {}))
        else:
            with profiler.profile(**opts) as prof:
                total = nn.utils.clip_grad_norm_(ps, 0.5)
            tree = _tree(prof)
        return (total.numpy().tobytes(), [p.grad.numpy().tobytes() for p in ps],
                [p.grad._version - v for p, v in zip(ps, versions)]), tree

    quiet, _ = run("quiet")
    assert quiet[2] == [1] * 6
    c = _fastmath.ADAM is not None      # (the C loops are built)
    assert ran == (["clip_norms", "clip_scale"] if c else [])
    for kind in ("loop", "default", "detailed"):
        ran.clear()
        assert run(kind)[0] == quiet
        assert ran == (["clip_norms", "clip_scale"] if c and kind == "default" else [])     # (the muls' `to`s inside)
    default, detailed = run("default")[1], run("detailed")[1]
    assert default == detailed
    names = [n for _, n, _ in default]
    assert names.count("aten::linalg_vector_norm") == 7 and names.count("aten::mul_") == 6
    with pytest.raises(ValueError):     # the read-only gradient: mul_'s kernel refuses it, as the loop's does
        run("default", read_only=True)
    gc.collect()        # (the error's frames hold tensors in a cycle: freed now, not inside a later test's profile)
