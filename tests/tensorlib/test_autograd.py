"""Autograd semantics and torch's errors for misuse."""
from __future__ import annotations

import contextlib
import gc
import warnings

import numpy as np
import pytest

import tensorlib as tl
from tensorlib.autograd import Function


def test_backward_accumulates_into_grad():
    x = tl.tensor([1.0, 2.0], requires_grad=True)
    (x * x).sum().backward()
    (x * 3).sum().backward()
    assert x.grad.tolist() == [5.0, 7.0]
    x.grad = None
    (x * 3).sum().backward()
    assert x.grad.tolist() == [3.0, 3.0]


def test_shared_gradient_is_never_aliased_between_leaves():
    a = tl.ones(3, requires_grad=True)
    b = tl.ones(3, requires_grad=True)
    (a + b).sum().backward()
    a.grad.mul_(10)          # clip_grad_-style in-place update on one leaf's grad
    assert b.grad.tolist() == [1.0, 1.0, 1.0]


def test_backward_with_gradient_argument_and_errors():
    x = tl.ones(2, 2, requires_grad=True)
    y = x * 2
    with pytest.raises(RuntimeError, match="grad can be implicitly created only for scalar outputs"):
        y.backward()
    y.backward(tl.ones(2, 2))
    assert x.grad.tolist() == [[2, 2], [2, 2]]
    with pytest.raises(RuntimeError, match="element 0 of tensors does not require grad and does not have a grad_fn"):
        tl.ones(2).sum().backward()


def test_autograd_grad_and_allow_unused():
    x = tl.tensor([2.0], requires_grad=True)
    z = tl.tensor([1.0], requires_grad=True)
    y = x ** 3
    (g,) = tl.autograd.grad(y.sum(), x)
    assert g.tolist() == [12.0] and x.grad is None
    with pytest.raises(RuntimeError, match="appears to not have been used in the graph"):
        tl.autograd.grad((x * 2).sum(), [x, z])
    gx, gz = tl.autograd.grad((x * 2).sum(), [x, z], allow_unused=True)
    assert gx.tolist() == [2.0] and gz is None


class _Counted(Function):
    """The identity, counting its backward calls."""
    calls = 0

    @staticmethod
    def forward(ctx, x):
        return x * 1

    @staticmethod
    def backward(ctx, g):
        _Counted.calls += 1
        return g


def test_autograd_grad_runs_only_the_nodes_its_inputs_need():
    """As torch's engine: autograd.grad (and backward(inputs=...)) stops at the inputs' nodes and runs no node
    that no input's gradient needs, so what lies beyond (or beside) is neither run nor freed."""
    _Counted.calls = 0
    x = tl.tensor([1.0, 2.0, 3.0], requires_grad=True)
    mid = _Counted.apply(x)
    lp = tl.log_softmax(mid, 0)
    side = _Counted.apply(x * 2).sum()           # a branch no input needs
    target = tl.tensor([1])
    for _ in range(3):                           # lp's node and mid's are never run, so never freed
        (g,) = tl.autograd.grad(tl.nn.functional.nll_loss(lp.unsqueeze(0), target) + side, [lp])
        assert g.tolist() == [0.0, -1.0, 0.0]
    assert _Counted.calls == 0 and x.grad is None
    with warnings.catch_warnings():
        warnings.simplefilter("error")          # (torch warns about a non-leaf's .grad only while it has none)
        lp.sum().backward(inputs=[mid], retain_graph=True)
        assert _Counted.calls == 0 and x.grad is None and mid.grad is not None
    # an input beyond another: both gradients, and the nodes between them run once per call
    loss = (lp * tl.tensor([1.0, 2.0, 3.0])).sum() + side
    gl, gx, gm = tl.autograd.grad(loss, [lp, x, mid], retain_graph=True)
    assert _Counted.calls == 2        # mid's node (x's path through it) and the side branch's (x's other path)
    (rx,) = tl.autograd.grad(loss, [x], retain_graph=True)
    assert np.allclose(gx.numpy(), rx.numpy()) and np.allclose(gl.numpy(), [1.0, 2.0, 3.0])
    assert np.allclose(gm.numpy(), tl.autograd.grad((lp * tl.tensor([1.0, 2.0, 3.0])).sum(), [mid])[0].numpy())


def test_higher_order_gradients():
    x = tl.tensor([2.0], requires_grad=True)
    y = x ** 3
    (g,) = tl.autograd.grad(y, x, create_graph=True)
    assert g.requires_grad and g.tolist() == [12.0]
    (g2,) = tl.autograd.grad(g, x, create_graph=True)
    assert g2.tolist() == [12.0]
    (g3,) = tl.autograd.grad(g2, x)
    assert g3.tolist() == [6.0]
    # double backward through a composite: d/dx sum(d/dx tanh(x)^2)
    w = tl.tensor([0.3, -0.7], dtype=tl.float64, requires_grad=True)
    (gw,) = tl.autograd.grad((w.tanh() ** 2).sum(), w, create_graph=True)
    gw.sum().backward()
    t = np.tanh(np.array([0.3, -0.7]))
    d2 = 2 * (1 - t ** 2) ** 2 - 4 * t ** 2 * (1 - t ** 2)
    np.testing.assert_allclose(w.grad.numpy(), d2)


