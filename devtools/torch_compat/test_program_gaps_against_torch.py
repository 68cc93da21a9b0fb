"""What public PyTorch programs (pytorch/examples mnist_rnn, dcgan, mnist_forward_forward,
time_sequence_prediction) met in tensorlib, against torch 2.13: dropout1d/2d/3d's mask shapes and warnings
for every input rank, indexing with range / tuple / ndarray sequences, the device flags (`is_xpu`), and
load's weights_only default with a pickle_module and under TORCH_FORCE_(NO_)WEIGHTS_ONLY_LOAD."""
from __future__ import annotations

import io
import pickle
import warnings

import numpy as np
import pytest

import tensorlib as tl

torch = pytest.importorskip("torch")


def _shared_dims(y):
    """The dimensions along which a dropout's output (of ones) is constant everywhere: those its mask
    is broadcast over."""
    return tuple(d for d in range(y.ndim) if (y == np.take(y, [0], axis=d)).all())


def _dropped(lib, fn, shape):
    lib.manual_seed(0)
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        y = getattr(lib.nn.functional, fn)(lib.ones(*shape, dtype=lib.float64), 0.5).numpy()
    return _shared_dims(y), [str(x.message) for x in w]


@pytest.mark.parametrize("fn, shape", [
    ("dropout1d", (16, 12)), ("dropout1d", (6, 16, 12)),
    ("dropout2d", (16, 12)), ("dropout2d", (6, 16, 12)), ("dropout2d", (4, 16, 5, 6)), ("dropout2d", (2, 4, 8, 5, 6)),
    ("dropout3d", (6, 16, 12)), ("dropout3d", (8, 5, 6, 7)), ("dropout3d", (4, 8, 5, 6, 7)),
])
def test_feature_dropout_masks_and_warnings(fn, shape):
    """Big enough that an elementwise mask is constant along no dimension (probability < 1e-9)."""
    assert _dropped(tl, fn, shape) == _dropped(torch, fn, shape)


def test_dropout2d_bad_p_as_torch():
    for lib in (torch, tl):
        with pytest.raises(ValueError, match="dropout probability has to be between 0 and 1, but got 1.5"):
            lib.nn.functional.dropout2d(lib.ones(2, 3, 4, 4), 1.5)


INDEXES = [
    lambda x: x[range(3), [0, 1, 2]], lambda x: x[range(1, 3)], lambda x: x[:, range(0, 4, 2)], lambda x: x[range(0)],
    lambda x: x[[]], lambda x: x[[0, 1], (1, 2)], lambda x: x[np.array([0, 2])], lambda x: x[np.array([0, 2]), 1],
    lambda x: x[np.array([True, False, True])], lambda x: x[np.array(1)], lambda x: x[(0, 2), :],
]


@pytest.mark.parametrize("i", range(len(INDEXES)))
def test_sequence_indexes(i):
    index = INDEXES[i]
    got = index(tl.arange(12.0).reshape(3, 4))
    want = index(torch.arange(12.0).reshape(3, 4))
    assert list(got.shape) == list(want.shape)
    np.testing.assert_array_equal(got.numpy(), want.numpy())


def test_sequence_index_assignment_and_gradient():
    x, y = (lib.arange(12.0, dtype=lib.float64).reshape(3, 4).requires_grad_() for lib in (tl, torch))
    for v in (x, y):
        z = v.clone()
        z[range(3), [0, 1, 2]] = 0.0
        (z * z)[np.array([0, 2])].sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), y.grad.numpy())


def test_device_and_kind_flags():
    a, b = tl.ones(2), torch.ones(2)
    for name in ("is_xpu", "is_mps", "is_xla", "is_ipu", "is_maia", "is_mtia", "is_vulkan", "is_meta", "is_mkldnn",
                 "is_nested", "is_sparse_csr", "is_quantized", "is_cpu", "is_cuda", "is_sparse"):
        assert getattr(a, name) == getattr(b, name), name
    for name in ("is_complex", "is_conj", "is_neg"):
        assert getattr(a, name)() == getattr(b, name)(), name


