"""Adam and AdamW (decoupled weight decay), with AMSGrad, as torch's single-tensor implementation."""
from __future__ import annotations

import numpy as np

from .. import _hooks as _H
from .. import _dtype as D
from ..dispatch import record_range, record_ran_fn, record_times, records_by_sink, records_ran
from ..ops import _fastmath as _FM
from ..ops._fastmath import MIN_SIZE as ADDC_MIN, addcdiv_
from ..ops.creation import zeros_like
from ..ops.misc import COPY_
from .._state import set_grad_mode
from ..ops.arithmetic import ADD, ADD_, DIV, MAXIMUM, MUL_
from ..ops.optim_ops import ADDCDIV_, ADDCMUL_, LERP_
from ..ops.unary_math import SQRT
from ._common import (adam_moments, check_betas, check_fused, check_lr, check_range, count_step,
                      decayed, gradient, loop_ops, lr_value, multi_tensor_ok, scalar_tensor, step_value)
from .optimizer import Optimizer

_F32, _F16 = np.dtype(np.float32), np.dtype(np.float16)
_UPDATE_OPS = (SQRT, DIV, ADD_, ADDCDIV_)     # the C update's ops (sqrt, div, add_ eps, addcdiv_), in their order

__all__ = ["Adam", "AdamW"]


def _one_copied():
    """The 1 of torch's CPU _foreach_add_ on 0-d counters, made a tensor (to -> _to_copy: empty_strided, copy_)."""
    _H.op_step("empty_strided", np.empty, (), np.float32)
    _H.op_step("copy_", _H.itself, None)


def _add_one_recorded(a):
    _H.op_step("to", _H.op_step, "_to_copy", _one_copied)
    a += 1


def _step_item(a, profiled):
    """A counter's value as torch's fused kernel reads it (state_step.item<float>()): inside item's steps under a
    profile."""
    return _H.op_step("item", _H.op_step, "_local_scalar_dense", float, a) if profiled else float(a)


