"""Arguments tensorlib accepted and ignored, side by side with torch 2.13: each case runs the same program on
both (T is torch or tensorlib) and compares the values, dtypes, layouts, strides or the error (type and
message, torch's namespace replaced)."""
import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="comparison with torch needs torch installed")

import tensorlib as tl  # noqa: E402

X = np.arange(120, dtype=np.float32).reshape(2, 3, 4, 5) / 7


def _x(T):
    return T.tensor(X)


def _t(T):
    return T.tensor(np.arange(12.0, dtype=np.float32).reshape(3, 4)).t()


def _outcome(f, T):
    try:
        r = f(T)
    except Exception as e:     # noqa: BLE001 - the error is the outcome compared
        # (the list of backends that torch's dispatcher refusal ends with is its build's: left out)
        msg = str(e).replace("torch.", "T.").replace("tensorlib.", "T.").split("\n")[0]
        return ("error", type(e).__name__, msg.split(" is only available for these backends")[0])
    return _plain(r)


def _plain(r):
    if isinstance(r, (tuple, list)):
        return type(r)(_plain(v) for v in r)
    if isinstance(r, (torch.Tensor, tl.Tensor)):
        if r.layout != (torch.strided if isinstance(r, torch.Tensor) else tl.strided):
            return ("sparse", tuple(r.shape), str(r.dtype).split(".")[-1], r._indices().tolist(),
                    r._values().tolist())
        return ("tensor", tuple(r.shape), str(r.dtype).split(".")[-1], tuple(r.stride()), r.detach().tolist())
    if isinstance(r, (torch.dtype, tl.dtype)) or str(type(r).__name__) in ("layout", "memory_format"):
        return str(r).split(".")[-1]
    return r


