"""tensorlib.onnx.export (issue 19): the dispatcher traces one forward; every exported model passes
onnx.checker and runs in ONNX Runtime with tensorlib's own output (float32, within 1e-5), at another batch
size than the traced one where the batch axis is dynamic."""
from __future__ import annotations

import io
import warnings

import numpy as np
import onnx
import onnxruntime as ort
import pytest

import tensorlib as tl
import tensorlib.onnx
from tensorlib import nn
import tensorlib.nn.functional as F


class MLP(nn.Module):
    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(12, 32), nn.ReLU(), nn.Dropout(0.5), nn.Linear(32, 16), nn.GELU(),
                                 nn.Linear(16, 5))

    def forward(self, x):
        return self.net(x).softmax(-1)


class CNN(nn.Module):
    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(inplace=True), nn.MaxPool2d(2),
            nn.Conv2d(8, 16, 3, stride=1, padding=1), nn.BatchNorm2d(16), nn.ReLU(), nn.AvgPool2d(2),
            nn.AdaptiveAvgPool2d(1))
        self.head = nn.Sequential(nn.Flatten(), nn.Linear(16, 4))

    def forward(self, x):
        return self.head(self.features(x))


class LSTMNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.lstm = nn.LSTM(6, 10, num_layers=2, batch_first=True)
        self.head = nn.Linear(10, 3)

    def forward(self, x):
        out, (h, c) = self.lstm(x)
        return self.head(out[:, -1]), h


class GRUNet(nn.Module):
    """A bidirectional GRU into a relu RNN: each layer and direction is one op, exported as ONNX's GRU/RNN."""
    def __init__(self):
        super().__init__()
        self.gru = nn.GRU(6, 8, batch_first=True, bidirectional=True)
        self.rnn = nn.RNN(16, 5, nonlinearity="relu", batch_first=True)

    def forward(self, x):
        y, _ = self.gru(x)
        out, h = self.rnn(y)
        return out.sum(1), h


class CellLoop(nn.Module):
    """An LSTMCell stepped in Python over the sequence: the sequence length sets the recorded ops."""
    def __init__(self):
        super().__init__()
        self.cell = nn.LSTMCell(6, 4)

    def forward(self, x):
        h = c = tl.zeros(x.shape[0], 4)
        for t in range(x.shape[1]):
            h, c = self.cell(x[:, t], (h, c))
        return h


class Encoder(nn.Module):
    def __init__(self):
        super().__init__()
        layer = nn.TransformerEncoderLayer(16, 4, dim_feedforward=32, dropout=0.1, batch_first=True)
        self.encoder = nn.TransformerEncoder(layer, 2)
        self.head = nn.Linear(16, 2)

    def forward(self, x):
        return self.head(self.encoder(x).mean(dim=1))


def _train_bn(model, shape):
    """BatchNorm's running statistics away from (0, 1), so that eval-mode export is really tested."""
    model.train()
    with tl.no_grad():
        for _ in range(3):
            model(tl.randn(*shape) * 2 + 1)
    model.eval()


def _outputs(out):
    return [o.numpy() for o in (out if isinstance(out, tuple) else (out,))]


def _run(model_bytes, feeds):
    sess = ort.InferenceSession(model_bytes, providers=["CPUExecutionProvider"])
    return sess.run(None, feeds)


CASES = [
    (MLP, (4, 12), {"x": {0: "batch"}, "probs": {0: "batch"}}, ["probs"]),
    (CNN, (2, 3, 8, 8), {"x": {0: "batch"}}, ["logits"]),
    (LSTMNet, (3, 5, 6), {"x": {0: "batch", 1: "seq"}, "h": {1: "batch"}}, ["logits", "h"]),
    (GRUNet, (3, 5, 6), {"x": {0: "batch", 1: "seq"}, "h": {1: "batch"}}, ["y", "h"]),
    (Encoder, (2, 7, 16), {"x": {0: "batch", 1: "seq"}}, ["logits"]),
]


