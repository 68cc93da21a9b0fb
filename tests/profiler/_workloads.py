"""A tiny profiled training step shared by the profiler's tests."""
import tensorlib as tl
from profiler import profile, record_function


def profiled_step(batch=8, n_in=6, n_out=3, label="forward", **profile_kw):
    """x @ w -> relu -> sum under a user range named `label`, then backward, all inside profile(**profile_kw)."""
    x = tl.randn(batch, n_in, requires_grad=True)
    w = tl.randn(n_in, n_out, requires_grad=True)
    with profile(**profile_kw) as prof:
        with record_function(label):
            y = (x @ w).relu().sum()
        y.backward()
    return prof
