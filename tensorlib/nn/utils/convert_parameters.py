"""parameters_to_vector / vector_to_parameters."""
from __future__ import annotations

from ... import ops
from ...autograd.grad_mode import no_grad


def parameters_to_vector(parameters):
    return ops.cat([p.reshape(-1) for p in parameters])


def vector_to_parameters(vec, parameters):
    i = 0
    with no_grad():
        for p in parameters:
            n = p.numel()
            p.copy_(vec[i:i + n].reshape(p.shape))
            i += n