def test_grad_modes():
    x = tl.ones(2, requires_grad=True)
    with tl.no_grad():
        assert not (x * 2).requires_grad
        assert not tl.is_grad_enabled()
        with tl.enable_grad():
            assert (x * 2).requires_grad
    assert tl.is_grad_enabled()
    tl.set_grad_enabled(False)
    assert not (x * 2).requires_grad
    tl.set_grad_enabled(True)
    with tl.set_grad_enabled(False):
        assert not (x * 2).requires_grad
    assert (x * 2).requires_grad
    with tl.inference_mode():
        assert not (x * 2).requires_grad

    @tl.no_grad()
    def f():
        return x * 2
    assert not f().requires_grad


def test_grad_fn_names_and_next_functions():
    a = tl.ones(2, requires_grad=True)
    b = tl.ones(2, 2, requires_grad=True)
    y = (a + 1) * 2
    assert y.grad_fn.name() == "MulBackward0"
    (add_fn, _), = [f for f in y.grad_fn.next_functions if f[0] is not None]
    assert add_fn.name() == "AddBackward0"
    acc = add_fn.next_functions[0][0]
    assert type(acc).__name__ == "AccumulateGrad" and acc.variable is a
    assert (b @ b).grad_fn.name() == "MmBackward0"
    assert b.sum().grad_fn.name() == "SumBackward0"
    assert b.mean().grad_fn.name() == "MeanBackward0"
    # torch names the dim overloads apart, and the profiler's backward events carry the same names
    assert b.sum(1).grad_fn.name() == "SumBackward1" and b.mean(0).grad_fn.name() == "MeanBackward1"
    assert b.prod(1).grad_fn.name() == "ProdBackward1" and b.prod().grad_fn.name() == "ProdBackward0"
    assert b.t().grad_fn.name() == "TBackward0"             # torch's: t is an op of its own
    assert b.view(4).grad_fn.name() == "ViewBackward0"
    assert b.exp().grad_fn.name() == "ExpBackward0"
    assert tl.cat([b, b]).grad_fn.name() == "CatBackward0"
    assert b[0].grad_fn.name() == "SelectBackward0"
    assert b[:, 1:].grad_fn.name() == "SliceBackward0"
    assert b[tl.tensor([1, 0])].grad_fn.name() == "IndexBackward0"


def test_requires_grad_flags():
    x = tl.ones(2)
    x.requires_grad_()
    assert x.requires_grad and x.is_leaf
    y = x * 2
    assert not y.is_leaf
    with pytest.raises(RuntimeError, match="you can only change requires_grad flags of leaf variables"):
        y.requires_grad_(False)
    with pytest.raises(RuntimeError, match="only Tensors of floating point dtype can require gradients"):
        tl.ones(2, dtype=tl.int64).requires_grad_()
    assert not x.detach().requires_grad and x.detach().is_leaf


def test_retain_grad_and_hooks():
    x = tl.tensor([1.0, 2.0], requires_grad=True)
    y = x * 3
    y.retain_grad()
    seen = []
    y.register_hook(lambda g: seen.append(g.tolist()))
    h = x.register_hook(lambda g: g * 10)
    (y * y).sum().backward()
    assert y.grad.tolist() == [6.0, 12.0]
    assert seen == [[6.0, 12.0]]
    assert x.grad.tolist() == [180.0, 360.0]
    h.remove()
    x.grad = None
    (x * 1).sum().backward()
    assert x.grad.tolist() == [1.0, 1.0]
    z = x * 2
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        assert z.grad is None
    assert any("is not a leaf Tensor" in str(m.message) for m in w)


def test_inplace_on_leaf_requiring_grad_is_refused():
    x = tl.ones(2, requires_grad=True)
    with pytest.raises(RuntimeError,
                       match="a leaf Variable that requires grad is being used in an in-place operation."):
        x.add_(1)
    with tl.no_grad():
        x.add_(1)          # allowed, as in torch (optimizers do this)
    assert x.tolist() == [2.0, 2.0]


def test_modified_saved_tensor_is_caught_at_backward():
    a = tl.ones(3, requires_grad=True)
    b = a * 2
    c = b * b            # saves b
    b.add_(1)            # bumps b's version
    with pytest.raises(RuntimeError, match=r"one of the variables needed for gradient computation has been modified "
                                           r"by an inplace operation: \[tensorlib.FloatTensor \[3\]\], which is "
                                           r"output 0 of Add, is at version 1; expected version 0 instead"):
        c.sum().backward()
    y = a.exp()
    y.mul_(2)            # exp saved its output
    with pytest.raises(RuntimeError, match="output 0 of Exp, is at version 1; expected version 0"):
        y.sum().backward()


