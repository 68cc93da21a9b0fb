"""profile_memory=True attributes to each op the bytes its output lives in, also when that output is a view of
a temporary the op allocated; a view of an input allocates nothing."""
import numpy as np

import tensorlib as tl
import tensorlib.nn.functional as F
from profiler import profile


def _self_mem(prof):
    return {e.key: e.self_cpu_memory_usage for e in prof.key_averages()}


def test_an_output_that_views_a_fresh_temporary_counts_the_temporary():
    x, w = tl.randn(1, 3, 16, 16), tl.randn(16, 3, 3, 3)
    with profile(profile_memory=True) as prof:
        y = F.conv2d(x, w, padding=1)
        z = F.relu(y)
        t = z.permute(0, 2, 3, 1)
        u = tl.ops.matmul(tl.randn(4, 8), tl.randn(8, 2)).t()     # t() of a fresh product: a view, no bytes
    mem = _self_mem(prof)
    assert mem["aten::convolution"] == 16 * 16 * 16 * 4    # not 0 B: conv2d's output is a fresh array
    assert mem["aten::relu"] == 16 * 16 * 16 * 4
    assert mem["aten::permute"] == 0 and mem["aten::t"] == 0   # views of their inputs
    assert mem["aten::matmul"] == 4 * 2 * 4
    assert y.is_contiguous() and t.shape == (1, 16, 16, 16) and u.shape == (2, 4)


def test_conv_outputs_are_contiguous_as_torchs_so_view_works():
    y = F.conv2d(tl.randn(2, 3, 8, 8), tl.randn(4, 3, 3, 3), tl.randn(4))
    assert y.is_contiguous()
    assert y.view(2, -1).shape == (2, 4 * 6 * 6)
    assert F.conv1d(tl.randn(2, 3, 10), tl.randn(4, 3, 3)).view(-1).shape == (2 * 4 * 8,)


def test_in_place_ops_allocate_nothing_and_a_fresh_output_is_freed_once():
    """An in-place op's output is its input (made before the profile, or a view of such a tensor): no bytes;
    a fresh output counts its bytes when made and gives them back, once, when it dies."""
    x = tl.ones(4, 8)
    with profile(profile_memory=True) as prof:
        x.add_(1)
        x[1:].mul_(2)
        y = x * 3
        del y
    mem = _self_mem(prof)
    assert mem["aten::add_"] == 0 and mem["aten::mul_"] == 0
    assert mem["aten::mul"] == 4 * 8 * 4
    recs = prof.store.mem_events
    assert sorted(recs["bytes"].tolist()) == [-4 * 8 * 4, 4 * 8 * 4]


def test_an_output_on_an_inputs_array_is_not_new_memory_and_a_fresh_one_counts_once():
    """record_outputs walks the inputs only when an output's array is held by more than the output (its
    refcount): an output that is one of the inputs (not only the first), or another tensor on an input's
    array, allocates nothing; a fresh array counts once, however many ops return it."""
    from profiler.memory_record import CPU, MemoryRecorder
    mem = MemoryRecorder()
    mem.start()
    a, b = tl.ones(2, 3), tl.ones(4)
    mem.record_outputs(b, (a, b), 1)                        # the second input itself
    mem.record_outputs(tl.from_numpy(b.numpy()), (a, b), 2)     # a second tensor on the input's array
    fresh = tl.from_numpy(np.ones(5))
    mem.record_outputs(fresh, (a, b), 3)
    mem.record_outputs(fresh, (a,), 4)
    mem.record_outputs((fresh, a), (a, 1.0), 5)
    recs = mem.fields()
    assert recs[:, 0].tolist() == [3] and recs[:, 2].tolist() == [CPU] and recs[:, 4].tolist() == [5 * 8]
    key = recs[0, 5]
    del fresh
    recs = mem.fields()
    assert recs[:, 4].tolist() == [40, -40] and recs[:, 5].tolist() == [key, key]
