"""cupy.random (fake): CuPy's Generator (over a bit generator) and legacy RandomState, drawing from
NumPy's generators. Only the methods CuPy provides exist (Generator has no permutation/choice/
shuffle in CuPy 13), and results are cupy arrays: 0-d where size is None, as CuPy's."""
from __future__ import annotations

import numpy

from .._core import _wrap_np, ndarray


_STATE_BYTES = 40     # PCG64's state and increment (16 bytes each), has_uint32 and uinteger (4 each)


class BitGenerator:
    """A bit generator whose state lives in device memory, as CuPy's cuRAND generators keep theirs in
    `_state` (an int8 cupy array the kernels advance in place): here NumPy's PCG64 state, packed into
    the 40 bytes of `_state`, loaded before each draw and stored back after it, so a copy of `_state`
    taken and written back later replays the same draws (what a saved CUDA RNG state needs)."""

    def __init__(self, seed=None):
        self._np = numpy.random.Generator(numpy.random.PCG64(seed))
        self._state = _wrap_np(numpy.zeros(_STATE_BYTES, numpy.int8))
        self._store()

    def _load(self):
        b = self._state._a.view(numpy.uint8).tobytes()
        st = {"bit_generator": "PCG64", "state": {"state": int.from_bytes(b[:16], "little"),
                                                  "inc": int.from_bytes(b[16:32], "little")},
              "has_uint32": int.from_bytes(b[32:36], "little"), "uinteger": int.from_bytes(b[36:40], "little")}
        self._np.bit_generator.state = st

    def _store(self):
        st = self._np.bit_generator.state
        b = (st["state"]["state"].to_bytes(16, "little") + st["state"]["inc"].to_bytes(16, "little")
             + int(st["has_uint32"]).to_bytes(4, "little") + int(st["uinteger"]).to_bytes(4, "little"))
        self._state._a[...] = numpy.frombuffer(b, numpy.int8)

    def random_raw(self, size=None, out=False):
        self._load()
        try:
            return _wrap_np(numpy.asarray(self._np.integers(0, 2 ** 32, size, dtype=numpy.uint64)))
        finally:
            self._store()


class XORWOW(BitGenerator):
    pass


class MRG32k3a(BitGenerator):
    pass


class Philox4x3210(BitGenerator):
    pass


def _size(size):
    return () if size is None else size


def _scalar_or_array(x, what):
    if type(x) is ndarray:
        return x._a
    if type(x) in (float, int):
        return x
    raise TypeError(f"{what} is required to be a cupy.ndarray or a scalar")


class Generator:
    def __init__(self, bit_generator):
        self.bit_generator = bit_generator
        self._g = bit_generator._np

    def random(self, size=None, dtype=numpy.float64, out=None):
        dt = numpy.dtype(dtype)
        y = self._g.random(_size(size), dtype=numpy.float64 if dt.char == "d" else numpy.float32)
        return _wrap_np(numpy.asarray(y)).astype(dtype, copy=False)

    def uniform(self, low=0.0, high=1.0, size=None, dtype=numpy.float64):
        return self.random(size, dtype) * (high - low) + low

    def integers(self, low, high=None, size=None, dtype=numpy.int64, endpoint=False):
        if high is None:
            low, high = 0, low
        return _wrap_np(numpy.asarray(self._g.integers(int(low), int(high), _size(size), dtype=dtype,
                                                        endpoint=endpoint)))

    def standard_normal(self, size=None, dtype=numpy.float64, out=None):
        dt = numpy.dtype(dtype)
        if dt.char not in "fd":
            raise TypeError(f"Unsupported dtype {dt.name} for standard_normal")
        return _wrap_np(numpy.asarray(self._g.standard_normal(_size(size), dtype=dt)))

    def standard_exponential(self, size=None, dtype=numpy.float64, method="inv", out=None):
        if method == "zig":
            raise NotImplementedError("Ziggurat method is not supported")
        return _wrap_np(numpy.asarray(self._g.standard_exponential(_size(size)))).astype(dtype, copy=False)

    def exponential(self, scale=1.0, size=None):
        return self.standard_exponential(size) * scale

    def poisson(self, lam=1.0, size=None):
        return _wrap_np(numpy.asarray(self._g.poisson(_scalar_or_array(lam, "lam"), size)))

    def binomial(self, n, p, size=None):
        return _wrap_np(numpy.asarray(self._g.binomial(_scalar_or_array(n, "n"), _scalar_or_array(p, "p"), size)))

    def gamma(self, shape, scale=1.0, size=None):
        return _wrap_np(numpy.asarray(self._g.gamma(_scalar_or_array(shape, "shape"), scale, size)))

    def beta(self, a, b, size=None, dtype=numpy.float64):
        return _wrap_np(numpy.asarray(self._g.beta(_scalar_or_array(a, "a"), _scalar_or_array(b, "b"),
                                                   size))).astype(dtype, copy=False)


