"""Sample call for the op tensorlib.quantization adds (see op_cases.py)."""
import numpy as np

import tensorlib as tl
from tensorlib.dispatch import dispatch, registry
from tests.tensorlib.op_cases import R


def _case():
    w = tl.from_numpy(np.array([[3, -7, 127, 0, 5], [-127, 2, 9, 1, -4], [8, 8, -8, 60, 0]], dtype=np.int8))
    return (lambda x, wq, s, b: dispatch(registry()["quantized::linear_dynamic"], x, wq, s, b),
            [R(2, 5, grad=False, dtype=np.float32), w, tl.tensor(0.01), R(3, grad=False, dtype=np.float32)])


CASES = {"quantized::linear_dynamic": _case}
