"""The names a profile records for torch's aliases and composite ops, as torch 2.13's profiler records them
(devtools/torch_compat/test_profiled_names_sweep_against_torch.py sweeps the namespaces against torch itself):
an alias is a region of its own name around the op it names (`aten::arctan` over `aten::atan`), a composite
torch runs as one aten op is one top-level event of that name, and neither costs a region when no profiler
listens."""
from __future__ import annotations

import pytest

import tensorlib as tl
import tensorlib.linalg
import tensorlib.nn.functional as F
from tensorlib import _hooks as _H
from profiler import profile


def _tree(fn, *args):
    """[(name, parent name)] of the events a profile of fn(*args) records, in order."""
    with profile() as prof:
        fn(*args)
    return [(e.name, e.cpu_parent.name if e.cpu_parent is not None else None) for e in prof.events()]


def _top(tree):
    return [n for n, p in tree if p is None]


X = tl.tensor([[0.5, 0.25], [0.75, 0.125]])


@pytest.mark.parametrize("fn,alias,op", [
    (lambda x: tl.arctan(x), "aten::arctan", "aten::atan"),
    (lambda x: tl.multiply(x, x), "aten::multiply", "aten::mul"),
    (lambda x: x.divide(x), "aten::divide", "aten::div"),
    (lambda x: tl.true_divide(x, x), "aten::true_divide", "aten::div"),
    (lambda x: tl.subtract(x, x), "aten::subtract", "aten::sub"),
    (lambda x: tl.greater(x, 0.3), "aten::greater", "aten::gt"),
    (lambda x: tl.negative(x), "aten::negative", "aten::neg"),
    (lambda x: tl.absolute(x), "aten::absolute", "aten::abs"),
    (lambda x: tl.clip(x, 0.2, 0.6), "aten::clip", "aten::clamp"),
    (lambda x: tl.concat([x, x]), "aten::concat", "aten::cat"),
    (lambda x: tl.swapaxes(x, 0, 1), "aten::swapaxes", "aten::transpose"),
    (lambda x: tl.moveaxis(x, 0, 1), "aten::moveaxis", "aten::movedim"),
    (lambda x: tl.ger(x[0], x[1]), "aten::ger", "aten::outer"),
    (lambda x: tl.fix(x), "aten::fix", "aten::trunc"),
    (lambda x: tl.det(x), "aten::det", "aten::linalg_det"),
    (lambda x: x.clone().arctan_(), "aten::arctan_", "aten::atan_"),
    (lambda x: x.clone().multiply_(x), "aten::multiply_", "aten::mul_"),
], ids=lambda v: v if isinstance(v, str) else "")
def test_an_alias_is_a_region_around_the_op_it_names(fn, alias, op):
    tree = _tree(fn, X)
    assert _top(tree)[-1] == alias, tree
    assert (op, alias) in tree, tree


@pytest.mark.parametrize("fn,name", [
    (lambda x: tl.acosh(x + 1), "aten::acosh"),
    (lambda x: tl.arccosh(x + 1), "aten::arccosh"),
    (lambda x: x.asinh(), "aten::asinh"),
    (lambda x: tl.atanh(x), "aten::atanh"),
    (lambda x: tl.erfc(x), "aten::erfc"),
    (lambda x: tl.logit(x), "aten::logit"),
    (lambda x: tl.square(x), "aten::square"),
    (lambda x: tl.trace(x), "aten::trace"),
    (lambda x: tl.allclose(x, x), "aten::allclose"),
    (lambda x: tl.cov(x), "aten::cov"),
    (lambda x: tl.kron(x, x), "aten::kron"),
    (lambda x: tl.split(x, 1), "aten::split"),
    (lambda x: tl.vstack([x, x]), "aten::vstack"),
    (lambda x: tl.clamp_min(x, 0.3), "aten::clamp_min"),
    (lambda x: tl.where(x > 0.3), "aten::where"),
    (lambda x: tl.linalg.matrix_power(x, 3), "aten::linalg_matrix_power"),
    (lambda x: F.cosine_similarity(x, x), "aten::cosine_similarity"),
    (lambda x: F.selu(x), "aten::selu"),
    (lambda x: F.margin_ranking_loss(x, x, x), "aten::margin_ranking_loss"),
    (lambda x: F.max_pool1d(x[None], 2), "aten::max_pool1d"),
    (lambda x: F.max_pool1d(x[None], 2, return_indices=True), "aten::max_pool1d_with_indices"),
    (lambda x: x.clone().cos_(), "aten::cos_"),
], ids=lambda v: v if isinstance(v, str) else "")
def test_a_composite_is_one_top_level_event_of_torchs_name(fn, name):
    tree = _tree(fn, X)
    assert _top(tree)[-1:] == [name], tree


