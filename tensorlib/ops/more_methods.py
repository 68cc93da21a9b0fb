"""Still more of torch.Tensor's methods (issue 13's 80 % target), composed of the dispatched ops so autograd,
devices and the profiler come with them. Integer-only kernels torch has no gradient for (gcd, lcm, shifts,
nextafter) are declared as ops here, method-only. Values are checked against torch in
devtools/torch_compat/test_ops_more_against_torch.py."""
from __future__ import annotations

import math

from .. import _dtype as D
from ..dispatch import record_range
from .comparison import where
from .creation import arange, tensor
from .reduce import return_types
from .shape import broadcast_tensors, cat, stack
from .extra_methods import _inplace
from ._define import Tensor, alias, kind_of, methods, np, op, public, torch_op

__all__ = ["COMPOSED_MORE"]

# --- integer kernels (no gradient in torch either) ---------------------------------------------------------

def _integer(name, fn):
    """Integer tensors only, as torch (whose error names its CPU kernel)."""
    def kernel(xp, a, b):
        if type(b) is bool:     # a Python bool is the integer it is (torch: x << True shifts by 1)
            b = int(b)
        if type(a) is bool:
            a = int(a)
        for x in (a, b):
            kind = kind_of(x)
            if kind not in "iu":
                raise NotImplementedError(f'"{name}_cpu" not implemented for '
                                          f'\'{D.scalar_name(x.dtype) if hasattr(x, "dtype") else "Float"}\'')
        return fn(xp, a, b)
    return kernel


GCD = op("gcd", promote=True, method=True)(_integer("gcd", lambda xp, a, b: xp.gcd(a, b)))
LCM = op("lcm", promote=True, method=True)(_integer("lcm", lambda xp, a, b: xp.lcm(a, b)))
LSHIFT = op("bitwise_left_shift", promote=True, method=True, operators=("__lshift__", "__rlshift__"))(
    _integer("lshift", lambda xp, a, b: xp.left_shift(a, b)))
RSHIFT = op("bitwise_right_shift", promote=True, method=True, operators=("__rshift__", "__rrshift__"))(
    _integer("rshift", lambda xp, a, b: xp.right_shift(a, b)))


@op("nextafter", promote=True, method=True)
def NEXTAFTER(xp, a, b):
    return xp.nextafter(a, b)


# --- composed ------------------------------------------------------------------------------------------------

def addbmm(self, batch1, batch2, *, beta=1, alpha=1):
    prod = (batch1 @ batch2).sum(0)
    return prod * alpha if beta == 0 else self * beta + prod * alpha


def addmv(self, mat, vec, *, beta=1, alpha=1):
    prod = mat @ vec
    return prod * alpha if beta == 0 else self * beta + prod * alpha


def addr(self, vec1, vec2, *, beta=1, alpha=1):
    if vec1.ndim != 1 or vec2.ndim != 1:
        raise RuntimeError(f"addr: Expected 1-D argument vec1, but got {vec1.ndim}-D" if vec1.ndim != 1 else
                           f"addr: Expected 1-D argument vec2, but got {vec2.ndim}-D")
    prod = vec1.unsqueeze(1) * vec2.unsqueeze(0)
    return prod * alpha if beta == 0 else self * beta + prod * alpha


@torch_op("argwhere")
def argwhere(self):
    return self.nonzero()


@torch_op("signbit")
def signbit(self):
    if not self.dtype.is_floating_point:
        return self < 0
    return (self < 0) | ((self == 0) & ((1.0 / self.detach()) < 0))


def copysign(self, other):
    if not isinstance(other, Tensor):
        neg = other < 0 or (other == 0 and math.copysign(1.0, other) < 0)
        a = self.abs() if self.dtype.is_floating_point else self.abs().to(D.float32)
        return -a if neg else a
    a = self.abs() if self.dtype.is_floating_point else self.abs().to(D.get_default_dtype())
    return where(other.signbit(), -a, a)


@torch_op("ldexp")
def ldexp(self, other):
    out = self * (2.0 ** other if not isinstance(other, Tensor) else other.to(D.float32).exp2())
    return out


@torch_op("diagflat")
def diagflat(self, offset=0):
    return self.flatten().diag(offset)