class Adam(Optimizer):
    """torch.optim.Adam. Per parameter, at step t (m, v the moment estimates):

        g = g + weight_decay * p            (Adam: L2)   |   p = p * (1 - lr * weight_decay)   (AdamW)
        m = lerp(m, g, 1 - beta1)
        v = beta2 * v + (1 - beta2) * g * g
        v_max = max(v_max, v)               (amsgrad; v_max replaces v below)
        p = p - lr / (1 - beta1^t) * m / (sqrt(v) / sqrt(1 - beta2^t) + eps)
    """

    _decoupled = False

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0, amsgrad=False, *,
                 foreach=None, maximize=False, capturable=False, differentiable=False, fused=None,
                 decoupled_weight_decay=False):
        check_lr(lr)
        check_range("epsilon value", eps)
        check_betas(betas)
        check_range("weight_decay value", weight_decay)
        defaults = dict(lr=lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay, amsgrad=amsgrad,
                        maximize=maximize, foreach=foreach, capturable=capturable, differentiable=differentiable,
                        fused=fused, decoupled_weight_decay=decoupled_weight_decay or self._decoupled)
        super().__init__(params, defaults)
        check_fused(fused, differentiable, foreach)

    def _init_state(self, p, amsgrad, fused=False):
        state = self.state[p]
        if len(state) == 0:
            # (fused: torch's _get_scalar_dtype(is_fused=True), float32 whatever the default dtype)
            state["step"] = scalar_tensor(0.0, D.float32 if fused else None)
            state["exp_avg"] = zeros_like(p)
            state["exp_avg_sq"] = zeros_like(p)
            if amsgrad:
                state["max_exp_avg_sq"] = zeros_like(p)
        return state

    def step(self, closure=None):
        loss = self._closure_loss(closure)
        # the update's grad mode (_update_mode's, set without its context-manager object, as SGD.step)
        prev = set_grad_mode(bool(self.defaults.get("differentiable", False)))
        held = [None]       # the loop's `denom`, alive from group to group (see _loop)
        try:
            for group in self.param_groups:
                beta1, beta2 = group["betas"]
                lr = lr_value(group["lr"])
                wd = group["weight_decay"]
                eps = group["eps"]
                amsgrad = group["amsgrad"]
                decoupled = group.get("decoupled_weight_decay", self._decoupled)
                pairs = self._grads(group, negate=False)
                if group.get("fused") and self._fused(pairs, amsgrad, group["maximize"], lr, beta1, beta2, wd, eps,
                                                      decoupled):
                    continue
                if _FM.ADAM is not None and not amsgrad and not group["maximize"] \
                        and not group.get("differentiable"):
                    _FM.bind_adam_sqrt()
                    pairs = self._c_steps(group, pairs, held, lr, beta1, beta2, wd, eps, decoupled)
                    if not pairs:
                        continue
                if multi_tensor_ok(group, pairs):
                    self._multi_tensor_step(self._maximized(group, pairs), amsgrad, lr, beta1, beta2, wd, eps,
                                            decoupled)
                    continue
                self._loop(loop_ops(group, pairs), pairs, group["maximize"], held, amsgrad, lr, beta1, beta2, wd, eps,
                           decoupled)
        finally:
            set_grad_mode(prev)
        return loss

    def _fused(self, pairs, amsgrad, maximize, lr, beta1, beta2, wd, eps, decoupled) -> bool:
        """fused=True as torch's _fused_adam on the CPU: every step counter incremented (_foreach_add_), then each
        parameter's update in one pass of torch's fused kernel (_fused_adam_ / _fused_adamw_: float32 arithmetic,
        one rounding per stored result: _fastmath.fused_adam), each call in its op's region. False, nothing done,
        where the kernel does not take every parameter (float64, CUDA or strided tensors, numbers other than
        floats), and where an observer other than a profile watches ops (an op hook, autocast...: the kernel is no
        dispatched op, so the loop's dispatched ops run, which it sees; a profile records the regions below): the
        single-tensor loop then runs, torch's update with its roundings."""
        for h in (lr, beta1, beta2, wd, eps):
            if type(h) is not float and type(h) is not int:
                return False
        if not _FM.HAS_FUSED_ADAM:      # (tensorlib._cmath, which has the kernel, not built or turned off)
            return False
        if _H.full_path and not records_ran():      # (as _c_steps: observers the regions do not serve)
            return False
        states = []
        for p, g in pairs:
            x, y = p._data, g._data
            dt = x.dtype        # (torch's fused kernel's dtypes but float64; D.BF16 read once ml_dtypes is in)
            if type(x) is not np.ndarray or type(y) is not np.ndarray or dt != _F32 and dt != _F16 and dt != D.BF16 \
                    or y.dtype != dt or not x.flags.c_contiguous or not y.flags.c_contiguous or p._base is not None:
                return False
            st = self._init_state(p, amsgrad, fused=True)
            for key in ("exp_avg", "exp_avg_sq", "max_exp_avg_sq") if amsgrad else ("exp_avg", "exp_avg_sq"):
                a = st[key]._data       # (a loaded state may be of another dtype: the loop casts as torch's)
                if type(a) is not np.ndarray or a.dtype != dt or not a.flags.c_contiguous or st[key]._base is not None:
                    return False
            states.append(st)
        if not pairs:
            return True
        steps = [st["step"] for st in states]
        profiled = bool(_H.range_hooks)
        with record_range("_foreach_add_", "op"):          # torch._foreach_add_(state_steps, 1)
            for t in steps:
                if profiled:        # (torch's CPU fallback: an add_ per counter, the 1 made a tensor inside it)
                    _H.op_step("add_", _add_one_recorded, t._data)
                else:
                    t._data += 1
                t._version += 1
        decay = 2 if decoupled and wd != 0 else 1
        ms = [st["exp_avg"] for st in states]
        vs = [st["exp_avg_sq"] for st in states]
        mxs = [st["max_exp_avg_sq"] for st in states] if amsgrad else None
        with record_range("_fused_adamw_" if decoupled else "_fused_adam_", "op"):
            if not _FM.fused_adam([p._data for p, _ in pairs], [g._data for _, g in pairs], [t._data for t in ms],
                                  [t._data for t in vs], None if mxs is None else [t._data for t in mxs],
                                  [_step_item(t._data, profiled) for t in steps], lr, beta1, beta2, wd, eps,
                                  decoupled, maximize):
                raise RuntimeError("Adam's fused kernel did not run")     # (HAS_FUSED_ADAM checked above)
        for (p, _), m, v in zip(pairs, ms, vs):
            p._version += decay
            m._version += 1
            v._version += 2
        for mx in mxs or ():
            mx._version += 1
        return True

    def _c_steps(self, group, pairs, held, lr, beta1, beta2, wd, eps, decoupled):
        """The loop's update (without amsgrad or maximize) on tensorlib/_cmath.c's step, one C call per parameter for
        the loop's nine ops, the same values to the bit (see _cmath's adam_moments): where nothing observes ops,
        the parameters it takes (NumPy arrays of float32 or float64 of at most ADAM_MAX elements, not views,
        gradients of their dtype and shape); the pairs it leaves (larger or other parameters) are returned, for
        the paths below. Under a profile whose recorder takes ops a C loop ran (dispatch.records_ran: the op sink
        alone, or a detailed profile's recorder alone) every parameter is updated here, in order (_c_recorded):
        on the C loops, each op timed there and recorded as the dispatched loop's op would be, with
        step_t.item() between the moments and the update as in the loop; a parameter the C step does not take
        runs the loop. Other observers (op hooks, autocast...): the pairs, untouched."""
        for h in (lr, beta1, beta2, wd, eps):      # numbers (a tensor lr is a float here already: lr_value)
            if type(h) is not float and type(h) is not int:
                return pairs
        if _H.full_path:
            if not records_ran():
                return pairs
            self._c_recorded(group, pairs, held, lr, beta1, beta2, wd, eps, decoupled)
            return []
        step = _FM.ADAM.adam_step
        rest = []
        decay = 2 if decoupled and wd != 0 else 1
        for p, grad in pairs:
            st, m, v = self._c_state(p)
            if st is not None \
                    and step(p._data, grad._data, m._data, v._data, st._data, lr, wd, decoupled, beta1, beta2, eps):
                st._version += 1
                p._version += decay
                m._version += 1
                v._version += 2
            else:
                rest.append((p, grad))
        return rest

    def _c_state(self, p, state=None):
        """(step, exp_avg, exp_avg_sq) of parameter p for the C step (made at its first step, as the loop makes
        them), or three Nones where p or one of them is a view (its version counter is its base's). `state`: p's
        entry of self.state where the caller has it (a lookup keyed by a tensor calls its __hash__)."""
        if state is None:
            state = self.state[p]
        if not state:
            state = self._init_state(p, False)
        st, m, v = state["step"], state["exp_avg"], state["exp_avg_sq"]
        if p._base is None and m._base is None and v._base is None and st._base is None:
            return st, m, v
        return None, None, None

    def _c_recorded(self, group, pairs, held, lr, beta1, beta2, wd, eps, decoupled):
        """_c_steps under a profile (dispatch.records_ran): each parameter's ops on the C step, each op recorded as
        the dispatched loop's. Under default options in two calls a parameter (record_times); under a detailed
        profile one record_ran per op, with the Input Shapes of the loop's operands and its temporaries' memory:
        the decayed gradient (Adam's weight decay), the sqrt and the denominator are real arrays the C step
        writes, made and dropped where the loop's are (a decayed gradient when the next parameter's gradient
        replaces it, the sqrt after the div, a denominator once the next one exists, a group's last one in the
        next group's loop: `held`), so the memory records are the loop's too. A parameter the C step does not
        take runs the loop (see _c_steps)."""
        moments, update = _FM.ADAM.adam_moments, _FM.ADAM.adam_update
        batch = records_by_sink()
        first = (ADD_, None if wd == 0 else MUL_ if decoupled else ADD, LERP_, MUL_, ADDCMUL_)
        in_c = getattr(_FM.ADAM, "adam_group", None)     # (None: an extension built before it)
        if not (batch and _H.op_steps_at is not None):
            in_c = None
        times = np.empty(10, np.int64)
        record_ran = record_ran_fn()
        decay = 2 if decoupled and wd != 0 else 1
        c = 1 - beta2
        d1 = d = None
        pairs = list(pairs)
        i = 0
        while i < len(pairs):
            if in_c is not None:    # the run of parameters the group call takes, then one the per-parameter path does
                i = self._c_group(in_c, pairs, i, first, lr, beta1, beta2, wd, eps, decoupled)
                if i == len(pairs):
                    break
            p, grad = pairs[i]
            i += 1
            g = gw = None   # (the previous parameter's decayed gradient, freed as the loop's `g` is replaced)
            st, m, v = self._c_state(p)
            x, g = p._data, grad._data
            gw = np.empty_like(x) if wd != 0 and not decoupled and not batch else None
            if st is None or not moments(x, g, m._data, v._data, st._data, lr, wd, decoupled, beta1, beta2, times, gw):
                one = [(p, grad)]
                self._loop(loop_ops(group, one), one, False, held, False, lr, beta1, beta2, wd, eps, decoupled)
                continue
            if batch:
                record_times(first, times)
            else:
                t = times.tolist()
                record_ran(ADD_, (st._data, 1), {}, None, t[0], t[1])
                if wd != 0 and decoupled:
                    record_ran(MUL_, (x, 1 - lr * wd), {}, None, t[2], t[3])
                elif wd != 0:
                    record_ran(ADD, (g, x), {"alpha": wd} if wd != 1 else {}, gw, t[2], t[3])
                    g = gw
                record_ran(LERP_, (m._data, g, 1 - beta1), {}, None, t[4], t[5])
                record_ran(MUL_, (v._data, beta2), {}, None, t[6], t[7])
                record_ran(ADDCMUL_, (v._data, g, g), {} if c == 1 else {"value": c}, None, t[8], t[9])
            st._version += 1
            m._version += 1
            v._version += 2
            step = step_value(st)                                        # step_t.item(), recorded
            if not batch:
                d1, d = np.empty_like(x), np.empty_like(x)
            if batch:
                if not update(x, m._data, v._data, step, lr, beta1, beta2, eps, times, None, None, 0):
                    raise RuntimeError("Adam's C update refused the arrays its moments took")   # (the same checks)
                record_times(_UPDATE_OPS, times)
            else:       # in two halves, so that the sqrt and the previous denominator are freed between them
                step_size = lr / (1 - beta1 ** step)
                if not update(x, m._data, v._data, step, lr, beta1, beta2, eps, times, d1, d, 1):
                    raise RuntimeError("Adam's C update refused the arrays its moments took")
                t = times.tolist()
                record_ran(SQRT, (v._data,), {}, d1, t[0], t[1])
                record_ran(DIV, (d1, (1 - beta2 ** step) ** 0.5), {}, d, t[2], t[3])
                d1 = None                   # the sqrt, freed after the div
                held[0] = d                 # the previous denominator, freed once this one exists
                update(x, m._data, v._data, step, lr, beta1, beta2, eps, times, None, d, 2)
                t = times.tolist()
                record_ran(ADD_, (d, eps), {}, None, t[4], t[5])
                record_ran(ADDCDIV_, (x, m._data, d), {} if step_size == -1 else {"value": -step_size}, None,
                           t[6], t[7])
                d = None
            p._version += decay

    def _c_group(self, in_c, pairs, i, first, lr, beta1, beta2, wd, eps, decoupled):
        """_c_recorded's default-profile loop for the pairs the C step takes, in one C call (_cmath's adam_group:
        each parameter's moments, its step_t.item() and its update, in order) and two calls that record them: the
        ops by the op sink (record_times: the same sequence numbers, parameter by parameter) and each item's
        region and read by the region hook (_hooks.op_steps_at), all at the times the C loop took. From pairs[i]
        on; returns the index of the first pair the C step refuses, or that has no state yet (its first step makes
        it in the loop's order), which the per-parameter path takes."""
        states = []
        for p, _ in pairs[i:]:      # (a parameter's first step makes its state where the loop makes it: not here)
            if p._data.size > _FM.ADAM_MAX:     # (the C step's refusal read first: the scan stops at it)
                break
            s = self.state[p]
            s = s and self._c_state(p, s)
            if not s or s[0] is None:
                break
            states.append(s)
        n = len(states)
        if n == 0:
            return i
        pairs = pairs[i:i + n]
        st, m, v = zip(*states)
        op_times, item_times = np.empty(18 * n, np.int64), np.empty(4 * n, np.int64)
        done = in_c([p._data for p, _ in pairs], [g._data for _, g in pairs], [t._data for t in m],
                      [t._data for t in v], [t._data for t in st], lr, wd, decoupled, beta1, beta2, eps, op_times,
                      item_times)
        decay = 2 if decoupled and wd != 0 else 1
        for k in range(done):
            st[k]._version += 1
            m[k]._version += 1
            v[k]._version += 2
            pairs[k][0]._version += decay
        if done:
            record_times((*first, *_UPDATE_OPS) * done, op_times[:18 * done])
            _H.op_steps_at(("item", "_local_scalar_dense") * done, item_times[:4 * done])
        return i + done

    def _loop(self, ops, pairs, maximize, held, amsgrad, lr, beta1, beta2, wd, eps, decoupled):
        """torch's single-tensor loop, op for op (see _common.Loop: dispatched, or the kernels on the arrays,
        recorded as dispatched under a profile). The loop's temporaries die where torch's would: a
        weight-decayed gradient when the next parameter's gradient replaces it, a denominator once the next
        one exists, a group's last one in the next group's loop (`held`), so that a profile_memory trace has
        the loop's frees in the loop's order."""
        run, of, wrote = ops.run, ops.of, ops.wrote
        denom = held[0]
        held[0] = None
        for p, grad in pairs:
            g = gradient(ops, grad, maximize)                            # grad = -grad if maximize
            state = self.state[p]
            if not state:       # the first step (_init_state, called only then)
                state = self._init_state(p, amsgrad)
            step_t = count_step(ops, state)                              # state["step"].add_(1)
            x = of(p)
            if wd != 0:                     # p.mul_(1 - lr * wd) if decoupled else grad = grad.add(p, alpha=wd)
                g = decayed(ops, p, g, x, lr, wd, decoupled)
            exp_avg, exp_avg_sq = state["exp_avg"], state["exp_avg_sq"]
            m, v = adam_moments(ops, g, exp_avg, exp_avg_sq, beta1, beta2)   # lerp_, mul_ + addcmul_
            wrote(step_t)
            step = step_value(step_t)
            step_size = lr / (1 - beta1 ** step)
            bias_correction2_sqrt = (1 - beta2 ** step) ** 0.5
            if amsgrad:                                                  # mx.copy_(maximum(mx, exp_avg_sq))
                mx = state["max_exp_avg_sq"]
                run(COPY_, of(mx), run(MAXIMUM, of(mx), v))
                wrote(mx)
                v = of(mx)
            denom = run(DIV, run(SQRT, v), bias_correction2_sqrt)         # (v.sqrt() / bias_correction2_sqrt)
            run(ADD_, denom, eps)                                        # .add_(eps)
            # p.addcdiv_(exp_avg, denom, value=-step_size)
            run(ADDCDIV_, x, m, denom) if step_size == -1 else run(ADDCDIV_, x, m, denom, value=-step_size)
            wrote(p)
        held[0] = denom

    def _multi_tensor_step(self, pairs, amsgrad, lr, beta1, beta2, wd, eps, decoupled):
        """The same update as the loop above, formula for formula and in the same float order (so the
        results are the same to the bit), on the NumPy arrays of the group's parameters, stage by stage
        over all of them as torch's foreach implementation: ten dispatched ops per parameter cost more
        than the arithmetic in a small model's step. Only when nothing observes ops (see
        multi_tensor_ok): under a profiler or an op hook the loop's ops run, one by one as torch's CPU
        default runs them (on the arrays, recorded, under a profile: see _loop)."""
        states = [self._init_state(p, amsgrad) for p, _ in pairs]
        for st in states:                                   # _foreach_add_(state_steps, 1)
            st["step"]._data += 1
            st["step"]._version += 1
        params = [p._data for p, _ in pairs]
        grads = [g._data for _, g in pairs]
        if wd != 0:
            if decoupled:
                for (p, _), x in zip(pairs, params):
                    x *= 1 - lr * wd                        # p.mul_(1 - lr * wd)
                    p._version += 1
            else:
                grads = [ADD.kernel(np, g, x, wd) for g, x in zip(grads, params)]     # grad.add(p, alpha=wd)
        w = 1 - beta1
        for st, g in zip(states, grads):
            LERP_.kernel(np, st["exp_avg"]._data, g, w)     # lerp_: torch's fused kernel, in place
        for st, g in zip(states, grads):
            v = st["exp_avg_sq"]._data
            v *= beta2
            ADDCMUL_.kernel(np, v, g, g, 1 - beta2)         # addcmul_: fused, in place
        # one scratch array per parameter (addcdiv_'s temporary where its one-pass loop does not apply)
        tmps = [None] * len(params)
        for (p, _), st, x, t in zip(pairs, states, params, tmps):
            step = float(st["step"]._data)
            step_size = lr / (1 - beta1 ** step)
            bias_correction2_sqrt = (1 - beta2 ** step) ** 0.5
            v = st["exp_avg_sq"]._data
            if amsgrad:
                mx = st["max_exp_avg_sq"]._data
                np.maximum(mx, v, out=mx)
                st["max_exp_avg_sq"]._version += 1
                v = mx
            denom = SQRT.kernel(np, v)                      # (the SQRT op's kernel: VML's values)
            denom /= bias_correction2_sqrt
            denom += eps
            m = st["exp_avg"]._data
            if x.size < ADDC_MIN or not addcdiv_(x, m, denom, -step_size):
                t = np.multiply(m, -step_size)              # addcdiv_: x += -step_size * m / denom
                t /= denom
                x += t
            p._version += 1
            st["exp_avg"]._version += 1
            st["exp_avg_sq"]._version += 2                 # mul_, addcmul_



class AdamW(Adam):
    """torch.optim.AdamW: Adam with decoupled weight decay (default 1e-2) applied to the weights."""

    _decoupled = True

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2, amsgrad=False, *,
                 maximize=False, foreach=None, capturable=False, differentiable=False, fused=None):
        super().__init__(params, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, amsgrad=amsgrad,
                         maximize=maximize, foreach=foreach, capturable=capturable, differentiable=differentiable,
                         fused=fused, decoupled_weight_decay=True)
