"""Sparse COO tensors, as torch's layout torch.sparse_coo: what graph networks use (a normalised adjacency
matrix times node features, pytorch/examples' gcn and gat).

A sparse tensor is a Tensor whose payload is a `tensorlib._sparse.SparseCOO` (indices, values, size). Two kinds
of op, both through the dispatcher:

- the sparse ops of their own, torch's names: `sparse_coo_tensor`, `to_dense`, `to_sparse`, `coalesce`,
  `sparse_mask`, `values`, `indices`, `_values`, `_indices`, `_sparse_mm` (torch.sparse.mm),
  `_sparse_sum` (torch.sparse.sum);
- dense ops that torch also runs on sparse operands (mm, matmul, add, mul, div, neg, sum, to, clone, detach):
  the op keeps its name (a profile shows aten::mm as torch's does) and its `sparse` OpDef gives the kernel
  and the backward its node records (`_execute.execute_sparse`, torch's SparseCPU dispatch key). Any other op
  given a sparse operand raises torch's NotImplementedError ("Could not run 'aten::exp' with arguments from
  the 'SparseCPU' backend...").

Gradients follow torch's formulas: mm's (MmBackward0) gradient for a sparse operand is dense, torch.sparse.mm's
(SparseAddmmBackward0) and to_dense's (ToDenseBackward0) are sparse, on the operand's indices. Products run on
SciPy's CSR (imported in the kernel: `import tensorlib` does not load SciPy). Sparse tensors stay on the CPU:
moving one to CUDA is refused (tensorlib has no cupyx.scipy.sparse path yet).
"""
from __future__ import annotations

from .. import _dtype as D
from .._sparse import SparseCOO, coalesce_arrays, dense_of
from ..dispatch import OpDef, record_range
from ._define import Tensor, dispatch, np, op, public
from .arithmetic import ADD, DIV, MUL
from .broadcast import add_at
from .unary_math import NEG
from .linalg import MATMUL, MM
from .creation import tensor
from .misc import _TYPE_NAMES, CLONE, DETACH, TO
from .reduce import SUM
from .shape import T

_CUDA_REFUSED = ("tensorlib: sparse COO tensors are CPU-only (no cupyx.scipy.sparse path yet); convert it with "
                 ".to_dense() before moving it to CUDA")


def _cpu(xp):
    """Sparse kernels run on NumPy (and SciPy) only: a CUDA operand is refused, saying so."""
    if xp is not np:
        raise NotImplementedError(_CUDA_REFUSED)


def _is_sparse(x) -> bool:
    return type(x) is SparseCOO


def _type_name(dt) -> str:
    return _TYPE_NAMES.get(np.dtype(dt).name, np.dtype(dt).name)


def _csr(s: SparseCOO):
    """SciPy's CSR matrix of a 2-D sparse payload (repeated indices summed, as torch's product sums them)."""
    import scipy.sparse as sp
    return sp.csr_matrix((s.values, (s.indices[0], s.indices[1])), shape=s.shape)


def _check_mm(s: SparseCOO, d, sparse_first: bool):
    if s.ndim != 2 or s.dense_dim != 0:
        raise RuntimeError(f"tensorlib: a product with a sparse tensor takes a 2-D sparse matrix without dense "
                           f"dims; got size {s.shape} with {s.dense_dim} dense dims")
    if d.ndim != 2:
        raise RuntimeError(f"{'mat2' if sparse_first else 'self'} must be a matrix")
    if s.dtype != d.dtype:
        a, b = (s.dtype, d.dtype) if sparse_first else (d.dtype, s.dtype)
        raise RuntimeError(f"expected scalar type {_type_name(a)} but found {_type_name(b)}")
    k = s.shape[1] if sparse_first else s.shape[0]
    dk = d.shape[0] if sparse_first else d.shape[1]
    if k != dk:
        if sparse_first:
            raise RuntimeError(f"addmm: Argument #3 (dense): Expected dim 0 size {k}, got {dk}")
        raise RuntimeError(f"mat1 and mat2 shapes cannot be multiplied ({d.shape[0]}x{dk} and "
                           f"{s.shape[0]}x{s.shape[1]})")


def _mm_sparse_kernel(xp, a, b):
    """A sparse matrix times a dense one, or a dense one times a sparse one: a dense result."""
    _cpu(xp)
    if _is_sparse(a) and _is_sparse(b):
        raise NotImplementedError("tensorlib: the product of two sparse tensors is not supported; convert one "
                                  "with .to_dense()")
    if _is_sparse(a):
        _check_mm(a, b, True)
        return np.asarray(_csr(a) @ b, dtype=b.dtype)
    _check_mm(b, a, False)
    return np.asarray((_csr(b).T @ a.T).T, dtype=a.dtype)


