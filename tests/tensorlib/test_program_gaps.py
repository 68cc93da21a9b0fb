"""What public PyTorch programs met in tensorlib (pytorch/examples mnist_rnn, dcgan, mnist_forward_forward,
time_sequence_prediction), without torch: dropout2d/3d's mask shapes by input rank, indexing with range,
tuple and ndarray sequences, torch's device flags, load's weights_only default and its environment
variables. Against torch itself: devtools/torch_compat/test_program_gaps_against_torch.py."""
from __future__ import annotations

import fractions
import io
import pickle

import numpy as np
import pytest

import tensorlib as tl
import tensorlib.nn.functional as F


def _constant_dims(y):
    return tuple(d for d in range(y.ndim) if (y == np.take(y, [0], axis=d)).all())


@pytest.mark.parametrize("fn, shape, dims, warns", [
    (F.dropout2d, (4, 16, 5, 6), (2, 3), None),
    (F.dropout2d, (6, 16, 12), (2,), "interpreted as shape \\(N, C, L\\)"),      # as torch: not (C, H, W)
    (F.dropout2d, (16, 12), (), "Received a 2-D input to dropout2d"),
    (F.dropout3d, (8, 5, 6, 7), (1, 2, 3), None),                                   # unbatched (C, D, H, W)
    (F.dropout3d, (6, 16, 12), (1, 2), "Received a 3-D input to dropout3d"),      # also taken as unbatched
    (F.dropout3d, (4, 8, 5, 6, 7), (2, 3, 4), None),
])
def test_feature_dropout_mask_shapes(fn, shape, dims, warns):
    tl.manual_seed(0)
    x = tl.ones(*shape, dtype=tl.float64, requires_grad=True)
    if warns:
        with pytest.warns(UserWarning, match=warns):
            y = fn(x, 0.5)
    else:
        y = fn(x, 0.5)
    got = y.detach().numpy()
    assert _constant_dims(got) == dims
    assert set(np.unique(got)) == {0.0, 2.0}
    y.sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), got)


def test_dropout2d_checks_p_and_keeps_eval_input():
    with pytest.raises(ValueError, match="dropout probability has to be between 0 and 1, but got -0.1"):
        F.dropout2d(tl.ones(2, 3, 4, 4), -0.1)
    x = tl.ones(2, 3, 4, 4)
    assert F.dropout2d(x, 0.5, training=False) is x


@pytest.mark.parametrize("index", [
    (range(3), [0, 1, 2]), range(1, 3), (slice(None), range(0, 4, 2)), ([0, 1], (1, 2)), np.array([0, 2]),
    (np.array([0, 2]), 1), np.array([True, False, True]), ((0, 2), slice(None)),
])
def test_sequence_indexes_read_and_write_as_numpy_lists(index):
    a = np.arange(12.0).reshape(3, 4)
    listed = tuple(list(i) if isinstance(i, (range, tuple, np.ndarray)) else i
                   for i in (index if isinstance(index, tuple) else (index,)))
    np.testing.assert_array_equal(tl.tensor(a)[index].numpy(), a[listed])
    x = tl.tensor(a)
    x[index] = -1.0
    b = a.copy()
    b[listed] = -1.0
    np.testing.assert_array_equal(x.numpy(), b)


def test_empty_and_zero_d_sequence_indexes():
    x = tl.zeros(3, 4)
    assert tuple(x[[]].shape) == (0, 4) and tuple(x[range(0)].shape) == (0, 4)
    assert tuple(x[np.array(1)].shape) == (4,)
    with pytest.raises(IndexError, match="tensors used as indices must be long, int, byte or bool tensors"):
        x[np.array([0.5])]


def test_sequence_index_gradient():
    x = tl.arange(12.0, dtype=tl.float64).reshape(3, 4).requires_grad_()
    x[range(3), (0, 1, 2)].sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), np.eye(3, 4))


