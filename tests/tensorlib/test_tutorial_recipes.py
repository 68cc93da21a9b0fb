"""What PyTorch's own recipes (pytorch/tutorials, recipes_source/recipes) use, on tensorlib: the default
device (`with torch.device(...)`, set_default_device), torch's device types tensorlib cannot hold tensors on
refused in one line, and the compat runner reporting such a gap in one line."""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import threading

import numpy as np
import pytest

import tensorlib as tl


def test_device_context_sets_where_factories_put_tensors():
    with tl.device("cpu") as d:
        assert d == tl.device("cpu")
        m = tl.nn.Linear(2, 3)
        assert m.weight.device == tl.device("cpu") and tl.get_default_device() == tl.device("cpu")
    assert tl.zeros(1).device.type == "cpu"


@pytest.mark.cuda
def test_device_context_and_set_default_device_reach_cuda():
    if not tl.cuda.is_available():
        pytest.skip("needs an NVIDIA GPU with CuPy")
    with tl.device("cuda"):
        m = tl.nn.Linear(2, 3)
        x = tl.randn(4, 2)
        assert m.weight.is_cuda and x.is_cuda and m(x).is_cuda and tl.tensor([1.0]).is_cuda
        assert tl.zeros(1, device="cpu").device.type == "cpu"        # an explicit device= wins
        assert tl.get_default_device().type == "cuda"
    assert not tl.ones(1).is_cuda
    tl.set_default_device("cuda")
    try:
        assert tl.arange(3).is_cuda and tl.as_tensor([1, 2]).is_cuda
        seen = []
        with tl.device("cpu"):                                      # a context inside the global default
            seen.append(tl.ones(1).device.type)
        t = threading.Thread(target=lambda: seen.append(tl.ones(1).device.type))
        t.start()
        t.join()
        assert seen == ["cpu", "cuda"]
    finally:
        tl.set_default_device(None)
    assert tl.get_default_device() == tl.device("cpu") and not tl.ones(1).is_cuda


def test_a_context_is_per_thread():
    seen = []
    with tl.device("cpu"):
        t = threading.Thread(target=lambda: seen.append(tl.get_default_device()))
        t.start()
        t.join()
    assert seen == [tl.device("cpu")]


@pytest.mark.parametrize("kind", ["meta", "mps", "xpu"])
def test_torch_device_types_tensorlib_lacks_are_refused_in_one_line(kind):
    d = tl.device(kind)                      # torch builds these (a script may compare device.type with them)
    assert d.type == kind and str(tl.device(f"{kind}:1")) == f"{kind}:1"
    for use in (lambda: tl.zeros(2, device=kind), lambda: tl.ones(1).to(kind), lambda: d.__enter__(),
                lambda: tl.set_default_device(kind)):
        with pytest.raises(RuntimeError, match=f"^tensorlib has no '{kind}' device: .*; use 'cpu' or 'cuda'$"):
            use()
    assert tl.get_default_device() == tl.device("cpu")
    with pytest.raises(RuntimeError, match="device type at start of device string: nosuch"):
        tl.device("nosuch")


def test_compat_reports_a_device_tensorlib_lacks_in_one_line(tmp_path):
    script = tmp_path / "shapes.py"
    script.write_text(textwrap.dedent("""
        import torch
        print("start")
        t = torch.rand(2, 3, device="meta")
    """))
    r = subprocess.run([sys.executable, "-m", "tensorlib.compat", str(script)], capture_output=True, text=True,
                       timeout=120, cwd=tmp_path)
    assert r.returncode == 1 and r.stdout == "start\n"
    assert r.stderr.strip().splitlines() == [
        "tensorlib.compat: shapes.py:4: RuntimeError: tensorlib has no 'meta' device: tensors with a shape but no "
        "data (shape inference without computing) are not supported; use 'cpu' or 'cuda'"]


