"""profile(): what is recorded, the tree, and the honest-number invariants (self time never negative,
self times add up to the profiled total, nested same-name calls never counted twice) on nested,
recursive and multithreaded workloads."""
from __future__ import annotations

import threading
import warnings

import numpy as np
import pytest

import tensorlib as tl
from tensorlib import dispatch
from tensorlib.nn.modules.module import Module
from profiler import ProfilerActivity, profile, record_function
from profiler import events as pevents
from profiler.recorder import EXTRAS, arrays_shapes_id, shapes_id


def _check_invariants(prof):
    store = prof.store
    evs = prof.events()
    assert len(evs) == len(store) > 0
    assert (store.self_ns >= 0).all(), "self time must never be negative"
    roots = store.parent < 0
    assert store.self_ns.sum() == (store.t1 - store.t0)[roots].sum(), "self times add up to the roots' durations"
    for e in evs:
        kids = e.children
        assert e.self_time_ns == e.duration_ns - sum(k.duration_ns for k in kids)
        for k in kids:
            assert k.thread == e.thread
            assert e.start_ns <= k.start_ns and k.end_ns <= e.end_ns
    # siblings do not overlap
    for e in evs:
        kids = sorted(e.children, key=lambda k: k.start_ns)
        for a, b in zip(kids, kids[1:]):
            assert a.end_ns <= b.start_ns
    total = prof.key_averages().total_average()
    assert total.self_cpu_time_total == pytest.approx(store.self_ns.sum() / 1e3)
    return evs


def test_forward_and_backward_ops_are_recorded_with_tree_and_sequence_numbers():
    x = tl.randn(4, 3, requires_grad=True)
    w = tl.randn(3, 2, requires_grad=True)
    with profile() as prof:
        with record_function("fwd"):
            y = (x @ w).relu().sum()
        y.backward()
    evs = _check_invariants(prof)
    by_name = {}
    for e in evs:
        by_name.setdefault(e.name, []).append(e)
    fwd = by_name["fwd"][0]
    assert fwd.kind == "user"
    assert [c.name for c in fwd.children] == ["aten::matmul", "aten::relu", "aten::sum"]
    mm = fwd.children[0]
    assert mm.kind == "op" and mm.phase == "forward" and mm.sequence_nr >= 0
    node = by_name["MmBackward0"][0]
    assert node.kind == "backward"
    assert node.sequence_nr == mm.sequence_nr            # the node range carries the forward op's number
    bwd_ops = [c for c in node.children if c.kind == "op"]
    assert bwd_ops and all(c.phase == "backward" and c.sequence_nr == mm.sequence_nr for c in bwd_ops)
    assert [c.name for c in bwd_ops] == ["aten::t", "aten::mm", "aten::t", "aten::mm"]     # torch's mm formulas
    # as torch's engine writes it: evaluate_function around the node, both with the forward op's number
    engine = node.parent
    assert engine.name == "autograd::engine::evaluate_function: MmBackward0" and engine.kind == "backward"
    assert engine.sequence_nr == mm.sequence_nr and engine.children == [node]
    acc = by_name["torch::autograd::AccumulateGrad"]
    assert len(acc) == 2 and all(a.parent.name == "autograd::engine::evaluate_function: "
                                 "torch::autograd::AccumulateGrad" for a in acc)


def test_nested_ranges_self_time_and_totals():
    a = tl.ones(64, 64)
    with profile() as prof:
        with record_function("outer"):
            for _ in range(3):
                with record_function("inner"):
                    a = a + 1
                    a = a * 2
    _check_invariants(prof)
    rows = {r.key: r for r in prof.key_averages()}
    outer, inner = rows["outer"], rows["inner"]
    assert outer.count == 1 and inner.count == 3 and rows["aten::add"].count == 3
    assert outer.cpu_time_total >= inner.cpu_time_total >= rows["aten::add"].cpu_time_total
    assert outer.cpu_time_total == pytest.approx(outer.self_cpu_time_total + inner.cpu_time_total, abs=1e-3)
    assert inner.cpu_time_total == pytest.approx(inner.self_cpu_time_total + rows["aten::add"].cpu_time_total
                                                 + rows["aten::mul"].cpu_time_total, abs=1e-3)


