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


SELU_ALPHA, SELU_SCALE = 1.6732632423543772848170429916717, 1.0507009873554804934193349852946


@pytest.mark.parametrize("fn,node,inner,alpha,scale,input_scale", [
    (lambda y: F.elu(y, 0.7), "EluBackward0", "aten::elu", 0.7, 1.0, 1.0),
    (lambda y: F.elu(y, 0.7, inplace=True), "EluBackward1", "aten::elu_", 0.7, 1.0, 1.0),
    (lambda y: F.selu(y), "EluBackward0", "aten::elu", SELU_ALPHA, SELU_SCALE, 1.0),
    (lambda y: F.selu(y, inplace=True), "EluBackward1", "aten::elu_", SELU_ALPHA, SELU_SCALE, 1.0),
    (lambda y: F.celu(y, 1.3), "CeluBackward0", "aten::elu", 1.3, 1.0, 1 / 1.3),
    (lambda y: F.celu(y, 1.3, inplace=True), "CeluBackward1", "aten::elu_", 1.3, 1.0, 1 / 1.3),
])
def test_the_elu_family_is_torchs_elu_and_elu_backward(fn, node, inner, alpha, scale, input_scale):
    """elu, selu and celu are torch's elu (alpha, scale, input_scale) with one elu_backward op; in place (inplace=True)
    they write the input and save the result (EluBackward1, CeluBackward1), as torch's nodes do."""
    xs = np.array([-3.0, -0.5, 0.0, 1.5, 3.0])
    x = tl.tensor(xs, requires_grad=True)
    y = x * 1
    with profile() as prof:
        z = fn(y)
        z.sum().backward()
    assert z.grad_fn.name() == node and (z is y) == ("1" in node)
    names = [e.name for e in prof.events()]
    assert inner in names and "aten::elu_backward" in names
    neg = np.where(xs > 0, xs * scale, (np.exp(xs * input_scale) - 1) * alpha * scale)
    np.testing.assert_allclose(z.detach().numpy(), neg, rtol=1e-12)
    want = np.where(xs > 0, scale, input_scale * alpha * scale * np.exp(xs * input_scale))
    np.testing.assert_allclose(x.grad.numpy(), want, rtol=1e-12)
    # create_graph: the differentiable composite, whose own gradient is the second derivative
    x2 = tl.tensor(xs, requires_grad=True)
    (g,) = tl.autograd.grad(fn(x2 * 1).sum(), x2, create_graph=True)
    (gg,) = tl.autograd.grad(g.sum(), x2)
    np.testing.assert_allclose(gg.numpy(), np.where(xs > 0, 0, want * input_scale), rtol=1e-12)


def test_silu_and_elu_in_place_write_their_input():
    """F.silu/F.elu(inplace=True) and nn.SiLU/nn.ELU(inplace=True) write the input (torch's silu_, elu_), where they
    used to return a new tensor."""
    for f, g in ((lambda t: F.silu(t, inplace=True), F.silu), (tl.nn.SiLU(inplace=True), F.silu),
                 (lambda t: F.elu(t, inplace=True), F.elu), (tl.nn.ELU(inplace=True), F.elu)):
        t = tl.tensor([-1.0, 2.0])
        want = g(t).numpy()
        out = f(t)
        assert out is t
        np.testing.assert_array_equal(t.numpy(), want)


def test_mish_and_prelu_are_torchs_ops_with_one_backward_op():
    """mish (MishBackward0, mish_backward) and prelu's _prelu_kernel (PreluKernelBackward0, _prelu_kernel_backward,
    the weight's gradient summed to its shape), where three or four composite nodes stood."""
    xs = np.array([[-3.0, -0.5, 0.2, 1.5], [2.0, -1.0, 0.0, -40.0]])
    x = tl.tensor(xs, requires_grad=True)
    with profile() as prof:
        y = F.mish(x)
        y.sum().backward()
    assert y.grad_fn.name() == "MishBackward0" and "aten::mish_backward" in {e.name for e in prof.events()}
    sp = np.log1p(np.exp(xs))
    np.testing.assert_allclose(y.detach().numpy(), xs * np.tanh(sp), rtol=1e-12, atol=1e-300)
    s = 1 / (1 + np.exp(-xs))
    np.testing.assert_allclose(x.grad.numpy(), np.tanh(sp) + xs * s * (1 - np.tanh(sp) ** 2), rtol=1e-12)
    t = tl.tensor(xs.copy())
    assert F.mish(t, inplace=True) is t
    np.testing.assert_array_equal(t.numpy(), y.detach().numpy())

    w = tl.tensor([0.25, -0.5, 1.5, 0.1], dtype=tl.float64, requires_grad=True)
    x.grad = None
    with profile() as prof:
        y = F.prelu(x, w)
        (y * y).sum().backward()
    names = [e.name for e in prof.events()]
    assert y.grad_fn.name() == "PreluKernelBackward0" and "aten::_prelu_kernel_backward" in names
    wv = w.detach().numpy()
    want = np.where(xs > 0, xs, wv * xs)
    np.testing.assert_array_equal(y.detach().numpy(), want)
    np.testing.assert_allclose(x.grad.numpy(), 2 * want * np.where(xs > 0, 1, wv), rtol=1e-12)
    np.testing.assert_allclose(w.grad.numpy(), (2 * want * np.where(xs > 0, 0, xs)).sum(0), rtol=1e-12)
    xk = tl.tensor(xs + 0.05, requires_grad=True)        # (off the kink at 0)
    assert tl.autograd.gradcheck(F.prelu, (xk, w)) and tl.autograd.gradgradcheck(F.prelu, (xk, w))
    with pytest.raises(RuntimeError, match="Mismatch of parameter numbers and input channel size"):
        F.prelu(x, tl.ones(3, dtype=tl.float64))
