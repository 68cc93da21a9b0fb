"""torch's grad_fn._saved_* / _raw_saved_* attributes (tensorlib._saved): names, identity, values and torch's
errors, with saved_tensors_hooks and SavedTensor.register_hooks (the values torch 2.13 gives; the side-by-side
comparison is devtools/torch_compat/test_saved_attributes_against_torch.py)."""
from __future__ import annotations

import numpy as np
import pytest

import tensorlib as tl
import tensorlib.nn.functional as F
from tensorlib import _saved
from tensorlib.autograd.graph import saved_tensors_hooks

FREED = ("Trying to backward through the graph a second time (or directly access saved tensors after they have "
         "already been freed). Saved intermediate values of the graph are freed when you call .backward() or "
         "autograd.grad(). Specify retain_graph=True if you need to backward through the graph a second time or if "
         "you need to access saved tensors after calling backward.")


def leaf(*shape):
    return tl.randn(*shape, dtype=tl.float64, requires_grad=True)


def saved_names(fn):
    return sorted(n for n in dir(fn) if n.startswith(("_saved_", "_raw_saved_")))


def test_mul_names_and_identity():
    a, b = leaf(3, 4), leaf(3, 4)
    fn = (a * b).grad_fn
    assert saved_names(fn) == ["_raw_saved_other", "_raw_saved_self", "_saved_other", "_saved_self"]
    assert fn._saved_self is a and fn._saved_other is b
    assert type(fn._raw_saved_self).__name__ == "SavedTensor"


def test_non_leaf_input_is_itself():
    a = leaf(3)
    y = a * 2
    fn = (y * a).grad_fn
    assert fn._saved_self is y and fn._saved_other is a


def test_saved_only_where_torch_saves():
    a, bn = leaf(3, 4), tl.randn(3, 4, dtype=tl.float64)
    fn = (a * bn).grad_fn
    assert fn._saved_self is None          # only other's gradient would read it
    assert fn._saved_other is bn
    fn = (a * 2.5).grad_fn
    assert fn._saved_self is None
    o = fn._saved_other
    assert o.dtype == tl.float64 and o.shape == () and o.item() == 2.5   # torch's wrapped number
    assert (a * 3).grad_fn._saved_other.dtype == tl.int64


def test_saved_result_is_a_new_tensor_of_the_node():
    a = leaf(3)
    y = a.exp()
    r = y.grad_fn._saved_result
    assert r is not y and r.grad_fn is y.grad_fn and r.requires_grad
    assert tl.equal(r, y)
    assert a.pow(2).grad_fn._saved_self is a


def test_values():
    a, m, v = leaf(3, 4), leaf(4, 5), leaf(5)
    fn = a.mm(m).grad_fn
    assert fn._saved_self_sym_sizes == (3, 4) and fn._saved_mat2_sym_sizes == (4, 5)
    assert fn._saved_self_sym_strides == (4, 1) and fn._saved_mat2_sym_strides == (5, 1)
    fn = tl.addmm(v, a, m, beta=0.5, alpha=2.0).grad_fn
    assert (fn._saved_alpha, fn._saved_beta) == (2.0, 0.5) and fn._saved_mat1 is a and fn._saved_mat2 is m
    assert (a + a).grad_fn._saved_alpha == 1
    assert a.sum().grad_fn._saved_self_sym_sizes == (3, 4)
    fn = a.sum(1).grad_fn
    assert (fn._saved_dim, fn._saved_keepdim, fn._saved_self_sym_sizes) == ((1,), False, (3, 4))
    assert a.sum(-1).grad_fn._saved_dim == (2 ** 64 - 1,)       # torch shows an int64 dim unsigned
    fn = a.mean().grad_fn
    assert (fn._saved_self_sym_numel, fn._saved_self_sym_sizes) == (12, (3, 4))
    assert a.softmax(1).grad_fn._saved_dim == 1
    assert a.pow(2.5).grad_fn._saved_exponent == 2.5
    assert a.view(12).grad_fn._saved_self_sym_sizes == (3, 4)
    assert a.permute(1, 0).grad_fn._saved_dims == (1, 0)
    fn = a.transpose(0, 1).grad_fn
    assert (fn._saved_dim0, fn._saved_dim1) == (0, 1)
    fn = a[1:, 1].grad_fn                      # the last step, select(1, 1) of the (2, 4) slice
    assert fn.name() == "SelectBackward0"
    assert (fn._saved_dim, fn._saved_index, fn._saved_self_sym_sizes) == (1, 1, (2, 4))
    fn = a[1:].grad_fn
    assert (fn._saved_dim, fn._saved_start, fn._saved_end, fn._saved_step) == (0, 1, 2 ** 63 - 1, 1)
    assert tl.cat([a, a], 1).grad_fn._saved_dim == 1
    assert F.gelu(a).grad_fn._saved_approximate == "none"
    assert F.mse_loss(a, a.detach(), reduction="sum").grad_fn._saved_reduction == 2
    assert tl.stack([a, a]).grad_fn._saved_dim == 0


