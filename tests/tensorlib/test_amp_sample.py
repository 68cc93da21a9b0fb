"""samples/train_amp.py runs end to end (on the CPU here) and its loss goes down under loss scaling."""
import importlib.util
from pathlib import Path

SAMPLE = Path(__file__).resolve().parents[2] / "samples" / "train_amp.py"


def test_amp_sample_runs_and_learns(capsys):
    spec = importlib.util.spec_from_file_location("train_amp_sample", SAMPLE)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    assert mod.main(["--steps", "25"]) == 0
    out = capsys.readouterr().out
    losses = [float(line.split("loss ")[1].split()[0]) for line in out.splitlines() if line.startswith("step")]
    assert losses[-1] < losses[0]
    assert "matmul dtype tensorlib.float16" in out and "skipped for inf/NaN" in out
