"""Lazy modules (LazyLinear, LazyConv*, LazyConvTranspose*, LazyBatchNorm*, LazyInstanceNorm*): shapes inferred
from the first input, the regular module's init, the class change, state_dict round trips, and the errors of
uninitialized parameters."""
import copy
import math

import numpy as np
import pytest

import tensorlib as tl
from tensorlib import nn
from tensorlib.nn.modules.lazy import LazyModuleMixin
from tensorlib.nn.parameter import UninitializedBuffer, UninitializedParameter, is_lazy


def test_lazy_linear_infers_in_features_and_becomes_linear():
    m = nn.LazyLinear(7)
    assert repr(m) == "LazyLinear(in_features=0, out_features=7, bias=True)"
    assert isinstance(m.weight, UninitializedParameter) and m.has_uninitialized_params()
    out = m(tl.randn(5, 3, 11))
    assert type(m) is nn.Linear and type(m.weight) is nn.Parameter
    assert tuple(out.shape) == (5, 3, 7) and tuple(m.weight.shape) == (7, 11) and tuple(m.bias.shape) == (7,)
    assert repr(m) == "Linear(in_features=11, out_features=7, bias=True)"
    assert not m._forward_pre_hooks and not hasattr(m, "_initialize_hook")


def test_lazy_linear_init_distribution_is_linears():
    tl.manual_seed(0)
    m = nn.LazyLinear(400)
    m(tl.ones(2, 300))
    bound = 1 / math.sqrt(300)          # kaiming_uniform_(a=sqrt(5)) on fan_in 300 and the bias bound
    w, b = m.weight.detach().numpy(), m.bias.detach().numpy()
    assert np.abs(w).max() <= bound and np.abs(w).max() > 0.95 * bound
    assert abs(w.std() - bound / math.sqrt(3)) < 0.01 * bound
    assert np.abs(b).max() <= bound and abs(b.mean()) < 0.1 * bound


def test_forward_equals_regular_module_with_same_weights():
    x = tl.randn(4, 3, 9, 9)
    lazy, ref = nn.LazyConv2d(5, 3, padding=1), None
    y = lazy(x)
    ref = nn.Conv2d(3, 5, 3, padding=1)
    ref.load_state_dict(lazy.state_dict())
    np.testing.assert_allclose(y.detach().numpy(), ref(x).detach().numpy(), rtol=1e-6, atol=1e-6)
    lin = nn.LazyLinear(2)
    z = tl.randn(6, 4)
    out = lin(z)
    np.testing.assert_allclose(out.detach().numpy(), (z.numpy() @ lin.weight.detach().numpy().T
                                                      + lin.bias.detach().numpy()), rtol=1e-5)


@pytest.mark.parametrize("cls,regular,x,wshape", [
    (nn.LazyConv1d, nn.Conv1d, (2, 3, 10), (4, 3, 3)),
    (nn.LazyConv2d, nn.Conv2d, (2, 3, 8, 8), (4, 3, 3, 3)),
    (nn.LazyConv3d, nn.Conv3d, (2, 3, 5, 5, 5), (4, 3, 3, 3, 3)),
    (nn.LazyConvTranspose1d, nn.ConvTranspose1d, (2, 3, 10), (3, 4, 3)),
    (nn.LazyConvTranspose2d, nn.ConvTranspose2d, (2, 3, 8, 8), (3, 4, 3, 3)),
    (nn.LazyConvTranspose3d, nn.ConvTranspose3d, (2, 3, 5, 5, 5), (3, 4, 3, 3, 3)),
])
def test_lazy_convs(cls, regular, x, wshape):
    m = cls(4, 3)
    out = m(tl.randn(*x))
    assert type(m) is regular and tuple(m.weight.shape) == wshape and tuple(m.bias.shape) == (4,)
    assert m.in_channels == 3 and out.shape[1] == 4
    fan_in = wshape[1] * math.prod(wshape[2:])
    assert np.abs(m.bias.detach().numpy()).max() <= 1 / math.sqrt(fan_in)


