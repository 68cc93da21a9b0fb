"""Basic indexing (ints, slices, None, Ellipsis and mixes) gives views, 0-d ones included, and in-place ops
on views behave as torch's: they write through to the base, count versions there, and, while autograd
records, give the base torch's CopySlices history (or raise torch's errors). Issue 21, item 2."""
from __future__ import annotations

import numpy as np
import pytest

import tensorlib as tl

VIEW_OF_LEAF = "a view of a leaf Variable that requires grad is being used in an in-place operation."


def _arange(*shape, requires_grad=False):
    t = tl.tensor(np.arange(float(np.prod(shape))).reshape(shape))
    return t.requires_grad_() if requires_grad else t


# --- views write through ------------------------------------------------------------------------------------

@pytest.mark.parametrize("index", [(0, 1), (1, -1), (Ellipsis, 1, 2), (0, Ellipsis, 2), (None, 1, 1), (1,),
                                   (slice(None), 2), (0, slice(1, 3))])
def test_basic_index_is_a_view_that_writes_through(index):
    x = tl.zeros(2, 3)
    v = x[index]
    v.fill_(7)
    expected = np.zeros((2, 3))
    expected[index] = 7
    assert x.tolist() == expected.tolist()
    assert v._base is x


@pytest.mark.parametrize("op", [lambda v: v.fill_(7.0), lambda v: v.zero_(), lambda v: v.add_(9),
                                lambda v: v.mul_(3), lambda v: v.copy_(tl.tensor(7.0)),
                                lambda v: v.clamp_(min=5.0), lambda v: v.sub_(tl.tensor(2.0)),
                                lambda v: v.__setitem__((), 7.0), lambda v: v.__setitem__(Ellipsis, 7.0)])
def test_every_inplace_op_on_a_0d_view_changes_the_base(op):
    x = tl.ones(2, 3)
    want = np.ones((2, 3))
    v = x[1, 2]
    op(v)
    want[1, 2] = v.item()
    assert x.tolist() == want.tolist()
    assert x[1, 2].item() != 1.0
    assert x._version == 1


def test_1d_element_and_optimizer_style_update_under_no_grad():
    x = tl.zeros(3)
    x[0].add_(9)
    assert x.tolist() == [9.0, 0.0, 0.0]
    w = tl.ones(4, requires_grad=True)
    with tl.no_grad():
        w[0].zero_()
        for i in range(1, 4):
            w[i].sub_(0.5 * i)
    assert w.tolist() == [0.0, 0.5, 0.0, -0.5]
    assert w.requires_grad and w.is_leaf


def test_a_0d_view_sees_later_updates_of_its_base():
    x = tl.zeros(2, 2)
    v = x[1, 1]
    x.add_(1)
    x[1, 1] = 100.0
    assert v.item() == 100.0 and float(v) == 100.0 and int(v) == 100
    assert repr(v) == "tensor(100.)"
    assert v.shape == () and v.stride() == () and v.is_contiguous()


def test_unbind_select_and_data_of_a_0d_view_share_memory():
    x = tl.zeros(3)
    x.unbind(0)[1].fill_(4)
    tl.select(x, 0, 2).fill_(5)
    w = tl.ones(3, requires_grad=True)
    w[1].data.fill_(6)
    assert x.tolist() == [0.0, 4.0, 5.0] and w.tolist() == [1.0, 6.0, 1.0]
    w.sum().backward()
    w.grad[1].zero_()
    assert w.grad.tolist() == [1.0, 0.0, 1.0]


def test_bool_index_stays_a_copy_as_in_torch():
    x = tl.zeros(3, requires_grad=True)
    y = x[True]
    assert y.shape == (1, 3) and y.grad_fn.name() == "IndexBackward0" and y._base is None


def test_0d_view_autograd_attributes():
    w = _arange(6, requires_grad=True)
    v = w[3]
    assert v.grad_fn.name() == "SelectBackward0" and v.requires_grad and not v.is_leaf
    v.retain_grad()
    (v * v).backward()
    assert v.grad.item() == 6.0 and w.grad.tolist() == [0, 0, 0, 6, 0, 0]


# --- autograd: torch's errors ----------------------------------------------------------------------------------

