"""Run by test_mpi.py under `mpiexec -n 2`: DDP steps profiled on every rank, one trace per rank written by
trace_handler into the directory named by argv[1]."""
import sys

import tensorlib as tl
import tensorlib.distributed as dist
from tensorlib import nn
from tensorlib.nn.parallel import DistributedDataParallel as DDP

import profiler

dist.init_process_group("mpi")
tl.manual_seed(0)
m = nn.Sequential(nn.Linear(64, 128), nn.Tanh(), nn.Linear(128, 128), nn.Tanh(), nn.Linear(128, 4))
ddp = DDP(m, bucket_cap_mb=0.05)     # several buckets: all-reduces launched while backward goes on
x = tl.randn(32, 64)
with profiler.profile(schedule=profiler.schedule(wait=0, warmup=1, active=2),
                      on_trace_ready=profiler.tensorboard_trace_handler(sys.argv[1])) as p:
    for _ in range(3):
        ddp(x).sum().backward()
        p.step()
dist.destroy_process_group()
print("OK profiled")