def _mm_sparse_bwd(ctx, g):
    """torch's MmBackward0 with a sparse operand: dense gradients for both (g Bᵀ, Aᵀ g), each product with the
    sparse operand on its side (Aᵀ g as (gᵀ A)ᵀ), so no sparse transpose is needed."""
    a, b = ctx.saved_inputs
    need = ctx.needs_input_grad
    if a.is_sparse:
        return (dispatch(MM, g, b.t()) if need[0] else None,
                dispatch(MM, g.t(), a).t() if need[1] else None)
    return (dispatch(MM, b, g.t()).t() if need[0] else None,
            dispatch(MM, a.t(), g) if need[1] else None)


MM.sparse = OpDef("mm", _mm_sparse_kernel, _mm_sparse_bwd, node_name="MmBackward0", save="i")
MATMUL.sparse = MM.sparse       # torch's matmul of matrices is mm (aten::matmul over aten::mm in a profile)


@op("_sparse_mm", save="i", node_name="SparseAddmmBackward0")
def SPARSE_MM(xp, a, b):
    """torch.sparse.mm: the product of mm, with a sparse gradient for the sparse operand (on its indices)."""
    return _mm_sparse_kernel(xp, a, b)


@SPARSE_MM.def_backward
def _(ctx, g):
    a, b = ctx.saved_inputs
    need = ctx.needs_input_grad
    if not a.is_sparse:
        return _mm_sparse_bwd(ctx, g)
    return (sparse_mask(dispatch(MM, g, b.t()), coalesce(a)) if need[0] else None,
            dispatch(MM, g.t(), a).t() if need[1] else None)


SPARSE_MM.sparse = SPARSE_MM


@public
def spmm(input, mat2):
    """torch.spmm: mm, for a sparse first operand."""
    return dispatch(MM, input, mat2)


def sparse_mm(mat1, mat2, reduce=None):
    """torch.sparse.mm (tensorlib.sparse.mm)."""
    if reduce is not None:
        raise NotImplementedError("tensorlib.sparse.mm: reduce= is not supported")
    if not mat1.is_sparse:
        return dispatch(MM, mat1, mat2)
    return dispatch(SPARSE_MM, mat1, mat2)


# --- elementwise: add, mul, div, neg ------------------------------------------------------------------------

def _same_size(a, b):
    if tuple(a.shape) == tuple(b.shape):
        return
    if _is_sparse(a):
        raise RuntimeError(f"add: expected sizes of 'self' and 'other' to match, but {list(a.shape)} != "
                           f"{list(b.shape)}")
    raise RuntimeError(f"add: expected 'self' and 'other' to have same size, but self has size {list(a.shape)} "
                       f"while other has size {list(b.shape)} (FYI: dense-sparse addition does not currently "
                       f"support broadcasting)")


def _result(a, b):
    return D.result_type(D.from_np(a.dtype), a.ndim == 0, D.from_np(b.dtype), b.ndim == 0).np


def _add_sparse_kernel(xp, a, b, alpha=1):
    """dense + sparse: a dense result (the values added at their indices); sparse + sparse: a sparse one (the
    two lists of nonzeros, coalesced when both were). torch refuses sparse + dense."""
    _cpu(xp)
    if not _is_sparse(b) or not hasattr(a, "ndim"):
        if _is_sparse(a) and isinstance(b, np.ndarray):
            raise RuntimeError("add(sparse, dense) is not supported. Use add(dense, sparse) instead.")
        raise NotImplementedError("Could not run 'aten::add.Tensor' with arguments from the 'SparseCPU' backend: "
                                  "tensorlib adds a sparse tensor to a tensor of its size only")
    _same_size(a, b)
    rt = _result(a, b)
    vals = b.values if alpha == 1 else b.values * alpha
    if not _is_sparse(a):
        out = a.astype(rt, copy=True)
        if b.nnz:
            add_at(np, out, tuple(b.indices), vals.astype(rt, copy=False))
        return out
    if a.sparse_dim != b.sparse_dim:
        raise RuntimeError("tensorlib: adding sparse tensors of different sparse dims is not supported")
    s = SparseCOO(np.concatenate([a.indices, b.indices], axis=1),
                  np.concatenate([a.values.astype(rt, copy=False), vals.astype(rt, copy=False)]), a.shape)
    return coalesce_arrays(np, s) if a.coalesced and b.coalesced else s