@torch_op("inner")
def inner(self, other):
    if self.ndim == 0 or other.ndim == 0:
        return self * other
    if self.shape[-1] != other.shape[-1]:
        raise RuntimeError(f"inner() the last dimension must match on both input tensors but got shapes "
                           f"{list(self.shape)} and {list(other.shape)}")
    k = self.shape[-1]
    out = self.reshape(-1, k) @ other.reshape(-1, k).transpose(0, 1)
    return out.reshape(tuple(self.shape[:-1]) + tuple(other.shape[:-1]))


@torch_op("kron")
def kron(self, other):
    n = max(self.ndim, other.ndim)
    a = self.reshape((1,) * (n - self.ndim) + tuple(self.shape))
    b = other.reshape((1,) * (n - other.ndim) + tuple(other.shape))
    ai, bi = [], []
    for i in range(n):
        ai += [a.shape[i], 1]
        bi += [1, b.shape[i]]
    out = a.reshape(ai) * b.reshape(bi)
    return out.reshape([a.shape[i] * b.shape[i] for i in range(n)])


_vi = return_types       # torch.return_types: (values, indices), as max(dim) and sort give


def _cum_ext(name, better):
    def fn(self, dim):
        d = dim % max(self.ndim, 1)
        arr = self.detach().cpu().numpy() if self.ndim else self.detach().cpu().numpy().reshape(1)
        arr = np.moveaxis(arr, d, -1)
        idx = np.zeros(arr.shape, dtype=np.int64)
        if arr.shape[-1]:
            best = arr[..., 0].copy()
            for i in range(1, arr.shape[-1]):
                v = arr[..., i]
                take = better(v, best) | np.isnan(v) | (np.isnan(best) & False)
                take &= ~np.isnan(best) | np.isnan(v)
                best = np.where(take, v, best)
                idx[..., i] = np.where(take, i, idx[..., i - 1])
        idx = np.moveaxis(idx, -1, d).reshape(tuple(self.shape))
        it = tensor(idx, device=self.device)
        return _vi(self.gather(d, it) if self.ndim else self.clone(), it)
    fn.__name__ = name
    return fn


cummax = torch_op("cummax")(_cum_ext("cummax", lambda v, best: v >= best))
cummin = torch_op("cummin")(_cum_ext("cummin", lambda v, best: v <= best))


@torch_op("logcumsumexp")
def logcumsumexp(self, dim):
    m = self.detach().amax(dim, keepdim=True) if self.numel() else self.detach()
    m = where(m.isinf(), m * 0, m)
    return (self - m).exp().cumsum(dim).log() + m


@torch_op("kthvalue")
def kthvalue(self, k, dim=-1, keepdim=False):
    n = self.shape[dim] if self.ndim else 1
    if not 1 <= k <= n:
        raise RuntimeError(f"kthvalue(): selected number k out of range for dimension {dim}")
    vals, idx = self.sort(dim) if self.ndim else (self, None)
    if idx is None:
        return _vi(self.clone(), self.new_zeros((), dtype=D.int64))
    v, i = vals.narrow(dim, k - 1, 1), idx.narrow(dim, k - 1, 1)
    if not keepdim:
        v, i = v.squeeze(dim), i.squeeze(dim)
    return _vi(self.gather(dim, i.unsqueeze(dim) if not keepdim else i).reshape(v.shape), i)


def _quantile(self, q, dim, keepdim, interpolation, nan):
    name = "nanquantile" if nan else "quantile"
    if interpolation not in ("linear", "lower", "higher", "midpoint", "nearest"):
        raise RuntimeError(f"{name}() interpolation must be one of linear, lower, higher, midpoint or nearest. "
                           f"Got {interpolation}")
    if not self.dtype.is_floating_point:
        raise RuntimeError(f"{name}() input tensor must be either float or double dtype")
    scalar_q = not isinstance(q, Tensor)
    qs = [float(q)] if scalar_q else [float(v) for v in q.detach().cpu().numpy().reshape(-1)]
    if any(not 0 <= v <= 1 for v in qs):
        raise RuntimeError(f"{name}() q values must be in the range [0, 1]")
    x = self.flatten() if dim is None else self
    d = 0 if dim is None else dim % max(x.ndim, 1)
    if x.ndim == 0:
        x, d = x.reshape(1), 0
    srt = x.sort(d)[0]                       # NaN sorts last
    n = srt.shape[d]
    valid = (~srt.isnan()).sum(d, keepdim=True) if nan else None
    outs = []
    for qv in qs:
        if nan:
            rank = (valid - 1).clamp(min=0).to(srt.dtype) * qv
        else:
            rank = srt.new_full([1] * srt.ndim, (n - 1) * qv)
        lo, hi = rank.floor(), rank.ceil()
        if interpolation == "lower":
            hi = lo
        elif interpolation == "higher":
            lo = hi
        elif interpolation == "nearest":
            lo = hi = rank.round()
        shape = list(srt.shape)
        shape[d] = 1
        li = lo.to(D.int64).expand(*shape).clamp(0, n - 1)
        hi_i = hi.to(D.int64).expand(*shape).clamp(0, n - 1)
        a, b = srt.gather(d, li), srt.gather(d, hi_i)
        w = 0.5 if interpolation == "midpoint" else (rank - lo)
        r = a + (b - a) * w if interpolation in ("linear", "midpoint") else a
        if not nan:
            has_nan = srt.isnan().any(d, keepdim=True)
            r = where(has_nan, srt.new_full([1] * srt.ndim, float("nan")), r)
        else:
            r = where(valid == 0, srt.new_full([1] * srt.ndim, float("nan")), r)
        if dim is None:
            r = r.reshape(()) if not keepdim else r.reshape([1] * self.ndim)
        elif not keepdim:
            r = r.squeeze(d) if self.ndim else r.reshape(())
        outs.append(r)
    if scalar_q:
        return outs[0]
    return stack(outs).reshape(tuple(q.shape) + tuple(outs[0].shape))


