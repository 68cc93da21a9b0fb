"""Non-contiguous, strided and aliased inputs, and strides/contiguity metadata, as torch's (no torch needed).

The first test reruns every registered op's sample call (op_cases) with each float input replaced by an equal-valued
tensor of another layout (transposed, stepped, negative strides, expanded; as a leaf and as a view of one) and
compares outputs, the inputs' values after the call and gradients with the contiguous run (devtools/strided_sweep.py,
the same sweep as a script). The others pin each difference the sweep and the side-by-side comparison with torch
(devtools/torch_compat/test_strides_against_torch.py) found, each of which gave a silently different result here.
"""
from __future__ import annotations

import numpy as np
import pytest

import tensorlib as tl
from devtools import strided_sweep
from tests.tensorlib.op_cases import all_cases

MULTI = ("is a view and is being modified inplace. This view is the output of a function that returns multiple "
         "views. Such functions do not allow the output views to be modified inplace.")


@pytest.mark.parametrize("name", sorted(all_cases()))
def test_every_op_gives_the_same_for_non_contiguous_inputs(name):
    runs, found = strided_sweep.sweep([name])
    assert not found, "\n".join(" | ".join(map(str, f)) for f in found)


def _a(*shape):
    return tl.tensor(np.arange(1.0, float(np.prod(shape)) + 1).reshape(shape) / 7)


# --- kernels that assumed C order ---------------------------------------------------------------------------

@pytest.mark.parametrize("reduce", ["sum", "prod", "mean", "amax", "amin"])
@pytest.mark.filterwarnings("ignore:index_reduce")
def test_scatter_reduce_and_index_reduce_of_a_transposed_input(reduce):
    """The kernel reduced into `out.reshape(-1)`, a copy (not a view) of an F-ordered result: a transposed input's
    result was the input unchanged."""
    a = _a(3, 4)
    i = tl.tensor([[0, 1, 0], [2, 2, 3], [1, 0, 1]])
    s = _a(3, 3) + 1
    want = a.contiguous().scatter_reduce(1, i, s, reduce)
    got = a.t().contiguous().t().scatter_reduce(1, i, s, reduce)
    assert np.allclose(got.numpy(), want.numpy())
    if reduce == "sum":
        return      # (index_reduce has no sum)
    j = tl.tensor([2, 0, 2])
    b = _a(3, 4)
    src = _a(3, 4) + 2
    want = b.index_reduce(0, j, src, reduce)
    got = b.t().contiguous().t().index_reduce(0, j, src, reduce)
    assert np.allclose(got.numpy(), want.numpy())


# --- in place on a base, through views made before ----------------------------------------------------------

def test_a_view_made_before_an_inplace_op_on_its_base_takes_the_new_history():
    """torch replays a view over its base after the base changes in place; here the view kept its old history, so
    the gradient of (v * v) was 2 v (v the new values) instead of 2 v * 2: half torch's."""
    x = _a(3, 4).requires_grad_()
    y = x * 1
    v = y[0]
    y.mul_(2)
    (v * v).sum().backward()
    want = np.zeros((3, 4))
    want[0] = 8 * x.detach().numpy()[0]
    assert np.allclose(x.grad.numpy(), want)


def test_views_of_views_and_transposes_made_before_an_inplace_op_on_the_base():
    x = _a(3, 4).requires_grad_()
    y = x * 1
    w = y[1:][:, 1:]
    t = y.t()
    y.mul_(3)
    y.mul_(2)
    ((w * w).sum() + (t * 1).sum()).backward()
    want = np.full((3, 4), 6.0)
    want[1:, 1:] += 2 * 36 * x.detach().numpy()[1:, 1:]
    assert np.allclose(x.grad.numpy(), want)


# --- as_strided's storage ---------------------------------------------------------------------------------

def test_storage_offset_and_as_strided_of_an_as_strided_view():
    """NumPy's as_strided view hangs off a DummyArray, so its storage was taken to be itself: storage_offset() 0,
    and a second as_strided indexed the first view's elements rather than the storage's."""
    x = tl.arange(20.0)
    a = x.as_strided((4, 4), (4, 1), 2)
    assert a.storage_offset() == 2
    b = a.as_strided((3,), (2,), 3)
    assert b.storage_offset() == 3 and b.tolist() == [3.0, 5.0, 7.0]
    assert a.t().as_strided((2,), (1,)).tolist() == [2.0, 3.0]
    x.as_strided((2, 2), (1, 2), 1).mul_(10)
    assert x[:6].tolist() == [0.0, 10.0, 20.0, 30.0, 40.0, 5.0]


