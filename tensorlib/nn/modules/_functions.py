"""Autograd functions behind legacy modules and nn.Module's full backward hooks, as torch keeps them in
torch/nn/modules/_functions.py (and BackwardHook, torch.utils.hooks's)."""
from __future__ import annotations

import warnings

from ... import ops
from ..._tensor import Tensor
from ...autograd.function import Function
from ...autograd.grad_mode import is_grad_enabled


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


class BackwardHookFunction(Function):
    """The identity, as an autograd node (`BackwardHookFunctionBackward`) that nn.Module's full backward hooks
    hang on: once over a module's tensor inputs and once over its outputs (see BackwardHook). Inputs that do
    not require grad come out non-differentiable, as torch's."""

    @staticmethod
    def forward(ctx, *args):
        ctx.mark_non_differentiable(*[arg for arg in args if not arg.requires_grad])
        return args

    @staticmethod
    def backward(ctx, *args):
        return args


class BackwardHook:
    """torch.utils.hooks.BackwardHook: runs a module's full backward hooks and pre-hooks for one forward call.

    setup_input_hook passes the call's tensor arguments through one BackwardHookFunction and
    setup_output_hook its tensor outputs through another; a post-hook on each node (Node.register_hook)
    sees the gradients crossing it. The outputs' node fires first in backward: it records grad_output (None
    for outputs that got no gradient) and runs the pre-hooks, which may replace it; the inputs' node then
    runs the hooks with grad_input (None for non-tensor arguments), each may replace it. Once they have run,
    grad_output is dropped, so the hooks fire once per backward through that call (a gradient reaching the
    inputs without passing through the outputs, as in double backward, fires nothing). When no input
    requires grad, the outputs' node runs the hooks itself with grad_input all None."""

    def __init__(self, module, user_hooks, user_pre_hooks):
        self.user_hooks = user_hooks
        self.user_pre_hooks = user_pre_hooks
        self.module = module

        self.grad_outputs = None
        self.n_outputs = -1
        self.output_tensors_index = None
        self.n_inputs = -1
        self.input_tensors_index = None

    def _pack_with_none(self, indices, values, size):
        res = [None] * size
        for idx, val in zip(indices, values, strict=True):
            res[idx] = val
        return tuple(res)

    def _unpack_none(self, indices, values):
        return tuple(values[idx] for idx in indices)

    def _set_user_hook(self, grad_fn):
        def hook(grad_input, _):
            if self.grad_outputs is None:
                # the gradient reached the module's inputs without passing through its outputs (double backward)
                return None
            res = self._pack_with_none(self.input_tensors_index, grad_input, self.n_inputs)
            for user_hook in self.user_hooks:
                out = user_hook(self.module, res, self.grad_outputs)
                if out is None:
                    continue
                if len(out) != len(res):
                    raise RuntimeError("Backward hook returned an invalid number of grad_input, "
                                       f"got {len(out)}, but expected {len(res)}")
                res = out
            self.grad_outputs = None
            return self._unpack_none(self.input_tensors_index, res)

        grad_fn.register_hook(hook)

    def _apply_on_tensors(self, fn, args):
        """args with their tensors passed through one BackwardHookFunction (fn gets its node), and the
        tensors' positions; args unchanged and None when none requires grad or grad mode is off."""
        tensors_idx = []
        tensors = []
        requires_grad = False
        for i, arg in enumerate(args):
            if isinstance(arg, Tensor):
                tensors_idx.append(i)
                tensors.append(arg)
                requires_grad |= arg.requires_grad

        if not (requires_grad and is_grad_enabled()):
            return args, None

        new_tensors = BackwardHookFunction.apply(*tensors)
        if len(new_tensors) == 0:
            raise RuntimeError("Cannot set Module backward hook for a Module with no input Tensors.")

        grad_fns = [t.grad_fn for t in new_tensors
                    if t.grad_fn is not None and t.grad_fn.name() == "BackwardHookFunctionBackward"]
        if len(grad_fns) == 0:
            raise RuntimeError("Error while setting up backward hooks. Please open "
                               "an issue with a code sample to reproduce this.")
        fn(grad_fns[0])

        arg_list = list(args)
        for idx, val in zip(tensors_idx, new_tensors, strict=True):
            arg_list[idx] = val
        out = tuple(arg_list) if type(args) is tuple else type(args)(*arg_list)
        return out, tensors_idx

    def setup_input_hook(self, args):
        def fn(grad_fn):
            self._set_user_hook(grad_fn)

        res, input_idx = self._apply_on_tensors(fn, args)
        self.n_inputs = len(args)
        self.input_tensors_index = input_idx
        return res

    def setup_output_hook(self, args):
        def fn(grad_fn):
            def hook(_, grad_output):
                self.grad_outputs = self._pack_with_none(self.output_tensors_index, grad_output, self.n_outputs)

                if self.user_pre_hooks:
                    expected_len = len(self.grad_outputs)
                    for user_pre_hook in self.user_pre_hooks:
                        hook_grad_outputs = user_pre_hook(self.module, self.grad_outputs)
                        if hook_grad_outputs is None:
                            continue
                        actual_len = len(hook_grad_outputs)
                        if actual_len != expected_len:
                            raise RuntimeError("Backward pre hook returned an invalid number of grad_output, "
                                               f"got {actual_len}, but expected {expected_len}")
                        self.grad_outputs = hook_grad_outputs

                # grad_outputs is cleared below but still returned
                local_grad_outputs = self.grad_outputs

                # no input requires grad: no inputs' node will fire, the hooks run here
                if self.input_tensors_index is None:
                    warnings.warn("Full backward hook is firing when gradients are computed "
                                  "with respect to module outputs since no inputs require gradients. See "
                                  "https://docs.pytorch.org/docs/main/generated/torch.nn.Module.html#torch.nn.Module."
                                  "register_full_backward_hook for more details.",
                                  stacklevel=5)
                    grad_inputs = self._pack_with_none([], [], self.n_inputs)
                    for user_hook in self.user_hooks:
                        res = user_hook(self.module, grad_inputs, self.grad_outputs)
                        if res is not None and not (isinstance(res, tuple) and all(el is None for el in res)):
                            raise RuntimeError("Backward hook for Modules where no input requires "
                                               "gradient should always return None or None for all gradients.")
                    self.grad_outputs = None

                if local_grad_outputs is not None:
                    return tuple(local_grad_outputs[i] for i in self.output_tensors_index)
                return None

            grad_fn.register_hook(hook)

        is_tuple = True
        if not isinstance(args, tuple):
            args = (args,)
            is_tuple = False

        res, output_idx = self._apply_on_tensors(fn, args)
        self.n_outputs = len(args)
        self.output_tensors_index = output_idx

        if not is_tuple:
            res = res[0]
        return res