def test_inverse_hyperbolics_are_ops_with_torchs_backward():
    x = tl.tensor([1.5, 2.0], requires_grad=True)
    y = tl.acosh(x)
    assert y.grad_fn.name() == "AcoshBackward0"
    y.sum().backward()
    assert tl.allclose(x.grad, 1 / (x.detach() ** 2 - 1).sqrt())
    assert _tree(tl.acosh, x.detach()) == [("aten::acosh", None)]      # one op: not log/sqrt/mul/sub/add


def test_mse_loss_broadcasts_first_as_torchs_python_does():
    """torch's F.mse_loss calls broadcast_tensors before its op: a top-level event of its own."""
    assert _top(_tree(F.mse_loss, X, X)) == ["aten::broadcast_tensors", "aten::mse_loss"]


def test_aliases_and_composites_keep_their_names_and_signatures():
    import inspect
    assert tl.multiply.__name__ == "multiply" and tl.multiply is tl.Tensor.multiply
    assert tl.multiply.__wrapped__ is tl.mul
    assert list(inspect.signature(tl.trace).parameters) == ["self"]
    assert tl.clip(X, 0.2, 0.6).tolist() == tl.clamp(X, 0.2, 0.6).tolist()


def test_no_region_is_opened_without_a_profiler():
    """An alias or a composite costs a test of the region hooks when nothing listens: no hook is called."""
    calls = []

    class Counting(_H.Hook):
        def range_enter(self, name, kind):
            calls.append(name)

    tl.multiply(X, X)
    tl.erfc(X)
    assert _H.op_range_pair is None and calls == []
    h = _H.add_hook(Counting())
    try:
        tl.multiply(X, X)
    finally:
        _H.remove_hook(h)
    assert calls == ["multiply"]


def _backward_tree(loss_of, x):
    """The events of loss_of(x).backward() after the seed (ones_like), each as (depth, name); x has a gradient
    already (AccumulateGrad adds into it)."""
    loss_of(x).backward()
    with profile() as prof:
        loss_of(x).backward()
    evs = sorted(prof.events(), key=lambda e: (e.time_range.start, -e.time_range.end))
    seed = next(i for i, e in enumerate(evs) if e.name == "aten::ones_like")

    def depth(e):
        d = 0
        while e.cpu_parent is not None:
            e, d = e.cpu_parent, d + 1
        return d
    return [(depth(e), e.name) for e in evs[seed:] if e.cpu_parent is None or depth(e) > 0][4:]


def _node(name, *ops):
    return [(0, f"autograd::engine::evaluate_function: {name}"), (1, name), *ops]


_ACC = _node("torch::autograd::AccumulateGrad", (2, "aten::add_"))
_Y = tl.randn(2, 3, 4)


def _loss_backward(name):
    return [(2, f"aten::{name}"), (3, "aten::zeros_like"), (4, "aten::empty_like"), (5, "aten::empty"),
            (4, "aten::zero_"), (3, f"aten::{name}")]

_EXPAND = [(2, "aten::expand"), (3, "aten::as_strided")]