def _add_sparse_bwd(ctx, g):
    alpha = ctx.attrs.get("alpha", 1)
    need = ctx.needs_input_grad
    return (g if need[0] else None, (g if alpha == 1 else g * alpha) if need[1] else None)


ADD.sparse = OpDef("add", _add_sparse_kernel, _add_sparse_bwd, node_name="AddBackward0")


def _scalar_of(x):
    """The number a sparse tensor is scaled by: a Python number or a 0-d dense array (else None)."""
    if isinstance(x, (bool, int, float, np.generic)):
        return x
    if isinstance(x, np.ndarray) and x.ndim == 0:
        return x
    return None


def _scaled(a, b, fn, name):
    s, other = (a, b) if _is_sparse(a) else (b, a)
    k = _scalar_of(other)
    if k is None or (fn is np.divide and s is not a):
        raise NotImplementedError(f"Could not run 'aten::{name}.Tensor' with arguments from the 'SparseCPU' "
                                  f"backend: tensorlib scales a sparse tensor by a number or a 0-d tensor only")
    if isinstance(k, np.ndarray):
        rt = _result(s, k)
    else:
        rt = D.scalar_result(D.from_np(s.dtype), k).np
        if fn is np.divide and np.dtype(rt).kind in "biu":
            rt = D.get_default_dtype().np
    return s.with_values(fn(s.values.astype(rt, copy=False), k).astype(rt, copy=False))


def _mul_sparse_kernel(xp, a, b):
    _cpu(xp)
    return _scaled(a, b, np.multiply, "mul")


def _mul_sparse_bwd(ctx, g):
    a, b = ctx.saved_inputs
    need = ctx.needs_input_grad
    s_first = isinstance(a, Tensor) and a.is_sparse
    k = b if s_first else a
    ks = (g * k) if (need[0] if s_first else need[1]) else None
    kg = None
    if isinstance(k, Tensor) and (need[1] if s_first else need[0]):
        s = a if s_first else b
        kg = (g.to_dense() * s.to_dense()).sum() if g.is_sparse else (g * s.to_dense()).sum()
    return (ks, kg) if s_first else (kg, ks)


def _div_sparse_kernel(xp, a, b):
    _cpu(xp)
    return _scaled(a, b, np.divide, "div")


def _div_sparse_bwd(ctx, g):
    a, b = ctx.saved_inputs
    need = ctx.needs_input_grad
    if isinstance(b, Tensor) and need[1]:
        raise RuntimeError("tensorlib: the gradient of a sparse tensor divided by a tensor with respect to the "
                           "divisor is not supported")
    return (g / b if need[0] else None, None)


MUL.sparse = OpDef("mul", _mul_sparse_kernel, _mul_sparse_bwd, node_name="MulBackward0", save="i")
DIV.sparse = OpDef("div", _div_sparse_kernel, _div_sparse_bwd, node_name="DivBackward0", save="i")
NEG.sparse = OpDef("neg", lambda xp, a: a.with_values(-a.values), lambda ctx, g: (-g,), node_name="NegBackward0")


# --- conversions: to, clone, detach ---------------------------------------------------------------------------

def _to_sparse_kernel(xp, a, dtype=None, device=None, copy=False):
    if device is not None and device.type != "cpu":
        raise NotImplementedError(_CUDA_REFUSED)
    if dtype is not None and dtype != a.dtype:
        return a.with_values(a.values.astype(dtype))
    return SparseCOO(a.indices.copy(), a.values.copy(), a.shape, a.coalesced)


TO.sparse = OpDef("to", _to_sparse_kernel, TO.backward, node_name="ToCopyBackward0", any_device=True)
CLONE.sparse = OpDef("clone", lambda xp, a, memory_format=None: SparseCOO(a.indices.copy(), a.values.copy(),
                                                                          a.shape, a.coalesced),
                     lambda ctx, g: (g,), node_name="CloneBackward0")
DETACH.sparse = OpDef("detach", lambda xp, a: SparseCOO(a.indices, a.values, a.shape, a.coalesced))


def _t_sparse_kernel(xp, a):
    """t of a sparse matrix: its two index rows swapped (no longer sorted: uncoalesced, as torch's)."""
    if a.sparse_dim != 2 or a.dense_dim:
        raise RuntimeError(f"t() expects a tensor with <= 2 sparse and 0 dense dimensions, but got {a.sparse_dim} "
                           f"sparse and {a.dense_dim} dense dimensions")
    return SparseCOO(a.indices[::-1].copy(), a.values, a.shape[::-1], False)


