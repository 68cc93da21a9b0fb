"""The dispatcher's single-hook path (in tensorlib/dispatch.py `_dispatch_full`, taken whenever
exactly one op hook is registered, as under profile()) sees the same phases and sequence numbers as
the general path with several hooks."""
from __future__ import annotations

import tensorlib as tl
from tensorlib import dispatch


class Log(dispatch.Hook):
    def __init__(self):
        self.seen = []

    def op_enter(self, op, inputs, attrs, phase, seq):
        self.seen.append((op.name, phase, seq))
        return len(self.seen)

    def op_exit(self, token, outputs):
        self.seen.append(("exit", token, outputs is not None))


def _work():
    x = tl.ones(3, requires_grad=True)
    (x * 2).sum().backward()


def _normalise(seen):
    base = min(s for n, p, s in (e for e in seen if e[0] != "exit") if s >= 0)
    return [(e[0], e[1], e[2] - base if e[0] != "exit" and e[2] >= 0 else e[2]) for e in seen]


def test_one_hook_and_two_hooks_see_the_same_calls():
    one = Log()
    dispatch.add_hook(one)
    try:
        _work()
    finally:
        dispatch.remove_hook(one)
    a, b = Log(), Log()
    dispatch.add_hook(a)
    dispatch.add_hook(b)
    try:
        _work()
    finally:
        dispatch.remove_hook(b)
        dispatch.remove_hook(a)
    assert _normalise(one.seen) == _normalise(a.seen) == _normalise(b.seen)
    phases = {(n, p) for n, p, *_ in one.seen if n != "exit"}
    assert ("mul", "forward") in phases and ("mul", "backward") in phases
    fwd_mul = [s for n, p, s in one.seen if n == "mul" and p == "forward"][0]
    assert [s for n, p, s in one.seen if n == "mul" and p == "backward"] == [fwd_mul]


def test_exit_is_called_when_the_op_raises():
    h = Log()
    dispatch.add_hook(h)
    try:
        try:
            tl.ones(2, 3) @ tl.ones(2, 3)
        except RuntimeError:
            pass
    finally:
        dispatch.remove_hook(h)
    assert h.seen[-2][0] == "matmul"
    assert h.seen[-1] == ("exit", len(h.seen) - 1, False)      # matmul's token, no output
