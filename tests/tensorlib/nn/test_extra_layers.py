"""The added nn.functional names and layers (tensorlib/nn/_functional_extra.py, nn/modules/extra.py): finite-
difference gradients in float64, shapes, and torch's errors. Values against torch itself:
devtools/torch_compat/test_nn_extra_against_torch.py (same inputs, 90 cases)."""
from __future__ import annotations

import numpy as np
import pytest

import tensorlib as tl
import tensorlib.nn.functional as F
from tensorlib import nn
from tensorlib.autograd import gradcheck

R = np.random.default_rng(0)


def t(*shape, lo=-2.0, hi=2.0, grad=True):
    x = tl.tensor(R.uniform(lo, hi, shape))
    return x.requires_grad_(True) if grad else x


# away from the kinks (|x| near 0, 3, the shrink thresholds), where finite differences straddle them
SMOOTH = {
    "mish": lambda: (F.mish, [t(3, 4)]),
    "selu": lambda: (F.selu, [t(3, 4, lo=0.1)]),
    "celu": lambda: (lambda x: F.celu(x, 0.7), [t(3, 4, lo=-2, hi=-0.1)]),
    "softsign": lambda: (F.softsign, [t(3, 4, lo=0.1)]),
    "tanhshrink": lambda: (F.tanhshrink, [t(3, 4)]),
    "hardswish": lambda: (F.hardswish, [t(3, 4, lo=-2.5, hi=2.5)]),
    "soft_margin_loss": lambda: (F.soft_margin_loss, [t(4, 3), tl.tensor(np.sign(R.uniform(-1, 1, (4, 3))))]),
    "multilabel_soft_margin_loss": lambda: (F.multilabel_soft_margin_loss,
                                            [t(4, 3), tl.tensor((R.random((4, 3)) < .5) * 1.0)]),
    "cosine_similarity": lambda: (lambda a, b: F.cosine_similarity(a, b, dim=1), [t(4, 3), t(4, 3)]),
    "pairwise_distance": lambda: (F.pairwise_distance, [t(4, 3), t(4, 3)]),
    "poisson_nll_loss": lambda: (lambda x, y: F.poisson_nll_loss(x, y, full=True),
                                 [t(4, 3), tl.tensor(R.uniform(0.5, 3, (4, 3)))]),
    "gaussian_nll_loss": lambda: (lambda x, v: F.gaussian_nll_loss(x, tl.zeros(4, 3, dtype=tl.float64), v),
                                  [t(4, 3), t(4, 3, lo=0.5, hi=2)]),
    "pixel_shuffle": lambda: (lambda x: F.pixel_shuffle(x, 2), [t(1, 8, 2, 3)]),
    "instance_norm": lambda: (F.instance_norm, [t(2, 3, 4, 4)]),
    "local_response_norm": lambda: (lambda x: F.local_response_norm(x, 3, alpha=0.1), [t(2, 5, 3, 3)]),
    "rms_norm": lambda: (lambda x, w: F.rms_norm(x, (4,), w), [t(2, 3, 4), t(4)]),
    "avg_pool1d": lambda: (lambda x: F.avg_pool1d(x, 3, 2), [t(2, 3, 9)]),
    "adaptive_max_pool2d": lambda: (lambda x: F.adaptive_max_pool2d(x, (2, 3)), [t(1, 2, 5, 7)]),
    "lp_pool2d": lambda: (lambda x: F.lp_pool2d(x, 2, 2), [t(1, 2, 4, 4, lo=0.5)]),
    "interpolate_bilinear": lambda: (lambda x: F.interpolate(x, size=(5, 7), mode="bilinear"), [t(1, 2, 3, 4)]),
    "unfold": lambda: (lambda x: F.unfold(x, 2, padding=1, stride=2), [t(1, 2, 4, 5)]),
    "conv_transpose1d": lambda: (lambda x, w: F.conv_transpose1d(x, w, stride=2), [t(1, 2, 4), t(2, 3, 3)]),
    "embedding_bag": lambda: (lambda w: F.embedding_bag(tl.tensor([1, 2, 4, 1]), w, tl.tensor([0, 2])), [t(5, 3)]),
    "multi_margin_loss": lambda: (lambda x: F.multi_margin_loss(x, tl.tensor([0, 2, 1]), p=2, margin=5.0),
                                  [t(3, 4)]),
}


@pytest.mark.parametrize("name", sorted(SMOOTH))
def test_gradients(name):
    fn, inputs = SMOOTH[name]()
    assert gradcheck(fn, inputs)


def test_layers_train_together():
    m = nn.Sequential(nn.Conv2d(1, 4, 3), nn.InstanceNorm2d(4, affine=True), nn.Hardswish(), nn.ReflectionPad2d(1),
                      nn.AdaptiveMaxPool2d(2), nn.Flatten(), nn.Linear(16, 6), nn.PReLU(), nn.Dropout1d(0.1),
                      nn.Mish())
    x = tl.randn(2, 1, 8, 8)
    y = m(x)
    assert y.shape == (2, 6)
    y.pow(2).sum().backward()
    assert all(p.grad is not None for p in m.parameters())
    bag = nn.EmbeddingBag(10, 4, mode="max")
    assert bag(tl.tensor([[1, 2], [3, 4]])).shape == (2, 4)
    assert nn.Upsample(scale_factor=2)(tl.ones(1, 1, 2, 2)).shape == (1, 1, 4, 4)


def test_torch_errors():
    with pytest.raises(RuntimeError, match="pixel_shuffle expects its input's 'channel' dimension to be divisible"):
        F.pixel_shuffle(tl.zeros(1, 3, 2, 2), 2)
    with pytest.raises(ValueError, match="only one of size or scale_factor should be defined"):
        F.interpolate(tl.zeros(1, 1, 2, 2), size=3, scale_factor=2)
    with pytest.raises(ValueError, match="align_corners option can only be set with the interpolating modes"):
        F.interpolate(tl.zeros(1, 1, 2, 2), size=3, align_corners=True)
    with pytest.raises(ValueError, match="Anti-alias option is restricted to bilinear, bicubic, and lanczos"):
        F.interpolate(tl.zeros(1, 1, 2), size=3, mode="linear", antialias=True)
    with pytest.raises(ValueError, match="Lanczos mode requires antialias=True"):
        F.interpolate(tl.zeros(1, 1, 2, 2), size=3, mode="lanczos")
    with pytest.raises(NotImplementedError, match="got 3D\\) for the modes"):
        F.interpolate(tl.zeros(1, 1, 2), size=3, mode="bicubic")
    with pytest.raises(ValueError, match="dropout probability has to be between 0 and 1, but got 1.5"):
        F.dropout1d(tl.zeros(2, 3), 1.5)
    with pytest.raises(ValueError, match="TripletMarginLoss: expected margin to be greater than 0"):
        nn.TripletMarginLoss(margin=0)
    with pytest.raises(RuntimeError, match="Mismatch of parameter numbers and input channel size"):
        F.prelu(tl.zeros(2, 3), tl.ones(2))