@torch_op("quantile")
def quantile(self, q, dim=None, keepdim=False, *, interpolation="linear"):
    return _quantile(self, q, dim, keepdim, interpolation, False)


@torch_op("nanquantile")
def nanquantile(self, q, dim=None, keepdim=False, *, interpolation="linear"):
    return _quantile(self, q, dim, keepdim, interpolation, True)


def new(self, *args, **kwargs):
    """torch's legacy constructor: `x.new()` empty, `x.new(2, 3)` / `x.new(size)` uninitialised, `x.new(data)`
    a tensor of x's dtype and device."""
    if len(args) == 1 and isinstance(args[0], (list, np.ndarray)) and not all(isinstance(v, int) for v in
                                                                                 np.asarray(args[0]).reshape(-1)):
        return self.new_tensor(args[0], **kwargs)
    if len(args) == 1 and isinstance(args[0], Tensor):
        return args[0].to(self.dtype)
    if len(args) == 1 and isinstance(args[0], (tuple, list)):
        args = tuple(args[0])
    return self.new_empty(tuple(args) if args else (0,), **kwargs)


@torch_op("cov")
def cov(self, *, correction=1, fweights=None, aweights=None):
    if self.ndim > 2:
        raise ValueError(f"cov(): expected input to have two or fewer dimensions but got an input with "
                         f"{self.ndim} dimensions")
    x = self.reshape(1, -1) if self.ndim < 2 else self
    if not (x.dtype.is_floating_point or x.dtype.is_complex):
        x = x.to(D.get_default_dtype())
    n = x.shape[1]
    w = None
    real = x.dtype.to_real()        # the weights are real, a complex input's too
    if fweights is not None:
        w = fweights.to(real)
    if aweights is not None:
        w = aweights.to(real) if w is None else w * aweights
    if w is None:
        wsum = float(n)
        avg = x.mean(1, keepdim=True)
        norm = wsum - correction
    else:
        wsum = w.sum()
        avg = (x * w).sum(1, keepdim=True) / wsum
        if aweights is None or correction == 0:
            norm = wsum - correction
        else:
            norm = wsum - correction * (w * aweights).sum() / wsum
    xc = x - avg
    xw = xc if w is None else xc * w
    c = (xw @ xc.transpose(0, 1).conj() if hasattr(xc, "conj") else xw @ xc.transpose(0, 1)) / (
        norm.clamp(min=0) if isinstance(norm, Tensor) else max(norm, 0))
    return c.squeeze() if self.ndim < 2 else c


@torch_op("corrcoef")
def corrcoef(self):
    c = cov(self)
    if c.ndim == 0:
        return c / c
    d = c.diagonal()
    s = (d.real if d.is_complex() else d).sqrt()        # torch: the standard deviations from the real diagonal
    c = c / s.unsqueeze(1) / s.unsqueeze(0)
    if c.is_complex():          # each part clipped to [-1, 1], as torch's
        return c.real.clamp(-1, 1) + c.imag.clamp(-1, 1) * 1j     # (clipped parts: the sum is exact)
    return c.clamp(-1, 1)


