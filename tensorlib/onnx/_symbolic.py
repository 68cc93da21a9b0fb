"""ONNX translations of tensorlib's ops (torch.onnx's "symbolic functions"), one function per op name.

Each takes (ctx, node, args, attrs): `args` are the node's positional arguments with graph values as ONNX
value names (str) and everything else as recorded; it returns the ONNX names of the node's outputs
(None for an output nothing may use). `ctx` (tensorlib.onnx._export._Ctx) adds nodes and constants.
"""
from __future__ import annotations

import math

import numpy as np

from ..jit._graph import Sym

SYMBOLICS: dict = {}


def symbolic(*names):
    def deco(fn):
        for n in names:
            SYMBOLICS[n] = fn
        return fn
    return deco


class Unsupported(Exception):
    """A recorded op's arguments have no ONNX translation (the message says which)."""


def _dims(d, nd):
    if d is None:
        return list(range(nd))
    if isinstance(d, (tuple, list)):
        return [x % nd if nd else 0 for x in d]
    return [d % nd if nd else 0]


# --- elementwise -------------------------------------------------------------------------------------

_UNARY = {"relu": "Relu", "sigmoid": "Sigmoid", "tanh": "Tanh", "exp": "Exp", "log": "Log", "sqrt": "Sqrt",
          "neg": "Neg", "abs": "Abs", "erf": "Erf", "ceil": "Ceil", "floor": "Floor", "reciprocal": "Reciprocal",
          "sin": "Sin", "cos": "Cos", "tan": "Tan", "asin": "Asin", "acos": "Acos", "atan": "Atan", "sinh": "Sinh",
          "cosh": "Cosh", "sign": "Sign", "round": "Round", "logical_not": "Not", "bitwise_not": "Not",
          "isnan": "IsNaN", "relu_": "Relu", "sigmoid_": "Sigmoid", "tanh_": "Tanh", "exp_": "Exp", "log_": "Log",
          "sqrt_": "Sqrt"}


def _unary(onnx_op):
    def f(ctx, node, args, attrs):
        return [ctx.op(onnx_op, [args[0]])]
    return f


for _name, _onnx in _UNARY.items():
    SYMBOLICS[_name] = _unary(_onnx)


@symbolic("rsqrt")
def _rsqrt(ctx, node, args, attrs):
    return [ctx.op("Reciprocal", [ctx.op("Sqrt", [args[0]])])]


_BINARY = {"add": "Add", "sub": "Sub", "mul": "Mul", "div": "Div", "pow": "Pow", "maximum": "Max", "minimum": "Min",
           "eq": "Equal", "lt": "Less", "gt": "Greater", "le": "LessOrEqual", "ge": "GreaterOrEqual",
           "logical_and": "And", "logical_or": "Or", "logical_xor": "Xor", "matmul": "MatMul", "mm": "MatMul",
           "bmm": "MatMul", "add_": "Add", "sub_": "Sub", "mul_": "Mul", "div_": "Div", "pow_": "Pow"}


def _binary(onnx_op, name):
    compare = onnx_op in ("Equal", "Less", "Greater", "LessOrEqual", "GreaterOrEqual")

    def f(ctx, node, args, attrs):
        a, b = args[0], args[1]
        a, b = ctx.operands(node, a, b, compare)
        if name.startswith("div") and attrs.get("rounding_mode") is not None:
            mode = attrs["rounding_mode"]
            q = ctx.op("Div", [a, b])
            if np.dtype(node.out_meta[0][1]).kind in "iu":      # ONNX's integer Div truncates
                if mode == "trunc":
                    return [q]
                raise Unsupported(f"div with rounding_mode={mode!r} on integers")
            return [ctx.op("Floor", [q]) if mode == "floor" else _trunc(ctx, q)]
        if name.rstrip("_") in ("add", "sub") and attrs.get("alpha", 1) != 1:
            b = ctx.op("Mul", [b, ctx.scalar(attrs["alpha"], node.out_meta[0][1])])
        return [ctx.op(onnx_op, [a, b])]
    return f


def _trunc(ctx, x):
    return ctx.op("Mul", [ctx.op("Floor", [ctx.op("Abs", [x])]), ctx.op("Sign", [x])])


