"""Whole-layer recurrent ops: one LSTM layer (one direction) over a whole sequence is one op forward and
one op backward, as torch's fused kernels are, instead of a dozen small ops per time step.

`lstm_layer(xg, h0, c0, w_hh, b_hh)` takes the sequence's input projection `xg = x @ W_ih^T + b_ih`
(L, N, 4H; one `linear` before it, as torch's CPU path), runs the recurrence and returns the outputs
(L, N, H), h_n and c_n. The gates' activations and the cell states are kept (not differentiable outputs)
for the backward, `lstm_layer_backward`, which runs backpropagation through time in one kernel. That
backward is not itself differentiable (as torch's cuDNN RNN's is not): a second derivative through it raises.

One LSTM cell step's pointwise part is one op too, `_thnn_fused_lstm_cell` (torch's name; its backward
`_thnn_fused_lstm_cell_backward_impl`), which LSTMCell runs (nn/modules/rnn.py; decomposed under autocast). It
shares the step's state update (`_lstm_state`) and the gates' slopes (`_lstm_gate_slopes`) with the layer's
kernels, and is differentiable twice (a create_graph backward records a composite formula).
"""
from __future__ import annotations


import numpy as np

from .. import _blas
from .._graph import quiet_call, tensor_of
from ..dispatch import STATE, run_recorded_call, run_recorded_tensors
from .._opdef import with_defaults
from ._define import dispatch, op
from . import _fastmath
from ._fastmath import FAST as _FAST, lstm_step as _fast_lstm_step, lstm_step_backward as _fast_lstm_back, \
    tanh as fast_tanh, transposed as _fast_transposed
from ._rows import max0
from .activation import _sigmoid_k, sigmoid_of_negated
from .shape import cat
from .unary_math import tanh


def _recurrent_weight_grad(xp, dgates, out, h0, reverse):
    """W_hh's gradient: the gates' gradients (L, N, G) against the hidden state each step read, h0 at the
    forward's first step and the previous step's output after it."""
    L, N, H = out.shape
    h_prev = xp.empty(out.shape, dtype=dgates.dtype)
    if reverse:
        h_prev[:-1], h_prev[-1] = out[1:], h0
    else:
        h_prev[1:], h_prev[0] = out[:-1], h0
    return dgates.reshape(L * N, dgates.shape[-1]).T @ h_prev.reshape(L * N, H)     # (-1: ambiguous for N = 0)


def _mm(xp, a, b, out=None, packed=None):
    """A step's product: on NumPy by `packed` (b packed once for the loop: `_pack_steps`) where given, else
    `_blas.matmul`, which takes MKL's GEMM where it pays (a batch of 20 rows by a 200x800 W_hh^T: 45 against
    OpenBLAS's 55 µs, 35 steps a layer each way), np.matmul otherwise."""
    if xp is np:
        if packed is not None:
            r = _blas.packed_matmul(a, packed, out)
            if r is not None:
                return r
        return _blas.matmul(a, b, out)
    return xp.matmul(a, b) if out is None else xp.matmul(a, b, out=out)


def _pack_steps(xp, b, L, N):
    """`b` (W_hh^T, or W_hh for a backward's products) packed once by MKL for the L steps' products of N rows each
    (`_blas.pack`: where MKL's packed GEMM is loaded and the product goes to MKL), or None (then each step
    multiplies by b itself, or by `_weight_t`'s copy). A plain GEMM packs b again at every step: 20 rows by a
    1024 x 4096 W_hh^T 2.09 against 1.13 ms a step; oneDNN's RNN primitives, which torch runs, pack it once."""
    return _blas.pack(b, N) if xp is np and L > 1 else None


def _copies_weight(L, N):
    """Whether a layer's loop over L steps of N rows runs on a contiguous copy of W_hh^T (`_weight_t`) rather
    than the transposed view. The copy is a transposed pass over the whole matrix, which costs several of a few
    rows' products by it; it pays back only over enough rows: one step (a decoding loop's, the
    pytorch-tutorial language model's 1000 sampled words: 4096x1024, 19 ms a copy, 61 ms a word against torch's
    ~20) or a handful of rows never does, where the view's product is no slower (measured 4096x1024 float32,
    OpenBLAS: 1 row 15 against 22 ms, 4 rows 43 against 54; 20 rows 65 against 8, on a loaded machine)."""
    return L > 1 and L * N >= 16


