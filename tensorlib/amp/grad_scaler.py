"""GradScaler: loss scaling for float16 training (torch.amp.GradScaler's API and update rule).

The loss is multiplied by a scale (init 2**16) so that small float16 gradients do not flush to zero;
`unscale_` divides the gradients back and notes any inf/NaN; `step` skips the optimizer step when one was
found; `update` halves the scale after such a step (backoff_factor) and doubles it after growth_interval
clean steps in a row. Works on CPU tensors too (GradScaler("cpu")), so the logic is testable anywhere.
"""
from __future__ import annotations

import warnings
from collections import defaultdict
from enum import Enum

from .. import _dtype as D
from .._tensor import Tensor
from ..autograd.grad_mode import no_grad

__all__ = ["GradScaler", "OptState"]


class OptState(Enum):
    READY = 0
    UNSCALED = 1
    STEPPED = 2


def _update_scale_(scale, tracker, found_inf, growth_factor, backoff_factor, growth_interval):
    """torch._amp_update_scale_ on the scale's device, without reading anything back (torch's GradScaler
    synchronises once per step, in step(); this kept update() from adding 1-3 more): back off after
    inf/NaN gradients, grow after growth_interval clean steps unless growing overflows."""
    from ..ops.creation import zeros_like
    from ..ops.comparison import isfinite, where
    bad = found_inf > 0
    successful = tracker + 1
    grow = (successful == growth_interval) & ~bad
    grown = scale * growth_factor
    scale.copy_(where(bad, scale * backoff_factor, where(grow & isfinite(grown), grown, scale)))
    tracker.copy_(where(bad | grow, zeros_like(successful), successful))


def _refresh_per_optimizer_state():
    return {"stage": OptState.READY, "found_inf_per_device": {}}