CASES = {
    "norm_dtype": lambda T: T.norm(T.tensor([3.0, 4.0]), dtype=T.float64),
    "norm_dtype_p1_dim": lambda T: T.tensor([[3.0, 4.0]]).norm(p=1, dim=1, dtype=T.float64),
    "norm_dtype_complex": lambda T: T.norm(T.tensor([3j, 4.0]), dtype=T.complex128),
    "norm_dtype_int": lambda T: T.norm(T.tensor([3.0]), dtype=T.int64),
    "norm_dtype_narrow": lambda T: T.norm(T.tensor([3.0], dtype=T.float64), dtype=T.float32),
    "norm_dtype_real_for_complex": lambda T: T.norm(T.tensor([3j]), dtype=T.float64),
    "vector_norm_dtype_half": lambda T: T.linalg.vector_norm(T.tensor([3.0]), dtype=T.float16),
    "matrix_norm_dtype_complex": lambda T: T.linalg.matrix_norm(T.eye(2), dtype=T.complex64),
    "randperm_rg": lambda T: T.randperm(3, dtype=T.float32, requires_grad=True).requires_grad,
    "randperm_rg_int": lambda T: T.randperm(3, requires_grad=True),
    "randint_like_rg": lambda T: T.randint_like(T.zeros(3), 5, requires_grad=True).requires_grad,
    "randint_like_rg_int": lambda T: T.randint_like(T.zeros(3, dtype=T.int64), 5, requires_grad=True),
    "svd_driver": lambda T: T.linalg.svd(T.eye(3), driver="gesvd"),
    "svdvals_driver": lambda T: T.linalg.svdvals(T.eye(3), driver="gesvda"),
    "svd_driver_none": lambda T: T.linalg.svd(T.eye(3), driver=None)[1],
    "repeat_il_tensor_ok": lambda T: T.repeat_interleave(T.tensor([1, 2]), T.tensor([1, 2]), output_size=3),
    "repeat_il_tensor_bad": lambda T: T.repeat_interleave(T.tensor([1, 2]), T.tensor([1, 2]), output_size=4),
    "repeat_il_int_bad": lambda T: T.repeat_interleave(T.tensor([1, 2]), 2, output_size=3),
    "repeat_il_int_ok": lambda T: T.repeat_interleave(T.tensor([1, 2]), 2, output_size=4),
    "repeat_il_counts_bad": lambda T: T.repeat_interleave(T.tensor([1, 2]), output_size=4),
    "repeat_il_one_count_bad": lambda T: T.repeat_interleave(T.tensor([1, 2]), T.tensor([2]), output_size=3),
    "zeros_sparse": lambda T: T.zeros(2, 3, layout=T.sparse_coo),
    "zeros_sparse_rg": lambda T: T.zeros(2, 3, layout=T.sparse_coo, requires_grad=True).requires_grad,
    "empty_sparse_int": lambda T: T.empty(2, layout=T.sparse_coo, dtype=T.int64),
    "zeros_like_sparse": lambda T: T.zeros_like(T.zeros(2), layout=T.sparse_coo),
    "ones_sparse": lambda T: T.ones(2, layout=T.sparse_coo),
    "zeros_layout_int": lambda T: T.zeros(2, layout=3),
    "empty_strided_sparse": lambda T: T.empty_strided((2,), (1,), layout=T.sparse_coo),
    "new_empty_strided_sparse": lambda T: T.zeros(2).new_empty_strided((2,), (1,), layout=T.sparse_coo),
    "empty_like_sparse": lambda T: T.empty_like(T.zeros(2), layout=T.sparse_coo),
    "logspace_sparse": lambda T: T.logspace(0, 1, 3, layout=T.sparse_coo),
    "fftfreq_sparse": lambda T: T.fft.fftfreq(4, layout=T.sparse_coo),
    "rfftfreq_sparse": lambda T: T.fft.rfftfreq(4, layout=T.sparse_coo),
    "tril_indices_sparse": lambda T: T.tril_indices(3, 3, layout=T.sparse_coo),
    "triu_indices_sparse": lambda T: T.triu_indices(3, 3, layout=T.sparse_coo),
    "scalar_tensor_sparse": lambda T: T.scalar_tensor(1.0, layout=T.sparse_coo),
    "hann_sparse": lambda T: T.hann_window(4, layout=T.sparse_coo),
    "hamming_sparse": lambda T: T.hamming_window(4, layout=T.sparse_coo),
    "blackman_sparse_f64": lambda T: T.blackman_window(4, dtype=T.float64, layout=T.sparse_coo),
    "bartlett_sparse_long": lambda T: T.bartlett_window(4, dtype=T.int64, layout=T.sparse_coo),
    "kaiser_sparse": lambda T: T.kaiser_window(4, layout=T.sparse_coo),
    "hann_strided": lambda T: T.hann_window(4, layout=T.strided),
    "cdist_bad_mode": lambda T: T.cdist(T.ones(2, 3), T.ones(2, 3), compute_mode="foo"),
    "cdist_p1_mm": lambda T: T.cdist(T.eye(3), T.ones(2, 3), p=1, compute_mode="use_mm_for_euclid_dist"),
    "sparse_check_invariants": lambda T: T.sparse_coo_tensor(T.tensor([[5]]), T.tensor([1.0]), (2,),
                                                             check_invariants=True),
    "empty_cl": lambda T: T.empty(2, 3, 4, 5, memory_format=T.channels_last).stride(),
    "empty_cl_size1": lambda T: T.empty(2, 1, 4, 5, memory_format=T.channels_last).stride(),
    "empty_cl_size0": lambda T: T.empty(2, 0, 4, 5, memory_format=T.channels_last).stride(),
    "empty_cl3d": lambda T: T.empty(2, 3, 4, 5, 6, memory_format=T.channels_last_3d).stride(),
    "empty_cl_rank": lambda T: T.empty(2, 3, 4, memory_format=T.channels_last),
    "empty_cl3d_rank": lambda T: T.empty(2, 3, 4, 5, memory_format=T.channels_last_3d),
    "empty_pf": lambda T: T.empty(2, memory_format=T.preserve_format),
    "contig_cl": lambda T: _x(T).contiguous(memory_format=T.channels_last),
    "contig_cl3d": lambda T: T.tensor(np.ones((2, 3, 2, 2, 2), np.float32)).contiguous(
        memory_format=T.channels_last_3d).stride(),
    "contig_cl_rank": lambda T: T.ones(2, 3, 4).contiguous(memory_format=T.channels_last),
    "contig_pf": lambda T: _x(T).contiguous(memory_format=T.preserve_format).stride(),
    "contig_pf_t": lambda T: _t(T).contiguous(memory_format=T.preserve_format),
    "contig_back": lambda T: _x(T).contiguous(memory_format=T.channels_last).contiguous(),
    "contig_bad": lambda T: _x(T).contiguous(memory_format=3),
    "clone_cl": lambda T: _x(T).clone(memory_format=T.channels_last),
    "clone_pf_cl": lambda T: _x(T).contiguous(memory_format=T.channels_last).clone(),
    "clone_t": lambda T: _t(T).clone(),
    "clone_cf_t": lambda T: _t(T).clone(memory_format=T.contiguous_format),
    "clone_cl_rank": lambda T: _t(T).clone(memory_format=T.channels_last),
    "clone_slice": lambda T: T.tensor(np.arange(24.0).reshape(4, 6))[:, ::2].t().clone(),
    "clone_expand_col": lambda T: T.tensor([[1.0], [2.0], [3.0]]).expand(3, 4).clone(),
    "clone_expand_row": lambda T: T.tensor([[1.0, 2.0, 3.0, 4.0]]).expand(3, 4).clone(),
    "clone_permute": lambda T: T.tensor(np.arange(24.0).reshape(2, 3, 4)).permute(2, 0, 1).clone(),
    "clone_cl_slice": lambda T: _x(T).contiguous(memory_format=T.channels_last)[:, :, ::2].clone(),
    "clone_bad": lambda T: _t(T).clone(memory_format=3),
    "empty_like_t": lambda T: T.empty_like(_t(T)).stride(),
    "zeros_like_t": lambda T: T.zeros_like(_t(T)),
    "ones_like_cl": lambda T: T.ones_like(_x(T), memory_format=T.channels_last),
    "full_like_cl": lambda T: T.full_like(_x(T), 2.0, memory_format=T.channels_last),
    "full_like_t": lambda T: T.full_like(_t(T), 2.0),
    "empty_like_cl": lambda T: T.empty_like(_x(T), memory_format=T.channels_last).stride(),
    "rand_like_cl": lambda T: T.rand_like(_x(T), memory_format=T.channels_last).stride(),
    "randn_like_cl": lambda T: T.randn_like(_x(T), memory_format=T.channels_last).stride(),
    "randint_like_cl": lambda T: T.randint_like(_x(T), 5, memory_format=T.channels_last).stride(),
    "randint_like_t": lambda T: T.randint_like(_t(T), 5).stride(),
    "empty_like_rank": lambda T: T.empty_like(T.ones(2, 3, 4), memory_format=T.channels_last),
    "empty_like_bad": lambda T: T.empty_like(_t(T), memory_format=3),
    "to_cl": lambda T: _x(T).to(memory_format=T.channels_last),
    "to_cl_dtype": lambda T: _x(T).to(T.float64, memory_format=T.channels_last),
    "to_t_dtype": lambda T: _t(T).to(T.float64),
    "to_t_cf_same": lambda T: _t(T).to(memory_format=T.contiguous_format).stride(),
    "to_t_cf_dtype": lambda T: _t(T).to(T.float64, memory_format=T.contiguous_format).stride(),
    "to_t_copy": lambda T: _t(T).to(copy=True).stride(),
    "to_cl_rank": lambda T: T.ones(2, 3, 4).to(memory_format=T.channels_last),
    "float_cl": lambda T: _x(T).float(memory_format=T.channels_last).stride(),
    "double_cl": lambda T: _x(T).double(memory_format=T.channels_last),
    "cpu_cl": lambda T: _x(T).cpu(memory_format=T.channels_last).stride(),
    "resize_cl": lambda T: T.empty(0).resize_(2, 3, 4, 5, memory_format=T.channels_last).stride(),
    "resize_same_cl": lambda T: T.empty(2, 3, 4, 5).resize_(2, 3, 4, 5, memory_format=T.channels_last).stride(),
    "resize_cl3d": lambda T: T.empty(0).resize_(2, 3, 4, 5, 6, memory_format=T.channels_last_3d).stride(),
    "resize_cl_rank": lambda T: T.empty(0).resize_(2, 3, 4, memory_format=T.channels_last),
    "resize_pf": lambda T: T.empty(0).resize_(2, memory_format=T.preserve_format),
    "resize_as_cl": lambda T: T.empty(0).resize_as_(_x(T), memory_format=T.channels_last).stride(),
    "resize_as_pf": lambda T: T.empty(0).resize_as_(_x(T).contiguous(memory_format=T.channels_last),
                                                    memory_format=T.preserve_format).stride(),
    "resize_as_default": lambda T: T.empty(0).resize_as_(_x(T).contiguous(memory_format=T.channels_last)).stride(),
    "is_contig_cl": lambda T: (_x(T).contiguous(memory_format=T.channels_last).is_contiguous(),
                               _x(T).contiguous(memory_format=T.channels_last).is_contiguous(
                                   memory_format=T.channels_last)),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_same_as_torch(name):
    f = CASES[name]
    assert _outcome(f, tl) == _outcome(f, torch)


def _gather_sparse(T):
    a = T.tensor(np.arange(6.0).reshape(2, 3), requires_grad=True)
    T.gather(a, 1, T.tensor([[0, 0], [2, 1]]), sparse_grad=True).mul(T.tensor([[1.0, 2.0], [3.0, 4.0]])).sum() \
        .backward()
    b = T.tensor(np.arange(6.0).reshape(2, 3), requires_grad=True)
    (T.gather(b, 0, T.tensor([[1, 0, 1]]), sparse_grad=True).sum() + b.sum()).backward()
    c = T.tensor(3.0, requires_grad=True)
    T.gather(c, 0, T.tensor(0), sparse_grad=True).backward()
    d = T.tensor(np.arange(6.0).reshape(2, 3), requires_grad=True)
    (g,) = T.autograd.grad(T.gather(d, 1, T.tensor([[0], [2]]), sparse_grad=True).sum(), d)
    return (_plain(a.grad), a.grad.is_coalesced(), _plain(a.grad.to_dense()), _plain(b.grad), _plain(c.grad),
            _plain(c.grad.to_dense()), _plain(g.to_dense()))


def test_gather_sparse_grad_same_as_torch():
    assert _gather_sparse(tl) == _gather_sparse(torch)


def test_cdist_compute_modes_same_as_torch():
    rng = np.random.default_rng(0)
    a = (rng.standard_normal((3, 4)) * 1e3).astype(np.float32)
    b = a + np.float32(1e-3)
    big = rng.standard_normal((30, 3)).astype(np.float32)
    batch = rng.standard_normal((2, 5, 3)).astype(np.float32)
    for mode in ("use_mm_for_euclid_dist_if_necessary", "use_mm_for_euclid_dist", "donot_use_mm_for_euclid_dist"):
        for x1, x2 in ((a, b), (big, big), (batch, big[:6]), (a.astype(np.float64), b.astype(np.float64))):
            r = tl.cdist(tl.tensor(x1), tl.tensor(x2), compute_mode=mode).numpy()
            e = torch.cdist(torch.tensor(x1), torch.tensor(x2), compute_mode=mode).numpy()
            assert r.shape == e.shape and r.dtype == e.dtype
            # the product path's rounding is torch's up to the order of its sums (the BLAS's, per CPU): the squared
            # distance's error scale is |x|^2 eps, so a distance near 0 is off by up to about sqrt(eps) |x| (this
            # read `... ** 2 ** 0.5`, |x| to the power 1.41, which held on an AVX2 machine and not on an AVX-512 one)
            tol = (8 * np.finfo(x1.dtype).eps) ** 0.5 * float(np.abs(x1).max()) + 1e-6
            np.testing.assert_allclose(r, e, atol=max(tol, 1e-5), rtol=1e-4)
            assert (r.diagonal(axis1=-2, axis2=-1) == 0).all() == (e.diagonal(axis1=-2, axis2=-1) == 0).all() \
                if x1 is x2 else True
    x = rng.standard_normal((4, 3))
    grads = []
    for T in (tl, torch):
        v = T.tensor(x, requires_grad=True)
        T.cdist(v, T.tensor(x + 1), compute_mode="use_mm_for_euclid_dist").sum().backward()
        grads.append(v.grad.numpy())
    np.testing.assert_allclose(grads[0], grads[1], rtol=1e-6, atol=1e-8)
