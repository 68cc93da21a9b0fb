"""Sample calls for the ops tensorlib.nn adds (see op_cases.py)."""
import tensorlib as tl
import tensorlib.nn.functional as F
from tensorlib.ops.recurrent import fused_lstm_cell as _cell, gru_layer as _gru, lstm_layer as _lstm, rnn_layer as _rnn
from tensorlib.dispatch import dispatch
from tensorlib.ops.nn_ops import NATIVE_DROPOUT
from tensorlib.ops.packed import PACK_PADDED_SEQUENCE, PAD_PACKED_SEQUENCE
from tests.tensorlib.op_cases import I, R, _fixed

# ops dispatched only inside backward formulas: their sample call runs a backward pass
BACKWARD_ONLY = {"convolution_backward_weight", "convolution_backward", "adaptive_avg_pool2d_backward",
                 "avg_pool2d_backward",
                 "nll_loss_backward", "_log_softmax_backward_data", "_softmax_backward_data", "threshold_backward",
                 "leaky_relu_backward", "hardswish_backward", "hardsigmoid_backward", "hardtanh_backward",
                 "upsample_nearest1d_backward", "upsample_nearest2d_backward",
                 "upsample_nearest3d_backward", "upsample_linear1d_backward", "upsample_bilinear2d_backward",
                 "upsample_trilinear3d_backward",
                 "lstm_layer_backward", "_thnn_fused_lstm_cell_backward_impl",
                 "gru_layer_backward", "scaled_dot_product_attention_backward",
                 "_scaled_dot_product_flash_attention_for_cpu_backward",
                 "rnn_layer_backward", "gelu_backward", "log_sigmoid_backward", "silu_backward", "elu_backward",
                 "mish_backward", "_prelu_kernel_backward", "glu_backward", "logit_backward",
                 "native_layer_norm_backward",
                 "native_batch_norm_backward", "native_group_norm_backward",
                 "max_pool2d_with_indices_backward", "embedding_dense_backward", "_pack_padded_sequence_backward",
                 "tanh_backward", "sigmoid_backward", "mse_loss_backward", "smooth_l1_loss_backward",
                 "huber_loss_backward", "binary_cross_entropy_backward", "gather_backward",
                 "hardshrink_backward", "softshrink_backward"}
# gradcheck differentiates the squared gradients of these, which runs the backward-only op's own backward
SECOND_ORDER_CHECKED = {"_log_softmax_backward_data", "_softmax_backward_data", "threshold_backward",
                        "leaky_relu_backward", "avg_pool2d_backward", "upsample_nearest1d_backward",
                        "hardtanh_backward",
                        "hardswish_backward", "hardsigmoid_backward",
                        "upsample_nearest2d_backward", "upsample_nearest3d_backward", "upsample_linear1d_backward",
                        "upsample_bilinear2d_backward", "upsample_trilinear3d_backward",
                        "_pack_padded_sequence_backward", "tanh_backward", "sigmoid_backward", "mse_loss_backward",
                        "smooth_l1_loss_backward", "huber_loss_backward", "binary_cross_entropy_backward",
                        "hardshrink_backward", "softshrink_backward",
                        "gather_backward"}
NO_GRADCHECK = {"dropout", "native_dropout"} | (BACKWARD_ONLY - SECOND_ORDER_CHECKED)


def _bwd(fn):
    """Run fn's output through backward (with create_graph, so backward-only ops can be differentiated)."""
    def run(*xs):
        out = fn(*xs)
        gs = tl.autograd.grad(out.sum(), [x for x in xs if x.requires_grad], create_graph=True)
        return sum(g.sum() for g in gs)
    return run


def _bwd_once(fn):
    """Run fn's output through a plain backward (no create_graph): the fused backward ops (gelu_backward,
    embedding_dense_backward, native_layer_norm_backward, native_batch_norm_backward,
    max_pool2d_with_indices_backward, convolution_backward)
    run only when the backward is not itself differentiated; under create_graph their composite formulas run instead."""
    def run(*xs):
        out = fn(*xs)
        gs = tl.autograd.grad(out.sum(), [x for x in xs if x.requires_grad])
        return sum(g.sum() for g in gs)
    return run


