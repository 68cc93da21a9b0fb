"""Autograd functions behind legacy modules, as torch keeps them in torch/nn/modules/_functions.py."""
from __future__ import annotations

from ... import ops
from ...autograd.function import Function


class CrossMapLRN2d(Function):
    """Lua torch's cross-channel LRN (SpatialCrossMapLRN), forward and its own backward exactly as torch's
    `_cross_map_lrn2d` computes them (its running-window sum never drops channel 0, and its backward is the
    legacy symmetric-window formula, not the exact gradient of that forward)."""

    @staticmethod
    def forward(ctx, input, size, alpha=1e-4, beta=0.75, k=1):
        if input.dim() != 4:
            raise ValueError(f"CrossMapLRN2d: Expected input to be 4D, got {input.dim()}D instead.")
        ctx.size, ctx.alpha, ctx.beta, ctx.k = size, alpha, beta, k
        channels = input.size(1)
        sq = input * input
        pre_pad = int((size - 1) / 2 + 1)
        cur = sq[:, 0].clone().zero_()
        for c in range(min(pre_pad, channels)):
            cur = cur + sq[:, c]
        scales = [cur]
        for c in range(1, channels):
            if c < channels - pre_pad + 1:
                cur = cur + sq[:, c + pre_pad - 1]
            if c > pre_pad:
                cur = cur - sq[:, c - pre_pad]
            scales.append(cur)
        scale = ops.stack(scales, 1) * (alpha / size) + k
        output = scale.pow(-beta) * input
        ctx.scale = scale
        ctx.save_for_backward(input, output)
        return output

    @staticmethod
    def backward(ctx, grad_output):
        input, output = ctx.saved_tensors
        channels = input.size(1)
        size = ctx.size
        cache_ratio_value = 2 * ctx.alpha * ctx.beta / size
        inverse_pre_pad = int(size - (size - 1) / 2)
        grad_input = ctx.scale.pow(-ctx.beta) * grad_output
        ratio = grad_output * output / ctx.scale                       # (N, C, H, W)
        n, _, h, w = input.shape
        padded = ops.cat([ratio.new_zeros((n, inverse_pre_pad, h, w)), ratio,
                          ratio.new_zeros((n, size - 1 - inverse_pre_pad, h, w))], 1)
        accum = padded[:, :size - 1].sum(1)
        cols = []
        for c in range(channels):
            accum = accum + padded[:, c + size - 1]
            cols.append(input[:, c] * accum)
            accum = accum - padded[:, c]
        return grad_input - cache_ratio_value * ops.stack(cols, 1), None, None, None, None


_cross_map_lrn2d = CrossMapLRN2d
