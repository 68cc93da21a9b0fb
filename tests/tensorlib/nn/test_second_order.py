"""Second derivatives through the fused nn ops (their backward passes are tensorlib ops)."""
import pytest

import tensorlib as tl
from tensorlib.autograd.gradcheck import gradgradcheck
import tensorlib.nn.functional as F


def r(*shape):
    return tl.randn(*shape, dtype=tl.float64, requires_grad=True)


@pytest.mark.parametrize("name,fn,shapes", [
    ("conv2d", lambda x, w: F.conv2d(x, w, None, (2, 1), 1), [(2, 3, 5, 4), (4, 3, 3, 2)]),
    ("conv_transpose2d", lambda x, w: F.conv_transpose2d(x, w, None, 2, 1, 1), [(2, 3, 3, 3), (3, 2, 3, 3)]),
    ("cross_entropy", lambda z: F.cross_entropy(z, tl.tensor([0, 4, -100, 2]), label_smoothing=0.1), [(4, 5)]),
    ("layer_norm", lambda z, w, b: F.layer_norm(z, (5,), w, b), [(4, 5), (5,), (5,)]),
    ("batch_norm", lambda z, w, b: F.batch_norm(z, None, None, w, b, True), [(4, 5), (5,), (5,)]),
    ("group_norm", lambda x, w: F.group_norm(x, 3, w), [(2, 6, 3), (6,)]),
    ("max_pool2d", lambda z: F.max_pool2d(z, 2), [(1, 2, 4, 5)]),
    ("avg_pool2d", lambda z: F.avg_pool2d(z, 2, 1, 1), [(1, 2, 4, 5)]),
    ("adaptive_avg_pool2d", lambda z: F.adaptive_avg_pool2d(z, (3, 2)), [(1, 2, 4, 5)]),
    ("losses", lambda z, y: F.smooth_l1_loss(z, y) + F.mse_loss(z, y) + F.binary_cross_entropy_with_logits(
        z, y.sigmoid()), [(4, 5), (4, 5)]),
    ("pad_reflect", lambda z: F.pad(z, (1, 2), mode="reflect"), [(3, 4)]),
    ("softmax_linear", lambda x, w: F.softmax(F.linear(x, w), 1), [(3, 4), (5, 4)]),
])
def test_gradgradcheck(name, fn, shapes):
    tl.manual_seed(0)
    assert gradgradcheck(fn, tuple(r(*s) for s in shapes))
