"""nn.functional's added names (tensorlib/nn/_functional_extra.py) and their modules against torch 2.13: the
same float64 inputs, forward values and input gradients (of a fixed random projection of the output)."""
from __future__ import annotations

import numpy as np
import pytest

import tensorlib as tl

torch = pytest.importorskip("torch")

R = np.random.default_rng(0)


def f64(*shape, lo=-2.0, hi=2.0):
    return R.uniform(lo, hi, shape)


def pos(*shape):
    return R.uniform(0.2, 2.0, shape)


def signs(*shape):
    return np.where(R.random(shape) < 0.5, -1.0, 1.0)


def idx(n, *shape):
    return R.integers(0, n, shape)


# name: (list of array args (float arrays get gradients), kwargs)
CASES = {
    "hardsigmoid": ([f64(3, 7) * 3], {}),
    "hardswish": ([f64(3, 7) * 3], {}),
    "mish": ([f64(3, 7)], {}),
    "selu": ([f64(3, 7)], {}),
    "celu": ([f64(3, 7)], {"alpha": 0.7}),
    "softsign": ([f64(3, 7)], {}),
    "softshrink": ([f64(3, 7)], {"lambd": 0.3}),
    "hardshrink": ([f64(3, 7)], {"lambd": 0.3}),
    "tanhshrink": ([f64(3, 7)], {}),
    "threshold": ([f64(3, 7)], {"threshold": 0.1, "value": -3.0}),
    "prelu": ([f64(2, 3, 4), pos(3)], {}),
    "rrelu": ([f64(3, 7)], {"training": False}),
    "soft_margin_loss": ([f64(4, 3), signs(4, 3)], {}),
    "multilabel_soft_margin_loss": ([f64(4, 3), (R.random((4, 3)) < 0.5) * 1.0], {"weight": pos(3)}),
    "margin_ranking_loss": ([f64(6), f64(6), signs(6)], {"margin": 0.2}),
    "hinge_embedding_loss": ([f64(6, 2), signs(6, 2)], {"margin": 0.5}),
    "cosine_embedding_loss": ([f64(5, 4), f64(5, 4), signs(5)], {"margin": 0.1}),
    "poisson_nll_loss": ([f64(5, 3), pos(5, 3) * 3], {"full": True}),
    "gaussian_nll_loss": ([f64(5, 3), f64(5, 3), pos(5, 3)], {"full": True}),
    "triplet_margin_loss": ([f64(5, 4), f64(5, 4), f64(5, 4)], {"margin": 1.5, "swap": True}),
    "multi_margin_loss": ([f64(5, 4), idx(4, 5)], {"p": 2, "margin": 0.7, "weight": pos(4)}),
    "pairwise_distance": ([f64(5, 4), f64(5, 4)], {"p": 3.0}),
    "cosine_similarity": ([f64(5, 4), f64(5, 4)], {"dim": 1}),
    "pixel_shuffle": ([f64(2, 8, 3, 3)], {"upscale_factor": 2}),
    "pixel_unshuffle": ([f64(2, 2, 4, 6)], {"downscale_factor": 2}),
    "channel_shuffle": ([f64(2, 6, 3)], {"groups": 3}),
    "instance_norm": ([f64(2, 3, 5, 4)], {"weight": pos(3), "bias": f64(3)}),
    "local_response_norm": ([f64(2, 6, 3, 3)], {"size": 3, "alpha": 0.1, "beta": 0.6, "k": 1.5}),
    "rms_norm": ([f64(3, 4, 5)], {"normalized_shape": (5,), "weight": pos(5), "eps": 1e-6}),
    "max_pool1d": ([f64(2, 3, 9)], {"kernel_size": 3, "stride": 2, "padding": 1}),
    "avg_pool1d": ([f64(2, 3, 9)], {"kernel_size": 3, "stride": 2}),
    "adaptive_avg_pool1d": ([f64(2, 3, 9)], {"output_size": 4}),
    "adaptive_max_pool1d": ([f64(2, 3, 9)], {"output_size": 4}),
    "adaptive_max_pool2d": ([f64(2, 3, 7, 5)], {"output_size": (3, 2)}),
    "lp_pool1d": ([pos(2, 3, 8)], {"norm_type": 2, "kernel_size": 2}),
    "lp_pool2d": ([pos(2, 3, 6, 6)], {"norm_type": 3, "kernel_size": 2, "stride": 2}),
    "unfold": ([f64(2, 3, 6, 5)], {"kernel_size": (2, 3), "dilation": (1, 2), "padding": 1, "stride": (2, 1)}),
    "conv_transpose1d": ([f64(2, 4, 6), f64(4, 3, 3)], {"stride": 2, "padding": 1, "output_padding": 1}),
    "interpolate": ([f64(2, 3, 4, 5)], {"scale_factor": 2, "mode": "nearest"}),
}
EXTRA = [
    ("interpolate", [f64(2, 3, 4, 5)], {"size": (7, 3), "mode": "bilinear", "align_corners": False}),
    ("interpolate", [f64(2, 3, 4, 5)], {"size": (7, 9), "mode": "bilinear", "align_corners": True}),
    ("interpolate", [f64(2, 3, 5)], {"scale_factor": 1.5, "mode": "linear"}),
    ("interpolate", [f64(2, 3, 5)], {"size": 11, "mode": "nearest"}),
    ("embedding_bag", [idx(10, 7), f64(10, 4), np.array([0, 2, 2, 5])], {"mode": "mean"}),
    ("embedding_bag", [idx(10, 3, 4), f64(10, 4)], {"mode": "max"}),
    ("embedding_bag", [idx(10, 7), f64(10, 4), np.array([0, 3])], {"mode": "sum", "per_sample_weights": pos(7)}),
    ("max_pool2d_with_indices", [f64(2, 3, 6, 6)], {"kernel_size": 2}),
]


