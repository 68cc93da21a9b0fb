"""tensorlib.quantization (torch.quantization / torch.ao.quantization): dynamic quantization of Linear and LSTM.

`quantize_dynamic(model, {nn.Linear}, dtype=qint8)` replaces each selected Linear by a DynamicQuantizedLinear:
int8 weights, symmetric, with one scale per tensor (default_dynamic_qconfig) or per output channel
(per_channel_dynamic_qconfig); at each call the activations are quantized to uint8 with a scale and zero
point from that batch's range, multiplied in int32 and rescaled to float32. The work is one dispatched op,
`quantized::linear_dynamic`, the name torch's profiler shows for it.

nn.LSTM (without projections) becomes a DynamicQuantizedLSTM: its input and hidden projections are the same
quantized op, the gates stay float32, as torch's dynamic LSTM. GRU/RNN and the cells are not implemented:
naming them in qconfig_spec is an error that says so, and with the default qconfig_spec (which takes Linear
and LSTM, as torch's) they stay float32 with a warning naming them.
"""
from __future__ import annotations

import copy
import warnings

import numpy as np

from .. import dispatch as _d
from .. import ops
from .._tensor import Tensor
from ..nn.modules.linear import Linear
from ..nn.modules.module import Module
from ..nn.modules.rnn import GRU, LSTM, GRUCell, LSTMCell, RNNCell
from ..ops.creation import from_numpy

__all__ = ["quantize_dynamic", "qint8", "quint8", "default_dynamic_qconfig", "per_channel_dynamic_qconfig",
           "DynamicQuantizedLinear", "DynamicQuantizedLSTM", "QConfig"]


class _QDtype:
    """torch.qint8 / torch.quint8: quantized element types (tensorlib stores their integers as int8/uint8)."""

    def __init__(self, name, np_dtype):
        self.name = name
        self.np = np.dtype(np_dtype)

    def __repr__(self):
        return f"torch.{self.name}"


qint8 = _QDtype("qint8", np.int8)
quint8 = _QDtype("quint8", np.uint8)


class QConfig:
    """What a layer's weights get: `qscheme` is "per_tensor_symmetric" or "per_channel_symmetric"."""

    def __init__(self, qscheme):
        self.qscheme = qscheme

    def __repr__(self):
        return f"QConfig(weight={self.qscheme})"


default_dynamic_qconfig = QConfig("per_tensor_symmetric")
per_channel_dynamic_qconfig = QConfig("per_channel_symmetric")


# --- the op --------------------------------------------------------------------------------------

def _linear_dynamic(xp, x, w_q, w_scale, bias=None, reduce_range=False):
    """y = dequant(quant_u8(x) @ w_q.T) + bias, accumulated in int32 (fbgemm's dynamic linear)."""
    qmax = 127 if reduce_range else 255
    lo = hi = 0.0
    if x.size:      # the range on the host: one synchronisation on CUDA, counted as sync_watch counts them
        from .. import _sync
        lo, hi = (float(v) for v in _sync.to_host(xp.stack([x.min(), x.max()]), "quantized::linear_dynamic"))
        lo, hi = min(lo, 0.0), max(hi, 0.0)
    scale = (hi - lo) / qmax if hi > lo else 1.0
    zp = int(min(max(round(-lo / scale), 0), qmax))
    xq = xp.clip(xp.rint(x / scale) + zp, 0, qmax).astype(xp.int32)
    acc = (xq - zp).reshape(-1, x.shape[-1]) @ w_q.astype(xp.int32).T       # int32 accumulation
    y = acc.astype(xp.float32) * (xp.float32(scale) * w_scale.astype(xp.float32))
    if bias is not None:
        y = y + bias
    return y.reshape(x.shape[:-1] + (w_q.shape[0],)).astype(xp.float32)


LINEAR_DYNAMIC = _d.registry().get("quantized::linear_dynamic") or _d.register_op(
    "quantized::linear_dynamic", _linear_dynamic)


