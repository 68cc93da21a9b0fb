"""Every op that backward() dispatches -- formulas, gradient sums, and the AccumulateGrad copies into
.grad -- is reported to hooks in the backward phase (a profiler must not see stray forward ops)."""
import tensorlib as tl
from tensorlib.dispatch import Hook, add_hook, remove_hook


class Phases(Hook):
    def __init__(self):
        self.ops = []

    def op_enter(self, op, inputs, attrs, phase, seq):
        self.ops.append((op.name, phase, seq))


def test_backward_ops_are_all_in_backward_phase():
    w = tl.randn(3, 3, requires_grad=True)
    x = tl.randn(2, 3)
    y = (x @ w).relu()
    loss = (y * y).sum() + (x @ w).sum()       # w used twice: its gradients are summed
    h = Phases()
    add_hook(h)
    try:
        loss.backward()
        loss2 = (x @ w).sum()
    finally:
        remove_hook(h)
    names_phases = [(n, p) for n, p, _ in h.ops]
    # the implicit grad_output, made before the engine runs as torch's ones_like: empty_like, then fill_
    assert names_phases[:2] == [("empty_strided", "forward"), ("fill_", "forward")]
    i_fwd = names_phases.index(("matmul", "forward"))      # the first op after backward() returned
    inside = names_phases[2:i_fwd]
    assert all(p == "backward" for _, p in inside), inside
    assert ("add", "backward") in inside                   # w's two gradients summed
    assert ("detach", "backward") in inside or ("clone", "backward") in inside   # AccumulateGrad
    assert tl.dispatch.STATE.phase == "forward"
    del loss2