def _convert(lib, v, grad):
    if isinstance(v, np.ndarray):
        t = lib.tensor(v.copy())
        if grad and v.dtype == np.float64:
            t.requires_grad_(True)
        return t
    return v


def _run(lib, name, args, kw):
    targs = [_convert(lib, a, i == 0 or name in ("prelu", "conv_transpose1d", "embedding_bag", "gaussian_nll_loss"))
             for i, a in enumerate(args)]
    tkw = {k: _convert(lib, v, False) for k, v in kw.items()}
    fn = getattr(lib.nn.functional, name)
    out = fn(*targs, **tkw)
    first = out[0] if isinstance(out, tuple) else out
    proj = lib.tensor(np.random.default_rng(1).standard_normal(tuple(first.shape)))
    if first.requires_grad:
        (first * proj).sum().backward()
    grads = [t.grad.numpy() if hasattr(t, "grad") and getattr(t, "grad", None) is not None else None for t in targs]
    outs = [o.detach().numpy() for o in (out if isinstance(out, tuple) else (out,))]
    return outs, grads


@pytest.mark.parametrize("name,args,kw", [(n, *CASES[n]) for n in CASES] + EXTRA,
                         ids=[n for n in CASES] + [f"{n}-{i}" for i, (n, _, _) in enumerate(EXTRA)])
def test_same_as_torch(name, args, kw):
    ours, ours_g = _run(tl, name, args, kw)
    theirs, theirs_g = _run(torch, name, args, kw)
    for a, b in zip(ours, theirs):
        np.testing.assert_allclose(a, b, rtol=1e-7, atol=1e-10)
    for a, b in zip(ours_g, theirs_g):
        assert (a is None) == (b is None)
        if a is not None:
            np.testing.assert_allclose(a, b, rtol=1e-7, atol=1e-10)


