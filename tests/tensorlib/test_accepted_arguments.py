"""Arguments that were accepted and changed nothing (the project's rule: make them work or refuse them): each
now does what torch's does, or raises torch's error. Values and strides are torch 2.13's (checked side by side
in devtools/torch_compat/test_accepted_arguments_against_torch.py)."""
from __future__ import annotations

import numpy as np
import pytest

import tensorlib as tl


def test_norm_dtype_computes_and_returns_in_the_dtype_and_checks_it():
    x = tl.tensor([3.0, 4.0])
    r = tl.norm(x, dtype=tl.float64)
    assert r.dtype == tl.float64 and r.item() == 5.0
    assert x.norm(p=1, dim=0, dtype=tl.float64).dtype == tl.float64
    assert tl.norm(tl.tensor([3j, 4.0]), dtype=tl.complex128).dtype == tl.float64
    with pytest.raises(RuntimeError, match="dtype should be floating point or complex, but got Long"):
        tl.norm(x, dtype=tl.int64)
    with pytest.raises(RuntimeError, match=r"the dtype of the input \(Double\) should be convertible without "
                                           r"narrowing to the specified dtype \(Float\)"):
        tl.norm(x.double(), dtype=tl.float32)
    with pytest.raises(RuntimeError, match="dtype should be real for real inputs, but got ComplexFloat"):
        tl.linalg.vector_norm(x, dtype=tl.complex64)
    with pytest.raises(RuntimeError, match="linalg.matrix_norm: dtype should be complex for complex inputs"):
        tl.linalg.matrix_norm(tl.ones(2, 2, dtype=tl.complex64), dtype=tl.float64)


def test_randperm_and_randint_like_require_grad_as_asked():
    assert tl.randperm(3, dtype=tl.float32, requires_grad=True).requires_grad
    r = tl.randint_like(tl.zeros(3), 5, requires_grad=True)
    assert r.requires_grad and r.is_leaf
    for f in (lambda: tl.randperm(3, requires_grad=True),
              lambda: tl.randint_like(tl.zeros(3, dtype=tl.int64), 5, requires_grad=True)):
        with pytest.raises(RuntimeError, match="Only Tensors of floating point and complex dtype can require"):
            f()


def test_svd_driver_is_refused_on_the_cpu_with_torchs_message():
    A = tl.eye(3)
    for f in (lambda: tl.linalg.svd(A, driver="gesvd"), lambda: tl.linalg.svdvals(A, driver="gesvdj")):
        with pytest.raises(RuntimeError, match="keyword argument `driver=` is only supported on CUDA inputs with "
                                               "cuSOLVER backend"):
            f()
    assert tl.linalg.svd(A, driver=None)[1].tolist() == [1.0, 1.0, 1.0]


def test_repeat_interleave_checks_output_size():
    x = tl.tensor([1, 2])
    assert tl.repeat_interleave(x, tl.tensor([1, 2]), output_size=3).tolist() == [1, 2, 2]
    assert tl.repeat_interleave(x, 2, output_size=4).tolist() == [1, 1, 2, 2]
    with pytest.raises(RuntimeError, match="^allocated size does not match required size$"):
        tl.repeat_interleave(x, tl.tensor([1, 2]), output_size=4)
    with pytest.raises(RuntimeError, match="^allocated size does not match required size$"):
        tl.repeat_interleave(x, output_size=4)
    with pytest.raises(RuntimeError, match="repeat_interleave: Invalid output_size, expected 4 but got 3"):
        tl.repeat_interleave(x, 2, output_size=3)