def _sq_grads(fn):
    """The sum of squared gradients of fn's output: differentiating it runs the backward formula's backward
    (a plain sum of log_softmax's gradients is identically 0 and would test nothing)."""
    def run(*xs):
        out = fn(*xs)
        gs = tl.autograd.grad(out.sum(), [x for x in xs if x.requires_grad], create_graph=True)
        return sum((g * g).sum() for g in gs)
    return run


CASES = {
    "linear": lambda: (F.linear, [R(2, 3), R(4, 3), R(4)]),
    "conv2d": lambda: (lambda x, w, b: F.conv2d(x, w, b, stride=2, padding=1), [R(1, 2, 5, 5), R(3, 2, 3, 3), R(3)]),
    "conv1d": lambda: (lambda x, w, b: F.conv1d(x, w, b, stride=2, padding=1), [R(2, 2, 7), R(3, 2, 3), R(3)]),
    "conv_transpose2d": lambda: (lambda x, w, b: F.conv_transpose2d(x, w, b, stride=2),
                                 [R(1, 2, 3, 3), R(2, 3, 3, 3), R(3)]),
    "convolution_backward_weight": lambda: (_bwd(lambda x, w: F.conv2d(x, w, padding=1)),
                                            [R(1, 2, 4, 4), R(3, 2, 3, 3)]),
    "convolution_backward": lambda: (_bwd_once(lambda x, w, b: F.conv2d(x, w, b, stride=2, padding=1)),
                                     [R(2, 2, 5, 5), R(3, 2, 3, 3), R(3)]),
    "max_pool2d": lambda: (lambda x: F.max_pool2d(x, 2), [R(1, 2, 4, 4)]),
    "avg_pool2d": lambda: (lambda x: F.avg_pool2d(x, 2, padding=1, count_include_pad=False), [R(1, 2, 4, 4)]),
    "avg_pool2d_backward": lambda: (_sq_grads(lambda x, w: F.avg_pool2d(x, 3, 2, 1, count_include_pad=False) * w),
                                    [R(1, 2, 5, 4), R(1, 2, 3, 2)]),
    # the sum of squared gradients differentiates the formula's gradient and output (y = tanh(x)) paths
    "tanh_backward": lambda: (_sq_grads(lambda x, w: x.tanh() * w), [R(3, 4), R(3, 4)]),
    "sigmoid_backward": lambda: (_sq_grads(lambda x, w: x.sigmoid() * w), [R(3, 4), R(3, 4)]),
    "adaptive_avg_pool2d": lambda: (lambda x: F.adaptive_avg_pool2d(x, (2, 3)), [R(1, 2, 5, 7)]),
    "adaptive_avg_pool2d_backward": lambda: (_bwd(lambda x: F.adaptive_avg_pool2d(x, (2, 3)) ** 2), [R(1, 2, 5, 7)]),
    "batch_norm": lambda: (lambda x, w, b: F.batch_norm(x, None, None, w, b, training=True), [R(4, 3), R(3), R(3)]),
    "group_norm": lambda: (lambda x, w, b: F.group_norm(x, 2, w, b), [R(2, 4, 3), R(4), R(4)]),
    "layer_norm": lambda: (lambda x, w, b: F.layer_norm(x, (4,), w, b), [R(3, 4), R(4), R(4)]),
    "dropout": lambda: (lambda x: F.dropout(x, p=0.5, training=True), [R(3, 4)]),
    # F.dropout's CUDA path; dispatched directly to reach it on the CPU
    "native_dropout": lambda: (lambda x: dispatch(NATIVE_DROPOUT, x, p=0.5)[0], [R(3, 4)]),
    "embedding": lambda: _fixed(lambda w, i: F.embedding(i, w), [R(5, 3)], I(4, high=5)),
    "softmax": lambda: (lambda x: F.softmax(x, dim=1), [R(3, 4)]),
    "log_softmax": lambda: (lambda x: F.log_softmax(x, dim=1), [R(3, 4)]),
    "nll_loss": lambda: _fixed(lambda x, t: F.nll_loss(F.log_softmax(x, 1), t), [R(3, 4)], I(3, high=4)),
    "nll_loss_backward": lambda: _fixed(_bwd(lambda x, t: F.nll_loss(F.log_softmax(x, 1), t)), [R(3, 4)],
                                        I(3, high=4)),
    "_log_softmax_backward_data": lambda: (_sq_grads(lambda x, w: F.log_softmax(x, 1) * w), [R(3, 4), R(3, 4)]),
    "_softmax_backward_data": lambda: (_sq_grads(lambda x, w: F.softmax(x, 1) * w), [R(3, 4), R(3, 4)]),
    "threshold_backward": lambda: (_sq_grads(lambda x, w: F.relu(x) * w), [R(3, 4), R(3, 4)]),
    "leaky_relu_backward": lambda: (_sq_grads(lambda x, w: F.leaky_relu(x, 0.2) * w), [R(3, 4), R(3, 4)]),
    "hardswish": lambda: (lambda x: F.hardswish(x), [R(3, 4)]),
    "hardtanh_backward": lambda: (_sq_grads(lambda x, w: F.hardtanh(x, -0.5, 0.5) * w), [R(3, 4), R(3, 4)]),
    "hardsigmoid": lambda: (lambda x: F.hardsigmoid(x), [R(3, 4)]),
    "hardswish_backward": lambda: (_sq_grads(lambda x, w: F.hardswish(x) * w), [R(3, 4), R(3, 4)]),
    "hardsigmoid_backward": lambda: (_sq_grads(lambda x, w: F.hardsigmoid(x * 4) * w), [R(3, 4), R(3, 4)]),
    "upsample_nearest1d": lambda: (lambda x: F.interpolate(x, scale_factor=2.5), [R(1, 2, 3)]),
    "upsample_nearest2d": lambda: (lambda x: F.interpolate(x, size=(3, 5)), [R(1, 2, 2, 4)]),
    "upsample_nearest3d": lambda: (lambda x: F.interpolate(x, scale_factor=(2, 1, 0.5)), [R(1, 1, 2, 3, 4)]),
    "upsample_nearest1d_backward": lambda: (_sq_grads(lambda x, w: F.interpolate(x, scale_factor=2) * w),
                                            [R(1, 2, 3), R(1, 2, 6)]),
    "upsample_nearest2d_backward": lambda: (_sq_grads(lambda x, w: F.interpolate(x, size=(3, 2)) * w),
                                            [R(1, 1, 2, 4), R(1, 1, 3, 2)]),
    "upsample_nearest3d_backward": lambda: (_sq_grads(lambda x, w: F.interpolate(x, scale_factor=2) * w),
                                            [R(1, 1, 2, 1, 2), R(1, 1, 4, 2, 4)]),
    "upsample_linear1d": lambda: (lambda x: F.interpolate(x, scale_factor=2.5, mode="linear"), [R(1, 2, 3)]),
    "upsample_bilinear2d": lambda: (lambda x: F.interpolate(x, size=(3, 5), mode="bilinear", align_corners=True),
                                    [R(1, 2, 2, 4)]),
    "upsample_trilinear3d": lambda: (lambda x: F.interpolate(x, scale_factor=(2, 1, 0.5), mode="trilinear"),
                                     [R(1, 1, 2, 3, 4)]),
    "upsample_linear1d_backward": lambda: (_sq_grads(lambda x, w: F.interpolate(x, scale_factor=2, mode="linear") * w),
                                           [R(1, 2, 3), R(1, 2, 6)]),
    "upsample_bilinear2d_backward": lambda: (_sq_grads(lambda x, w: F.interpolate(x, size=(3, 2), mode="bilinear") * w),
                                             [R(1, 1, 2, 4), R(1, 1, 3, 2)]),
    "upsample_trilinear3d_backward": lambda: (_sq_grads(lambda x, w: F.interpolate(x, scale_factor=2, mode="trilinear")
                                                        * w), [R(1, 1, 2, 1, 2), R(1, 1, 4, 2, 4)]),
    "mse_loss": lambda: (F.mse_loss, [R(3, 4), R(3, 4)]),
    "l1_loss": lambda: (F.l1_loss, [R(3, 4), R(3, 4)]),
    "smooth_l1_loss": lambda: (lambda a, b: F.smooth_l1_loss(a, b, beta=0.5), [R(3, 4), R(3, 4)]),
    "huber_loss": lambda: (lambda a, b: F.huber_loss(a, b, delta=0.5), [R(3, 4), R(3, 4)]),
    # the losses' gradient ops (torch's <loss>_backward) and gather's, differentiated through their squares
    "mse_loss_backward": lambda: (_sq_grads(F.mse_loss), [R(3, 4), R(3, 4)]),
    "smooth_l1_loss_backward": lambda: (_sq_grads(lambda a, b: F.smooth_l1_loss(a, b, beta=0.5)), [R(3, 4), R(3, 4)]),
    "huber_loss_backward": lambda: (_sq_grads(lambda a, b: F.huber_loss(a, b, delta=0.5)), [R(3, 4), R(3, 4)]),
    "binary_cross_entropy_backward": lambda: (_sq_grads(lambda x, t: F.binary_cross_entropy(x.sigmoid(), t.sigmoid())),
                                              [R(3, 4), R(3, 4)]),
    "gather_backward": lambda: _fixed(_sq_grads(lambda a, w, i: a.gather(1, i) * w), [R(3, 4), R(3, 2)],
                                      tl.tensor([[0, 1], [3, 3], [2, 0]])),
    "binary_cross_entropy": lambda: (lambda x, t: F.binary_cross_entropy(x.sigmoid(), t.sigmoid()),
                                     [R(3, 4), R(3, 4)]),
    "binary_cross_entropy_with_logits": lambda: (lambda x, t: F.binary_cross_entropy_with_logits(x, t.sigmoid()),
                                                 [R(3, 4), R(3, 4)]),
    "kl_div": lambda: (lambda x, t: F.kl_div(F.log_softmax(x, 1), F.softmax(t, 1), reduction="batchmean"),
                       [R(3, 4), R(3, 4)]),
    "pad": lambda: (lambda x: F.pad(x, (1, 2)), [R(3, 4)]),
    "lstm_layer": lambda: (lambda xg, h, c, w, b: _lstm(xg, h, c, w, b)[0],
                           [R(3, 2, 8), R(2, 2), R(2, 2), R(8, 2), R(8)]),
    "lstm_layer_backward": lambda: (_bwd(lambda xg, h, c, w, b: _lstm(xg, h, c, w, b, reverse=True)[1]),
                                    [R(3, 2, 8), R(2, 2), R(2, 2), R(8, 2), R(8)]),
    "_thnn_fused_lstm_cell": lambda: (lambda ig, hg, c, bi, bh: sum(_cell(ig, hg, c, bi, bh)),
                                      [R(2, 8), R(2, 8), R(2, 2), R(8), R(8)]),
    "_thnn_fused_lstm_cell_backward_impl": lambda: (_bwd_once(lambda ig, hg, c, b: sum(_cell(ig, hg, c, None, b))),
                                                    [R(2, 8), R(2, 8), R(2, 2), R(8)]),
    "gru_layer": lambda: (lambda xg, h, w, b: _gru(xg, h, w, b)[0], [R(3, 2, 6), R(2, 2), R(6, 2), R(6)]),
    "gru_layer_backward": lambda: (_bwd(lambda xg, h, w, b: _gru(xg, h, w, b, reverse=True)[1]),
                                   [R(3, 2, 6), R(2, 2), R(6, 2), R(6)]),
    "rnn_layer": lambda: (lambda xg, h, w, b: _rnn(xg, h, w, b)[0], [R(3, 2, 2), R(2, 2), R(2, 2), R(2)]),
    "rnn_layer_backward": lambda: (_bwd(lambda xg, h, w, b: _rnn(xg, h, w, b, relu=True, reverse=True)[1]),
                                   [R(3, 2, 2), R(2, 2), R(2, 2), R(2)]),
    # a (T=3, B=3) batch of lengths 3, 2, 1 (batch sizes 3, 2, 1), batch-first for the pack
    "_pack_padded_sequence": lambda: (lambda x: dispatch(PACK_PADDED_SEQUENCE, x, batch_sizes=(3, 2, 1),
                                                         batch_first=True), [R(3, 4, 2)]),
    "_pack_padded_sequence_backward": lambda: (
        _sq_grads(lambda x, w: dispatch(PACK_PADDED_SEQUENCE, x, batch_sizes=(3, 2, 1)) * w), [R(3, 3, 2), R(6, 2)]),
    "_pad_packed_sequence": lambda: (lambda d: dispatch(PAD_PACKED_SEQUENCE, d, batch_sizes=(3, 2, 1), batch_first=True,
                                                        padding_value=0.5, total_length=4), [R(6, 2)]),
    "scaled_dot_product_attention": lambda: (lambda q, k, v, m: F.scaled_dot_product_attention(q, k, v, m),
                                             [R(2, 3, 4), R(2, 5, 4), R(2, 5, 4), R(3, 5)]),
    # 4-D without dropout: torch's CPU flash kernel (see tensorlib/ops/attention.py)
    "_scaled_dot_product_flash_attention_for_cpu": lambda: (lambda q, k, v: F.scaled_dot_product_attention(q, k, v),
                                                            [R(1, 2, 3, 4), R(1, 2, 5, 4), R(1, 2, 5, 4)]),
    "_scaled_dot_product_flash_attention_for_cpu_backward": lambda: (
        _bwd(lambda q, k, v: F.scaled_dot_product_attention(q, k, v, is_causal=True)),
        [R(1, 2, 4, 4), R(1, 2, 4, 4), R(1, 2, 4, 4)]),
    "gelu_backward": lambda: (_bwd_once(lambda x: F.gelu(x)), [R(3, 4)]),
    "silu_backward": lambda: (_bwd_once(lambda x: F.silu(x)), [R(3, 4)]),
    "elu_backward": lambda: (_bwd_once(lambda x: F.selu(x)), [R(3, 4)]),
    "silu_": lambda: (lambda a: F.silu(a.clone(), inplace=True), [R(3, 4)]),
    "elu_": lambda: (lambda a: F.elu(a.clone(), 0.7, inplace=True), [R(3, 4)]),
    "celu": lambda: (lambda x: F.celu(x, 1.3), [R(3, 4)]),
    "mish": lambda: (lambda x: F.mish(x), [R(3, 4)]),
    "glu": lambda: (lambda x: F.glu(x, 0), [R(4, 3)]),
    "glu_backward": lambda: (_bwd_once(lambda x: F.glu(x)), [R(3, 4)]),
    "logit_backward": lambda: (_bwd_once(lambda x: tl.logit(x.abs() * 0.8)), [R(3, 4)]),
    "hardshrink": lambda: (lambda x: F.hardshrink(x, 0.1), [R(3, 4)]),
    "softshrink": lambda: (lambda x: F.softshrink(x, 0.1), [R(3, 4)]),
    "hardshrink_backward": lambda: (_sq_grads(lambda x, w: F.hardshrink(x, 0.1) * w), [R(3, 4), R(3, 4)]),
    "softshrink_backward": lambda: (_sq_grads(lambda x, w: F.softshrink(x, 0.1) * w), [R(3, 4), R(3, 4)]),
    "mish_": lambda: (lambda a: F.mish(a.clone(), inplace=True), [R(3, 4)]),
    "mish_backward": lambda: (_bwd_once(lambda x: F.mish(x)), [R(3, 4)]),
    "_prelu_kernel": lambda: (lambda x, w: F.prelu(x, w), [R(3, 4), R(4)]),
    "_prelu_kernel_backward": lambda: (_bwd_once(lambda x: F.prelu(x, tl.tensor([0.25, -0.5, 1.5, 0.1],
                                                                                dtype=x.dtype))), [R(3, 4)]),
    "celu_": lambda: (lambda a: F.celu(a.clone(), 0.6, inplace=True), [R(3, 4)]),
    "log_sigmoid_forward": lambda: (lambda x: F.logsigmoid(x), [R(3, 4)]),
    "log_sigmoid_backward": lambda: (_bwd_once(lambda x: F.logsigmoid(x)), [R(3, 4)]),
    "embedding_dense_backward": lambda: (_bwd_once(lambda w: F.embedding(tl.tensor([[0, 2], [2, 4]]), w)), [R(5, 3)]),
    "native_layer_norm_backward": lambda: (_bwd_once(lambda x, w, b: F.layer_norm(x, (4,), w, b)),
                                           [R(3, 4), R(4), R(4)]),
    "native_group_norm_backward": lambda: (
        _bwd_once(lambda x, w, b: F.group_norm(x, 2, w, b)), [R(2, 4, 3), R(4), R(4)]),
    "native_batch_norm_backward": lambda: (
        _bwd_once(lambda x, w, b: F.batch_norm(x, None, None, w, b, training=True)), [R(3, 2, 4), R(2), R(2)]),
    "max_pool2d_with_indices_backward": lambda: (_bwd_once(lambda x: F.max_pool2d(x, 2)), [R(1, 2, 4, 4)]),
    "scaled_dot_product_attention_backward": lambda: (
        _bwd(lambda q, k, v: F.scaled_dot_product_attention(q, k, v, is_causal=True)),
        [R(2, 4, 4), R(2, 4, 4), R(2, 4, 4)]),
}