MODULES = [
    ("PReLU", (3,), {}, (2, 3, 4)), ("RReLU", (), {}, (3, 5)), ("Hardswish", (), {}, (3, 5)),
    ("Hardsigmoid", (), {}, (3, 5)), ("Mish", (), {}, (3, 5)), ("SELU", (), {}, (3, 5)), ("CELU", (0.5,), {}, (3, 5)),
    ("Softsign", (), {}, (3, 5)), ("Softshrink", (0.2,), {}, (3, 5)), ("Hardshrink", (), {}, (3, 5)),
    ("Tanhshrink", (), {}, (3, 5)), ("Threshold", (0.1, 2.0), {}, (3, 5)), ("LogSigmoid", (), {}, (3, 5)),
    ("Softmax2d", (), {}, (2, 3, 4, 4)),
    ("ZeroPad2d", ((1, 2, 0, 3),), {}, (1, 2, 3, 4)), ("ConstantPad1d", (2, 3.5), {}, (2, 3, 4)),
    ("ReflectionPad2d", (2,), {}, (1, 2, 4, 4)), ("ReplicationPad1d", ((3, 1),), {}, (2, 3, 4)),
    ("CircularPad2d", (1,), {}, (1, 2, 3, 4)), ("ReplicationPad3d", (1,), {}, (1, 2, 3, 3, 3)),
    ("MaxPool1d", (3, 2), {}, (2, 3, 9)), ("AvgPool1d", (2,), {}, (2, 3, 8)),
    ("AdaptiveAvgPool1d", (3,), {}, (2, 3, 8)),
    ("AdaptiveMaxPool1d", (3,), {}, (2, 3, 8)), ("AdaptiveMaxPool2d", ((2, 3),), {}, (2, 3, 5, 7)),
    ("LPPool2d", (2, 2), {}, (1, 2, 4, 4)), ("LPPool1d", (2, 2), {}, (1, 2, 6)),
    ("InstanceNorm1d", (3,), {"affine": True}, (2, 3, 6)), ("InstanceNorm2d", (3,), {}, (2, 3, 4, 5)),
    ("InstanceNorm3d", (2,), {"affine": True}, (2, 2, 3, 3, 3)), ("LocalResponseNorm", (3,), {}, (2, 5, 3, 3)),
    ("RMSNorm", ((4,),), {"eps": 1e-6}, (2, 3, 4)), ("PixelShuffle", (2,), {}, (1, 8, 2, 3)),
    ("PixelUnshuffle", (2,), {}, (1, 2, 4, 4)), ("ChannelShuffle", (2,), {}, (1, 4, 2, 2)),
    ("Upsample", (), {"scale_factor": 2, "mode": "bilinear"}, (1, 2, 3, 3)),
    ("UpsamplingNearest2d", (), {"size": (5, 4)}, (1, 2, 3, 3)), ("UpsamplingBilinear2d", (), {"scale_factor": 2},
                                                                    (1, 2, 3, 3)),
    ("Unfold", (2,), {"stride": 2}, (1, 2, 4, 6)), ("ConvTranspose1d", (4, 2, 3), {"stride": 2}, (2, 4, 5)),
    ("Dropout1d", (0.3,), {}, (2, 3, 4)), ("AlphaDropout", (0.3,), {}, (2, 3)),
]


@pytest.mark.parametrize("name,args,kw,shape", MODULES, ids=[m[0] for m in MODULES])
def test_module_same_as_torch(name, args, kw, shape):
    """torch's parameter names (its state dict loads), repr, and outputs in eval mode."""
    ours, theirs = getattr(tl.nn, name)(*args, **kw).double(), getattr(torch.nn, name)(*args, **kw).double()
    ours.load_state_dict({k: tl.tensor(v.detach().numpy()) for k, v in theirs.state_dict().items()})
    assert list(ours.state_dict()) == list(theirs.state_dict())
    assert repr(ours) == repr(theirs)
    ours.eval()
    theirs.eval()
    x = R.uniform(0.1, 2.0, shape) if name.startswith("LPPool") else R.uniform(-2, 2, shape)
    np.testing.assert_allclose(ours(tl.tensor(x)).detach().numpy(), theirs(torch.tensor(x)).detach().numpy(),
                               rtol=1e-7, atol=1e-10)


def test_embedding_bag_module_same_as_torch():
    theirs = torch.nn.EmbeddingBag(10, 3, mode="sum", padding_idx=2).double()
    ours = tl.nn.EmbeddingBag(10, 3, mode="sum", padding_idx=2).double()
    ours.load_state_dict({k: tl.tensor(v.detach().numpy()) for k, v in theirs.state_dict().items()})
    ids, offs = np.array([1, 2, 4, 5, 4, 3, 2, 9]), np.array([0, 4])
    np.testing.assert_allclose(ours(tl.tensor(ids), tl.tensor(offs)).detach().numpy(),
                               theirs(torch.tensor(ids), torch.tensor(offs)).detach().numpy(), rtol=1e-12)
    assert repr(ours) == repr(theirs)