def _weight_t(xp, w, L, N, scale=None):
    """(W_hh * scale[:, None])^T for a layer's loop of L steps of N rows (scale None: W_hh^T): a contiguous copy,
    made once per layer (by _fastmath.transposed's tiled loop where it applies), where each step's product by it
    is 2-3x quicker than by the transposed view (OpenBLAS, float32, batch 8, 64 -> 256: 5-6 against 14-20 µs; 20
    rows of 1024 -> 4096 8x; MKL 1.3x), the view for a short loop (`_copies_weight`)."""
    if not _copies_weight(L, N):
        return (w if scale is None else w * scale[:, None]).T
    if xp is np:
        t = _fast_transposed(w, scale)
        if t is not None:
            return t
    return xp.ascontiguousarray((w if scale is None else w * scale[:, None]).T)


# per gate (i, f, g, o): sigmoid(x) = (1 + tanh(x / 2)) / 2 for i, f and o, one tanh over the four (scaled by
# _HALF, then times _HALF plus _SHIFT: g's factors leave it as it is)
_HALF = (0.5, 0.5, 1.0, 0.5)
_SHIFT = (0.5, 0.5, 0.0, 0.5)


def _gate_consts(xp, dt, H):
    """_HALF and _SHIFT as rows over the 4H gates: a product by a row is quicker than by a (4, 1) column
    broadcast over a (N, 4, H) view."""
    return xp.repeat(xp.asarray(_HALF, dtype=dt), H), xp.repeat(xp.asarray(_SHIFT, dtype=dt), H)


def _gate_views(a4):
    """The four gates' views (i, f, g, o) of a (..., 4, H) array."""
    return a4[..., 0, :], a4[..., 1, :], a4[..., 2, :], a4[..., 3, :]


def _tanh(xp, x, out=None):
    """xp.tanh, by the AVX2 loop for large float32 NumPy arrays (ops/_fastmath.py)."""
    if xp is np:
        return fast_tanh(x, out)
    return xp.tanh(x) if out is None else xp.tanh(x, out=out)

def _lstm_state(xp, i, f, g, o, c, c_out, h_out, tmp):
    """One LSTM step's state from its gates' activations sigmoid(i), sigmoid(f), tanh(g), sigmoid(o) and the
    cell state `c`: writes c' = f * c + i * g into `c_out` and h' = o * tanh(c') into `h_out`, which it
    returns; `tmp` is scratch of c's shape."""
    xp.multiply(f, c, out=c_out)
    xp.multiply(i, g, out=tmp)
    c_out += tmp
    _tanh(xp, c_out, out=tmp)
    return xp.multiply(o, tmp, out=h_out)


def _lstm_gate_slopes(xp, a4, c_prev, tc):
    """What an LSTM step's backward multiplies the incoming gradients by, from its activations `a4` (..., 4,
    H), the cell state it read (`c_prev`) and tanh of the one it wrote (`tc`): (q, p) with the gates' gradients
    dc * q for i, f, g and dh * q for o, where dc is the cell state's gradient after dc += dh * p."""
    q = xp.subtract(1, a4)
    q *= a4                                     # s (1 - s), the sigmoids' slopes (g's quarter replaced below)
    qi, qf, qg, qo = _gate_views(q)
    i, _f, g, o = _gate_views(a4)
    xp.multiply(g, g, out=qg)
    xp.subtract(1, qg, out=qg)                  # tanh's slope, 1 - g^2
    xp.multiply(qi, g, out=qi)                  # what each gate's slope is multiplied by in c' and h'
    xp.multiply(qf, c_prev, out=qf)
    xp.multiply(qg, i, out=qg)
    xp.multiply(qo, tc, out=qo)
    p = xp.multiply(tc, tc)
    xp.subtract(1, p, out=p)
    p *= o
    return q, p


