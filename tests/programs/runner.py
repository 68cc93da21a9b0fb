"""Child process of tests/programs/harness.py: `python -m tests.programs.runner spec.json`.

Runs one vendored program as `__main__` with `torch` being tensorlib (through tensorlib.compat) or torch,
observing it without editing it: every `backward()` of a 0-d tensor records the loss and the time since the
previous one; the model's first outermost call can dump or load its initial state; with rng="shared" the
random draws the programs make come from one NumPy stream, identical in both backends.
"""
from __future__ import annotations

import io
import json
import os
import pathlib
import random
import runpy
import sys
import time

import numpy as np

from safeio import read_bounded, write_bytes

STUBS = pathlib.Path(__file__).resolve().parent / "stubs"
STEP_MARK = "__runner_step_end__"


def time_kernels(acc):
    """tensorlib only: every registered op's kernel timed; acc = [ns inside kernels, kernel calls, depth]
    (a kernel calling another op's kernel counts once). Returns the timing's own cost per call in ns
    (a timed no-op against the bare no-op, best of several tries), for the caller to take out of op times."""
    from tensorlib.dispatch import registry
    pc = time.perf_counter_ns

    def wrap(kernel):
        def timed(*args, **kwargs):
            if acc[2]:
                return kernel(*args, **kwargs)
            acc[2] = 1
            t0 = pc()
            try:
                return kernel(*args, **kwargs)
            finally:
                acc[0] += pc() - t0
                acc[1] += 1
                acc[2] = 0
        return timed
    for op in registry().values():
        if op.kernel is not None:
            op.kernel = wrap(op.kernel)

    def noop(xp, x):
        return x
    probe, saved = wrap(noop), acc[:]
    bare = timed_ = float("inf")
    for _ in range(30):
        t0 = pc()
        for _ in range(1000):
            noop(None, None)
        t1 = pc()
        for _ in range(1000):
            probe(None, None)
        t2 = pc()
        bare, timed_ = min(bare, t1 - t0), min(timed_, t2 - t1)
    acc[:] = saved
    return max(0.0, (timed_ - bare) / 1000)


