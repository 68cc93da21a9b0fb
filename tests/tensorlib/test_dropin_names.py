"""The names a training script touches before its first step (issue 13): backends flags, the float32
matmul precision, cuda.amp's deprecated aliases, flatten_parameters, torch.onnx, bfloat16."""
from __future__ import annotations

import warnings

import numpy as np
import pytest

import tensorlib as tl
from tensorlib import nn


@pytest.fixture
def precision():
    before = tl.get_float32_matmul_precision()
    yield
    tl.set_float32_matmul_precision(before)


def test_float32_matmul_precision_and_allow_tf32_are_one_setting(precision):
    assert tl.get_float32_matmul_precision() == "highest"
    assert tl.backends.cuda.matmul.allow_tf32 is False
    tl.set_float32_matmul_precision("high")
    assert tl.backends.cuda.matmul.allow_tf32 is True
    tl.backends.cuda.matmul.allow_tf32 = False
    assert tl.get_float32_matmul_precision() == "highest"
    tl.backends.cuda.matmul.allow_tf32 = True
    assert tl.get_float32_matmul_precision() == "high"
    tl.set_float32_matmul_precision("medium")
    assert tl.backends.cuda.matmul.allow_tf32 is True
    with pytest.raises(RuntimeError, match="Invalid precision 'fast'"):
        tl.set_float32_matmul_precision("fast")
    with pytest.raises(AttributeError, match="Unknown attribute allow_tf33"):
        tl.backends.cuda.matmul.allow_tf33 = True
    with pytest.raises(AttributeError, match="Unknown attribute allow_fp16_accumulation"):
        tl.backends.cuda.matmul.allow_fp16_accumulation


def test_cudnn_and_mps_flags():
    assert tl.backends.cudnn.allow_tf32 is True              # torch's default
    assert tl.backends.cudnn.benchmark is False and tl.backends.cudnn.deterministic is False
    assert tl.backends.mps.is_available() is False and tl.backends.mps.is_built() is False
    assert isinstance(tl.backends.cuda.is_built(), bool)


def test_cuda_amp_aliases_warn_as_torch():
    with pytest.warns(FutureWarning, match=r"`torch.cuda.amp.GradScaler\(args...\)` is deprecated. Please use "
                                           r"`torch.amp.GradScaler\('cuda', args...\)` instead."):
        s = tl.cuda.amp.GradScaler(enabled=False)
    assert isinstance(s, tl.amp.GradScaler) and not s.is_enabled()
    loss = tl.tensor(2.0, requires_grad=True)
    assert s.scale(loss) is loss                               # disabled: a no-op, as nanoGPT relies on
    with pytest.warns(FutureWarning, match=r"`torch.cuda.amp.autocast\(args...\)` is deprecated"):
        a = tl.cuda.amp.autocast(enabled=False)
    with a:
        assert not tl.amp.is_autocast_enabled("cuda")


def test_flatten_parameters_keeps_the_parameters():
    for cls in (nn.LSTM, nn.GRU, nn.RNN):
        m = cls(3, 4, 2)
        before = {k: v.detach().numpy().copy() for k, v in m.state_dict().items()}
        ids = [id(p) for p in m.parameters()]
        assert m.flatten_parameters() is None
        assert [id(p) for p in m.parameters()] == ids
        for k, v in m.state_dict().items():
            np.testing.assert_array_equal(v.numpy(), before[k])


def test_import_torch_onnx_works_as_the_word_language_model_does(tmp_path):
    import tensorlib.onnx as onnx
    assert onnx.is_in_onnx_export() is False
    onnx.export(nn.Linear(2, 2), (tl.zeros(1, 2),), str(tmp_path / "m.onnx"))      # tests/tensorlib/test_onnx_export
    assert (tmp_path / "m.onnx").stat().st_size > 0


def test_multihead_attention_is_where_torch_defines_it():
    from tensorlib.nn.modules import activation, transformer
    assert activation.MultiheadAttention is transformer.MultiheadAttention is nn.MultiheadAttention


def test_ndarray_subclasses_are_plain_numpy(tmp_path):
    path = tmp_path / "tokens.bin"
    np.arange(20, dtype=np.uint16).tofile(path)
    data = np.memmap(path, dtype=np.uint16, mode="r")
    x = tl.from_numpy(data[3:7].astype(np.int64))     # nanoGPT's get_batch: .astype keeps the memmap class
    assert (x + 1).tolist() == [4, 5, 6, 7]
    assert tl.tensor(data[:3].astype(np.int32)).tolist() == [0, 1, 2]
    class Tagged(np.ndarray):
        pass
    assert tl.as_tensor(np.array([[1.0, 2.0]]).view(Tagged)).tolist() == [[1.0, 2.0]]


# --- bfloat16 ------------------------------------------------------------------------------------

def test_bfloat16_creation_conversion_and_promotion():
    x = tl.tensor([1.0, 2.5, 3.3], dtype=tl.bfloat16)
    assert x.dtype is tl.bfloat16 and x.is_floating_point() and x.element_size() == 2
    assert repr(x) == "tensor([1.0000, 2.5000, 3.2969], dtype=tensorlib.bfloat16)"   # torch's rounding
    assert x.float().dtype is tl.float32 and tl.ones(2).bfloat16().dtype is tl.bfloat16
    assert (x + tl.ones(3, dtype=tl.float16)).dtype is tl.float32                      # torch: bf16+f16 -> f32
    assert (x + tl.ones(3)).dtype is tl.float32 and (x + 1.5).dtype is tl.bfloat16
    assert (x + tl.ones(3, dtype=tl.int64)).dtype is tl.bfloat16
    assert tl.bfloat16.is_signed and tl.bfloat16.itemsize == 2


