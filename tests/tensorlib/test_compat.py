"""python -m tensorlib.compat: a PyTorch script runs on tensorlib unchanged, and the first name tensorlib
lacks is reported in one line with where the script used it."""
from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

TRAIN = """
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset
from torch.utils.checkpoint import checkpoint
torch.manual_seed(0)
x = torch.randn(64, 4)
y = (x.sum(1) > 0).long()
model = nn.Sequential(nn.Linear(4, 16), nn.ReLU(), nn.Linear(16, 2))
opt = torch.optim.SGD(model.parameters(), lr=0.5)
first = None
for epoch in range(15):
    for xb, yb in DataLoader(TensorDataset(x, y), batch_size=16):
        loss = F.cross_entropy(checkpoint(model, xb, use_reentrant=False), yb)
        opt.zero_grad(); loss.backward(); opt.step()
        first = loss.item() if first is None else first
print(torch.__name__, nn.__name__, first > 3 * loss.item())
"""


def _run(tmp_path, source, *args):
    script = tmp_path / "prog.py"
    script.write_text(textwrap.dedent(source))
    return subprocess.run([sys.executable, "-m", "tensorlib.compat", str(script), *args],
                          capture_output=True, text=True, timeout=120, cwd=tmp_path)


def test_a_pytorch_script_trains_on_tensorlib(tmp_path):
    r = _run(tmp_path, TRAIN)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["tensorlib", "tensorlib.nn", "True"]


@pytest.mark.parametrize("source, missing, line", [
    ("import torch\nx = torch.zeros(2)\ny = torch.frobnicate(x)\n", "torch.frobnicate", 3),
    ("import torch.export\n", "torch.export", 1),     # (torch.fx is there: tensorlib.fx)
    ("import torch\nfrom torch.nn import Frobnicator\n", "torch.nn.Frobnicator", 2),
])
def test_first_missing_name_in_one_line(tmp_path, source, missing, line):
    r = _run(tmp_path, source)
    assert r.returncode == 1
    assert r.stderr == f"tensorlib.compat: prog.py:{line} uses {missing}, which tensorlib does not have yet\n"


def test_script_errors_and_exit_codes_pass_through(tmp_path):
    r = _run(tmp_path, "import sys\nprint(sys.argv[1:])\nsys.exit(3)\n", "--lr", "0.1")
    assert r.returncode == 3 and r.stdout.strip() == "['--lr', '0.1']"
    r = _run(tmp_path, "raise AttributeError('the script own bug')\n")
    assert r.returncode == 1 and "the script own bug" in r.stderr and "Traceback" in r.stderr
    r = subprocess.run([sys.executable, "-m", "tensorlib.compat", str(tmp_path / "nope\x1b[2J.py")],
                       capture_output=True, text=True)
    assert r.returncode == 2 and "\x1b" not in r.stderr and "no such script" in r.stderr


def test_torch_profiler_is_the_profiler_and_loaded_only_on_use(tmp_path):
    r = _run(tmp_path, """
        import sys
        import torch
        assert "profiler" not in sys.modules          # import torch loads no profiler
        from torch.profiler import ProfilerActivity, profile, record_function
        import torch.profiler
        with torch.profiler.profile(activities=[ProfilerActivity.CPU]) as prof:
            with record_function("step"):
                torch.ones(3).sum()
        print(sorted({e.key for e in prof.key_averages()} & {"step", "aten::sum"}), profile is torch.profiler.profile)
        """)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "['aten::sum', 'step'] True"


def test_tensorlib_profiler_imports_directly_as_one_module():
    """`import tensorlib as torch` users write `from tensorlib.profiler import profile` (torch.profiler: the
    profiler package itself, submodules included, no second copy of its state) and
    `tensorlib.autograd.profiler.profile(enabled=..., use_cuda=...)` (torch's legacy API, profiler.legacy);
    an undeclared name still fails."""
    code = textwrap.dedent("""
        import sys
        import tensorlib as torch
        assert "profiler" not in sys.modules
        from tensorlib.profiler import profile, record_function
        import tensorlib.profiler.debug, profiler.debug
        assert sys.modules["tensorlib.profiler.debug"] is profiler.debug
        from tensorlib.autograd.profiler import record_function as rf
        assert rf is record_function and torch.profiler is sys.modules["profiler"]
        assert torch.autograd.profiler is sys.modules["profiler.legacy"]       # torch's legacy profile()
        with torch.autograd.profiler.profile(use_cuda=False, record_shapes=True) as p:
            with rf("block"):
                torch.ones(2).sum()
        print(sorted(e.key for e in p.key_averages()))
        with torch.autograd.profiler.profile(enabled=False) as off:
            torch.ones(2)
        try:
            off.key_averages()
        except RuntimeError as e:
            assert str(e) == "Profiler didn't finish running"
        for bad in ("import tensorlib.nothing", "torch.nothing", "torch.autograd.nothing"):
            try:
                exec(bad)
            except (ImportError, AttributeError) as e:
                print(type(e).__name__)
        """)
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split("\n")[:4] == ["['aten::empty', 'aten::fill_', 'aten::ones', 'aten::sum', 'block']",
                                        "ModuleNotFoundError", "AttributeError", "AttributeError"]
