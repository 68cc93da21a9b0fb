"""Steps as the unit: one ProfilerStep* row as torch, and prof.step_breakdown() per step."""
import time

import pytest

import tensorlib as tl
from profiler import profile, record_function, schedule
from tensorlib import nn, optim
from tensorlib.utils.data import DataLoader, TensorDataset


def _train(steps=4, sched=None):
    m = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 2))
    opt = optim.SGD(m.parameters(), lr=0.1)
    dl = DataLoader(TensorDataset(tl.randn(16 * steps, 8), tl.randn(16 * steps, 2)), batch_size=16)
    with profile(schedule=sched or schedule(wait=0, warmup=0, active=steps, repeat=1)) as prof:
        for x, y in dl:
            loss = ((m(x) - y) ** 2).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
            with record_function("idle"):
                time.sleep(0.002)
            prof.step()
    return prof


def test_profiler_steps_are_one_row_as_in_torch():
    prof = _train(steps=3)
    rows = [r for r in prof.key_averages() if r.key.startswith("ProfilerStep")]
    assert [(r.key, r.count) for r in rows] == [("ProfilerStep*", 3)]
    table = prof.key_averages().table()
    assert "ProfilerStep*" in table and "ProfilerStep#" not in table
    # as torch's FunctionEvent: name "ProfilerStep*", trace_name the step's own (the trace keeps it)
    assert {e.name for e in prof.events() if e.kind == "step"} == {"ProfilerStep*"}
    assert sorted(e.trace_name for e in prof.events() if e.kind == "step") == [f"ProfilerStep#{i}" for i in range(3)]


def test_step_breakdown_phases_add_up_to_each_step():
    prof = _train(steps=3)
    bd = prof.step_breakdown()
    assert [s.step for s in bd] == [0, 1, 2]
    steps = {e.trace_name: e for e in prof.events() if e.kind == "step"}
    for s in bd:
        parts = s.data_us + s.forward_us + s.backward_us + s.optimizer_us + s.other_us
        assert parts == pytest.approx(s.duration_us, abs=1e-3)
        assert s.duration_us == pytest.approx(steps[f"ProfilerStep#{s.step}"].cpu_time_total)
        assert s.data_us > 0 and s.forward_us > 0 and s.backward_us > 0 and s.optimizer_us > 0
        assert s.other_us >= 2000            # the sleep under a user range with no op inside
        assert s.gpu_busy_us is None         # CPU only
    avg = bd.average()
    assert avg.duration_us == pytest.approx(sum(s.duration_us for s in bd) / 3)
    text = bd.table()
    for word in ("Step", "Data", "Forward", "Backward", "Optimizer", "Other", "ProfilerStep#2", "avg of 3"):
        assert word in text
    assert "GPU" not in text


def test_optimizer_ops_count_as_optimizer_not_forward():
    """zero_grad and step run ops; under the optimizer's range they are optimizer time."""
    prof = _train(steps=1)
    ops_under_opt = sum(e.self_cpu_time_total for e in prof.events()
                        if e.kind == "op" and _under(e, "Optimizer."))
    s = prof.step_breakdown()[0]
    assert s.optimizer_us >= ops_under_opt


def _under(e, prefix):
    p = e.cpu_parent
    while p is not None:
        if p.name.startswith(prefix):
            return True
        p = p.cpu_parent
    return False


def test_no_steps_without_a_schedule_says_how():
    with profile() as prof:
        tl.randn(3).sum()
    bd = prof.step_breakdown()
    assert list(bd) == [] and bd.average() is None
    assert "schedule" in bd.table()


@pytest.mark.cuda
def test_step_breakdown_on_cuda_has_gpu_busy_and_idle():
    from profiler import ProfilerActivity
    a = tl.randn(64, 64, device="cuda")
    with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA],
                 schedule=schedule(wait=0, warmup=0, active=2, repeat=1)) as prof:
        for _ in range(2):
            tl.matmul(a, a).relu()
            with record_function("host_only"):
                time.sleep(0.002)
            prof.step()
    bd = prof.step_breakdown()
    assert bd.has_gpu and len(bd) == 2
    for s in bd:
        assert 0 < s.gpu_busy_us < s.duration_us
        assert s.gpu_busy_us + s.gpu_idle_us == pytest.approx(s.duration_us)
        assert s.gpu_idle_us >= 2000             # the GPU had nothing to do during the sleep
    assert "GPU busy" in bd.table() and "GPU idle" in bd.table()


def test_flops_are_torchs_estimates():
    """torch 2.13's with_flops on the same calls gives mm 1024, addmm 1024, bmm 3072, conv2d 13500,
    mul 128 and add 128 (addmm's reduced dimension is its second input's, not the bias's)."""
    import tensorlib.nn.functional as F
    a, b, c = tl.randn(8, 16), tl.randn(16, 4), tl.randn(8, 4)
    x, w = tl.randn(2, 3, 10, 10), tl.randn(5, 3, 3, 3)
    with profile(with_flops=True) as prof:
        tl.mm(a, b)
        tl.addmm(c, a, b)
        tl.bmm(tl.randn(3, 8, 16), tl.randn(3, 16, 4))
        F.conv2d(x, w, stride=2, padding=1)
        a * 2
        a + a
    flops = {r.key: r.flops for r in prof.key_averages() if r.flops}
    assert flops == {"aten::mm": 1024, "aten::addmm": 1024, "aten::bmm": 3072, "aten::conv2d": 13500,
                     "aten::mul": 128, "aten::add": 128}