def test_recursive_ranges_are_not_counted_twice():
    @record_function("rec")
    def rec(t, n):
        t = t + 1
        return rec(t, n - 1) if n else t

    with profile() as prof:
        rec(tl.ones(8), 5)
    _check_invariants(prof)
    evs = [e for e in prof.events() if e.name == "rec"]
    assert len(evs) == 6
    outermost = [e for e in evs if e.depth == 0][0]
    row = {r.key: r for r in prof.key_averages()}["rec"]
    assert row.count == 6
    # torch would add all six nested durations; the time spent is the outermost call's
    assert row.cpu_time_total == pytest.approx(outermost.duration_ns / 1e3)
    assert row.self_cpu_time_total == pytest.approx(sum(e.self_time_ns for e in evs) / 1e3)
    assert row.cpu_time_total <= prof.key_averages().self_cpu_time_total + 1e-6


def test_threads_are_recorded_each_under_its_own_thread_id():
    ids = {}
    barrier = threading.Barrier(3)

    def work(k):
        ids[k] = threading.get_native_id()
        barrier.wait()
        t = tl.ones(32)
        with record_function(f"worker{k}"):
            for _ in range(20):
                t = t * 1.0001 + 1

    with profile() as prof:
        threads = [threading.Thread(target=work, args=(k,)) for k in range(3)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    evs = _check_invariants(prof)
    for k in range(3):
        rng = [e for e in evs if e.name == f"worker{k}"]
        assert len(rng) == 1 and rng[0].thread == ids[k]
        ops = [c for c in rng[0].children]
        assert len(ops) == 40 and all(c.thread == ids[k] for c in ops)
    row = {r.key: r for r in prof.key_averages()}["aten::mul"]
    assert row.count == 60


def test_build_from_synthetic_records_handles_deep_nesting_and_equal_stamps():
    # (name, tag, seq, t0, t1) in exit order on one thread; b and c share a start stamp with a,
    # c ends at the stamp d starts; f is zero-width at e's end and exited before e, so it is e's child
    recs = [("c", "forward", 1, 0, 10), ("b", "r:user", -1, 0, 10), ("d", "forward", 2, 10, 20),
            ("f", "forward", 3, 30, 30), ("e", "forward", 4, 20, 30), ("a", "r:user", -1, 0, 40)]
    store = pevents.build([(7, "main", recs)], False)
    names = [store.names[i].removeprefix("aten::") for i in store.name_id]    # ops are named as torch's
    assert names == ["a", "b", "c", "d", "e", "f"]
    parent = [names[p] if p >= 0 else None for p in store.parent]
    assert parent == [None, "a", "b", "a", "a", "e"]
    assert store.self_ns.tolist() == [10, 0, 10, 10, 10, 0]
    assert store.self_ns.sum() == 40


def test_build_matches_a_stack_walk_on_random_trees():
    rng = np.random.default_rng(0)
    for trial in range(20):
        recs, t = [], [0]

        def gen(depth):
            start = t[0]
            t[0] += int(rng.integers(1, 5))
            for _ in range(int(rng.integers(0, 4)) if depth < 6 else 0):
                gen(depth + 1)
                t[0] += int(rng.integers(1, 5))
            recs.append((f"n{depth}", "forward", 0, start, t[0]))

        for _ in range(5):
            gen(0)
            t[0] += 1
        store = pevents.build([(1, "main", recs)], False)
        order = np.lexsort((-np.arange(len(recs)), -np.array([r[4] for r in recs]), np.array([r[3] for r in recs])))
        p2, d2 = pevents._tree_by_stack(store.t0, store.t1, order)
        assert store.parent.tolist() == p2.tolist()
        assert store.depth.tolist() == d2.tolist()
        assert (store.self_ns >= 0).all()


def test_cuda_activity_without_cuda_warns_and_profiles_cpu():
    if tl.cuda.is_available():
        pytest.skip("CUDA is available here")
    with pytest.warns(UserWarning, match="CUDA is not available"):
        prof = profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA])
    assert prof.activities == {ProfilerActivity.CPU}
    with prof:
        tl.ones(3) + 1
    assert [e.name for e in prof.events()] == ["aten::ones", "aten::empty", "aten::fill_", "aten::add"]


def test_no_warning_for_default_activities():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with profile() as prof:
            tl.ones(2)
    assert len(prof.events()) == 3      # ones > empty, fill_