for _name, _onnx in _BINARY.items():
    SYMBOLICS[_name] = _binary(_onnx, _name)


@symbolic("ne")
def _ne(ctx, node, args, attrs):
    a, b = ctx.operands(node, args[0], args[1], True)
    return [ctx.op("Not", [ctx.op("Equal", [a, b])])]


@symbolic("where")
def _where(ctx, node, args, attrs):
    dt = node.out_meta[0][1]
    a = args[1] if isinstance(args[1], str) else ctx.scalar(args[1], dt)
    b = args[2] if isinstance(args[2], str) else ctx.scalar(args[2], dt)
    return [ctx.op("Where", [args[0], ctx.cast_to(a, dt), ctx.cast_to(b, dt)])]


@symbolic("masked_fill", "masked_fill_")
def _masked_fill(ctx, node, args, attrs):
    dt = node.out_meta[0][1]
    v = args[2] if isinstance(args[2], str) else ctx.scalar(args[2], dt)
    return [ctx.op("Where", [args[1], ctx.cast_to(v, dt), args[0]])]


@symbolic("clamp", "clamp_")
def _clamp(ctx, node, args, attrs):
    dt = node.out_meta[0][1]
    if len(args) == 3:          # tensor bounds (clamp.Tensor): Max, then Min
        x = args[0] if args[1] is None else ctx.op("Max", [args[0], args[1]])
        return [x if args[2] is None else ctx.op("Min", [x, args[2]])]
    lo, hi = attrs.get("min"), attrs.get("max")
    ins = [args[0], "" if lo is None else ctx.scalar(lo, dt, rank0=True),
           "" if hi is None else ctx.scalar(hi, dt, rank0=True)]
    while ins[-1] == "":
        ins.pop()
    return [ctx.op("Clip", ins)]


@symbolic("hardtanh", "hardtanh_")
def _hardtanh(ctx, node, args, attrs):
    dt = node.out_meta[0][1]
    return [ctx.op("Clip", [args[0], ctx.scalar(attrs.get("min_val", -1.0), dt, rank0=True),
                            ctx.scalar(attrs.get("max_val", 1.0), dt, rank0=True)])]


@symbolic("leaky_relu", "leaky_relu_")
def _leaky(ctx, node, args, attrs):
    return [ctx.op("LeakyRelu", [args[0]], alpha=float(attrs.get("negative_slope", 0.01)))]


@symbolic("hardsigmoid")
def _hardsigmoid(ctx, node, args, attrs):
    return [ctx.op("HardSigmoid", [args[0]], alpha=1.0 / 6, beta=0.5)]


@symbolic("hardswish")
def _hardswish(ctx, node, args, attrs):
    if ctx.opset >= 14:
        return [ctx.op("HardSwish", [args[0]])]
    return [ctx.op("Mul", [args[0], ctx.op("HardSigmoid", [args[0]], alpha=1.0 / 6, beta=0.5)])]


@symbolic("elu")
def _elu(ctx, node, args, attrs):
    return [ctx.op("Elu", [args[0]], alpha=float(attrs.get("alpha", 1.0)))]


@symbolic("silu")
def _silu(ctx, node, args, attrs):
    return [ctx.op("Mul", [args[0], ctx.op("Sigmoid", [args[0]])])]


@symbolic("log_sigmoid_forward")
def _log_sigmoid(ctx, node, args, attrs):
    """Log(Sigmoid(x)), as torch exports F.logsigmoid."""
    return [ctx.op("Log", [ctx.op("Sigmoid", [args[0]])])]


@symbolic("softplus")
def _softplus(ctx, node, args, attrs):
    beta, threshold = float(attrs.get("beta", 1.0)), float(attrs.get("threshold", 20.0))
    dt = node.out_meta[0][1]
    x = args[0]
    bx = ctx.op("Mul", [x, ctx.scalar(beta, dt)]) if beta != 1 else x
    soft = ctx.op("Softplus", [bx])
    if beta != 1:
        soft = ctx.op("Div", [soft, ctx.scalar(beta, dt)])
    return [ctx.op("Where", [ctx.op("Greater", [bx, ctx.scalar(threshold, dt)]), x, soft])]