@op("lstm_layer", save="io", nondiff_outputs=(3, 4), node_name="MkldnnRnnLayerBackward0")
def LSTM_LAYER(xp, xg, h0, c0, w_hh, b_hh=None, reverse=False):
    L, N, G = xg.shape
    if not L:
        raise RuntimeError("Expected sequence length to be larger than 0 in RNN")
    H = G // 4
    dt = xg.dtype
    out = xp.empty((L, N, H), dtype=dt)
    acts = xp.empty((L, N, G), dtype=dt)      # sigmoid(i), sigmoid(f), tanh(g), sigmoid(o) per step
    cs = xp.empty((L, N, H), dtype=dt)
    tmp = xp.empty((N, H), dtype=dt)
    gates = xp.empty((N, G), dtype=dt)
    half, shift = _gate_consts(xp, dt, H)
    # the gates' pre-activations halved for i, f and o: the input projection (with b_hh, added before the step's
    # product: a rounding apart from torch's order; up front for every step on the NumPy path, in the C step
    # otherwise) and W_hh's rows (a product by 0.5 is exact but for subnormals, so each step's product is the
    # halved product)
    # (a short loop: W_hh's transposed view as it is and each product halved instead, the same values)
    step = _fast_lstm_step if xp is np and dt == np.float32 and _FAST and N and H else None
    if step is None:
        xs = xg + b_hh if b_hh is not None else xg.copy()
        xs *= half
    else:       # the C step takes xg and b_hh as they are and makes each step's (xg + b_hh) * half itself
        xs = np.ascontiguousarray(xg)
        bias = None if b_hh is None else np.ascontiguousarray(b_hh, dtype=dt)
    packed = _pack_steps(xp, w_hh.T, L, N)
    halve_products = packed is not None or not _copies_weight(L, N)
    whT = w_hh.T if halve_products else _weight_t(xp, w_hh, L, N, half)
    gi, gf, gg, go = _gate_views(acts.reshape(L, N, 4, H))      # every step's, split once
    # the C step's two tanh passes by NumPy's tanh where NumPy vectorises it (_fastmath.tanh's choice): the values
    # of the NumPy loop below, in less time than the C step's AVX2 tanh (a 28x100x128 layer's forward 5.0 -> 3.5 ms)
    np_tanh = None if _fastmath.VECTOR_LOOPS else np.tanh
    h, c = h0.astype(dt, copy=False), c0.astype(dt, copy=False)
    if step is not None:
        c = np.ascontiguousarray(c)
    for t in (range(L - 1, -1, -1) if reverse else range(L)):
        _mm(xp, h, whT, out=gates, packed=packed)
        if step is not None:    # the rest of the step in one C call (tensorlib._cmath.lstm_step: the same steps)
            step(gates, xs[t], halve_products, acts[t], c, cs[t], out[t], H, bias, np_tanh)
        else:
            if halve_products:
                gates *= half
            gates += xs[t]
            a = acts[t]
            _tanh(xp, gates, out=a)
            a *= half
            a += shift
            _lstm_state(xp, gi[t], gf[t], gg[t], go[t], c, cs[t], out[t], tmp)
        h, c = out[t], cs[t]
    return out, h.copy(), c.copy(), acts, cs


def _lstm_node_name(node):
    """torch's name for an LSTM layer's output node on the CPU: its oneDNN layer (MkldnnRnnLayerBackward0) in
    float32 without projections, the stacked steps (StackBackward0) otherwise (float64, half types, proj_size)."""
    meta = [m for m in node.in_meta if m is not None]
    w_hh = node.in_meta[3] if len(node.in_meta) > 3 else None
    projected = w_hh is not None and w_hh[0][1] * 4 != w_hh[0][0]
    if meta and meta[0][1] == np.float32 and not projected:
        return "MkldnnRnnLayerBackward0"
    return "StackBackward0"


LSTM_LAYER.node_name_of = _lstm_node_name


