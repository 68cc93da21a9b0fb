"""In-place operators, out= and operators on bool tensors as torch has them (devtools/torch_compat/
test_inplace_against_torch.py runs the same 47 calls against torch): the augmented assignments beyond + - * / run
in place (Python otherwise rebinds `x //= 2` to a new tensor, leaving a view's base unchanged); a mask does not take
an integer result in place; out= refuses a dtype that cannot hold the result and resizes an out of another shape
(with torch's warning) instead of broadcasting into it; torch's errors, not NumPy's, for -mask, ~float, an integer
tensor clamped in place by float bounds, and writing into an expanded tensor."""
from __future__ import annotations

import pytest

import tensorlib as tl


def test_augmented_assignments_write_through_views():
    x = tl.tensor([5, 7, 9])
    v = x[:2]
    v //= 2
    assert x.tolist() == [2, 3, 9]
    y = tl.tensor([5, 7])
    y[:1] %= 3
    assert y.tolist() == [2, 7]
    w = tl.tensor([2.0, 3.0])
    tail = w[1:]
    tail **= 2
    assert w.tolist() == [2.0, 9.0]
    b = tl.tensor([1, 2])
    b <<= 2
    c = tl.tensor([12])
    c >>= 1
    d = tl.tensor([6])
    d &= 3
    e = tl.tensor([6])
    e ^= 3
    m = tl.tensor([True, False])
    same = m
    m |= tl.tensor([False, True])
    assert (b.tolist(), c.tolist(), d.tolist(), e.tolist(), m.tolist()) == ([4, 8], [6], [2], [5], [True, True])
    assert m is same


def test_a_mask_takes_no_integer_result_in_place():
    for fn in (lambda m: m.__iadd__(1), lambda m: m.__imul__(tl.tensor([2]))):
        with pytest.raises(RuntimeError, match="result type Long can't be cast to the desired output type Bool"):
            fn(tl.tensor([True]))
    assert tl.tensor([True]).__iadd__(tl.tensor([False])).tolist() == [True]


def test_out_refuses_a_narrower_dtype_and_resizes_another_shape():
    with pytest.raises(RuntimeError, match="result type Float can't be cast to the desired output type Long"):
        tl.add(tl.ones(2), tl.ones(2), out=tl.zeros(2, dtype=tl.int64))
    out = tl.zeros(5)
    with pytest.warns(UserWarning, match=r"An output with one or more elements was resized since it had shape \[5\]"):
        r = tl.add(tl.ones(2), tl.ones(2), out=out)
    assert r is out and out.tolist() == [2.0, 2.0]
    empty = tl.empty(0)
    tl.add(tl.ones(3), 1, out=empty)        # an empty out is resized without a warning
    assert empty.tolist() == [2.0, 2.0, 2.0]
    assert tl.add(tl.tensor([1, 2]), 1, out=tl.zeros(2)).tolist() == [2.0, 3.0]     # integers into floats: fine


def test_torchs_errors_for_negating_a_mask_inverting_floats_clamping_and_expanded_writes():
    with pytest.raises(RuntimeError, match="Negation, the `-` operator, on a bool tensor is not supported"):
        -tl.tensor([True])
    with pytest.raises(TypeError, match=r"~ \(operator.invert\) is only implemented on integer and Boolean"):
        ~tl.tensor([5.0])
    assert (~tl.tensor([5])).tolist() == [-6] and (~tl.tensor([True])).tolist() == [False]
    with pytest.raises(RuntimeError, match="result type Float can't be cast"):
        tl.tensor([1, 5]).clamp_(0.5, 3.5)
    assert tl.tensor([1, 5]).clamp_(0, 3).tolist() == [1, 3]
    with pytest.raises(RuntimeError, match="more than one element of the written-to tensor refers to a single memory"):
        tl.zeros(3).expand(2, 3).add_(1)


def test_data_has_its_own_version_counter_and_is_no_op():
    """torch's `.data` (variable_data): the same memory, no view of the tensor, a version counter of its own, no
    op dispatched (a profile records nothing), so an update through it between forward and backward is not an
    in-place modification autograd refuses (detach() shares the versions and is refused; torch does the same)."""
    from tensorlib.profiler import profile
    p = tl.tensor([1.0, 2.0, 3.0], requires_grad=True)
    loss = (p * p).sum()
    d = p.data
    assert d._base is None and not d.requires_grad and d.is_leaf and type(d) is tl.Tensor
    d.add_(1.0)
    assert p._version == 0 and d._version == 1
    assert p.tolist() == [2.0, 3.0, 4.0]            # the same memory
    loss.backward()                                  # the saved p was not "modified" (torch: no error either)
    assert p.grad.tolist() == [4.0, 6.0, 8.0]
    loss = (p * p).sum()
    p.detach().mul_(2.0)
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        loss.backward()
    with profile() as prof:
        p.data.zero_()
    assert [e.name for e in prof.events()] == ["aten::zero_"]
    assert type(tl.nn.Parameter(tl.ones(2)).data) is tl.Tensor