@symbolic("gelu")
def _gelu(ctx, node, args, attrs):
    x = args[0]
    dt = node.out_meta[0][1]
    if attrs.get("approximate", "none") == "tanh":
        inner = ctx.op("Mul", [ctx.op("Add", [x, ctx.op("Mul", [ctx.op("Pow", [x, ctx.scalar(3.0, dt)]),
                                                                 ctx.scalar(0.044715, dt)])]),
                               ctx.scalar(math.sqrt(2 / math.pi), dt)])
        t = ctx.op("Add", [ctx.op("Tanh", [inner]), ctx.scalar(1.0, dt)])
    else:
        t = ctx.op("Add", [ctx.op("Erf", [ctx.op("Div", [x, ctx.scalar(math.sqrt(2.0), dt)])]), ctx.scalar(1.0, dt)])
    return [ctx.op("Mul", [ctx.op("Mul", [x, t]), ctx.scalar(0.5, dt)])]


@symbolic("softmax", "log_softmax")
def _softmax(ctx, node, args, attrs):
    return [ctx.op("Softmax" if node.op == "softmax" else "LogSoftmax", [args[0]], axis=int(attrs.get("dim", -1)))]


@symbolic("dropout", "native_dropout")
def _dropout(ctx, node, args, attrs):
    raise Unsupported("dropout in training mode (export the model in eval mode: training=TrainingMode.EVAL)")


@symbolic("clone", "contiguous", "detach", "alias")
def _identity(ctx, node, args, attrs):
    return [ctx.op("Identity", [args[0]])]


@symbolic("to")
def _to(ctx, node, args, attrs):
    dt = node.out_meta[0][1]
    return [ctx.cast_to(args[0], dt, )]


# --- linear algebra, convolution, pooling, normalisation -------------------------------------------------

@symbolic("linear")
def _linear(ctx, node, args, attrs):
    x, w = args[0], args[1]
    b = args[2] if len(args) > 2 and args[2] is not None else None
    if ctx.rank(node.args[0]) == 2:
        return [ctx.op("Gemm", [x, w] + ([b] if b else []), transB=1)]
    y = ctx.op("MatMul", [x, ctx.op("Transpose", [w], perm=[1, 0])])
    return [ctx.op("Add", [y, b]) if b else y]


@symbolic("addmm")
def _addmm(ctx, node, args, attrs):
    return [ctx.op("Gemm", [args[1], args[2], args[0]], alpha=float(attrs.get("alpha", 1)),
                   beta=float(attrs.get("beta", 1)))]


def _conv_attrs(attrs, nd):
    st, pd, dl = attrs.get("stride", (1, 1)), attrs.get("padding", (0, 0, 0, 0)), attrs.get("dilation", (1, 1))
    if nd == 1:     # conv1d: conv2d's attrs over a height of 1
        return dict(strides=[int(st[1])], pads=[int(pd[2]), int(pd[3])], dilations=[int(dl[1])])
    return dict(strides=[int(s) for s in st], pads=[int(pd[0]), int(pd[2]), int(pd[1]), int(pd[3])],
                dilations=[int(d) for d in dl])


@symbolic("conv2d", "conv1d")
def _conv(ctx, node, args, attrs):
    b = args[2] if len(args) > 2 and args[2] is not None else None
    return [ctx.op("Conv", [args[0], args[1]] + ([b] if b else []), group=int(attrs.get("groups", 1)),
                   **_conv_attrs(attrs, 1 if node.op == "conv1d" else 2))]


@symbolic("max_pool2d")
def _max_pool(ctx, node, args, attrs):
    p = attrs.get("padding", (0, 0))
    y = ctx.op("MaxPool", [args[0]], kernel_shape=list(attrs["kernel_size"]), strides=list(attrs["stride"]),
               pads=[p[0], p[1], p[0], p[1]], dilations=list(attrs.get("dilation", (1, 1))),
               ceil_mode=int(bool(attrs.get("ceil_mode", False))))
    return [y, None]


