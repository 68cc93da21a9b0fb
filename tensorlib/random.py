"""Random number generation: a seeded default generator per backend, torch.Generator-like objects."""
from __future__ import annotations

import contextlib

import numpy as np

from ._device import CPU


class Generator:
    """torch.Generator for the CPU (NumPy's PCG64) or a CUDA device (CuPy's generator)."""

    def __init__(self, device="cpu"):
        from ._device import to_device
        self.device = to_device(device) if device != "cpu" else CPU
        self._seed = 67280421310721
        self._rng = None
        self.manual_seed(self._seed)

    def manual_seed(self, seed):
        seed = int(seed)
        if seed < 0:
            seed += 1 << 64
        self._seed = seed
        if self.device.type == "cpu":
            self._rng = np.random.Generator(np.random.PCG64(seed))
        else:
            from ._device import cupy
            cp = cupy()
            with cp.cuda.Device(self.device.index):
                self._rng = cp.random.Generator(cp.random.XORWOW(seed)) if hasattr(cp.random, "XORWOW") \
                    else cp.random.RandomState(seed)
        return self

    def seed(self):
        import secrets
        s = secrets.randbits(63)
        self.manual_seed(s)
        return s

    def initial_seed(self):
        return self._seed

    def get_state(self):
        """The state as a CPU uint8 tensor. A CUDA generator's: its seed (8 bytes, little-endian), then a
        copy of its CuPy bit generator's device state (`_state`: the cuRAND states its kernels advance in
        place, CuPy 13's and 14's attribute)."""
        from .ops.creation import tensor
        if self.device.type != "cpu":
            cp, bits = self._cuda_bits()
            with cp.cuda.Device(self.device.index):
                body = cp.asnumpy(bits._state).view(np.uint8)
            return tensor(np.concatenate([np.array([self._seed], "<u8").view(np.uint8), body]))
        # PCG64's state holds 128-bit integers, which orjson refuses ("Integer exceeds 64-bit range"): the
        # standard library's json writes them exactly
        import json
        st = json.dumps(self._rng.bit_generator.state).encode()
        return tensor(np.frombuffer(st, dtype=np.uint8).copy())

    def set_state(self, state):
        if self.device.type != "cpu":
            from ._dtype import uint8
            if getattr(state, "dtype", None) != uint8 or state.device.type != "cpu":
                raise TypeError("RNG state must be a torch.ByteTensor")
            cp, bits = self._cuda_bits()
            raw = state.numpy().reshape(-1)
            if raw.size != 8 + bits._state.nbytes:
                raise RuntimeError("RNG state is wrong size")
            with cp.cuda.Device(self.device.index):
                bits._state[...] = cp.asarray(raw[8:].view(bits._state.dtype))
            self._seed = int(raw[:8].view("<u8")[0])
            return self
        import json
        from ._dtype import uint8
        if getattr(state, "dtype", None) != uint8:
            raise TypeError("RNG state must be a torch.ByteTensor")
        try:
            self._rng.bit_generator.state = json.loads(bytes(state.numpy().tobytes()))
        except (ValueError, TypeError, KeyError):
            raise RuntimeError("RNG state is wrong size") from None
        return self

    def _cuda_bits(self):
        """(CuPy, the bit generator under this CUDA generator)."""
        from ._device import cupy
        bits = getattr(self._rng, "bit_generator", None)
        if bits is None or not hasattr(bits, "_state"):
            raise RuntimeError("this CuPy's random generator keeps no device state to save (tensorlib needs "
                               "cupy.random.XORWOW, CuPy 13 or later)")
        return cupy(), bits


default_generator = Generator("cpu")
_cuda_generators: dict = {}     # device index -> that device's default generator (torch.cuda.default_generators)
_cuda_seed: list = []           # the seed manual_seed_all gave last, for CUDA generators made later


# set by tensorlib.func's vmap while it runs: called with each generator a draw is about to use (its
# randomness= "error" refuses the draw, "same" gives every batch element the first element's draws)
_draw_guard = None


def _gen_for(device, generator):
    if generator is not None:
        if generator.device != device:
            raise RuntimeError(f"Expected a '{device.type}' device type for generator but found "
                               f"'{generator.device.type}'")
        gen = generator
    elif device.type == "cpu":
        gen = default_generator
    else:
        gen = cuda_generator(device.index)
    if _draw_guard is not None:
        _draw_guard(gen)
    return gen._rng


def keep_into(out, p, generator=None):
    """Dropout's keep-mask drawn into the CPU float array `out` (1 where a uniform draw is >= p, else 0): the
    same draw as sample("uniform", out.shape, out.dtype, cpu) >= p, without its temporaries."""
    from ._device import CPU
    _gen_for(CPU, generator).random(out=out, dtype=out.dtype)
    np.greater_equal(out, p, out=out)
    return out


def cuda_generator(index):
    """Device `index`'s default generator, made (seeded as torch seeds it: the last manual_seed_all's
    seed, else the CPU generator's initial seed) the first time that device draws."""
    g = _cuda_generators.get(index)
    if g is None:
        g = Generator(f"cuda:{index}")
        g.manual_seed(_cuda_seed[-1] if _cuda_seed else default_generator.initial_seed())
        _cuda_generators[index] = g
    return g