@op("lstm_layer_backward", node_name="LstmLayerBackwardBackward0")
def LSTM_LAYER_BACKWARD(xp, g_out, g_h, g_c, h0, c0, w_hh, out, acts, cs, reverse=False):
    """Backpropagation through time: the gradients of xg, h0, c0, w_hh and b_hh in one pass. What does not
    depend on the recurrence (the gates' derivatives, tanh(c), the previous step's c) is computed for every
    step at once before the loop, which is left with the products by the incoming gradients."""
    L, N, H = out.shape
    dt = acts.dtype
    a4 = acts.reshape(L, N, 4, H)
    f = a4[:, :, 1]
    c_prev = xp.empty(cs.shape, dtype=dt)       # the cell state each step read: c0 at the forward's first step
    if reverse:
        c_prev[:-1], c_prev[-1] = cs[1:], c0
    else:
        c_prev[1:], c_prev[0] = cs[:-1], c0
    # each step's part before its product in one C call (tensorlib._cmath.lstm_step_backward: the same operations),
    # the gates' slopes made there per element; else the slopes for every step at once, then NumPy's calls per step
    back = _fast_lstm_back if xp is np and dt in (np.float32, np.float64) and _fast_lstm_back is not None and N and H \
        else None
    tc = _tanh(xp, cs)
    if back is None:        # d gate = dc * q (i, f, g), dh * q (o); dc += dh * p
        q, p = _lstm_gate_slopes(xp, a4, c_prev, tc)
    dxg = xp.empty(acts.shape, dtype=dt)
    d4 = dxg.reshape(L, N, 4, H)
    dh = g_h.astype(dt, copy=True) if g_h is not None else xp.zeros((N, H), dtype=dt)
    dc = g_c.astype(dt, copy=True) if g_c is not None else xp.zeros((N, H), dtype=dt)
    tmp = xp.empty((N, H), dtype=dt)
    if back is not None:        # (C-order operands: astype keeps a transposed gradient's layout)
        dh, dc = np.ascontiguousarray(dh), np.ascontiguousarray(dc)
        g_out = None if g_out is None else np.ascontiguousarray(g_out, dtype=dt)
        acts, tc = np.ascontiguousarray(acts), np.ascontiguousarray(tc)
    packed = _pack_steps(xp, w_hh, L, N)
    for t in (range(L) if reverse else range(L - 1, -1, -1)):      # the forward's steps, last first
        if back is not None:
            back(dh, dc, None if g_out is None else g_out[t], acts[t], c_prev[t], tc[t], dxg[t], H)
        else:
            if g_out is not None:
                dh += g_out[t]
            dc += xp.multiply(dh, p[t], out=tmp)
            xp.multiply(dc[:, None, :], q[t, :, :3], out=d4[t, :, :3])
            xp.multiply(dh, q[t, :, 3], out=d4[t, :, 3])
            dc *= f[t]
        dh = _mm(xp, dxg[t], w_hh, packed=packed)
    # h_{t-1} for every step: h0 at the first step of the forward's order, the outputs shifted by one otherwise
    dw_hh = _recurrent_weight_grad(xp, dxg, out, h0, reverse)
    return dxg, dh, dc, dw_hh, dxg.sum(axis=(0, 1))


def _lstm_bwd(ctx, g_out, g_h, g_c, *_, run=dispatch):
    """LSTM_LAYER's formula: its backward op dispatched, or with run=run_recorded_tensors run and recorded
    as that op (OpDef.sink_backward; None when an operand is not on NumPy). Likewise GRU's and RNN's below."""
    xg, h0, c0, w_hh, b_hh = ctx.saved_inputs
    out, _h, _c, acts, cs = ctx.saved_output
    reverse = ctx.attrs.get("reverse", False)
    grads = run(LSTM_LAYER_BACKWARD, g_out, g_h, g_c, h0, c0, w_hh, out, acts, cs, reverse=reverse)
    if grads is None:
        return None
    need = ctx.needs_input_grad
    return tuple(gr if need[k] and (k < 4 or b_hh is not None) else None for k, gr in enumerate(grads))


LSTM_LAYER.def_backward(_lstm_bwd)
LSTM_LAYER.sink_backward = with_defaults(_lstm_bwd, run=run_recorded_tensors)     # (OpDef.sink_backward)


def lstm_layer(xg, h0, c0, w_hh, b_hh=None, reverse=False):
    """(outputs, h_n, c_n) of one LSTM layer and direction over the sequence's input projection `xg`."""
    out, h, c, _acts, _cs = dispatch(LSTM_LAYER, xg, h0, c0, w_hh, b_hh, reverse=reverse)
    return out, h, c


# --- an LSTM cell's pointwise part as one op (LSTMCell's step when nothing observes ops) ---------------------