@symbolic("avg_pool2d")
def _avg_pool(ctx, node, args, attrs):
    if attrs.get("divisor_override") is not None:
        raise Unsupported("avg_pool2d with divisor_override")
    p = attrs.get("padding", (0, 0))
    return [ctx.op("AveragePool", [args[0]], kernel_shape=list(attrs["kernel_size"]), strides=list(attrs["stride"]),
                   pads=[p[0], p[1], p[0], p[1]], ceil_mode=int(bool(attrs.get("ceil_mode", False))),
                   count_include_pad=int(bool(attrs.get("count_include_pad", True))))]


@symbolic("adaptive_avg_pool2d")
def _adaptive_avg(ctx, node, args, attrs):
    oh, ow = attrs["output_size"]
    if (oh, ow) == (1, 1):
        return [ctx.op("GlobalAveragePool", [args[0]])]
    H, W = ctx.shape(node.args[0])[2:]
    if isinstance(H, Sym) or isinstance(W, Sym) or H % oh or W % ow:
        raise Unsupported(f"adaptive_avg_pool2d to {(oh, ow)} from a size that is not a multiple of it")
    return [ctx.op("AveragePool", [args[0]], kernel_shape=[H // oh, W // ow], strides=[H // oh, W // ow])]


@symbolic("upsample_nearest1d", "upsample_nearest2d", "upsample_nearest3d")
def _upsample_nearest(ctx, node, args, attrs):
    """torch's nearest index floor(dst / scale) (scale: the one given, else out / in) is ONNX Resize's
    "asymmetric" coordinates with "floor" rounding, by those scales or at the output sizes."""
    scales = attrs.get("scales")
    resize = dict(mode="nearest", coordinate_transformation_mode="asymmetric", nearest_mode="floor")
    if scales is not None:
        return [ctx.op("Resize", [args[0], "", ctx.const(np.array([1.0, 1.0, *scales], dtype=np.float32))], **resize)]
    shape = list(ctx.shape(node.args[0]))
    sizes = np.array(shape[:2] + list(attrs["output_size"]), dtype=np.int64)
    return [ctx.op("Resize", [args[0], "", "", ctx.const(sizes)], **resize)]


@symbolic("upsample_linear1d", "upsample_bilinear2d", "upsample_trilinear3d")
def _upsample_linear(ctx, node, args, attrs):
    """ONNX Resize in linear mode, as torch exports these ops: "align_corners" coordinates, else
    "pytorch_half_pixel" (torch's (dst + 0.5) / scale - 0.5, clamped at 0, and 0 for an output of one), by the
    scales given or at the output sizes."""
    resize = dict(mode="linear", coordinate_transformation_mode="align_corners" if attrs.get("align_corners")
                  else "pytorch_half_pixel")
    scales = attrs.get("scales")
    if scales is not None and not attrs.get("align_corners"):
        return [ctx.op("Resize", [args[0], "", ctx.const(np.array([1.0, 1.0, *scales], dtype=np.float32))], **resize)]
    shape = list(ctx.shape(node.args[0]))
    sizes = np.array(shape[:2] + list(attrs["output_size"]), dtype=np.int64)
    return [ctx.op("Resize", [args[0], "", "", ctx.const(sizes)], **resize)]


@symbolic("batch_norm")
def _batch_norm(ctx, node, args, attrs):
    if attrs.get("training", True):
        raise Unsupported("batch_norm in training mode (export the model in eval mode)")
    x, mean, var, w, b = args[:5]
    C = ctx.shape(node.args[0])[1]
    dt = node.out_meta[0][1]
    w = w if w is not None else ctx.const(np.ones(C, dtype=dt))
    b = b if b is not None else ctx.const(np.zeros(C, dtype=dt))
    y = ctx.op("BatchNormalization", [x, w, b, mean, var], epsilon=float(attrs.get("eps", 1e-5)))
    return [y] + [None] * (node.n_out - 1)


@symbolic("layer_norm")
def _layer_norm(ctx, node, args, attrs):
    x, w, b = args[0], args[1], args[2]
    k = len(attrs["normalized_shape"])
    eps = float(attrs.get("eps", 1e-5))
    dt = node.out_meta[0][1]
    nd = ctx.rank(node.args[0])
    if ctx.opset >= 17:
        shape = list(attrs["normalized_shape"])
        w = w if w is not None else ctx.const(np.ones(shape, dtype=dt))
        ins = [x, w] + ([b] if b is not None else [])
        y = ctx.op("LayerNormalization", ins, axis=-k, epsilon=eps)
    else:
        axes = list(range(nd - k, nd))
        mu = ctx.reduce("ReduceMean", x, axes, True)
        d = ctx.op("Sub", [x, mu])
        var = ctx.reduce("ReduceMean", ctx.op("Mul", [d, d]), axes, True)
        y = ctx.op("Div", [d, ctx.op("Sqrt", [ctx.op("Add", [var, ctx.scalar(eps, dt)])])])
        if w is not None:
            y = ctx.op("Mul", [y, w])
        if b is not None:
            y = ctx.op("Add", [y, b])
    return [y] + [None] * (node.n_out - 1)


@symbolic("group_norm")
def _group_norm(ctx, node, args, attrs):
    x, w, b = args[0], args[1], args[2]
    G = int(attrs["num_groups"])
    eps = float(attrs.get("eps", 1e-5))
    dt = node.out_meta[0][1]
    shape = ctx.shape(node.args[0])
    xg = ctx.op("Reshape", [x, ctx.ivec([0, G, -1])])
    mu = ctx.reduce("ReduceMean", xg, [2], True)
    d = ctx.op("Sub", [xg, mu])
    var = ctx.reduce("ReduceMean", ctx.op("Mul", [d, d]), [2], True)
    y = ctx.op("Div", [d, ctx.op("Sqrt", [ctx.op("Add", [var, ctx.scalar(eps, dt)])])])
    y = ctx.op("Reshape", [y, ctx.ivec(list(shape))])
    aff = [1, shape[1]] + [1] * (len(shape) - 2)
    if w is not None:
        y = ctx.op("Mul", [y, ctx.op("Reshape", [w, ctx.ivec(aff)])])
    if b is not None:
        y = ctx.op("Add", [y, ctx.op("Reshape", [b, ctx.ivec(aff)])])
    return [y] + [None] * (node.n_out - 1)


@symbolic("embedding")
def _embedding(ctx, node, args, attrs):
    return [ctx.op("Gather", [args[0], args[1]], axis=0)]


# --- reductions ---------------------------------------------------------------------------------------

def _reduction(onnx_op):
    def f(ctx, node, args, attrs):
        nd = ctx.rank(node.args[0])
        x = args[0]
        dt = node.out_meta[0][1]
        if attrs.get("dtype") is not None:
            x = ctx.cast_to(x, dt, )
        elif onnx_op == "ReduceSum" and np.dtype(ctx.dtype(node.args[0])).kind in "bui":
            x = ctx.cast_to(x, dt, )
        y = ctx.reduce(onnx_op, x, _dims(attrs.get("dim"), nd), bool(attrs.get("keepdim", False)))
        return [y]
    return f


SYMBOLICS["mean"] = _reduction("ReduceMean")
SYMBOLICS["sum"] = _reduction("ReduceSum")
SYMBOLICS["amax"] = _reduction("ReduceMax")
SYMBOLICS["amin"] = _reduction("ReduceMin")
SYMBOLICS["prod"] = _reduction("ReduceProd")


@symbolic("max", "min")
def _max(ctx, node, args, attrs):
    nd = ctx.rank(node.args[0])
    op = "ReduceMax" if node.op == "max" else "ReduceMin"
    if "dim" not in attrs:
        return [ctx.reduce(op, args[0], list(range(nd)), False)]
    d, keep = attrs["dim"] % max(nd, 1), int(bool(attrs.get("keepdim", False)))
    v = ctx.reduce(op, args[0], [d], bool(keep))
    i = ctx.op("ArgMax" if node.op == "max" else "ArgMin", [args[0]], axis=d, keepdims=keep, select_last_index=0)
    return [v, i]


@symbolic("argmax", "argmin")
def _argmax(ctx, node, args, attrs):
    x = args[0]
    if attrs.get("dim") is None:
        x = ctx.op("Reshape", [x, ctx.ivec([-1])])
        d = 0
    else:
        d = attrs["dim"]
    return [ctx.op("ArgMax" if node.op == "argmax" else "ArgMin", [x], axis=int(d),
                   keepdims=int(bool(attrs.get("keepdim", False))))]


# --- shapes -------------------------------------------------------------------------------------------

@symbolic("reshape", "view", "_reshape_alias", "_unsafe_view")
def _reshape(ctx, node, args, attrs):
    return [ctx.op("Reshape", [args[0], ctx.ivec(list(attrs["shape"]))])]


@symbolic("expand")
def _expand(ctx, node, args, attrs):
    return [ctx.op("Expand", [args[0], ctx.ivec(list(node.out_meta[0][0]))])]


@symbolic("repeat")
def _repeat(ctx, node, args, attrs):
    reps = list(attrs["repeats"])
    x = args[0]
    nd = ctx.rank(node.args[0])
    if len(reps) > nd:
        x = ctx.op("Reshape", [x, ctx.ivec([1] * (len(reps) - nd) + list(ctx.shape(node.args[0])))])
    return [ctx.op("Tile", [x, ctx.ivec(reps)])]


@symbolic("transpose")
def _transpose(ctx, node, args, attrs):
    nd = ctx.rank(node.args[0])
    perm = list(range(nd))
    d0, d1 = attrs["dim0"] % nd, attrs["dim1"] % nd
    perm[d0], perm[d1] = perm[d1], perm[d0]
    return [ctx.op("Transpose", [args[0]], perm=perm)]


@symbolic("t")
def _t(ctx, node, args, attrs):
    if ctx.rank(node.args[0]) < 2:
        return [ctx.op("Identity", [args[0]])]
    return [ctx.op("Transpose", [args[0]], perm=[1, 0])]


@symbolic("permute")
def _permute(ctx, node, args, attrs):
    nd = ctx.rank(node.args[0])
    return [ctx.op("Transpose", [args[0]], perm=[d % nd for d in attrs["dims"]])]


@symbolic("unsqueeze")
def _unsqueeze(ctx, node, args, attrs):
    return [ctx.op("Unsqueeze", [args[0], ctx.ivec([attrs["dim"]])])]


@symbolic("squeeze")
def _squeeze(ctx, node, args, attrs):
    shape = ctx.shape(node.args[0])
    dims = attrs.get("dim")
    if dims is None:
        dims = [i for i, s in enumerate(shape) if s == 1]
    dims = [d for d in _dims(dims, len(shape)) if shape[d] == 1]
    if not dims:
        return [ctx.op("Identity", [args[0]])]
    return [ctx.op("Squeeze", [args[0], ctx.ivec(dims)])]


@symbolic("cat")
def _cat(ctx, node, args, attrs):
    return [ctx.op("Concat", list(args[0]), axis=int(attrs.get("dim", 0)))]


@symbolic("stack")
def _stack(ctx, node, args, attrs):
    d = int(attrs.get("dim", 0))
    parts = [ctx.op("Unsqueeze", [t, ctx.ivec([d])]) for t in args[0]]
    return [ctx.op("Concat", parts, axis=d) if len(parts) > 1 else ctx.op("Identity", parts)]


@symbolic("split_with_sizes")
def _split(ctx, node, args, attrs):
    sizes = list(attrs["sizes"])
    if any(isinstance(s, Sym) for s in sizes):
        raise Unsupported("split_with_sizes along a dynamic axis")
    return ctx.op("Split", [args[0], ctx.ivec(sizes)], n_out=len(sizes), axis=int(attrs["dim"]))


@symbolic("unbind")
def _unbind(ctx, node, args, attrs):
    d = int(attrs.get("dim", 0))
    n = ctx.shape(node.args[0])[d]
    if isinstance(n, Sym):
        raise Unsupported("unbind along a dynamic axis")
    parts = ctx.op("Split", [args[0], ctx.ivec([1] * n)], n_out=n, axis=d) if n > 1 else [args[0]]
    return [ctx.op("Squeeze", [p, ctx.ivec([d])]) for p in parts]


@symbolic("select", "slice")
def _basic_index(ctx, node, args, attrs):
    """x[idx] with ints, slices, None and Ellipsis: Slice for the slices, Gather for the ints (dims removed)."""
    shape = list(ctx.shape(node.args[0]))
    idx = list(attrs["idx"])
    n_real = sum(1 for i in idx if i is not None and i is not Ellipsis)
    if any(i is Ellipsis for i in idx):
        k = idx.index(Ellipsis)
        idx[k:k + 1] = [slice(None)] * (len(shape) - n_real)
    idx += [slice(None)] * (len(shape) - sum(1 for i in idx if i is not None))
    x = args[0]
    starts, ends, axes, steps = [], [], [], []
    gathers = []           # (axis in the sliced tensor, index)
    new_axes = []          # positions in the output of None
    dim = 0
    out_pos = 0
    for i in idx:
        if i is None:
            new_axes.append(out_pos)
            out_pos += 1
            continue
        if isinstance(i, slice):
            if i != slice(None):
                step = 1 if i.step is None else i.step
                if isinstance(step, Sym) or step <= 0:
                    raise Unsupported("a slice with a non-positive or dynamic step")
                starts.append(0 if i.start is None else i.start)
                ends.append(np.iinfo(np.int64).max if i.stop is None else i.stop)
                axes.append(dim)
                steps.append(step)
            out_pos += 1
        else:
            gathers.append((dim, i))
        dim += 1
    if axes:
        x = ctx.op("Slice", [x, ctx.ivec(starts), ctx.ivec(ends), ctx.ivec(axes), ctx.ivec(steps)])
    for axis, i in reversed(gathers):
        x = ctx.op("Gather", [x, ctx.ivec(i, scalar=True)], axis=axis)
    if new_axes:
        x = ctx.op("Unsqueeze", [x, ctx.ivec(new_axes)])
    if not axes and not gathers and not new_axes:
        x = ctx.op("Identity", [x])
    return [x]


@symbolic("flip")
def _flip(ctx, node, args, attrs):
    nd = ctx.rank(node.args[0])
    dims = _dims(attrs["dims"], nd)
    big = np.iinfo(np.int64).max
    return [ctx.op("Slice", [args[0], ctx.ivec([-1] * len(dims)), ctx.ivec([-big] * len(dims)), ctx.ivec(dims),
                             ctx.ivec([-1] * len(dims))])]


@symbolic("pad")
def _pad(ctx, node, args, attrs):
    if attrs.get("mode", "constant") not in ("constant", "reflect", "replicate"):
        raise Unsupported(f"pad with mode={attrs.get('mode')!r}")
    nd = ctx.rank(node.args[0])
    p = list(attrs["pad"])
    begins, ends = [0] * nd, [0] * nd
    for k in range(len(p) // 2):
        begins[nd - 1 - k], ends[nd - 1 - k] = p[2 * k], p[2 * k + 1]
    mode = {"constant": "constant", "reflect": "reflect", "replicate": "edge"}[attrs.get("mode", "constant")]
    ins = [args[0], ctx.ivec(begins + ends)]
    if mode == "constant":
        ins.append(ctx.scalar(attrs.get("value", 0.0), node.out_meta[0][1], rank0=True))
    return [ctx.op("Pad", ins, mode=mode)]


# --- creation ---------------------------------------------------------------------------------------------

@symbolic("zeros", "ones", "full", "empty")
def _fill(ctx, node, args, attrs):
    dt = node.out_meta[0][1]
    v = {"zeros": 0, "ones": 1, "empty": 0}.get(node.op, attrs.get("fill_value", attrs.get("value", 0)))
    if node.op == "full" and "fill_value" not in attrs and "value" not in attrs:
        raise Unsupported("full without a recorded fill value")
    return [ctx.op("ConstantOfShape", [ctx.ivec(list(node.out_meta[0][0]))],
                   value=ctx.tensor_attr(np.array([v], dtype=dt)))]


# --- attention and the whole-layer recurrent ops -------------------------------------------------------------

@symbolic("scaled_dot_product_attention", "_scaled_dot_product_flash_attention_for_cpu")
def _sdpa(ctx, node, args, attrs):
    """softmax(Q K^T * scale + mask) V in MatMul/Softmax (ONNX's Attention op needs opset 23); dropout is
    training only and not exported."""
    q, k, v, mask = args[0], args[1], args[2], args[3] if len(args) > 3 else None
    dt = node.out_meta[0][1]
    nd = ctx.rank(node.args[1])
    perm = list(range(nd - 2)) + [nd - 1, nd - 2]
    s = ctx.op("Mul", [ctx.op("MatMul", [q, ctx.op("Transpose", [k], perm=perm)]),
                       ctx.scalar(float(attrs.get("scale", 1.0)), dt)])
    neg_inf = ctx.scalar(-np.inf, dt)
    if attrs.get("is_causal"):
        L, S = node.out_meta[1][0][-2:]
        s = ctx.op("Where", [ctx.const(np.tril(np.ones((L, S), dtype=bool))), s, neg_inf])
    if mask is not None:
        if ctx.dtype(node.args[3]) == np.bool_:
            s = ctx.op("Where", [mask, s, neg_inf])
        else:
            s = ctx.op("Add", [s, mask])
    p = ctx.op("Softmax", [s], axis=-1)
    return [ctx.op("MatMul", [p, v]), None, None]


def _rnn_common(ctx, node, args, attrs, gates, order, onnx_op, **onnx_attrs):
    """ONNX's LSTM/GRU/RNN from a layer op that takes the input projection xg (L, N, gates*H) already made:
    X = xg with W a permutation of the gates into ONNX's order (exact), R = w_hh in ONNX's order,
    B = [0, b_hh]. Returns (Y (L, N, H), Y_h (N, H)[, Y_c])."""
    xg = args[0]
    n_state = 2 if onnx_op == "LSTM" else 1
    w_hh = args[1 + n_state]
    b_hh = args[2 + n_state] if len(args) > 2 + n_state else None
    H = node.out_meta[0][0][-1]
    G = gates * H
    dt = _np_dtype_of(ctx, node.args[0])
    idx = np.concatenate([np.arange(g * H, (g + 1) * H) for g in order])     # ONNX gate k = torch gate order[k]
    W = np.eye(G, dtype=dt)[idx][None]                                      # (1, G, G): X @ W^T permutes
    zero = ctx.const(np.array([0], dtype=np.int64))
    R = ctx.op("Unsqueeze", [ctx.op("Gather", [w_hh, ctx.const(idx)], axis=0), zero])
    rb = ctx.op("Gather", [b_hh, ctx.const(idx)], axis=0) if b_hh is not None else ctx.const(np.zeros(G, dtype=dt))
    B = ctx.op("Unsqueeze", [ctx.op("Concat", [ctx.const(np.zeros(G, dtype=dt)), rb], axis=0), zero])
    states = [ctx.op("Unsqueeze", [a, zero]) for a in args[1:1 + n_state]]
    ins = [xg, ctx.const(W), R, B, ""] + states
    outs = ctx.op(onnx_op, ins, n_out=1 + n_state, hidden_size=H,
                  direction="reverse" if attrs.get("reverse") else "forward", **onnx_attrs)
    y = ctx.op("Squeeze", [outs[0], ctx.const(np.array([1], dtype=np.int64))])
    return [y] + [ctx.op("Squeeze", [o, zero]) for o in outs[1:]]


def _np_dtype_of(ctx, v):
    return np.dtype(ctx.dtype(v))


@symbolic("lstm_layer")
def _lstm_layer(ctx, node, args, attrs):
    # torch's gates i, f, g, o; ONNX's i, o, f, c
    return _rnn_common(ctx, node, args, attrs, 4, (0, 3, 1, 2), "LSTM") + [None, None]


@symbolic("gru_layer")
def _gru_layer(ctx, node, args, attrs):
    # torch's gates r, z, n; ONNX's z, r, h; torch applies r after the recurrent projection
    return _rnn_common(ctx, node, args, attrs, 3, (1, 0, 2), "GRU", linear_before_reset=1) + [None, None]


@symbolic("rnn_layer")
def _rnn_layer(ctx, node, args, attrs):
    act = "Relu" if attrs.get("relu") else "Tanh"
    return _rnn_common(ctx, node, args, attrs, 1, (0,), "RNN", activations=[act])
