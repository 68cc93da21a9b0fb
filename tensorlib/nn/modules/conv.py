"""Conv1d, Conv2d, ConvTranspose2d (torch's default initialisation: kaiming_uniform_(a=sqrt(5)), bias
uniform in +-1/sqrt(fan_in))."""
from __future__ import annotations

import math

from .. import functional as F, init
from .linear import weight_and_bias
from .module import Module


def _tuple(v, n):
    return (v,) * n if isinstance(v, int) else tuple(v)


class _ConvNd(Module):
    _n = 2
    transposed = False

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, dilation=1, groups=1,
                 bias=True, padding_mode="zeros", output_padding=0, device=None, dtype=None):
        super().__init__()
        n = self._n
        if groups <= 0:
            raise ValueError("groups must be a positive integer")
        if in_channels % groups != 0:
            raise ValueError("in_channels must be divisible by groups")
        if out_channels % groups != 0:
            raise ValueError("out_channels must be divisible by groups")
        if isinstance(padding, str):
            if padding not in ("same", "valid"):
                raise ValueError(f"Invalid padding string {padding!r}, should be one of {{'valid', 'same'}}")
            if padding == "same" and any(s != 1 for s in _tuple(stride, n)):
                raise ValueError("padding='same' is not supported for strided convolutions")
        if padding_mode not in ("zeros", "reflect", "replicate", "circular"):
            raise ValueError(f"padding_mode must be one of ['zeros', 'reflect', 'replicate', 'circular'], but got "
                             f"padding_mode='{padding_mode}'")
        self.in_channels, self.out_channels = in_channels, out_channels
        self.kernel_size = _tuple(kernel_size, n)
        self.stride = _tuple(stride, n)
        self.padding = padding if isinstance(padding, str) else _tuple(padding, n)
        self.dilation = _tuple(dilation, n)
        self.output_padding = _tuple(output_padding, n)
        self.groups, self.padding_mode = groups, padding_mode
        shape = ((in_channels, out_channels // groups) if self.transposed
                 else (out_channels, in_channels // groups)) + self.kernel_size
        weight_and_bias(self, shape, bias, device, dtype, bias_size=out_channels)
        self.reset_parameters()

    def reset_parameters(self):
        init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        if self.bias is not None:
            fan_in, _ = init._calculate_fan_in_and_fan_out(self.weight)
            if fan_in != 0:
                bound = 1 / math.sqrt(fan_in)
                init.uniform_(self.bias, -bound, bound)

    def _mode_pad(self, input):
        """Non-zero padding modes pad explicitly (F.pad) and then convolve unpadded, as torch does."""
        if self.padding_mode == "zeros" or self.padding == "valid":
            return input, self.padding
        p = []
        if self.padding == "same":
            for d, k in zip(reversed(self.dilation), reversed(self.kernel_size)):
                total = d * (k - 1)
                p += [total // 2, total - total // 2]
        else:
            for s in reversed(self.padding):
                p += [s, s]
        return F.pad(input, p, mode=self.padding_mode), 0

    def extra_repr(self):
        s = f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, stride={self.stride}"
        if self.padding != (0,) * self._n:
            s += f", padding={self.padding!r}"
        if self.dilation != (1,) * self._n:
            s += f", dilation={self.dilation}"
        if self.output_padding != (0,) * self._n:
            s += f", output_padding={self.output_padding}"
        if self.groups != 1:
            s += f", groups={self.groups}"
        if self.bias is None:
            s += ", bias=False"
        if self.padding_mode != "zeros":
            s += f", padding_mode={self.padding_mode}"
        return s


class Conv2d(_ConvNd):
    def forward(self, input):
        x, p = self._mode_pad(input)
        return F.conv2d(x, self.weight, self.bias, self.stride, p, self.dilation, self.groups)


class Conv1d(_ConvNd):
    _n = 1

    def forward(self, input):
        x, p = self._mode_pad(input)
        return F.conv1d(x, self.weight, self.bias, self.stride[0], p if isinstance(p, (str, int)) else p[0],
                        self.dilation[0], self.groups)


class ConvTranspose2d(_ConvNd):
    transposed = True

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, output_padding=0, groups=1,
                 bias=True, dilation=1, padding_mode="zeros", device=None, dtype=None):
        if padding_mode != "zeros":
            raise ValueError(f'Only "zeros" padding mode is supported for {type(self).__name__}')
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, dilation, groups, bias,
                         padding_mode, output_padding, device, dtype)

    def forward(self, input, output_size=None):
        op_ = transposed_output_padding(self, input, output_size, 2)
        return F.conv_transpose2d(input, self.weight, self.bias, self.stride, self.padding, op_, self.groups,
                                  self.dilation)


def transposed_output_padding(module, input, output_size, nd):
    """The output_padding that makes a transposed convolution produce `output_size` (torch's
    _ConvTransposeNd._output_padding, with its checks and messages)."""
    if output_size is None:
        return tuple(module.output_padding)
    has_batch = input.ndim == nd + 2
    lead = 2 if has_batch else 1
    if len(output_size) == lead + nd:
        output_size = output_size[lead:]
    if len(output_size) != nd:
        raise ValueError(f"ConvTranspose{nd}D: for {input.ndim}D input, output_size must have {nd} or {lead + nd} "
                         f"elements (got {len(output_size)})")
    st, pad, dil, k = module.stride, module.padding, module.dilation, module.kernel_size
    mins = [(input.shape[d + lead] - 1) * st[d] - 2 * pad[d] + dil[d] * (k[d] - 1) + 1 for d in range(nd)]
    maxs = [mins[d] + st[d] - 1 for d in range(nd)]
    for size, lo, hi in zip(output_size, mins, maxs):
        if size < lo or size > hi:
            raise ValueError(f"requested an output size of {output_size}, but valid sizes range from {mins} to {maxs} "
                             f"(for an input of {input.size()[2:]})")
    return tuple(output_size[d] - mins[d] for d in range(nd))
