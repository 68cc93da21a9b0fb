"""A profile's events do not depend on how its ops were recorded: with default options the op sink records
them and the engine takes the sink's shortcuts (ops recorded without being dispatched, see
tensorlib.dispatch.run_recorded), with record_shapes/profile_memory the ops the engine runs so pass the
recorder's op_arrays and every other op the op hooks. Both profiles of the same training step hold the same
events, nested alike, with the same sequence numbers."""
import gc
import json

import numpy as np
import pytest

import profiler
import tensorlib as tl
from tensorlib import dispatch
from profiler.recorder import Recorder

nn, F = tl.nn, tl.nn.functional


@pytest.fixture(autouse=True)
def _no_collection():
    """The cyclic GC off for each test, after a collection: garbage that an earlier test left (or that a step makes)
    freed inside one of the profiles compared would shift that profile's memory running totals."""
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def _step(kind):
    rng = np.random.default_rng(0)
    tl.manual_seed(0)
    if kind == "mlp":
        m = nn.Sequential(nn.Linear(12, 16), nn.ReLU(), nn.Linear(16, 5))
        x, y = tl.randn(8, 12), tl.tensor(rng.integers(0, 5, 8))
        loss = lambda: F.cross_entropy(m(x), y)      # noqa: E731
    elif kind == "lstmcell":      # time_sequence_prediction's: two LSTMCells (the fused cell) and a Linear, float64
        c1, c2, head = nn.LSTMCell(1, 6).double(), nn.LSTMCell(6, 6).double(), nn.Linear(6, 1).double()
        m = nn.ModuleList([c1, c2, head])
        x, y = tl.randn(3, 4, dtype=tl.float64), tl.randn(3, 4, dtype=tl.float64)

        def loss():
            h1 = cc1 = h2 = cc2 = tl.zeros(3, 6, dtype=tl.float64)
            outs = []
            for xt in x.split(1, dim=1):
                h1, cc1 = c1(xt, (h1, cc1))
                h2, cc2 = c2(h1, (h2, cc2))
                outs.append(head(h2))
            return F.mse_loss(tl.cat(outs, 1), y)
    elif kind == "transformer":
        layer = nn.TransformerEncoderLayer(16, 2, dim_feedforward=32, dropout=0.1, batch_first=True)
        enc, head = nn.TransformerEncoder(layer, 2), nn.Linear(16, 5)
        m = nn.ModuleList([enc, head])
        x, y = tl.randn(4, 6, 16), tl.tensor(rng.integers(0, 5, 4))
        loss = lambda: F.cross_entropy(head(enc(x).mean(1)), y)      # noqa: E731
    elif kind == "cells":     # makemore's hand-written cells: the elementwise nodes' formulas, broadcasting
        emb, cell, head = nn.Embedding(20, 8, padding_idx=0), nn.Linear(16, 24), nn.Linear(8, 20)
        scale = nn.Parameter(tl.ones(8))
        m = nn.ModuleList([emb, cell, head])
        m.scale = scale
        x, y = tl.tensor(rng.integers(0, 20, (4, 3))), tl.tensor(rng.integers(0, 20, 4))

        def loss():
            h = tl.zeros(4, 8)
            for t in range(3):
                z, r, n = cell(tl.cat([emb(x[:, t]), h], 1)).split(8, 1)
                z, r = tl.sigmoid(z), tl.sigmoid(r) * scale
                h = (1 - z) * h + z * tl.tanh(n + r * h) - F.gelu(n) / (scale.exp() + 1)
            out = head(h)
            strided = (h.view(4, 8, 1).transpose(0, 1) * h.t().unsqueeze(-1)).sum()     # reshapes of strided grads
            return F.cross_entropy(out, y) + (-(out.abs() + 1).log()).mean() * 0.1 + scale.sum() / out.sum() + \
                strided + (h.view(2, 16).t() * 2).sum()
    elif kind == "conv":      # dcgan's and mnist's nodes: conv, conv_transpose, batch_norm, leaky_relu, pool, BCE
        conv, bn, up = nn.Conv2d(3, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ConvTranspose2d(4, 2, 4, 2, 1, bias=False)
        head = nn.Linear(2 * 4 * 4, 1)
        m = nn.ModuleList([conv, bn, up, head])
        x, y = tl.randn(2, 3, 4, 4), tl.tensor([[1.0], [0.0]])

        def loss():
            h = F.leaky_relu(bn(conv(x)), 0.2)
            h = F.max_pool2d(up(h), 2)
            return F.binary_cross_entropy(tl.sigmoid(head(h.flatten(1))), y) + (h ** 2).mean() * 0.1
    elif kind == "policy":    # actor_critic's: vector inputs, softmax, clamp, log, gather, sums, stack, smooth_l1
        body, actor, critic = nn.Linear(4, 16), nn.Linear(16, 2), nn.Linear(16, 1)
        m = nn.ModuleList([body, actor, critic])
        states = [tl.tensor(s) for s in rng.standard_normal((3, 4)).astype(np.float32)]

        def loss():
            logp, values = [], []
            for s in states:
                h = F.relu(body(s))
                p = F.softmax(actor(h), dim=-1)
                p = p / p.sum(-1, keepdim=True)
                logp.append(-(p.clamp(1e-6, 1 - 1e-6).log().gather(0, tl.tensor([1]))).sum())
                values.append(F.smooth_l1_loss(critic(h), tl.tensor([0.5])))
            return tl.stack(logp).sum() + tl.stack(values).sum() + F.mse_loss(critic(h), tl.tensor([0.1]))
    else:
        emb, rnn, head = nn.Embedding(20, 8), nn.GRU(8, 12, batch_first=True), nn.Linear(12, 20)
        m = nn.ModuleList([emb, rnn, head])
        x, y = tl.tensor(rng.integers(0, 20, (4, 5))), tl.tensor(rng.integers(0, 20, (4, 5)))
        loss = lambda: F.cross_entropy(head(rnn(emb(x))[0]).reshape(-1, 20), y.reshape(-1))      # noqa: E731
    opt = tl.optim.Adam(m.parameters(), lr=1e-3, foreach=False)
    # a weight whose gradient is added to (two uses: no stealing of the gradient into .grad)
    extra = nn.Linear(5, 5)
    opt.add_param_group({"params": extra.parameters()})

    def step(second_use):
        opt.zero_grad()
        out = loss()
        if second_use:
            out = out + extra(extra.weight).sum() * 0
        out.backward()
        opt.step()
    return step


def _tree(prof):
    """(depth, name, sequence number from the profile's first) per event, in order of start."""
    evs = sorted(prof.events(), key=lambda e: (e.time_range.start, -e.time_range.end))
    seqs = [e.sequence_nr for e in evs if e.sequence_nr >= 0]
    base = min(seqs) if seqs else 0
    out = []
    for e in evs:
        depth, p = 0, e.parent
        while p is not None:
            depth, p = depth + 1, p.parent
        out.append((depth, e.name, e.sequence_nr - base if e.sequence_nr >= 0 else -1))
    return out


@pytest.mark.parametrize("second_use", [False, True])
@pytest.mark.parametrize("kind", ["mlp", "transformer", "gru", "cells", "conv", "policy", "lstmcell"])
def test_default_and_detailed_options_record_the_same_events(kind, second_use):
    step = _step(kind)
    step(second_use)       # Adam's state exists: every step below runs the same ops
    trees = []
    for kw in ({}, {"record_shapes": True, "profile_memory": True}, {}):
        with profiler.profile(**kw) as prof:
            step(second_use)
        trees.append(_tree(prof))
    assert trees[0] == trees[2]          # the same step twice: the comparison itself is deterministic
    assert trees[0] == trees[1]
    names = {n for _, n, _ in trees[0]}
    assert {"autograd::engine::evaluate_function: torch::autograd::AccumulateGrad", "aten::ones_like",
            "aten::detach", "Optimizer.step#Adam.step"} <= names


def _detailed(prof, path):
    """Everything a detailed profile holds but times and addresses: per event in order of start its depth, name,
    sequence number, Input Dims/type and CPU memory (self, total); the [memory] records in trace order (bytes,
    running total)."""
    evs = sorted(prof.events(), key=lambda e: (e.time_range.start, -e.time_range.end))
    rows = [(d, n, s, e.input_shapes, e.input_dtypes, e.self_cpu_memory_usage, e.cpu_memory_usage)
            for (d, n, s), e in zip(_tree(prof), evs)]
    prof.export_chrome_trace(str(path))
    trace = json.loads(path.read_text())["traceEvents"]
    mem = [(e["args"]["Bytes"], e["args"]["Total Allocated"]) for e in trace if e.get("name") == "[memory]"]
    return rows, mem


def _arrays_on_off_on(step, monkeypatch, collect, **options):
    """collect(prof, i) of three profiles of one step under `options`: the recorder taking ops on arrays (the
    engine's sink formulas run), not taking them (the dispatched formulas run), and taking them again."""
    step(True)
    runs = []
    for on in (True, False, True):
        if not on:
            bind = Recorder._bind

            def no_arrays(self):
                bind(self)
                self.op_arrays = None
            monkeypatch.setattr(Recorder, "_bind", no_arrays)
        with profiler.profile(**options) as prof:
            assert dispatch.records_arrays() == on      # the sink formulas run (on), or the dispatched ones
            step(True)
        monkeypatch.undo()
        runs.append(collect(prof, len(runs)))
    return runs


@pytest.mark.parametrize("kind", ["mlp", "transformer", "gru", "cells", "conv", "policy", "lstmcell"])
def test_detailed_sink_formulas_record_what_dispatched_formulas_do(kind, monkeypatch, tmp_path):
    """Under record_shapes + profile_memory the engine runs its sink formulas, their ops recorded on arrays
    (Recorder.op_arrays, tensorlib.Hook.op_arrays): the same events, Input Shapes and memory records (sizes,
    owners, order) as the dispatched formulas give when the recorder does not take ops on arrays."""
    step = _step(kind)
    runs = _arrays_on_off_on(step, monkeypatch, lambda prof, i: _detailed(prof, tmp_path / f"{i}.json"),
                             record_shapes=True, profile_memory=True)
    assert runs[0] == runs[2]      # deterministic
    if kind in ("conv", "policy"):
        # batch_norm's, convolution's and clamp's formulas free some temporaries in another order than their
        # dispatched ops do (the same records, the running total between them differing)
        (rows_s, mem_s), (rows_d, mem_d) = runs[0], runs[1]
        assert rows_s == rows_d
        assert sorted(b for b, _ in mem_s) == sorted(b for b, _ in mem_d) and mem_s[-1] == mem_d[-1]
    else:
        assert runs[0] == runs[1]
    rows, mem = runs[0]
    assert any(r[3] for r in rows if r[2] >= 0) and mem


@pytest.mark.parametrize("memory", [False, True])
def test_input_shapes_are_taken_when_the_op_runs(memory):
    """record_shapes keeps an op's Input Dims/type as they were when it ran, whatever its inputs become later
    (a tensor given another array, its values changed in place), as torch records them at the call; a
    backward's ops (the engine's sink formulas, recorded on arrays) likewise."""
    x = tl.zeros(2, 3)
    w = tl.ones(2, 3, requires_grad=True)
    with profiler.profile(record_shapes=True, profile_memory=memory) as prof:
        y = x + 1
        loss = (w * y).sum()
        x.data = tl.zeros(4, 5, dtype=tl.float64)
        z = x * 2
        x.add_(1)
        loss.backward()
        y.add_(1)
    assert z.shape == (4, 5)
    got = [(e.name, e.input_shapes, e.input_dtypes) for e in prof.events()
           if e.name in ("aten::add", "aten::mul", "aten::add_", "aten::sum")]
    assert got[:5] == [("aten::add", [[2, 3], []], ["float", "Scalar"]),
                       ("aten::mul", [[2, 3], [2, 3]], ["float", "float"]),
                       ("aten::sum", [[2, 3]], ["float"]),
                       ("aten::mul", [[4, 5], []], ["double", "Scalar"]),
                       ("aten::add_", [[4, 5], []], ["double", "Scalar"])]
    backward_mul = [e for e in prof.events() if e.name == "aten::mul" and e.parent is not None
                    and e.parent.name == "MulBackward0"]
    assert len(backward_mul) == 1 and backward_mul[0].input_shapes == [[2, 3], [2, 3]]
    assert got[-1] == ("aten::add_", [[2, 3], []], ["float", "Scalar"])


@pytest.mark.parametrize("detailed", [False, True])
@pytest.mark.parametrize("make", [lambda ps: tl.optim.AdamW(ps, lr=1e-3),
                                  lambda ps: tl.optim.Adam(ps, lr=1e-3, weight_decay=0.1, foreach=False),
                                  lambda ps: tl.optim.SGD(ps, lr=0.1),
                                  lambda ps: tl.optim.SGD(ps, lr=0.1, momentum=0.9, weight_decay=0.01, nesterov=True),
                                  lambda ps: tl.optim.Adadelta(ps, weight_decay=0.01),
                                  lambda ps: tl.optim.RMSprop(ps, momentum=0.5, weight_decay=0.01),
                                  lambda ps: tl.optim.RMSprop(ps, centered=True),
                                  lambda ps: tl.optim.Adagrad(ps, lr_decay=0.01, weight_decay=0.01),
                                  lambda ps: tl.optim.Adam(ps, amsgrad=True, foreach=False),
                                  lambda ps: tl.optim.Adamax(ps, weight_decay=0.01),
                                  lambda ps: tl.optim.NAdam(ps, weight_decay=0.01, decoupled_weight_decay=True),
                                  lambda ps: tl.optim.RAdam(ps, weight_decay=0.01),
                                  lambda ps: tl.optim.ASGD(ps, t0=-10, weight_decay=0.01),
                                  lambda ps: tl.optim.Rprop(ps)],
                         ids=["AdamW", "Adam-L2", "SGD", "SGD-nesterov-L2", "Adadelta-L2", "RMSprop-momentum-L2",
                              "RMSprop-centered", "Adagrad-L2", "Adam-amsgrad", "Adamax-L2", "NAdam-decoupled",
                              "RAdam-L2", "ASGD-averaging", "Rprop"])
def test_the_optimizer_loop_on_arrays_records_what_its_dispatched_loop_does(make, detailed, monkeypatch, tmp_path):
    """Under a profile the optimizers run torch's per-parameter loop on the arrays, each op recorded as its
    dispatch would be (tensorlib.optim._common.Loop): the same events, Input Shapes and memory records, frees
    in the same order, as the same loop dispatched (two parameter groups: temporaries live on from one to the
    next). RAdam's second step (rectified only from the sixth) and ASGD's (averaging from the second, t0=-10) take their
    other branch."""
    from tensorlib.optim import _common
    tl.manual_seed(0)
    m1, m2 = nn.Linear(6, 4), nn.Linear(4, 3)
    opt = make(list(m1.parameters()))
    opt.add_param_group({"params": list(m2.parameters())})
    x = tl.randn(5, 6)

    def step():
        opt.zero_grad()
        m2(m1(x).relu()).sum().backward()
        opt.step()
    step()
    kw = {"record_shapes": True, "profile_memory": True} if detailed else {}
    runs = []
    for dispatched in (False, True, False):
        if dispatched:
            monkeypatch.setattr(_common, "_arrays_ok", lambda pairs: False)     # loop_ops: DISPATCHED
        with profiler.profile(**kw) as prof:
            step()
        monkeypatch.undo()
        runs.append(_detailed(prof, tmp_path / f"{len(runs)}.json") if detailed else _tree(prof))
    assert runs[0] == runs[2]
    assert runs[0] == runs[1]
    names = [r[1] for r in (runs[0][0] if detailed else runs[0])]
    if isinstance(opt, tl.optim.SGD):
        assert names.count("aten::add_") == 4 * (2 if opt.defaults["momentum"] else 1)
    elif isinstance(opt, tl.optim.Adadelta):
        assert names.count("aten::sqrt_") == 8 and names.count("aten::div_") == 4
    elif isinstance(opt, (tl.optim.RMSprop, tl.optim.Adagrad)):      # (centered RMSprop: addcmul(...).sqrt_())
        assert names.count("aten::sqrt") + names.count("aten::sqrt_") == 4 and names.count("aten::addcdiv_") == 4
    elif isinstance(opt, tl.optim.Adamax):
        assert names.count("aten::maximum") == 4 and names.count("aten::copy_") == 4
    elif isinstance(opt, tl.optim.NAdam):
        assert names.count("aten::addcdiv_") == 8
    elif isinstance(opt, tl.optim.RAdam):
        assert names.count("aten::add_") == 4 + 4 and names.count("aten::sqrt") == 0      # step counters, updates
    elif isinstance(opt, tl.optim.ASGD):
        assert names.count("aten::sub") == 4 and names.count("aten::fill_") == 8 + 1     # (+ the backward seed's)
    elif isinstance(opt, tl.optim.Rprop):
        assert names.count("aten::masked_fill_") == 16 and names.count("aten::clamp_") == 4
    else:
        assert names.count("aten::addcdiv_") == 4 and names.count("aten::lerp_") == 4
        assert names.count("aten::maximum") == (4 if opt.defaults["amsgrad"] else 0)


@pytest.mark.parametrize("detailed", [False, True])
def test_sgd_first_momentum_step_on_arrays_records_what_its_dispatched_loop_does(detailed, monkeypatch, tmp_path):
    """SGD's first step with momentum makes each buffer by grad.detach().clone(): on the arrays under a profile it
    dispatches those two, so the profile of that step is the dispatched loop's, values and versions too."""
    from tensorlib.optim import _common
    kw = {"record_shapes": True, "profile_memory": True} if detailed else {}
    runs, values = [], []
    for dispatched in (False, True):
        tl.manual_seed(0)
        m = nn.Linear(6, 4)
        opt = tl.optim.SGD(m.parameters(), lr=0.1, momentum=0.9, weight_decay=0.01)
        m(tl.randn(5, 6)).sum().backward()
        if dispatched:
            monkeypatch.setattr(_common, "_arrays_ok", lambda pairs: False)     # loop_ops: DISPATCHED
        with profiler.profile(**kw) as prof:
            opt.step()
        monkeypatch.undo()
        runs.append(_detailed(prof, tmp_path / f"{len(runs)}.json") if detailed else _tree(prof))
        values.append([(p.detach().numpy().copy(), p._version, opt.state[p]["momentum_buffer"].numpy().copy())
                       for p in m.parameters()])
        del m, opt, prof
    assert runs[0] == runs[1]
    names = [r[1] for r in (runs[0][0] if detailed else runs[0])]
    assert names.count("aten::clone") == 2 and names.count("aten::add_") == 2
    for (a, va, ba), (b, vb, bb) in zip(*values):
        assert np.array_equal(a, b) and va == vb and np.array_equal(ba, bb)


@pytest.mark.parametrize("detailed", [False, True])
@pytest.mark.parametrize("foreach", [None, False])
def test_clip_grad_norm_on_arrays_records_what_its_op_by_op_path_does(foreach, detailed, monkeypatch, tmp_path):
    """clip_grad_norm_ under a profile runs its per-gradient norms and scalings on the arrays (recorded as
    dispatched, see tensorlib.nn.utils.clip_grad._clip_recorded): the same events, Input Shapes, memory records
    and values as its op-by-op path."""
    from tensorlib.nn.utils import clip_grad
    kw = {"record_shapes": True, "profile_memory": True} if detailed else {}
    runs, values = [], []
    for op_by_op in (False, True, False):
        tl.manual_seed(0)
        ps = [nn.Parameter(tl.randn(4, 3)), nn.Parameter(tl.randn(3)), nn.Parameter(tl.randn(2, 2, 2))]
        for p in ps:
            p.grad = tl.randn(*p.shape) * 3
        if op_by_op:
            monkeypatch.setattr(clip_grad, "records_arrays", lambda: False)
        with profiler.profile(**kw) as prof:
            total = tl.nn.utils.clip_grad_norm_(ps, 0.5, foreach=foreach, error_if_nonfinite=True)
        monkeypatch.undo()
        runs.append(_detailed(prof, tmp_path / f"{len(runs)}.json") if detailed else _tree(prof))
        values.append([total.numpy().copy()] + [p.grad.numpy().copy() for p in ps] + [[p.grad._version for p in ps]])
        del total, ps       # (nothing of this run alive when the next one starts: its memory total starts alike)
    assert runs[0] == runs[2]
    assert runs[0] == runs[1]
    for a, b in zip(values[0], values[1]):
        assert np.array_equal(a, b)
    names = [r[1] for r in (runs[0][0] if detailed else runs[0])]
    assert names.count("aten::mul_") == 3 and names.count("aten::linalg_vector_norm") == 4
    assert ("aten::_foreach_norm" in names) == (foreach is None)


@pytest.mark.parametrize("kind", ["mlp", "transformer", "gru", "conv"])
def test_with_stack_sink_formulas_record_what_dispatched_formulas_do(kind, monkeypatch):
    """with_stack (with record_shapes and profile_memory) runs the engine's sink formulas too (Recorder.op_arrays,
    their ops' stacks taken as the dispatched ops' are): the same events, Input Shapes and user stacks as the
    dispatched formulas give when the recorder does not take ops on arrays."""
    def rows(prof, _):
        evs = sorted(prof.events(), key=lambda e: (e.time_range.start, -e.time_range.end))
        return [(e.name, e.input_shapes, tuple(f for f in e.stack if "test_same_tree_any_options" in f))
                for e in evs]
    runs = _arrays_on_off_on(_step(kind), monkeypatch, rows, record_shapes=True, profile_memory=True,
                             with_stack=True)
    assert runs[0] == runs[2]
    assert runs[0] == runs[1]
    assert any(r[2] for r in runs[0] if "Backward" not in r[0])
    backward = [r for r in runs[0] if r[0].startswith("autograd::engine::evaluate_function")]
    assert backward and all(r[2] for r in backward)     # the backward() call's user frames
