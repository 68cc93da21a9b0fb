"""One definition in one place gives an op everything: the public function, the Tensor method, the in-place
variant, hook calls forward and backward, a gradient gradcheck accepts and the name the profiler records."""
import numpy as np
import pytest

import tensorlib as tl
from tensorlib import dispatch as D
from tensorlib.autograd import gradcheck
from tensorlib.ops import _define


@pytest.fixture
def cube():
    """`cube`, declared as a user or a new op module would: one decorator and its backward."""
    @_define.op("cube_test", function=True, method=True, inplace=True, save="i", node_name="CubeTestBackward0")
    def CUBE(xp, a):
        return a * a * a

    @CUBE.def_backward
    def _(ctx, g):
        x = ctx.saved_inputs[0]
        return (g * 3 * x * x,)

    yield CUBE
    for name in ("cube_test", "cube_test_"):
        D.unregister_op(name)
        _define._FUNCTIONS.pop(name, None)
        _define._METHODS.pop(name, None)
        tl.ops.__all__ = [n for n in tl.ops.__all__ if n != name]
        for module in (tl.ops, tl):
            if hasattr(module, name):
                delattr(module, name)
        if hasattr(tl.Tensor, name):
            delattr(tl.Tensor, name)


class Recorder(D.Hook):
    def __init__(self):
        self.calls = []

    def op_enter(self, op, inputs, attrs, phase, seq):
        self.calls.append((op.name, phase))


def test_one_definition_gives_function_method_inplace_hooks_gradcheck_and_profiled_name(cube):
    x = tl.tensor([1.0, -2.0, 0.5], dtype=tl.float64, requires_grad=True)
    assert tl.cube_test is tl.ops.cube_test
    np.testing.assert_allclose(tl.cube_test(x).detach().numpy(), [1.0, -8.0, 0.125])
    np.testing.assert_allclose(x.cube_test().detach().numpy(), [1.0, -8.0, 0.125])
    y = tl.tensor([2.0, 3.0])
    assert y.cube_test_() is y
    np.testing.assert_allclose(y.numpy(), [8.0, 27.0])

    hook = D.add_hook(Recorder())
    try:
        x.cube_test().sum().backward()
    finally:
        D.remove_hook(hook)
    assert ("cube_test", "forward") in hook.calls
    assert any(phase == "backward" for name, phase in hook.calls)
    np.testing.assert_allclose(x.grad.numpy(), 3 * np.array([1.0, -2.0, 0.5]) ** 2)
    assert tl.cube_test(x).grad_fn.name() == "CubeTestBackward0"
    assert gradcheck(tl.cube_test, (x,))

    from profiler import profile
    with profile() as prof:
        tl.cube_test(x)
    names = {e.key for e in prof.key_averages()}
    assert any(n.endswith("cube_test") for n in names), names


def test_a_generated_function_passes_attributes_by_name():
    """leaky_relu(x, 0.2): the slope given by position reaches the kernel and the backward as an attribute."""
    x = tl.tensor([-1.0, 2.0], requires_grad=True)
    tl.nn.functional.leaky_relu(x, 0.2).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [0.2, 1.0])
    with pytest.raises(TypeError, match="takes 2 positional arguments but 3 were given"):
        tl.ops.leaky_relu(x, 0.2, 0.3)


def test_a_name_declared_twice_is_an_error_naming_both_places():
    with pytest.raises(RuntimeError, match=r"method 'add' is declared twice: by tensorlib\.ops\.arithmetic\.add"):
        _define.public(lambda self: self, name="add", function=False, method=True)


def test_exports_come_from_the_declarations_only():
    """No deny-list: the package exports exactly what was declared as a function, and every declared method
    is on Tensor."""
    assert set(tl.ops.__all__) == set(_define.functions())
    for name, fn in _define.methods().items():
        assert tl.Tensor.__dict__[name] is fn
    for private in ("np", "dispatch", "Tensor", "sum_to", "add_at", "int_zero_division"):
        assert private not in tl.ops.__all__
    # torch's own in-place functions are there, the methods-only ones are not
    assert {"relu_", "sigmoid_", "exp_", "clamp_", "zero_", "fill_"} <= set(tl.ops.__all__)
    assert not {"add_", "copy_", "to", "item"} & set(tl.ops.__all__)