def select_scatter(self, src, dim, index):
    d = dim % self.ndim
    n = self.shape[d]
    if not -n <= index < n:
        raise IndexError(f"select(): index {index} out of range for tensor of size {list(self.shape)} at "
                         f"dimension {dim}")
    shape = [1] * self.ndim
    shape[d] = n
    mask = (arange(n, device=self.device) == index % n).reshape(shape)
    return where(mask, src.unsqueeze(d).to(self.dtype), self)


@torch_op("slice_scatter")
def slice_scatter(self, src, dim=0, start=None, end=None, step=1):
    d = dim % self.ndim
    idx = list(range(self.shape[d]))[slice(start, end, step)]
    shape = [1] * self.ndim
    shape[d] = len(idx)
    it = tensor(idx, dtype=D.int64, device=self.device).reshape(shape).expand(*src.shape)
    return self.scatter(d, it, src.to(self.dtype))


def diagonal_scatter(self, src, offset=0, dim1=0, dim2=1):
    """torch.diagonal_scatter: a copy of self with src on its diagonal (offset, dim1, dim2): the clone's diagonal
    view written in place, so the gradient splits as torch's DiagonalScatterBackward0 (src: the gradient's
    diagonal; self: the gradient with that diagonal zeroed)."""
    with record_range("diagonal_scatter", "op", (self, src)):
        out = self.clone()
        d = out.diagonal(offset, dim1, dim2)
        if tuple(src.shape) != tuple(d.shape):
            raise RuntimeError(f"expected src to have a size equal to the slice of self. src size = "
                               f"{list(src.shape)}, slice size = {list(d.shape)}")
        d.copy_(src)
        return out


def _flat_index(self, indices):
    idx = broadcast_tensors(*indices)
    lin = None
    for i, t in enumerate(idx):
        t = t.to(D.int64)
        t = where(t < 0, t + self.shape[i], t)
        lin = t if lin is None else lin * self.shape[i] + t
    return lin


def index_put(self, indices, values, accumulate=False):
    indices = tuple(indices)
    if not accumulate:
        out = self.clone()
        out[indices] = values
        return out
    flat_idx = []
    for t in indices:                        # a bool mask stands for the index tensors of its nonzeros
        flat_idx += list(t.nonzero(as_tuple=True)) if t.dtype is D.bool_ else [t]
    if len(flat_idx) > self.ndim:
        raise IndexError(f"too many indices for tensor of dimension {self.ndim} (got {len(flat_idx)})")
    k = len(flat_idx)
    rest = tuple(self.shape[k:])
    lin = _flat_index(self, flat_idx)
    vals = values.to(self.dtype) if isinstance(values, Tensor) else self.new_full((), values)
    vals = vals.expand(*(tuple(lin.shape) + rest))
    out = self.reshape((-1,) + rest).index_add(0, lin.reshape(-1), vals.reshape((-1,) + rest))
    return out.reshape(tuple(self.shape))


def index_put_(self, indices, values, accumulate=False):
    return self.copy_(index_put(self, indices, values, accumulate))


def put(self, index, source, accumulate=False):
    n = self.numel()
    idx = index.reshape(-1).to(D.int64)
    if idx.numel() and (int(idx.max()) >= n or int(idx.min()) < -n):
        raise IndexError(f"out of range: tried to access index {int(idx.max())} on a tensor of {n} elements.")
    idx = where(idx < 0, idx + n, idx)
    src = source.reshape(-1).to(self.dtype)
    flat = self.reshape(-1)
    out = flat.index_add(0, idx, src) if accumulate else flat.index_copy(0, idx, src)
    return out.reshape(tuple(self.shape))


def put_(self, index, source, accumulate=False):
    return self.copy_(put(self, index, source, accumulate))


def renorm(self, p, dim, maxnorm):
    d = dim % self.ndim
    dims = [i for i in range(self.ndim) if i != d]
    norm = self.abs().pow(p).sum(dims, keepdim=True).pow(1.0 / p) if dims else self.abs()
    factor = where(norm > maxnorm, maxnorm / (norm + 1e-7), norm * 0 + 1)
    return self * factor


