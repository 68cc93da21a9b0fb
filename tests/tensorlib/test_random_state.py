"""torch.get_rng_state / set_rng_state and Generator.get_state on the CPU (PCG64's 128-bit state survives the
round trip: it raised before), torch.random.fork_rng, and torch.utils.dlpack's capsules."""
from __future__ import annotations

import numpy as np
import pytest

import tensorlib as tl


def test_rng_state_round_trips_and_checks_its_argument():
    state = tl.get_rng_state()
    assert state.dtype == tl.uint8 and state.dim() == 1
    a = tl.rand(3)
    tl.set_rng_state(state)
    assert tl.equal(a, tl.rand(3))
    g = tl.Generator().manual_seed(3)
    saved = g.get_state()
    x = tl.randn(4, generator=g)
    g.set_state(saved)
    assert tl.equal(x, tl.randn(4, generator=g))
    with pytest.raises(TypeError, match="RNG state must be a torch.ByteTensor"):
        tl.set_rng_state(tl.zeros(3))
    with pytest.raises(RuntimeError, match="RNG state is wrong size"):
        tl.set_rng_state(tl.zeros(3, dtype=tl.uint8))


def test_fork_rng_restores_the_stream():
    tl.manual_seed(0)
    with tl.random.fork_rng():
        inside = tl.rand(2)
        tl.rand(5)
    after = tl.rand(2)
    assert tl.equal(inside, after)          # the block's draws left the stream where it was
    with tl.random.fork_rng(enabled=False):
        tl.rand(1)
    assert not tl.equal(tl.rand(2), after)


def test_dlpack_capsules_share_memory():
    base = tl.from_dlpack(np.ones(3))
    capsule = tl.utils.dlpack.to_dlpack(base)
    back = tl.utils.dlpack.from_dlpack(capsule)
    back[0] = 5
    assert base.tolist() == [5.0, 1.0, 1.0]
    assert tl.utils.dlpack.from_dlpack(np.arange(3.0)).tolist() == [0.0, 1.0, 2.0]