T.sparse = OpDef("t", _t_sparse_kernel, lambda ctx, g: (g.t(),), node_name="TBackward0")


# --- construction and conversion ----------------------------------------------------------------------------

@op("sparse_coo_tensor", node_name="SparseCooTensorWithDimsAndTensorsBackward0", save="i")
def SPARSE_COO(xp, indices, values, size=(), is_coalesced=False):
    """torch's _sparse_coo_tensor_with_dims_and_tensors: the payload over the two arrays (shared, not copied)."""
    _cpu(xp)
    return SparseCOO(indices, values, size, is_coalesced)


@SPARSE_COO.def_backward
def _(ctx, g):
    """The values' gradient: the output's gradient at each value's index (a sparse gradient through its dense
    form; repeated indices each get the gradient of their sum)."""
    indices = ctx.saved_inputs[0]
    gd = g.to_dense() if g.is_sparse else g
    return (None, gd[tuple(indices.unbind(0))] if indices.shape[0] else gd.unsqueeze(0).expand(
        indices.shape[1], *gd.shape))


class check_sparse_tensor_invariants:
    """torch.sparse.check_sparse_tensor_invariants: a context manager and `enable()`/`disable()`/`is_enabled()`
    with torch's state. tensorlib's sparse_coo_tensor checks its indices against the size whatever the state
    (and whatever its check_invariants argument): an unchecked tensor is torch's undefined behaviour, and
    turning the check off would only trade a clear error for a wrong result."""
    _enabled = False

    def __init__(self, enable=True):
        self.state = enable
        self.saved_state = False

    @staticmethod
    def is_enabled():
        return check_sparse_tensor_invariants._enabled

    @staticmethod
    def enable():
        check_sparse_tensor_invariants._enabled = True

    @staticmethod
    def disable():
        check_sparse_tensor_invariants._enabled = False

    def __enter__(self):
        self.saved_state = check_sparse_tensor_invariants._enabled
        check_sparse_tensor_invariants._enabled = self.state
        return self

    def __exit__(self, *exc):
        check_sparse_tensor_invariants._enabled = self.saved_state


@public
def sparse_coo_tensor(indices, values, size=None, *, dtype=None, device=None, pin_memory=False,
                      requires_grad=False, check_invariants=None, is_coalesced=None):
    """torch.sparse_coo_tensor: a sparse COO tensor of `values` (nnz, *dense_shape) at `indices`
    (sparse_dim, nnz), of `size` (inferred as each sparse dim's largest index + 1 when not given). The
    arguments are checked as torch checks them, and the indices against the size always, with torch's
    check_invariants=True messages: torch leaves that check off by default and then reads out of bounds, where
    NumPy would wrap a negative index silently or fail later with its own IndexError (one min and max per
    sparse dim: cheap beside the call)."""
    if device is not None and (device.split(":")[0] if isinstance(device, str) else getattr(device, "type", "cuda")) \
            != "cpu":       # (asked before CuPy is: the refusal holds on a machine without CUDA too)
        raise NotImplementedError(_CUDA_REFUSED)
    if pin_memory:          # torch's words without a GPU; tensorlib's sparse tensors never live in pinned memory
        from .._device import cupy_or_none
        if cupy_or_none() is None:
            raise RuntimeError("pin_memory=True requires a CUDA or other accelerator backend; no pinned memory "
                               "allocator is available on this system.")
        raise NotImplementedError("sparse_coo_tensor(pin_memory=True): tensorlib's sparse tensors are not kept in "
                                  "pinned memory; pin the dense indices and values instead")
    # tensors pass through `to` (int64 indices, the values' dtype) even when it changes nothing: torch's
    # profile shows those two aten::to before aten::sparse_coo_tensor
    if not isinstance(indices, Tensor):
        indices = tensor(np.asarray(indices), dtype=D.int64)
    else:
        indices = indices.to(D.int64)
    if not isinstance(values, Tensor):
        values = tensor(values, dtype=dtype)
    else:
        values = values.to(D.to_dtype(dtype) if dtype is not None else values.dtype)
    if indices.is_sparse or values.is_sparse:
        raise RuntimeError("tensorlib.sparse_coo_tensor: indices and values must be dense tensors")
    if indices.is_cuda or values.is_cuda:
        raise NotImplementedError(_CUDA_REFUSED)
    if values.ndim == 0:
        raise RuntimeError("values must have at least one dimension (nnz, *dense_shape)")
    if size is not None and indices.ndim >= 1 and len(size) != indices.shape[0] + values.ndim - 1:
        raise RuntimeError(f"'len(size) == sparse_dim + dense_dim' is not satisfied: len(size) = {len(size)}, "
                           f"sparse_dim = {indices.shape[0]}, dense_dim = {values.ndim - 1}")
    if indices.ndim != 2:
        raise RuntimeError(f"indices must be sparse_dim x nnz, but got: {list(indices.shape)}")
    idx = indices._data
    sd, nnz = idx.shape
    if values.shape[0] != nnz:
        raise RuntimeError(f"indices and values must have same nnz, but got nnz from indices: {nnz}, nnz from "
                           f"values: {values.shape[0]}")
    if size is None:
        if nnz == 0:
            raise RuntimeError("tensorlib.sparse_coo_tensor: give the size of a tensor without nonzeros")
        size = tuple(int(m) + 1 for m in idx.max(axis=1)) + tuple(values.shape[1:])
    else:
        size = tuple(int(s) for s in size)
        if tuple(values.shape[1:]) != size[sd:]:
            raise RuntimeError(f"values has incorrect size, expected {list((nnz,) + size[sd:])}, got "
                               f"{list(values.shape)}")
    if nnz:
        lo, hi = idx.min(axis=1), idx.max(axis=1)
        for d in range(sd):
            if lo[d] < 0:
                raise RuntimeError(f"found negative index {int(lo[d])} for dim {d}")
            if hi[d] >= size[d]:
                raise RuntimeError(f"size is inconsistent with indices: for dim {d}, size is {size[d]} but found "
                                   f"index {int(hi[d])}")
    out = dispatch(SPARSE_COO, indices, values, size=size, is_coalesced=bool(is_coalesced))
    if requires_grad:
        out.requires_grad_(True)
    return out


