"""torch.autograd.graph.register_multi_grad_hook on tensorlib's graph tasks, and the tensor hooks of captured leaves
(autograd.grad, backward(inputs=)), which run before the capture as torch's do. Expected values are torch 2.13's,
measured side by side on the same programs."""
import pytest

import tensorlib as tl
from tensorlib.autograd import graph


def _tensors():
    a = tl.rand(2, 3, requires_grad=True)
    b = tl.rand(2, 3, requires_grad=True)
    return a, b, a * b, a * b


def test_mode_all_gets_the_gradients_each_pass_computes():
    a, b, c, d = _tensors()
    out = []
    h = graph.register_multi_grad_hook((a, b, c, d), lambda grads: out.append([g is not None for g in grads]))
    c.sum().backward(retain_graph=True)
    c.sum().backward(inputs=(a,), retain_graph=True)
    (c.sum() + d.sum()).backward(retain_graph=True)
    assert out == [[True, True, True, False], [True, False, True, False], [True, True, True, True]]
    with pytest.raises(RuntimeError, match="A leaf node was passed to _will_engine_execute_node but we are currently "
                                           "running autograd.grad"):
        tl.autograd.grad(d.sum(), (b,), retain_graph=True)
    h.remove()
    out.clear()
    (a * b).sum().backward()
    assert out == []


def test_mode_all_passes_the_hooked_gradients_once_all_are_in():
    a, b, c, _ = _tensors()
    seen = []
    graph.register_multi_grad_hook((a, c), lambda grads: seen.append([g.tolist() for g in grads]))
    (c * 3).sum().backward()
    assert seen == [[(b * 3).tolist(), [[3.0] * 3] * 2]]


def test_mode_any_calls_once_per_pass_with_the_first_gradient():
    a, b, _, _ = _tensors()
    got = []
    h = graph.register_multi_grad_hook((a, b), lambda g: got.append(tuple(g.shape)), mode="any")
    (a * b).sum().backward()
    (a * 2).sum().backward()
    assert got == [(2, 3), (2, 3)]
    h.remove()
    (a * b).sum().backward()
    assert len(got) == 2
    with pytest.raises(ValueError, match=r"Expects mode to be one of \('all', 'any'\) but got some"):
        graph.register_multi_grad_hook((a,), print, mode="some")


def test_graph_task_ids_and_will_execute_outside_a_backward():
    assert graph.current_graph_task_id() == -1
    with pytest.raises(RuntimeError, match="only be called during the backward pass"):
        graph.will_engine_execute_node(tl.ones(1, requires_grad=True).mul(2).grad_fn)
    a, b, c, d = _tensors()
    ids, runs = [], []

    def hook(g):
        ids.append(graph.current_graph_task_id())
        runs.append((graph.will_engine_execute_node(c.grad_fn), graph.will_engine_execute_node(d.grad_fn)))
    c.register_hook(hook)
    c.sum().backward(retain_graph=True)
    c.sum().backward(retain_graph=True)
    assert ids[0] != ids[1] and ids[0] >= 0 and runs == [(True, False), (True, False)]


def test_a_captured_leafs_hooks_run_before_the_capture():
    """torch runs a leaf's tensor hooks when autograd.grad or backward(inputs=) captures its gradient: hooks on
    c, a ran for backward(inputs=(a,)), c, b for grad(c, b) (they did not run on tensorlib before)."""
    a, b, c, _ = _tensors()
    calls = []
    a.register_hook(lambda g: calls.append("a"))
    b.register_hook(lambda g: (calls.append("b"), g * 10)[1])
    c.register_hook(lambda g: calls.append("c"))
    c.sum().backward(inputs=(a,), retain_graph=True)
    assert calls == ["c", "a"] and b.grad is None
    calls.clear()
    (gb,) = tl.autograd.grad(c.sum(), (b,), retain_graph=True)
    assert calls == ["c", "b"] and gb.tolist() == (a * 10).tolist()
    calls.clear()
    c.sum().backward()
    assert calls == ["c", "a", "b"] and b.grad.tolist() == (a * 10).tolist()