def _load_outcome(lib, buf, monkeypatch, env, **kw):
    for k in ("TORCH_FORCE_WEIGHTS_ONLY_LOAD", "TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD"):
        monkeypatch.delenv(k, raising=False)
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    buf.seek(0)
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        try:
            out = lib.load(buf, **kw)
            result = ("ok", type(out).__name__)
        except Exception as e:          # noqa: BLE001 - the class and first words are compared
            result = (type(e).__name__.replace("WeightsOnlyUnpicklingError", "UnpicklingError"), str(e)[:40])
    return result, any("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD" in str(x.message) for x in w)


@pytest.mark.parametrize("env", [{}, {"TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD": "1"}, {"TORCH_FORCE_WEIGHTS_ONLY_LOAD": "1"},
                                 {"TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD": "yes", "TORCH_FORCE_WEIGHTS_ONLY_LOAD": "1"}])
@pytest.mark.parametrize("kw", [{}, {"weights_only": True}, {"weights_only": False}, {"pickle_module": pickle}])
def test_load_weights_only_default_and_environment(env, kw, monkeypatch):
    """The same file torch.save wrote, read by both: a NumPy array (what time_sequence_prediction saves)
    needs weights_only=False, a state dict does not. (tensorlib.save writes arrays without pickle, so
    tensorlib reads its own files of arrays under weights_only=True too.)"""
    for obj in (np.arange(3.0), {"w": torch.ones(2)}):
        buf = io.BytesIO()
        torch.save(obj, buf)
        got = _load_outcome(tl, io.BytesIO(buf.getvalue()), monkeypatch, env, **kw)
        want = _load_outcome(torch, buf, monkeypatch, env, **kw)
        assert got[0][0] == want[0][0] and got[1] == want[1], (got, want)


# --- torch.distributions (REINFORCE, actor-critic), finfo/iinfo, normal, tensor of a deque -----------------

def _distribution_outputs(lib):
    """Values, shapes, reprs and float64 gradients of the four distributions and their KL divergences."""
    D = lib.distributions
    f64 = lib.float64
    P = lib.tensor([[0.1, 0.2, 0.7], [0.5, 0.25, 0.25]], dtype=f64, requires_grad=True)
    L = lib.tensor([[0.3, -1.0, 2.0], [0.0, 0.5, -0.5]], dtype=f64, requires_grad=True)
    loc = lib.tensor([0.5, -1.0], dtype=f64, requires_grad=True)
    sc = lib.tensor([1.5, 0.3], dtype=f64, requires_grad=True)
    out = []
    c, c2 = D.Categorical(probs=P), D.Categorical(logits=L)
    for d in (c, c2):
        out += [d.log_prob(lib.tensor([2, 0])), d.entropy(), d.probs, d.logits, d.mode, tuple(d.batch_shape),
                repr(d), tuple(d.sample((5,)).shape), tuple(d.enumerate_support().shape), d.sample().dtype]
    n, x = D.Normal(loc, sc), lib.tensor([0.2, 0.1], dtype=f64)
    out += [n.log_prob(x), n.entropy(), n.cdf(x), n.mean, n.stddev, n.variance, tuple(n.rsample((4,)).shape),
            n.rsample().requires_grad, n.sample().requires_grad, repr(n), repr(D.Normal(0.0, 1.0)),
            tuple(D.Normal(0.0, 1.0).batch_shape)]
    b = D.Bernoulli(logits=L)
    out += [b.log_prob(lib.ones(2, 3, dtype=f64)), b.entropy(), b.mean, b.variance, tuple(b.sample().shape),
            b.sample().dtype, repr(D.Bernoulli(lib.tensor([0.3])))]
    u = D.Uniform(lib.tensor([0.0, 1.0], dtype=f64), lib.tensor([2.0, 3.0], dtype=f64))
    out += [u.log_prob(lib.tensor([1.0, 2.5], dtype=f64)), u.entropy(), u.mean, u.variance,
            u.cdf(lib.tensor([1.0, 2.0], dtype=f64))]
    kls = [D.kl_divergence(c, c2), D.kl_divergence(n, D.Normal(0.0, 1.0)),
           D.kl_divergence(b, D.Bernoulli(probs=lib.full((2, 3), 0.3, dtype=f64))),
           D.kl_divergence(u, D.Uniform(-1.0, 4.0)), D.kl_divergence(D.Uniform(-1.0, 4.0), D.Uniform(0.0, 1.0))]
    out += kls
    total = sum(t.sum() for t in out if hasattr(t, "requires_grad") and t.requires_grad)
    total.backward()
    out += [P.grad, L.grad, loc.grad, sc.grad]
    return [np.round(o.detach().numpy(), 12).tolist() if hasattr(o, "detach") else str(o).replace("tensorlib", "torch")
            for o in out]