def test_nn_nodes():
    a = leaf(3, 4)
    idx = tl.tensor([0, 3, -100])
    fn = F.nll_loss(a, idx, reduction="sum").grad_fn
    assert fn._saved_self is a and fn._saved_target is idx and fn._saved_weight is None
    assert fn._saved_ignore_index == 2 ** 64 - 100 and fn._saved_reduction == 2
    assert fn._saved_total_weight.item() == 2.0                # two targets not ignored
    x, w = leaf(2, 3, 8, 8), leaf(4, 3, 3, 3)
    fn = F.conv2d(x, w, padding=1).grad_fn
    assert fn._saved_input is x and fn._saved_weight is w
    assert (fn._saved_padding, fn._saved_stride, fn._saved_groups, fn._saved_bias_sym_sizes_opt) == \
        ((1, 1), (1, 1), 1, (0,))
    y = F.layer_norm(a, (4,))
    fn = y.grad_fn
    assert fn._saved_input is a and fn._saved_weight is None and fn._saved_normalized_shape == (4,)
    np.testing.assert_allclose(fn._saved_result1.numpy()[:, 0], a.detach().numpy().mean(1))
    e = leaf(4, 5)
    ii = tl.tensor([0, 2])
    fn = F.embedding(ii, e).grad_fn
    assert fn._saved_indices is ii and fn._saved_weight_sym_argsize_0 == 4 and fn._saved_padding_idx == 2 ** 64 - 1
    y = F.dropout(a, 0.5)
    fn = y.grad_fn
    assert fn.name() == "MulBackward0" and fn._saved_self is None
    assert set(np.unique(fn._saved_other.numpy())) <= {0.0, 2.0}
    fn = F.max_pool2d(x, 2).grad_fn
    assert fn._saved_result1.dtype == tl.int64 and fn._saved_kernel_size == (2, 2)
    with pytest.raises(RuntimeError, match="does not keep its input"):
        fn._saved_self


def test_errors():
    a = leaf(3)
    fn = (a * a).grad_fn
    with pytest.raises(AttributeError, match="^'MulBackward0' object has no attribute '_saved_alpha'$"):
        fn._saved_alpha                 # another node type's: torch's message
    with pytest.raises(AttributeError, match="_saved_foo"):
        fn._saved_foo                   # no node type's: Python's message (it names the class, Node)
    assert not hasattr(fn, "_raw_saved_alpha")
    y = a.exp()
    s = a.sum()
    y.sum().backward()
    with pytest.raises(RuntimeError) as ei:
        y.grad_fn._saved_result
    assert str(ei.value) == FREED
    s.backward()
    assert s.grad_fn._saved_self_sym_sizes == (3,)             # not a tensor: kept, as torch keeps it
    c = a.clone()
    fn = (c * c).grad_fn
    c.add_(1)
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        fn._saved_self


def test_with_saved_tensors_hooks():
    a = leaf(3)
    calls = []
    with saved_tensors_hooks(lambda t: ("p", t * 3), lambda p: (calls.append(1), p[1])[1]):
        y = a * a
        z = a.exp()
    v = y.grad_fn._saved_self
    assert v is not a and tl.equal(v, a * 3) and calls == [1]
    r = z.grad_fn._saved_result
    assert r.grad_fn is z.grad_fn and tl.allclose(r, a.exp() * 3)
    raw = y.grad_fn._raw_saved_self
    assert raw.data[0] == "p" and raw.unpack_hook is not None
    with pytest.raises(RuntimeError, match="^Calling register_hooks on a saved tensor whose hooks have already"):
        raw.register_hooks(lambda t: t, lambda t: t)