def manual_seed(seed):
    """Seeds the CPU generator and every CUDA generator (those made later too)."""
    default_generator.manual_seed(seed)
    manual_seed_all(seed)
    return default_generator


def manual_seed_all(seed):
    """torch.cuda.manual_seed_all: every CUDA device's generator, those made later too; not the CPU's."""
    _cuda_seed[:] = [int(seed)]
    for g in _cuda_generators.values():
        g.manual_seed(seed)


def seed():
    return default_generator.seed()


def initial_seed():
    return default_generator.initial_seed()


def get_rng_state():
    return default_generator.get_state()


def set_rng_state(state):
    default_generator.set_state(state)


@contextlib.contextmanager
def fork_rng(devices=None, enabled=True, _caller="fork_rng", _devices_kw="devices", device_type="cuda"):
    """torch.random.fork_rng: the random state of the CPU and of `devices` (device_type's; every CUDA generator
    made so far when None) saved on entry and put back on exit, so draws inside the block leave the program's
    stream as it was. enabled=False: a plain block."""
    if not enabled:
        yield
        return
    if device_type not in ("cuda", "cpu"):
        raise RuntimeError(f"torch has no module of {device_type}, you should register a module by "
                           f"`torch._register_device_module`.")
    if devices is None or device_type == "cpu":
        indices = list(_cuda_generators) if device_type == "cuda" else []
    else:
        indices = [int(getattr(d, "index", None) or 0) if not isinstance(d, (int, str)) else
                   (int(d.split(":")[1]) if isinstance(d, str) and ":" in d else (0 if isinstance(d, str) else d))
                   for d in devices]
    cpu_state = default_generator.get_state()
    saved = {i: _cuda_generators[i].get_state() for i in indices if i in _cuda_generators}
    try:
        yield
    finally:
        default_generator.set_state(cpu_state)
        for i, st in saved.items():
            _cuda_generators[i].set_state(st)


def sample(kind, shape, dtype, device, generator=None, **kw):
    """A draw on `device` from its generator (`generator`, else the device's default one). A CUDA draw
    runs with that device current: CuPy makes the result, and launches the kernel, on the current one."""
    if device.type != "cpu":
        from ._device import cupy
        cp = cupy()
        if device.index != cp.cuda.runtime.getDevice():
            with cp.cuda.Device(device.index):
                return _sample(kind, shape, dtype, device, generator, kw)
    return _sample(kind, shape, dtype, device, generator, kw)


def _sample(kind, shape, dtype, device, generator, kw):
    rng = _gen_for(device, generator)
    dt = np.dtype(dtype)
    if kind in ("uniform", "normal") and dt.kind in "biu":     # torch's refusal (a cast draw was all zeros)
        from ._dtype import scalar_name
        raise NotImplementedError(f"\"{'check_uniform_bounds' if kind == 'uniform' else 'normal_kernel_cpu'}\" not "
                                  f"implemented for '{scalar_name(dt)}'")
    if dt.kind == "c" and kind in ("uniform", "normal"):
        # torch's complex draws: the real and imaginary parts drawn as two reals (view_as_real), each of a
        # normal's variance halved (a complex normal of unit variance)
        part = np.dtype(np.float32) if dt == np.complex64 else np.dtype(np.float64)
        if kind == "normal":
            kw = dict(kw, std=kw.get("std", 1.0) / np.sqrt(2.0))
        r = _sample(kind, tuple(shape) + (2,), part, device, generator, kw)
        return r.view(dt)[..., 0]
    work = dt if dt in (np.float32, np.float64) else np.float64
    if kind == "uniform":       # (rand's and randn's own draws as they are: scaled and shifted only when asked)
        lo, hi = kw.get("low", 0.0), kw.get("high", 1.0)
        r = rng.random(shape, dtype=work)
        if lo != 0.0 or hi != 1.0:
            r = r * (hi - lo) + lo
        return r.astype(dt, copy=False)
    if kind == "normal":
        r = rng.standard_normal(shape, dtype=work)
        std, mean = kw.get("std", 1.0), kw.get("mean", 0.0)
        if std != 1.0 or mean != 0.0:
            r = r * std + mean
        return r.astype(dt, copy=False)
    if kind == "bernoulli":
        return (rng.random(shape) < kw.get("p", 0.5)).astype(dt)
    if kind == "exponential":
        return rng.exponential(1.0 / kw.get("lambd", 1.0), shape).astype(dt)
    if kind == "randint":
        return rng.integers(kw["low"], kw["high"], shape).astype(dt, copy=False)
    if kind == "permutation":
        if device.type == "cpu":
            return rng.permutation(kw["n"]).astype(dt)
        # CuPy's Generator has no permutation: the order that sorts n uniform draws is a uniform one
        return rng.random((kw["n"],)).argsort().astype(dt)
    raise ValueError(kind)