def test_lazy_conv_unbatched_groups_and_bad_rank():
    m = nn.LazyConv1d(4, 3)
    assert tuple(m(tl.randn(3, 10)).shape) == (4, 8) and m.in_channels == 3
    g = nn.LazyConv2d(4, 3, groups=2, bias=False)
    g(tl.randn(1, 6, 5, 5))
    assert tuple(g.weight.shape) == (4, 3, 3, 3) and g.bias is None
    with pytest.raises(ValueError, match="in_channels must be divisible by groups"):
        nn.LazyConv2d(4, 3, groups=2)(tl.randn(1, 3, 5, 5))
    with pytest.raises(RuntimeError, match=r"Expected 3D \(unbatched\) or 4D \(batched\) input to LazyConv2d"):
        nn.LazyConv2d(4, 3)(tl.randn(3, 5))


@pytest.mark.parametrize("cls,regular,x", [
    (nn.LazyBatchNorm1d, nn.BatchNorm1d, (8, 3)), (nn.LazyBatchNorm2d, nn.BatchNorm2d, (4, 3, 5, 5)),
    (nn.LazyBatchNorm3d, nn.BatchNorm3d, (4, 3, 2, 2, 2)), (nn.LazyInstanceNorm1d, nn.InstanceNorm1d, (4, 3, 6)),
    (nn.LazyInstanceNorm2d, nn.InstanceNorm2d, (4, 3, 5, 5)),
    (nn.LazyInstanceNorm3d, nn.InstanceNorm3d, (4, 3, 2, 2, 2)),
])
def test_lazy_norms(cls, regular, x):
    m = cls()
    assert isinstance(m.running_mean, UninitializedBuffer)
    assert sorted(m.state_dict()) == ["bias", "num_batches_tracked", "running_mean", "running_var", "weight"]
    inp = tl.randn(*x) * 3 + 2
    out = m(inp)
    assert type(m) is regular and m.num_features == 3 and type(m.running_mean) is tl.Tensor
    np.testing.assert_allclose(m.weight.detach().numpy(), np.ones(3))
    np.testing.assert_allclose(m.bias.detach().numpy(), np.zeros(3))
    assert int(m.num_batches_tracked) == (1 if "Batch" in cls.__name__ else 0)      # (instance_norm: as torch)
    ref = regular(3, affine=True, track_running_stats=True)
    np.testing.assert_allclose(out.detach().numpy(), ref(inp).detach().numpy(), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(m.running_mean.numpy(), ref.running_mean.numpy(), rtol=1e-5, atol=1e-6)


def test_lazy_batchnorm_without_affine_or_stats():
    m = nn.LazyBatchNorm1d(affine=False, track_running_stats=False)
    assert m.weight is None and m.running_mean is None and not m.has_uninitialized_params()
    assert repr(m) == "LazyBatchNorm1d(0, eps=1e-05, momentum=0.1, affine=False, bias=False, track_running_stats=False)"
    m(tl.randn(4, 3))
    assert type(m) is nn.BatchNorm1d


def test_training_step_and_optimizer_built_before_first_call():
    tl.manual_seed(0)
    model = nn.Sequential(nn.LazyLinear(16), nn.ReLU(), nn.LazyLinear(1))
    opt = tl.optim.SGD(model.parameters(), lr=0.05)      # torch allows it: the same objects materialize
    x, y = tl.randn(64, 5), tl.randn(64, 1)
    losses = []
    for _ in range(20):
        opt.zero_grad()
        loss = ((model(x) - y) ** 2).mean()
        loss.backward()
        opt.step()
        losses.append(float(loss))
    assert type(model[0]) is nn.Linear and losses[-1] < losses[0]


def test_state_dict_round_trips():
    lazy = nn.LazyLinear(3)
    sd = lazy.state_dict()
    assert list(sd) == ["weight", "bias"] and all(is_lazy(v) for v in sd.values())
    assert repr(sd["weight"]) == "<UninitializedParameter>"
    full = nn.Linear(5, 3)
    fresh = nn.LazyLinear(3)
    fresh.load_state_dict(full.state_dict())       # materialized from the loaded shapes
    assert type(fresh) is nn.LazyLinear and not fresh.has_uninitialized_params()
    np.testing.assert_array_equal(fresh.weight.detach().numpy(), full.weight.detach().numpy())
    x = tl.randn(2, 5)
    np.testing.assert_allclose(fresh(x).detach().numpy(), full(x).detach().numpy())
    assert type(fresh) is nn.Linear and fresh.in_features == 5
    other = nn.LazyLinear(3)
    other.load_state_dict(nn.LazyLinear(3).state_dict())     # uninitialized into uninitialized
    assert other.has_uninitialized_params()
    with pytest.raises(RuntimeError, match="Can't access the shape of an uninitialized parameter"):
        nn.Linear(4, 3).load_state_dict(nn.LazyLinear(3).state_dict())


def test_uninitialized_parameter_errors_and_allowed_ops():
    p = UninitializedParameter()
    assert repr(p) == "<UninitializedParameter>" and p.requires_grad and tuple(p.size()) == (0,)
    assert p.dtype == tl.float32 and p.device.type == "cpu" and p.is_leaf
    d = p.double()
    assert type(d) is UninitializedParameter and d.dtype == tl.float64
    with pytest.raises(RuntimeError, match="Can't access the shape of an uninitialized parameter or buffer"):
        p.shape
    with pytest.raises(ValueError, match=r"Attempted to use an uninitialized parameter in .*\. This error happens "
                                         r"when you are using a `LazyModule` or explicitly manipulating "
                                         r"`torch.nn.parameter.UninitializedParameter` objects"):
        p + 1
    with pytest.raises(ValueError, match="Attempted to use an uninitialized parameter"):
        nn.functional.linear(tl.ones(2, 3), p)
    with pytest.raises(ValueError, match="torch.nn.parameter.UninitializedBuffer"):
        UninitializedBuffer().sum()
    p.materialize((2, 3))
    assert type(p) is nn.Parameter and tuple(p.shape) == (2, 3) and p.requires_grad


def test_module_conversions_before_the_first_call_and_deepcopy():
    m = nn.LazyLinear(3).double()
    assert type(m.weight) is UninitializedParameter and m.weight.dtype == tl.float64
    m(tl.ones(2, 4, dtype=tl.float64))
    assert m.weight.dtype == tl.float64
    c = copy.deepcopy(nn.LazyLinear(3))
    assert type(c) is nn.LazyLinear and type(c.weight) is UninitializedParameter
    c(tl.ones(1, 2))
    assert type(c) is nn.Linear


def test_mixin_and_namespaces():
    class Bare(LazyModuleMixin, nn.Module):
        def forward(self, x):
            return x

    class Partial(Bare):
        def __init__(self):
            super().__init__()
            self.w = UninitializedParameter()

        def initialize_parameters(self, x):
            pass

    with pytest.raises(NotImplementedError, match="initialize_parameters is not implemented for Bare"):
        Bare()(tl.ones(1))
    with pytest.raises(RuntimeError, match="module Partial has not been fully initialized"):
        Partial()(tl.ones(1))
    assert nn.UninitializedParameter is UninitializedParameter and nn.UninitializedBuffer is UninitializedBuffer
    from tensorlib.nn.modules import batchnorm, conv, instancenorm, linear
    assert linear.LazyLinear is nn.LazyLinear and conv.LazyConvTranspose3d is nn.LazyConvTranspose3d
    assert batchnorm.LazyBatchNorm2d is nn.LazyBatchNorm2d and instancenorm.LazyInstanceNorm1d is nn.LazyInstanceNorm1d


def test_conv_transpose_1d_3d_without_bias():
    """(fixed with the lazy ones: bias=False raised "attribute 'bias' already exists")"""
    assert nn.ConvTranspose1d(2, 3, 3, bias=False).bias is None
    assert nn.ConvTranspose3d(2, 3, 3, bias=False).bias is None