def test_record_shapes_dtypes_and_flops():
    a = tl.ones(4, 5)
    b = tl.ones(5, 6, dtype=tl.float64)
    with profile(record_shapes=True, with_flops=True) as prof:
        tl.matmul(a, b.float())
        tl.cat([a, a])
    evs = {e.name: e for e in prof.events()}
    assert evs["aten::matmul"].input_shapes == [[4, 5], [5, 6]]
    assert evs["aten::matmul"].input_dtypes == ["float", "float"]
    assert evs["aten::matmul"].flops == 2 * 4 * 5 * 6
    assert "aten::to" in evs                                  # torch's composite, around the conversion:
    assert evs["aten::_to_copy"].input_dtypes == ["double"]
    assert evs["aten::cat"].input_shapes == [[[4, 5], [4, 5]]]
    rows = prof.key_averages(group_by_input_shape=True)
    assert {r.key: r.flops for r in rows}["aten::matmul"] == 240


def test_record_shapes_tells_apart_dtypes_scalars_and_tensor_lists_of_one_shape():
    """record_shapes without stack or FLOPs looks each op's signature up by its inputs' shapes, dtypes and
    argument types (recorder.shapes_id): ops whose inputs differ only in dtype, in a 0-d tensor against a
    number, or in a tensor list's shapes keep their own Input Shapes / types, every time they run."""
    a32, a64 = tl.ones(3, 2), tl.ones(3, 2, dtype=tl.float64)
    s0 = tl.tensor(2.0)
    with profile(record_shapes=True, profile_memory=True) as prof:
        for _ in range(2):
            a32 + a32
            a64 + a64
            a32 * 2.0
            a32 * s0
            tl.cat([a32, a32])
            tl.cat([a32, tl.ones(1, 2)])
    got = [(e.name, e.input_shapes, e.input_dtypes) for e in prof.events()
           if e.name not in ("aten::ones", "aten::empty", "aten::fill_")]
    once = [("aten::add", [[3, 2], [3, 2]], ["float", "float"]),
            ("aten::add", [[3, 2], [3, 2]], ["double", "double"]),
            ("aten::mul", [[3, 2], []], ["float", "Scalar"]),
            ("aten::mul", [[3, 2], []], ["float", "float"]),
            ("aten::cat", [[[3, 2], [3, 2]]], ["TensorList"]),
            ("aten::cat", [[[3, 2], [1, 2]]], ["TensorList"])]
    assert got == once + once


def test_record_shapes_gives_tensor_subclasses_their_shapes():
    """shapes_id knows Tensor and Parameter by their type and any other Tensor subclass (a Buffer, a user's
    class) by issubclass, and a tensor list in a list or tuple subclass likewise: their Input Dims are their
    shapes, each time, not a type's as for a non-tensor argument (which would give a second shape of that
    type the first one's signature)."""
    class Mine(tl.Tensor):
        __slots__ = ()

    class Pair(tuple):
        pass

    def mine(*shape):
        t = tl.ones(*shape)
        t.__class__ = Mine
        return t

    args = [tl.nn.Parameter(tl.ones(3, 2)), tl.nn.Parameter(tl.ones(4, 2)), tl.nn.Buffer(tl.ones(3, 2)),
            tl.nn.Buffer(tl.ones(4, 2)), mine(3, 2), mine(4, 2)]
    with profile(record_shapes=True) as prof:
        for x in args:
            x + tl.ones(1, 2)
    got = [e.input_shapes for e in prof.events() if e.name == "aten::add"]
    assert got == [[[3, 2], [1, 2]], [[4, 2], [1, 2]]] * 3
    sigs = [EXTRAS[shapes_id((Pair((tl.ones(n, 2), tl.ones(1, 2))),))][0] for n in (3, 4)]     # a tensor list
    assert sigs == [(("TensorList", ((n, 2), (1, 2))),) for n in (3, 4)]


def test_a_sequence_that_is_not_a_tensor_list_is_known_by_its_type():
    """An int list or tuple argument is its type in the signature, as _raw_inputs writes it, whatever it holds
    (shapes_id keys it by type, without building the signature each time); a list of tensors or of a formula's
    arrays (arrays_shapes_id) is a tensor list with its shapes."""
    x = tl.ones(3, 2)
    for make_id, t, arr in ((shapes_id, x, False), (arrays_shapes_id, x.numpy(), True)):
        a, b = make_id((t, (1, 2))), make_id((t, (5, 6, 7)))
        assert a == b and EXTRAS[a][0] == (((3, 2), "float"), "tuple")
        assert EXTRAS[make_id((t, [0]))][0] == (((3, 2), "float"), "list")
        assert EXTRAS[make_id((t, ()))][0] == (((3, 2), "float"), "tuple")
        lists = [EXTRAS[make_id(([t, t[:1]],))][0], EXTRAS[make_id(([t, t],))][0]]
        assert lists == [(("TensorList", ((3, 2), (1, 2))),), (("TensorList", ((3, 2), (3, 2))),)], arr