@pytest.mark.parametrize("op", [lambda w: w[0].fill_(1.0), lambda w: w[0:2].fill_(1.0), lambda w: w[0].add_(1.0),
                                lambda w: w[0][0].mul_(2), lambda w: w[0].__setitem__((), 2.0),
                                lambda w: w.t()[1].zero_()])
def test_inplace_on_a_view_of_a_leaf_that_requires_grad_is_torchs_error(op):
    w = tl.ones(2, 2, requires_grad=True)
    with pytest.raises(RuntimeError) as e:
        op(w)
    assert str(e.value) == VIEW_OF_LEAF
    assert w.tolist() == [[1.0, 1.0], [1.0, 1.0]]


def test_a_leaf_that_is_itself_a_view_is_a_view_of_a_leaf():
    x = tl.arange(6.0).reshape(2, 3).requires_grad_()
    with pytest.raises(RuntimeError, match="^a view of a leaf Variable"):
        x.add_(1)


def test_view_made_under_no_grad_modified_with_grad_on():
    y = _arange(3, requires_grad=True) * 1
    with tl.no_grad():
        v = y[0]
    with pytest.raises(RuntimeError, match="^A view was created in no_grad mode and is being modified inplace"):
        v.mul_(2)


def test_inplace_on_an_overlapping_view_is_refused():
    x = _arange(3, requires_grad=True)
    y = (x * 1).reshape(1, 3).expand(2, 3)
    with pytest.raises(RuntimeError, match="^unsupported operation: more than one element of the written-to"):
        y.add_(1)


# --- autograd: CopySlices -------------------------------------------------------------------------------------

def test_inplace_on_a_0d_view_of_a_non_leaf_reaches_the_gradient():
    x = tl.ones(2, 3, requires_grad=True)
    y = x * 2
    v = y[0, 1]
    v.mul_(3)
    assert y.grad_fn.name() == "tensorlib::autograd::CopySlices" and v.requires_grad and not v.is_leaf
    y.sum().backward()
    assert x.grad.tolist() == [[2.0, 6.0, 2.0], [2.0, 2.0, 2.0]]


def test_copy_into_a_row_view_sends_gradients_to_both_sides():
    x = _arange(2, 3, requires_grad=True)
    w = _arange(3, requires_grad=True)
    y = x * 1
    y[1].copy_(w * 10)
    (y ** 2).sum().backward()
    assert x.grad.tolist() == [[0.0, 2.0, 4.0], [0.0, 0.0, 0.0]]
    assert w.grad.tolist() == [0.0, 200.0, 400.0]


def test_base_without_grad_takes_the_history_of_what_was_written_into_it():
    x = tl.zeros(2, 3)
    w = _arange(3, requires_grad=True)
    x[1].add_(w)
    x[0, 0].mul_(w[2])
    assert x.requires_grad and x.grad_fn.name() == "tensorlib::autograd::CopySlices"
    (x * x).sum().backward()
    assert w.grad.tolist() == [0.0, 2.0, 4.0]


def test_views_of_views_transposes_clamp_and_setitem_on_a_0d_view():
    x = _arange(2, 3, requires_grad=True)
    y = x * 1
    y.t()[2].mul_(5)             # column 2, through a transpose
    y[:, 0:2][1].clamp_(max=3.5)  # row 1 of a slice
    w = tl.tensor(2.0, requires_grad=True)
    y[0][1][()] = w * 7           # setitem on a 0-d view of a view
    y.sum().backward()
    assert y.tolist() == [[0.0, 14.0, 10.0], [3.0, 3.5, 25.0]]
    assert x.grad.tolist() == [[1.0, 0.0, 5.0], [1.0, 0.0, 5.0]]
    assert w.grad.item() == 7.0


def test_a_sibling_view_made_before_the_inplace_op_uses_the_new_history():
    x = _arange(2, 3, requires_grad=True)
    y = x * 2
    h = y[0]
    y[0][1].mul_(3)
    (h * tl.tensor([1.0, 2.0, 3.0])).sum().backward()
    assert x.grad.tolist() == [[2.0, 12.0, 6.0], [0.0, 0.0, 0.0]]


