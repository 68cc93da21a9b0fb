"""Lazy modules side by side with torch 2.13: the same reprs and state_dict keys before the first call, the same
types, reprs, state_dict keys and shapes after it, the same init bounds, and the same errors (uninitialized shape
and use, groups, input rank, loading an uninitialized state into an initialized module)."""
from __future__ import annotations

import re

import numpy as np
import pytest

import tensorlib as tl

torch = pytest.importorskip("torch")

CASES = [
    ("LazyLinear", (7,), {}, (5, 3, 11)),
    ("LazyLinear", (2,), {"bias": False}, (4, 6)),
    ("LazyConv1d", (4, 3), {"stride": 2}, (2, 3, 10)),
    ("LazyConv1d", (4, 3), {}, (3, 10)),
    ("LazyConv2d", (6, 3), {"padding": 1, "groups": 2, "bias": False}, (2, 4, 8, 8)),
    ("LazyConv3d", (4, 2), {}, (1, 3, 4, 4, 4)),
    ("LazyConvTranspose1d", (4, 3), {}, (2, 3, 10)),
    ("LazyConvTranspose2d", (4, 3), {"stride": 2}, (2, 3, 5, 5)),
    ("LazyConvTranspose3d", (4, 2), {}, (1, 3, 3, 3, 3)),
    ("LazyBatchNorm1d", (), {}, (8, 3)),
    ("LazyBatchNorm1d", (), {"affine": False}, (8, 3, 4)),
    ("LazyBatchNorm2d", (), {"momentum": None}, (4, 3, 5, 5)),
    ("LazyBatchNorm3d", (), {"track_running_stats": False}, (2, 3, 2, 2, 2)),
    ("LazyInstanceNorm1d", (), {}, (4, 3, 6)),
    ("LazyInstanceNorm2d", (), {"affine": False}, (4, 3, 5, 5)),
    ("LazyInstanceNorm3d", (), {}, (2, 3, 2, 2, 2)),
]


def _norm(s):
    return s.replace("tensorlib", "torch")


def _sd(m):
    return [(k, "lazy" if type(v).__name__.startswith("Uninitialized") else tuple(v.shape), type(v).__name__)
            for k, v in m.state_dict().items()]


@pytest.mark.parametrize("name,args,kwargs,shape", CASES)
def test_before_and_after_the_first_call(name, args, kwargs, shape):
    ours, theirs = getattr(tl.nn, name)(*args, **kwargs), getattr(torch.nn, name)(*args, **kwargs)
    assert repr(ours) == repr(theirs)
    assert _sd(ours) == _sd(theirs)
    assert [repr(v) for v in ours.state_dict().values() if "Uninit" in type(v).__name__] == \
        [repr(v) for v in theirs.state_dict().values() if "Uninit" in type(v).__name__]
    assert ours.has_uninitialized_params() == theirs.has_uninitialized_params()
    x = np.random.default_rng(0).standard_normal(shape)
    y_ours, y_theirs = ours(tl.tensor(x, dtype=tl.float32)), theirs(torch.tensor(x, dtype=torch.float32))
    assert type(ours).__name__ == type(theirs).__name__
    assert repr(ours) == repr(theirs)
    assert _sd(ours) == _sd(theirs)
    assert tuple(y_ours.shape) == tuple(y_theirs.shape)
    assert [type(p).__name__ for p in ours.parameters()] == [type(p).__name__ for p in theirs.parameters()]
    assert not ours._forward_pre_hooks and not theirs._forward_pre_hooks


@pytest.mark.parametrize("name,args,kwargs,shape", [c for c in CASES if "Norm" not in c[0]])
def test_same_weights_same_forward(name, args, kwargs, shape):
    """torch's weights loaded into our lazy module (materialized from the loaded shapes) give torch's output."""
    theirs = getattr(torch.nn, name)(*args, **kwargs).double()
    x = np.random.default_rng(1).standard_normal(shape)
    want = theirs(torch.tensor(x)).detach().numpy()
    ours = getattr(tl.nn, name)(*args, **kwargs).double()
    ours.load_state_dict({k: tl.tensor(v.detach().numpy()) for k, v in theirs.state_dict().items()})
    assert type(ours).__name__ == name          # loading keeps the lazy class until the first call, as torch's
    np.testing.assert_allclose(ours(tl.tensor(x)).detach().numpy(), want, rtol=1e-10, atol=1e-12)
    assert type(ours).__name__ == type(theirs).__name__