def test_compat_keeps_the_traceback_of_the_scripts_own_errors(tmp_path):
    script = tmp_path / "own.py"
    script.write_text("import torch\nraise NotImplementedError('mine')\n")
    r = subprocess.run([sys.executable, "-m", "tensorlib.compat", str(script)], capture_output=True, text=True,
                       timeout=120, cwd=tmp_path)
    assert r.returncode == 1 and "Traceback" in r.stderr and "NotImplementedError: mine" in r.stderr


def test_xpu_is_absent_as_on_a_machine_without_one():
    # the profiler recipe picks its device with `elif torch.xpu.is_available()`
    assert tl.xpu.is_available() is False and tl.xpu.device_count() == 0 and tl.xpu.is_initialized() is False


def test_swap_tensors_exchanges_contents_under_every_reference():
    t1, t2 = tl.arange(2), tl.arange(3).float()
    t2.note = "mine"
    alias1, alias2 = t1, t2
    tl.utils.swap_tensors(t1, t2)
    assert alias1.tolist() == [0.0, 1.0, 2.0] and alias1.dtype == tl.float32 and alias1.note == "mine"
    assert alias2.tolist() == [0, 1] and not hasattr(alias2, "note")
    p, plain = tl.nn.Parameter(tl.ones(2)), tl.zeros(2)
    tl.utils.swap_tensors(p, plain)
    assert type(p) is tl.Tensor and not p.requires_grad and p.tolist() == [0.0, 0.0]
    assert type(plain) is tl.nn.Parameter and plain.requires_grad and plain.tolist() == [1.0, 1.0]


def test_swap_tensors_as_torch_refuses_foreign_weakrefs_and_poisons_an_old_accumulator():
    import weakref
    a, b = tl.ones(2), tl.zeros(2)
    keep = weakref.ref(a)
    with pytest.raises(RuntimeError, match="^Cannot swap t1 because it has weakref associated with it$"):
        tl.utils.swap_tensors(a, b)
    del keep
    w = tl.ones(2, requires_grad=True)
    loss = (w * 3).sum()                        # the graph holds w's AccumulateGrad
    tl.utils.swap_tensors(w, tl.full((2,), 2.0, requires_grad=True))
    with pytest.raises(RuntimeError, match="poisoned by swap_tensors"):
        loss.backward()
    (w * w).sum().backward()                    # a graph made after the swap accumulates into w
    assert w.grad.tolist() == [4.0, 4.0]
    with pytest.raises(TypeError, match="t2 must be a Tensor"):
        tl.utils.swap_tensors(w, [1.0])


def test_type_names_the_legacy_tensor_type_as_torch():
    assert tl.ones(2).type() == "tensorlib.FloatTensor" and tl.ones(2, dtype=tl.int64).type() == "tensorlib.LongTensor"
    assert tl.ones(1, dtype=tl.bool).type() == "tensorlib.BoolTensor"


def test_matmul_mm_bmm_write_into_out():
    a = tl.arange(6.0).reshape(2, 3)
    for fn, args, shape in ((tl.matmul, (a, a.T), (2, 2)), (tl.mm, (a, a.T), (2, 2)),
                            (tl.bmm, (a[None], a.T[None]), (1, 2, 2)), (tl.matmul, (a[None, None], a.T), (1, 1, 2, 2))):
        out = tl.zeros(shape)
        assert fn(*args, out=out) is out and out.tolist() == fn(*args).tolist() == (a @ a.T).reshape(shape).tolist()


