"""pytorch/tutorials' torch-only beginner scripts (the NLP series, examples_autograd, examples_nn, former_torchies)
run unchanged on tensorlib through `python -m tensorlib.compat`, checked for what a torch user sees: their
printed tensors' node names, Parameter headers and results.

The scripts are not vendored here (this checkout keeps public code out of its commits): point
TENSORLIB_PYTORCH_TUTORIALS at a checkout of https://github.com/pytorch/tutorials to run them; without it the
tests skip. Each takes one to three seconds on tensorlib (advanced_tutorial.py's BiLSTM-CRF, about 15 s, is left
out). What was compared side by side with torch 2.13, and the gaps fixed, is in tests/programs/README.md."""
from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

import tensorlib

_ROOT = os.environ.get("TENSORLIB_PYTORCH_TUTORIALS")

# script -> patterns its stdout must contain (regular expressions), as torch 2.13 prints them
SCRIPTS = {
    "beginner_source/nlp/pytorch_tutorial.py": [r"tensor\(\[5\., 7\., 9\.\]\)", r"<AddBackward0 object at 0x",
                                                r"<SumBackward0 object at 0x", r"tensor\(\[1\., 1\., 1\.\]\)"],
    "beginner_source/nlp/deep_learning_tutorial.py": [r"Parameter containing:", r"grad_fn=<AddmmBackward0>",
                                                      r"grad_fn=<LogSoftmaxBackward0>", r"grad_fn=<SelectBackward0>"],
    "beginner_source/nlp/sequence_models_tutorial.py": [r"grad_fn=<MkldnnRnnLayerBackward0>",
                                                        r"\(tensor\(\[\[\[.*grad_fn=<StackBackward0>\)",
                                                        r"grad_fn=<LogSoftmaxBackward0>"],
    "beginner_source/nlp/word_embeddings_tutorial.py": [r"grad_fn=<EmbeddingBackward0>",
                                                        r"\[\(\['When', 'forty'\], 'winters'\)"],
    "beginner_source/examples_autograd/polynomial_autograd.py": [r"^1999 \d", r"Result: y = "],
    "beginner_source/examples_autograd/polynomial_custom_function.py": [r"^1999 \d", r"\* P3\("],
    "beginner_source/examples_nn/polynomial_nn.py": [r"^1999 \d", r"Result: y = "],
    "beginner_source/examples_nn/polynomial_optim.py": [r"^1999 \d", r"Result: y = "],
    "beginner_source/examples_nn/polynomial_module.py": [r"^1999 \d", r"Result: y = "],
    "beginner_source/former_torchies/tensor_tutorial.py": [r"torch\.Size\(\[5, 7\]\)", r"\[2\. 2\. 2\. 2\. 2\.\]"],
    "beginner_source/former_torchies/nnft_tutorial.py": [r"MNISTConvNet\(", r"grad_fn=<NllLossBackward0>",
                                                         r"Inside Conv2d backward"],
}


@pytest.mark.skipif(not _ROOT, reason="TENSORLIB_PYTORCH_TUTORIALS (a pytorch/tutorials checkout) is not set")
@pytest.mark.parametrize("script", sorted(SCRIPTS))
def test_pytorch_tutorial_runs_unchanged(script, tmp_path):
    path = Path(_ROOT, script)
    if not path.is_file():
        pytest.skip(f"{script} is not in this pytorch/tutorials checkout")
    # this checkout's tensorlib, whatever PYTHONPATH finds from the script's working directory
    root = str(Path(tensorlib.__file__).resolve().parents[1])
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([root, *filter(None, [os.environ.get("PYTHONPATH")])]),
               MPLBACKEND="Agg")
    r = subprocess.run([sys.executable, "-m", "tensorlib.compat", str(path)], capture_output=True, text=True,
                       timeout=120, cwd=tmp_path, env=env)
    assert r.returncode == 0, r.stderr[-3000:]
    for pattern in SCRIPTS[script]:
        assert re.search(pattern, r.stdout, re.M | re.S), (pattern, r.stdout[-3000:])
