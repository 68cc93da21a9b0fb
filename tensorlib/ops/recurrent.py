"""Whole-layer recurrent ops: one LSTM layer (one direction) over a whole sequence is one op forward and
one op backward, as torch's fused kernels are, instead of a dozen small ops per time step.

`lstm_layer(xg, h0, c0, w_hh, b_hh)` takes the sequence's input projection `xg = x @ W_ih^T + b_ih`
(L, N, 4H; one `linear` before it, as torch's CPU path), runs the recurrence and returns the outputs
(L, N, H), h_n and c_n. The gates' activations and the cell states are kept (not differentiable outputs)
for the backward, `lstm_layer_backward`, which runs backpropagation through time in one kernel. That
backward is not itself differentiable (as torch's cuDNN RNN's is not): a second derivative through it raises.
"""
from __future__ import annotations

from functools import partial

from ..dispatch import run_recorded_tensors
from ._define import dispatch, op


def _recurrent_weight_grad(xp, dgates, out, h0, reverse):
    """W_hh's gradient: the gates' gradients (L, N, G) against the hidden state each step read, h0 at the
    forward's first step and the previous step's output after it."""
    L, N, H = out.shape
    h_prev = xp.empty(out.shape, dtype=dgates.dtype)
    if reverse:
        h_prev[:-1], h_prev[-1] = out[1:], h0
    else:
        h_prev[1:], h_prev[0] = out[:-1], h0
    return dgates.reshape(L * N, -1).T @ h_prev.reshape(L * N, H)


# per gate (i, f, g, o) of a (N, 4, H) view of the gates: sigmoid(x) = (1 + tanh(x / 2)) / 2 for i, f and o, one
# tanh over the four (scaled by _HALF, then times _HALF plus _SHIFT: g's factors leave it as it is)
_HALF = (0.5, 0.5, 1.0, 0.5)
_SHIFT = (0.5, 0.5, 0.0, 0.5)


def _gate_consts(xp, dt):
    return xp.asarray(_HALF, dtype=dt)[:, None], xp.asarray(_SHIFT, dtype=dt)[:, None]


@op("lstm_layer", save="io", nondiff_outputs=(3, 4), node_name="LstmLayerBackward0")
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
    half, shift = _gate_consts(xp, dt)
    # the gates' pre-activations halved for i, f and o up front, for every step: the input projection (with
    # b_hh, added before the step's product: a rounding apart from torch's order) and W_hh's rows (a product by
    # 0.5 is exact but for subnormals, so each step's product is the halved product)
    xs = (xg + b_hh if b_hh is not None else xg.copy()).reshape(L, N, 4, H)
    xs *= half
    whT = (w_hh.reshape(4, H, -1) * half[:, :, None]).reshape(G, -1).T
    h, c = h0.astype(dt, copy=False), c0.astype(dt, copy=False)
    for t in (range(L - 1, -1, -1) if reverse else range(L)):
        xp.matmul(h, whT, out=gates)
        g4 = gates.reshape(N, 4, H)
        g4 += xs[t]
        a4 = acts[t].reshape(N, 4, H)
        xp.tanh(g4, out=a4)
        a4 *= half
        a4 += shift
        i, f, g, o = a4[:, 0], a4[:, 1], a4[:, 2], a4[:, 3]
        c_t = cs[t]
        xp.multiply(f, c, out=c_t)                # c = f * c + i * g, written where the backward reads it
        xp.multiply(i, g, out=tmp)
        c_t += tmp
        xp.tanh(c_t, out=tmp)
        h = xp.multiply(o, tmp, out=out[t])
        c = c_t
    return out, h.copy(), c.copy(), acts, cs


@op("lstm_layer_backward", node_name="LstmLayerBackwardBackward0")
def LSTM_LAYER_BACKWARD(xp, g_out, g_h, g_c, h0, c0, w_hh, out, acts, cs, reverse=False):
    """Backpropagation through time: the gradients of xg, h0, c0, w_hh and b_hh in one pass. What does not
    depend on the recurrence (the gates' derivatives, tanh(c), the previous step's c) is computed for every
    step at once before the loop, which is left with the products by the incoming gradients."""
    L, N, H = out.shape
    dt = acts.dtype
    a4 = acts.reshape(L, N, 4, H)
    i, f, g, o = a4[:, :, 0], a4[:, :, 1], a4[:, :, 2], a4[:, :, 3]
    tc = xp.tanh(cs)
    c_prev = xp.empty(cs.shape, dtype=dt)       # the cell state each step read: c0 at the forward's first step
    if reverse:
        c_prev[:-1], c_prev[-1] = cs[1:], c0
    else:
        c_prev[1:], c_prev[0] = cs[:-1], c0
    q = xp.empty((L, N, 4, H), dtype=dt)        # d gate = dc * q (i, f, g), dh * q (o)
    q[:, :, 0] = g * i * (1 - i)
    q[:, :, 1] = c_prev * f * (1 - f)
    q[:, :, 2] = i * (1 - g * g)
    q[:, :, 3] = tc * o * (1 - o)
    p = o * (1 - tc * tc)                       # dc += dh * p
    dxg = xp.empty(acts.shape, dtype=dt)
    d4 = dxg.reshape(L, N, 4, H)
    dh = g_h.astype(dt, copy=True) if g_h is not None else xp.zeros((N, H), dtype=dt)
    dc = g_c.astype(dt, copy=True) if g_c is not None else xp.zeros((N, H), dtype=dt)
    tmp = xp.empty((N, H), dtype=dt)
    for t in (range(L) if reverse else range(L - 1, -1, -1)):      # the forward's steps, last first
        if g_out is not None:
            dh += g_out[t]
        dc += xp.multiply(dh, p[t], out=tmp)
        xp.multiply(dc[:, None, :], q[t, :, :3], out=d4[t, :, :3])
        xp.multiply(dh, q[t, :, 3], out=d4[t, :, 3])
        dc *= f[t]
        dh = dxg[t] @ w_hh
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
LSTM_LAYER.sink_backward = partial(_lstm_bwd, run=run_recorded_tensors)     # (OpDef.sink_backward)