def test_distributions_values_gradients_and_reprs():
    assert _distribution_outputs(tl) == _distribution_outputs(torch)


DISTRIBUTION_ERRORS = [
    lambda lib: lib.distributions.Categorical(probs=lib.tensor([0.2, 0.8]), logits=lib.tensor([0.0, 1.0])),
    lambda lib: lib.distributions.Categorical(probs=lib.tensor(0.5)),
    lambda lib: lib.distributions.Normal(0.0, -1.0),
    lambda lib: lib.distributions.Normal(0.0, lib.tensor([1.0, 0.0])),
    lambda lib: lib.distributions.Bernoulli(lib.tensor([1.5])),
    lambda lib: lib.distributions.Categorical(logits=lib.tensor([0.0, 1.0])).log_prob(lib.tensor(2)),
    lambda lib: lib.distributions.Normal(0.0, 1.0).log_prob(lib.tensor([float("nan")])),
    lambda lib: lib.distributions.Bernoulli(0.3).log_prob(lib.tensor([0.5])),
    lambda lib: lib.distributions.Uniform(1.0, 0.0),
    lambda lib: lib.distributions.kl_divergence(lib.distributions.Normal(0.0, 1.0),
                                                lib.distributions.Categorical(logits=lib.zeros(2))),
]


@pytest.mark.parametrize("i", range(len(DISTRIBUTION_ERRORS)))
def test_distribution_errors(i):
    got = []
    for lib in (torch, tl):
        with pytest.raises((ValueError, NotImplementedError)) as info:
            DISTRIBUTION_ERRORS[i](lib)
        got.append((type(info.value).__name__, str(info.value).replace("tensorlib", "torch").replace("  ", " ")))
    assert got[0] == got[1]


def test_validate_args_false_skips_the_checks():
    for lib in (torch, tl):
        d = lib.distributions.Normal(0.0, -1.0, validate_args=False)
        assert float(d.scale) == -1.0


@pytest.mark.parametrize("name", ["float16", "bfloat16", "float32", "float64"])
def test_finfo(name):
    a, b = tl.finfo(getattr(tl, name)), torch.finfo(getattr(torch, name))
    for attr in ("bits", "eps", "max", "min", "tiny", "smallest_normal", "resolution", "dtype"):
        assert getattr(a, attr) == getattr(b, attr), attr
    assert repr(a) == repr(b)


@pytest.mark.parametrize("name", ["uint8", "int8", "int16", "int32", "int64"])
def test_iinfo(name):
    a, b = tl.iinfo(getattr(tl, name)), torch.iinfo(getattr(torch, name))
    assert (a.bits, a.max, a.min, a.dtype, repr(a)) == (b.bits, b.max, b.min, b.dtype, repr(b))


def test_finfo_iinfo_refuse_the_other_kind():
    for lib in (torch, tl):
        with pytest.raises(TypeError, match="requires a floating point input type"):
            lib.finfo(lib.int32)
        with pytest.raises(TypeError, match="requires an integer input type"):
            lib.iinfo(lib.float32)
    assert tl.finfo().dtype == torch.finfo().dtype == "float32"


