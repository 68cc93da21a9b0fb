"""torch.cuda's RNG state functions over tensorlib's CUDA generators (one per device, see tensorlib.random).

A CUDA generator's state is its seed (8 bytes, little-endian) followed by a copy of its CuPy bit
generator's device state (the cuRAND states the draws advance in place), as a CPU uint8 tensor; writing
it back with set_rng_state makes the next draws repeat those that followed get_rng_state, which is what
utils.checkpoint's save/restore needs. Its size is CuPy's (not torch's 16 bytes of seed and offset).

Without CUDA, as in torch: get_rng_state_all is [], set_rng_state/set_rng_state_all/seed/seed_all do
nothing (torch queues them for a CUDA that never comes), get_rng_state/initial_seed raise.
"""
from __future__ import annotations

from .._device import cupy, cupy_or_none
from .streams import _index

__all__ = ["get_rng_state", "get_rng_state_all", "set_rng_state", "set_rng_state_all", "seed", "seed_all",
           "initial_seed"]


def _gen(device):
    from .. import random
    return random.cuda_generator(_index(cupy(), "cuda" if device is None else device))


def get_rng_state(device="cuda"):
    """The RNG state of `device`'s generator ("cuda": the current device's) as a CPU uint8 tensor."""
    return _gen(device).get_state()


def get_rng_state_all() -> list:
    cp = cupy_or_none()
    return [] if cp is None else [get_rng_state(i) for i in range(cp.cuda.runtime.getDeviceCount())]


def set_rng_state(new_state, device="cuda") -> None:
    """Restore `device`'s generator to a state get_rng_state gave (nothing without CUDA)."""
    if cupy_or_none() is not None:
        _gen(device).set_state(new_state)


def set_rng_state_all(new_states) -> None:
    for i, state in enumerate(new_states):
        set_rng_state(state, i)


def seed() -> None:
    """Seed the current device's generator with a random number (nothing without CUDA)."""
    if cupy_or_none() is not None:
        _gen(None).seed()


def seed_all() -> None:
    """Seed every device's generator with one random number (those made later too; nothing without CUDA)."""
    if cupy_or_none() is not None:
        import secrets

        from .. import random
        random.manual_seed_all(secrets.randbits(63))


def initial_seed() -> int:
    """The seed of the current device's generator."""
    return _gen(None).initial_seed()