def lstm_layer(xg, h0, c0, w_hh, b_hh=None, reverse=False):
    """(outputs, h_n, c_n) of one LSTM layer and direction over the sequence's input projection `xg`."""
    out, h, c, _acts, _cs = dispatch(LSTM_LAYER, xg, h0, c0, w_hh, b_hh, reverse=reverse)
    return out, h, c


# --- GRU: r, z, n gates (torch's order), n = tanh(x_n + r * (W_hn h + b_hn)) -------------------------------

@op("gru_layer", save="io", nondiff_outputs=(2, 3), node_name="GruLayerBackward0")
def GRU_LAYER(xp, xg, h0, w_hh, b_hh=None, reverse=False):
    L, N, G = xg.shape
    H = G // 3
    dt = xg.dtype
    out = xp.empty((L, N, H), dtype=dt)
    acts = xp.empty((L, N, G), dtype=dt)      # r, z, n per step
    hns = xp.empty((L, N, H), dtype=dt)       # W_hn h + b_hn per step (what r multiplies)
    whT = w_hh.T
    h = h0.astype(dt, copy=False)
    for t in (range(L - 1, -1, -1) if reverse else range(L)):
        hg = h @ whT
        if b_hh is not None:
            hg += b_hh
        a = acts[t]
        rz = xg[t, :, :2 * H] + hg[:, :2 * H]
        rz *= 0.5
        xp.tanh(rz, out=a[:, :2 * H])           # sigmoid(x) = (1 + tanh(x / 2)) / 2
        a[:, :2 * H] += 1
        a[:, :2 * H] *= 0.5
        r, z = a[:, :H], a[:, H:2 * H]
        hns[t] = hg[:, 2 * H:]
        xp.tanh(xg[t, :, 2 * H:] + r * hg[:, 2 * H:], out=a[:, 2 * H:])
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
        dh = dh * z + e @ w_hh
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
GRU_LAYER.sink_backward = partial(_gru_bwd, run=run_recorded_tensors)     # (OpDef.sink_backward)


def gru_layer(xg, h0, w_hh, b_hh=None, reverse=False):
    """(outputs, h_n) of one GRU layer and direction over the sequence's input projection `xg`."""
    out, h, _acts, _hns = dispatch(GRU_LAYER, xg, h0, w_hh, b_hh, reverse=reverse)
    return out, h


# --- Elman RNN: h = tanh(x_t + W_hh h + b_hh) (or relu) ----------------------------------------------------

@op("rnn_layer", save="io", node_name="RnnLayerBackward0")
def RNN_LAYER(xp, xg, h0, w_hh, b_hh=None, relu=False, reverse=False):
    L, N, H = xg.shape
    out = xp.empty((L, N, H), dtype=xg.dtype)
    whT = w_hh.T
    h = h0.astype(xg.dtype, copy=False)
    for t in (range(L - 1, -1, -1) if reverse else range(L)):
        pre = xg[t] + h @ whT
        if b_hh is not None:
            pre += b_hh
        h = xp.maximum(pre, 0, out=pre) if relu else xp.tanh(pre, out=pre)
        out[t] = h
    return out, h


@op("rnn_layer_backward", node_name="RnnLayerBackwardBackward0")
def RNN_LAYER_BACKWARD(xp, g_out, g_h, h0, w_hh, out, relu=False, reverse=False):
    L, N, H = out.shape
    dt = out.dtype
    dxg = xp.empty(out.shape, dtype=dt)
    dh = g_h.astype(dt, copy=True) if g_h is not None else xp.zeros((N, H), dtype=dt)
    for t in (range(L) if reverse else range(L - 1, -1, -1)):
        if g_out is not None:
            dh = dh + g_out[t]
        y = out[t]
        d = dxg[t]
        if relu:
            xp.multiply(dh, y > 0, out=d)
        else:
            xp.multiply(dh, 1 - y * y, out=d)
        dh = d @ w_hh
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
RNN_LAYER.sink_backward = partial(_rnn_bwd, run=run_recorded_tensors)     # (OpDef.sink_backward)


def rnn_layer(xg, h0, w_hh, b_hh=None, relu=False, reverse=False):
    """(outputs, h_n) of one Elman RNN layer and direction over the sequence's input projection `xg`."""
    attrs = {k: True for k, v in (("relu", relu), ("reverse", reverse)) if v}
    return dispatch(RNN_LAYER, xg, h0, w_hh, b_hh, **attrs)