def test_results_while_recording_are_what_is_recorded_so_far():
    with profile(profile_memory=True) as prof:
        tl.ones(4) * 2
        first = {r.key: r.count for r in prof.key_averages()}
        tl.ones(4) * 2
        names = [e.name for e in prof.events()]
    assert first["aten::mul"] == 1 and names.count("aten::mul") == 2
    assert {r.key: r.count for r in prof.key_averages()}["aten::mul"] == 2


def test_hook_is_removed_after_stop():
    before = dispatch.hooks()
    with profile():
        assert len(dispatch.hooks()) == len(before) + 1
    assert dispatch.hooks() == before


def test_nvtx_true_registers_the_nvtx_hook_for_the_block():
    from profiler.nvtx import NvtxHook
    with profile(nvtx=True) as prof:
        assert any(isinstance(h, NvtxHook) for h in dispatch.hooks())
        tl.ones(2) * 2
    assert not any(isinstance(h, NvtxHook) for h in dispatch.hooks())
    assert [e.name for e in prof.events()] == ["aten::ones", "aten::empty", "aten::fill_", "aten::mul"]


def test_with_modules_false_drops_module_ranges():
    def run():
        with dispatch.record_range("Linear", "module"):
            tl.ones(2) + 1

    with profile(with_modules=True) as p1:
        run()
    with profile() as p2:           # torch's default, False
        run()
    assert [e.name for e in p1.events()] == ["Linear", "aten::ones", "aten::empty", "aten::fill_", "aten::add"]
    assert p1.events()[0].kind == "module"
    assert [e.name for e in p2.events()] == ["aten::ones", "aten::empty", "aten::fill_", "aten::add"]


def test_modules_are_not_entered_unless_a_hook_wants_their_ranges():
    """with_modules=False (and no with_stack): the modules skip their region, and the lookup of their qualified
    names, altogether (the recorder says Hook.module_ranges = False); a second hook that wants them still
    gets them, the recorder still not."""
    class Seen(dispatch.Hook):
        def __init__(self):
            self.kinds = []

        def range_enter(self, name, kind):
            self.kinds.append((name, kind))

    net = tl.nn.Sequential(tl.nn.Linear(2, 2), tl.nn.ReLU())
    x = tl.ones(1, 2)
    calls = []
    with profile() as p:
        real = Module._qualname_under
        Module._qualname_under = lambda self, frames: calls.append(1) or real(self, frames)
        try:
            net(x)
            assert dispatch.hooks() and calls == []
            seen = Seen()
            dispatch.add_hook(seen)
            try:
                net(x)
            finally:
                dispatch.remove_hook(seen)
        finally:
            Module._qualname_under = real
    assert [n for n, k in seen.kinds if k == "module"] == ["Sequential", "Sequential.0", "Sequential.1"]
    assert len(calls) == 3 and not [e for e in p.events() if e.kind == "module"]
    assert [e.name for e in p.events()].count("aten::linear") == 2
    with profile(with_modules=True) as p:
        net(x)
    assert [e.name for e in p.events() if e.kind == "module"] == ["Sequential", "Sequential.0", "Sequential.1"]


@pytest.mark.cuda
@pytest.mark.real_gpu       # compares device timings with cupyx.profiler.benchmark
def test_gpu_time_per_op_against_cupyx_benchmark():
    if not tl.cuda.is_available():
        pytest.skip("needs an NVIDIA GPU with CuPy")
    import cupyx.profiler
    a = tl.randn(4096, 4096, device="cuda")
    tl.cuda.synchronize()
    with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
        for _ in range(5):
            tl.matmul(a, a)
    rows = {r.key: r for r in prof.key_averages()}
    per_op_us = rows["aten::matmul"].device_time_total / rows["aten::matmul"].count
    bench = cupyx.profiler.benchmark(lambda: a._data @ a._data, n_repeat=5, n_warmup=2)
    ref_us = float(bench.gpu_times.mean()) * 1e6
    assert per_op_us == pytest.approx(ref_us, rel=0.25)
    assert all(e.device_time_ns > 0 for e in prof.events() if e.name == "aten::matmul")
    assert "Self CUDA time total" in prof.key_averages().table()