def test_gather_sparse_grad_gives_a_sparse_gradient():
    a = tl.arange(6.0).reshape(2, 3).requires_grad_()
    idx = tl.tensor([[0, 0], [2, 1]])
    tl.gather(a, 1, idx, sparse_grad=True).mul(tl.tensor([[1.0, 2.0], [3.0, 4.0]])).sum().backward()
    g = a.grad
    assert g.layout == tl.sparse_coo and not g.is_coalesced()
    assert g._indices().tolist() == [[0, 0, 1, 1], [0, 0, 2, 1]] and g._values().tolist() == [1.0, 2.0, 3.0, 4.0]
    assert g.to_dense().tolist() == [[3.0, 0.0, 0.0], [0.0, 4.0, 3.0]]
    b = tl.arange(6.0).reshape(2, 3).requires_grad_()     # with a dense contribution: a dense sum
    (tl.gather(b, 0, tl.tensor([[1, 0, 1]]), sparse_grad=True).sum() + b.sum()).backward()
    assert b.grad.layout == tl.strided and b.grad.tolist() == [[1.0, 2.0, 1.0], [2.0, 1.0, 2.0]]
    c = tl.tensor(3.0, requires_grad=True)                 # 0-dim: no sparse dims
    tl.gather(c, 0, tl.tensor(0), sparse_grad=True).backward()
    assert c.grad.layout == tl.sparse_coo and tuple(c.grad._indices().shape) == (0, 1)
    assert c.grad.to_dense().item() == 1.0


def test_factories_layout_sparse_coo_as_torch_or_refused():
    z = tl.zeros(2, 3, layout=tl.sparse_coo, requires_grad=True)
    assert z.layout == tl.sparse_coo and z.shape == (2, 3) and z._nnz() == 0 and z.requires_grad
    assert tuple(z._indices().shape) == (2, 0) and z.is_coalesced()
    e = tl.empty(2, layout=tl.sparse_coo, dtype=tl.int64)
    assert e.layout == tl.sparse_coo and e.dtype == tl.int64
    assert tl.zeros(2, layout=tl.strided).layout == tl.strided
    with pytest.raises(TypeError, match="zeros\\(\\): argument 'layout' must be tensorlib.layout, not int"):
        tl.zeros(2, layout=3)
    with pytest.raises(RuntimeError, match=r"full\(...\) is not implemented for sparse layout"):
        tl.ones(2, layout=tl.sparse_coo)
    with pytest.raises(RuntimeError, match=r"^hann_window is not implemented for sparse types, got: TensorOptions"
                                           r"\(dtype=float \(default\), device=cpu, layout=Sparse"):
        tl.hann_window(4, layout=tl.sparse_coo)
    with pytest.raises(RuntimeError, match=r"^kaiser_window is not implemented for sparse types, got: "
                                           r"TensorOptions\(dtype=double, device=cpu"):
        tl.kaiser_window(4, dtype=tl.float64, layout=tl.sparse_coo)
    for name, f in [("empty_strided", lambda: tl.empty_strided((2,), (1,), layout=tl.sparse_coo)),
                    ("logspace.out", lambda: tl.logspace(0, 1, 3, layout=tl.sparse_coo)),
                    ("arange.start_out", lambda: tl.fft.fftfreq(4, layout=tl.sparse_coo)),
                    ("arange.start_out", lambda: tl.fft.rfftfreq(4, layout=tl.sparse_coo)),
                    ("tril_indices", lambda: tl.tril_indices(3, 3, layout=tl.sparse_coo)),
                    ("triu_indices", lambda: tl.triu_indices(3, 3, layout=tl.sparse_coo)),
                    ("empty_strided", lambda: tl.zeros(2).new_empty_strided((2,), (1,), layout=tl.sparse_coo)),
                    ("empty_strided", lambda: tl.empty_like(tl.zeros(2), layout=tl.sparse_coo))]:
        with pytest.raises(NotImplementedError, match=f"Could not run 'aten::{name}' with arguments from the "
                                                      "'SparseCPU' backend"):
            f()
    assert tl.zeros_like(tl.zeros(2), layout=tl.sparse_coo).layout == tl.sparse_coo
    assert tl.scalar_tensor(1.0, layout=tl.sparse_coo).layout == tl.strided     # as torch's