@op("to_dense", save="i", node_name="ToDenseBackward0")
def TO_DENSE(xp, a, dtype=None, masked_grad=None):
    _cpu(xp)
    return dense_of(xp, a, dtype) if _is_sparse(a) else (a.copy() if dtype is None else a.astype(dtype))


@TO_DENSE.def_backward
def _(ctx, g):
    """torch's to_dense_backward: the gradient at the input's indices, a sparse tensor as the input is."""
    (a,) = ctx.saved_inputs
    return (sparse_mask(g, coalesce(a)) if a.is_sparse else g,)


TO_DENSE.sparse = TO_DENSE


@public(method=True)
def to_dense(self, dtype=None, *, masked_grad=None):
    """Tensor.to_dense: the dense tensor of a sparse one (repeated indices summed); a dense tensor itself."""
    if not self.is_sparse and dtype is None:
        with record_range("to_dense", "op", (self,)):      # torch's op, recorded though it returns self
            return self
    return dispatch(TO_DENSE, self, **({"dtype": D.to_dtype(dtype).np} if dtype is not None else {}))


@op("to_sparse", node_name="ToSparseBackward1")
def TO_SPARSE(xp, a, sparse_dim=None):
    """A dense array's nonzeros (over its first `sparse_dim` dims: an entry is kept when any of its dense
    part is nonzero), coalesced, as torch's _to_sparse."""
    _cpu(xp)
    if _is_sparse(a):
        return a
    sd = a.ndim if sparse_dim is None else sparse_dim
    if sd < 1 or sd > a.ndim:
        raise RuntimeError(f"sparse_dim must be in [1, {a.ndim}] for a tensor of {a.ndim} dims, got {sd}")
    mask = a != 0 if sd == a.ndim else (a != 0).any(axis=tuple(range(sd, a.ndim)))
    nz = xp.nonzero(mask)
    return SparseCOO(xp.stack(nz).astype(np.int64), a[nz], a.shape, True)


TO_SPARSE.def_backward(lambda ctx, g: (g.to_dense() if g.is_sparse else g,))
TO_SPARSE.sparse = TO_SPARSE


@public(method=True, aliases=("to_sparse_coo",), alias_regions=False)   # torch records to_sparse
def to_sparse(self, sparse_dim=None, *, layout=None, blocksize=None, dense_dim=None):
    """Tensor.to_sparse (and to_sparse_coo): the sparse COO tensor of a dense one; a sparse one itself."""
    if layout is not None and str(layout) not in ("sparse_coo", "torch.sparse_coo"):
        raise NotImplementedError(f"tensorlib: to_sparse(layout={layout}) is not supported (COO only)")
    if blocksize is not None or dense_dim is not None:
        raise NotImplementedError("tensorlib: to_sparse's blocksize and dense_dim are not supported (COO only)")
    if self.is_sparse:
        return self
    return dispatch(TO_SPARSE, self, **({"sparse_dim": int(sparse_dim)} if sparse_dim is not None else {}))


