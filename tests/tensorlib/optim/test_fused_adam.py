"""Adam/AdamW(fused=True): torch's fused CPU kernel (_fused_adam_ / _fused_adamw_), not its single-tensor loop.

torch 2.13's kernel (ATen/native/cpu/FusedAdamKernel.cpp) computes each element in float32 (bfloat16 and float16 read
into float32, each stored result rounded once) with the multiply-adds GCC built it with; devtools/torch_compat checks
the values against torch itself. Here: the same formula written out in NumPy (a fused multiply-add as a float64
product and sum rounded once to float32), the fallback where the kernel does not apply, the profile's tree.
"""
import ml_dtypes
import numpy as np
import pytest

import profiler
import tensorlib as tl
from tensorlib.ops import _fastmath

pytestmark = pytest.mark.skipif(not _fastmath.HAS_FUSED_ADAM, reason="tensorlib._cmath is not built here")

F32 = np.float32


def _fma(a, b, c):
    return (np.asarray(a, np.float64) * np.asarray(b, np.float64) + np.asarray(c, np.float64)).astype(F32)


def _reference_step(p, g, m, v, step, lr, beta1, beta2, wd, eps, adamw, lanes):
    """torch's kernel on float32 arrays (no amsgrad, no maximize): its vector loop's elements (`lanes` wide: torch's
    AVX2 build, 8 floats, 16 halves) and its scalar rest's."""
    bc1, bc2 = 1 - beta1 ** step, 1 - beta2 ** step
    w, c, b2 = F32(1 - beta1), F32(1 - beta2), F32(beta2)
    if wd:
        if adamw:
            p = p * F32(1 - lr * wd)
        else:
            g = _fma(p, F32(wd), g)
    m = _fma(w, g - m, m) if abs(w) < 0.5 else _fma(w - F32(1), g - m, g)
    cg = c * g
    v1 = _fma(cg, g, v * b2)                    # the vector loop
    v0 = _fma(v, b2, cg * g)                    # the scalar rest
    wide = p.size - p.size % lanes
    v = np.concatenate([v1[:wide], v0[wide:]])
    den = np.sqrt(v) / F32(np.sqrt(bc2)) + F32(eps)
    p = p + (F32(-(lr / bc1)) * m) / den
    return p.astype(F32), m, v


@pytest.mark.parametrize("adamw,wd", [(True, 0.1), (False, 0.1), (False, 0.0)])
def test_fused_step_is_the_kernels_formula(adamw, wd):
    rng = np.random.default_rng(3)
    lanes = 8
    for n in (5, 11, 17, 39, 1000):
        x0 = rng.standard_normal(n).astype(F32)
        grads = [(rng.standard_normal(n) * 0.1).astype(F32) for _ in range(4)]
        p = tl.nn.Parameter(tl.tensor(x0))
        opt = (tl.optim.AdamW if adamw else tl.optim.Adam)([p], lr=1e-3, betas=(0.9, 0.95), weight_decay=wd,
                                                           fused=True)
        x, m, v = x0.copy(), np.zeros(n, F32), np.zeros(n, F32)
        for t, g in enumerate(grads, 1):
            p.grad = tl.tensor(g)
            opt.step()
            x, m, v = _reference_step(x, g, m, v, t, 1e-3, 0.9, 0.95, wd, 1e-8, adamw, lanes)
        np.testing.assert_array_equal(p.detach().numpy(), x)
        np.testing.assert_array_equal(opt.state[p]["exp_avg"].numpy(), m)
        np.testing.assert_array_equal(opt.state[p]["exp_avg_sq"].numpy(), v)
        assert opt.state[p]["step"].item() == 4.0 and opt.state[p]["step"].dtype == tl.float32


