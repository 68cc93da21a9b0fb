"""Running Python code under the NVTX recorder tool and reading back what it logged; shared by the
NVTX tests (and meant for the later end-to-end training-step test)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]


def run_under_recorder(library: Path, args: Sequence[str], out: Path, env: dict[str, str] | None = None) -> list[dict]:
    """Runs ``python ARGS`` from the repository root with the recorder injected; returns its records.

    Raises AssertionError with the child's stderr if it fails, so a test shows why.
    """
    child_env = dict(os.environ if env is None else env, NVTX_INJECTION64_PATH=str(library), NVTX_RECORDER_OUT=str(out))
    child_env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), child_env.get("PYTHONPATH")]))
    result = subprocess.run([sys.executable, *args], cwd=ROOT, env=child_env, capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, f"python {' '.join(args)} failed under the NVTX recorder:\n{result.stderr}"
    return [json.loads(line) for line in out.read_text().splitlines()] if out.exists() else []


def ranges(records: list[dict], domain: str = "tensorlib") -> list[tuple]:
    """(event, depth, message, category name, colour, payload) of every push, ("pop", depth) of every pop."""
    rows: list[tuple] = []
    for r in records:
        if r["domain"] != domain or r["event"] not in ("push", "pop"):
            continue
        if r["event"] == "pop":
            rows.append(("pop", r["depth"]))
        else:
            rows.append(("push", r["depth"], r["message"], r["category_name"], r["color"], r["payload"]))
    return rows