@pytest.mark.parametrize("loss_of,tree", [
    # a full reduction's 0-d gradient is expanded as it is (no reshape > view)
    (lambda x: x.sum(), _node("SumBackward0", *_EXPAND) + _ACC),
    (lambda x: x.mean(), _node("MeanBackward0", *_EXPAND, (2, "aten::div")) + _ACC),
    # a reduction over a dim: unsqueezed there, then expanded (torch's sum_backward)
    (lambda x: (x.sum(1) * 2).sum(), _node("SumBackward0", *_EXPAND) + _node("MulBackward0", (2, "aten::mul"))
     + _node("SumBackward1", (2, "aten::unsqueeze"), (3, "aten::as_strided"), *_EXPAND) + _ACC),
    # tanh and sigmoid: one op each, as torch's kernels
    (lambda x: x.tanh().sum(), _node("SumBackward0", *_EXPAND) + _node("TanhBackward0", (2, "aten::tanh_backward"))
     + _ACC),
    (lambda x: x.sigmoid().sum(), _node("SumBackward0", *_EXPAND)
     + _node("SigmoidBackward0", (2, "aten::sigmoid_backward")) + _ACC),
    # `1 - x` is torch's rsub (with its sub inside), x[:, 1, :] a select (a whole-dimension slice applies nothing)
    (lambda x: (1 - x).sum(), _node("SumBackward0", *_EXPAND) + _node("RsubBackward1", (2, "aten::neg")) + _ACC),
    (lambda x: x[:, 1, :].sum(), _node("SumBackward0", *_EXPAND) + _node(
        "SelectBackward0", (2, "aten::select_backward"), (3, "aten::zeros"), (3, "aten::select"),
        (4, "aten::as_strided"), (3, "aten::copy_")) + _ACC),
    # the pointwise losses: torch's <loss>_backward, its zeros_like and its out variant (binary_cross_entropy's
    # empty_like and the squeezes of its four operands, its mean's div_)
    (lambda x: F.mse_loss(x, _Y), _node("MseLossBackward0", *_loss_backward("mse_loss_backward")) + _ACC),
    (lambda x: F.smooth_l1_loss(x, _Y, beta=0.5), _node(
        "SmoothL1LossBackward0", *_loss_backward("smooth_l1_loss_backward")) + _ACC),
    (lambda x: F.huber_loss(x, _Y), _node("HuberLossBackward0", *_loss_backward("huber_loss_backward")) + _ACC),
    (lambda x: F.binary_cross_entropy(x.sigmoid(), _Y.sigmoid()), _node(
        "BinaryCrossEntropyBackward0", (2, "aten::binary_cross_entropy_backward"), (3, "aten::empty_like"),
        (4, "aten::empty_strided"), *[(3, "aten::squeeze"), (4, "aten::as_strided")] * 4, (3, "aten::div_"))
     + _node("SigmoidBackward0", (2, "aten::sigmoid_backward")) + _ACC),
    # l1_loss is a composite in torch (sub, abs, mean): its nodes are theirs
    (lambda x: F.l1_loss(x, _Y), _node("MeanBackward0", *_EXPAND, (2, "aten::div")) + _node(
        "AbsBackward0", (2, "aten::sgn"), (2, "aten::mul")) + _node("SubBackward0") + _ACC),
    # binary_cross_entropy_with_logits: torch's formula's ops, in place (grad mode is off); kl_div a composite
    (lambda x: F.binary_cross_entropy_with_logits(x, _Y.sigmoid()), _node(
        "BinaryCrossEntropyWithLogitsBackward0", (2, "aten::sigmoid"), (2, "aten::sub_"), (2, "aten::mul_"),
        (2, "aten::div_")) + _ACC),
    (lambda x: F.kl_div(x, _Y.sigmoid(), reduction="sum"), _node("SumBackward0", *_EXPAND) + _node(
        "SubBackward0", (2, "aten::neg")) + _node("MulBackward0", (2, "aten::mul")) + _ACC),
], ids=["sum", "mean", "sum_dim", "tanh", "sigmoid", "rsub", "select", "mse", "smooth_l1", "huber", "bce", "l1",
        "bce_logits", "kl_div"])
def test_backward_formulas_record_torchs_ops(loss_of, tree):
    """As torch 2.13 records these backward passes (checked side by side): the ops inside each node (torch's
    mean also shows its count's conversion, aten::to, inside the div)."""
    x = tl.randn(2, 3, 4, requires_grad=True)
    assert _backward_tree(loss_of, x) == tree


def test_forward_names_of_rsub_select_and_a_matrix_product():
    x = tl.randn(2, 3, 4)
    assert _tree(lambda: 1 - x)[:2] == [("aten::rsub", None), ("aten::sub", "aten::rsub")]
    assert _tree(lambda: x[:, 1, :])[:2] == [("aten::select", None), ("aten::as_strided", "aten::select")]
    m = tl.randn(3, 3)
    assert _tree(lambda: m @ m) == [("aten::matmul", None), ("aten::mm", "aten::matmul")]
    with pytest.raises(RuntimeError, match="with a bool tensor is not supported"):
        1 - tl.tensor([True])