def test_inplace_on_non_leaf_keeps_gradients_right():
    a = tl.tensor([1.0, 2.0], requires_grad=True)
    b = a * 1
    b.mul_(a)            # b = a * a, in place
    b.add_(3)
    b.sum().backward()
    assert a.grad.tolist() == [2.0, 4.0]
    assert b.grad_fn.name() == "AddBackward0"


def test_backward_twice_needs_retain_graph():
    x = tl.ones(2, requires_grad=True)
    y = (x * x).sum()
    y.backward(retain_graph=True)
    y.backward()
    assert x.grad.tolist() == [4.0, 4.0]
    with pytest.raises(RuntimeError, match="Trying to backward through the graph a second time"):
        y.backward()


def test_custom_function():
    class Cube(Function):
        @staticmethod
        def forward(ctx, x, k):
            ctx.save_for_backward(x)
            ctx.k = k
            return x ** 3 * k

        @staticmethod
        def backward(ctx, g):
            (x,) = ctx.saved_tensors
            assert ctx.needs_input_grad == (True, False)
            return g * 3 * x ** 2 * ctx.k, None

    x = tl.tensor([1.0, 2.0], dtype=tl.float64, requires_grad=True)
    y = Cube.apply(x, 2.0)
    assert y.grad_fn.name() == "CubeBackward"
    y.sum().backward()
    assert x.grad.tolist() == [6.0, 24.0]
    assert tl.autograd.gradcheck(lambda t: Cube.apply(t, 2.0), [x])

    class ArgMaxAndMax(Function):
        @staticmethod
        def forward(ctx, x):
            v, i = x.max(0)
            ctx.mark_non_differentiable(i)
            ctx.save_for_backward(x, i)
            return v, i

        @staticmethod
        def backward(ctx, gv, gi):
            x, i = ctx.saved_tensors
            g = tl.zeros_like(x)
            g[i] = gv
            return g

    v, i = ArgMaxAndMax.apply(tl.tensor([1.0, 5.0, 2.0], requires_grad=True))
    assert v.requires_grad and not i.requires_grad


def test_detect_anomaly_names_the_node_and_forward_trace():
    x = tl.tensor([0.0, 1.0], requires_grad=True)
    with tl.autograd.detect_anomaly():
        y = x.sqrt()                 # d/dx sqrt at 0 -> inf; times 0 -> nan below
        z = (y * 0).sum()
        with pytest.warns(RuntimeWarning, match=r"Error detected in SqrtBackward0. Traceback of forward call"):
            with pytest.raises(RuntimeError, match=r"Function 'SqrtBackward0' returned nan values in its 0th output."):
                z.backward()
    assert not tl.dispatch.full_path_active()


def test_gradients_flow_through_views_and_indexing():
    x = tl.arange(6.0).reshape(2, 3).requires_grad_()
    y = x[:, 1:] * tl.tensor([[1.0, 2.0]])
    y.sum().backward()
    assert x.grad.tolist() == [[0, 1, 2], [0, 1, 2]]
    x.grad = None
    x[tl.tensor([0, 0, 1])].sum().backward()  # repeated index accumulates
    assert x.grad.tolist() == [[2, 2, 2], [1, 1, 1]]


def test_graph_is_freed_after_backward():
    import weakref
    x = tl.ones(1000, requires_grad=True)
    y = (x * 2).exp()
    ref = weakref.ref(y.grad_fn)
    y.sum().backward()
    del y
    gc.collect()
    assert ref() is None


def test_multithreaded_backward():
    import threading
    errors = []

    def work(seed):
        try:
            tl.manual_seed(seed)
            w = tl.randn(4, 4, requires_grad=True)
            for _ in range(20):
                (w @ w).tanh().sum().backward()
            assert w.grad is not None and w.grad.shape == (4, 4)
            with tl.no_grad():
                assert not (w * 2).requires_grad
        except Exception as e:  # noqa: BLE001 # pragma: no cover - the thread's error is asserted below
            errors.append(e)
    ts = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    assert not errors


def test_leaf_keeps_one_accumulator_and_is_freed_without_gc():
    """A leaf reuses its AccumulateGrad across graphs (no node per op); the node holds the leaf weakly, so a
    dropped leaf and its memory go at once, with no cycle for the garbage collector."""
    import weakref
    x = tl.ones(3, requires_grad=True)
    acc1 = (x * 2).grad_fn.next_functions[0][0]
    acc2 = (x + 1).grad_fn.next_functions[0][0]
    assert acc1 is acc2 and acc1.variable is x
    gc.disable()
    try:
        ref = weakref.ref(x)
        loss = (x + 1).sum()            # add saves no input: only the accumulator refers to x
        del x
        assert ref() is None and acc1.variable is None
        loss.backward()                 # a leaf that is gone: nothing to accumulate into, no error
    finally:
        gc.enable()