@pytest.mark.parametrize("cls,shape,dyn,outs", CASES, ids=[c[0].__name__ for c in CASES])
def test_exported_model_matches_tensorlib_in_onnxruntime(cls, shape, dyn, outs):
    tl.manual_seed(0)
    model = cls()
    if cls is CNN:
        _train_bn(model, shape)
    model.train()                    # export puts it in eval mode (TrainingMode.EVAL) and restores it
    buf = io.BytesIO()
    proto = tensorlib.onnx.export(model, (tl.randn(*shape),), buf, input_names=["x"], output_names=outs,
                                  dynamic_axes=dyn)
    assert model.training
    model.eval()
    onnx.checker.check_model(onnx.load_from_string(buf.getvalue()))
    assert {i.name for i in proto.graph.initializer} >= {k for k, _ in model.named_parameters()
                                                         if "in_proj" not in k}
    x_dims = proto.graph.input[0].type.tensor_type.shape.dim
    assert x_dims[0].dim_param == "batch"
    for batch in (shape[0], shape[0] + 3):
        other = list(shape)
        other[0] = batch
        if cls in (Encoder, LSTMNet, GRUNet):
            other[1] = shape[1] - 2          # the sequence axis is dynamic too (a recurrent layer is one op)
        x = tl.randn(*other)
        with tl.no_grad():
            want = _outputs(model(x))
        got = _run(buf.getvalue(), {"x": x.numpy()})
        assert len(got) == len(want)
        for g, w in zip(got, want):
            assert g.shape == w.shape
            np.testing.assert_allclose(g, w, rtol=1e-5, atol=1e-5)


class StatefulLSTM(nn.Module):
    """word_language_model's RNNModel shape: the state goes in as a tuple, `model(input, (h, c))`."""
    def __init__(self):
        super().__init__()
        self.lstm = nn.LSTM(6, 5, num_layers=2)
        self.head = nn.Linear(5, 3)

    def forward(self, input, hidden):
        out, hidden = self.lstm(input, hidden)
        return self.head(out), hidden


def test_tuple_inputs_are_flattened_into_graph_inputs():
    """torch.onnx.export flattens an input that is a tuple (or list) of tensors into one graph input per
    tensor; their default names are the argument's name and the tensor's place (torch.export's hidden_0,
    hidden_1); dynamic_axes and input_names refer to the flattened inputs. pytorch/examples'
    word_language_model exports `model, (dummy_input, hidden)` so."""
    tl.manual_seed(0)
    model = StatefulLSTM().eval()
    x, hidden = tl.randn(4, 2, 6), (tl.randn(2, 2, 5), tl.randn(2, 2, 5))
    buf = io.BytesIO()
    proto = tensorlib.onnx.export(model, (x, hidden), buf, dynamic_axes={"input": {0: "seq", 1: "batch"},
                                                                          "hidden_0": {1: "batch"},
                                                                          "hidden_1": {1: "batch"}})
    assert [i.name for i in proto.graph.input] == ["input", "hidden_0", "hidden_1"]
    assert [o.name for o in proto.graph.output] == ["output", "output_1", "output_2"]
    for seq, batch in ((4, 2), (7, 3)):
        x, hidden = tl.randn(seq, batch, 6), (tl.randn(2, batch, 5), tl.randn(2, batch, 5))
        with tl.no_grad():
            out, (h, c) = model(x, hidden)
        got = _run(buf.getvalue(), {"input": x.numpy(), "hidden_0": hidden[0].numpy(), "hidden_1": hidden[1].numpy()})
        for g, w in zip(got, (out, h, c)):
            np.testing.assert_allclose(g, w.numpy(), rtol=1e-5, atol=1e-5)
    # input_names name the flattened inputs in order; a list nests as a tuple does
    proto = tensorlib.onnx.export(model, (x, [hidden[0], hidden[1]]), io.BytesIO(), input_names=["x", "h0"])
    assert [i.name for i in proto.graph.input] == ["x", "h0", "hidden_1"]


def test_written_to_a_path_and_loaded_back(tmp_path):
    model = MLP().eval()
    path = tmp_path / "mlp.onnx"
    tensorlib.onnx.export(model, tl.randn(2, 12), str(path))
    m = onnx.load(str(path))
    onnx.checker.check_model(m)
    assert [i.name for i in m.graph.input] == ["x"] and [o.name for o in m.graph.output] == ["output"]
    # no dynamic axes: the traced shape is fixed
    assert [d.dim_value for d in m.graph.input[0].type.tensor_type.shape.dim] == [2, 12]
    x = tl.randn(2, 12)
    with tl.no_grad():
        want = model(x).numpy()
    np.testing.assert_allclose(_run(path.read_bytes(), {"x": x.numpy()})[0], want, rtol=1e-5, atol=1e-5)