def test_phases_stay_per_thread_while_another_thread_runs_backward():
    """The op sink reads the thread-local phase only while a backward pass runs somewhere: a thread doing
    forward work meanwhile must still record forward ops with their own sequence numbers."""
    inside, release = threading.Event(), threading.Event()

    class Wait(tl.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            return x * 1.0

        @staticmethod
        def backward(ctx, g):
            inside.set()
            release.wait(10)
            return g * 2.0

    x = tl.randn(3, requires_grad=True)
    with profile() as prof:
        y = Wait.apply(x).sum()
        t = threading.Thread(target=y.backward)
        t.start()
        assert inside.wait(10)
        a = tl.ones(2)
        with record_function("other thread's forward"):
            for _ in range(3):
                a = a + 1                # runs while the other thread is inside its backward pass
        release.set()
        t.join()
    evs = _check_invariants(prof)
    fwd = next(e for e in evs if e.name == "other thread's forward")
    adds = [c for c in fwd.children if c.name == "aten::add"]
    assert len(adds) == 3 and all(c.phase == "forward" and c.sequence_nr >= 0 for c in adds)
    assert len({c.sequence_nr for c in adds}) == 3
    bw_muls = [e for e in evs if e.name == "aten::mul" and e.phase == "backward"]
    assert bw_muls and all(e.thread != fwd.thread for e in bw_muls)


def test_events_is_torchs_event_list_with_torchs_fields(tmp_path):
    """prof.events() is torch's EventList (table, key_averages, total_average, self_cpu_time_total, exports)
    of FunctionEvents with torch's fields: time_range, *_str formats, device_type, count, overload_name."""
    from tensorlib.autograd import DeviceType
    with profile(record_shapes=True) as prof:
        with record_function("block"):
            tl.ones(2, 3).sum()
    evs = prof.events()
    block = evs[0]
    assert [e.name for e in evs] == ["block", "aten::ones", "aten::empty", "aten::fill_", "aten::sum"]
    assert block.time_range.start == pytest.approx(block.start_ns / 1e3)
    assert block.time_range.elapsed_us() == pytest.approx(block.cpu_time_total)
    assert block.cpu_time_total_str.endswith(("us", "ms", "s")) and block.count == 1
    assert block.cpu_time_total_str == f"{block.cpu_time_total:.3f}us" or block.cpu_time_total >= 1000
    assert block.device_type == DeviceType.CPU and block.is_user_annotation and not evs[1].is_user_annotation
    assert (block.overload_name, block.is_async, block.is_remote, block.node_id) == ("", False, False, -1)
    assert block.is_top_level and not evs[2].is_top_level
    assert evs.self_cpu_time_total == pytest.approx(block.cpu_time_total)
    table = evs.table()
    assert "Input Shapes" in table and "[[2, 3]]" in table and table.count("aten::sum") == 1
    assert [r.key for r in evs.key_averages()] == [r.key for r in prof.key_averages()]
    assert evs.total_average().count == 5
    evs.export_chrome_trace(str(tmp_path / "t.json"))
    prof.key_averages().export_stacks(str(tmp_path / "s.txt"), "self_cpu_time_total")
    assert (tmp_path / "t.json").stat().st_size > 0 and "block" in (tmp_path / "s.txt").read_text()
    row = prof.key_averages()[0]
    assert row.self_cpu_time_total_str.endswith("s") and row.device_type == DeviceType.CPU
    count, total = row.count, row.self_cpu_time_total
    assert row.add(row) is row and row.count == 2 * count and row.self_cpu_time_total == 2 * total
    with pytest.raises(AssertionError, match="Expected keys to match"):
        row.add(prof.key_averages()[1])


def test_composite_ops_record_their_input_shapes_as_torch():
    """record_shapes gives composite ops (aten::conv2d, aten::linear, aten::softmax...) their arguments' shapes,
    [] for a scalar, as torch's profiler records them (here as torch 2.13 printed them for the same calls)."""
    conv = tl.nn.Conv2d(3, 8, 3)
    x = tl.randn(5, 3, 32, 32)
    with profile(record_shapes=True) as prof:
        y = conv(x)
        tl.nn.functional.linear(tl.randn(4, 6), tl.randn(2, 6), tl.randn(2))
        y.view(5, -1).softmax(-1)
    shapes = {r.key: r.input_shapes for r in prof.key_averages(group_by_input_shape=True)}
    assert shapes["aten::conv2d"] == [[5, 3, 32, 32], [8, 3, 3, 3], [8], [], [], [], []]
    assert shapes["aten::linear"] == [[4, 6], [2, 6], [2]]
    assert shapes["aten::softmax"] == [[5, 7200], [], []]
    with profile() as plain:                 # without record_shapes, nothing is kept
        conv(x)
    assert all(not e.input_shapes for e in plain.events())


@pytest.mark.parametrize("kw", [{}, {"record_shapes": True, "profile_memory": True},
                                {"record_shapes": True, "with_stack": True, "with_flops": True}])
def test_records_are_left_to_the_gc_untracked(kw):
    """Every kept record is a tuple of atoms, so one collection untracks it: a long profile's records are
    not walked again by each full collection (a record holding nested tuples, dtypes or classes stays
    tracked). Memory records are ints in a flat list."""
    import gc
    x = tl.ones(3, requires_grad=True)
    with profile(**kw) as prof:
        for _ in range(20):
            y = (x * 2 + 1).sum()
            y.backward()
        tl.cat([x, x]).mean()
        gc.collect()
        bufs = [b for _, _, b in prof._recorder.buffers]
        mem = prof._memory.records if prof._memory is not None else []
        assert sum(len(b) for b in bufs) > 100
        tracked = [r for b in bufs for r in b if gc.is_tracked(r)]
        assert not tracked, tracked[:3]
        assert all(type(v) is int for v in mem)
    assert len(prof.store) > 100


def test_summing_two_gradients_of_one_input_is_inside_the_node_that_gives_the_second():
    """As torch's InputBuffer: x used twice, its two gradients are added during the second node's
    evaluate_function (it was a top-level aten::add in the backward, outside every node); in place (add_) as
    torch's, the first gradient being the buffer's alone (a fresh product), as x.grad is made of it."""
    x = tl.ones(4, requires_grad=True)
    w = tl.ones(4, requires_grad=True)
    with profile() as p:
        ((x * w).sum() + (x * 3).sum()).backward()
    adds = [e for e in p.events() if e.name == "aten::add_"]
    in_backward = [e for e in adds if e.time_range.start > min(
        ev.time_range.start for ev in p.events() if ev.name.startswith("autograd::engine::evaluate_function"))]
    assert len(in_backward) == 1
    chain, q = [], in_backward[0].cpu_parent
    while q is not None:
        chain.append(q.name)
        q = q.cpu_parent
    assert "autograd::engine::evaluate_function: MulBackward0" in chain, chain
    np.testing.assert_array_equal(x.grad.numpy(), [4.0] * 4)


@pytest.mark.filterwarnings("ignore:Using backward\\(\\) with create_graph=True")
@pytest.mark.parametrize("loss_of,create_graph,name,factor", [
    (lambda y: (y * 2).sum() + (y * 3).sum(), False, "aten::add_", 5.0),   # the first gradient a fresh product
    (lambda y: (y * 3).sum() + y.sum(), False, "aten::add", 4.0),          # the first an expanded (read-only) view
    (lambda y: (y * 2).sum() + (y * 3).sum(), True, "aten::add", 5.0),     # a graph recorded: never in place
], ids=["fresh", "view", "create_graph"])
def test_a_second_gradient_is_summed_in_place_where_the_buffer_alone_holds_the_first(loss_of, create_graph, name,
                                                                                    factor):
    """torch's InputBuffer rule: the two gradients of y are summed into the first (add_) where the buffer holds
    it alone, densely, over memory of its own; else into a new tensor (add). The sums are the same."""
    x = tl.tensor([1.0, -2.0, 0.5], requires_grad=True)
    y = x * 1.5
    with profile() as p:
        loss_of(y).backward(create_graph=create_graph)
    sums = [e.name for e in p.events() if e.name in ("aten::add", "aten::add_")
            and any(a.name.startswith("autograd::engine") for a in _ancestors(e))]
    assert sums == [name]
    assert x.grad.tolist() == pytest.approx([1.5 * factor] * 3)


def _ancestors(e):
    out = []
    while e.cpu_parent is not None:
        e = e.cpu_parent
        out.append(e)
    return out