def test_leaf_hook_runs_when_the_graph_outlives_the_leaf():
    """As torch: a leaf's tensor hooks run at backward even when only the graph still holds the leaf, and
    its .grad is accumulated (the accumulator keeps a hooked leaf alive)."""
    seen = []
    x = tl.ones(2, requires_grad=True)
    (x * 2).sum()                       # its accumulator exists before the hook
    x.register_hook(lambda g: seen.append(g.tolist()))
    y = tl.ones(2, requires_grad=True)
    y.register_hook(lambda g: seen.append(g.tolist()))   # and before its accumulator
    loss = (x * 2).sum() + (y * 3).sum()
    acc = loss.grad_fn.next_functions[0][0].next_functions[0][0].next_functions[0][0]
    del x, y
    loss.backward()
    assert sorted(seen) == [[2.0, 2.0], [3.0, 3.0]]
    assert acc.variable.grad.tolist() == [2.0, 2.0]


def _mlp_grads(observed, hold=True):
    """Gradients of a small MLP step (linear, relu, view, cross_entropy) with and without an op hook
    watching: the engine runs the quiet formulas (OpDef.quiet_backward) only when nothing observes.
    hold=False: the activation is not held, so relu's node reads its saved output after the next layer's
    node released it (Node.saved_output_array's own case)."""
    from tensorlib import dispatch as D

    class Ops(D.Hook):
        def __init__(self):
            self.backward_ops = []

        def op_enter(self, op, inputs, attrs, phase, seq):
            if phase == "backward":
                self.backward_ops.append(op.name)

    hook = Ops()
    if observed:
        D.add_hook(hook)
    try:
        tl.manual_seed(0)
        w1, b1 = tl.randn(6, 4, requires_grad=True), tl.randn(6, requires_grad=True)
        w2, b2 = tl.randn(3, 6, requires_grad=True), tl.randn(3, requires_grad=True)
        x = tl.randn(5, 2, 2)
        h = tl.nn.functional.linear(x.view(5, 4), w1, b1).relu()
        loss = tl.nn.functional.cross_entropy(tl.nn.functional.linear(h, w2, b2), tl.tensor([0, 1, 2, 0, 1]))
        if not hold:
            del h       # held by the second layer's node alone, which backward releases before relu's runs
        loss.backward()
    finally:
        if observed:
            D.remove_hook(hook)
    return [p.grad for p in (w1, b1, w2, b2)], hook.backward_ops


@pytest.mark.parametrize("hold", [True, False], ids=["activation-held", "activation-released"])
def test_quiet_backward_formulas_give_the_dispatched_formulas_values(hold):
    (quiet, ops_q), (seen, ops_s) = _mlp_grads(False, hold), _mlp_grads(True, hold)
    assert ops_q == [] and {"mm", "t", "sum", "threshold_backward", "nll_loss_backward"} <= set(ops_s)
    for a, b in zip(quiet, seen):
        assert a.shape == b.shape and a._data.flags.c_contiguous == b._data.flags.c_contiguous
        assert np.array_equal(a.numpy(), b.numpy())


