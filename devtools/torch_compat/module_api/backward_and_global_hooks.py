"""Run by test_module_api_against_torch.py: argv[1] "torch" or "tensorlib"."""

import sys
import warnings

if sys.argv[1] == "torch":
    import torch
    import torch.nn as nn
    import torch.nn.modules.module as MM
else:
    import tensorlib as torch
    from tensorlib import nn
    import tensorlib.nn.modules.module as MM
torch.manual_seed(0)


def det(m):
    with torch.no_grad():
        for p in m.parameters():
            p.copy_(torch.linspace(-1, 1, p.numel()).reshape(p.shape))
    return m


def fmt(t):
    if t is None:
        return "None"
    if isinstance(t, (tuple, list)):
        return "(" + ", ".join(fmt(x) for x in t) + ")"
    return str([round(v, 4) for v in t.detach().reshape(-1).tolist()])


ev = []


class Block(nn.Module):
    def __init__(s):
        super().__init__()
        s.fc = nn.Linear(3, 2)
        s.act = nn.Tanh()

    def forward(s, x, scale, mask=None):
        return s.act(s.fc(x)) * scale, x.sum()


class Net(nn.Module):
    def __init__(s):
        super().__init__()
        s.b = Block()
        s.head = nn.Linear(2, 1)

    def forward(s, x):
        y, aux = s.b(x, 2.0)
        y2, _ = s.b(y.detach().repeat(1, 2)[:, :3].requires_grad_() * 1, 0.5)
        return s.head(y + y2).sum() + aux


net = det(Net())
for name, mod in net.named_modules():
    n = name or "net"
    mod.register_full_backward_pre_hook(lambda m, go, n=n: ev.append(f"pre {n} {fmt(go)}"))
    mod.register_full_backward_hook(lambda m, gi, go, n=n: ev.append(f"hook {n} gi={fmt(gi)} go={fmt(go)}"))
    mod.register_forward_pre_hook(lambda m, a, n=n: ev.append(f"fpre {n} {len(a)}"))
    mod.register_forward_hook(lambda m, a, o, n=n: ev.append(f"fhook {n}"))
x = torch.linspace(-2, 2, 12).reshape(4, 3).requires_grad_()
out = net(x)
out.backward(retain_graph=True)
ev.append("--- second backward")
out.backward()
ev.append("x.grad " + fmt(x.grad))
ev.append("--- globals")
hs = [
    MM.register_module_forward_pre_hook(lambda m, a: ev.append(f"gfpre {type(m).__name__}")),
    MM.register_module_forward_hook(lambda m, a, o: ev.append(f"gfhook {type(m).__name__}")),
    MM.register_module_full_backward_pre_hook(lambda m, go: ev.append(f"gpre {type(m).__name__} {fmt(go)}")),
    MM.register_module_full_backward_hook(lambda m, gi, go: ev.append(f"ghook {type(m).__name__} {fmt(gi)}")),
]
lin = det(nn.Linear(3, 1))
lin.register_full_backward_hook(lambda m, gi, go: ev.append("own hook"))
lin(torch.ones(1, 3, requires_grad=True)).sum().backward()
for h in hs:
    h.remove()
lin2 = nn.Linear(3, 1)
lin2(torch.ones(1, 3, requires_grad=True)).sum().backward()
ev.append("after remove " + str(MM._global_forward_hooks))
try:
    MM.register_module_backward_hook(lambda *a: None)
except RuntimeError as e:
    ev.append(str(e))
ev.append("--- registration hooks")
h1 = MM.register_module_parameter_registration_hook(lambda m, n, p: ev.append(f"param {type(m).__name__} {n}"))
h2 = MM.register_module_buffer_registration_hook(lambda m, n, b: ev.append(f"buf {type(m).__name__} {n}"))
h3 = MM.register_module_module_registration_hook(lambda m, n, s: ev.append(f"mod {type(m).__name__} {n}"))
bn = nn.BatchNorm1d(2)
seq = nn.Sequential(nn.Linear(2, 2))
seq.extra = nn.ReLU()
bn.running_mean = torch.zeros(2)
h1.remove()
h2.remove()
h3.remove()
nn.Linear(1, 1)
ev.append("--- kwargs and non-tensor args")


class K(nn.Module):
    def forward(s, a, n, b=None, *, c=None):
        return a * n + b * c, None, 3


k = K()
k.register_full_backward_hook(lambda m, gi, go: ev.append(f"K gi={fmt(gi)} go={fmt(go)}"))
k.register_full_backward_pre_hook(lambda m, go: ev.append(f"K pre {fmt(go)}"))
a = torch.ones(2, requires_grad=True)
b = torch.full((2,), 3.0, requires_grad=True)
r = k(a, 5, b=b, c=torch.full((2,), 2.0))
r[0].sum().backward()
ev.append(f"a {fmt(a.grad)} b {fmt(b.grad)}")
with warnings.catch_warnings(record=True) as w:
    warnings.simplefilter("always")

    class D(nn.Module):
        def forward(s, a):
            return {"o": a * 2}

    d = D()
    d.register_full_backward_hook(lambda *a: None)
    d(a)
    ev.append([str(i.message) for i in w])
ev.append("--- wrong count")
l = nn.Linear(2, 2)
l.register_full_backward_hook(lambda m, gi, go: (gi[0], gi[0]))
try:
    l(torch.ones(1, 2, requires_grad=True)).sum().backward()
except RuntimeError as e:
    ev.append(str(e))
l = nn.Linear(2, 2)
l.register_full_backward_pre_hook(lambda m, go: (go[0], go[0]))
try:
    l(torch.ones(1, 2, requires_grad=True)).sum().backward()
except RuntimeError as e:
    ev.append(str(e))
ev.append("--- no_grad: no hooks")
l = nn.Linear(2, 2)
l.register_full_backward_hook(lambda m, gi, go: ev.append("fired"))
with torch.no_grad():
    o = l(torch.ones(1, 2, requires_grad=True))
ev.append(str(o.grad_fn))
ev.append("--- prepend")
l = nn.Linear(2, 2)
l.register_full_backward_hook(lambda m, gi, go: ev.append("h1"))
l.register_full_backward_hook(lambda m, gi, go: ev.append("h0"), prepend=True)
l.register_full_backward_pre_hook(lambda m, go: ev.append("p1"))
l.register_full_backward_pre_hook(lambda m, go: ev.append("p0"), prepend=True)
l(torch.ones(1, 2, requires_grad=True)).sum().backward()
ev.append("--- autograd.grad")
l = det(nn.Linear(2, 1))
l.register_full_backward_hook(lambda m, gi, go: ev.append(f"g gi={fmt(gi)}"))
xi = torch.ones(1, 2, requires_grad=True)
(g,) = torch.autograd.grad(l(xi).sum(), xi)
ev.append(f"grad {fmt(g)}")
print("\n".join(map(str, ev)))