class GradScaler:
    def __init__(self, device="cuda", init_scale=2.0 ** 16, growth_factor=2.0, backoff_factor=0.5,
                 growth_interval=2000, enabled=True):
        self._device = str(device).split(":")[0]
        self._enabled = enabled
        if self._device not in ("cuda", "cpu"):
            raise ValueError(f"GradScaler: device must be 'cuda' or 'cpu', got {device!r}")
        if self._device == "cuda" and enabled:
            from .. import cuda
            if not cuda.is_available():
                warnings.warn("tensorlib.amp.GradScaler is enabled, but CUDA is not available.  Disabling.",
                              stacklevel=2)
                self._enabled = False
        if self._enabled:
            if growth_factor <= 1.0:
                raise AssertionError("The growth factor must be > 1.0.")
            if backoff_factor >= 1.0:
                raise AssertionError("The backoff factor must be < 1.0.")
            self._init_scale = init_scale
            self._scale = None
            self._growth_factor = growth_factor
            self._backoff_factor = backoff_factor
            self._growth_interval = growth_interval
            self._init_growth_tracker = 0
            self._growth_tracker = None
            self._per_optimizer_states = defaultdict(_refresh_per_optimizer_state)

    def is_enabled(self):
        return self._enabled

    # --- scale ----------------------------------------------------------------------------------
    def _lazy_init(self, dev):
        from ..ops.creation import full
        self._scale = full((), float(self._init_scale), dtype=D.float32, device=dev)
        self._growth_tracker = full((), self._init_growth_tracker, dtype=D.int32, device=dev)

    def _check(self, funcname):
        fix = "This may indicate your script did not use scaler.scale(loss or outputs) earlier in the iteration."
        if self._scale is None:
            raise AssertionError(f"Attempted {funcname} but _scale is None.  " + fix)
        return self._scale, self._growth_tracker

    def scale(self, outputs):
        """outputs * scale, for a tensor or (nested) lists/tuples of tensors."""
        if not self._enabled:
            return outputs
        if isinstance(outputs, Tensor):
            if self._scale is None:
                self._lazy_init(outputs.device)
            return outputs * self._scale.to(device=outputs.device)

        def apply(val):
            if isinstance(val, Tensor):
                if self._scale is None:
                    self._lazy_init(val.device)
                return val * self._scale.to(device=val.device)
            if isinstance(val, (list, tuple)):
                out = [apply(v) for v in val]
                return type(val)(out) if isinstance(val, list) or not hasattr(val, "_fields") else type(val)(*out)
            if hasattr(val, "__iter__") and not isinstance(val, (str, bytes)):
                return map(apply, val)
            raise ValueError("outputs must be a Tensor or an iterable of Tensors")
        return apply(outputs)

    # --- unscale / step / update ----------------------------------------------------------------
    def _unscale_grads_(self, optimizer, inv_scale, found_inf, allow_fp16):
        from ..ops.optim_ops import non_finite_check_and_unscale_
        from ..ops.misc import to
        per_device: dict = {}
        with no_grad():
            for group in optimizer.param_groups:
                for p in group["params"]:
                    g = p._grad
                    if g is None:
                        continue
                    if not allow_fp16 and g.dtype == D.float16:
                        raise ValueError("Attempting to unscale FP16 gradients.")
                    dev = str(g.device)
                    if dev not in per_device:
                        per_device[dev] = (to(found_inf, device=g.device, copy=True),
                                           to(inv_scale, device=g.device))
                    fi, inv = per_device[dev]
                    non_finite_check_and_unscale_(g, fi, inv)
        return {dev: fi for dev, (fi, _) in per_device.items()}

    def unscale_(self, optimizer):
        """Divide the optimizer's gradients by the scale (in place), e.g. before clipping them."""
        if not self._enabled:
            return
        self._check("unscale_")
        state = self._per_optimizer_states[id(optimizer)]
        if state["stage"] is OptState.UNSCALED:
            raise RuntimeError("unscale_() has already been called on this optimizer since the last update().")
        if state["stage"] is OptState.STEPPED:
            raise RuntimeError("unscale_() is being called after step().")
        from ..ops.creation import full
        with no_grad():
            inv_scale = self._scale.double().reciprocal().float()
        found_inf = full((), 0.0, dtype=D.float32, device=self._scale.device)
        state["found_inf_per_device"] = self._unscale_grads_(optimizer, inv_scale, found_inf, False)
        state["stage"] = OptState.UNSCALED

    def step(self, optimizer, *args, **kwargs):
        """unscale_ (unless already done), then optimizer.step() unless a gradient held inf/NaN.
        Returns what optimizer.step returned, or None when the step was skipped."""
        if not self._enabled:
            return optimizer.step(*args, **kwargs)
        if "closure" in kwargs:
            raise RuntimeError("Closure use is not currently supported if GradScaler is enabled.")
        self._check("step")
        state = self._per_optimizer_states[id(optimizer)]
        if state["stage"] is OptState.STEPPED:
            raise RuntimeError("step() has already been called since the last update().")
        if state["stage"] is OptState.READY:
            self.unscale_(optimizer)
        if len(state["found_inf_per_device"]) == 0:
            raise AssertionError("No inf checks were recorded for this optimizer.")
        retval = None
        if not sum(v.item() for v in state["found_inf_per_device"].values()):
            retval = optimizer.step(*args, **kwargs)
        state["stage"] = OptState.STEPPED
        return retval

    def update(self, new_scale=None):
        """Back off after a step with inf/NaN gradients, grow after growth_interval clean steps."""
        if not self._enabled:
            return
        scale, tracker = self._check("update")
        with no_grad():
            if new_scale is not None:
                if isinstance(new_scale, (float, int)) and not isinstance(new_scale, bool):
                    scale.fill_(float(new_scale))
                else:
                    reason = ("new_scale should be a float or a 1-element tensorlib.Tensor with requires_grad=False.")
                    if not isinstance(new_scale, Tensor) or new_scale.numel() != 1 or new_scale.requires_grad:
                        raise AssertionError(reason)
                    scale.copy_(new_scale.reshape(()))
            else:
                from ..ops.misc import to
                found = [to(fi, device=scale.device) for st in self._per_optimizer_states.values()
                         for fi in st["found_inf_per_device"].values()]
                if not found:
                    raise AssertionError("No inf checks were recorded prior to update.")
                _update_scale_(scale, tracker, sum(found[1:], found[0]), self._growth_factor,
                               self._backoff_factor, self._growth_interval)
        self._per_optimizer_states = defaultdict(_refresh_per_optimizer_state)

    # --- accessors and state --------------------------------------------------------------------
    def get_scale(self):
        if not self._enabled:
            return 1.0
        return float(self._init_scale) if self._scale is None else self._scale.item()

    def get_growth_factor(self):
        return self._growth_factor

    def set_growth_factor(self, new_factor):
        self._growth_factor = new_factor

    def get_backoff_factor(self):
        return self._backoff_factor

    def set_backoff_factor(self, new_factor):
        self._backoff_factor = new_factor

    def get_growth_interval(self):
        return self._growth_interval

    def set_growth_interval(self, new_interval):
        self._growth_interval = new_interval

    def _get_growth_tracker(self):
        if not self._enabled:
            return 0
        return self._init_growth_tracker if self._growth_tracker is None else int(self._growth_tracker.item())

    def state_dict(self):
        if not self._enabled:
            return {}
        return {"scale": self.get_scale(), "growth_factor": self._growth_factor,
                "backoff_factor": self._backoff_factor, "growth_interval": self._growth_interval,
                "_growth_tracker": self._get_growth_tracker()}

    def load_state_dict(self, state_dict):
        if not self._enabled:
            return
        if len(state_dict) == 0:
            raise RuntimeError("The source state dict is empty, possibly because it was saved from a disabled "
                               "instance of GradScaler.")
        self._init_scale = state_dict["scale"]
        if self._scale is not None:
            self._scale.fill_(state_dict["scale"])
        self._growth_factor = state_dict["growth_factor"]
        self._backoff_factor = state_dict["backoff_factor"]
        self._growth_interval = state_dict["growth_interval"]
        self._init_growth_tracker = state_dict["_growth_tracker"]
        if self._growth_tracker is not None:
            self._growth_tracker.fill_(state_dict["_growth_tracker"])