F = tl.nn.functional
_QUIET_CASES = {       # elementwise, reduction, clamp, gather and softmax formulas with their quiet_backward
    "mul_broadcast": lambda x, w: (x * w[0]).sum() + (x * 3).sum() + (x[0, 0] * w[0, 0]),
    "div_both": lambda x, w: (x / (w.abs() + 1)).sum() + tl.div(2.0, x.abs() + 1).sum() + (x / 4).sum(),
    "add_sub_alpha": lambda x, w: (tl.add(x, w[0], alpha=2) - tl.sub(x, w, alpha=0.5) + (1 - x)).sum(),
    "neg_reductions": lambda x, w: (-x).sum(1).mean() + x.sum(0, keepdim=True).mean(1).sum() + w.mean(),
    "clamp": lambda x, w: x.clamp(min=-0.5).sum() + x.clamp(max=0.5).sum() + w.clamp(-0.2, 0.3).sum(),
    "gather_softmax": lambda x, w: (tl.softmax(x, 1).gather(1, tl.tensor([[0, 1, 1, 3]] * 3)) * w).sum()
    + tl.softmax(w, 0).sum() * 0.5 + tl.softmax(x, 1)[:, 1].log().sum(),
    "unary": lambda x, w: (tl.sigmoid(x) * tl.tanh(w)).sum() + (x.exp() * w.abs().log()).sum()
    + tl.sigmoid(x[0, 0]) * tl.tanh(w[1, 1]),
    "mm_transpose_clone": lambda x, w: (tl.mm(x, w.t()) * tl.mm(x.t(), w.clone()).sum()).sum()
    + (tl.randn(2, 3, 3) @ x.transpose(0, 1)[:3]).sum() + tl.mm(x, w.t().contiguous().t().t()).sum(),
    "gelu_embedding_attention": lambda x, w: (F.gelu(x) * F.gelu(w, approximate="tanh")).sum()
    + F.embedding(tl.tensor([[0, 2], [2, 1]]), w, padding_idx=1).sum()
    + F.scaled_dot_product_attention(x.view(1, 3, 4), w.view(1, 3, 4), (x * w).view(1, 3, 4), is_causal=True).sum(),
    "zero_dim_div": lambda x, w: x.sum() / (w * w).sum() + tl.div(2.0, w.abs().sum() + 1) + tl.sigmoid(x.sum()),
    "promoting": lambda x, w: (x * w.double()).sum() + (x / w.double()).sum() + x.double().clamp(0, 1).sum(),
    "cat_split_slice": lambda x, w: (tl.cat([x, w[:, 1:3]], 1) * tl.cat([w, x[1:]], 0)[:3, :].repeat(1, 2)[:, :6]).sum()
    + sum((p * i).sum() for i, p in enumerate(x.split([1, 3], 1))) + w[0].sum() + w.chunk(2, 0)[1].sum()
    + tl.cat([x[2, 1:2], w[1]]).sum(),
    "layer_norm_missing_grads": lambda x, w: F.layer_norm(x, (4,), w[0], w[1]).sum()
    + (F.layer_norm(x * w, (3, 4)) * w).mean() + w.chunk(3, 0)[1].sum() * x.split(2, 1)[0].sum(),
    "recurrent_layers": lambda x, w: sum(cls(4, 3, batch_first=True)(x.view(1, 3, 4) * w.view(1, 3, 4))[0].sum()
                                         for cls in (tl.nn.LSTM, tl.nn.GRU, tl.nn.RNN))
    + tl.nn.GRU(4, 2, num_layers=2, bidirectional=True)(w.view(3, 1, 4))[1].sum(),
    "dropout": lambda x, w: (F.dropout(x, 0.3) * w).sum() + F.dropout2d(w.view(1, 3, 4, 1), 0.5).sum()
    + F.dropout(x.double(), 0.2).sum(),
    "matmul_batched": lambda x, w: (x.view(3, 2, 2) @ w.view(3, 2, 2)).sum() + (x.view(1, 3, 4) @ w.t()).sum()
    + ((x.view(3, 1, 2, 2) @ w.view(3, 2, 2)) * 2).sum() + (w.view(2, 2, 3) @ x.view(3, 4)).mean()
    + ((x.view(3, 2, 2).transpose(1, 2) @ w[:2, :2]) * x.view(3, 2, 2)).sum(),   # (g folded: dispatched)
    "matmul_vectors": lambda x, w: ((x[0] @ w.t()) * (w @ x[1])).sum() + x[0] @ w[0] * 2
    + ((x.view(3, 1, 4) @ w[0]) * 2).sum() + (w[1] @ x.view(1, 4, 3)).sum() + F.linear(x[2], w, w[:, 0]).sum()
    + (x.view(3, 2, 2).transpose(1, 2) @ w[0, :2]).sum(),    # (a contiguous g of 3-D times a vector: folded)
    "reductions_gather_clamp": lambda x, w: (x.sum(1, keepdim=True) * w).sum() + x.t().sum(0).mean() * 2
    + (w.mean((0, 1)) + w.t().mean(1).sum()) * x.sum() + x.gather(1, tl.tensor([[0, 0], [1, 3], [2, 2]])).sum()
    + tl.clamp(x * w, -0.5, 0.5).sum() + w.clamp(max=0.1).mean() + x.sum((0, 1), keepdim=True).sum(),
    "leaky_relu": lambda x, w: (F.leaky_relu(x, 0.2) * w).sum() + F.leaky_relu(w).sum()
    + F.leaky_relu(x.double(), 0.1).sum(),
    "conv": lambda x, w: (F.conv2d(x.view(1, 1, 3, 4), w.view(3, 1, 2, 2), w[0, :3], padding=1) ** 2).sum()
    + (F.conv_transpose2d(x.view(1, 3, 2, 2), w.view(3, 1, 2, 2), stride=2) ** 2).sum()
    + F.conv2d(w.view(1, 3, 2, 2), x.view(1, 3, 2, 2), stride=2).sum()
    + F.conv_transpose2d(w.view(2, 1, 2, 3), x.view(1, 1, 3, 4), w[0, :1], stride=2, output_padding=1).sum(),
    "stack_expand_permute_pool_pow": lambda x, w: (tl.stack([x, w, x * 2], 1) * tl.stack([w, x, w], 1)).sum()
    + (tl.stack([x[0], w[1]]) ** 2).sum() + (x[0:1].expand(3, 4) * w).sum() + (w[:, :1].expand(3, 4) ** 3).mean()
    + (x.view(3, 2, 2).permute(2, 0, 1) * w.view(2, 3, 2)).sum() + x.pow(0).sum() * w.sum()
    + tl.pow(w.abs() + 1, 0.5).sum()
    + (F.max_pool2d(x.view(1, 1, 3, 4), 2, 1) * w.view(1, 1, 3, 4)[..., :2, :3]).sum()
    + F.max_pool2d(w.view(1, 3, 2, 2), 2).sum() + ((x.abs() + 1) ** w).sum(),
    "losses": lambda x, w: F.smooth_l1_loss(x, w.detach()) + F.smooth_l1_loss(x[0], w[1].detach(), reduction="sum")
    + F.smooth_l1_loss(w, x.detach(), beta=0.0) + F.smooth_l1_loss(x, w.detach() * 3, beta=0.5, reduction="none").sum()
    + F.mse_loss(x, w.detach()) + F.mse_loss(x[:, :1], w, reduction="sum") + F.mse_loss(x[:, :1], w.detach())
    + F.binary_cross_entropy(tl.sigmoid(x), tl.sigmoid(w).detach()) + F.smooth_l1_loss(x, tl.zeros(3, 1).double())
    + F.binary_cross_entropy(tl.sigmoid(w[0]), tl.tensor([0.0, 1.0, 1.0, 0.0]), reduction="sum"),
    "batch_norm": lambda x, w: (F.batch_norm(x.view(1, 3, 2, 2), None, None, w[:, 0], w[1, :3], training=True)
                                * w.view(1, 3, 2, 2)).sum()
    + (F.batch_norm(w.view(3, 4), tl.zeros(4), tl.ones(4), x[0], None, training=True) ** 2).sum()
    + (F.batch_norm(x.view(2, 2, 3), tl.zeros(2) + 0.5, tl.ones(2) * 2, training=False) * w.view(2, 2, 3)).sum()
    + (F.batch_norm(w.view(2, 6), None, None, x[0, :2].repeat(3), None, training=True) * x.view(2, 6)).sum(),
    "index_masked_fill": lambda x, w: (x[tl.tensor([0, 2, 0])] * w).sum() + w[tl.tensor([True, False, True])].sum()
    + (x.masked_fill(w > 0, -1.5) * w).sum() + x[..., 1:3].sum() + w[None, 1].sum()
    + tl.softmax(w.masked_fill(tl.tensor([True, False, False, True]), 0.0), 1)[:, 0].sum(),
    "reshape_strided_gradient": lambda x, w: (x.view(2, 6).t() * w.view(6, 2)).sum()
    + (x.unsqueeze(0).transpose(1, 2) * w.t()).sum() + (x.reshape(3, 2, 2).transpose(0, 2) * 2).sum()
    + (w.view(3, 4, 1).transpose(0, 1) * x.t().unsqueeze(-1)).sum(),
    "views": lambda x, w: (x.reshape(12) * w.view(2, 6).reshape(12)).sum() + (x.transpose(0, 1).reshape(3, 4)
                                                                               * w).sum() + (x.t() @ w).sum(),
}


