"""RNN, LSTM, GRU (num_layers, batch_first, bidirectional, dropout between layers, LSTM projections) and
their cells.

Parameters are named and shaped as torch's (weight_ih_l0, weight_hh_l0_reverse, ...; gates stacked as
i,f,g,o for LSTM and r,z,n for GRU) so state_dicts carry over. The input projection of a whole sequence
is one `linear` op. A layer's recurrence is then one op forward (`lstm_layer`, `gru_layer`,
`rnn_layer`) and one backward (tensorlib/ops/recurrent.py); only an LSTM with projections (proj_size) runs
step by step, as LSTMCell does: a `linear` of the hidden state, then the gates' pointwise part as one fused op
(`_thnn_fused_lstm_cell`, one backward node, as torch runs it on CUDA; a profile shows it, inside LSTMCell's
`aten::lstm_cell` region, as torch's does), or, under autocast, as ops of their own (`_lstm_step`).
"""
from __future__ import annotations

import math

from ... import _hooks as _H, ops
from ...dispatch import STATE
from ...ops.recurrent import fused_lstm_cell, gru_layer, lstm_layer, rnn_layer
from .. import functional as F, init
from ..utils.rnn import PackedSequence
from ..parameter import Parameter
from .module import Module

_GATES = {"RNN_TANH": 1, "RNN_RELU": 1, "LSTM": 4, "GRU": 3}


def _lstm_step(xg, h, c, w_hh, b_hh, w_hr=None):
    """One LSTM step from the input's projection `xg` (with b_ih): (h', c'). Its pointwise part is one fused
    op with one backward node (`_thnn_fused_lstm_cell`, as torch runs it on CUDA), observed or not: a
    profile shows what runs unprofiled (decomposing it for a profiler made the profiled step 1.4x slower
    on time_sequence_prediction by itself). Under autocast it runs as ops of their own (add, chunk,
    sigmoid, tanh, mul), each cast by its own autocast rule."""
    hg = F.linear(h, w_hh, b_hh)
    if _H.full_path and STATE.autocast is not None:
        i, f, g, o = (xg + hg).chunk(4, -1)
        c = ops.sigmoid(f) * c + ops.sigmoid(i) * ops.tanh(g)
        h = ops.sigmoid(o) * ops.tanh(c)
    else:
        h, c = fused_lstm_cell(xg, hg, c)
    return (h if w_hr is None else F.linear(h, w_hr)), c


def _gru_step(xg, h, w_hh, b_hh):
    hg = F.linear(h, w_hh, b_hh)
    xr, xz, xn = xg.chunk(3, -1)
    hr, hz, hn = hg.chunk(3, -1)
    r = ops.sigmoid(xr + hr)
    z = ops.sigmoid(xz + hz)
    n = ops.tanh(xn + r * hn)
    return (1 - z) * n + z * h


def _rnn_step(xg, h, w_hh, b_hh, relu):
    pre = xg + F.linear(h, w_hh, b_hh)
    return ops.relu(pre) if relu else ops.tanh(pre)


