"""gradgradcheck takes its finite differences of the first derivative with grad mode on (it used to run
them under no_grad, which made every numerical second derivative 0 and let wrong ones pass)."""
import pytest

import tensorlib as tl
from tensorlib.autograd import GradcheckError, gradgradcheck
from tensorlib.dispatch import dispatch, register_op

_SQ = register_op("test_square_detached_bwd", lambda xp, a: a * a, save="i")
# first-order right, second-order wrong: the saved input is used detached, so d2/dx2 comes out 0
_SQ.def_backward(lambda ctx, g: (g * 2 * ctx.saved_inputs[0].detach(),))


def test_gradgradcheck_catches_a_wrong_second_derivative():
    x = tl.randn(3, dtype=tl.float64, requires_grad=True)
    assert tl.autograd.gradcheck(lambda x: dispatch(_SQ, x), (x,))
    with pytest.raises(GradcheckError):
        gradgradcheck(lambda x: dispatch(_SQ, x), (x,))
    assert gradgradcheck(lambda x: x * x, (x,))
