"""gradgradcheck takes its finite differences of the first derivative with grad mode on (it used to run
them under no_grad, which made every numerical second derivative 0 and let wrong ones pass)."""
import pytest

import tensorlib as tl
from tensorlib.autograd import GradcheckError, gradgradcheck
from tensorlib.dispatch import dispatch, register_op, unregister_op


@pytest.fixture
def square_op():
    op = register_op("test_square_detached_bwd", lambda xp, a: a * a, save="i")
    # first-order right, second-order wrong: the saved input is used detached, so d2/dx2 comes out 0
    op.def_backward(lambda ctx, g: (g * 2 * ctx.saved_inputs[0].detach(),))
    yield op
    unregister_op(op.name)     # the registry is process-wide: leave it as found


def test_gradgradcheck_catches_a_wrong_second_derivative(square_op):
    _SQ = square_op
    x = tl.randn(3, dtype=tl.float64, requires_grad=True)
    assert tl.autograd.gradcheck(lambda x: dispatch(_SQ, x), (x,))
    with pytest.raises(GradcheckError):
        gradgradcheck(lambda x: dispatch(_SQ, x), (x,))
    assert gradgradcheck(lambda x: x * x, (x,))
