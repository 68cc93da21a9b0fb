"""with_stack writes torch's python_function events: TensorBoard's Module view (torch-tb-profiler) shows
our modules with their hierarchy, call counts and times, and HTA's call stacks run through them."""
import json

import pytest

import tensorlib as tl
from devtools import trace_names_vs_torch as tnt
from profiler import profile

tbdata = pytest.importorskip("torch_tb_profiler.profiler.data", reason="torch-tb-profiler is in the test extra")
module_op = pytest.importorskip("torch_tb_profiler.profiler.module_op")


class Block(tl.nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = tl.nn.Linear(8, 8)
        self.act = tl.nn.ReLU()

    def forward(self, x):
        return self.act(self.fc(x))


class Net(tl.nn.Module):
    """Nested: user modules inside a user module, and a Sequential (no user frame between its children)."""

    def __init__(self):
        super().__init__()
        self.b1 = Block()
        self.b2 = Block()
        self.head = tl.nn.Sequential(tl.nn.Linear(8, 4), tl.nn.Linear(4, 2))

    def forward(self, x):
        return self.head(self.b2(self.b1(x)))


def _profile(tmp_path, model, x, steps, **kw):
    def step():
        model(x).sum().backward()
    step()
    with profile(**kw) as prof:
        for _ in range(steps):
            step()
    path = tmp_path / "w.1.pt.trace.json"
    prof.export_chrome_trace(str(path))
    return prof, path, json.loads(path.read_text())["traceEvents"]


def _module_view(path, tmp_path):
    run = tbdata.RunProfileData.parse("w", 1, str(path), str(tmp_path))
    run.process()
    return module_op.aggegate_module_view(run.tid2tree, run.events)


def _tree(stats):
    """{name_id: (calls, {children...})} from TensorBoard's module statistics."""
    return {f"{s.name}_{s.id}" if not s.name.endswith(f"_{s.id}") else s.name: (s.occurences, _tree(s.children))
            for s in stats}


def _expected(model, root_name, steps):
    """The module tree as torch would name it: class_k, k counting the modules of a class in call order."""
    counters = {}

    def walk(m):
        cls = type(m).__name__
        ids = counters.setdefault(cls, {})
        k = ids.setdefault(id(m), len(ids))
        kids = {}
        for c in m.children():
            kids.update(walk(c))
        return {f"{cls}_{k}": (steps, kids)}
    return walk(model)


@pytest.mark.parametrize("kind", ["mlp", "nested"])
def test_module_view_matches_our_modules(tmp_path, kind):
    if kind == "mlp":
        model, shape = tnt.build(tl, "mlp")
    else:
        model, shape = Net(), (3, 8)
    steps = 2
    prof, path, evs = _profile(tmp_path, model, tl.randn(*shape), steps, with_stack=True)
    stats = _module_view(path, tmp_path)
    assert stats, "TensorBoard found no Module view"
    assert _tree(stats) == _expected(model, type(model).__name__, steps)
    # each module's time in TensorBoard is its range's time in our table
    ours = {r.key: r for r in prof.key_averages() if r.kind == "module"}
    mods = [e for e in evs if e.get("cat") == "python_function" and "Python module id" in e["args"]]
    assert len(mods) == steps * len(list(model.modules()))
    total = {}
    for e in mods:
        total[e["name"]] = total.get(e["name"], 0) + e["dur"]
    by_name = {}

    def flat(ss):
        for s in ss:
            by_name[f"nn.Module: {s.name}"] = s
            flat(s.children)
    flat(stats)
    assert set(by_name) == set(total)
    for name, s in by_name.items():
        assert s.host_duration == pytest.approx(total[name], abs=1e-3 * steps)
    assert sum(r.cpu_time_total for r in ours.values() if "." not in r.key) == pytest.approx(
        total[f"nn.Module: {type(model).__name__}_0"], abs=0.01)


def test_python_tree_is_consistent(tmp_path):
    """Every parent id names an event that encloses its child; module events carry torch's arguments;
    ops keep their Call stack."""
    _, _, evs = _profile(tmp_path, Net(), tl.randn(3, 8), 1, with_stack=True)
    py = {e["args"]["Python id"]: e for e in evs if e.get("cat") == "python_function"}
    assert sorted(py) == list(range(1, len(py) + 1))
    for e in py.values():
        p = e["args"]["Python parent id"]
        if p is not None:
            parent = py[p]
            assert parent["ts"] <= e["ts"] and e["ts"] + e["dur"] <= parent["ts"] + parent["dur"] + 1e-3
            assert parent["tid"] == e["tid"]
    names = [e["name"] for e in py.values()]
    assert any(n.endswith("): forward") and "test_python_function_events.py(" in n for n in names)
    assert "nn.Module: Net_0" in names and "nn.Module: Linear_2" in names
    assert all(e.get("cat") != "user_annotation" or "." not in e["name"] for e in evs)   # modules are python_function
    ops = [e for e in evs if e.get("cat") == "cpu_op"]
    assert ops and all("Call stack" in e["args"] for e in ops if e["name"] == "aten::linear")


def test_without_with_stack_no_python_events(tmp_path):
    """torch's defaults: no module events at all (its with_modules is TorchScript's); with_modules=True (ours
    for eager modules): each module's forward as a user_annotation named by its qualified name."""
    _, _, evs = _profile(tmp_path, Net(), tl.randn(3, 8), 1)
    assert not [e for e in evs if e.get("cat") in ("python_function", "user_annotation")]
    _, _, evs = _profile(tmp_path, Net(), tl.randn(3, 8), 1, with_modules=True)
    assert not [e for e in evs if e.get("cat") == "python_function"]
    assert "Net.b1.fc" in {e["name"] for e in evs if e.get("cat") == "user_annotation"}


def test_hta_call_stacks_through_python_events(tmp_path):
    """HTA's call graph (its Python-stack analyses) reads the python_function events: an op's path to
    the root passes through its module and the user's frames."""
    cs = pytest.importorskip("hta.common.call_stack")
    ta = pytest.importorskip("hta.trace_analysis")
    tmp = tmp_path / "hta"
    tmp.mkdir()
    _profile(tmp, Net(), tl.randn(3, 8), 1, with_stack=True)
    trace = ta.TraceAnalysis(trace_dir=str(tmp)).t
    df = trace.get_trace(0)
    sym = trace.symbol_table.get_sym_table()
    names = df["name"].map(lambda i: sym[i])
    assert (names == "nn.Module: Linear_0").sum() == 1
    graph = cs.CallGraph(trace, ranks=[0])
    linear = df.index[names == "aten::linear"][0]
    csg = graph.call_stacks[0]
    path_names = [sym[df.loc[i, "name"]] for i in csg.get_path_to_root(linear) if i >= 0]
    assert "nn.Module: Linear_0" in path_names and "nn.Module: Block_0" in path_names
    assert any(n.endswith("): forward") for n in path_names)
