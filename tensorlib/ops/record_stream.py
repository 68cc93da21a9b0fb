"""Tensor.record_stream: the memory-safety hint for a CUDA tensor used on a stream other than the one it
was allocated on.

It is not a no-op here: CuPy's memory pool is stream-ordered only for the stream that allocated a block
(a freed block goes back to that stream's free list, and the next allocation on that stream takes it,
ordered after that stream's work but not after other streams'). A tensor made on stream A and read by a
kernel queued on stream B can thus be overwritten by A's next allocation while B's kernel still reads it.
As torch documents for its caching allocator, record_stream(B) makes the free wait: when the tensor's
memory is freed, an event is recorded on B, and the memory goes back to the pool only once that event has
completed (tensorlib.cuda.memory.record_stream; checked at each later allocation, and waited for by
empty_cache)."""
from __future__ import annotations

import numpy as np

from ._define import public


@public(name="record_stream", function=False, method=True)
def _record_stream(self, stream):
    """torch's Tensor.record_stream(stream): this tensor's memory is not reused, after it is freed, until
    the work queued on `stream` by then has completed."""
    from ..cuda.streams import Stream
    if not isinstance(stream, Stream):
        raise TypeError(f"record_stream(): argument 's' (position 1) must be torch.cuda.Stream, not "
                        f"{type(stream).__name__}")
    if isinstance(self._data, np.ndarray):
        raise NotImplementedError("Could not run 'aten::record_stream' with arguments from the 'CPU' backend: "
                                  "record_stream takes CUDA tensors")
    from ..cuda.memory import record_stream
    record_stream(self._data, stream)