@op("coalesce", node_name="CoalesceBackward0")
def COALESCE(xp, a):
    _cpu(xp)
    if not _is_sparse(a):
        raise RuntimeError("coalesce expected sparse coordinate tensor layout but got Strided")
    return coalesce_arrays(xp, a)


COALESCE.def_backward(lambda ctx, g: (g,))
COALESCE.sparse = COALESCE


@public(function=False, method=True)
def coalesce(self):
    """Tensor.coalesce: sorted unique indices, the values of repeats summed; a coalesced tensor itself."""
    if self.is_sparse and self._data.coalesced:
        with record_range("coalesce", "op", (self,)):      # torch's composite, recorded though it returns self
            return self
    return dispatch(COALESCE, self)


@op("sparse_mask", save="i", node_name="SparseMaskBackward0")
def SPARSE_MASK(xp, a, mask):
    """A dense tensor's entries at each of a sparse mask's indices (repeated ones repeated, as torch's), a sparse
    tensor."""
    _cpu(xp)
    if not _is_sparse(mask):
        raise RuntimeError("sparse_mask expected sparse coordinate tensor layout but got Strided")
    if tuple(a.shape) != mask.shape:
        raise RuntimeError(f"sparse_mask(): operands have incompatible sizes; self has size {list(a.shape)} but "
                           f"mask has size {list(mask.shape)}")
    d = dense_of(xp, a) if _is_sparse(a) else a
    return SparseCOO(mask.indices, d[tuple(mask.indices)].astype(d.dtype, copy=True), mask.shape, mask.coalesced)


@SPARSE_MASK.def_backward
def _(ctx, g):
    """Each of the mask's entries took self's value at its index: the gradient there, summed over repeats."""
    a, mask = ctx.saved_inputs
    gd = g.to_dense() if g.is_sparse else g
    return (sparse_mask(gd, mask).to_dense() if ctx.needs_input_grad[0] else None, None)


SPARSE_MASK.sparse = SPARSE_MASK


@public(function=False, method=True)
def sparse_mask(self, mask):
    """Tensor.sparse_mask(mask): self's entries at mask's indices, a sparse tensor of mask's indices."""
    return dispatch(SPARSE_MASK, self, mask)


# --- the payload's parts ---------------------------------------------------------------------------------------

def _require_sparse(a, what):
    if not _is_sparse(a):
        raise RuntimeError(f"{what} expected sparse coordinate tensor layout but got Strided")


@op("_values")
def VALUES_(xp, a):
    _cpu(xp)
    _require_sparse(a, "_values")
    return a.values


@op("_indices")
def INDICES_(xp, a):
    _cpu(xp)
    _require_sparse(a, "_indices")
    return a.indices


@op("values", node_name="ValuesBackward0", save="i")
def VALUES(xp, a):
    _cpu(xp)
    _require_sparse(a, "values")
    if not a.coalesced:
        raise RuntimeError("Cannot get values on an uncoalesced tensor, please call .coalesce() first")
    return a.values


@VALUES.def_backward
def _(ctx, g):
    (a,) = ctx.saved_inputs
    return (dispatch(SPARSE_COO, dispatch(INDICES_, a), g, size=tuple(a.shape), is_coalesced=True),)


@op("indices")
def INDICES(xp, a):
    _cpu(xp)
    _require_sparse(a, "indices")
    if not a.coalesced:
        raise RuntimeError("Cannot get indices on an uncoalesced tensor, please call .coalesce() first")
    return a.indices


for _o in (VALUES_, INDICES_, VALUES, INDICES):
    _o.sparse = _o


@public(function=False, method=True)
def values(self):
    return dispatch(VALUES, self)


@public(function=False, method=True)
def indices(self):
    return dispatch(INDICES, self)


@public(name="_values", function=False, method=True)
def _values_method(self):
    return dispatch(VALUES_, self)


@public(name="_indices", function=False, method=True)
def _indices_method(self):
    return dispatch(INDICES_, self)


@public(name="_nnz", function=False, method=True)
def _nnz(self):
    _require_sparse(self._data, "_nnz")
    return self._data.nnz