# --- view as another dtype ----------------------------------------------------------------------------------

@pytest.mark.parametrize("make, dtype, message", [
    (lambda: tl.arange(12.0).reshape(3, 4).t(), tl.int16,
     "self.stride(-1) must be 1 to view Float as Short (different element sizes), but got 4"),
    (lambda: tl.arange(12.0).reshape(3, 4).t(), tl.int64,
     "self.size(-1) must be divisible by 2 to view Float as Long (different element sizes), but got 3"),
    (lambda: tl.arange(100.0).as_strided((2, 4), (8, 1), 1), tl.int64,
     "self.storage_offset() must be divisible by 2 to view Float as Long (different element sizes), but got 1"),
    (lambda: tl.arange(100.0).as_strided((2, 4), (7, 1), 2), tl.int64,
     "self.stride(0) must be divisible by 2 to view Float as Long (different element sizes), but got 7"),
    (lambda: tl.arange(100.0).as_strided((2, 4), (7, 2), 2), tl.int64,
     "self.stride(-1) must be 1 to view Float as Long (different element sizes), but got 2"),
    (lambda: tl.tensor(1.0), tl.int16, "self.dim() cannot be 0 to view Float as Short (different element sizes)"),
])
def test_view_as_a_dtype_of_another_size_refuses_torchs_layouts(make, dtype, message):
    """NumPy's ValueError (or, for an odd row stride or storage offset, a view torch refuses) before."""
    with pytest.raises(RuntimeError) as e:
        make().view(dtype)
    assert str(e.value) == message


def test_view_as_a_dtype_of_another_size_keeps_torchs_geometry():
    x = tl.arange(24.0).reshape(3, 8)[:, 2:]
    y = x.view(tl.int64)
    assert (y.shape, y.stride(), y.storage_offset()) == ((3, 3), (4, 1), 1)
    z = x.view(tl.int16)
    assert (z.shape, z.stride(), z.storage_offset()) == ((3, 12), (16, 1), 4)


# --- outputs of functions of several views ----------------------------------------------------------------

@pytest.mark.parametrize("fn, name, nr", [
    (lambda y: y.unbind(0)[1], "Unbind", 1), (lambda y: y.split(2)[1], "Split", 1),
    (lambda y: y.chunk(2)[0], "Split", 0), (lambda y: y.split([1, 3], 1)[0], "SplitWithSizes", 0),
    (lambda y: y.unbind(0)[1][0], "Select", 0), (lambda y: y.unbind(0)[1].view(2, 2), "View", 0),
])
def test_inplace_on_an_output_of_unbind_or_split_is_torchs_error(fn, name, nr):
    x = tl.ones(3, 4, requires_grad=True)
    with pytest.raises(RuntimeError, match=f"Output {nr} of {name} {MULTI}"):
        fn(x * 1).mul_(2)


def test_outputs_of_several_views_stay_writable_where_torch_allows():
    x = tl.ones(3, 4, requires_grad=True)
    (x * 1).tensor_split(2)[0].mul_(2)          # slices in torch
    assert tl.ones(3, 4).unbind(0)[1].mul_(2).sum().item() == 8.0
    with tl.no_grad():
        assert (x * 1).unbind(0)[1].mul_(2).sum().item() == 8.0
    y = x * 1
    v = y.unbind(0)[1]
    with tl.no_grad():
        v.mul_(2)
    assert y.sum().item() == 16.0
    assert (x * 1).unbind(0)[1].detach().mul_(2).sum().item() == 8.0


# --- results' layouts ---------------------------------------------------------------------------------------

def _t():
    return tl.tensor(np.arange(1.0, 121.0).reshape(2, 3, 4, 5) / 50).transpose(1, 3)


