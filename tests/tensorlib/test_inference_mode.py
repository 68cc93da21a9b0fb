"""Inference tensors as torch has them: what an op makes inside inference_mode is marked, may be changed
in place only inside inference mode, cannot be saved for backward or require grad outside it; ops outside
on such tensors make normal tensors. (torch's messages are in tests/fuzz/test_fuzz_misuse.py.)"""
from __future__ import annotations

import threading

import pytest

import tensorlib as tl
from profiler import profile


def test_outputs_inside_are_inference_tensors_and_outside_are_not():
    with tl.inference_mode():
        t = tl.ones(3)
        parts = t.split(1)
        view = t[0]
        t.add_(1)                                   # allowed inside
    assert t.is_inference() and view.is_inference() and all(p.is_inference() for p in parts)
    assert not (t * 2).is_inference() and not tl.ones(1).is_inference()
    with pytest.raises(RuntimeError, match="Inplace update to inference tensor outside InferenceMode"):
        t.add_(1)
    with pytest.raises(RuntimeError, match="Inplace update to inference tensor outside InferenceMode"):
        t.mul_(tl.ones(3))
    with pytest.raises(RuntimeError, match="Setting requires_grad=True on inference tensor outside InferenceMode"):
        t.requires_grad_()
    w = tl.ones(3, requires_grad=True)
    (w + t).sum().backward()                       # add saves no input: allowed, as in torch
    with pytest.raises(RuntimeError, match="Inference tensors cannot be saved for backward"):
        w * t
    c = t.clone()
    (w * c).sum().backward()                       # the documented way out
    assert w.grad.tolist() == [3.0, 3.0, 3.0]


def test_marking_is_per_thread_and_survives_the_profiler():
    seen = {}
    inside, release = threading.Event(), threading.Event()

    def infer():
        with tl.inference_mode():
            inside.set()
            release.wait(5)
            seen["worker"] = tl.ones(1).is_inference()

    th = threading.Thread(target=infer)
    th.start()
    inside.wait(5)
    seen["main"] = tl.ones(1).is_inference()       # another thread in inference mode changes nothing here
    release.set()
    th.join(5)
    assert seen == {"worker": True, "main": False}
    with profile() as prof, tl.inference_mode():
        assert (tl.ones(2) + 1).is_inference()
    assert [e.name for e in prof.events()] == ["aten::ones", "aten::empty", "aten::fill_", "aten::add"]
    assert not tl.ones(1).is_inference()
