"""Tensors: creation, dtypes and torch's promotion, properties, printing, NumPy interop, errors."""
from __future__ import annotations

import numpy as np
import pytest

import tensorlib as tl


def test_creation_defaults_and_dtypes():
    assert tl.tensor([1.0, 2.0]).dtype == tl.float32
    assert tl.tensor([1, 2]).dtype == tl.int64
    assert tl.tensor([True, False]).dtype == tl.bool
    assert tl.tensor([1, 2.5]).dtype == tl.float32
    assert tl.tensor(np.ones(2)).dtype == tl.float64          # NumPy arrays keep their dtype
    assert tl.zeros(2, 3).shape == (2, 3) and tl.zeros((2, 3)).dtype == tl.float32
    assert tl.ones(2, dtype=tl.int32).dtype == tl.int32
    assert tl.full((2,), 3).dtype == tl.int64 and tl.full((2,), 3.0).dtype == tl.float32
    assert tl.full((2,), True).dtype == tl.bool
    assert tl.arange(5).dtype == tl.int64 and tl.arange(0, 1, 0.25).dtype == tl.float32
    assert tl.arange(0, 1, 0.25).tolist() == [0.0, 0.25, 0.5, 0.75]
    assert tl.linspace(0, 1, 5).tolist() == [0.0, 0.25, 0.5, 0.75, 1.0]
    np.testing.assert_array_equal(tl.eye(3).numpy(), np.eye(3))
    assert tl.empty(4).shape == (4,)
    r = tl.randint(0, 5, (100,))
    assert r.dtype == tl.int64 and 0 <= r.min().item() and r.max().item() < 5
    assert tl.rand(3, 4).dtype == tl.float32 and ((tl.rand(1000) >= 0) & (tl.rand(1000) < 1)).all()
    x = tl.randn(2, 3, dtype=tl.float64)
    for f, v in ((tl.zeros_like, 0), (tl.ones_like, 1)):
        y = f(x)
        assert y.shape == x.shape and y.dtype == tl.float64 and (y == v).all()
    assert tl.full_like(x, 7).dtype == tl.float64 and (tl.full_like(x, 7) == 7).all()
    assert sorted(tl.randperm(6).tolist()) == list(range(6))


def test_manual_seed_reproducible():
    tl.manual_seed(0)
    a = tl.randn(5)
    tl.manual_seed(0)
    b = tl.randn(5)
    assert (a == b).all()
    g = tl.Generator().manual_seed(3)
    c = tl.rand(4, generator=g)
    g.manual_seed(3)
    assert (tl.rand(4, generator=g) == c).all()


@pytest.mark.parametrize("a_dt,b_dt,expected", [
    (tl.int32, tl.float16, tl.float16),    # torch: category wins (NumPy says float64)
    (tl.int64, tl.float32, tl.float32),
    (tl.float32, tl.float64, tl.float64),
    (tl.uint8, tl.int8, tl.int16),
    (tl.bool, tl.int32, tl.int32),
    (tl.bool, tl.float16, tl.float16),
    (tl.int32, tl.int64, tl.int64),
])
def test_tensor_tensor_promotion(a_dt, b_dt, expected):
    a = tl.ones(2, dtype=a_dt)
    b = tl.ones(2, dtype=b_dt)
    assert (a + b).dtype == expected
    assert (b * a).dtype == expected
    assert tl.promote_types(a_dt, b_dt) == expected