def _quantize_weight(w, qscheme):
    """Symmetric int8: scale = max|w| / 127 per tensor or per output channel (row)."""
    if qscheme == "per_channel_symmetric":
        m = np.abs(w).max(axis=1)
    elif qscheme == "per_tensor_symmetric":
        m = np.array(np.abs(w).max() if w.size else 0.0)
    else:
        raise ValueError(f"unsupported weight qscheme {qscheme!r}")
    scale = np.where(m > 0, m / 127.0, 1.0).astype(np.float32)
    q = np.clip(np.rint(w / (scale[:, None] if scale.ndim else scale)), -127, 127).astype(np.int8)
    return q, scale


class DynamicQuantizedLinear(Module):
    """torch.ao.nn.quantized.dynamic.Linear: int8 weight and float scale(s) as buffers, float bias."""

    _FLOAT_MODULE = Linear

    def __init__(self, in_features, out_features, bias_=True, dtype=qint8):
        super().__init__()
        if dtype is not qint8:
            raise RuntimeError(f"Unsupported dtype specified for dynamic quantized Linear: {dtype!r} (tensorlib "
                               f"quantizes weights to torch.qint8 only)")
        self.in_features, self.out_features = in_features, out_features
        self.qscheme = "per_tensor_symmetric"
        self.register_buffer("_packed_weight", from_numpy(np.zeros((out_features, in_features), np.int8)))
        self.register_buffer("scale", from_numpy(np.ones((), np.float32)))
        self.register_buffer("bias", from_numpy(np.zeros(out_features, np.float32)) if bias_ else None)
        self.reduce_range = False

    @classmethod
    def from_float(cls, mod, qconfig=default_dynamic_qconfig):
        if not isinstance(mod, Linear):
            raise TypeError(f"DynamicQuantizedLinear.from_float expects an nn.Linear, got {type(mod).__name__}")
        w = _host(mod.weight)
        if w.dtype != np.float32:
            raise RuntimeError(f"dynamic quantization needs a float32 Linear, got {w.dtype.name} weights")
        q = cls(mod.in_features, mod.out_features, mod.bias is not None)
        wq, scale = _quantize_weight(w, qconfig.qscheme)
        q.qscheme = qconfig.qscheme
        q._packed_weight = from_numpy(wq)
        q.scale = from_numpy(scale)
        if mod.bias is not None:
            q.bias = from_numpy(_host(mod.bias).astype(np.float32).copy())
        return q

    def weight(self):
        """The dequantized weight (float32), as torch's `weight()`."""
        s = _host(self.scale)
        return from_numpy(_host(self._packed_weight).astype(np.float32) * (s[:, None] if s.ndim else s))

    def forward(self, x):
        if not isinstance(x, Tensor) or x.dtype.np != np.float32:
            raise RuntimeError("quantized::linear_dynamic expects a float32 input tensor")
        if x.shape[-1] != self.in_features:
            raise RuntimeError(f"mat1 and mat2 shapes cannot be multiplied ({int(np.prod(x.shape[:-1]))}x"
                               f"{x.shape[-1]} and {self.in_features}x{self.out_features})")
        return _d.dispatch(LINEAR_DYNAMIC, x, self._packed_weight, self.scale, self.bias,
                           reduce_range=self.reduce_range)

    def _get_name(self):
        return "DynamicQuantizedLinear"

    def extra_repr(self):
        scheme = "per_channel_affine" if self.qscheme == "per_channel_symmetric" else "per_tensor_affine"
        return f"in_features={self.in_features}, out_features={self.out_features}, dtype=torch.qint8, " \
               f"qscheme=torch.{scheme}"


def _host(t):
    d = t._data
    return d if isinstance(d, np.ndarray) else d.get()