@pytest.mark.parametrize("args", [
    lambda lib: (lib.zeros(2, 3), 1.0), lambda lib: (0.0, 2.0, (4,)), lambda lib: (lib.zeros(3), lib.ones(2, 1)),
    lambda lib: (1.0, lib.ones(2, dtype=lib.float64)),
])
def test_normal_shapes_and_dtypes(args):
    a, b = tl.normal(*args(tl)), torch.normal(*args(torch))
    assert (tuple(a.shape), str(a.dtype).split(".")[1]) == (tuple(b.shape), str(b.dtype).split(".")[1])


def test_normal_errors():
    for lib in (torch, tl):
        with pytest.raises(RuntimeError, match="normal expects std >= 0.0, but found std -1"):
            lib.normal(lib.zeros(2), -1.0)
        with pytest.raises(RuntimeError, match="normal expects all elements of std >= 0.0"):
            lib.normal(lib.zeros(2), -lib.ones(2))


def test_tensor_of_other_sequences():
    from collections import deque
    for data in (deque([1.0, 2.5]), deque([np.float32(1.0), 2.5]), range(3), [deque([1, 2]), deque([3, 4])]):
        a, b = tl.tensor(data), torch.tensor(data)
        assert a.tolist() == b.tolist() and str(a.dtype).split(".")[1] == str(b.dtype).split(".")[1]


# --- the legacy constructors: torch.Tensor(...), torch.FloatTensor, torch.cuda.LongTensor... ----------------

LEGACY = [
    lambda lib: lib.Tensor(), lambda lib: lib.Tensor(2, 3), lambda lib: lib.Tensor(lib.Size([2])),
    lambda lib: lib.Tensor([[1]]), lambda lib: lib.Tensor(np.arange(3)), lambda lib: lib.Tensor((1, 2)),
    lambda lib: lib.Tensor([[lib.tensor(3)]]).long(), lambda lib: lib.LongTensor([1.7, 2]),
    lambda lib: lib.FloatTensor(2, 2), lambda lib: lib.BoolTensor([1, 0]), lambda lib: lib.DoubleTensor([1]),
    lambda lib: lib.ones(2).type(lib.LongTensor), lambda lib: lib.Tensor(lib.ones(2, dtype=lib.int64)),
]


@pytest.mark.parametrize("i", range(len(LEGACY)))
def test_legacy_constructors(i):
    a, b = LEGACY[i](tl), LEGACY[i](torch)
    assert (tuple(a.shape), str(a.dtype).split(".")[1]) == (tuple(b.shape), str(b.dtype).split(".")[1])
    if a.numel() and i not in (1, 2, 8):         # those are uninitialized in torch
        np.testing.assert_array_equal(a.numpy(), b.numpy())


def test_legacy_types_isinstance_and_parameters():
    for lib in (tl, torch):
        assert isinstance(lib.ones(1), lib.FloatTensor) and not isinstance(lib.ones(1), lib.LongTensor)
        assert not isinstance(lib.ones(1), lib.cuda.FloatTensor)
        p = lib.nn.Parameter(lib.Tensor(3, 4))
        assert tuple(p.shape) == (3, 4) and p.requires_grad
        x = lib.ones(2)
        y = lib.Tensor(x)
        y[0] = 5.0
        assert float(x[0]) == 5.0       # shares x's data


@pytest.mark.parametrize("call", [lambda lib: lib.Tensor(2.5), lambda lib: lib.Tensor("a"),
                                  lambda lib: lib.Tensor(-1)])
def test_legacy_constructor_errors(call):
    got = []
    for lib in (torch, tl):
        with pytest.raises((TypeError, RuntimeError)) as info:
            call(lib)
        got.append((type(info.value).__name__, str(info.value)))
    assert got[0] == got[1]
