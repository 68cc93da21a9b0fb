"""samples/dataloader_workers.py runs end to end and its workers take part."""
import importlib.util
from pathlib import Path

SAMPLE = Path(__file__).resolve().parents[3] / "samples" / "dataloader_workers.py"


def test_sample_trains_with_workers(capsys):
    spec = importlib.util.spec_from_file_location("dataloader_workers_sample", SAMPLE)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    assert mod.main(["--epochs", "2", "--samples", "600", "--workers", "2"]) == 0
    out = capsys.readouterr().out
    assert "worker threads used: [0, 1]" in out
    losses = [float(line.split("loss ")[1].split()[0]) for line in out.splitlines() if line.startswith("epoch")]
    assert len(losses) == 2 and losses[1] < losses[0]
