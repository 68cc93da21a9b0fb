"""gradcheck / gradgradcheck: analytic gradients against float64 central finite differences, as torch's."""
from __future__ import annotations

import numpy as np

from .._tensor import Tensor


class GradcheckError(RuntimeError):
    pass


def _inputs(inputs):
    return (inputs,) if isinstance(inputs, Tensor) else tuple(inputs)


def _outputs(out):
    return (out,) if isinstance(out, Tensor) else tuple(o for o in out if isinstance(o, Tensor))


def _numeric_jacobian(fn, inputs, i, out_idx, eps):
    # grad mode stays on: gradgradcheck's function itself runs a backward pass
    import contextlib
    no_grad = contextlib.nullcontext
    x = inputs[i]
    data = x._data
    flat = data.reshape(-1)
    with no_grad():
        base_out = _outputs(fn(*inputs))[out_idx]
    jac = np.zeros((flat.size, base_out._data.size))
    for k in range(flat.size):
        orig = flat[k].item()
        flat[k] = orig + eps
        with no_grad():
            plus = _np(_outputs(fn(*inputs))[out_idx]._data).reshape(-1).astype(np.float64)
        flat[k] = orig - eps
        with no_grad():
            minus = _np(_outputs(fn(*inputs))[out_idx]._data).reshape(-1).astype(np.float64)
        flat[k] = orig
        jac[k] = (plus - minus) / (2 * eps)
    return jac


def _np(a):
    return a if type(a) is np.ndarray else a.get()


def _analytic_jacobian(fn, inputs, out_idx, diff_idx):
    from .engine import run_backward
    from .. import ops
    out = _outputs(fn(*inputs))[out_idx]
    n_out = out._data.size
    jacs = [np.zeros((inputs[i]._data.size, n_out)) for i in diff_idx]
    if not out._requires_grad:
        return jacs, out
    for j in range(n_out):
        g = np.zeros(n_out, dtype=out._data.dtype)
        g[j] = 1
        gt = ops.tensor(g.reshape(out._data.shape), device=out.device)
        grads = run_backward((out,), (gt,), retain_graph=True, create_graph=False,
                             inputs=[inputs[i] for i in diff_idx], accumulate=False, allow_unused=True)
        for k, gi in enumerate(grads):
            if gi is not None:
                jacs[k][:, j] = _np(gi._data).reshape(-1)
    return jacs, out


def gradcheck(func, inputs, *, eps=1e-6, atol=1e-5, rtol=1e-3, raise_exception=True, nondet_tol=0.0,
              check_undefined_grad=True, fast_mode=False, masked=None):
    inputs = _inputs(inputs)
    diff_idx = [i for i, t in enumerate(inputs) if isinstance(t, Tensor) and t._requires_grad]
    if not diff_idx:
        raise ValueError("gradcheck expects at least one input tensor to require gradient, but none of the them have "
                         "requires_grad=True.")
    for i in diff_idx:
        if inputs[i]._data.dtype != np.float64:
            import warnings
            warnings.warn(f"Input #{i} requires gradient and is not a double precision floating point. "
                          "This check will likely fail if all the inputs are not of double precision floating point.",
                          UserWarning, stacklevel=2)
    n_outs = len(_outputs(func(*inputs)))
    for o in range(n_outs):
        analytic, out = _analytic_jacobian(func, inputs, o, diff_idx)
        for k, i in enumerate(diff_idx):
            numeric = _numeric_jacobian(func, inputs, i, o, eps)
            if not np.allclose(analytic[k], numeric, rtol=rtol, atol=atol):
                if not raise_exception:
                    return False
                raise GradcheckError(f"Jacobian mismatch for output {o} with respect to input {i},\n"
                                     f"numerical:{numeric}\nanalytical:{analytic[k]}\n")
    return True


def gradgradcheck(func, inputs, grad_outputs=None, *, eps=1e-6, atol=1e-5, rtol=1e-3, gen_non_contig_grad_outputs=False,
                  raise_exception=True, nondet_tol=0.0, check_undefined_grad=True, fast_mode=False, masked=False):
    """Checks second derivatives: the gradient of (outputs · grad_outputs) w.r.t. inputs, itself gradchecked."""
    from .. import ops
    from .engine import run_backward
    inputs = _inputs(inputs)
    outs = _outputs(func(*inputs))
    if grad_outputs is None:
        rng = np.random.default_rng(0)
        grad_outputs = tuple(ops.tensor(rng.standard_normal(o._data.shape), dtype=o.dtype, requires_grad=True)
                             for o in outs)
    grad_outputs = _inputs(grad_outputs)
    diff_idx = [i for i, t in enumerate(inputs) if isinstance(t, Tensor) and t._requires_grad]
    n_in = len(inputs)

    def first_grads(*args):
        # gradcheck evaluates this under no_grad for its finite differences; the first derivative still
        # needs a graph of its own, so it is taken with grad mode on
        from .grad_mode import enable_grad
        with enable_grad():
            return _first_grads(*args)

    def _first_grads(*args):
        ins, gos = args[:n_in], args[n_in:]
        o = _outputs(func(*ins))
        pairs = [(oo, g) for oo, g in zip(o, gos) if oo._requires_grad]
        gr = run_backward(tuple(p[0] for p in pairs), tuple(p[1] for p in pairs), retain_graph=True,
                          create_graph=True, inputs=[ins[i] for i in diff_idx], accumulate=False, allow_unused=True)
        return tuple(g if g is not None else ops.zeros_like(ins[i]) for g, i in zip(gr, diff_idx))

    return gradcheck(first_grads, inputs + tuple(grad_outputs), eps=eps, atol=atol, rtol=rtol,
                     raise_exception=raise_exception)