@pytest.mark.filterwarnings("ignore:Using a target size")   # (the losses' broadcast targets)
@pytest.mark.parametrize("case", sorted(_QUIET_CASES))
def test_quiet_formulas_agree_with_the_dispatched_ones_bit_for_bit(case):
    """The engine's quiet path (nothing observes ops: each node's quiet_backward on arrays) and the observed
    path (an op hook: the formulas' ops dispatched) give the same gradients to the bit, with broadcasting,
    Python scalars, 0-d operands and promoting dtypes (where the quiet formula defers to the dispatched one)."""
    from tensorlib import dispatch as D

    class Watch(D.Hook):
        def op_enter(self, op, inputs, attrs, phase, seq):
            self.seen = self.seen + 1 if phase == "backward" else self.seen

    grads = []
    for observed in (False, True):
        tl.manual_seed(1)
        x, w = tl.randn(3, 4, requires_grad=True), tl.randn(3, 4, requires_grad=True)
        hook = D.add_hook(Watch()) if observed else None
        if hook is not None:
            hook.seen = 0
        try:
            _QUIET_CASES[case](x, w).backward()
        finally:
            if hook is not None:
                D.remove_hook(hook)
        grads.append((x.grad.numpy(), w.grad.numpy()))
    assert hook.seen > 0            # the observed run dispatched its formulas' ops
    for q, s in zip(*grads):
        assert q.dtype == s.dtype and np.array_equal(q, s), case


