"""autocast: op lists, nesting, disabled regions; casts are dispatched (visible to hooks)."""
from __future__ import annotations

import tensorlib as tl
from tensorlib import dispatch as D


def test_lower_precision_and_fp32_lists():
    a = tl.randn(4, 8)
    b = tl.randn(8, 3)
    with tl.autocast("cpu", dtype=tl.float16):
        y = a @ b
        assert y.dtype == tl.float16
        assert tl.bmm(a[None], b[None]).dtype == tl.float16
        assert y.exp().dtype == tl.float32          # fp32 list
        assert y.sum().dtype == tl.float32
        assert (y + 1).dtype == tl.float16          # not listed: runs in its input's dtype
        with tl.autocast("cpu", enabled=False):
            assert (a @ b).dtype == tl.float32      # disabled region
        with tl.autocast("cpu", dtype=tl.float64):
            assert (a @ b).dtype == tl.float64      # nested region with another dtype
        assert (a @ b).dtype == tl.float16
    assert (a @ b).dtype == tl.float32
    assert not D.full_path_active()


def test_autocast_leaves_other_devices_alone():
    a = tl.randn(2, 2)
    with tl.autocast("cuda"):
        assert (a @ a).dtype == tl.float32          # CPU tensors under CUDA autocast


def test_autocast_gradients_reach_fp32_leaves():
    w = tl.randn(3, 3, requires_grad=True)
    with tl.autocast("cpu"):
        loss = (tl.ones(2, 3) @ w).sum()
    loss.backward()
    assert w.grad.dtype == tl.float32 and w.grad.shape == (3, 3)


def test_casts_are_dispatched_ops():
    seen = []

    class H(D.Hook):
        def op_enter(self, op, inputs, attrs, phase, seq):
            seen.append(op.name)

    h = D.add_hook(H())
    try:
        with tl.autocast("cpu"):
            tl.ones(2, 2) @ tl.ones(2, 2)
    finally:
        D.remove_hook(h)
    assert seen.count("to") == 2 and "matmul" in seen
    assert seen.index("matmul") < seen.index("to")   # casts nest inside the op that needs them