def test_register_hooks():
    a = leaf(3)
    y = a.log()
    raw = y.grad_fn._raw_saved_self
    assert raw.data is a and raw.unpack_hook is None and raw.unpack() is a
    calls = []
    raw.register_hooks(lambda t: (calls.append("pack"), t * 10)[1], lambda p: (calls.append("unpack"), p)[1])
    assert calls == ["pack"]
    assert tl.allclose(y.grad_fn._saved_self, a * 10) and calls == ["pack", "unpack"]
    y.sum().backward()
    assert calls == ["pack", "unpack", "unpack"]                 # backward read it once
    assert tl.allclose(a.grad, 1 / (10 * a.detach()))          # backward used what unpack gave
    with pytest.raises(RuntimeError, match="^Calling register_hooks on a saved tensor after it has been freed"):
        raw.register_hooks(lambda t: t, lambda t: t)


def test_register_hooks_errors():
    a = leaf(3)
    fn = (a * a).grad_fn
    fn._raw_saved_self.register_hooks(lambda t: t, lambda t: t)
    with pytest.raises(RuntimeError, match="^Calling register_hooks on a saved tensor whose hooks have already been"):
        fn._raw_saved_self.register_hooks(lambda t: t, lambda t: t)
    with pytest.raises(RuntimeError, match="^Calling register_hooks on a saved tensor with value None is forbidden$"):
        (a * 2.5).grad_fn._raw_saved_self.register_hooks(lambda t: t, lambda t: t)
    with pytest.raises(NotImplementedError, match="a Python number"):
        (a * 2.5).grad_fn._raw_saved_other.register_hooks(lambda t: t, lambda t: t)
    with pytest.raises(NotImplementedError, match="saved output"):
        a.exp().grad_fn._raw_saved_result.register_hooks(lambda t: t, lambda t: t)
    with pytest.raises(TypeError):
        (a * a).grad_fn._raw_saved_self.register_hooks(lambda t: t, 3)
    y = a.log()
    y.grad_fn._raw_saved_self.register_hooks(lambda t: t, lambda t: 5)
    with pytest.raises(TypeError, match="unpack_hook expected to be a Tensor but got result of type int"):
        y.grad_fn._saved_self


def test_register_hooks_keeps_other_inputs_checked():
    a = leaf(3)
    c = a.clone()
    y = c * a
    y.grad_fn._raw_saved_other.register_hooks(lambda t: t, lambda t: t)
    c.add_(1)
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        y.sum().backward()


def test_every_table_entry_lists_its_names():
    """Each kind in the table is one of _saved's; `_raw_saved_*` names exist only for tensor kinds."""
    for name, e in _saved.SAVED.items():
        groups = e.values() if e and isinstance(next(iter(e.values())), dict) else [e]
        for g in groups:
            for attr, kind in g.items():
                assert attr.startswith("_saved_"), (name, attr)
                assert hasattr(kind, "get") and isinstance(kind.tensor, bool), (name, attr)


def test_nodes_outside_the_table_have_none():
    a = leaf(3)
    acc = (a * 1).grad_fn.next_functions[0][0]
    assert saved_names(acc) == []
    with pytest.raises(AttributeError):
        acc._saved_variable


def test_node_class_has_no_getattr():
    """The attributes are properties: a __getattr__ on Node would slow every read of a node's fields."""
    from tensorlib._graph import Node
    assert "__getattr__" not in vars(Node)


def test_hooked_input_unpacks_only_when_read():
    a, b = leaf(3), leaf(3)
    fn = (a * b).grad_fn
    calls = []
    fn._raw_saved_other.register_hooks(lambda t: t, lambda t: (calls.append(1), t)[1])
    assert fn._saved_self is a and calls == []
    o = fn._saved_other
    assert o is not b and tl.equal(o, b) and calls == [1]
    assert fn._raw_saved_other.data is b and fn._raw_saved_self.unpack_hook is None
