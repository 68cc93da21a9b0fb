"""Sample calls for the ops that optimizers and the GradScaler add (see op_cases.py)."""
import tensorlib as tl
from tensorlib.ops import optim_ops
from tests.tensorlib.op_cases import P, R

CASES = {
    "addcmul": lambda: (lambda a, b, c: optim_ops.addcmul(a, b, c, value=0.5), [R(3, 4), R(3, 4), R(4)]),
    "addcdiv": lambda: (lambda a, b, c: optim_ops.addcdiv(a, b, c, value=2), [R(3, 4), R(3, 4), P(4)]),
    "lerp": lambda: (lambda a, b: optim_ops.lerp(a, b, 0.3), [R(3, 4), R(3, 4)]),
    "addcmul_": lambda: (lambda a, b, c: a.clone().addcmul_(b, c, value=0.5), [R(3, 4), R(3, 4), R(4)]),
    "addcdiv_": lambda: (lambda a, b, c: a.clone().addcdiv_(b, c), [R(3, 4), R(3, 4), P(4)]),
    "lerp_": lambda: (lambda a, b: a.clone().lerp_(b, 0.3), [R(3, 4), R(3, 4)]),
    "_amp_non_finite_check_and_unscale_": lambda: (
        lambda g: optim_ops.non_finite_check_and_unscale_(g.detach().clone(), tl.zeros(()), tl.tensor(0.5)) or g * 1,
        [R(3)]),
}