@op("_thnn_fused_lstm_cell", save="o", nondiff_outputs=(2,), node_name="ThnnFusedLstmCellBackward0")
def FUSED_LSTM_CELL(xp, input_gates, hidden_gates, cx, input_bias=None, hidden_bias=None):
    """torch's _thnn_fused_lstm_cell: (hy, cy, workspace) from the gates' two projections (..., 4H), each bias
    (4H,) or None, and the cell state cx (..., H). (torch has it on CUDA; its CPU LSTMCell runs decomposed
    ops, as tensorlib's does when something observes.) The workspace (flat) holds the gates' activations
    and a copy of cx: all the backward reads, so the node keeps its outputs and not its inputs (torch's keeps
    both projections for a create_graph backward; this one's composite formula differentiates through the
    workspace, see _lstm_cell_composite_grads)."""
    H = cx.shape[-1]
    pre = input_gates
    terms = [t for t in (hidden_gates, input_bias, hidden_bias) if t is not None]
    if pre.dtype.char in "fd" and all(t.dtype == pre.dtype and (t.ndim <= 1 or t.shape == pre.shape) for t in terms):
        # the sum of the terms written into the workspace, in their order, g's tanh kept aside while sigmoid's kernel
        # runs over the four gates in place (the values of the out-of-place sums below, without their arrays)
        ws = xp.empty(pre.size + cx.size, dtype=pre.dtype)  # flat: the activations, then cx, each contiguous
        acts = ws[:pre.size].reshape(pre.shape)
        xp.copyto(acts, pre)
        for term in terms:
            acts += term
        acts = acts.reshape(pre.shape[:-1] + (4, H))
        g = _tanh(xp, acts[..., 2, :])
        sigmoid_of_negated(xp, xp.negative(acts, out=acts))
        acts[..., 2, :] = g
    else:
        for term in terms:
            pre = pre + term
        ws = xp.empty(pre.size + cx.size, dtype=pre.dtype)
        acts = ws[:pre.size].reshape(pre.shape)     # sigmoid's kernel over the four gates (in place), then g's tanh
        if pre.dtype.char in "fd":
            sigmoid_of_negated(xp, xp.negative(pre, out=acts))
        else:                                       # float16 (in float32) and bfloat16: sigmoid's own cases
            acts[...] = _sigmoid_k(xp, pre)
        acts = acts.reshape(pre.shape[:-1] + (4, H))
        _tanh(xp, pre.reshape(acts.shape)[..., 2, :], out=acts[..., 2, :])
    ws[pre.size:] = cx.reshape(-1)
    cy, hy = xp.empty(cx.shape, dtype=pre.dtype), xp.empty(cx.shape, dtype=pre.dtype)
    _lstm_state(xp, *_gate_views(acts), cx, cy, hy, xp.empty(cx.shape, dtype=pre.dtype))
    return hy, cy, ws


@op("_thnn_fused_lstm_cell_backward_impl", node_name="ThnnFusedLstmCellBackwardImplBackward0")
def FUSED_LSTM_CELL_BACKWARD(xp, grad_hy, grad_cy, cx, cy, workspace, has_bias=False):
    """torch's _thnn_fused_lstm_cell_backward_impl: (grad_gates, grad_cx, grad_bias) of one cell step from the
    gradients of hy and cy (either may be None), the cell state it read (None: the workspace's copy) and wrote
    and its workspace; grad_bias (the gates' gradient summed over the batch) is None without biases. Not itself
    differentiable: a backward that is differentiated (create_graph) runs the cell's composite formula."""
    H, n = cy.shape[-1], 4 * cy.size
    a4 = workspace[:n].reshape(cy.shape[:-1] + (4, H))
    if cx is None:
        cx = workspace[n:].reshape(cy.shape)
    dt = a4.dtype
    q, p = _lstm_gate_slopes(xp, a4, cx, _tanh(xp, cy))       # made here: the gates' gradient is written into q
    dc = xp.zeros(cy.shape, dtype=dt) if grad_cy is None else grad_cy.astype(dt, copy=True)
    qo, q3 = q[..., 3, :], q[..., :3, :]
    if grad_hy is None:
        qo[...] = 0
    else:
        p *= grad_hy
        dc += p
        xp.multiply(qo, grad_hy, out=qo)
    xp.multiply(q3, dc[..., None, :], out=q3)
    dc *= a4[..., 1, :]                         # the gradient of cx: through f * cx
    d = q.reshape(cy.shape[:-1] + (4 * H,))
    return d, dc, (d.reshape(-1, 4 * H).sum(axis=0) if has_bias else None)


