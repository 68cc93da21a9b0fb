"""The digits samples on CUDA (they pick it when available): the same accuracy thresholds as on the CPU.
Under the fake CuPy (tests/fakecupy) this runs the samples' CUDA code paths on NumPy."""
import os
import sys

import pytest

pytest.importorskip("sklearn", reason="the samples train on scikit-learn's bundled digits set")

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "samples"))

pytestmark = pytest.mark.cuda


def test_samples_default_to_cuda():
    import _loop
    assert _loop.default_device() == "cuda"


@pytest.mark.parametrize("name, acc_min", [("train_mlp", 0.95), ("train_cnn", 0.97)])
def test_digits_samples_on_cuda(name, acc_min):
    sample = __import__(name)
    losses, acc = sample.train(seed=0, device="cuda", verbose=False)
    assert acc >= acc_min
    assert losses[-1] < losses[0] / 10