@pytest.mark.parametrize("fn", [
    lambda x: x.sum(1), lambda x: x.sum(1, keepdim=True), lambda x: x.mean(-1), lambda x: x.amax(0),
    lambda x: x.max(1).values, lambda x: x.max(1).indices, lambda x: x.argmax(1), lambda x: x.var(1),
    lambda x: x.std(1), lambda x: x.norm(dim=1), lambda x: x.prod(1), lambda x: x.logsumexp(1),
    lambda x: (x > 0.5).all(1), lambda x: x.cumsum(1), lambda x: x.cumprod(1), lambda x: x.softmax(1),
    lambda x: x.log_softmax(-1), lambda x: x.roll(1, 1), lambda x: x.tril(), lambda x: x.triu(1),
    lambda x: x.masked_fill(x > 0.5, 0.0), lambda x: tl.cat([x, x], 1), lambda x: tl.stack([x, x]),
    lambda x: x.contiguous()[:, :1].expand(2, 5, 4, 3).float(),
    lambda x: x.contiguous()[:, :1].expand(2, 5, 4, 3).to(tl.float32),
])
def test_results_torch_makes_contiguous_are_contiguous(fn):
    """NumPy keeps a transposed input's layout where torch writes a new contiguous tensor, so .view() of the result
    raised here and worked in torch."""
    y = fn(_t())
    assert y.is_contiguous()
    y.view(-1)


def test_cat_of_channels_last_inputs_stays_channels_last():
    x = tl.arange(120.0).reshape(2, 3, 4, 5).to(memory_format=tl.channels_last)
    assert tl.cat([x, x], 1).is_contiguous(memory_format=tl.channels_last)
    assert x.roll(1, 2).is_contiguous(memory_format=tl.channels_last)


@pytest.mark.parametrize("make, dim, strides", [
    (lambda: tl.zeros(3, 4), 0, (12, 4, 1)), (lambda: tl.zeros(3, 4), 1, (4, 4, 1)),
    (lambda: tl.zeros(3, 4), 2, (4, 1, 1)), (lambda: tl.zeros(3, 4).t(), 1, (1, 12, 4)),
    (lambda: tl.zeros(3, 4).t(), 2, (1, 4, 1)), (lambda: tl.zeros(1, 4).expand(3, 4), 0, (0, 0, 1)),
    (lambda: tl.zeros(4, 6)[::2, 1::3], 2, (12, 3, 1)), (lambda: tl.tensor(1.0), 0, (1,)),
])
def test_unsqueeze_strides_as_torchs(make, dim, strides):
    """torch's new dim has stride size * stride of the dim it precedes (1 at the end); NumPy's a[None] gives 0,
    which reads as an expanded dim."""
    x = make()
    y = x.unsqueeze(dim)
    assert y.stride() == strides
    assert y._base is (x._base if x._base is not None else x)
    z = make()
    z.unsqueeze_(dim)
    assert z.stride() == strides


def test_unsqueeze_of_a_transposed_tensor_is_a_view_that_writes_through():
    x = tl.zeros(3, 4)
    y = x.t().unsqueeze(2)
    y[1, 2, 0] = 5.0
    assert x[2, 1].item() == 5.0


# --- out= ---------------------------------------------------------------------------------------------------

def _x():
    return tl.arange(12.0).reshape(3, 4) / 4