def test_rows_updated_in_a_loop():
    x = _arange(3, 2, requires_grad=True)
    y = x * 1
    for i in range(3):
        y[i].mul_(i + 1)
    y.sum().backward()
    assert x.grad.tolist() == [[1.0, 1.0], [2.0, 2.0], [3.0, 3.0]]


def test_saved_tensor_modified_through_a_view_is_caught_at_backward():
    x = _arange(3, requires_grad=True)
    y = x * 1
    z = y * y
    y[0].mul_(2)
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        z.sum().backward()


def test_gradients_through_views_of_views():
    x = _arange(3, 4, requires_grad=True)
    (x[1:][:, ::2][0, 1] * 5).backward()
    assert x.grad.tolist() == [[0, 0, 0, 0], [0, 0, 5, 0], [0, 0, 0, 0]]


def test_detached_view_keeps_no_link_to_its_base():
    x = tl.ones(3, requires_grad=True)
    w = tl.tensor(2.0, requires_grad=True)
    d = x.detach()
    d.add_(w)
    assert x.is_leaf and x.grad_fn is None and d.requires_grad and x.tolist() == [3.0, 3.0, 3.0]


@pytest.mark.cuda
def test_0d_views_write_through_on_cuda():
    x = tl.zeros(2, 3, device="cuda")
    x[0, 1].fill_(7)
    x[1][2].add_(1)
    y = tl.ones(2, 3, device="cuda", requires_grad=True)
    z = y * 2
    z[1, 1].mul_(3)
    z.sum().backward()
    assert x.tolist() == [[0.0, 7.0, 0.0], [0.0, 0.0, 1.0]]
    assert y.grad.tolist() == [[2.0, 2.0, 2.0], [2.0, 6.0, 2.0]]


def test_diagonal_is_a_writable_view_as_torch():
    """torch's diagonal is a view: `A.diagonal().fill_(0)` / `.add_(eps)` write into A (it was a copy, and such
    writes were silently lost), and autograd follows an in-place op on it into the base (CopySlices)."""
    a = tl.tensor([[2.0, 1.0], [3.0, -4.0]])
    d = a.diagonal()
    assert d._base is a
    d.sign_()
    np.testing.assert_array_equal(a.numpy(), [[1.0, 1.0], [3.0, -1.0]])
    b = tl.zeros(2, 3, 3)
    b.diagonal(dim1=-2, dim2=-1).fill_(-1.0)
    np.testing.assert_array_equal(b.numpy(), np.broadcast_to(-np.eye(3), (2, 3, 3)))
    c = tl.zeros(3, 4)
    c.diagonal(1).add_(5.0)
    np.testing.assert_array_equal(c.numpy(), np.eye(3, 4, 1) * 5)
    x = tl.tensor(np.arange(9.0).reshape(3, 3), requires_grad=True)
    y = x * 2
    y.diagonal().mul_(tl.tensor([1.0, 10.0, 100.0]))
    y.sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), 2 * np.diag([1.0, 10.0, 100.0]) + 2 * (1 - np.eye(3)))
    z = tl.tensor(np.arange(9.0).reshape(3, 3), requires_grad=True)
    (z.diagonal() * tl.arange(3.0)).sum().backward()
    np.testing.assert_array_equal(z.grad.numpy(), np.diag([0.0, 1.0, 2.0]))


def test_as_strided_views_the_storage_with_torch_geometry_errors_and_gradient():
    x = tl.arange(8.0)
    np.testing.assert_array_equal(x.as_strided((2, 2), (1, 1), 5).numpy(), [[5.0, 6.0], [6.0, 7.0]])
    np.testing.assert_array_equal(x[2:].as_strided((2,), (1,)).numpy(), [2.0, 3.0])       # its own offset
    np.testing.assert_array_equal(x[1:].as_strided((2,), (2,), 0).numpy(), [0.0, 2.0])    # storage offset 0
    for args, msg in ((((2, 2), (-1, 1)), "Negative strides are not supported"),
                      (((3, 3), (3, 3)), "requiring a storage size of 52 are out of bounds for storage of size 32"),
                      (((2, 2), (1, 1), -1), "invalid storage offset -1")):
        with pytest.raises(RuntimeError, match=msg):
            x.as_strided(*args)
    z = tl.zeros(4, 4)
    z.as_strided((4,), (5,)).fill_(1.0)               # a writable view: the diagonal
    np.testing.assert_array_equal(z.numpy(), np.eye(4))
    y = tl.arange(6.0, dtype=tl.float64, requires_grad=True)
    w = (y * 1).as_strided((3, 2), (1, 1))            # overlapping windows: their gradients add up
    (w * tl.arange(6.0, dtype=tl.float64).reshape(3, 2)).sum().backward()
    np.testing.assert_array_equal(y.grad.numpy(), [0.0, 3.0, 7.0, 5.0, 0.0, 0.0])
    assert w.grad_fn.name() == "AsStridedBackward0"
    assert tl.autograd.gradcheck(lambda t: t[1:].as_strided((3, 2), (1, 2), 2),
                                 (tl.tensor(np.random.default_rng(0).random(8), requires_grad=True),))