def _through_state(cls):
    """Each drawing method loads the bit generator's state from its device array and stores it back."""
    def wrap(fn):
        def f(self, *args, **kwargs):
            self.bit_generator._load()
            try:
                return fn(self, *args, **kwargs)
            finally:
                self.bit_generator._store()
        f.__name__ = fn.__name__
        f.__doc__ = fn.__doc__
        return f
    for name, fn in list(vars(cls).items()):
        if callable(fn) and not name.startswith("_"):
            setattr(cls, name, wrap(fn))
    return cls


Generator = _through_state(Generator)


def default_rng(seed=None):
    return Generator(XORWOW(seed))


class RandomState:
    """The legacy API (cupy.random.RandomState): NumPy's RandomState behind cupy results."""

    def __init__(self, seed=None, method=None):
        self._rs = numpy.random.RandomState(seed)

    def seed(self, seed=None):
        self._rs.seed(seed)

    def _w(self, r, dtype=None):
        r = _wrap_np(numpy.asarray(r))
        return r if dtype is None else r.astype(dtype, copy=False)

    def random_sample(self, size=None, dtype=float):
        return self._w(self._rs.random_sample(size), dtype)

    random = random_sample

    def rand(self, *size, dtype=float):
        return self._w(self._rs.random_sample(size), dtype)

    def randn(self, *size, dtype=float):
        return self._w(self._rs.standard_normal(size), dtype)

    def standard_normal(self, size=None, dtype=float):
        return self._w(self._rs.standard_normal(size), dtype)

    def normal(self, loc=0.0, scale=1.0, size=None, dtype=float):
        return self._w(self._rs.normal(loc, scale, size), dtype)

    def uniform(self, low=0.0, high=1.0, size=None, dtype=float):
        return self._w(self._rs.uniform(low, high, size), dtype)

    def randint(self, low, high=None, size=None, dtype=int):
        return self._w(self._rs.randint(low, high, size), dtype)

    def exponential(self, scale=1.0, size=None, dtype=float):
        return self._w(self._rs.exponential(scale, size), dtype)

    def permutation(self, a):
        if type(a) is ndarray:
            return _wrap_np(self._rs.permutation(a._a))
        return self._w(self._rs.permutation(a))

    def shuffle(self, a):
        if type(a) is not ndarray:
            raise TypeError("The array must be cupy.ndarray")
        self._rs.shuffle(a._a)

    def choice(self, a, size=None, replace=True, p=None):
        a = a._a if type(a) is ndarray else a
        p = p._a if type(p) is ndarray else p
        return self._w(self._rs.choice(a, size, replace, p))


_state = [None]


def get_random_state():
    if _state[0] is None:
        _state[0] = RandomState()
    return _state[0]


def seed(seed=None):
    get_random_state().seed(seed)


def _legacy(name):
    def f(*args, **kwargs):
        return getattr(get_random_state(), name)(*args, **kwargs)
    f.__name__ = name
    return f


for _n in ("rand", "randn", "random_sample", "random", "standard_normal", "normal", "uniform", "randint",
           "exponential", "permutation", "shuffle", "choice"):
    globals()[_n] = _legacy(_n)
del _n