class DynamicQuantizedLSTM(Module):
    """torch.ao.nn.quantized.dynamic.LSTM: each layer's weight_ih and weight_hh as int8 (buffers
    `weight_ih_l0_packed` / `..._scale`), biases float; every projection is one quantized::linear_dynamic."""

    def __init__(self, mod, qconfig=default_dynamic_qconfig):
        super().__init__()
        if not isinstance(mod, LSTM):
            raise TypeError(f"DynamicQuantizedLSTM expects an nn.LSTM, got {type(mod).__name__}")
        if mod.proj_size:
            raise NotImplementedError("dynamic quantization of an LSTM with proj_size is not supported by tensorlib")
        for k in ("input_size", "hidden_size", "num_layers", "bias", "batch_first", "dropout", "bidirectional"):
            setattr(self, k, getattr(mod, k))
        self.qscheme = qconfig.qscheme
        self._names = []
        dirs = 2 if self.bidirectional else 1
        for layer in range(self.num_layers):
            for d in range(dirs):
                sfx = f"_l{layer}" + ("_reverse" if d else "")
                for kind in ("ih", "hh"):
                    wq, scale = _quantize_weight(_host(getattr(mod, f"weight_{kind}{sfx}")), qconfig.qscheme)
                    self.register_buffer(f"weight_{kind}{sfx}_packed", from_numpy(wq))
                    self.register_buffer(f"weight_{kind}{sfx}_scale", from_numpy(scale))
                    b = getattr(mod, f"bias_{kind}{sfx}", None) if self.bias else None
                    self.register_buffer(f"bias_{kind}{sfx}", None if b is None else
                                         from_numpy(_host(b).astype(np.float32).copy()))
                self._names.append(sfx)

    def _lin(self, x, kind, sfx):
        return _d.dispatch(LINEAR_DYNAMIC, x, getattr(self, f"weight_{kind}{sfx}_packed"),
                           getattr(self, f"weight_{kind}{sfx}_scale"), getattr(self, f"bias_{kind}{sfx}"))

    def forward(self, input, hx=None):
        batched = input.ndim == 3
        if input.ndim not in (2, 3):
            raise ValueError(f"LSTM: Expected input to be 2D or 3D, got {input.ndim}D instead")
        if not batched:
            input = input.unsqueeze(1)
        elif self.batch_first:
            input = input.transpose(0, 1)
        L, N = input.shape[0], input.shape[1]
        dirs = 2 if self.bidirectional else 1
        if hx is None:
            h0 = ops.zeros(self.num_layers * dirs, N, self.hidden_size, dtype=input.dtype)
            c0 = ops.zeros(self.num_layers * dirs, N, self.hidden_size, dtype=input.dtype)
        else:
            h0, c0 = hx
            if not batched:
                h0, c0 = h0.unsqueeze(1), c0.unsqueeze(1)
        hs, cs, x = [], [], input
        for layer in range(self.num_layers):
            outs_dir = []
            for d in range(dirs):
                sfx = self._names[layer * dirs + d]
                h, c = h0[layer * dirs + d], c0[layer * dirs + d]
                xg = self._lin(x, "ih", sfx)
                outs = [None] * L
                for t in (range(L - 1, -1, -1) if d else range(L)):
                    i, f, g, o = (xg[t] + self._lin(h, "hh", sfx)).chunk(4, -1)
                    c = ops.sigmoid(f) * c + ops.sigmoid(i) * ops.tanh(g)
                    h = ops.sigmoid(o) * ops.tanh(c)
                    outs[t] = h
                outs_dir.append(ops.stack(outs, 0))
                hs.append(h)
                cs.append(c)
            x = outs_dir[0] if dirs == 1 else ops.cat(outs_dir, -1)
        h_n, c_n = ops.stack(hs, 0), ops.stack(cs, 0)
        if not batched:
            return x.squeeze(1), (h_n.squeeze(1), c_n.squeeze(1))
        return (x.transpose(0, 1) if self.batch_first else x), (h_n, c_n)

    def _get_name(self):
        return "DynamicQuantizedLSTM"

    def extra_repr(self):
        return f"{self.input_size}, {self.hidden_size}, num_layers={self.num_layers}, dtype=torch.qint8"