def _cell_grads(need, d, dcx, db, wrap=None):
    """A gradient per input of the fused cell (both projections and both biases share theirs)."""
    if wrap is not None:
        d, dcx, db = wrap(d), wrap(dcx), (wrap(db) if db is not None else None)
    return (d if need[0] else None, d if need[1] else None, dcx if need[2] else None,
            db if need[3] else None, db if need[4] else None)


@FUSED_LSTM_CELL.def_backward
def _(ctx, g_h, g_c, g_ws):
    need = ctx.needs_input_grad
    _hy, cy, ws = ctx.saved_output
    if STATE.grad_enabled:      # the backward is itself differentiated (create_graph): the composite formula
        ctx.workspace_in_graph = True       # it reads the workspace as this node's output: its gradient may come
        d, dcx, db = _lstm_cell_composite_grads(ws, cy, g_h, g_c)
    else:
        d, dcx, db = dispatch(FUSED_LSTM_CELL_BACKWARD, g_h, g_c, None, cy, ws, has_bias=need[3] or need[4])
    # the workspace's gradient (a second derivative through the composite formula; zeros, not read, otherwise: the
    # workspace a caller gets carries no gradient)
    if g_ws is not None and getattr(ctx, "workspace_in_graph", False):
        dd, dcx2 = _workspace_grads(ws, g_ws, cy)
        d, dcx = d + dd, dcx + dcx2
        db = d.reshape(-1, d.shape[-1]).sum(0)
    return _cell_grads(need, d, dcx, db)


def _fused_lstm_cell_bwd_arrays(ctx, g_h, g_c, g_ws, call=quiet_call):
    """The backward op's kernel on NumPy arrays: called directly (the engine's quiet path, OpDef.quiet_backward)
    or, call=run_recorded_call, run as the recorded op (OpDef.sink_backward). The workspace never gets a
    gradient but through a composite (create_graph) backward, which dispatches (g_ws: None otherwise)."""
    if g_ws is not None:
        return None
    need = ctx.needs_input_grad
    _hy, cy, ws = ctx.saved_output
    out = call(FUSED_LSTM_CELL_BACKWARD, g_h, g_c, None, cy, ws, has_bias=need[3] or need[4])
    return None if out is None else _cell_grads(need, *out, wrap=tensor_of)


FUSED_LSTM_CELL.quiet_backward = _fused_lstm_cell_bwd_arrays
FUSED_LSTM_CELL.sink_backward = with_defaults(_fused_lstm_cell_bwd_arrays, call=run_recorded_call)


def _lstm_cell_composite_grads(ws, cy, g_h, g_c):
    """The fused cell's gradients (gates, cx, bias) in differentiable tensorlib ops, from its workspace and cy
    (outputs of its node, so that differentiating them goes through the node again: its backward takes a
    workspace's gradient, _workspace_grads) and the gradients of hy and cy (zeros where none came): what a
    create_graph backward records."""
    H = cy.shape[-1]
    i, f, g, o, cx = _workspace_parts(ws, cy)
    tc = tanh(cy)
    dc = g_c + g_h * o * (1 - tc * tc)
    d = cat([dc * g * i * (1 - i), dc * cx * f * (1 - f), dc * i * (1 - g * g), g_h * tc * o * (1 - o)], -1)
    return d, dc * f, d.reshape(-1, 4 * H).sum(0)


def _workspace_parts(ws, cy):
    """The workspace's (or its gradient's) i, f, g, o activations (..., H each) and cx, as tensors."""
    n = 4 * cy.numel()
    i, f, g, o = ws[:n].reshape(*cy.shape[:-1], 4 * cy.shape[-1]).chunk(4, -1)
    return i, f, g, o, ws[n:].reshape(cy.shape)


