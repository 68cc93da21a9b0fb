"""_opdef.with_defaults: a copy of a function with some parameters' defaults replaced, called as partial(fn, **kw) is
(the backward formulas bound to their recorded or quiet kernels, without partial's per-call dict)."""
from __future__ import annotations

from functools import partial

import pytest

from tensorlib._opdef import op_at, op_named, with_defaults


def _formula(ctx, g, dinput, k=1, *_, run=None):
    return ctx, g, dinput, k, _, run


@pytest.mark.parametrize("bound", [{"k": 5}, {"dinput": 7, "k": 5}, {"run": len}, {"dinput": 7, "run": len}])
@pytest.mark.parametrize("call", [((1, 2, 3), {}), ((1, 2, 3, 4), {}), ((1, 2, 3, 4, 9), {"run": abs}),
                                  ((1, 2), {"dinput": 0}), ((1, 2, 3), {"k": 8})])
def test_calls_as_partial_does(bound, call):
    """Every call partial takes gives the same; a positional argument for a bound parameter, which partial refuses
    (multiple values), is taken as the function's own defaults are."""
    args, kw = call
    try:
        want = partial(_formula, **bound)(*args, **kw)
    except TypeError as e:
        assert "multiple values" in str(e)
        return
    assert with_defaults(_formula, **bound)(*args, **kw) == want


def test_keeps_the_function_and_its_closure():
    c = 10

    def f(x, k=1):
        return x * k + c
    g = with_defaults(f, k=3)
    assert g(2) == 16 and f(2) == 12 and g.__qualname__ == f.__qualname__ and g.__doc__ == f.__doc__
    assert g.__code__ is f.__code__


def test_refuses_what_partial_would_not_bind_as_a_default():
    def f(ctx, g, dinput, k=1):
        return dinput
    with pytest.raises(TypeError, match="no parameter 'z'"):
        with_defaults(f, z=1)
    with pytest.raises(TypeError, match="'k' after a bound one has no default"):
        with_defaults(lambda a, b, k: k, b=1)


def test_op_at_is_op_named_for_registered_ops():
    assert op_at("neg") is op_named("neg")
    with pytest.raises(KeyError):
        op_at("no such op")
