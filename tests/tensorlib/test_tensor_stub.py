"""The type checkers' declarations of Tensor's attached methods (the generated block in
tensorlib/_tensor.py) match the ops registry: devtools/tensor_stub.py regenerates them."""
from __future__ import annotations

import os
import pathlib
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "devtools"))

import tensor_stub  # noqa: E402


def test_block_matches_registry():
    # a fresh interpreter: tests declare throwaway methods in this one
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    r = subprocess.run([sys.executable, str(ROOT / "devtools" / "tensor_stub.py"), "--check"], env=env,
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr


def test_stale_block_is_detected_and_regenerated():
    text = tensor_stub.BASE.read_text(encoding="utf-8")
    line = "        def matmul(self, *args: Any, **kwargs: Any) -> Any: ...\n"
    assert line in tensor_stub.current(text)
    stale = text.replace(line, "")
    fixed = tensor_stub.updated(stale)
    assert fixed != stale and line in tensor_stub.current(fixed)
    # the class's own definitions are never declared again
    assert "def size(" not in tensor_stub.current(text) and "def size(" in text


def test_first_run_inserts_the_block_at_the_end_of_the_class():
    text = tensor_stub.BASE.read_text(encoding="utf-8")
    bare = text.replace(tensor_stub.current(text), "")
    assert tensor_stub.current(bare) == ""
    new = tensor_stub.updated(bare)
    assert tensor_stub.current(new) and new.index(tensor_stub.BEGIN) < new.index("\ndef _c_name(")