def test_storages_set_and_dim_order_as_torch():
    """untyped_storage()/storage() over the array that owns the memory (equal data_ptr for views of one
    tensor: how programs test sharing), set_ (share another tensor's memory, or a geometry over its storage),
    is_set_to, dim_order, const_data_ptr."""
    x = tl.arange(6.0)
    y = x[2:]
    s = y.untyped_storage()
    assert (s.nbytes(), s.size(), len(s), s.element_size()) == (24, 24, 24, 1)
    assert s.data_ptr() == x.data_ptr() == x.untyped_storage().data_ptr() and s.tolist()[4:8] == [0, 0, 128, 63]
    with pytest.warns(UserWarning, match="TypedStorage is deprecated"):
        t = y.storage()
    assert (t.size(), t.element_size(), t.dtype, t[2], t.tolist()) == (6, 4, tl.float32, 2.0, list(range(6)))
    assert tl.zeros(3).untyped_storage().data_ptr() != x.untyped_storage().data_ptr()
    assert x.dim_order() == (0,) and x.reshape(2, 3).t().dim_order() == (1, 0) and x.const_data_ptr() == x.data_ptr()
    z = tl.zeros(2)
    assert z.set_(x) is z and z.is_set_to(x) and z.tolist() == x.tolist() and not z.is_set_to(y)
    z.set_(x, 1, (2, 2), (1, 1))
    np.testing.assert_array_equal(z.numpy(), [[1.0, 2.0], [2.0, 3.0]])
    z[0, 0] = 10.0                                    # shares x's memory
    assert x[1].item() == 10.0
    assert z.set_().shape == (0,)
    with pytest.raises(RuntimeError, match="a leaf Variable that requires grad is being used in an in-place"):
        tl.ones(2, requires_grad=True).set_(x)


@pytest.mark.parametrize("src,shape", [((), (5,)), ((), ()), ((3,), (2, 3)), ((1, 4), (3, 4)),
                                       ((2, 1, 3), (4, 2, 5, 3)), ((1,), (1,)), ((3, 1), (3, 0)), ((2, 3), (2, 3)),
                                       ((1, 1), (1, 7))])
def test_broadcast_view_is_numpys_broadcast_to(src, shape):
    """expand's kernel (ops.broadcast.broadcast_view, the ndarray constructor over the array's memory, ~3x quicker
    than np.broadcast_to) gives np.broadcast_to's view: shape, strides (0 on new and size-1 dims), read-only,
    viewing the array, and np.broadcast_to's error where the shapes do not broadcast; strided arrays go to
    np.broadcast_to itself."""
    from tensorlib.ops.broadcast import broadcast_view
    a = np.asarray(np.random.default_rng(0).standard_normal(src).astype(np.float32))
    v, r = broadcast_view(a, shape), np.broadcast_to(a, shape)
    assert v.shape == r.shape and v.strides == r.strides and v.dtype == r.dtype and np.array_equal(v, r)
    assert not v.flags.writeable and (not v.size or np.shares_memory(v, a))
    with pytest.raises(ValueError):
        broadcast_view(np.ones(3), (4,))
    with pytest.raises(ValueError):
        broadcast_view(np.ones((2, 3)), (3,))
    t = np.ones((4, 3))[:, :1]                  # strided: np.broadcast_to's own view
    assert np.array_equal(broadcast_view(t, (4, 5)), np.broadcast_to(t, (4, 5)))