class RNNBase(Module):
    def __init__(self, mode, input_size, hidden_size, num_layers=1, bias=True, batch_first=False, dropout=0.0,
                 bidirectional=False, proj_size=0, device=None, dtype=None):
        super().__init__()
        if not isinstance(proj_size, int) or isinstance(proj_size, bool) or proj_size < 0:
            raise ValueError("proj_size should be a positive integer or zero to disable projections")
        if proj_size >= hidden_size:
            raise ValueError("proj_size has to be smaller than hidden_size")
        if proj_size and mode != "LSTM":
            raise ValueError("proj_size argument is only supported for LSTM, not RNN or GRU")
        if not isinstance(dropout, (int, float)) or not 0 <= dropout <= 1 or isinstance(dropout, bool):
            raise ValueError("dropout should be a number in range [0, 1] representing the probability of an "
                             "element being zeroed")
        if dropout > 0 and num_layers == 1:
            import warnings
            warnings.warn("dropout option adds dropout after all but last recurrent layer, so non-zero dropout "
                          f"expects num_layers greater than 1, but got dropout={dropout} and num_layers={num_layers}")
        if not isinstance(hidden_size, int) or hidden_size <= 0:
            raise ValueError("hidden_size must be an integer greater than zero")
        if not isinstance(num_layers, int) or num_layers <= 0:
            raise ValueError("num_layers must be an integer greater than zero")
        self.mode = mode
        self.input_size, self.hidden_size, self.num_layers = input_size, hidden_size, num_layers
        self.bias, self.batch_first, self.dropout = bias, batch_first, float(dropout)
        self.bidirectional, self.proj_size = bidirectional, proj_size
        gate = _GATES[mode] * hidden_size
        real_hidden = proj_size if proj_size > 0 else hidden_size    # what h carries (and the next layer reads)
        dirs = 2 if bidirectional else 1
        kw = {"device": device, "dtype": dtype}
        self._flat_weights_names = []
        for layer in range(num_layers):
            for d in range(dirs):
                sfx = f"_l{layer}" + ("_reverse" if d else "")
                in_size = input_size if layer == 0 else real_hidden * dirs
                shapes = {f"weight_ih{sfx}": (gate, in_size), f"weight_hh{sfx}": (gate, real_hidden)}
                if bias:
                    shapes.update({f"bias_ih{sfx}": (gate,), f"bias_hh{sfx}": (gate,)})
                if proj_size:
                    shapes[f"weight_hr{sfx}"] = (proj_size, hidden_size)   # h = W_hr (o * tanh(c))
                for name, shape in shapes.items():
                    self.register_parameter(name, Parameter(ops.empty(*shape, **kw)))
                self._flat_weights_names.extend(shapes)
        self.reset_parameters()

    def reset_parameters(self):
        stdv = 1.0 / math.sqrt(self.hidden_size) if self.hidden_size > 0 else 0
        for w in self.parameters():
            init.uniform_(w, -stdv, stdv)

    @property
    def all_weights(self):
        k = (4 if self.bias else 2) + (1 if self.proj_size else 0)
        return [[getattr(self, n) for n in self._flat_weights_names[i:i + k]]
                for i in range(0, len(self._flat_weights_names), k)]

    def _weights(self, layer, d):
        sfx = f"_l{layer}" + ("_reverse" if d else "")
        p = self._parameters
        return (p[f"weight_ih{sfx}"], p[f"weight_hh{sfx}"], p.get(f"bias_ih{sfx}"), p.get(f"bias_hh{sfx}"),
                p.get(f"weight_hr{sfx}"))

    def flatten_parameters(self):
        """torch packs the weights into one cuDNN buffer here; tensorlib's recurrent kernels read the
        parameters as they are on every device (there is no packed-weight path), so there is nothing to
        repack and the parameters stay as they are (torch does the same where cuDNN is not used)."""
        return None

    def extra_repr(self):
        s = f"{self.input_size}, {self.hidden_size}"
        if self.proj_size != 0:
            s += f", proj_size={self.proj_size}"
        if self.num_layers != 1:
            s += f", num_layers={self.num_layers}"
        if self.bias is not True:
            s += f", bias={self.bias}"
        if self.batch_first is not False:
            s += f", batch_first={self.batch_first}"
        if self.dropout != 0:
            s += f", dropout={self.dropout}"
        if self.bidirectional is not False:
            s += f", bidirectional={self.bidirectional}"
        return s

    def forward(self, input, hx=None):
        if isinstance(input, PackedSequence):
            return self._forward_packed(input, hx)
        lstm = self.mode == "LSTM"
        batched = input.ndim == 3
        if input.ndim not in (2, 3):
            raise ValueError(f"{type(self).__name__}: Expected input to be 2D or 3D, got {input.ndim}D instead")
        rows_first = None       # a batch-first input as given: its rows for the first layer's projection
        if not batched:
            input = input.unsqueeze(1)
        elif self.batch_first:
            rows_first = input
            input = input.transpose(0, 1)
        if input.shape[-1] != self.input_size:
            raise RuntimeError(f"input.size(-1) must be equal to input_size. Expected {self.input_size}, got "
                               f"{input.shape[-1]}")
        L, N = input.shape[0], input.shape[1]
        dirs = 2 if self.bidirectional else 1
        h_shape = (self.num_layers * dirs, N, self.proj_size or self.hidden_size)
        c_shape = (self.num_layers * dirs, N, self.hidden_size)
        if hx is None:
            h0 = ops.zeros(*h_shape, dtype=input.dtype, device=input.device)
            c0 = ops.zeros(*c_shape, dtype=input.dtype, device=input.device) if lstm else None
        else:
            if lstm:
                h0, c0 = hx
            else:
                h0, c0 = hx, None
            if not batched:
                h0 = h0.unsqueeze(1)
                c0 = c0.unsqueeze(1) if c0 is not None else None
            if tuple(h0.shape) != h_shape:
                what = "hidden[0] size" if lstm else "hidden size"
                raise RuntimeError(f"Expected {what} {h_shape}, got {list(h0.shape)}")
            if lstm and tuple(c0.shape) != c_shape:
                raise RuntimeError(f"Expected hidden[1] size {c_shape}, got {list(c0.shape)}")
        hs, cs = [], []
        x = input
        for layer in range(self.num_layers):
            outs_dir = []
            for d in range(dirs):
                w_ih, w_hh, b_ih, b_hh, w_hr = self._weights(layer, d)
                idx = layer * dirs + d
                h = h0[idx]
                c = c0[idx] if lstm else None
                # the whole sequence's input projection at once: of a batch-first input's own rows (one GEMM;
                # over the transposed view it was one small GEMM per time step), then its transpose
                xg = F.linear(x, w_ih, b_ih) if layer or rows_first is None else \
                    F.linear(rows_first, w_ih, b_ih).transpose(0, 1)
                if lstm and w_hr is None:               # the recurrence in one op forward, one backward
                    o, h, c = lstm_layer(xg, h, c, w_hh, b_hh, reverse=bool(d))
                    outs_dir.append(o)
                    hs.append(h)
                    cs.append(c)
                    continue
                if not lstm:
                    if self.mode == "GRU":
                        o, h = gru_layer(xg, h, w_hh, b_hh, reverse=bool(d))
                    else:
                        o, h = rnn_layer(xg, h, w_hh, b_hh, relu=self.mode == "RNN_RELU", reverse=bool(d))
                    outs_dir.append(o)
                    hs.append(h)
                    continue
                steps = range(L - 1, -1, -1) if d else range(L)     # an LSTM with projections, step by step
                outs = [None] * L
                for t in steps:
                    h, c = _lstm_step(xg[t], h, c, w_hh, b_hh, w_hr)
                    outs[t] = h
                outs_dir.append(ops.stack(outs, 0))
                hs.append(h)
                if lstm:
                    cs.append(c)
            x = outs_dir[0] if dirs == 1 else ops.cat(outs_dir, -1)
            if self.dropout > 0 and self.training and layer < self.num_layers - 1:
                x = F.dropout(x, self.dropout, True)
        out = x
        h_n = ops.stack(hs, 0)
        c_n = ops.stack(cs, 0) if lstm else None
        if not batched:
            out, h_n = out.squeeze(1), h_n.squeeze(1)
            c_n = c_n.squeeze(1) if lstm else None
        elif self.batch_first:
            out = out.transpose(0, 1)
        return (out, (h_n, c_n)) if lstm else (out, h_n)

    def _forward_packed(self, packed, hx):
        """A PackedSequence through the layers, as torch's packed RNN: each layer and direction steps over the
        time steps with the first batch_sizes[t] sequences (the running ones; they are sorted longest first), a
        sequence's state frozen once it ends (forward) or taken from h0 as it starts (reverse), so h_n is each
        sequence's state at its own last step. The steps are the cells' ops (`_lstm_step`, `_gru_step`,
        `_rnn_step`), so autograd flows as through any ops; the input projection of a layer is one `linear`
        over all the packed rows. hx is in the caller's order (permuted by sorted_indices, as torch's)."""
        lstm = self.mode == "LSTM"
        data, batch_sizes, sorted_indices, unsorted_indices = packed
        if data.ndim != 2:
            raise RuntimeError(f"input must have 2 dimensions, got {data.ndim}")
        if data.shape[-1] != self.input_size:
            raise RuntimeError(f"input.size(-1) must be equal to input_size. Expected {self.input_size}, got "
                               f"{data.shape[-1]}")
        bs = [int(b) for b in batch_sizes.tolist()]
        N = bs[0]
        dirs = 2 if self.bidirectional else 1
        h_shape = (self.num_layers * dirs, N, self.proj_size or self.hidden_size)
        c_shape = (self.num_layers * dirs, N, self.hidden_size)
        if hx is None:
            h0 = ops.zeros(*h_shape, dtype=data.dtype, device=data.device)
            c0 = ops.zeros(*c_shape, dtype=data.dtype, device=data.device) if lstm else None
        else:
            h0, c0 = hx if lstm else (hx, None)
            if sorted_indices is not None:
                h0 = h0.index_select(1, sorted_indices)
                c0 = c0.index_select(1, sorted_indices) if lstm else None
            if tuple(h0.shape) != h_shape:
                what = "hidden[0] size" if lstm else "hidden size"
                raise RuntimeError(f"Expected {what} {h_shape}, got {list(h0.shape)}")
            if lstm and tuple(c0.shape) != c_shape:
                raise RuntimeError(f"Expected hidden[1] size {c_shape}, got {list(c0.shape)}")
        offsets = [0]
        for b in bs:
            offsets.append(offsets[-1] + b)
        hs, cs = [], []
        x = data
        for layer in range(self.num_layers):
            outs_dir = []
            for d in range(dirs):
                w_ih, w_hh, b_ih, b_hh, w_hr = self._weights(layer, d)
                idx = layer * dirs + d
                xg = F.linear(x, w_ih, b_ih)
                o, h, c = self._packed_direction(xg, h0[idx], c0[idx] if lstm else None, bs, offsets, bool(d),
                                                 w_hh, b_hh, w_hr)
                outs_dir.append(o)
                hs.append(h)
                cs.append(c)
            x = outs_dir[0] if dirs == 1 else ops.cat(outs_dir, -1)
            if self.dropout > 0 and self.training and layer < self.num_layers - 1:
                x = F.dropout(x, self.dropout, True)
        h_n = ops.stack(hs, 0)
        c_n = ops.stack(cs, 0) if lstm else None
        if unsorted_indices is not None:
            h_n = h_n.index_select(1, unsorted_indices)
            c_n = c_n.index_select(1, unsorted_indices) if lstm else None
        out = PackedSequence(x, batch_sizes, sorted_indices, unsorted_indices)
        return (out, (h_n, c_n)) if lstm else (out, h_n)

    def _packed_direction(self, xg, h0, c0, bs, offsets, reverse, w_hh, b_hh, w_hr):
        """One layer's direction over packed rows' input projections `xg`: (outputs in packed order, h_n, c_n)."""
        lstm = self.mode == "LSTM"
        L = len(bs)

        def step(t, h, c):
            xt = xg[offsets[t]:offsets[t + 1]]
            if lstm:
                return _lstm_step(xt, h, c, w_hh, b_hh, w_hr)
            if self.mode == "GRU":
                return _gru_step(xt, h, w_hh, b_hh), None
            return _rnn_step(xt, h, w_hh, b_hh, self.mode == "RNN_RELU"), None

        outs = [None] * L
        if not reverse:
            h, c = h0, c0
            done_h, done_c = [], []         # the states of the sequences that ended, the shortest last
            for t in range(L):
                if bs[t] < h.shape[0]:
                    done_h.append(h[bs[t]:])
                    h = h[:bs[t]]
                    if lstm:
                        done_c.append(c[bs[t]:])
                        c = c[:bs[t]]
                h, c = step(t, h, c)
                outs[t] = h
            h_n = ops.cat([h] + done_h[::-1], 0) if done_h else h
            c_n = (ops.cat([c] + done_c[::-1], 0) if done_c else c) if lstm else None
        else:
            h, c = h0[:bs[-1]], (c0[:bs[-1]] if lstm else None)
            for t in range(L - 1, -1, -1):
                if bs[t] > h.shape[0]:          # sequences that start here (their last step) start from h0
                    h = ops.cat([h, h0[h.shape[0]:bs[t]]], 0)
                    if lstm:
                        c = ops.cat([c, c0[c.shape[0]:bs[t]]], 0)
                h, c = step(t, h, c)
                outs[t] = h
            h_n, c_n = h, c
        return ops.cat(outs, 0), h_n, c_n