@pytest.mark.filterwarnings("ignore:Using a target size")   # (the losses' broadcast targets)
@pytest.mark.parametrize("case", ["mlp", *sorted(_QUIET_CASES)])
def test_sink_formulas_agree_with_the_dispatched_ones_bit_for_bit(case, monkeypatch):
    """With the op sink the only observer (the profiler's default options) the engine runs the sink formulas
    (OpDef.sink_backward: the kernels on arrays, recorded as the dispatched ops): the sink gets the backward
    records the dispatched formulas give it, the leaves the same gradients to the bit."""
    import threading
    from tensorlib import dispatch as D
    from tensorlib._state import STATE

    class Sink:
        tls = threading.local()

    executed = []
    execute = D.execute

    def counting_execute(op, args, attrs, seq):
        if STATE.phase == "backward":
            executed.append(op.name)
        return execute(op, args, attrs, seq)
    monkeypatch.setattr(D, "execute", counting_execute)
    runs = []
    for sink_formulas in (True, False):
        if not sink_formulas:       # the dispatched formulas, recorded by the sink as ever
            for o in D.registry().values():
                if o.sink_backward is not None:
                    monkeypatch.setattr(o, "sink_backward", None)
        executed.clear()
        Sink.tls.buf = []
        D.set_op_sink(Sink)
        try:
            if case == "mlp":
                grads, _ = _mlp_grads(False)
                grads = [g.numpy() for g in grads]
            else:
                tl.manual_seed(1)
                x, w = tl.randn(3, 4, requires_grad=True), tl.randn(3, 4, requires_grad=True)
                _QUIET_CASES[case](x, w).backward()
                grads = [x.grad.numpy(), w.grad.numpy()]
        finally:
            D.set_op_sink(None)
        backward = [(r[0], r[2]) for r in Sink.tls.buf if r[1] == "backward"]
        runs.append((grads, backward, list(executed)))
    (sink_grads, sink_records, sink_executed), (grads, records, dispatched) = runs
    # the sink formulas' ops were recorded without being dispatched (other formulas dispatch some of them)
    sink_ops = {"mm", "t", "threshold_backward", "_log_softmax_backward_data", "nll_loss_backward",
                "_softmax_backward_data", "transpose", "reshape", "mul", "sub", "div", "neg", "sum_to_size",
                "gelu_backward", "embedding_dense_backward", "narrow", "cat", "slice_backward",
                "select_backward", "native_layer_norm_backward", "native_batch_norm_backward",
                "native_group_norm_backward", "zeros",
                "scaled_dot_product_attention_backward", "lstm_layer_backward", "gru_layer_backward",
                "rnn_layer_backward", "matmul", "_reshape_alias", "_unsafe_view", "expand", "ge", "le",
                "bitwise_and", "scatter_add", "gt", "where", "conv2d", "conv_transpose2d",
                "convolution_backward_weight", "convolution_backward", "unbind", "permute", "pow",
                "max_pool2d_with_indices_backward",
                "abs", "sign", "lt", "clamp", "mean", "sum",
                "masked_fill", "index_backward"}
    # (the promoting products and divisions decline theirs; that case's sums and clamp take theirs)
    assert len([n for n in sink_executed if n in sink_ops]) < len([n for n in dispatched if n in sink_ops])
    assert [n for n, _ in sink_records] == [n for n, _ in records]
    # the same sequence numbers: each run's own (the same forward ops numbered from where the counter was;
    # -1: AccumulateGrad's, which has none)
    def relative(recs):
        return [(n, s - recs[0][1] if s >= 0 else s) for n, s in recs]
    assert relative(sink_records) == relative(records)
    for a, b in zip(sink_grads, grads):
        assert a.dtype == b.dtype and np.array_equal(a, b)


def test_expanded_gradient_is_copied_into_grad():
    """mean's gradient is expanded (zero strides, read-only in NumPy): .grad gets a copy, as torch's
    AccumulateGrad clones a gradient without the leaf's layout, so a second backward accumulates."""
    x = tl.randn(2, 2, requires_grad=True)
    x.view(4).mean().backward()
    assert x.grad._data.flags.writeable
    x.view(4).mean().backward()
    assert np.allclose(x.grad.numpy(), 0.5)


def test_leaf_takes_the_gradient_nothing_else_holds():
    """A formula's gradient that only the engine holds becomes .grad itself, as torch's AccumulateGrad steals
    it: no view of it, no grad, no history. One that a hook kept is not handed over as is."""
    w, b = tl.randn(3, 4, requires_grad=True), tl.randn(3, requires_grad=True)
    kept = []
    b.register_hook(kept.append)
    tl.nn.functional.linear(tl.randn(2, 4), w, b).relu().sum().backward()
    assert w.grad._base is None and not w.grad.requires_grad and w.grad.grad_fn is None
    assert b.grad is not kept[0] and np.array_equal(b.grad.numpy(), kept[0].numpy())
    kept[0].add_(1)                 # torch clones a gradient someone else holds: .grad is its own memory
    assert not np.array_equal(b.grad.numpy(), kept[0].numpy())


