"""Run by test_module_api_against_torch.py: argv[1] "torch" or "tensorlib"."""

import sys
import warnings
from collections import OrderedDict

if sys.argv[1] == "torch":
    import torch
    import torch.nn as nn
else:
    import tensorlib as torch
    from tensorlib import nn
ev = []


def keys(sd):
    return list(sd.keys())


class Extra(nn.Module):
    def __init__(s):
        super().__init__()
        s.lin = nn.Linear(2, 2)
        s.counter = 7

    def get_extra_state(s):
        return {"counter": s.counter}

    def set_extra_state(s, st):
        ev.append(f"set_extra {st}")
        s.counter = st["counter"]


class Old(nn.Module):
    _version = 3

    def __init__(s):
        super().__init__()
        s.w = nn.Parameter(torch.ones(2))
        s.register_buffer("b", torch.zeros(1), persistent=False)

    def _load_from_state_dict(s, sd, prefix, meta, strict, missing, unexpected, errors):
        ev.append(f"Old load prefix={prefix!r} meta={dict(meta)} strict={strict} keys={sorted(sd)}")
        if prefix + "weight_old" in sd:
            sd[prefix + "w"] = sd.pop(prefix + "weight_old")
        super()._load_from_state_dict(sd, prefix, meta, strict, missing, unexpected, errors)

    def _save_to_state_dict(s, dest, prefix, keep_vars):
        super()._save_to_state_dict(dest, prefix, keep_vars)
        dest[prefix + "custom"] = torch.tensor(1.0)


class Net(nn.Module):
    def __init__(s):
        super().__init__()
        s.e = Extra()
        s.o = Old()
        s.bn = nn.BatchNorm1d(2)
        s.seq = nn.Sequential(nn.Linear(2, 1), nn.InstanceNorm1d(1, track_running_stats=True))


net = Net()
sd = net.state_dict()
ev.append(keys(sd))
ev.append(dict(sd._metadata))
ev.append(str(sd["e._extra_state"]))
net.o.register_state_dict_pre_hook(lambda m, prefix, kv: ev.append(f"sd pre {type(m).__name__} {prefix!r} {kv}"))
net.register_state_dict_post_hook(lambda m, d, prefix, meta: ev.append(f"sd post {prefix!r} {meta} {len(d)}"))
net.o._register_state_dict_hook(
    lambda m, d, prefix, meta: OrderedDict((k, v) for k, v in d.items() if k != prefix + "custom")
)
sd2 = net.state_dict(prefix="root.", keep_vars=True)
ev.append(keys(sd2))
ev.append(net.state_dict().__class__.__name__)
# load: rename old key, missing bn num_batches_tracked for version-1 metadata
sd3 = net.state_dict()
sd3["o.weight_old"] = sd3.pop("o.w")
sd3.pop("bn.num_batches_tracked")
sd3.pop("o.custom")
sd3._metadata["bn"]["version"] = 1
net.bn.num_batches_tracked.fill_(5)
net.register_load_state_dict_pre_hook(
    lambda m, sd, prefix, *a: ev.append(f"load pre {type(m).__name__} {prefix!r} {len(sd)}")
)
net.seq.register_load_state_dict_post_hook(lambda m, ik: ev.append(f"load post {type(m).__name__} {ik}"))
r = net.load_state_dict(sd3)
ev.append(str(r))
ev.append(str(int(net.bn.num_batches_tracked)))
sd4 = net.state_dict()
sd4.pop("o.custom")
sd4.pop("e._extra_state")
sd4["zz"] = torch.ones(1)
sd4["o.nope"] = torch.ones(1)
sd4["seq.5.w"] = torch.ones(1)
try:
    net.load_state_dict(sd4)
except RuntimeError as e:
    ev.append(str(e))
ev.append(str(net.load_state_dict(sd4, strict=False)))


# 0-d vs 1-elem, shape mismatch, non-tensor
class S(nn.Module):
    def __init__(s):
        super().__init__()
        s.register_buffer("s", torch.tensor(2.0))
        s.p = nn.Parameter(torch.ones(2, 2))


m = S()
ev.append(str(m.load_state_dict({"s": torch.tensor([3.0]), "p": torch.ones(2, 2)})))
ev.append(str(float(m.s)))
try:
    m.load_state_dict({"s": torch.ones(2), "p": 3})
except RuntimeError as e:
    ev.append(str(e).replace("tensorlib", "torch"))
try:
    m.load_state_dict([1])
except TypeError as e:
    ev.append(str(e))
m2 = S()
newp = torch.full((2, 2), 4.0)
m2.load_state_dict({"s": torch.tensor(5.0), "p": newp}, assign=True)
ev.append(f"{type(m2.p).__name__} {m2.p.requires_grad} {float(m2.p.detach()[0, 0])}")
# extra state missing / unexpected
try:
    Extra().load_state_dict({"lin.weight": torch.ones(2, 2), "lin.bias": torch.ones(2)})
except RuntimeError as e:
    ev.append(str(e))
try:
    nn.Linear(1, 1).load_state_dict({"weight": torch.ones(1, 1), "bias": torch.ones(1), "_extra_state": 1})
except RuntimeError as e:
    ev.append(str(e))
# instance norm old checkpoint without metadata
inn = nn.InstanceNorm1d(2)
try:
    inn.load_state_dict({"running_mean": torch.zeros(2), "running_var": torch.ones(2)})
except RuntimeError as e:
    ev.append(str(e))
# positional state_dict args warn
with warnings.catch_warnings(record=True) as w:
    warnings.simplefilter("always")
    d = OrderedDict()
    nn.Linear(1, 1).state_dict(d, "p.")
    ev.append((keys(d), [str(x.message)[:60] for x in w], [x.category.__name__ for x in w]))
# post hook must return None
lin = nn.Linear(1, 1)
lin.register_state_dict_post_hook(lambda *a: 1)
try:
    lin.state_dict()
except RuntimeError as e:
    ev.append(str(e))
lin = nn.Linear(1, 1)
lin.register_load_state_dict_post_hook(lambda *a: 1)
try:
    lin.load_state_dict(lin.state_dict())
except AssertionError as e:
    ev.append(str(e))


def f(*a):
    pass


lin.register_state_dict_post_hook(f)
try:
    lin._register_state_dict_hook(f)
except RuntimeError as e:
    ev.append(str(e))
# set_submodule, to_empty, get_extra_state default
n2 = Net()
n2.set_submodule("seq.0", nn.Linear(2, 3))
ev.append(repr(n2.seq[0]))
for args in [("", nn.ReLU()), ("seq.0", 3), ("bn.weight", nn.ReLU()), ("seq.zz", nn.ReLU(), True), ("no.x", nn.ReLU())]:
    try:
        n2.set_submodule(*args)
    except Exception as e:  # noqa: BLE001  (the error text is what is compared)
        ev.append(f"{type(e).__name__}: {e}")
n2.set_submodule("newmod", nn.ReLU())
ev.append("newmod" in n2._modules)
try:
    nn.Linear(1, 1).get_extra_state()
except RuntimeError as e:
    ev.append(str(e)[:60])
l = nn.Linear(2, 2).to_empty(device="cpu")
ev.append((tuple(l.weight.shape), type(l.weight).__name__, l.weight.requires_grad))
print("\n".join(map(str, ev)))
