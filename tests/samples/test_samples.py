"""The training samples reach their stated accuracy with fixed seeds (scikit-learn's digits)."""
import os
import sys

import pytest

pytest.importorskip("sklearn", reason="the samples train on scikit-learn's bundled digits set")

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "samples"))


@pytest.mark.slow
def test_mlp_sample_reaches_95_percent():
    import train_mlp
    losses, acc = train_mlp.train(seed=0, verbose=False)
    assert acc >= 0.95
    assert losses[-1] < losses[0] / 10


@pytest.mark.slow
def test_cnn_sample_reaches_97_percent():
    import train_cnn
    losses, acc = train_cnn.train(seed=0, verbose=False)
    assert acc >= 0.97
    assert losses[-1] < losses[0] / 10


@pytest.mark.slow
def test_lstm_sample_learns():
    import train_lstm
    losses, acc = train_lstm.train(epochs=4, seed=0, verbose=False)
    assert losses == sorted(losses, reverse=True)        # falls every epoch
    assert losses[-1] < losses[0] / 4
    assert acc >= 0.85


@pytest.mark.slow
def test_transformer_sample_learns():
    import train_transformer
    losses, acc = train_transformer.train(epochs=4, seed=0, verbose=False)
    assert losses == sorted(losses, reverse=True)
    assert losses[-1] < losses[0] / 2
    assert acc >= 0.7


def test_the_samples_set_their_blas_threads():
    """The training samples' command line sets the BLAS threads (one by default), as `make demo` does."""
    import _loop

    import tensorlib as tl

    seen = []
    before = tl.get_num_threads()
    try:
        _loop.cli(lambda epochs, device, seed: seen.append(tl.get_num_threads()), 1, "doc", [])
        _loop.cli(lambda epochs, device, seed: seen.append(tl.get_num_threads()), 1, "doc", ["--threads", "2"])
    finally:
        tl.set_num_threads(before)
    assert seen == [1, 2]