class RNN(RNNBase):
    def __init__(self, input_size, hidden_size, num_layers=1, nonlinearity="tanh", bias=True, batch_first=False,
                 dropout=0.0, bidirectional=False, device=None, dtype=None):
        if nonlinearity not in ("tanh", "relu"):
            raise ValueError(f"Unknown nonlinearity '{nonlinearity}'. Select from 'tanh' or 'relu'.")
        self.nonlinearity = nonlinearity
        super().__init__("RNN_TANH" if nonlinearity == "tanh" else "RNN_RELU", input_size, hidden_size, num_layers,
                         bias, batch_first, dropout, bidirectional, device=device, dtype=dtype)


class LSTM(RNNBase):
    def __init__(self, input_size, hidden_size, num_layers=1, bias=True, batch_first=False, dropout=0.0,
                 bidirectional=False, proj_size=0, device=None, dtype=None):
        super().__init__("LSTM", input_size, hidden_size, num_layers, bias, batch_first, dropout, bidirectional,
                         proj_size, device, dtype)


class GRU(RNNBase):
    def __init__(self, input_size, hidden_size, num_layers=1, bias=True, batch_first=False, dropout=0.0,
                 bidirectional=False, device=None, dtype=None):
        super().__init__("GRU", input_size, hidden_size, num_layers, bias, batch_first, dropout, bidirectional,
                         device=device, dtype=dtype)