def _workspace_grads(ws, g_ws, cy):
    """The gates' and cx's gradients from a gradient of the workspace (activations, cx): through sigmoid's slope
    s (1 - s) for i, f and o, tanh's 1 - g^2 for g, the identity for the copy of cx."""
    i, f, g, o, _cx = _workspace_parts(ws, cy)
    gi, gf, gg, go, gcx = _workspace_parts(g_ws, cy)
    return cat([gi * i * (1 - i), gf * f * (1 - f), gg * (1 - g * g), go * o * (1 - o)], -1), gcx


def fused_lstm_cell(input_gates, hidden_gates, cx, input_bias=None, hidden_bias=None):
    """(hy, cy) of one LSTM cell step from the gates' projections (see FUSED_LSTM_CELL)."""
    hy, cy, _ws = dispatch(FUSED_LSTM_CELL, input_gates, hidden_gates, cx, input_bias, hidden_bias)
    return hy, cy


# --- GRU: r, z, n gates (torch's order), n = tanh(x_n + r * (W_hn h + b_hn)) -------------------------------

@op("gru_layer", save="io", nondiff_outputs=(2, 3), node_name="StackBackward0")   # torch stacks the steps
def GRU_LAYER(xp, xg, h0, w_hh, b_hh=None, reverse=False):
    L, N, G = xg.shape
    H = G // 3
    dt = xg.dtype
    out = xp.empty((L, N, H), dtype=dt)
    acts = xp.empty((L, N, G), dtype=dt)      # r, z, n per step
    hns = xp.empty((L, N, H), dtype=dt)       # W_hn h + b_hn per step (what r multiplies)
    packed = _pack_steps(xp, w_hh.T, L, N)
    whT = w_hh.T if packed is not None else _weight_t(xp, w_hh, L, N)
    h = h0.astype(dt, copy=False)
    for t in (range(L - 1, -1, -1) if reverse else range(L)):
        hg = _mm(xp, h, whT, packed=packed)
        if b_hh is not None:
            hg += b_hh
        a = acts[t]
        rz = xg[t, :, :2 * H] + hg[:, :2 * H]
        rz *= 0.5
        _tanh(xp, rz, out=rz)           # sigmoid(x) = (1 + tanh(x / 2)) / 2, in the fresh (contiguous) sum first
        rz += 1
        rz *= 0.5
        a[:, :2 * H] = rz
        r, z = a[:, :H], a[:, H:2 * H]
        hns[t] = hg[:, 2 * H:]
        nn = xg[t, :, 2 * H:] + r * hg[:, 2 * H:]
        a[:, 2 * H:] = _tanh(xp, nn, out=nn)
        n = a[:, 2 * H:]
        h = n + z * (h - n)
        out[t] = h
    return out, h, acts, hns


@op("gru_layer_backward", node_name="GruLayerBackwardBackward0")
def GRU_LAYER_BACKWARD(xp, g_out, g_h, h0, w_hh, out, acts, hns, reverse=False):
    L, N, H = out.shape
    dt = acts.dtype
    dxg = xp.empty(acts.shape, dtype=dt)
    dhg = xp.empty(acts.shape, dtype=dt)
    dh = g_h.astype(dt, copy=True) if g_h is not None else xp.zeros((N, H), dtype=dt)
    packed = _pack_steps(xp, w_hh, L, N)
    for t in (range(L) if reverse else range(L - 1, -1, -1)):
        prev = t + 1 if reverse else t - 1
        h_prev = h0 if not 0 <= prev < L else out[prev]
        if g_out is not None:
            dh = dh + g_out[t]
        a = acts[t]
        r, z, n = a[:, :H], a[:, H:2 * H], a[:, 2 * H:]
        dn = dh * (1 - z) * (1 - n * n)
        dr = dn * hns[t] * r * (1 - r)
        dz = dh * (h_prev - n) * z * (1 - z)
        d = dxg[t]
        d[:, :H], d[:, H:2 * H], d[:, 2 * H:] = dr, dz, dn
        e = dhg[t]
        e[:, :2 * H] = d[:, :2 * H]
        e[:, 2 * H:] = dn * r
        dh = dh * z + _mm(xp, e, w_hh, packed=packed)
    dw_hh = _recurrent_weight_grad(xp, dhg, out, h0, reverse)
    return dxg, dh, dw_hh, dhg.sum(axis=(0, 1))