_NOT_YET = (GRU, LSTMCell, GRUCell, RNNCell)


def _spec(qconfig_spec):
    """{type or qualified name: QConfig}."""
    if qconfig_spec is None:
        return {Linear: default_dynamic_qconfig, LSTM: default_dynamic_qconfig}, True
    if isinstance(qconfig_spec, (set, frozenset, list, tuple)):
        spec = {k: default_dynamic_qconfig for k in qconfig_spec}
    elif isinstance(qconfig_spec, dict):
        spec = dict(qconfig_spec)
    else:
        raise TypeError(f"qconfig_spec must be a set of module types or a dict, got {type(qconfig_spec).__name__}")
    for k, v in spec.items():
        if isinstance(k, type) and issubclass(k, _NOT_YET):
            raise NotImplementedError(f"dynamic quantization of {k.__name__} is not supported by tensorlib; quantize "
                                      f"{{nn.Linear, nn.LSTM}} (the other recurrent layers stay float32)")
        if not (isinstance(k, str) or isinstance(k, type) and issubclass(k, (Linear, LSTM))):
            raise ValueError(f"qconfig_spec key {k!r}: tensorlib quantizes nn.Linear and nn.LSTM layers (by type "
                             f"or by qualified name)")
        if v is None:
            continue
        if not isinstance(v, QConfig):
            raise TypeError(f"qconfig_spec[{k!r}] must be a QConfig (default_dynamic_qconfig or "
                            f"per_channel_dynamic_qconfig), got {type(v).__name__}")
    return spec, False


def quantize_dynamic(model, qconfig_spec=None, dtype=qint8, mapping=None, inplace=False):
    """torch.ao.quantization.quantize_dynamic for nn.Linear (see the module docstring). Returns the quantized
    model: a deep copy unless inplace=True."""
    if dtype is not qint8:
        raise ValueError(f"Don't know how to quantize with default settings for {dtype!r}. Provide full qconfig "
                         f"please (tensorlib supports dtype=qint8 only)")
    if mapping is not None:
        raise ValueError("tensorlib.quantization.quantize_dynamic: custom mappings are not supported (nn.Linear -> "
                         "DynamicQuantizedLinear is the one mapping)")
    if not isinstance(model, Module):
        raise TypeError(f"quantize_dynamic expects an nn.Module, got {type(model).__name__}")
    spec, default = _spec(qconfig_spec)
    if not inplace:
        model = copy.deepcopy(model)
    left = sorted({type(m).__name__ for m in model.modules() if isinstance(m, _NOT_YET)})
    if default and left:
        warnings.warn(f"quantize_dynamic: {', '.join(left)} layers stay float32 (tensorlib quantizes nn.Linear "
                      f"and nn.LSTM only)", UserWarning, stacklevel=2)
    _swap(model, spec, "")
    return model


def _qconfig_for(spec, mod, name):
    if name in spec:
        return spec[name]
    # a qualified-name key applies to that module and everything under it, as torch's does
    parts = name.split(".")
    for i in range(len(parts) - 1, 0, -1):
        k = ".".join(parts[:i])
        if k in spec:
            return spec[k]
    for k, v in spec.items():
        if isinstance(k, type) and type(mod) is k:
            return v
    return None


def _swap(module, spec, prefix):
    for name, child in list(module._modules.items()):
        if child is None:
            continue
        full = f"{prefix}.{name}" if prefix else name
        qc = _qconfig_for(spec, child, full)
        if type(child) is Linear and qc is not None:
            setattr(module, name, DynamicQuantizedLinear.from_float(child, qc))
        elif type(child) is LSTM and qc is not None:
            setattr(module, name, DynamicQuantizedLSTM(child, qc))
        else:
            _swap(child, spec, full)