def test_fused_half_parameters_round_once_per_stored_result():
    """bfloat16: the float32 formula on the widened values, each stored result rounded once (a loop that rounded each
    op, torch's single-tensor one, differs)."""
    rng = np.random.default_rng(4)
    n = 300
    x0 = rng.standard_normal(n).astype(ml_dtypes.bfloat16)
    g = (rng.standard_normal(n) * 0.1).astype(ml_dtypes.bfloat16)
    results = {}
    for fused in (True, False):
        p = tl.nn.Parameter(tl.tensor(x0.astype(F32)).to(tl.bfloat16))
        opt = tl.optim.AdamW([p], lr=1e-3, weight_decay=0.1, fused=fused)
        for _ in range(3):
            p.grad = tl.tensor(g.astype(F32)).to(tl.bfloat16)
            opt.step()
        results[fused] = p.detach().float().numpy()
    x, m, v = x0.astype(F32), np.zeros(n, F32), np.zeros(n, F32)
    lanes = 16
    for t in range(1, 4):
        x, m, v = _reference_step(x, g.astype(F32), m, v, t, 1e-3, 0.9, 0.999, 0.1, 1e-8, True, lanes)
        x, m, v = (a.astype(ml_dtypes.bfloat16).astype(F32) for a in (x, m, v))
    np.testing.assert_array_equal(results[True], x)
    assert (results[False] != results[True]).any()


def test_fused_float64_runs_the_single_tensor_loop():
    """torch's fused kernel in float64 is not this one: fused=True on float64 parameters takes the loop (its values
    equal fused=False's)."""
    rng = np.random.default_rng(5)
    x0, g = rng.standard_normal(50), rng.standard_normal(50)
    out = []
    for fused in (True, False):
        p = tl.nn.Parameter(tl.tensor(x0))
        opt = tl.optim.Adam([p], lr=1e-2, fused=fused)
        for _ in range(3):
            p.grad = tl.tensor(g)
            opt.step()
        out.append(p.detach().numpy())
    np.testing.assert_array_equal(out[0], out[1])


def test_fused_step_profile_is_torchs_tree():
    ps = [tl.nn.Parameter(tl.ones(4)) for _ in range(2)]
    opt = tl.optim.AdamW(ps, lr=1e-3, fused=True)
    for p in ps:
        p.grad = tl.ones(4)
    opt.step()
    with profiler.profile() as prof:
        opt.step()
    tree = [(e.name, e.cpu_parent.name if e.cpu_parent is not None else None) for e in prof.events()]
    per_counter = [("aten::add_", "aten::_foreach_add_"), ("aten::to", "aten::add_"), ("aten::_to_copy", "aten::to"),
                   ("aten::empty_strided", "aten::_to_copy"), ("aten::copy_", "aten::_to_copy")]
    per_item = [("aten::item", "aten::_fused_adamw_"), ("aten::_local_scalar_dense", "aten::item")]
    assert tree == [("Optimizer.step#AdamW.step", None), ("aten::_foreach_add_", "Optimizer.step#AdamW.step"),
                    *per_counter * 2, ("aten::_fused_adamw_", "Optimizer.step#AdamW.step"), *per_item * 2]
    assert [p.detach().numpy()[0] for p in ps][0] < 1.0


def test_an_op_hook_sees_the_update_as_dispatched_ops():
    """The fused kernel is no dispatched op: under an op hook that is not a profile's recorder the single-tensor
    loop runs (torch's update, its ops seen by the hook), as Adam's other C paths do."""
    from tensorlib import dispatch as D

    class Ops(D.Hook):
        def __init__(self):
            self.names = []

        def op_enter(self, op, inputs, attrs, phase, seq):
            self.names.append(op.name)

    p = tl.nn.Parameter(tl.ones(8))
    opt = tl.optim.AdamW([p], lr=1e-3, fused=True)
    p.grad = tl.ones(8)
    hook = Ops()
    D.add_hook(hook)
    try:
        opt.step()
    finally:
        D.remove_hook(hook)
    assert "lerp_" in hook.names and "addcdiv_" in hook.names
    assert p.detach().numpy()[0] < 1.0