def test_cdist_compute_mode_chooses_the_matrix_product_path():
    a = tl.tensor(np.array([[1000.0, 2000.0], [3000.0, -1000.0]], np.float32))
    b = a + 1e-3
    direct = tl.cdist(a, b, compute_mode="donot_use_mm_for_euclid_dist").diagonal()
    mm = tl.cdist(a, b, compute_mode="use_mm_for_euclid_dist").diagonal()
    np.testing.assert_allclose(direct.numpy(), [np.float32(1e-3) * np.sqrt(2)] * 2, rtol=0.2)
    assert not np.allclose(mm.numpy(), direct.numpy(), rtol=0.2)     # the product's cancellation
    assert tl.cdist(a, b).tolist() == tl.cdist(a, b, compute_mode="donot_use_mm_for_euclid_dist").tolist()
    big = tl.tensor(np.random.default_rng(0).standard_normal((30, 3)).astype(np.float32))
    assert tl.cdist(big, big).diagonal().abs().max().item() > 0        # > 25 rows: the product by default
    assert tl.cdist(big, big, compute_mode="donot_use_mm_for_euclid_dist").diagonal().abs().max().item() == 0
    assert tl.cdist(a, b, p=1, compute_mode="use_mm_for_euclid_dist").tolist() == tl.cdist(a, b, p=1).tolist()
    with pytest.raises(ValueError, match="^foo is not a valid value for compute_mode$"):
        tl.cdist(a, b, compute_mode="foo")


def test_sparse_coo_tensor_check_invariants_validates_indices():
    with pytest.raises(RuntimeError, match="size is inconsistent with indices: for dim 0, size is 2 but found "
                                           "index 5"):
        tl.sparse_coo_tensor(tl.tensor([[5]]), tl.tensor([1.0]), (2,), check_invariants=True)


def _strides(t):
    return tuple(t.stride())


def test_memory_format_channels_last_strides():
    cl = tl.channels_last
    x = tl.randn(2, 3, 4, 5)
    for t in (tl.empty(2, 3, 4, 5, memory_format=cl), x.contiguous(memory_format=cl), x.clone(memory_format=cl),
              x.to(memory_format=cl), tl.empty_like(x, memory_format=cl), tl.zeros_like(x, memory_format=cl),
              tl.ones_like(x, memory_format=cl), tl.full_like(x, 1.0, memory_format=cl),
              tl.rand_like(x, memory_format=cl), tl.randn_like(x, memory_format=cl),
              tl.randint_like(x, 5, memory_format=cl), x.float(memory_format=cl), x.double(memory_format=cl),
              x.cpu(memory_format=cl), tl.empty(0).resize_(2, 3, 4, 5, memory_format=cl),
              tl.empty(2, 3, 4, 5).resize_(2, 3, 4, 5, memory_format=cl),
              tl.empty(0).resize_as_(x, memory_format=cl)):
        assert _strides(t) == (60, 1, 15, 3) and t.is_contiguous(memory_format=cl) and not t.is_contiguous()
    assert x.contiguous(memory_format=cl).tolist() == x.tolist() and x.clone(memory_format=cl).tolist() == x.tolist()
    assert tl.full_like(x, 2.0, memory_format=cl).eq(2).all()
    y = tl.randn(2, 3, 4, 5, 6)
    assert _strides(y.contiguous(memory_format=tl.channels_last_3d)) == (360, 1, 90, 18, 3)
    assert _strides(tl.empty(2, 1, 4, 5, memory_format=cl)) == (20, 1, 5, 1)
    c = x.contiguous(memory_format=cl)
    assert c.contiguous(memory_format=cl) is c and c.to(memory_format=cl) is c
    assert _strides(c.contiguous()) == (60, 20, 5, 1) and _strides(c.to(memory_format=tl.contiguous_format)) == \
        (60, 20, 5, 1)
    assert _strides(tl.empty(0).resize_as_(c, memory_format=tl.preserve_format)) == (60, 1, 15, 3)
    assert _strides(tl.empty(0).resize_as_(c)) == (60, 20, 5, 1)


