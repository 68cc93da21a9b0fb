"""Our traces in torch's tools: HolisticTraceAnalysis and TensorBoard's profiler plugin (torch-tb-profiler)
read them as torch's, and their numbers agree with ours. Both are in the `test` extra and need no torch.
The GPU test runs with a GPU or with the CuPy stand-in (PYTHONPATH=tests/fakecupy, -m cuda)."""
import json

import pytest

import tensorlib as tl
from devtools import trace_names_vs_torch as tnt
from profiler import ProfilerActivity, profile

hta = pytest.importorskip("hta.trace_analysis",
                          reason="HolisticTraceAnalysis is in the test extra: pip install -e '.[test]'")
tbdata = pytest.importorskip("torch_tb_profiler.profiler.data", reason="torch-tb-profiler is in the test extra")


def _trace(tmp_path, device):
    """One training step of the MLP on `device`, exported as `rank0.pt.trace.json` in its own folder."""
    model, shape = tnt.build(tl, "mlp")
    model = model.to(device)
    opt = tl.optim.SGD(model.parameters(), lr=0.1)
    x = tl.randn(*shape, device=device)
    y = tl.randint(0, 10, (shape[0],), device=device)

    def step():
        tl.nn.functional.cross_entropy(model(x), y).backward()
        opt.step()
        opt.zero_grad()
    step()
    acts = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device == "cuda" else [])
    with profile(activities=acts) as prof:
        step()
        if device == "cuda":
            tl.cuda.synchronize()
    d = tmp_path / device
    d.mkdir()
    path = d / "w.1.pt.trace.json"
    prof.export_chrome_trace(str(path))
    return prof, path, json.loads(path.read_text())["traceEvents"]


def _hta(path):
    return hta.TraceAnalysis(trace_dir=str(path.parent))


def _tb(path, tmp_path):
    return tbdata.RunProfileData.parse("w", 1, str(path), str(tmp_path))


def test_cpu_trace_in_hta_and_tensorboard(tmp_path):
    prof, path, evs = _trace(tmp_path, "cpu")
    ops = [e for e in evs if e.get("cat") == "cpu_op"]
    df = _hta(path).t.get_trace(0)
    names = _hta(path).t.symbol_table.get_sym_table()
    assert sum(names[i] in {e["name"] for e in ops} for i in df["name"]) == len(ops)   # every op parsed
    # TensorBoard's operator view: calls and self times per name, as our table's
    run = _tb(path, tmp_path)
    theirs = {o.name: o for o in run.op_list_groupby_name}
    ours = {r.key: r for r in prof.key_averages() if r.kind in ("op", "backward")}     # cpu_op events
    assert set(theirs) == set(ours)
    for name, o in theirs.items():
        assert o.calls == ours[name].count
        if ours[name].kind == "op":    # (a node and its evaluate_function share their stamps: which is the
            # parent is a tie each tool breaks its own way, so their self times are compared summed below)
            assert o.self_host_duration == pytest.approx(ours[name].self_cpu_time_total, abs=0.01 * o.calls + 0.01)
    assert sum(o.self_host_duration for o in theirs.values()) == pytest.approx(
        sum(r.self_cpu_time_total for r in ours.values()), abs=0.01 * len(ops) + 0.01)


@pytest.mark.cuda
def test_gpu_trace_in_hta_every_analysis(tmp_path):
    """HTA keeps a kernel only when a launch call carries its correlation: every kernel is found, the
    kernel breakdown adds up to our kernels' time, launch statistics have a row per kernel, and the
    temporal breakdown, idle time and critical path analyses run."""
    prof, path, evs = _trace(tmp_path, "cuda")
    kernels = [e for e in evs if e.get("cat") == "kernel"]
    assert kernels
    a = _hta(path)
    df = a.t.get_trace(0)
    assert int((df["stream"] >= 0).sum()) == len(kernels)
    breakdown = a.get_gpu_kernel_breakdown(visualize=False)[0]
    # HTA reads ts and dur as whole microseconds (rounding down): up to 1 µs per kernel less than ours
    assert 0 <= sum(k["dur"] for k in kernels) - breakdown["sum"].sum() <= 2 * len(kernels)
    launches = a.get_cuda_kernel_launch_stats(visualize=False)[0]
    assert len(launches) == len(kernels) and (launches["launch_delay"] >= 0).all()
    temporal = a.get_temporal_breakdown(visualize=False)
    assert temporal["compute_time(us)"].iloc[0] > 0
    idle = a.get_idle_time_breakdown(visualize=False)[0]
    assert set(idle["stream"]) == {k["tid"] for k in kernels}
    cp_graph, ok = a.critical_path_analysis(rank=0, annotation="", instance_id=None)
    assert ok and len(cp_graph.critical_path_nodes) > 0
    run = _tb(path, tmp_path)
    assert run.has_kernel and run.used_devices == [kernels[0]["pid"]]
