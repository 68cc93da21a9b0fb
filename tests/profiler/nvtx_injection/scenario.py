"""Run in a subprocess under the NVTX recorder: drives profiler.nvtx's hook the way the dispatcher
will (fake ops, nested ranges, forward then backward), one scenario per argv[1]."""

from __future__ import annotations

import sys
import threading

from profiler.nvtx import NvtxHook


class Op:
    def __init__(self, name: str) -> None:
        self.name = name


class Tensor:
    def __init__(self, *shape: int) -> None:
        self.shape, self.dtype = shape, "float32"


def training_step(hook: NvtxHook) -> None:
    step = hook.range_enter("ProfilerStep#0", "step")
    data = hook.range_enter("DataLoader.next", "data")
    hook.range_exit(data)
    model = hook.range_enter("model", "module")
    fc1 = hook.range_enter("model.fc1", "module")
    token = hook.op_enter(Op("matmul"), (Tensor(8, 4), Tensor(4, 2)), {}, "forward", 12)
    hook.op_exit(token, (Tensor(8, 2),))
    token = hook.op_enter(Op("add"), (Tensor(8, 2), Tensor(2)), {}, "forward", 13)
    hook.op_exit(token, (Tensor(8, 2),))
    hook.range_exit(fc1)
    hook.range_exit(model)
    node = hook.range_enter("AddBackward0", "backward")
    token = hook.op_enter(Op("sum"), (Tensor(8, 2), 0), {}, "backward", 13)
    hook.op_exit(token, (Tensor(2),))
    hook.range_exit(node)
    opt = hook.range_enter("Optimizer.step#SGD.step", "optimizer")
    token = hook.op_enter(Op("add_"), (Tensor(4, 2), Tensor(4, 2)), {}, "forward", 14)
    hook.op_exit(token, ())
    hook.range_exit(opt)
    user = hook.range_enter("log_metrics", "user")
    hook.range_exit(user)
    hook.range_exit(step)


def threads(hook: NvtxHook) -> None:
    barrier = threading.Barrier(2)

    def work(offset: int) -> None:
        barrier.wait()
        for i in range(3):
            outer = hook.range_enter(f"worker{offset}", "user")
            token = hook.op_enter(Op("mul"), (), {}, "forward", offset + i)
            hook.op_exit(token, ())
            hook.range_exit(outer)

    workers = [threading.Thread(target=work, args=(base,)) for base in (100, 200)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()


if __name__ == "__main__":
    scenario, shapes = sys.argv[1], sys.argv[2] == "shapes"
    hook = NvtxHook(record_shapes=shapes)
    if not hook.emitter.enabled:
        sys.exit("no NVTX tool attached: NVTX_INJECTION64_PATH was not honoured")
    {"training_step": training_step, "threads": threads}[scenario](hook)