class _Cached(tl.autograd.Function):
    """A custom Function whose backward returns a tensor it keeps (a cached gradient)."""
    grad = None

    @staticmethod
    def forward(ctx, x):
        return x * 2

    @staticmethod
    def backward(ctx, g):
        return _Cached.grad


@pytest.mark.parametrize("observed", [False, True], ids=["quiet", "profiled"])
def test_grad_never_aliases_a_tensor_something_else_holds(observed):
    """A gradient held outside the engine (a Function's cached tensor, a hook's list, the `gradient=` the
    user passed) becomes .grad as a copy, quiet or observed: changing the held tensor later leaves .grad
    alone (torch's AccumulateGrad clones when the gradient's use count says others hold it)."""
    import profiler
    with profiler.profile() if observed else contextlib.nullcontext():
        _Cached.grad = tl.ones(3)
        x = tl.zeros(3, requires_grad=True)
        _Cached.apply(x).sum().backward()
        y = tl.zeros(3, requires_grad=True)
        seen = tl.full((3,), 2.0)
        y.backward(gradient=seen)
        z = tl.zeros(3, requires_grad=True)
        (z * 2).sum().backward()            # nothing else holds this one: stolen, still a correct value
    _Cached.grad.add_(5)
    seen.add_(1)
    assert x.grad.tolist() == [1.0] * 3 and y.grad.tolist() == [2.0] * 3 and z.grad.tolist() == [2.0] * 3


def test_backward_with_create_graph_stores_a_differentiable_copy(monkeypatch):
    """backward(create_graph=True): .grad is a copy with history (torch's clone_obey_contract: grad_fn
    CopyBackwards), not the formula's tensor itself, and a second backward through it accumulates. It warns
    of the reference cycle once per process, with torch's message (programs filter on its text)."""
    from tensorlib.autograd import engine
    monkeypatch.setitem(engine._warned, "create_graph", False)
    x = tl.full((2,), 2.0, requires_grad=True)
    with pytest.warns(UserWarning, match="Using backward\\(\\) with create_graph=True will create a reference cycle"):
        (x ** 3).sum().backward(create_graph=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        (x ** 3).sum().backward(create_graph=True)      # once only
    x.grad = None
    (x ** 3).sum().backward(create_graph=True)
    assert x.grad.grad_fn.name() == "CopyBackwards" and x.grad.tolist() == [12.0, 12.0]
    x.grad.sum().backward()
    assert x.grad.tolist() == [24.0, 24.0]          # 3x² + 6x at x = 2


def test_legacy_variable_constructor_returns_a_detached_tensor():
    """torch.autograd.Variable as pre-0.4 code (pytorch/tutorials' NLP scripts, examples_nn/dynamic_net) calls it:
    a new tensor sharing the data's memory, without its history, with the requires_grad asked for."""
    from tensorlib.autograd import Variable
    from tensorlib.autograd import variable as variable_module
    assert tl.autograd.variable.Variable is Variable is variable_module.Variable
    t = tl.tensor([1., 2., 3.])
    v = Variable(t)
    assert type(v) is tl.Tensor and v is not t and not v.requires_grad and v.grad_fn is None
    v[0] = 5.
    assert t.tolist() == [5., 2., 3.]        # the same memory
    w = Variable(t, requires_grad=True)
    assert w.requires_grad and w.is_leaf and not t.requires_grad
    (w * 2).sum().backward()
    assert w.grad.tolist() == [2., 2., 2.]
    assert Variable(data=t, requires_grad=True).requires_grad and Variable(t, True).requires_grad
    y = w * 3
    z = Variable(y)          # history cut, as torch's
    assert z.grad_fn is None and not z.requires_grad and z.data_ptr() == y.data_ptr()
    e = Variable()
    assert e.shape == (0,) and e.dtype == tl.float32
    assert isinstance(t, Variable) and isinstance(tl.nn.Parameter(tl.ones(1)), Variable)
    assert not isinstance([1.], Variable) and not issubclass(tl.Tensor, Variable)
    assert type(Variable).__name__ == "VariableMeta"
    with pytest.warns(UserWarning, match="volatile was removed and now has no effect"):
        Variable(t, volatile=True)
    with pytest.raises(TypeError, match="Variable data has to be a tensor, but got list"):
        Variable([1., 2.])
    with pytest.raises(RuntimeError, match="Only Tensors of floating point and complex dtype can require gradients"):
        Variable(tl.tensor([1, 2]), requires_grad=True)
    with pytest.raises(TypeError, match="'foo' is an invalid keyword argument"):
        Variable(t, foo=1)
    with pytest.raises(TypeError, match="takes at most 5 arguments"):
        Variable(t, True, False, None, "x", 1)
