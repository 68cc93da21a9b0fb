"""Run by test_module_api_against_torch.py: argv[1] "torch" or "tensorlib"."""

import sys
import warnings

if sys.argv[1] == "torch":
    import torch
    import torch.nn as nn
else:
    import tensorlib as torch
    from tensorlib import nn


class M(nn.Module):
    def forward(self, x, y, k=3):
        return x * 2, y * 3


m = M()
m.register_full_backward_pre_hook(lambda mod, go: print("pre", go))
m.register_full_backward_hook(lambda mod, gi, go: print("hook", gi, go))
x = torch.ones(2, requires_grad=True)
y = torch.ones(2)
a, b = m(x, y)
print(a.grad_fn.name(), b.grad_fn, b.requires_grad)
a.sum().backward()
print(x.grad)
x = torch.ones(2, requires_grad=True)
y = torch.ones(2, requires_grad=True)
a, b = m(x, y)
a.sum().backward()
print("--- no input requires grad")


class L(nn.Module):
    def __init__(s):
        super().__init__()
        s.w = nn.Parameter(torch.ones(2))

    def forward(s, x):
        return x * s.w


l = L()
l.register_full_backward_hook(lambda mod, gi, go: print("hookL", gi, go))
with warnings.catch_warnings(record=True) as w:
    warnings.simplefilter("always")
    l(torch.ones(2)).sum().backward()
    print([str(i.message)[:80] for i in w], [i.filename == __file__ for i in w])
print("--- inplace")


class InplaceFwd(nn.Module):
    def forward(s, x):
        return x.relu_()


i = InplaceFwd()
i.register_full_backward_hook(lambda *a: None)
try:
    i(torch.ones(2, requires_grad=True) * 1)
except Exception as e:  # noqa: BLE001  (the error text is what is compared)
    print(type(e).__name__, e)


class I2(nn.Module):
    def forward(s, x):
        return x


i = I2()
i.register_full_backward_hook(lambda *a: None)
o = i(torch.ones(2, requires_grad=True) * 1)
try:
    o.mul_(2)
except Exception as e:  # noqa: BLE001  (the error text is what is compared)
    print(type(e).__name__, e)
print(o.grad_fn.name())
print("--- deprecated")
with warnings.catch_warnings(record=True) as w:
    warnings.simplefilter("always")
    l2 = L()
    l2.register_backward_hook(lambda mod, gi, go: print("old", gi, go))
    l2(torch.ones(2, requires_grad=True)).sum().backward()
    print([str(i.message) for i in w], [i.filename == __file__ for i in w])
try:
    l2.register_full_backward_hook(lambda *a: None)
except Exception as e:  # noqa: BLE001  (the error text is what is compared)
    print(type(e).__name__, e)
print("--- replace grads")
x = torch.ones(2, requires_grad=True)
l3 = L()
l3.register_full_backward_pre_hook(lambda mod, go: (go[0] * 10,))
l3.register_full_backward_hook(lambda mod, gi, go: print("l3", gi, go) or (gi[0] + 1,))
l3(x).sum().backward()
print(x.grad, l3.w.grad)