@public(function=False, method=True)
def sparse_dim(self):
    return self._data.sparse_dim if self.is_sparse else 0


@public(function=False, method=True)
def dense_dim(self):
    return self._data.dense_dim if self.is_sparse else self.ndim


@public(function=False, method=True)
def is_coalesced(self):
    _require_sparse(self._data, "is_coalesced")
    return self._data.coalesced


# --- sums -------------------------------------------------------------------------------------------------

def _sum_sparse_kernel(xp, a, dim=None, keepdim=False, dtype=None):
    """torch's sparse sum: over every dim a dense 0-d sum; over some, the summed sparse dims' indices dropped
    (coalesced) and the dense dims' values summed, a sparse result, or a dense one when every sparse dim
    is summed."""
    _cpu(xp)
    if keepdim:
        raise RuntimeError("tensorlib: sum of a sparse tensor with keepdim=True is not supported")
    vals = a.values
    if dtype is None and vals.dtype.kind in "bui":
        dtype = np.int64
    if dtype is not None:
        vals = vals.astype(dtype)
    if dim is None:
        return np.asarray(vals.sum(dtype=vals.dtype))
    dims = sorted({d % a.ndim for d in ((dim,) if isinstance(dim, int) else dim)})
    sd = a.sparse_dim
    sdims = [d for d in dims if d < sd]
    ddims = tuple(d - sd + 1 for d in dims if d >= sd)
    if ddims:
        vals = vals.sum(axis=ddims)
    dense_shape = tuple(s for i, s in enumerate(a.shape) if i >= sd and i not in dims)
    if len(sdims) == sd:
        return np.asarray(vals.sum(axis=0))
    keep = [i for i in range(sd) if i not in sdims]
    shape = tuple(a.shape[i] for i in keep) + dense_shape
    out = SparseCOO(a.indices[keep], vals, shape, a.coalesced and not sdims)
    return coalesce_arrays(xp, out) if sdims else out


def _sum_sparse_bwd(ctx, g):
    """The gradient of each summed entry is the output's gradient where it went: unsqueezed back, expanded
    to the input's size, at the input's indices (a sparse gradient)."""
    (a,) = ctx.saved_inputs
    gd = g.to_dense() if g.is_sparse else g
    dim = ctx.attrs.get("dim")
    if dim is not None:
        for d in sorted({d % a.ndim for d in ((dim,) if isinstance(dim, int) else dim)}):
            gd = gd.unsqueeze(d)
    return (sparse_mask(gd.expand(*a.shape).to(a.dtype), coalesce(a)),)


SUM.sparse = OpDef("sum", _sum_sparse_kernel, _sum_sparse_bwd, node_name="SumBackward0", save="i")


@op("_sparse_sum", save="i", node_name="SparseSumBackward0")
def SPARSE_SUM(xp, a, dim=None, dtype=None):
    _cpu(xp)
    _require_sparse(a, "_sparse_sum")
    return _sum_sparse_kernel(xp, a, dim, False, dtype)


SPARSE_SUM.def_backward(_sum_sparse_bwd)
SPARSE_SUM.sparse = SPARSE_SUM


def sparse_sum(input, dim=None, dtype=None):
    """torch.sparse.sum (tensorlib.sparse.sum)."""
    attrs = {}
    if dim is not None:
        attrs["dim"] = dim if isinstance(dim, int) else tuple(dim)
    if dtype is not None:
        attrs["dtype"] = D.to_dtype(dtype).np
    return dispatch(SPARSE_SUM, input, **attrs)


# --- softmax over a dim -------------------------------------------------------------------------------------

def _groups(s: SparseCOO, dim: int):
    """For a softmax over sparse dim `dim`: each nonzero's group (the nonzeros that share every other sparse
    index) as an inverse index, and the number of groups."""
    others = [d for d in range(s.sparse_dim) if d != dim]
    if not others:
        return np.zeros(s.nnz, dtype=np.int64), 1
    key = np.ravel_multi_index(tuple(s.indices[others]), tuple(s.shape[d] for d in others))
    uniq, inverse = np.unique(key, return_inverse=True)
    return inverse.reshape(-1), len(uniq)


def _group_sum(x, inverse, n):
    out = np.zeros((n,) + x.shape[1:], dtype=x.dtype)
    add_at(np, out, inverse, x)
    return out[inverse]