def test_memory_format_errors_are_torchs():
    x = tl.randn(2, 3, 4)
    cl = tl.channels_last
    for f in (lambda: tl.empty(2, 3, 4, memory_format=cl), lambda: x.contiguous(memory_format=cl),
              lambda: x.clone(memory_format=cl), lambda: x.to(memory_format=cl),
              lambda: tl.empty_like(x, memory_format=cl), lambda: tl.empty(0).resize_(2, 3, 4, memory_format=cl)):
        with pytest.raises(RuntimeError, match="^required rank 4 tensor to use channels_last format$"):
            f()
    with pytest.raises(RuntimeError, match="required rank 5 tensor to use channels_last_3d format"):
        tl.empty(2, 3, 4, 5, memory_format=tl.channels_last_3d)
    with pytest.raises(RuntimeError, match="^unsupported memory format Preserve$"):
        tl.empty(2, memory_format=tl.preserve_format)
    with pytest.raises(RuntimeError, match="^Unsupported memory formatPreserve$"):
        tl.empty(0).resize_(2, memory_format=tl.preserve_format)
    with pytest.raises(RuntimeError, match="preserve memory format is unsupported by the contiguous operator"):
        tl.randn(3, 4).t().contiguous(memory_format=tl.preserve_format)
    z = tl.randn(3, 4)
    assert z.contiguous(memory_format=tl.preserve_format) is z
    for name, f in [("clone", lambda: z.clone(memory_format=3)),
                    ("empty_like", lambda: tl.empty_like(z, memory_format=3)),
                    ("contiguous", lambda: z.contiguous(memory_format=3)),
                    ("resize_", lambda: z.resize_(3, memory_format=3))]:
        with pytest.raises(TypeError, match=f"^{name}\\(\\): argument 'memory_format' must be "
                                            "tensorlib.memory_format, not int$"):
            f()


def test_preserve_format_keeps_a_dense_inputs_strides():
    t = tl.randn(3, 4).t()
    assert _strides(t.clone()) == (1, 4) and _strides(tl.empty_like(t)) == (1, 4)
    assert _strides(tl.zeros_like(t)) == (1, 4) and _strides(tl.full_like(t, 2.0)) == (1, 4)
    assert _strides(tl.randint_like(t, 5)) == (1, 4) and _strides(t.to(copy=True)) == (1, 4)
    assert _strides(t.to(tl.float64)) == (1, 4) and t.clone().tolist() == t.tolist()
    assert _strides(t.clone(memory_format=tl.contiguous_format)) == (3, 1)
    assert _strides(t.to(tl.float64, memory_format=tl.contiguous_format)) == (3, 1)
    assert t.to(memory_format=tl.contiguous_format) is t                   # torch's: its suggested format already
    assert _strides(tl.randn(4, 6)[:, ::2].t().clone()) == (1, 3)          # not dense: dense in the same order
    assert _strides(tl.randn(3, 1).expand(3, 4).clone()) == (4, 1)
    assert _strides(tl.randn(1, 4).expand(3, 4).clone()) == (4, 1)         # a 0 stride keeps the row-major order
    assert _strides(tl.randn(2, 3, 4).permute(2, 0, 1).clone()) == (1, 12, 4)
    c = tl.randn(2, 3, 4, 5).contiguous(memory_format=tl.channels_last)
    assert _strides(c.clone()) == (60, 1, 15, 3) and _strides(c[:, :, ::2].clone()) == (30, 1, 15, 3)
    assert t.reshape(-1).tolist() == t.contiguous().reshape(-1).tolist()    # reshape's copy stays row-major


def test_memory_format_gradients_flow():
    x = tl.randn(2, 3, 4, 5, requires_grad=True)
    cl = tl.channels_last
    for f in (lambda v: v.contiguous(memory_format=cl), lambda v: v.clone(memory_format=cl),
              lambda v: v.to(memory_format=cl)):
        x.grad = None
        f(x).mul(2).sum().backward()
        assert x.grad.eq(2).all()