@pytest.mark.parametrize("call, outs, want", [
    (lambda o: tl.sort(-_x(), 1, out=o), lambda: (tl.zeros(4, 3).t(), tl.zeros(4, 3, dtype=tl.int64).t()),
     lambda: tl.sort(-_x(), 1)),
    (lambda o: tl.topk(_x(), 2, 1, out=o), lambda: (tl.zeros(2, 3).t(), tl.zeros(2, 3, dtype=tl.int64).t()),
     lambda: tl.topk(_x(), 2, 1)),
    (lambda o: tl.max(_x(), 1, out=o), lambda: (tl.zeros(6)[::2], tl.zeros(6, dtype=tl.int64)[::2]),
     lambda: tl.max(_x(), 1)),
    (lambda o: tl.min(_x(), 1, out=o), lambda: (tl.zeros(3), tl.zeros(3, dtype=tl.int64)), lambda: tl.min(_x(), 1)),
    (lambda o: tl.mode(_x(), 1, out=o), lambda: (tl.zeros(3), tl.zeros(3, dtype=tl.int64)), lambda: tl.mode(_x(), 1)),
    (lambda o: tl.nanmedian(_x(), 1, out=o), lambda: (tl.zeros(3), tl.zeros(3, dtype=tl.int64)),
     lambda: tl.nanmedian(_x(), 1)),
    (lambda o: tl.max(_x(), out=o), lambda: tl.zeros(()), lambda: tl.max(_x())),
    (lambda o: tl.addmm(tl.ones(3, 3), _x(), _x().t(), out=o), lambda: tl.zeros(3, 3).t(),
     lambda: tl.addmm(tl.ones(3, 3), _x(), _x().t())),
    (lambda o: tl.baddbmm(tl.zeros(2, 3, 4), tl.ones(2, 3, 2), tl.ones(2, 2, 4), out=o),
     lambda: tl.zeros(2, 4, 3).transpose(1, 2), lambda: tl.full((2, 3, 4), 2.0)),
    (lambda o: tl.cross(tl.eye(3), tl.ones(3, 3), dim=1, out=o), lambda: tl.zeros(3, 3).t(),
     lambda: tl.cross(tl.eye(3), tl.ones(3, 3), dim=1)),
    (lambda o: tl.searchsorted(tl.tensor([1.0, 2.0, 3.0]), tl.tensor([0.5, 1.5, 2.5, 3.5]), out=o),
     lambda: tl.zeros(8, dtype=tl.int64)[::2], lambda: tl.tensor([0, 1, 2, 3])),
    (lambda o: tl.bucketize(tl.tensor([0.5, 1.5]), tl.tensor([1.0, 2.0]), out=o), lambda: tl.zeros(2, dtype=tl.int64),
     lambda: tl.tensor([0, 1])),
    (lambda o: tl.bernoulli(tl.ones(3), out=o), lambda: tl.zeros(3), lambda: tl.ones(3)),
    (lambda o: tl.multinomial(tl.tensor([0.0, 1.0]), 2, True, out=o), lambda: tl.zeros(2, dtype=tl.int64),
     lambda: tl.tensor([1, 1])),
    (lambda o: tl.nn.functional.normalize(tl.ones(2, 2), out=o), lambda: tl.zeros(2, 2).t(),
     lambda: tl.full((2, 2), 0.5 ** 0.5)),
    (lambda o: tl.histogram(tl.tensor([0.0, 1.0, 1.0]), 2, out=o), lambda: (tl.zeros(2), tl.zeros(3)),
     lambda: tl.histogram(tl.tensor([0.0, 1.0, 1.0]), 2)),
])
def test_out_is_written(call, outs, want):
    """These functions took out= and ignored it: the out tensors kept their zeros."""
    o = outs()
    r = call(o)
    w = want()
    if isinstance(o, tuple):
        assert all(a is b for a, b in zip(r, o)) and type(r) is type(w)
        for a, b in zip(o, w):
            assert np.allclose(a.numpy(), b.numpy())
    else:
        assert r is o and np.allclose(o.numpy(), w.numpy())


def test_out_into_a_view_writes_its_base():
    base = tl.zeros(4, 6)
    tl.sort(-_x().t(), 0, out=(base[:, ::2], tl.zeros(4, 3, dtype=tl.int64)))
    assert np.allclose(base[:, ::2].numpy(), tl.sort(-_x().t(), 0).values.numpy())
    assert not base[:, 1::2].numpy().any()


@pytest.mark.parametrize("index, strides", [
    ((1, Ellipsis, None), (4, 1, 1)), ((None, None), (24, 24, 12, 4, 1)), ((slice(None), None, 1), (12, 12, 1)),
    ((Ellipsis, None, slice(None)), (12, 4, 4, 1)), ((None,), (24, 12, 4, 1)), ((0, 0, 0, None), (1,)),
    ((None, 1, None, slice(None), None), (24, 12, 4, 4, 1)), ((Ellipsis, None, 1), (12, 4, 4)),
])
def test_a_none_in_an_index_gives_torchs_stride(index, strides):
    """NumPy's new axis has stride 0; torch's is an unsqueeze's (x[:, None, 1] sees the dim the 1 removes later)."""
    x = tl.zeros(2, 3, 4)
    v = x[index]
    assert v.stride() == strides and v._base is x
    v.fill_(1.0)
    assert x.sum().item() == v.numel()


def test_a_none_index_of_transposed_and_expanded_tensors():
    x = tl.zeros(2, 3, 4).transpose(0, 2)
    assert x[..., None].stride() == (1, 4, 12, 1)
    assert x[:, :1][None, ..., None].stride() == (4, 1, 4, 12, 1)
    assert tl.zeros(1, 4).expand(3, 4)[:, None].stride() == (0, 4, 1)


def test_unflatten_sizes_that_do_not_multiply_up_is_torchs_error():
    with pytest.raises(RuntimeError, match=r"unflatten: Provided sizes \[3, 2\] don't multiply up to the size of dim 1 "
                                           r"\(4\) in the input tensor"):
        tl.zeros(3, 4).unflatten(1, (3, 2))