class RNNCellBase(Module):
    """torch's base of RNNCell, LSTMCell and GRUCell: the two weight matrices (and biases) of `num_chunks`
    gates, initialised uniform in +-1/sqrt(hidden_size)."""

    def __init__(self, input_size, hidden_size, bias, num_chunks, device=None, dtype=None):
        super().__init__()
        self.input_size, self.hidden_size, self.bias = input_size, hidden_size, bias
        kw = {"device": device, "dtype": dtype}
        g = num_chunks * hidden_size
        self.weight_ih = Parameter(ops.empty(g, input_size, **kw))
        self.weight_hh = Parameter(ops.empty(g, hidden_size, **kw))
        if bias:
            self.bias_ih = Parameter(ops.empty(g, **kw))
            self.bias_hh = Parameter(ops.empty(g, **kw))
        else:
            self.register_parameter("bias_ih", None)
            self.register_parameter("bias_hh", None)
        self.reset_parameters()

    def reset_parameters(self):
        stdv = 1.0 / math.sqrt(self.hidden_size) if self.hidden_size > 0 else 0
        for w in self.parameters():
            init.uniform_(w, -stdv, stdv)

    def _zeros(self, input):
        return ops.zeros(*input.shape[:-1], self.hidden_size, dtype=input.dtype, device=input.device)

    def extra_repr(self):
        return f"{self.input_size}, {self.hidden_size}" + ("" if self.bias else ", bias=False")