def toggled_on(i) -> bool:
    """Whether step i (from 0) of a toggled run (spec "toggle") is recorded: two steps recorded, two not, and so
    on. In pairs, not every other step: a program whose steps alternate in kind (nanoGPT's two micro-batches per
    optimizer step: clip_grad_norm_, the optimizer and zero_grad run in every second step) then has steps of
    each kind both recorded and not; alternating single steps put every optimizer step in the recorded ones."""
    return (i // 2) % 2 == 0


def step_events(torch, prof, spec, obs):
    """Events (ops and ranges; not memory records, not the step markers) and ops ("aten::" names) per step,
    counted from the third step's end marker to the last one (the steps the benchmarks time, their first
    two being warm-up); for tensorlib also the window's wall ns per step and the ops' self ns per step,
    and with profile="share" the ns inside kernels, the kernel calls, and the kernel timing's own cost."""
    if torch.__name__ == "torch":
        evs = [(e.name, e.time_range.start, e.time_range.end) for e in prof.events()]
        marks = sorted(s for n, s, _ in evs if n == STEP_MARK)
        if len(marks) < 4:
            return {}
        lo, hi = marks[2], marks[-1]
        sel = [n for n, s, _ in evs if lo < s <= hi and n != STEP_MARK and n != "[memory]"]
        nsteps = len(marks) - 3
        return {"events_per_step": len(sel) / nsteps,
                "ops_per_step": sum(n.startswith("aten::") for n in sel) / nsteps}
    import numpy as np
    st = prof.store
    names = np.array(st.names, dtype=object)[st.name_id] if len(st) else np.zeros(0, object)
    mark = names == STEP_MARK
    marks = np.sort(st.t0[mark])
    if len(marks) < 4:
        return {}
    lo, hi = marks[2], marks[-1]
    win = (st.t0 > lo) & (st.t0 <= hi) & ~mark
    ops = win & st.is_op()
    nsteps = len(marks) - 3
    out = {"events_per_step": int(win.sum()) / nsteps, "ops_per_step": int(ops.sum()) / nsteps,
           "window_ns_per_step": int(hi - lo) / nsteps,
           "op_self_ns_per_step": int(st.self_ns[ops].sum()) / nsteps}
    if obs.kernel_ns is not None:
        ks = obs.kernel_at_step
        calls = (ks[-1][1] - ks[2][1]) / nsteps
        out["kernel_ns_per_step"] = (ks[-1][0] - ks[2][0]) / nsteps
        out["kernel_calls_per_step"] = calls
        out["timing_ns_per_step"] = calls * obs.kernel_timing_ns
    return out


class Observer:
    def __init__(self, torch, spec):
        self.torch, self.spec = torch, spec
        self.losses, self.step_s = [], []
        self.depth, self.models = 0, []    # models: every outermost module called so far, in order
        self.marker = None              # record_function while profiled (step ends, for events per step)
        self.kernel_ns = None           # profile="share": [ns inside op kernels so far]
        self.kernel_at_step: list = []
        self.toggle = None              # spec "toggle": fn(on) turning the profiler's collection on/off
        # spec "count_calls": the outermost module calls of each step (an episode's actions), in calls_at_step
        self.calls, self.calls_at_step = 0, []
        # clock "cpu": the process's CPU time, so a shared machine's other load does not count (benchmarks)
        self.clock = time.process_time if spec.get("clock") == "cpu" else time.perf_counter
        self.t_last = self.clock()
        self._patch_backward()
        if spec["init"] and spec.get("init_at") == "optimizer":
            self._patch_optimizer()
        if (spec["init"] and spec.get("init_at") != "optimizer") or spec.get("count_calls"):
            self._patch_call()

    def _patch_backward(self):
        cls = self.torch.Tensor
        orig = cls.backward
        obs = self

        def backward(self, *args, **kwargs):
            if self.dim() == 0:
                obs.losses.append(float(self.detach().item()))
            out = orig(self, *args, **kwargs)
            now = obs.clock()
            obs.step_s.append(now - obs.t_last)
            obs.t_last = now
            obs.calls_at_step.append(obs.calls)
            obs.calls = 0
            if obs.marker is not None:      # profiled: a zero-length range marks the step's end in the trace
                with obs.marker(STEP_MARK):
                    pass
                if obs.kernel_ns is not None:
                    obs.kernel_at_step.append(tuple(obs.kernel_ns[:2]))
            if obs.toggle is not None:      # recorded and unrecorded steps alternate in pairs (toggled_on)
                obs.toggle(toggled_on(len(obs.step_s)))
            return out
        cls.backward = backward

    def _patch_call(self):
        cls = self.torch.nn.Module
        orig = cls.__call__
        obs = self
        init = self.spec["init"] and self.spec.get("init_at") != "optimizer"

        def call(self, *args, **kwargs):
            if obs.depth == 0:
                obs.calls += 1
                if init and not any(m is self for m in obs.models):
                    obs.models.append(self)
                    obs.initial_state(self, len(obs.models) - 1)
            obs.depth += 1
            try:
                return orig(self, *args, **kwargs)
            finally:
                obs.depth -= 1
        cls.__call__ = call

    def _patch_optimizer(self):
        """init_at="optimizer": the state dumped or loaded when each optimizer is built, for programs whose
        model is trained before its first outermost call (mnist_forward_forward's layers call their own
        `forward`); the parameters of its groups, in order, stand for the model."""
        cls = self.torch.optim.Optimizer
        orig = cls.__init__
        obs, built = self, []

        def init(opt, params, *args, **kwargs):
            orig(opt, params, *args, **kwargs)
            if not any(o is opt for o in built):
                built.append(opt)
                flat = [p for g in opt.param_groups for p in g["params"]]
                holder = obs.torch.nn.ParameterDict({str(i): p for i, p in enumerate(flat)})
                obs.initial_state(holder, len(built) - 1)
        cls.__init__ = init

    def initial_state(self, model, index):
        """Dump or load the state of the index-th model called (a GAN has two): the first in
        `init_file`, the others in init_file with `.{index}` before the suffix."""
        path = pathlib.Path(self.spec["init_file"])
        if index:
            path = path.with_suffix(f".{index}{path.suffix}")
        if self.spec["init"] == "dump":
            buf = io.BytesIO()
            bf16 = self.torch.bfloat16      # NumPy has none: dumped as float32 (exact), load_state_dict casts it back
            np.savez(buf, **{k: (v.detach().cpu().float() if v.dtype == bf16 else v.detach().cpu()).numpy()
                             for k, v in model.state_dict().items()})
            write_bytes(path, buf.getvalue())
        else:
            with np.load(io.BytesIO(read_bounded(path))) as z:
                state = {k: self.torch.from_numpy(z[k].copy()) for k in z.files}
            model.load_state_dict(state)


class SharedRandom:
    """randint, randperm, randn, randn_like, rand, rand_like, multinomial and dropout drawn from one NumPy
    stream, for the functions the programs and the DataLoader's samplers call; generators passed in are
    ignored."""

    def __init__(self, torch, modules, seed=0):
        self.torch, self.rng = torch, np.random.default_rng(seed)
        self.F = torch.nn.functional
        repl = {"randint": self.randint, "randperm": self.randperm, "randn": self.randn, "rand": self.rand,
                "randn_like": self.randn_like, "rand_like": self.rand_like, "multinomial": self.multinomial}
        originals = {getattr(torch, k): v for k, v in repl.items()}
        originals[self.F.dropout] = self.dropout
        for n, batched in (("dropout1d", 3), ("dropout2d", None), ("dropout3d", 5)):
            originals[getattr(self.F, n)] = self._feature_dropout(batched)
        # attention dropout is inside a fused kernel (torch's C++ one, tensorlib's op): with dropout, the
        # math path here and the shared stream's mask; without, the library's own attention
        attentions = [self.F.scaled_dot_product_attention]
        if torch.__name__ != "torch":
            from tensorlib.ops import attention
            attentions.append(attention.scaled_dot_product_attention)
        for fused in attentions:
            originals[fused] = self._shared_sdpa(fused)
        for mod in modules:
            for attr, value in list(vars(mod).items()):
                try:
                    new = originals.get(value)
                except TypeError:               # unhashable
                    continue
                if new is not None:
                    setattr(mod, attr, new)

    def _t(self, arr, dtype=None, device=None):
        t = self.torch.from_numpy(arr)
        return t.to(dtype=dtype or t.dtype, device=device or "cpu")

    @staticmethod
    def _size(size):
        return tuple(size[0]) if len(size) == 1 and isinstance(size[0], (tuple, list)) else tuple(size)

    def randint(self, *args, size=None, low=0, high=None, generator=None, dtype=None, device=None, **kw):
        if len(args) == 3:
            low, high, size = args
        elif len(args) == 2 and size is not None:     # randint(low, high, size=...) (torchvision's RandomCrop)
            low, high = args
        elif len(args) == 2:
            high, size = args
        elif len(args) == 1:
            high = args[0]
        return self._t(self.rng.integers(low, high, tuple(size)).astype(np.int64), dtype or self.torch.int64, device)

    def randperm(self, n, *, generator=None, dtype=None, device=None, **kw):
        return self._t(self.rng.permutation(n).astype(np.int64), dtype or self.torch.int64, device)

    def randn(self, *size, generator=None, dtype=None, device=None, **kw):
        return self._t(self.rng.standard_normal(self._size(size)).astype(np.float32), dtype, device)

    def rand(self, *size, generator=None, dtype=None, device=None, **kw):
        return self._t(self.rng.random(self._size(size), dtype=np.float32), dtype, device)

    def multinomial(self, input, num_samples, replacement=False, *, generator=None, out=None):
        """With replacement (Categorical.sample's draws), or one sample (word_language_model's generate.py;
        the same draw either way): one uniform per sample, found in the row's cumulative probabilities."""
        if not replacement and num_samples != 1:
            raise NotImplementedError("runner.SharedRandom.multinomial draws with replacement or one sample only")
        p = input.detach().cpu().numpy().astype(np.float64).reshape(-1, input.shape[-1])
        cum = np.cumsum(p / p.sum(-1, keepdims=True), -1)
        u = self.rng.random((p.shape[0], int(num_samples)))
        idx = np.stack([np.minimum(np.searchsorted(c, r, side="right"), len(c) - 1) for c, r in zip(cum, u)])
        return self._t(idx.reshape(*input.shape[:-1], int(num_samples)).astype(np.int64), None, input.device)

    def randn_like(self, t, *, dtype=None, **kw):
        return self._t(self.rng.standard_normal(tuple(t.shape)).astype(np.float32), dtype or t.dtype, t.device)

    def rand_like(self, t, *, dtype=None, **kw):
        return self._t(self.rng.random(tuple(t.shape), dtype=np.float32), dtype or t.dtype, t.device)

    def _shared_sdpa(self, fused):
        def sdpa(query, key, value, attn_mask=None, dropout_p=0.0, is_causal=False, scale=None, **kw):
            if dropout_p == 0:
                return fused(query, key, value, attn_mask, 0.0, is_causal, scale=scale, **kw)
            return self.sdpa(query, key, value, attn_mask, dropout_p, is_causal, scale)
        return sdpa

    def sdpa(self, query, key, value, attn_mask=None, dropout_p=0.0, is_causal=False, scale=None, enable_gqa=False):
        """torch's math path of scaled_dot_product_attention, with the shared dropout."""
        import math
        torch = self.torch
        L, S = query.size(-2), key.size(-2)
        scale = 1 / math.sqrt(query.size(-1)) if scale is None else scale
        scores = query @ key.transpose(-2, -1) * scale
        if is_causal:
            attn_mask = torch.ones(L, S, dtype=torch.bool, device=query.device).tril()
        if attn_mask is not None:
            scores = scores.masked_fill(~attn_mask, -math.inf) if attn_mask.dtype == torch.bool else scores + attn_mask
        attn = self.dropout(scores.softmax(-1), dropout_p, True)
        return attn @ value

    def dropout(self, input, p=0.5, training=True, inplace=False, mask_shape=None):
        if not training or p == 0:
            return input
        shape = tuple(input.shape) if mask_shape is None else mask_shape
        keep = (self.rng.random(shape, dtype=np.float32) >= p).astype(np.float32) / np.float32(1 - p)
        mask = self._t(keep, input.dtype, input.device)
        return input.mul_(mask) if inplace else input * mask

    def _feature_dropout(self, batched_ndim):
        """dropout1d/2d/3d as torch shapes their masks: one draw per (N, C), input of another rank than
        `batched_ndim` taken as unbatched (dropout2d: every rank as batched)."""
        def feature_dropout(input, p=0.5, training=True, inplace=False):
            shape = tuple(input.shape)
            if batched_ndim is not None and len(shape) != batched_ndim:
                shape = (1, *shape)
            mask = shape[:2] + (1,) * (len(shape) - 2)
            return self.dropout(input, p, training, inplace, mask_shape=mask[len(mask) - input.dim():])
        return feature_dropout


def sine_waves(torch):
    """time_sequence_prediction's generate_sine_wave.py with fewer, shorter waves (its N=100, L=1000 are
    constants in the file): traindata.pt, a float64 NumPy array written by torch.save."""
    np.random.seed(2)
    T, L, N = 20, 40, 8
    x = np.empty((N, L), 'int64')
    x[:] = np.array(range(L)) + np.random.randint(-4 * T, 4 * T, N).reshape(N, 1)
    with open('traindata.pt', 'wb') as f:
        torch.save(np.sin(x / 1.0 / T).astype('float64'), f)


SETUPS = {"sine_waves": sine_waves}


def _start_after(prof, cpu, step_s, skip):
    """The observer's toggle for spec "skip_steps": collection turned on once, at the end of step `skip`."""
    def toggle(_on):
        if len(step_s) == skip:
            prof.toggle_collection_dynamic(True, cpu)
    return toggle


def main(spec_path):
    spec = json.loads(read_bounded(spec_path))
    work = spec["workdir"]
    os.chdir(work)
    sys.path[:0] = [work, str(STUBS)]
    if spec["backend"] == "tensorlib":
        from tensorlib.compat import install
        install()
    import torch
    import torchvision
    torchvision.datasets.MNIST.sizes = spec["sizes"].get("mnist", torchvision.datasets.MNIST.sizes)
    torchvision.datasets.FakeData.sizes = spec["sizes"].get("fake", {})
    torchvision.datasets.CIFAR10.sizes = spec["sizes"].get("cifar10", torchvision.datasets.CIFAR10.sizes)
    if "cartpole" in spec["sizes"]:
        import gymnasium
        gymnasium.CartPole.limits = spec["sizes"]["cartpole"]
    os.environ.update(spec["sizes"].get("env", {}))
    if "serve" in spec["sizes"]:        # files the program downloads, served by the requests stand-in
        import requests
        requests.SERVED.update(spec["sizes"]["serve"])
    if "setup" in spec["sizes"]:        # data the program reads, written by this backend's torch.save
        SETUPS[spec["sizes"]["setup"]](torch)
    obs = Observer(torch, spec)
    if spec["rng"] == "shared":
        prefix = "tensorlib" if spec["backend"] == "tensorlib" else None
        mods = [m for n, m in list(sys.modules.items()) if prefix and (n == prefix or n.startswith(prefix + "."))] \
            or [torch, torch.nn.functional]
        SharedRandom(torch, mods)
    argv = spec["argv"]
    sys.argv = list(argv)
    limits = None
    if spec.get("threads"):
        from threadpoolctl import threadpool_limits
        limits = threadpool_limits(spec["threads"])
        torch.set_num_threads(spec["threads"])
    prof = None
    if spec.get("profile"):
        detailed = spec["profile"] == "detailed"
        if spec["profile"] == "share":
            obs.kernel_ns = [0, 0, 0]
            obs.kernel_timing_ns = time_kernels(obs.kernel_ns)
        obs.marker = torch.profiler.record_function
        prof = torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU], record_shapes=detailed,
                                      profile_memory=detailed)
        prof.__enter__()
        cpu = [torch.profiler.ProfilerActivity.CPU]
        if spec.get("toggle"):
            obs.toggle = lambda on: prof.toggle_collection_dynamic(on, cpu)
        elif spec.get("skip_steps"):     # recording starts after that many steps (warm-up left out of the table)
            prof.toggle_collection_dynamic(False, cpu)
            obs.toggle = _start_after(prof, cpu, obs.step_s, spec["skip_steps"])
        obs.t_last = obs.clock()
    # Python's generator and torch's, which a program may draw from unseeded (siamese_network's pairs:
    # random.randint; regression's target polynomial and batches: torch.randn), seeded: the same draws on every
    # run (Python's: on both backends too). Programs that seed them themselves do so after this.
    random.seed(0)
    torch.manual_seed(0)
    t0 = time.perf_counter()
    try:
        runpy.run_path(os.path.join(work, argv[0]), run_name="__main__")
    except SystemExit as e:
        if e.code not in (None, 0):
            raise
    finally:
        if prof is not None:
            prof.__exit__(None, None, None)
        if limits is not None:
            limits.unregister()
    wall = time.perf_counter() - t0
    counts = step_events(torch, prof, spec, obs) if prof is not None else {}
    if prof is not None and spec.get("table_file"):     # the op table, for a look by hand (sorted by self time)
        write_bytes(spec["table_file"], prof.key_averages().table(sort_by="self_cpu_time_total",
                                                                  row_limit=-1).encode())
    extra = {"calls_at_step": obs.calls_at_step} if spec.get("count_calls") else {}
    write_bytes(spec["out"], json.dumps({"losses": obs.losses, "step_s": obs.step_s, "wall_s": wall,
                                         "torch": torch.__name__, **counts, **extra}).encode())


if __name__ == "__main__":
    main(sys.argv[1])