def test_opset_13_decomposes_layer_norm_and_matches():
    model = Encoder().eval()
    buf = io.BytesIO()
    proto = tensorlib.onnx.export(model, tl.randn(2, 7, 16), buf, opset_version=13)
    assert proto.opset_import[0].version == 13
    assert "LayerNormalization" not in {n.op_type for n in proto.graph.node}
    x = tl.randn(2, 7, 16)
    with tl.no_grad():
        want = model(x).numpy()
    np.testing.assert_allclose(_run(buf.getvalue(), {"x": x.numpy()})[0], want, rtol=1e-5, atol=1e-5)


def test_export_params_false_makes_parameters_inputs():
    model = nn.Sequential(nn.Linear(3, 2)).eval()
    proto = tensorlib.onnx.export(model, tl.randn(1, 3), None, export_params=False, input_names=["x"])
    assert not proto.graph.initializer
    assert [i.name for i in proto.graph.input] == ["x", "0.weight", "0.bias"]
    kept = tensorlib.onnx.export(model, tl.randn(1, 3), None, keep_initializers_as_inputs=True,
                                 input_names=["x"])
    assert {i.name for i in kept.graph.input} == {"x", "0.weight", "0.bias"}
    assert {i.name for i in kept.graph.initializer} == {"0.weight", "0.bias"}


class _Unmapped(nn.Module):
    def forward(self, x):
        return tl.cumsum(x, dim=1) * 2


def test_op_without_a_translation_names_the_op_and_the_opset():
    with pytest.raises(tensorlib.onnx.errors.UnsupportedOperatorError,
                       match=r"Exporting the operator 'aten::cumsum' to ONNX opset version 15 is not supported"):
        tensorlib.onnx.export(_Unmapped(), tl.randn(2, 3), io.BytesIO(), opset_version=15)


class _Branchy(nn.Module):
    def forward(self, x):
        if x.sum() > 0:
            return x * 2
        return x - float(x.max())


def test_data_dependent_control_flow_warns_as_torch():
    with pytest.warns(tensorlib.onnx.TracerWarning) as rec:
        tensorlib.onnx.export(_Branchy(), tl.ones(2, 3), io.BytesIO())
    assert [str(w.message)[:64] for w in rec] == ["Converting a tensor to a Python boolean might cause the trace to"]
    with pytest.warns(tensorlib.onnx.TracerWarning) as rec:
        tensorlib.onnx.export(_Branchy(), -tl.ones(2, 3), io.BytesIO())
    assert [str(w.message)[:46] for w in rec] == ["Converting a tensor to a Python boolean might ",
                                                  "Converting a tensor to a Python number might c"]
    assert "treated as a constant in the future" in str(rec[1].message)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        tensorlib.onnx.export(MLP().eval(), tl.randn(2, 12), io.BytesIO())   # nothing data-dependent: silent
    # the conversions are watched during the trace only
    assert not any(hasattr(getattr(tl.Tensor, n), "__wrapped__") for n in ("__bool__", "item", "__float__", "numpy"))


def test_an_axis_the_ops_depend_on_cannot_be_dynamic():
    # the cell is stepped in Python: the sequence axis changes the recorded ops
    with pytest.raises(tensorlib.onnx.OnnxExporterError, match=r"dynamic axes \['seq'\].*cannot be dynamic"):
        tensorlib.onnx.export(CellLoop().eval(), tl.randn(2, 4, 6), io.BytesIO(), input_names=["x"],
                              dynamic_axes={"x": {1: "seq"}})


def test_bad_arguments_are_refused_clearly():
    model = MLP().eval()
    with pytest.raises(ValueError, match="Unsupported ONNX opset version: 9"):
        tensorlib.onnx.export(model, tl.randn(1, 12), io.BytesIO(), opset_version=9)
    with pytest.raises(TypeError, match="'dynamo' is not supported"):
        tensorlib.onnx.export(model, tl.randn(1, 12), io.BytesIO(), dynamo=True)
    with pytest.raises(ValueError, match="neither an input name"):
        tensorlib.onnx.export(model, tl.randn(1, 12), io.BytesIO(), dynamic_axes={"y": [0]})
    with pytest.raises(ValueError, match="only Tensor inputs"):
        tensorlib.onnx.export(model, (3,), io.BytesIO())
    with pytest.raises(ValueError, match=r"input 0 is a tuple holding a int; only Tensor inputs \(or tuples"):
        tensorlib.onnx.export(model, ((tl.randn(1, 12), 3),), io.BytesIO())
    with pytest.raises(ValueError, match="input_names has 4 names but the model takes 3 inputs"):
        tensorlib.onnx.export(StatefulLSTM(), (tl.randn(3, 1, 6), (tl.randn(2, 1, 5), tl.randn(2, 1, 5))),
                              io.BytesIO(), input_names=list("abcd"))