@torch_op("fill_diagonal_")
def fill_diagonal_(self, fill_value, wrap=False):
    if self.ndim < 2:
        raise RuntimeError("dimensions must larger than 1")
    if self.ndim > 2 and len(set(self.shape)) != 1:
        raise RuntimeError("all dimensions of input must be of equal length")
    idx = [arange(s, device=self.device) for s in self.shape]
    if self.ndim == 2:
        r = idx[0].reshape(-1, 1)
        c = idx[1].reshape(1, -1)
        h, w = self.shape
        if wrap and h > w + 1:
            mask = (r % (w + 1)) == c
        else:
            mask = r == c
        return self.copy_(where(mask, self.new_full((), fill_value), self))
    mask = None
    for i in range(1, self.ndim):
        shp = [1] * self.ndim
        shp[i] = self.shape[i]
        shp0 = [1] * self.ndim
        shp0[0] = self.shape[0]
        m = idx[0].reshape(shp0) == idx[i].reshape(shp)
        mask = m if mask is None else mask & m
    return self.copy_(where(mask, self.new_full((), fill_value), self))


def geometric_(self, p, *, generator=None):
    u = self.new_empty(tuple(self.shape), dtype=D.float64).uniform_(generator=generator) if generator else \
        self.new_empty(tuple(self.shape), dtype=D.float64).uniform_()
    return self.copy_(((1 - u).log() / math.log1p(-p)).ceil().clamp(min=1))


def log_normal_(self, mean=1, std=2, *, generator=None):
    z = self.new_empty(tuple(self.shape)).normal_(mean, std, generator=generator) if generator else \
        self.new_empty(tuple(self.shape)).normal_(mean, std)
    return self.copy_(z.exp())


def cauchy_(self, median=0, sigma=1, *, generator=None):
    u = self.new_empty(tuple(self.shape)).uniform_(generator=generator) if generator else \
        self.new_empty(tuple(self.shape)).uniform_()
    return self.copy_(((u - 0.5) * math.pi).tan() * sigma + median)


def nonzero_static(self, *, size, fill_value=-1):
    nz = self.nonzero()
    k = nz.shape[0]
    if k >= size:
        return nz[:size].clone()
    pad = nz.new_full((size - k, nz.shape[1]), fill_value)
    return cat([nz, pad], 0)


def is_distributed(self):
    return False


def resolve_conj(self):
    """torch's resolve_conj / resolve_neg: the tensor itself where no lazy conjugate or negation is pending,
    which is always so for tensorlib's real tensors."""
    return self


def is_conj(self):
    return False


def as_subclass(self, cls):
    """torch's Tensor.as_subclass: the same data (and autograd history) viewed as an instance of `cls`, a subclass
    of Tensor, without a copy."""
    if not (isinstance(cls, type) and issubclass(cls, Tensor)):
        raise TypeError(f"as_subclass(): argument 'cls' must be a subclass of Tensor, not "
                        f"{getattr(cls, '__name__', cls)}")
    out = self.view_as(self)
    out.__class__ = cls
    return out


COMPOSED_MORE = dict(
    addbmm=addbmm, addmv=addmv, addr=addr, argwhere=argwhere, signbit=signbit, copysign=copysign, ldexp=ldexp,
    diagflat=diagflat, inner=inner, kron=kron, cummax=cummax, cummin=cummin, logcumsumexp=logcumsumexp,
    kthvalue=kthvalue, quantile=quantile, nanquantile=nanquantile, new=new, cov=cov, corrcoef=corrcoef,
    select_scatter=select_scatter, slice_scatter=slice_scatter, index_put=index_put, index_put_=index_put_,
    put=put, put_=put_, renorm=renorm, fill_diagonal_=fill_diagonal_, geometric_=geometric_,
    log_normal_=log_normal_, cauchy_=cauchy_, nonzero_static=nonzero_static, is_distributed=is_distributed,
    diagonal_scatter=diagonal_scatter, resolve_conj=torch_op("resolve_conj")(resolve_conj),
    resolve_neg=alias("resolve_neg", resolve_conj), is_conj=is_conj,
    is_neg=is_conj, as_subclass=as_subclass,
)

_DECLARED = methods()
for _n, _f in COMPOSED_MORE.items():
    if _n not in _DECLARED and not hasattr(Tensor, _n):
        public(_f, name=_n, function=False, method=True)
COMPOSED_MORE["unsafe_split_with_sizes"] = _DECLARED["split_with_sizes"]
public(_DECLARED["split_with_sizes"], name="unsafe_split_with_sizes", function=False, method=True)
for _base in ("addbmm", "addmv", "addr", "copysign", "ldexp", "renorm", "gcd", "lcm", "bitwise_left_shift",
              "bitwise_right_shift", "nextafter"):
    public(_inplace(_base), name=_base + "_", function=False, method=True)