def _softmax_values(s: SparseCOO, dim: int, log: bool):
    """The softmax (or log-softmax) of a coalesced payload's values over `dim`, the unspecified entries
    counting as -inf (so they stay out): over a sparse dim, among each group's nonzeros; over a dense dim,
    along that axis of the values."""
    v = s.values
    if dim >= s.sparse_dim:
        ax = dim - s.sparse_dim + 1
        m = v.max(axis=ax, keepdims=True) if v.size else v
        e = np.exp(v - m)
        z = e.sum(axis=ax, keepdims=True)
        return (v - m - np.log(z)) if log else e / z
    inverse, n = _groups(s, dim)
    if not s.nnz:
        return v.copy()
    m = np.full((n,) + v.shape[1:], -np.inf, dtype=v.dtype)
    np.maximum.at(m, inverse, v)
    shifted = v - m[inverse]
    e = np.exp(shifted)
    z = _group_sum(e, inverse, n)
    return (shifted - np.log(z)) if log else e / z


def _softmax_kernel(log):
    def kernel(xp, a, dim=0, dtype=None):
        _cpu(xp)
        _require_sparse(a, "_sparse_log_softmax" if log else "_sparse_softmax")
        s = a if a.coalesced else coalesce_arrays(xp, a)
        if dtype is not None:
            s = s.with_values(s.values.astype(dtype))
        if s.values.dtype.kind != "f":
            raise RuntimeError(f"\"{'log_softmax' if log else 'softmax'}\" not implemented for "
                               f"'{_type_name(s.values.dtype)}'")
        return s.with_values(_softmax_values(s, dim % s.ndim, log), coalesced=True)
    return kernel


def _softmax_backward_kernel(log):
    def kernel(xp, g, out, dim=0):
        """torch's _sparse_(log_)softmax_backward_data: the input's gradient at the output's nonzeros, from
        the output's values y and the gradient's there (gv): y (gv - Σ gv y) for softmax, gv - eʸ Σ gv for
        log-softmax, the sums over each softmax group."""
        _cpu(xp)
        gd = dense_of(xp, g) if _is_sparse(g) else g
        gv = gd[tuple(out.indices)]
        y = out.values
        dim = dim % out.ndim
        if dim >= out.sparse_dim:
            ax = dim - out.sparse_dim + 1
            r = gv - np.exp(y) * gv.sum(axis=ax, keepdims=True) if log else \
                y * (gv - (gv * y).sum(axis=ax, keepdims=True))
        else:
            inverse, n = _groups(out, dim)
            r = gv - np.exp(y) * _group_sum(gv, inverse, n) if log else y * (gv - _group_sum(gv * y, inverse, n))
        return out.with_values(r.astype(y.dtype, copy=False))
    return kernel


SPARSE_SOFTMAX_BACKWARD = op("_sparse_softmax_backward_data")(_softmax_backward_kernel(False))
SPARSE_LOG_SOFTMAX_BACKWARD = op("_sparse_log_softmax_backward_data")(_softmax_backward_kernel(True))
SPARSE_SOFTMAX = op("_sparse_softmax", save="o", node_name="SparseSoftmaxBackward0")(_softmax_kernel(False))
SPARSE_LOG_SOFTMAX = op("_sparse_log_softmax", save="o",
                        node_name="SparseLogSoftmaxBackward0")(_softmax_kernel(True))
SPARSE_SOFTMAX.def_backward(lambda ctx, g: (dispatch(SPARSE_SOFTMAX_BACKWARD, g, ctx.saved_output,
                                                     dim=ctx.attrs.get("dim", 0)),))
SPARSE_LOG_SOFTMAX.def_backward(lambda ctx, g: (dispatch(SPARSE_LOG_SOFTMAX_BACKWARD, g, ctx.saved_output,
                                                         dim=ctx.attrs.get("dim", 0)),))
for _o in (SPARSE_SOFTMAX, SPARSE_LOG_SOFTMAX, SPARSE_SOFTMAX_BACKWARD, SPARSE_LOG_SOFTMAX_BACKWARD):
    _o.sparse = _o


def sparse_softmax(input, dim, dtype=None):
    """torch.sparse.softmax (tensorlib.sparse.softmax): over `dim`, the unspecified entries as -inf."""
    return dispatch(SPARSE_SOFTMAX, input, dim=int(dim), **({"dtype": D.to_dtype(dtype).np} if dtype else {}))


def sparse_log_softmax(input, dim, dtype=None):
    """torch.sparse.log_softmax (tensorlib.sparse.log_softmax)."""
    return dispatch(SPARSE_LOG_SOFTMAX, input, dim=int(dim), **({"dtype": D.to_dtype(dtype).np} if dtype else {}))