def test_module_to_and_conv_weight_conversion_use_the_memory_format():
    m = tl.nn.Sequential(tl.nn.Conv2d(3, 4, 3), tl.nn.BatchNorm2d(4))
    m.to(memory_format=tl.channels_last)
    assert m[0].weight.is_contiguous(memory_format=tl.channels_last) and m[0].bias.is_contiguous()
    assert isinstance(m[0].weight, tl.nn.Parameter)
    y = m(tl.randn(2, 3, 6, 6).to(memory_format=tl.channels_last))
    assert y.shape == (2, 4, 4, 4)
    n = tl.nn.utils.convert_conv2d_weight_memory_format(tl.nn.Conv2d(3, 4, 3), tl.channels_last)
    assert tuple(n.weight.stride()) == (27, 1, 9, 3)


def test_factories_out_fills_and_returns_out_as_torchs():
    """zeros/ones/empty/full(out=): out, resized and filled, in its own dtype (dtype=None) or refused when dtype
    differs (torch's words); they accepted out= and returned a new tensor before."""
    o = tl.full((3,), 7)
    assert tl.zeros(3, out=o) is o and o.tolist() == [0, 0, 0] and o.dtype == tl.int64
    o = tl.full((2,), 7.0)
    assert tl.ones(3, out=o) is o and o.tolist() == [1.0, 1.0, 1.0]
    assert tl.full((2, 2), 2.0, out=o) is o and o.shape == (2, 2) and o.sum().item() == 8.0
    assert tl.empty((4,), out=o) is o and o.shape == (4,)
    with pytest.raises(RuntimeError, match=r"dtype Long does not match dtype of out parameter \(Float\)"):
        tl.zeros(3, out=o, dtype=tl.int64)
    tl.zeros(3, out=o, requires_grad=True)
    assert o.requires_grad and o.is_leaf


def test_pin_memory_true_needs_a_gpu_as_torchs():
    """pin_memory=True of a factory pins the result with CUDA; without a usable GPU torch refuses it (it was
    accepted and ignored)."""
    if tl.cuda.is_available():
        assert tl.zeros(2, pin_memory=True).is_pinned()
        return
    msg = "pin_memory=True requires a CUDA or other accelerator backend"
    for make in (lambda: tl.empty(2, pin_memory=True), lambda: tl.tensor([1.0], pin_memory=True),
                 lambda: tl.zeros(2, pin_memory=True), lambda: tl.ones(2, pin_memory=True),
                 lambda: tl.full((2,), 1.0, pin_memory=True), lambda: tl.empty_strided((2,), (1,), pin_memory=True),
                 lambda: tl.scalar_tensor(1.0, pin_memory=True),
                 lambda: tl.sparse_coo_tensor([[0]], [1.0], (2,), pin_memory=True)):
        with pytest.raises(RuntimeError, match=msg):
            make()


def test_out_of_arange_linspace_eye_rand_randn():
    o = tl.zeros(2)
    assert tl.arange(3, out=o) is o and o.tolist() == [0.0, 1.0, 2.0]      # resized, in out's dtype
    assert tl.linspace(0, 1, 5, out=o) is o and o.tolist() == [0.0, 0.25, 0.5, 0.75, 1.0]
    assert tl.eye(2, out=o) is o and o.tolist() == [[1.0, 0.0], [0.0, 1.0]]
    tl.manual_seed(0)
    ref = tl.rand(3)
    tl.manual_seed(0)
    assert tl.rand(3, out=o) is o and tl.equal(o, ref)
    assert tl.randn(2, 2, out=o).shape == (2, 2)


def test_factory_out_that_requires_grad_is_refused_as_torchs():
    o = tl.ones(3, requires_grad=True)
    with pytest.raises(RuntimeError, match=r"zeros\(\): functions with out=... arguments don't support automatic"):
        tl.zeros(3, out=o)
    with tl.no_grad():
        assert tl.zeros(3, out=o) is o and o.tolist() == [0.0, 0.0, 0.0]