def test_scalar_and_zero_dim_promotion():
    i = tl.tensor([1, 2])
    f = tl.tensor([1.0, 2.0])
    assert (i + 1.5).dtype == tl.float32           # int tensor + float scalar -> default float
    assert (i * 2).dtype == tl.int64
    assert (f * 2).dtype == tl.float32
    assert (f + np.float64(1.0)).dtype == tl.float32   # NumPy scalars act as Python scalars
    assert (tl.tensor([True]) + 1).dtype == tl.int64
    assert (f + tl.tensor(1.0, dtype=tl.float64)).dtype == tl.float32   # 0-dim does not widen
    assert (i + tl.tensor(1.5, dtype=tl.float64)).dtype == tl.float64   # ... unless of a higher category
    assert (2.0 - i).tolist() == [1.0, 0.0]
    assert (i / 2).dtype == tl.float32 and (i / 2).tolist() == [0.5, 1.0]   # true division
    assert (i // 2).tolist() == [0, 1]
    assert tl.div(tl.tensor([-7, 7]), 2, rounding_mode="trunc").tolist() == [-3, 3]
    assert tl.div(tl.tensor([-7, 7]), 2, rounding_mode="floor").tolist() == [-4, 3]


def test_properties():
    x = tl.zeros(2, 3, 4)
    assert x.shape == tl.Size([2, 3, 4]) and x.size() == (2, 3, 4) and x.size(-1) == 4
    assert repr(x.shape) == "tensorlib.Size([2, 3, 4])"
    assert x.ndim == 3 and x.dim() == 3 and x.numel() == 24
    assert x.device == tl.device("cpu") and str(x.device) == "cpu"
    assert x.is_leaf and not x.requires_grad and x.grad is None and x.grad_fn is None
    assert x.is_contiguous() and not x.transpose(0, 2).is_contiguous()
    assert x.T.shape == (4, 3, 2) and x.mT.shape == (2, 4, 3)
    assert tl.tensor(3.5).item() == 3.5 and tl.tensor([[1, 2]]).tolist() == [[1, 2]]
    with pytest.raises(RuntimeError, match="a Tensor with 6 elements cannot be converted to Scalar"):
        tl.zeros(2, 3).item()
    with pytest.raises(IndexError, match="Dimension out of range"):
        x.size(3)
    assert len(x) == 2 and x.element_size() == 4 and x.stride() == (12, 4, 1)


def test_repr_like_torch():
    assert repr(tl.tensor([1.0, 2.0, 3.0])) == "tensor([1., 2., 3.])"
    assert repr(tl.tensor([1.5, 2.25])) == "tensor([1.5000, 2.2500])"
    assert repr(tl.tensor([1, 2])) == "tensor([1, 2])"
    assert repr(tl.tensor([1.0], dtype=tl.float64)) == "tensor([1.], dtype=tensorlib.float64)"
    assert repr(tl.tensor([1.0], requires_grad=True)) == "tensor([1.], requires_grad=True)"
    y = tl.tensor([1.0], requires_grad=True) * 2
    assert repr(y) == "tensor([2.], grad_fn=<MulBackward0>)"
    assert repr(tl.tensor([True, False])) == "tensor([ True, False])"
    assert repr(tl.tensor(2.0)) == "tensor(2.)"


def test_devices():
    assert tl.device("cuda:1").index == 1 and tl.device("cuda").type == "cuda"
    assert tl.device("cpu") == "cpu"
    with pytest.raises(RuntimeError, match="Expected one of cpu, cuda"):
        tl.device("tpu")
    assert tl.ones(2).to("cpu").device.type == "cpu"
    assert tl.ones(2).cpu().device.type == "cpu"


@pytest.mark.skipif(tl.cuda.is_available(), reason="checks the message shown where no GPU/CuPy is present")
def test_cuda_absent_gives_clear_error():
    assert tl.cuda.device_count() == 0
    with pytest.raises(RuntimeError, match=r"CUDA is not available.*pip install"):
        tl.ones(2).cuda()
    with pytest.raises(RuntimeError, match="CUDA is not available"):
        tl.zeros(2, device="cuda")


def test_numpy_interop_shares_memory_both_ways():
    a = np.zeros(3, dtype=np.float32)
    t = tl.from_numpy(a)
    a[0] = 5
    assert t[0].item() == 5
    t[1] = 7
    assert a[1] == 7
    n = t.numpy()
    n[2] = 9
    assert t[2].item() == 9
    assert np.asarray(t).base is not None or np.shares_memory(np.asarray(t), a)
    with pytest.raises(RuntimeError, match=r"Can't call numpy\(\) on Tensor that requires grad. Use "
                                           r"tensor.detach\(\).numpy\(\) instead."):
        tl.ones(2, requires_grad=True).numpy()
    assert tl.ones(2, requires_grad=True).detach().numpy().tolist() == [1, 1]
    with pytest.raises(TypeError, match=r"expected np.ndarray"):
        tl.from_numpy([1, 2])
    d = tl.from_dlpack(np.arange(3.0))
    assert d.tolist() == [0.0, 1.0, 2.0]


def test_to_dtype_and_conversions():
    x = tl.tensor([1.7, -2.2])
    assert x.to(tl.int64).tolist() == [1, -2]
    assert x.long().dtype == tl.int64 and x.double().dtype == tl.float64 and x.half().dtype == tl.float16
    assert x.int().dtype == tl.int32 and x.bool().tolist() == [True, True]
    assert x.to(tl.float32) is x
    assert float(tl.tensor(2.5)) == 2.5 and int(tl.tensor(3)) == 3
    with pytest.raises(RuntimeError, match="ambiguous"):
        bool(tl.ones(2))



@pytest.mark.parametrize("bad", [("f8", "x"), [("a", "i4"), ("a", "i4")], "no_such_dtype", 3.5])
def test_an_uninterpretable_dtype_is_a_type_error(bad):
    """NumPy refuses some of these with ValueError, others with TypeError; tensorlib says TypeError for all."""
    with pytest.raises(TypeError, match="cannot interpret|not understood|Cannot interpret|must be tensorlib.dtype"):
        tl.zeros(2, dtype=bad)

def test_elementwise_forward_matches_numpy():
    rng = np.random.default_rng(0)
    a = rng.uniform(0.1, 2, (3, 4)).astype(np.float32)
    b = rng.uniform(0.1, 2, (4,)).astype(np.float32)
    A, Bt = tl.tensor(a), tl.tensor(b)
    checks = {
        "add": (A + Bt, a + b), "sub": (A - Bt, a - b), "mul": (A * Bt, a * b), "div": (A / Bt, a / b),
        "pow": (A ** Bt, a ** b), "exp": (A.exp(), np.exp(a)), "log": (A.log(), np.log(a)),
        "sqrt": (A.sqrt(), np.sqrt(a)), "rsqrt": (A.rsqrt(), 1 / np.sqrt(a)), "tanh": (A.tanh(), np.tanh(a)),
        "sigmoid": (A.sigmoid(), 1 / (1 + np.exp(-a))), "relu": ((A - 1).relu(), np.maximum(a - 1, 0)),
        "abs": ((A - 1).abs(), np.abs(a - 1)), "neg": (-A, -a), "reciprocal": (A.reciprocal(), 1 / a),
        "clamp": (A.clamp(0.5, 1.5), np.clip(a, 0.5, 1.5)), "maximum": (tl.maximum(A, Bt), np.maximum(a, b)),
        "remainder": (A % 0.3, np.remainder(a, 0.3)), "floor_divide": (A // 0.3, np.floor_divide(a, 0.3)),
        "silu": (tl.ops.silu(A), a / (1 + np.exp(-a))), "softplus": (tl.ops.softplus(A), np.log1p(np.exp(a))),
        "leaky": (tl.ops.leaky_relu(A - 1, 0.2), np.where(a - 1 > 0, a - 1, 0.2 * (a - 1))),
        "elu": (tl.ops.elu(A - 1), np.where(a - 1 > 0, a - 1, np.exp(a - 1) - 1)),
        "gelu_tanh": (tl.ops.gelu(A, approximate="tanh"),
                      0.5 * a * (1 + np.tanh(np.sqrt(2 / np.pi) * (a + 0.044715 * a ** 3)))),
        "where": (tl.where(A > 1, A, Bt), np.where(a > 1, a, b)),
    }
    for name, (got, want) in checks.items():
        assert got.dtype == tl.float32, name
        np.testing.assert_allclose(got.numpy(), want, rtol=1e-5, atol=1e-6, err_msg=name)
    import math
    np.testing.assert_allclose(tl.ops.gelu(A).numpy(), a * 0.5 * (1 + np.vectorize(math.erf)(a / math.sqrt(2))),
                               rtol=1e-5)


def test_comparisons_give_bool():
    a = tl.tensor([1, 2, 3])
    assert (a > 1).dtype == tl.bool and (a > 1).tolist() == [False, True, True]
    assert (a == 2).tolist() == [False, True, False] and (a != 2).tolist() == [True, False, True]
    assert ((a > 1) & (a < 3)).tolist() == [False, True, False]
    assert (~(a > 1)).tolist() == [True, False, False]


def test_shape_ops_match_numpy():
    a = np.arange(24.0).reshape(2, 3, 4)
    t = tl.tensor(a)
    np.testing.assert_array_equal(t.reshape(4, -1).numpy(), a.reshape(4, -1))
    np.testing.assert_array_equal(t.permute(2, 0, 1).numpy(), a.transpose(2, 0, 1))
    np.testing.assert_array_equal(t.flatten(1).numpy(), a.reshape(2, 12))
    np.testing.assert_array_equal(t.unflatten(2, (2, 2)).numpy(), a.reshape(2, 3, 2, 2))
    np.testing.assert_array_equal(t[:, None].squeeze(1).numpy(), a)
    np.testing.assert_array_equal(t.repeat(2, 1, 1).numpy(), np.tile(a, (2, 1, 1)))
    np.testing.assert_array_equal(tl.cat([t, t], 2).numpy(), np.concatenate([a, a], 2))
    np.testing.assert_array_equal(tl.stack([t, t], 1).numpy(), np.stack([a, a], 1))
    assert [c.shape for c in t.chunk(2, 2)] == [(2, 3, 2), (2, 3, 2)]
    assert [c.shape for c in t.split(3, 2)] == [(2, 3, 3), (2, 3, 1)]
    assert [c.shape for c in t.split([1, 3], 2)] == [(2, 3, 1), (2, 3, 3)]
    np.testing.assert_array_equal(t.expand(5, 2, 3, 4).numpy(), np.broadcast_to(a, (5, 2, 3, 4)))
    with pytest.raises(RuntimeError, match="view size is not compatible"):
        t.transpose(0, 2).view(-1)
    with pytest.raises(RuntimeError, match="shape '\\[5, -1\\]' is invalid for input of size 24"):
        t.reshape(5, -1)
    with pytest.raises(RuntimeError, match="Sizes of tensors must match except in dimension 0"):
        tl.cat([tl.zeros(2, 3), tl.zeros(2, 4)])
    with pytest.raises(RuntimeError, match="Tensors must have same number of dimensions: got 2 and 1"):
        tl.cat([tl.zeros(2, 3), tl.zeros(3)])
    assert tl.cat([tl.zeros(2, 3), tl.zeros(0), tl.ones(1, 3)]).shape == (3, 3)     # torch's legacy empty input
    for fn in (tl.cat, tl.stack):       # torch's TypeError, naming the element that is no tensor
        with pytest.raises(TypeError, match="expected Tensor as element 1 in argument 0, but got list"):
            fn([tl.zeros(2), [1.0, 2.0]])
    with pytest.raises(RuntimeError, match=r"mat1 and mat2 shapes cannot be multiplied \(2x3 and 2x3\)"):
        tl.zeros(2, 3) @ tl.zeros(2, 3)


def test_views_share_memory_and_versions():
    base = tl.zeros(4)
    v = base[1:3]
    v.fill_(1.0)
    assert base.tolist() == [0, 1, 1, 0]
    assert base._version == 1 and v._version_counter == 1
    w = base.view(2, 2)
    w.add_(1)
    assert base.tolist() == [1, 2, 2, 1]


def test_indexing_matches_numpy():
    a = np.arange(24.0).reshape(4, 6)
    t = tl.tensor(a)
    for idx in [1, -1, (1, 2), slice(1, 3), (Ellipsis, 2), (None, 1), (slice(None), [0, 2, 2]),
                (a > 10,), ([0, 1], [2, 3])]:
        parts = idx if isinstance(idx, tuple) else (idx,)
        ti = tuple(tl.tensor(i) if isinstance(i, np.ndarray) else i for i in parts)
        np.testing.assert_array_equal(t[ti].numpy(), a[idx], err_msg=str(idx))
    np.testing.assert_array_equal(t[tl.tensor(a > 10)].numpy(), a[a > 10])
    np.testing.assert_array_equal(t[tl.tensor([3, 0])].numpy(), a[[3, 0]])
    with pytest.raises(IndexError, match="index 4 is out of bounds for dimension 0 with size 4"):
        t[4]
    t2 = tl.tensor(a.copy())
    t2[t2 > 20] = 0
    b = a.copy()
    b[b > 20] = 0
    np.testing.assert_array_equal(t2.numpy(), b)
    t2[0] = tl.tensor([9.0] * 6)
    assert t2[0].tolist() == [9.0] * 6


def test_gather_scatter_index_select_masked_fill_one_hot():
    a = np.arange(12.0).reshape(3, 4)
    t = tl.tensor(a)
    idx = np.array([[0, 3], [1, 1], [2, 0]])
    np.testing.assert_array_equal(t.gather(1, tl.tensor(idx)).numpy(), np.take_along_axis(a, idx, 1))
    z = tl.zeros(3, 4, dtype=tl.float64).scatter_add(1, tl.tensor(idx), tl.ones(3, 2, dtype=tl.float64))
    want = np.zeros((3, 4))
    np.add.at(want, (np.arange(3)[:, None], idx), 1)
    np.testing.assert_array_equal(z.numpy(), want)
    np.testing.assert_array_equal(t.index_select(1, tl.tensor([3, 0])).numpy(), a[:, [3, 0]])
    np.testing.assert_array_equal(t.masked_fill(t > 5, -1).numpy(), np.where(a > 5, -1, a))
    oh = tl.one_hot(tl.tensor([0, 2, 1]), 3)
    assert oh.dtype == tl.int64 and oh.tolist() == [[1, 0, 0], [0, 0, 1], [0, 1, 0]]


def test_inplace_ops():
    x = tl.ones(3)
    x.add_(2).mul_(3).sub_(1).div_(2)
    assert x.tolist() == [4.0, 4.0, 4.0]
    x.clamp_(max=3.0)
    assert x.tolist() == [3.0, 3.0, 3.0]
    x.zero_()
    assert x.tolist() == [0.0, 0.0, 0.0]
    x.fill_(2.5)
    assert x.tolist() == [2.5] * 3
    x.copy_(tl.tensor([1, 2, 3]))
    assert x.tolist() == [1.0, 2.0, 3.0] and x.dtype == tl.float32
    x += 1
    assert x.tolist() == [2.0, 3.0, 4.0]
    i = tl.tensor([1, 2])
    with pytest.raises(RuntimeError, match="result type Float can't be cast to the desired output type Long"):
        i.add_(1.5)
    tl.manual_seed(1)
    u = tl.empty(1000).uniform_(2, 3)
    assert 2 <= u.min().item() and u.max().item() < 3
    n = tl.empty(10000, dtype=tl.float64).normal_(5, 2)
    assert abs(n.mean().item() - 5) < 0.1 and abs(n.std().item() - 2) < 0.1


def test_shapes_that_do_not_broadcast_raise_torchs_errors():
    """torch's RuntimeError and wording, not NumPy's ValueError (checked against torch 2.13)."""
    cases = [(lambda: tl.zeros(3) + tl.ones(4), "The size of tensor a (3) must match the size of tensor b (4) at "
                                                 "non-singleton dimension 0"),
             (lambda: tl.zeros(2, 3) * tl.ones(4, 5), "The size of tensor a (3) must match the size of tensor b (5) "
                                                       "at non-singleton dimension 1"),
             (lambda: tl.zeros(3).add_(tl.ones(4)), "The size of tensor a (3) must match the size of tensor b (4)"),
             (lambda: tl.zeros(3).mul_(tl.ones(2, 3)), r"output with shape \[3\] doesn't match the broadcast shape "
                                                       r"\[2, 3\]")]
    import re
    for k, (f, msg) in enumerate(cases):
        with pytest.raises(RuntimeError, match=msg if k == 3 else re.escape(msg)):
            f()
    assert tuple((tl.zeros(3, 1) - tl.ones(2)).shape) == (3, 2)
    # every path through the dispatcher: three operands, copy_, the optimizers' in-place ops, autograd's
    same_as_torch = [
        (lambda: tl.where(tl.ones(3, dtype=tl.bool), tl.ones(4), tl.ones(3)), "The size of tensor a (3) must match "
                                                                               "the size of tensor b (4)"),
        (lambda: tl.zeros(3).copy_(tl.ones(4)), "The size of tensor a (3) must match the size of tensor b (4)"),
        (lambda: tl.zeros(3).copy_(tl.ones(2, 3)), "output with shape [3] doesn't match the broadcast shape [2, 3]"),
        (lambda: tl.zeros(3).lerp_(tl.ones(2, 3), 0.5), "output with shape [3] doesn't match the broadcast shape"),
        (lambda: (tl.zeros(3, requires_grad=True) * 1).mul_(tl.ones(2, 3)), "output with shape [3] doesn't match")]
    for f, msg in same_as_torch:
        with pytest.raises(RuntimeError, match=re.escape(msg)):
            f()


def test_factory_and_expand_errors_read_as_torchs():
    import re
    with pytest.raises(RuntimeError, match=re.escape("The expanded size of the tensor (5) must match the existing "
                                                     "size (3) at non-singleton dimension 1.  Target sizes: [4, 5].")):
        tl.ones(2, 3).expand(4, 5)
    with pytest.raises(RuntimeError, match="upper bound and lower bound inconsistent with step sign"):
        tl.arange(0, 5, -1)
    assert tl.arange(5, 0, -2).tolist() == [5, 3, 1] and tl.arange(3, 3).shape == (0,)
    with pytest.raises(RuntimeError, match="random_ expects 'from' to be less than 'to', but got from=5 >= to=2"):
        tl.randint(5, 2, (3,))
    with pytest.raises(RuntimeError, match="but got tensorlib.FloatTensor instead"):
        tl.nn.functional.embedding(tl.ones(2), tl.ones(4, 3))


def test_to_refuses_a_keyword_it_has_not_as_torch_does():
    """`a.to(requires_grad=True)` (pytorch/tutorials' former_torchies autograd tutorial) is torch's TypeError
    listing to()'s overloads, not a Python one about an internal function."""
    x = tl.ones(2)
    with pytest.raises(TypeError) as e:
        x.to(requires_grad=True)
    lines = str(e.value).splitlines()
    assert lines[0] == ("to() received an invalid combination of arguments - got (requires_grad=bool, ), but "
                        "expected one of:")
    assert lines[3] == (" * (Tensor tensor, bool non_blocking = False, bool copy = False, *, "
                        "tensorlib.memory_format memory_format = None)")
    with pytest.raises(TypeError, match=r"got \(tensorlib.dtype, requires_grad=bool\)"):
        x.to(tl.float64, requires_grad=True)
    with pytest.raises(TypeError, match=r"got \(str, foo=int\)"):
        x.to("cpu", foo=1)
    y = x.to(dtype=tl.float64, copy=True, non_blocking=False, memory_format=tl.preserve_format)
    assert y.dtype == tl.float64


def test_tensor_and_size_name_the_package_as_torchs_do():
    """torch.Tensor and torch.Size print as <class 'torch.Tensor'> (pytorch/tutorials' nnft_tutorial prints
    type(t)); tensorlib's as <class 'tensorlib.Tensor'>, and pickling the class finds it there."""
    import pickle
    t = tl.ones(2)
    assert str(type(t)) == "<class 'tensorlib.Tensor'>" and str(type(t.shape)) == "<class 'tensorlib.Size'>"
    assert pickle.loads(pickle.dumps(tl.Tensor)) is tl.Tensor and pickle.loads(pickle.dumps(t)).tolist() == [1.0, 1.0]
