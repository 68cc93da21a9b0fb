"""Whole-layer recurrent ops: one LSTM layer (one direction) over a whole sequence is one op forward and
one op backward, as torch's fused kernels are, instead of a dozen small ops per time step.

`lstm_layer(xg, h0, c0, w_hh, b_hh)` takes the sequence's input projection `xg = x @ W_ih^T + b_ih`
(L, N, 4H; one `linear` before it, as torch's CPU path), runs the recurrence and returns the outputs
(L, N, H), h_n and c_n. The gates' activations and the cell states are kept (not differentiable outputs)
for the backward, `lstm_layer_backward`, which runs backpropagation through time in one kernel. That
backward is not itself differentiable (as torch's cuDNN RNN's is not): a second derivative through it raises.
"""
from __future__ import annotations

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


@op("lstm_layer", save="io", nondiff_outputs=(3, 4), node_name="LstmLayerBackward0")
def LSTM_LAYER(xp, xg, h0, c0, w_hh, b_hh=None, reverse=False):
    L, N, G = xg.shape
    H = G // 4
    dt = xg.dtype
    out = xp.empty((L, N, H), dtype=dt)
    acts = xp.empty((L, N, G), dtype=dt)      # sigmoid(i), sigmoid(f), tanh(g), sigmoid(o) per step
    cs = xp.empty((L, N, H), dtype=dt)
    whT = w_hh.T
    h, c = h0.astype(dt, copy=False), c0.astype(dt, copy=False)
    for t in (range(L - 1, -1, -1) if reverse else range(L)):
        gates = xg[t] + h @ whT
        if b_hh is not None:
            gates += b_hh
        # one tanh over the four gates: tanh(g), and sigmoid(x) = (1 + tanh(x / 2)) / 2 for i, f, o
        gates[:, :2 * H] *= 0.5
        gates[:, 3 * H:] *= 0.5
        a = acts[t]
        xp.tanh(gates, out=a)
        for s in (a[:, :2 * H], a[:, 3 * H:]):
            s += 1
            s *= 0.5
        c = a[:, H:2 * H] * c + a[:, :H] * a[:, 2 * H:3 * H]
        h = a[:, 3 * H:] * xp.tanh(c)
        cs[t] = c
        out[t] = h
    return out, h, c, acts, cs


@op("lstm_layer_backward", node_name="LstmLayerBackwardBackward0")
def LSTM_LAYER_BACKWARD(xp, g_out, g_h, g_c, h0, c0, w_hh, out, acts, cs, reverse=False):
    """Backpropagation through time: the gradients of xg, h0, c0, w_hh and b_hh in one pass."""
    L, N, H = out.shape
    dt = acts.dtype
    dxg = xp.empty(acts.shape, dtype=dt)
    dh = g_h.astype(dt, copy=True) if g_h is not None else xp.zeros((N, H), dtype=dt)
    dc = g_c.astype(dt, copy=True) if g_c is not None else xp.zeros((N, H), dtype=dt)
    order = range(L) if reverse else range(L - 1, -1, -1)      # the forward's steps, last first
    for t in order:
        prev = t + 1 if reverse else t - 1
        c_prev = c0 if not 0 <= prev < L else cs[prev]
        if g_out is not None:
            dh = dh + g_out[t]
        a = acts[t]
        i, f, g, o = a[:, :H], a[:, H:2 * H], a[:, 2 * H:3 * H], a[:, 3 * H:]
        tc = xp.tanh(cs[t])
        dc = dc + dh * o * (1 - tc * tc)
        d = dxg[t]
        d[:, :H] = dc * g * i * (1 - i)
        d[:, H:2 * H] = dc * c_prev * f * (1 - f)
        d[:, 2 * H:3 * H] = dc * i * (1 - g * g)
        d[:, 3 * H:] = dh * tc * o * (1 - o)
        dc = dc * f
        dh = d @ w_hh
    # h_{t-1} for every step: h0 at the first step of the forward's order, the outputs shifted by one otherwise
    dw_hh = _recurrent_weight_grad(xp, dxg, out, h0, reverse)
    return dxg, dh, dc, dw_hh, dxg.sum(axis=(0, 1))


@LSTM_LAYER.def_backward
def _(ctx, g_out, g_h, g_c, *_):
    xg, h0, c0, w_hh, b_hh = ctx.saved_inputs
    out, _h, _c, acts, cs = ctx.saved_output
    reverse = ctx.attrs.get("reverse", False)
    grads = dispatch(LSTM_LAYER_BACKWARD, g_out, g_h, g_c, h0, c0, w_hh, out, acts, cs, reverse=reverse)
    need = ctx.needs_input_grad
    return tuple(gr if need[k] and (k < 4 or b_hh is not None) else None for k, gr in enumerate(grads))


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


@GRU_LAYER.def_backward
def _(ctx, g_out, g_h, *_):
    xg, h0, w_hh, b_hh = ctx.saved_inputs
    out, _h, acts, hns = ctx.saved_output
    grads = dispatch(GRU_LAYER_BACKWARD, g_out, g_h, h0, w_hh, out, acts, hns, reverse=ctx.attrs.get("reverse", False))
    need = ctx.needs_input_grad
    return tuple(gr if need[k] and (k < 3 or b_hh is not None) else None for k, gr in enumerate(grads))


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


@RNN_LAYER.def_backward
def _(ctx, g_out, g_h):
    xg, h0, w_hh, b_hh = ctx.saved_inputs
    out, _h = ctx.saved_output
    grads = dispatch(RNN_LAYER_BACKWARD, g_out, g_h, h0, w_hh, out, relu=ctx.attrs.get("relu", False),
                     reverse=ctx.attrs.get("reverse", False))
    need = ctx.needs_input_grad
    return tuple(gr if need[k] and (k < 3 or b_hh is not None) else None for k, gr in enumerate(grads))


def rnn_layer(xg, h0, w_hh, b_hh=None, relu=False, reverse=False):
    """(outputs, h_n) of one Elman RNN layer and direction over the sequence's input projection `xg`."""
    attrs = {k: True for k, v in (("relu", relu), ("reverse", reverse)) if v}
    return dispatch(RNN_LAYER, xg, h0, w_hh, b_hh, **attrs)