def test_compat_prints_torch_names_for_dtypes_sizes_and_types(tmp_path):
    script = tmp_path / "names.py"
    script.write_text(textwrap.dedent("""
        import torch
        x = torch.ones(2, 3, dtype=torch.float64)
        print(x.dtype, x.shape, x.type(), repr(x.max(dim=0)).splitlines()[0])
        print(x)
    """))
    r = subprocess.run([sys.executable, "-m", "tensorlib.compat", str(script)], capture_output=True, text=True,
                       timeout=120, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines() == ["torch.float64 torch.Size([2, 3]) torch.DoubleTensor torch.return_types.max(",
                                     "tensor([[1., 1., 1.],", "        [1., 1., 1.]], dtype=torch.float64)"]
    assert repr(tl.float64) == "tensorlib.float64" and repr(tl.Size([2])) == "tensorlib.Size([2])"   # in-process


@pytest.mark.parametrize("values, text", [
    ([256.0, -512.0, 1024.0], "tensor([ 256., -512., 1024.])"),                     # aligned to the widest
    ([51.2, 512.0, 0.0512], "tensor([5.1200e+01, 5.1200e+02, 5.1200e-02])"),       # > 1000x apart: scientific
    ([0.5, -1.25, float("nan")], "tensor([ 0.5000, -1.2500,     nan])"),
    ([1.0, float("-inf")], "tensor([1., -inf])"),
    ([1e9, 1.0], "tensor([1.0000e+09, 1.0000e+00])"),
    ([0.0, 0.0], "tensor([0., 0.])"),
])
def test_floats_print_as_torch_formats_them(values, text):
    assert repr(tl.tensor(values)) == text


def test_large_and_empty_tensors_print_as_torch():
    assert repr(tl.arange(2000.0)).startswith("tensor([0.0000e+00, 1.0000e+00, 2.0000e+00,  ..., 1.9970e+03,")
    assert repr(tl.empty(0)) == "tensor([])" and repr(tl.empty(2, 0)) == "tensor([], size=(2, 0))"


def test_linspace_is_torchs_two_ended_fused_multiply_add():
    # torch's CPU kernel: the second half counted back from `end`, one rounding per point (values torch 2.13 gives)
    x = tl.linspace(-1, 1, 13)
    assert x[6].item() == np.float32(-2.9802322387695312e-08) and x[0].item() == -1.0 and x[12].item() == 1.0
    assert (tl.linspace(-3, 5, 10) * 1000).tolist()[3] == np.float32(-333.33331298828125)
    assert tl.linspace(0, 10, 4, dtype=tl.int64).tolist() == [0, 3, 6, 10]
    assert tl.linspace(2.0, 2.0, 1).tolist() == [2.0] and tl.linspace(0, 1, 0).shape == (0,)


def test_pointwise_losses_promote_an_integer_target_as_torch():
    # the "Neural Networks" blitz: nn.MSELoss()(float32 output, torch.arange(1, 11).view(1, -1))
    out = tl.ones(1, 10, requires_grad=True)
    target = tl.arange(1, 11).view(1, -1)
    for fn in (tl.nn.functional.mse_loss, tl.nn.functional.l1_loss, tl.nn.functional.smooth_l1_loss):
        assert fn(out, target).dtype == tl.float32
    loss = tl.nn.MSELoss()(out, target)
    loss.backward()
    assert loss.item() == 28.5 and out.grad.dtype == tl.float32
    assert tl.nn.functional.mse_loss(out.double(), target.float()).dtype == tl.float64


@pytest.mark.parametrize("source, line", [
    # the tuning guide's @torch.jit.script: tensorlib has no TorchScript compiler
    ("import torch\n\n@torch.jit.script\ndef gelu(x):\n    return x * 0.5\n",
     "prog.py:3: RuntimeError: tensorlib.jit.script is not supported"),
    # module_load_state_dict_tips: torch.load(mmap=True)
    ("import torch\ntorch.save({'a': torch.ones(1)}, 'c.pt')\nsd = torch.load('c.pt', mmap=True)\n",
     "prog.py:3: ValueError: tensorlib.load does not memory-map files; mmap=True is not supported"),
])
def test_compat_reports_a_refused_feature_in_one_line(tmp_path, source, line):
    script = tmp_path / "prog.py"
    script.write_text(source)
    r = subprocess.run([sys.executable, "-m", "tensorlib.compat", str(script)], capture_output=True, text=True,
                       timeout=120, cwd=tmp_path)
    lines = r.stderr.strip().splitlines()
    assert r.returncode == 1 and len(lines) == 1, r.stderr
    assert lines[0].startswith("tensorlib.compat: " + line)


def test_inplace_ops_in_inference_mode_leave_a_normal_tensor_normal():
    # the tuning guide: `with torch.inference_mode(): model(x)` with a BatchNorm in train mode, then train on
    bn = tl.nn.BatchNorm2d(3)
    count = tl.zeros((), dtype=tl.int64)
    with tl.inference_mode():
        bn(tl.randn(2, 3, 4, 4))
        count.add_(1)
        made = count + 1
    assert not bn.num_batches_tracked.is_inference() and not count.is_inference() and made.is_inference()
    bn(tl.randn(2, 3, 4, 4)).sum().backward()
    assert bn.num_batches_tracked.item() == 2 and bn.weight.grad is not None


def test_memory_formats_exist_and_is_contiguous_answers_for_the_actual_strides():
    x = tl.ones(2, 3, 4, 5)
    assert repr(tl.channels_last) == "tensorlib.channels_last" and isinstance(tl.channels_last, tl.memory_format)
    assert x.is_contiguous() and x.is_contiguous(memory_format=tl.contiguous_format)
    assert not x.is_contiguous(memory_format=tl.channels_last)        # tensorlib keeps row-major layouts
    assert x.permute(0, 2, 3, 1).contiguous().permute(0, 3, 1, 2).is_contiguous(memory_format=tl.channels_last)
    assert tl.ones(2, 1, 1, 1).is_contiguous(memory_format=tl.channels_last)
    y = x.to(memory_format=tl.channels_last)
    assert y.tolist() == x.tolist()
    m = tl.nn.Conv2d(3, 4, 1).to(memory_format=tl.channels_last)
    assert m(y).shape == (2, 4, 4, 5)
    with pytest.raises(TypeError, match="must be tensorlib.memory_format, not int"):
        x.is_contiguous(memory_format=3)


def test_compat_runs_pre_0_4_variable_code_as_torch_2_13_does(tmp_path):
    """The idioms of pytorch/tutorials' older NLP and examples_nn scripts (autograd.Variable around tensors and
    around targets, an LSTM tagger's printed scores, a column of a weight, `loss.data[0]`), as torch 2.13 prints
    and refuses them."""
    script = tmp_path / "legacy.py"
    script.write_text(textwrap.dedent("""
        import torch
        import torch.autograd as autograd
        import torch.nn as nn
        import torch.nn.functional as F
        from torch.autograd import Variable

        lstm = nn.LSTM(3, 3)
        out, hidden = lstm(autograd.Variable(torch.randn(5, 1, 3)))
        print(repr(out).splitlines()[-1].split("grad_fn=")[1])
        print(type(hidden).__name__, hidden[0].grad_fn.name())
        lin = nn.Linear(4, 2)
        print(next(lin.parameters())[:, 1].grad_fn.name())
        x = Variable(torch.randn(3, 4))
        target = autograd.Variable(torch.LongTensor([0, 1, 1]))
        loss = nn.NLLLoss()(F.log_softmax(lin(x), dim=1), target)
        print(loss.data.dim(), loss.requires_grad)
        print(loss.data[0])
    """))
    # this checkout's tensorlib, whatever the environment's PYTHONPATH (relative, or none) finds from tmp_path
    root = os.path.dirname(os.path.dirname(os.path.abspath(tl.__file__)))
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([root] + [p for p in [os.environ.get("PYTHONPATH")] if p]))
    r = subprocess.run([sys.executable, "-m", "tensorlib.compat", str(script)], capture_output=True, text=True,
                       timeout=120, cwd=tmp_path, env=env)
    assert r.returncode == 1, r.stderr
    assert r.stdout.splitlines() == ["<MkldnnRnnLayerBackward0>)", "tuple StackBackward0", "SelectBackward0",
                                     "0 True"], r.stderr
    assert r.stderr.strip().splitlines()[-1] == (
        "IndexError: invalid index of a 0-dim tensor. Use `tensor.item()` in Python or `tensor.item<T>()` in C++ "
        "to convert a 0-dim tensor to a number")