def _gru_bwd(ctx, g_out, g_h, *_, run=dispatch):
    xg, h0, w_hh, b_hh = ctx.saved_inputs
    out, _h, acts, hns = ctx.saved_output
    grads = run(GRU_LAYER_BACKWARD, g_out, g_h, h0, w_hh, out, acts, hns, reverse=ctx.attrs.get("reverse", False))
    if grads is None:
        return None
    need = ctx.needs_input_grad
    return tuple(gr if need[k] and (k < 3 or b_hh is not None) else None for k, gr in enumerate(grads))


GRU_LAYER.def_backward(_gru_bwd)
GRU_LAYER.sink_backward = with_defaults(_gru_bwd, run=run_recorded_tensors)     # (OpDef.sink_backward)


def gru_layer(xg, h0, w_hh, b_hh=None, reverse=False):
    """(outputs, h_n) of one GRU layer and direction over the sequence's input projection `xg`."""
    out, h, _acts, _hns = dispatch(GRU_LAYER, xg, h0, w_hh, b_hh, reverse=reverse)
    return out, h


# --- Elman RNN: h = tanh(x_t + W_hh h + b_hh) (or relu) ----------------------------------------------------

@op("rnn_layer", save="io", node_name="StackBackward0")    # torch stacks the steps
def RNN_LAYER(xp, xg, h0, w_hh, b_hh=None, relu=False, reverse=False):
    L, N, H = xg.shape
    out = xp.empty((L, N, H), dtype=xg.dtype)
    packed = _pack_steps(xp, w_hh.T, L, N)
    whT = w_hh.T if packed is not None else _weight_t(xp, w_hh, L, N)
    h = h0.astype(xg.dtype, copy=False)
    for t in (range(L - 1, -1, -1) if reverse else range(L)):
        pre = xg[t] + _mm(xp, h, whT, packed=packed)
        if b_hh is not None:
            pre += b_hh
        h = max0(xp, pre, out=pre) if relu else _tanh(xp, pre, out=pre)
        out[t] = h
    return out, h


@op("rnn_layer_backward", node_name="RnnLayerBackwardBackward0")
def RNN_LAYER_BACKWARD(xp, g_out, g_h, h0, w_hh, out, relu=False, reverse=False):
    L, N, H = out.shape
    dt = out.dtype
    dxg = xp.empty(out.shape, dtype=dt)
    dh = g_h.astype(dt, copy=True) if g_h is not None else xp.zeros((N, H), dtype=dt)
    packed = _pack_steps(xp, w_hh, L, N)
    for t in (range(L) if reverse else range(L - 1, -1, -1)):
        if g_out is not None:
            dh = dh + g_out[t]
        y = out[t]
        d = dxg[t]
        if relu:
            xp.multiply(dh, y > 0, out=d)
        else:
            xp.multiply(dh, 1 - y * y, out=d)
        dh = _mm(xp, d, w_hh, packed=packed)
    dw_hh = _recurrent_weight_grad(xp, dxg, out, h0, reverse)
    return dxg, dh, dw_hh, dxg.sum(axis=(0, 1))


def _rnn_bwd(ctx, g_out, g_h, run=dispatch):
    xg, h0, w_hh, b_hh = ctx.saved_inputs
    out, _h = ctx.saved_output
    grads = run(RNN_LAYER_BACKWARD, g_out, g_h, h0, w_hh, out, relu=ctx.attrs.get("relu", False),
                reverse=ctx.attrs.get("reverse", False))
    if grads is None:
        return None
    need = ctx.needs_input_grad
    return tuple(gr if need[k] and (k < 3 or b_hh is not None) else None for k, gr in enumerate(grads))


RNN_LAYER.def_backward(_rnn_bwd)
RNN_LAYER.sink_backward = with_defaults(_rnn_bwd, run=run_recorded_tensors)     # (OpDef.sink_backward)


def rnn_layer(xg, h0, w_hh, b_hh=None, relu=False, reverse=False):
    """(outputs, h_n) of one Elman RNN layer and direction over the sequence's input projection `xg`."""
    attrs = {k: True for k, v in (("relu", relu), ("reverse", reverse)) if v}
    return dispatch(RNN_LAYER, xg, h0, w_hh, b_hh, **attrs)
