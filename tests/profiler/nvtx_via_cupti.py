"""Run by tests/profiler/test_cupti_gpu.py in a fresh process on a GPU: CUPTI as the NVTX tool, recording
the MARKER activity of profiler.emit_nvtx's ranges, printed as JSON. A file (not a string in the test) so
tests/test_cupy_conformance.py checks its cupti calls too."""
import json
from cupti import cupti
from profiler.cupti import route_nvtx_to_cupti
# NVTX calls go to the tool library NVTX_INJECTION64_PATH names: the very libcupti that cupti-python
# loads (lazily, at its first call: route_nvtx_to_cupti makes one, then reads /proc/self/maps), set
# before the first NVTX call of the process
path = route_nvtx_to_cupti()
rec = []
K = cupti.ActivityKind
# cupti-python 13.0.1's ActivityFlag has MARKER_START but no MARKER_END: CUPTI_ACTIVITY_FLAG_MARKER_END
# is 1 << 2 in cupti_activity.h (INSTANTANEOUS 1 << 0, START 1 << 1)
START, END = int(cupti.ActivityFlag.MARKER_START), 1 << 2

def done(acts):      # plain fields only, copied at once (ActivityMarker2 in cupti.pyi, 13.0.1)
    for a in acts:
        if int(a.kind) == int(K.MARKER):
            rec.append((a.name, a.domain, int(a.flags_), int(a.id), int(a.timestamp)))

cupti.activity_register_callbacks(lambda: (8 << 20, 0), done)
for k in (K.MARKER, K.MARKER_DATA, K.NAME):
    cupti.activity_enable(k)
# imported only now, with CUPTI already recording the MARKER activity
import tensorlib as tl  # noqa: E402
import tensorlib.nn as nn  # noqa: E402
import profiler  # noqa: E402
model = nn.Linear(64, 32).cuda()
x = tl.randn(8, 64, device="cuda")
with profiler.emit_nvtx():
    model(x).sum().backward()
tl.cuda.synchronize()
cupti.activity_flush_all(int(cupti.ActivityFlag.FLUSH_FORCED))
starts = {i: (n, d, t) for n, d, f, i, t in rec if f & START}
ends = {i: t for n, d, f, i, t in rec if f & END}
print(json.dumps({"starts": list(starts.values()), "closed": sorted(set(starts) & set(ends)) == sorted(starts),
                  "path": path}))
