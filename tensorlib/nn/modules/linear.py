"""Identity, Linear, Bilinear (torch's default initialisation: kaiming_uniform_(a=sqrt(5)) and a
uniform bias in +-1/sqrt(fan_in))."""
from __future__ import annotations

import math

from ... import ops
from .. import functional as F, init
from ..parameter import Parameter
from .module import Module


def weight_and_bias(module, weight_shape, bias, device=None, dtype=None, bias_size=None):
    """Register `weight` (uninitialised, of weight_shape) and `bias` (bias_size elements, by default
    weight_shape[0]; None when bias is False), as Linear, Bilinear and the conv layers all do before
    reset_parameters()."""
    module.weight = Parameter(ops.empty(*weight_shape, device=device, dtype=dtype))
    if bias:
        size = weight_shape[0] if bias_size is None else bias_size
        module.bias = Parameter(ops.empty(size, device=device, dtype=dtype))
    else:
        module.register_parameter("bias", None)


class Identity(Module):
    def __init__(self, *args, **kwargs):
        super().__init__()

    def forward(self, input):
        return input


class Linear(Module):
    def __init__(self, in_features, out_features, bias=True, device=None, dtype=None):
        super().__init__()
        self.in_features = in_features
        self.out_features = out_features
        weight_and_bias(self, (out_features, in_features), bias, device, dtype)
        self.reset_parameters()

    def reset_parameters(self):
        init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        if self.bias is not None:
            fan_in = self.weight.shape[1]
            bound = 1 / math.sqrt(fan_in) if fan_in > 0 else 0
            init.uniform_(self.bias, -bound, bound)

    def forward(self, input):
        return F.linear(input, self.weight, self.bias)

    def extra_repr(self):
        return f"in_features={self.in_features}, out_features={self.out_features}, bias={self.bias is not None}"


class Bilinear(Module):
    def __init__(self, in1_features, in2_features, out_features, bias=True, device=None, dtype=None):
        super().__init__()
        self.in1_features, self.in2_features, self.out_features = in1_features, in2_features, out_features
        weight_and_bias(self, (out_features, in1_features, in2_features), bias, device, dtype)
        self.reset_parameters()

    def reset_parameters(self):
        bound = 1 / math.sqrt(self.weight.shape[1])
        init.uniform_(self.weight, -bound, bound)
        if self.bias is not None:
            init.uniform_(self.bias, -bound, bound)

    def forward(self, input1, input2):
        return F.bilinear(input1, input2, self.weight, self.bias)

    def extra_repr(self):
        return (f"in1_features={self.in1_features}, in2_features={self.in2_features}, "
                f"out_features={self.out_features}, bias={self.bias is not None}")


class NonDynamicallyQuantizableLinear(Linear):
    """torch's name for MultiheadAttention.out_proj (kept so that reprs and profiles read the same)."""