def test_bfloat16_arithmetic_matches_torch():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(0)
    a32, b32 = rng.standard_normal((5, 6)).astype(np.float32), rng.standard_normal((6, 4)).astype(np.float32)
    a, b = tl.tensor(a32).bfloat16(), tl.tensor(b32).bfloat16()
    ta, tb = torch.tensor(a32).bfloat16(), torch.tensor(b32).bfloat16()
    for ours, theirs in [(a * a + a, ta * ta + ta), (a @ b, ta @ tb), (a.sum(0), ta.sum(0)), (a.mean(1), ta.mean(1)),
                         (a.exp(), ta.exp())]:
        assert ours.dtype is tl.bfloat16
        np.testing.assert_array_equal(ours.float().numpy(), theirs.float().numpy())


def test_bfloat16_trains_a_linear_layer():
    m = nn.Linear(3, 2).to(tl.bfloat16)
    assert m.weight.dtype is tl.bfloat16
    x = tl.randn(4, 3).bfloat16()
    loss = m(x).pow(2).mean()
    assert loss.dtype is tl.bfloat16
    loss.backward()
    assert m.weight.grad.dtype is tl.bfloat16 and m.weight.grad.abs().sum().item() > 0
    w = tl.randn(2, dtype=tl.bfloat16, requires_grad=True)
    assert w.requires_grad


def test_bfloat16_autocast_on_cpu():
    with tl.autocast("cpu", dtype=tl.bfloat16):
        y = tl.randn(2, 3) @ tl.randn(3, 2)
    assert y.dtype is tl.bfloat16


# --- on CUDA (the fake CuPy): the TF32 switch is CuPy's float32 compute type ------------------------

@pytest.mark.cuda
def test_tf32_sets_cupys_compute_type(precision):
    cp = pytest.importorskip("cupy")
    if not tl.cuda.is_available():
        pytest.skip("no CUDA device")
    core = cp._core
    from tensorlib.backends.cuda import _COMPUTE_TYPE_DEFAULT as DEFAULT, _COMPUTE_TYPE_TF32 as TF32
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        tl.backends.cuda.matmul.allow_tf32 = True
        assert core.get_compute_type(np.float32) == TF32
        tl.set_float32_matmul_precision("highest")
        assert core.get_compute_type(np.float32) == DEFAULT


@pytest.mark.cuda
def test_cudnn_allow_tf32_switches_the_compute_type_around_convolutions(precision, monkeypatch):
    cp = pytest.importorskip("cupy")
    if not tl.cuda.is_available():
        pytest.skip("no CUDA device")
    core = cp._core
    from tensorlib.backends.cuda import _COMPUTE_TYPE_DEFAULT as DEFAULT, _COMPUTE_TYPE_TF32 as TF32
    seen = []
    real = core.set_compute_type
    monkeypatch.setattr(core, "set_compute_type", lambda dt, ct: (seen.append(ct), real(dt, ct)))
    x, w = tl.randn(1, 2, 5, 5, device="cuda"), tl.randn(3, 2, 3, 3, device="cuda")
    monkeypatch.setattr(tl.backends.cudnn, "allow_tf32", True)
    tl.nn.functional.conv2d(x, w)
    assert seen == [TF32, DEFAULT]                                            # TF32 inside, back after
    seen.clear()
    monkeypatch.setattr(tl.backends.cudnn, "allow_tf32", False)
    tl.nn.functional.conv2d(x, w)
    assert seen == []                                                         # matmul's IEEE setting holds
    assert core.get_compute_type(np.float32) == DEFAULT


def test_bfloat16_saves_and_loads_exactly(tmp_path):
    x = tl.tensor([1.5, 2.25, -3.0, 1e-3]).bfloat16()
    sd = nn.Linear(2, 2).bfloat16().state_dict()
    tl.save({"x": x, "sd": sd}, tmp_path / "bf.pt")
    got = tl.load(tmp_path / "bf.pt")
    assert got["x"].dtype is tl.bfloat16 and got["x"].float().tolist() == x.float().tolist()
    assert all(got["sd"][k].dtype is tl.bfloat16 and got["sd"][k].float().tolist() == v.float().tolist()
               for k, v in sd.items())


@pytest.mark.cuda
def test_bfloat16_on_cuda_is_refused_plainly():
    if not tl.cuda.is_available():
        pytest.skip("no CUDA device")
    with pytest.raises(TypeError, match="tensorlib.bfloat16 tensors are CPU-only: CuPy has no bfloat16 dtype"):
        tl.ones(2).bfloat16().to("cuda")
    with pytest.raises(TypeError, match="CPU-only"):
        tl.ones(2, device="cuda").to(tl.bfloat16)


def test_compute_type_values_are_the_installed_cupys():
    linalg = pytest.importorskip("cupy._core._routines_linalg")     # importing CuPy needs no GPU
    from tensorlib.backends import cuda
    assert (cuda._COMPUTE_TYPE_DEFAULT, cuda._COMPUTE_TYPE_TF32) == (linalg.COMPUTE_TYPE_DEFAULT,
                                                                    linalg.COMPUTE_TYPE_TF32)
