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