class _CellBase(RNNCellBase):
    _gates = 1
    _kind = "RNNCell"

    def __init__(self, input_size, hidden_size, bias=True, device=None, dtype=None):
        super().__init__(input_size, hidden_size, bias, self._gates, device, dtype)

    def _check(self, input, hs, names):
        """torch's checks of a cell's input and hidden state tensors `hs` (named `names` in its messages)."""
        if input.ndim not in (1, 2):
            raise ValueError(f"{self._kind}: Expected input to be 1D or 2D, got {input.ndim}D instead")
        for h, name in zip(hs, names):
            if h.ndim != input.ndim:
                raise ValueError(f"{self._kind}: Expected {name} to be {input.ndim}D, got {h.ndim}D instead")
        if input.shape[-1] != self.input_size:
            raise RuntimeError(f"input has inconsistent input_size: got {input.shape[-1]} expected {self.input_size}")
        for k, h in enumerate(hs):
            if h.shape[:-1] != input.shape[:-1]:
                raise RuntimeError(f"Input batch size {input.shape[0]} doesn't match hidden{k} batch size "
                                   f"{h.shape[0]}")
            if h.shape[-1] != self.hidden_size:
                raise RuntimeError(f"hidden{k} has inconsistent hidden_size: got {h.shape[-1]}, expected "
                                   f"{self.hidden_size}")


class RNNCell(_CellBase):
    def __init__(self, input_size, hidden_size, bias=True, nonlinearity="tanh", device=None, dtype=None):
        super().__init__(input_size, hidden_size, bias, device, dtype)
        self.nonlinearity = nonlinearity

    def forward(self, input, hx=None):
        self._check(input, () if hx is None else (hx,), ("hidden",))
        h = self._zeros(input) if hx is None else hx
        return _rnn_step(F.linear(input, self.weight_ih, self.bias_ih), h, self.weight_hh, self.bias_hh,
                         self.nonlinearity == "relu")


class LSTMCell(_CellBase):
    _gates = 4
    _kind = "LSTMCell"

    def forward(self, input, hx=None):
        self._check(input, () if hx is None else hx, ("hx[0]", "hx[1]"))
        h, c = (self._zeros(input), self._zeros(input)) if hx is None else hx
        if not _H.range_hooks:
            return self._step(input, h, c)
        # torch's aten::lstm_cell(input, hx, w_ih, w_hh, b_ih, b_hh): its region over the step's ops
        return _H.op_region("lstm_cell", (input, [h, c], self.weight_ih, self.weight_hh, self.bias_ih, self.bias_hh),
                            self._step, input, h, c)

    def _step(self, input, h, c):
        return _lstm_step(F.linear(input, self.weight_ih, self.bias_ih), h, c, self.weight_hh, self.bias_hh)


class GRUCell(_CellBase):
    _gates = 3
    _kind = "GRUCell"

    def forward(self, input, hx=None):
        self._check(input, () if hx is None else (hx,), ("hidden",))
        h = self._zeros(input) if hx is None else hx
        return _gru_step(F.linear(input, self.weight_ih, self.bias_ih), h, self.weight_hh, self.bias_hh)
