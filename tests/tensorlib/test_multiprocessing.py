"""tensorlib.multiprocessing: shared tensors across fork and spawn, queues, torch's spawn launcher and its errors,
Hogwild training on a shared model (pytorch/examples' mnist_hogwild, shrunk)."""
import multiprocessing as std_mp
import pickle

import numpy as np
import pytest

import tensorlib as tl
from tensorlib import nn
import tensorlib.multiprocessing as mp

from . import mp_workers as W


def test_share_memory_moves_values_in_place_and_keeps_the_tensor():
    w = tl.randn(3, 4, requires_grad=True)
    before = w.detach().numpy().copy()
    assert not w.is_shared()
    assert w.share_memory_() is w and w.is_shared()
    assert w.requires_grad and w.shape == (3, 4)
    np.testing.assert_array_equal(w.detach().numpy(), before)
    assert w[1:].is_shared()                      # a view of shared memory is shared
    t = tl.arange(12.).reshape(3, 4).t()           # a strided view: strides and values kept
    strides = t.stride()
    t.share_memory_()
    assert t.stride() == strides and t.is_shared()
    np.testing.assert_array_equal(t.numpy(), np.arange(12.).reshape(3, 4).T)


def test_plain_pickle_copies_a_shared_tensor():
    """pickle.dumps outside tensorlib.multiprocessing's reductions carries the values, as torch's plain pickle of
    a tensor does: the copy does not share the memory."""
    t = tl.ones(2).share_memory_()
    back = pickle.loads(pickle.dumps(t))
    back[0] = 5
    assert t.tolist() == [1.0, 1.0] and back.tolist() == [5.0, 1.0]


@pytest.mark.parametrize("method", ["fork", "spawn"])
def test_start_processes_write_one_shared_tensor(method):
    t = tl.zeros(4)
    t.share_memory_()
    mp.start_processes(W.add_rank, args=(t, 3), nprocs=2, start_method=method)
    np.testing.assert_array_equal(t.numpy(), np.full(4, 3 * (1 + 2), np.float32))


def test_spawn_raises_the_childs_exception_with_its_traceback():
    with pytest.raises(mp.ProcessRaisedException, match=r"(?s)-- Process 1 terminated with the following error:"
                                                        r".*ValueError: boom from 1"):
        mp.spawn(W.raise_in, args=(1,), nprocs=2)
    with pytest.raises(mp.ProcessExitedException, match="process 0 terminated with exit code 3") as info:
        mp.spawn(W.exit_with, args=(3,), nprocs=1)
    assert info.value.exit_code == 3


def test_queue_sends_shared_memory_and_parameters():
    ctx = std_mp.get_context("spawn")
    q_in, q_out, received = ctx.Queue(), ctx.Queue(), ctx.Event()
    p = ctx.Process(target=W.echo, args=(q_in, q_out, received))
    p.start()
    t = tl.arange(4.)
    param = nn.Parameter(tl.ones(2))
    q_in.put((t, param))
    back, param_back, requires_grad, kind = q_out.get(timeout=60)
    received.set()
    p.join(60)
    assert p.exitcode == 0
    assert t.is_shared()                                    # sending moved the sender's tensor, as torch's does
    np.testing.assert_array_equal(t.numpy(), [0., 2., 4., 6.])     # the child's mul_ is seen here
    np.testing.assert_array_equal(back.numpy(), t.numpy())
    assert requires_grad and kind == "Parameter" and isinstance(param_back, nn.Parameter)


def test_non_leaf_requiring_grad_is_refused_as_torch():
    x = tl.ones(2, requires_grad=True) * 2
    with pytest.raises(RuntimeError, match="Cowardly refusing to serialize non-leaf tensor"):
        std_mp.reduction.ForkingPickler.dumps(x)


def test_sharing_strategies():
    assert mp.get_sharing_strategy() == "file_descriptor"
    assert mp.get_all_sharing_strategies() == {"file_descriptor"}
    with pytest.raises(ValueError, match="'file_system' is not supported"):
        mp.set_sharing_strategy("file_system")
    assert mp.Queue is std_mp.Queue and mp.cpu_count() >= 1


@pytest.mark.parametrize("method", ["fork", "spawn"])
def test_hogwild_workers_train_one_shared_model(method):
    tl.manual_seed(0)
    model = nn.Linear(4, 1)
    model.share_memory()
    assert all(p.is_shared() for p in model.parameters())
    start = [p.detach().numpy().copy() for p in model.parameters()]
    ctx = std_mp.get_context(method)
    procs = [ctx.Process(target=W.hogwild_train, args=(rank, model, 20)) for rank in range(2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
        assert p.exitcode == 0
    x = tl.randn(64, 4)
    with tl.no_grad():
        loss = nn.functional.mse_loss(model(x), x.sum(1, keepdim=True)).item()
    assert any(not np.array_equal(a, p.detach().numpy()) for a, p in zip(start, model.parameters()))
    assert loss < 0.5          # the workers' updates landed in this process's model (an untrained one: ~4)


def test_module_and_adagrad_share_memory():
    m = nn.Sequential(nn.Linear(2, 2), nn.BatchNorm1d(2))
    m.share_memory()
    assert all(t.is_shared() for t in [*m.parameters(), *m.buffers()])
    opt = tl.optim.Adagrad(m.parameters())
    opt.share_memory()
    assert all(opt.state[p]["sum"].is_shared() for p in m.parameters())
