"""tensorlib.sparse, torch.sparse's functions on sparse COO tensors (tensorlib/ops/sparse.py has the ops):
`mm` (its sparse operand's gradient sparse, on its indices), `sum`, `softmax` / `log_softmax` over a dim
(the unspecified entries count as -inf, as torch's) and `check_sparse_tensor_invariants`."""
from __future__ import annotations

from ..ops.sparse import sparse_mm as mm, sparse_sum as sum  # noqa: A004 - torch.sparse.sum's name
from ..ops.sparse import check_sparse_tensor_invariants
from ..ops.sparse import sparse_log_softmax as log_softmax, sparse_softmax as softmax

__all__ = ["mm", "sum", "softmax", "log_softmax", "check_sparse_tensor_invariants"]