def test_device_and_kind_flags_are_false():
    x = tl.ones(2)
    assert not (x.is_xpu or x.is_mps or x.is_meta or x.is_nested or x.is_quantized or x.is_mkldnn)
    assert not (x.is_complex() or x.is_conj() or x.is_neg())


def _pickled():
    buf = io.BytesIO()
    tl.save({"step": fractions.Fraction(1, 3)}, buf)       # pickled, of a class weights_only refuses
    return buf


def _clear_env(monkeypatch):
    monkeypatch.delenv("TORCH_FORCE_WEIGHTS_ONLY_LOAD", raising=False)
    monkeypatch.delenv("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD", raising=False)


def test_load_default_is_weights_only_unless_a_pickle_module_is_given(monkeypatch):
    _clear_env(monkeypatch)
    with pytest.raises(pickle.UnpicklingError, match="Weights only load failed"):
        tl.load(_pickled())
    assert tl.load(_pickled(), pickle_module=pickle) == {"step": fractions.Fraction(1, 3)}
    with pytest.raises(RuntimeError, match="Can not safely load weights when explicit pickle_module"):
        tl.load(_pickled(), pickle_module=pickle, weights_only=True)


def test_load_environment_overrides(monkeypatch):
    _clear_env(monkeypatch)
    monkeypatch.setenv("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD", "1")
    with pytest.warns(UserWarning, match="forcing weights_only=False"):
        assert tl.load(_pickled()) == {"step": fractions.Fraction(1, 3)}
    with pytest.raises(pickle.UnpicklingError):             # an explicit argument wins over that variable
        tl.load(_pickled(), weights_only=True)
    monkeypatch.setenv("TORCH_FORCE_WEIGHTS_ONLY_LOAD", "true")
    with pytest.raises(RuntimeError, match="Only one of `TORCH_FORCE_WEIGHTS_ONLY_LOAD`"):
        tl.load(_pickled())
    monkeypatch.delenv("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD")
    with pytest.raises(pickle.UnpicklingError):             # and this one wins over the argument
        tl.load(_pickled(), weights_only=False)


def test_legacy_tensor_constructor():
    assert tuple(tl.Tensor().shape) == (0,) and tl.Tensor().dtype == tl.float32
    assert tuple(tl.Tensor(2, 3).shape) == (2, 3) and tuple(tl.Tensor(tl.Size([4])).shape) == (4,)
    assert tl.Tensor([[1, 2]]).dtype == tl.float32 and tl.Tensor([[1, 2]]).tolist() == [[1.0, 2.0]]
    x = tl.ones(2)
    tl.Tensor(x)[1] = 3.0
    assert x.tolist() == [1.0, 3.0]
    p = tl.nn.Parameter(tl.Tensor(3, 4))
    assert p.requires_grad and tuple(p.shape) == (3, 4)
    with pytest.raises(TypeError, match="new\\(\\): data must be a sequence \\(got float\\)"):
        tl.Tensor(2.5)
    with pytest.raises(RuntimeError, match="Trying to create tensor with negative dimension -1"):
        tl.Tensor(2, -1)
    with pytest.raises(TypeError, match="new\\(\\) received an invalid combination of arguments"):
        tl.Tensor([1], [2])


def test_legacy_tensor_types():
    assert tl.LongTensor([1.7, 2.0]).tolist() == [1, 2] and tl.LongTensor([1]).dtype == tl.int64
    assert tl.BoolTensor([1, 0]).dtype == tl.bool and tl.HalfTensor(2).dtype == tl.float16
    assert isinstance(tl.ones(1), tl.FloatTensor) and not isinstance(tl.ones(1), tl.DoubleTensor)
    assert not isinstance(tl.ones(1), tl.cuda.FloatTensor) and not isinstance(3, tl.FloatTensor)
    assert tl.ones(2).type(tl.LongTensor).dtype == tl.int64
    assert repr(tl.cuda.LongTensor) == "<class 'tensorlib.cuda.LongTensor'>"