def test_init_bounds_match():
    """The regular module's init: kaiming_uniform_(a=sqrt(5)) and bias bound 1/sqrt(fan_in) in both."""
    for lib in (tl, torch):
        lib.manual_seed(0)
    ours, theirs = tl.nn.LazyConv2d(32, 3), torch.nn.LazyConv2d(32, 3)
    ours(tl.ones(1, 8, 5, 5))
    theirs(torch.ones(1, 8, 5, 5))
    for a, b in zip(ours.parameters(), theirs.parameters()):
        a, b = a.detach().numpy(), b.detach().numpy()
        assert a.shape == b.shape
        assert abs(np.abs(a).max() - np.abs(b).max()) < 0.05 * np.abs(b).max()
        assert abs(a.std() - b.std()) < 0.15 * b.std()


def _error(fn_ours, fn_theirs):
    got = []
    for fn in (fn_ours, fn_theirs):
        with pytest.raises(Exception) as e:
            fn()
        got.append((type(e.value), _norm(str(e.value))))
    return got


def test_same_errors():
    ours, theirs = _error(lambda: tl.nn.LazyLinear(3).weight.shape, lambda: torch.nn.LazyLinear(3).weight.shape)
    assert ours == theirs
    ours, theirs = _error(lambda: tl.nn.Linear(4, 3).load_state_dict(tl.nn.LazyLinear(3).state_dict()),
                          lambda: torch.nn.Linear(4, 3).load_state_dict(torch.nn.LazyLinear(3).state_dict()))
    assert ours == theirs
    ours, theirs = _error(lambda: tl.nn.LazyConv2d(4, 3, groups=2)(tl.ones(1, 3, 5, 5)),
                          lambda: torch.nn.LazyConv2d(4, 3, groups=2)(torch.ones(1, 3, 5, 5)))
    assert ours == theirs
    ours, theirs = _error(lambda: tl.nn.LazyConv2d(4, 3)(tl.ones(3, 5)),
                          lambda: torch.nn.LazyConv2d(4, 3)(torch.ones(3, 5)))
    assert ours == theirs
    # using one: the same class and message, but for the name of the function (torch's C function's repr)
    ours, theirs = _error(lambda: tl.nn.LazyLinear(3).weight + 1, lambda: torch.nn.LazyLinear(3).weight + 1)
    assert ours[0] is theirs[0] is ValueError
    pattern = re.compile(r"Attempted to use an uninitialized parameter in .*?\. (This error happens.*)", re.S)
    assert pattern.match(ours[1]).group(1) == pattern.match(theirs[1]).group(1)
    ours, theirs = _error(lambda: tl.nn.parameter.UninitializedBuffer().sum(),
                          lambda: torch.nn.parameter.UninitializedBuffer().sum())
    assert pattern.match(ours[1]).group(1) == pattern.match(theirs[1]).group(1)


def test_optimizer_before_the_first_call_and_conversions():
    """torch lets an optimizer take the uninitialized parameters (they materialize in place); both then train."""
    for lib in (tl, torch):
        m = lib.nn.LazyLinear(1).double()
        assert type(m.weight).__name__ == "UninitializedParameter" and m.weight.dtype == lib.float64
        opt = lib.optim.SGD(m.parameters(), lr=0.1)
        x = lib.ones(4, 3, dtype=lib.float64)
        first = None
        for _ in range(3):
            opt.zero_grad()
            loss = (m(x) ** 2).mean()
            loss.backward()
            opt.step()
            first = loss.item() if first is None else first
        assert (m(x) ** 2).mean().item() < first and type(m).__name__ == "Linear"


def test_uninitialized_into_uninitialized_and_reprs():
    for lib in (tl, torch):
        m = lib.nn.LazyLinear(3)
        m.load_state_dict(lib.nn.LazyLinear(3).state_dict())
        assert m.has_uninitialized_params() and type(m).__name__ == "LazyLinear"
    assert repr(tl.nn.UninitializedParameter()) == repr(torch.nn.UninitializedParameter())
    assert repr(tl.nn.UninitializedBuffer()) == repr(torch.nn.UninitializedBuffer())
    assert tuple(tl.nn.UninitializedParameter().size()) == tuple(torch.nn.UninitializedParameter().size())