def test_export_is_seen_as_tracing():
    seen = []

    class Probe(nn.Module):
        def forward(self, x):
            seen.append((tensorlib.onnx.is_in_onnx_export(), tl.jit.is_tracing()))
            return x + 1
    tensorlib.onnx.export(Probe(), tl.randn(2), io.BytesIO())
    assert seen == [(True, True)]
    assert not tensorlib.onnx.is_in_onnx_export() and not tl.jit.is_tracing()


class _ManyOps(nn.Module):
    """One model through most translations (each checked against tensorlib in ONNX Runtime)."""

    def __init__(self):
        super().__init__()
        self.emb = nn.Embedding(10, 4)
        self.conv1 = nn.Conv1d(4, 6, 3, padding=1)
        self.gn = nn.GroupNorm(2, 6)
        self.ln = nn.LayerNorm(6)

    def forward(self, tokens, x):
        e = self.emb(tokens).permute(0, 2, 1)                       # (N, 4, L)
        c = self.gn(self.conv1(e))                                  # (N, 6, L)
        c = F.leaky_relu(c, 0.1) + F.elu(c) - F.softplus(c) * F.silu(c)
        c = self.ln(c.transpose(1, 2))                               # (N, L, 6)
        c = F.gelu(c, approximate="tanh") + F.gelu(c)
        c = tl.cat([c, c[:, ::2].mean(dim=1, keepdim=True).expand(-1, c.shape[1], -1)], dim=-1)
        c = c.unsqueeze(1).squeeze(1).clamp(-2.0, 3.0)
        y = tl.where(x > 0, x, x * 0.5).pow(2).sub(x, alpha=2) / 3
        y = F.pad(y, (1, 2)).log_softmax(-1)[..., 1:-1]
        m = c.sum(dim=(1, 2)) + c.amax(dim=-1).amin(dim=1) + c.max(dim=2)[0].argmax(dim=1).float()
        return m, y.reshape(y.shape[0], -1).to(tl.float64), tl.div(x, 0.7, rounding_mode="floor")


def test_many_ops_match_in_onnxruntime():
    tl.manual_seed(3)
    model = _ManyOps().eval()
    tokens = tl.randint(0, 10, (3, 5))
    x = tl.randn(3, 7)
    buf = io.BytesIO()
    tensorlib.onnx.export(model, (tokens, x), buf, input_names=["tokens", "x"], output_names=["m", "y", "q"],
                          dynamic_axes={"tokens": {0: "n"}, "x": {0: "n"}})
    tokens2, x2 = tl.randint(0, 10, (5, 5)), tl.randn(5, 7)
    with tl.no_grad():
        want = _outputs(model(tokens2, x2))
    got = _run(buf.getvalue(), {"tokens": tokens2.numpy(), "x": x2.numpy()})
    for g, w in zip(got, want):
        assert g.dtype == w.dtype
        np.testing.assert_allclose(g, w, rtol=1e-5, atol=1e-5)


class _InplaceOnView(nn.Module):
    def forward(self, x):
        y = x * 1.0
        v = y.view(-1)
        y.relu_()                     # v sees the update in tensorlib; an ONNX value could not
        return v + 1


class _InplaceAfterReshape(nn.Module):
    def forward(self, x):
        return (x * 2).reshape(-1).relu_() + 1       # nothing else reads the base: fine


def test_in_place_updates_of_shared_memory_are_refused():
    with pytest.raises(tensorlib.onnx.errors.UnsupportedOperatorError, match=r"'aten::relu_'.*shares memory"):
        tensorlib.onnx.export(_InplaceOnView(), tl.randn(2, 3), io.BytesIO())
    buf = io.BytesIO()
    tensorlib.onnx.export(_InplaceAfterReshape(), tl.randn(2, 3), buf, input_names=["x"])
    x = tl.randn(2, 3)
    np.testing.assert_allclose(_run(buf.getvalue(), {"x": x.numpy()})[0], _InplaceAfterReshape()(x).numpy())