def test_assignment_through_a_basic_index_is_a_view_and_a_copy():
    """As torch's indexing assigns (checked side by side): x[1:3] = t is slice + copy_, x[2:] = -1 slice + fill_,
    an index tensor one index_put_; with autograd the base's node is CopySlices and the gradients flow."""
    z = tl.zeros(6, dtype=tl.long)
    v = tl.tensor([4, 5])
    assert [n for n, _ in _tree(lambda: z.__setitem__(slice(1, 3), v))] == ["aten::slice", "aten::as_strided",
                                                                             "aten::copy_"]
    assert [n for n, _ in _tree(lambda: z.__setitem__(slice(2, None), -1))] == ["aten::slice", "aten::as_strided",
                                                                                "aten::fill_"]
    assert [n for n, _ in _tree(lambda: z.__setitem__(v, 0))] == ["aten::index_put_"]
    assert z.tolist() == [0, 4, -1, -1, 0, 0]
    a = tl.randn(5, 4, requires_grad=True)
    y = tl.randn(2, 4, requires_grad=True)
    x = a.clone()
    x[1:3] = y
    assert x.grad_fn.name().endswith("::autograd::CopySlices")
    (x * 2).sum().backward()
    assert a.grad[:, 0].tolist() == [2.0, 0.0, 0.0, 2.0, 2.0] and y.grad.tolist() == [[2.0] * 4] * 2
    with pytest.raises(RuntimeError, match=r"The expanded size of the tensor \(3\) must match the existing size "
                                           r"\(4\) at non-singleton dimension 0"):
        tl.ones(2, 3)[0] = tl.ones(4)
    x = tl.zeros(2, 3)
    x[0] = tl.ones(1, 1, 3)            # leading dims of size 1 dropped, as torch's copy_to
    assert x.tolist() == [[1.0] * 3, [0.0] * 3]


def _depths(fn):
    """[(depth, name)] of the events a profile of fn() records, in time order."""
    with profile() as prof:
        fn()
    evs = sorted(prof.events(), key=lambda e: (e.time_range.start, -e.time_range.end))

    def depth(e):
        d = 0
        while e.cpu_parent is not None:
            e, d = e.cpu_parent, d + 1
        return d
    return [(depth(e), e.name) for e in evs]


_NARROW = [(1, "aten::narrow"), (2, "aten::slice"), (3, "aten::as_strided")]
_SELECT = [(1, "aten::select"), (2, "aten::as_strided")]


@pytest.mark.parametrize("fn,tree", [
    (lambda x: x.narrow(1, 2, 4), [(0, "aten::narrow"), (1, "aten::slice"), (2, "aten::as_strided")]),
    # split(int) is torch's op `split`, a narrow per piece; a list is split_with_sizes, a strided view per piece
    (lambda x: x.split(8, 1), [(0, "aten::split")] + _NARROW * 2),
    (lambda x: x.split([4, 12], 1), [(0, "aten::split_with_sizes"), (1, "aten::as_strided"), (1, "aten::as_strided")]),
    (lambda x: x.chunk(2), [(0, "aten::chunk"), (1, "aten::split")] + [(d + 1, n) for d, n in _NARROW] * 2),
    (lambda x: x.unsafe_split(8, 1), [(0, "aten::unsafe_split")] + _NARROW * 2),
    (lambda x: x.tensor_split(2, 1), [(0, "aten::tensor_split")] + [(1, "aten::slice"), (2, "aten::as_strided")] * 2),
    (lambda x: x[:2].unbind(0), [(0, "aten::slice"), (1, "aten::as_strided"), (0, "aten::unbind")] + _SELECT * 2),
    # stack below the last dimension is a cat and a view, at the last an unsqueeze per input and a cat
    (lambda x: tl.stack([x, x]), [(0, "aten::stack"), (1, "aten::cat"), (1, "aten::view")]),
    (lambda x: tl.stack([x, x], 2), [(0, "aten::stack")] + [(1, "aten::unsqueeze"), (2, "aten::as_strided")] * 2
     + [(1, "aten::cat")]),
    # cat narrows its result where an input is not contiguous: once where all share sizes and strides
    (lambda x: tl.cat([x, x]), [(0, "aten::cat")]),
    (lambda x: tl.cat([x.t(), x.t()]), [(0, "aten::t"), (1, "aten::transpose"), (2, "aten::as_strided")] * 2
     + [(0, "aten::cat")] + _NARROW),
    (lambda x: tl.cat([x.t(), x[:8, :8]]), [(0, "aten::t"), (1, "aten::transpose"), (2, "aten::as_strided"),
                                           (0, "aten::slice"), (1, "aten::as_strided"), (0, "aten::cat")]
     + _NARROW * 2),
    # the factories: an empty and its fill; the *_like ones through empty_like's empty_strided
    (lambda x: tl.zeros(2, 3), [(0, "aten::zeros"), (1, "aten::empty"), (1, "aten::zero_")]),
    (lambda x: tl.ones(3), [(0, "aten::ones"), (1, "aten::empty"), (1, "aten::fill_")]),
    (lambda x: tl.full((3,), 2.0), [(0, "aten::full"), (1, "aten::empty"), (1, "aten::fill_")]),
    (lambda x: tl.zeros_like(x), [(0, "aten::zeros_like"), (1, "aten::empty_like"), (2, "aten::empty_strided"),
                                  (1, "aten::zero_")]),
    (lambda x: tl.full_like(x, 3), [(0, "aten::full_like"), (1, "aten::empty_like"), (2, "aten::empty_strided"),
                                    (1, "aten::fill_")]),
    (lambda x: tl.empty_like(x), [(0, "aten::empty_like"), (1, "aten::empty_strided")]),
], ids=["narrow", "split", "split_with_sizes", "chunk", "unsafe_split", "tensor_split", "unbind", "stack",
        "stack_last", "cat", "cat_strided", "cat_mixed", "zeros", "ones", "full", "zeros_like", "full_like",
        "empty_like"])
