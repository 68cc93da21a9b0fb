"""Autograd node names as torch 2.13 names them where one op has overloads torch names apart (a number or a
tensor operand, a full reduction or one over a dim, a padding mode): grad_fn.name() and the profile's
`autograd::engine::evaluate_function: <name>` events (checked side by side with torch; the loss gradients'
trees are in devtools/torch_compat/test_nn_against_torch.py)."""
import numpy as np
import pytest

import tensorlib as tl
import tensorlib.nn.functional as F
from profiler import profile

X = tl.rand(3, 4) + 0.5
Y = tl.rand(3, 4) + 0.5


@pytest.mark.parametrize("fn,name", [
    (lambda x: x.clamp(0.1, 0.9), "ClampBackward1"),
    (lambda x: x.clamp(min=0.1), "ClampBackward1"),
    (lambda x: x.clamp(Y - 1, Y), "ClampBackward0"),
    (lambda x: x.clamp_min(0.1), "ClampMinBackward0"),
    (lambda x: tl.clamp_max(x, 0.9), "ClampMaxBackward0"),
    (lambda x: x ** 2, "PowBackward0"),
    (lambda x: x ** Y, "PowBackward1"),
    (lambda x: 2 ** x, "PowBackward2"),
    (lambda x: x.max(), "MaxBackward1"),
    (lambda x: x.max(1)[0], "MaxBackward0"),
    (lambda x: x.min(), "MinBackward1"),
    (lambda x: x.min(0).values, "MinBackward0"),
    (lambda x: x.lerp(Y, 0.3), "LerpBackward0"),
    (lambda x: x.lerp(Y, Y), "LerpBackward1"),
    (lambda x: x.remainder(0.3), "RemainderBackward0"),
    (lambda x: x.remainder(Y), "RemainderBackward1"),
    (lambda x: tl.xlogy(x, Y), "XlogyBackward0"),
    (lambda x: tl.xlogy(x, 2.0), "XlogyBackward2"),
    (lambda x: x.log1p(), "Log1PBackward0"),
    (lambda x: x.mv(Y[0]), "MvBackward0"),
    (lambda x: F.pad(x, (1, 1)), "ConstantPadNdBackward0"),
    (lambda x: F.pad(x[None], (1, 1), mode="reflect"), "ReflectionPad1DBackward0"),
    (lambda x: F.pad(x[None, None], (1, 1, 1, 1), mode="replicate"), "ReplicationPad2DBackward0"),
    (lambda x: F.pad(x[None], (1, 1), mode="circular"), "tensorlib::autograd::CopySlices"),
])
def test_node_names_are_torchs_overloads(fn, name):
    x = X.clone().requires_grad_()
    out = fn(x)
    assert out.grad_fn.name() == name
    with profile() as prof:
        out.sum().backward()
    # (tensorlib's own nodes, tensorlib::autograd::*, are torch::autograd::* in a profile)
    recorded = name.replace("tensorlib::", "torch::")
    assert f"autograd::engine::evaluate_function: {recorded}" in {e.name for e in prof.events()}
    assert x.grad is not None and x.grad.shape == x.shape


def test_instance_norm_is_batch_norm_over_one_image_as_torchs():
    """F.instance_norm is torch's at::instance_norm: batch_norm over the input viewed as (1, N * C, ...), the
    affine parameters and running statistics repeated N times, the running statistics then their copies' mean."""
    x = tl.randn(3, 4, 5, 6).requires_grad_()
    w = tl.rand(4).requires_grad_()
    rm, rv = tl.zeros(4), tl.ones(4)
    with profile() as prof:
        y = F.instance_norm(x, rm, rv, weight=w, momentum=0.5)
        y.sum().backward()
    nodes = [e.name.split(": ")[1] for e in prof.events() if e.name.startswith("autograd::engine::evaluate_function")]
    assert nodes == ["SumBackward0", "ViewBackward0", "NativeBatchNormBackward0", "ViewBackward0",
                     "torch::autograd::AccumulateGrad", "RepeatBackward0", "torch::autograd::AccumulateGrad"]
    names = [e.name for e in prof.events()]
    assert names.index("aten::instance_norm") < names.index("aten::native_batch_norm")
    xs = x.detach().numpy().reshape(3, 4, -1)
    mean, var = xs.mean(2), xs.var(2)
    want = ((xs - mean[..., None]) / np.sqrt(var[..., None] + 1e-5)).reshape(x.shape)
    want = want * w.detach().numpy()[:, None, None]
    np.testing.assert_allclose(y.detach().numpy(), want, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(rm.numpy(), 0.5 * mean.mean(0), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(rv.numpy(), 0.5 + 0.5 * (xs.var(2, ddof=1)).mean(0), rtol=1e-5)
    with pytest.raises(ValueError, match="Expected more than 1 spatial element when training"):
        F.instance_norm(tl.ones(2, 3, 1))
    with pytest.raises(RuntimeError, match="Expected running_mean and running_var to be defined"):
        F.instance_norm(tl.ones(2, 3, 4), use_input_stats=False)
