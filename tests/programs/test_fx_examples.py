"""pytorch/examples' fx/ scripts (vendor/fx_examples, unchanged, BSD-3-Clause) run on tensorlib with `import torch`
answered by tensorlib.compat: graphs built from proxies made by hand (proxy_based_graph_creation, inline_function,
wrap_output_dynamically), a custom tracer that keeps profiler ranges in the graph (profiling_tracer, printing
torch.autograd.profiler's tables), graph inversion, primitive decomposition, op replacement, the subgraph
rewriter, and a tracer that records each node's module path (module_tracer, on ResNet-18). One child process
runs them all (the import hook stays out of this process) and reports, per script, its output and what its
graph holds."""
from __future__ import annotations

import json
import re
import pathlib
import subprocess
import sys

import numpy as np

ROOT = pathlib.Path(__file__).resolve().parents[2]
FOLDER = pathlib.Path(__file__).resolve().parent / "vendor" / "fx_examples"
SCRIPTS = ["profiling_tracer", "proxy_based_graph_creation", "inline_function", "wrap_output_dynamically", "invert",
           "primitive_library", "replace_op", "subgraph_rewriter_basic_use", "module_tracer"]
STUBS = pathlib.Path(__file__).resolve().parent / "stubs"     # module_tracer builds torchvision's ResNet-18

DRIVER = r"""
import contextlib, io, json, runpy, sys
import tensorlib.compat
tensorlib.compat.install()
out = {}
for path in sys.argv[1:]:
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        g = runpy.run_path(path, run_name="__main__")
    graphs = {}
    for name in ("mod", "m", "traced", "res"):
        gm = g.get(name)
        if hasattr(gm, "graph"):
            graphs[name] = [[n.op, str(getattr(n.target, "__name__", n.target))] for n in gm.graph.nodes]
    out[path] = {"stdout": buf.getvalue(), "graphs": graphs}
print(json.dumps(out))
"""


def _run_all():
    paths = [str(FOLDER / f"{s}.py") for s in SCRIPTS]
    r = subprocess.run([sys.executable, "-c", DRIVER, *paths], cwd=FOLDER, capture_output=True, text=True,
                       timeout=300, env={"PYTHONPATH": f"{ROOT}:{STUBS}", "PATH": "/usr/bin:/bin"})
    assert r.returncode == 0, r.stderr[-4000:]
    res = json.loads(r.stdout.splitlines()[-1])
    return {pathlib.Path(k).stem: v for k, v in res.items()}


def test_pytorch_examples_fx_scripts_run_on_tensorlib():
    res = _run_all()
    assert sorted(res) == sorted(SCRIPTS)

    # three tables: the eager run shows the "foo" range, the plain FX trace loses it, the ProfilerTracer keeps it
    tables = res["profiling_tracer"]["stdout"].split("Self CPU time total")
    assert len(tables) == 4
    assert [(" foo " in t, "aten::relu" in t) for t in tables[:3]] == [(True, True), (False, True), (True, True)]

    # a graph made from hand-made proxies: cat, tanh, neg, add (torch.add's node stays: its result is unused but
    # the graph is not cleaned), the output is neg
    nodes = res["proxy_based_graph_creation"]["graphs"]["mod"]
    assert nodes == [["placeholder", "x"], ["placeholder", "y"], ["call_function", "cat"],
                     ["call_function", "tanh"], ["call_function", "neg"], ["call_function", "add"],
                     ["output", "output"]]

    # self.relu (a call_module) replaced by what ReLU's forward records on proxies: a call of relu
    nodes = res["inline_function"]["graphs"]["m"]
    assert ["call_module", "relu"] not in nodes and ["call_function", "relu"] in nodes

    # the traced LeakyReLU called on a proxy of the output's input: its leaky_relu appended before the output
    nodes = res["wrap_output_dynamically"]["graphs"]["traced"]
    assert [op for op, _ in nodes] == ["placeholder", "placeholder", "call_function", "call_function", "output"]
    assert nodes[3] == ["call_function", "leaky_relu"]

    # exp(tan(x)) inverted: log, then arctan (the alias the script maps tan to, printed by its name as torch's)
    code = res["invert"]["stdout"]
    assert "log = tensorlib.log(output)" in code and "arctan = tensorlib.arctan(log)" in code
    values = [float(v) for v in re.findall(r"[-\d.]+", code.strip().splitlines()[-1])]
    assert np.allclose(values, [1, 2, 3, 4, 5], atol=1e-5)     # the inverse graph gives the inputs back

    assert "sigmoid_lowp" in res["primitive_library"]["stdout"]

    # ModulePathTracer: every node of ResNet-18 with the module path it was recorded under
    lines = res["module_tracer"]["stdout"].splitlines()
    assert "Node layer4_1_relu_1 is from module layer4.1.relu" in lines and "Node fc is from module fc" in lines