def test_forward_trees_of_splits_stack_cat_and_factories_are_torchs(fn, tree):
    """As torch 2.13 records them on one thread (checked side by side)."""
    x = tl.randn(8, 16)
    tl.set_num_threads(1)
    assert _depths(lambda: fn(x)) == tree


@pytest.mark.parametrize("fn,name", [
    (lambda x: x.split(4, 1), "SplitBackward0"), (lambda x: x.split([4, 12], 1), "SplitWithSizesBackward0"),
    (lambda x: x.chunk(2), "SplitBackward0"), (lambda x: x.unsafe_split(4, 1), "UnsafeSplitBackward0"),
    (lambda x: x.unsafe_chunk(2), "UnsafeSplitBackward0"), (lambda x: x.tensor_split(2, 1), "SliceBackward0"),
    (lambda x: x.hsplit(2), "SliceBackward0"), (lambda x: x.vsplit([2]), "SliceBackward0"),
    (lambda x: x.narrow(1, 2, 4), "SliceBackward0"), (lambda x: x.unbind(0), "UnbindBackward0"),
])
def test_split_pieces_have_torchs_nodes_and_gradients(fn, name):
    x = tl.randn(8, 16, requires_grad=True)
    pieces = fn(x)
    pieces = pieces if isinstance(pieces, tuple) else (pieces,)
    assert {p.grad_fn.name() for p in pieces} == {name}
    sum((p * (i + 1)).sum() for i, p in enumerate(pieces)).backward()
    ref = tl.zeros(8, 16)
    refs = fn(ref)
    for i, p in enumerate(refs if isinstance(refs, tuple) else (refs,)):
        p.fill_(i + 1)                              # (the pieces are views: this writes each piece's weight)
    assert ref.sum().item() > 0 and x.grad.tolist() == ref.tolist()


@pytest.mark.parametrize("loss_of,tree", [
    # stack's backward: a select of the gradient per input (torch's stack_tensors_backward)
    (lambda x: (tl.stack([x, x.detach()], 1) * 2).sum(), [(1, "StackBackward0")] + [(2, "aten::select"),
                                                                                  (3, "aten::as_strided")] * 2),
    # a narrow's node is the slice's: slice_backward
    (lambda x: (x.narrow(1, 1, 2) * 2).sum(), [(1, "SliceBackward0"), (2, "aten::slice_backward"),
                                              (3, "aten::zeros"), (3, "aten::slice"), (4, "aten::as_strided"),
                                              (3, "aten::copy_")]),
    # split's node: a cat of the pieces' gradients (its result narrowed where they are not contiguous)
    (lambda x: (tl.cat(x.split(2, 2), 0) * 2).sum(), [(1, "SplitBackward0"), (2, "aten::cat")]),
    (lambda x: (tl.cat(x.split(2, 2), 1) * 2).sum(), [(1, "CatBackward0")] + [(2, "aten::narrow"),
                                                                            (3, "aten::slice"),
                                                                            (4, "aten::as_strided")] * 2),
], ids=["stack", "narrow", "split", "cat"])
@pytest.mark.parametrize("detailed", [False, True])
def test_backward_trees_of_stack_narrow_split_and_cat_are_torchs(loss_of, tree, detailed):
    x = tl.randn(2, 3, 4, requires_grad=True)
    loss_of(x).backward()
    with profile(record_shapes=detailed, profile_memory=detailed) as prof:
        loss_of(x).backward()
    evs = sorted(prof.events(), key=lambda e: (e.time_range.start, -e.time_range.end))
    name = tree[0][1]
    i = next(i for i, e in enumerate(evs) if e.name == name)
    got = []
    for e in evs[i:]:
        d, p = 0, e
        while p.cpu_parent is not None:
            p, d = p.cpu_parent, d + 1
        if d == 0:
            break
        got.append((d, e.name))
    assert got == tree
