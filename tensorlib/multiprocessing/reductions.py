"""How a tensor crosses a process boundary through multiprocessing (torch.multiprocessing.reductions): its values
moved to shared memory, sent as the memory's file descriptor (`multiprocessing.reduction.DupFd`: given to a
spawned child at its start, or through the resource sharer for a queue) with its dtype, shape, strides and offset;
the receiver maps the same memory, once per block (a second tensor of the same block maps no more memory)."""
from __future__ import annotations

import os
import weakref
from multiprocessing.reduction import DupFd, ForkingPickler

import numpy as np

from .._tensor import Tensor
from ..nn.parameter import Buffer, Parameter
from ..ops.shared_memory import new_block, shared_block

__all__ = ["init_reductions", "reduce_tensor", "rebuild_tensor"]

# the blocks this process has mapped from others, by the memfd's identity: one mapping per block
_MAPPED: weakref.WeakValueDictionary = weakref.WeakValueDictionary()


def reduce_tensor(t: Tensor):
    if t.requires_grad and not t.is_leaf:
        raise RuntimeError("Cowardly refusing to serialize non-leaf tensor which requires_grad, since autograd does "
                           "not support crossing process boundaries.  If you just want to transfer the data, call "
                           "detach() on the tensor before serializing (e.g., putting it on the queue).")
    d = t._data
    if not isinstance(d, np.ndarray):
        raise RuntimeError(f"tensorlib.multiprocessing: a {t.device} tensor cannot be sent to another process "
                           "(CUDA memory handles are not shared here); send t.cpu() instead")
    t.share_memory_()
    d = t._data
    blk = shared_block(d)
    assert blk is not None
    base = np.frombuffer(blk, np.uint8)
    offset = d.__array_interface__["data"][0] - base.__array_interface__["data"][0]
    return rebuild_tensor, (type(t), DupFd(blk.fd), len(blk), d.dtype, d.shape, d.strides, offset,
                            bool(t.requires_grad))


def rebuild_tensor(cls, dup, nbytes, dtype, shape, strides, offset, requires_grad):
    fd = dup.detach()
    st = os.fstat(fd)
    key = (st.st_dev, st.st_ino)
    blk = _MAPPED.get(key)
    if blk is None:
        blk = _MAPPED[key] = new_block(nbytes, fd)
    else:
        os.close(fd)
    arr = np.ndarray(shape, dtype, buffer=blk, offset=offset, strides=strides)
    from .._tensor import _make
    t = _make(arr)
    if cls is Parameter:
        return Parameter(t, requires_grad)
    if cls is Buffer:
        return Buffer(t)
    if requires_grad:
        t.requires_grad_(True)
    return t


def init_reductions() -> None:
    """Register the reduction with multiprocessing's pickler for tensors and their subclasses (its table is
    keyed by exact type)."""
    for cls in (Tensor, Parameter, Buffer):
        ForkingPickler.register(cls, reduce_tensor)
