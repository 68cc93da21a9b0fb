"""Tensor.share_memory_ / is_shared: a CPU tensor's values in memory other processes can map (torch's storage
"moved to shared memory"). The memory is a memfd (`os.memfd_create`, Linux) mapped MAP_SHARED: a child made by
fork shares the mapping, and `tensorlib.multiprocessing` sends its file descriptor to a spawned process or
through a queue, which maps the same pages (torch's "file_descriptor" strategy). An mmap of the memfd is the
root (`.base`) of the tensor's array, so a shared tensor and the views made of it later are recognised by
walking the array's bases (`shared_block`)."""
from __future__ import annotations

import mmap
import os
import weakref

import numpy as np

from .._tensor import Tensor
from ._define import public

__all__ = ["SharedBlock", "shared_block", "move_to_shared"]


class SharedBlock(mmap.mmap):
    """A memfd's pages, mapped shared; `fd` stays open while the block lives (it is what is sent to another
    process), closed when the block is collected."""
    fd: int


def new_block(nbytes: int, fd: int | None = None) -> SharedBlock:
    """A block of nbytes (at least 1: mmap refuses 0) on a new memfd, or on `fd` (received from another process)."""
    if fd is None:
        if not hasattr(os, "memfd_create"):
            raise RuntimeError("share_memory_: shared tensors need Linux's memfd_create (not available on this "
                               "platform)")
        fd = os.memfd_create("tensorlib-shared", getattr(os, "MFD_CLOEXEC", 0))
        os.ftruncate(fd, max(nbytes, 1))
    blk = SharedBlock(fd, max(nbytes, 1))
    blk.fd = fd
    weakref.finalize(blk, os.close, fd)
    return blk


def shared_block(a) -> SharedBlock | None:
    """The shared block an array's memory lies in, or None."""
    b = a
    while isinstance(b, np.ndarray):
        b = b.base
    return b if isinstance(b, SharedBlock) else None


def _root(a: np.ndarray) -> np.ndarray:
    while isinstance(a.base, np.ndarray):
        a = a.base
    return a


def _address(a: np.ndarray) -> int:
    return a.__array_interface__["data"][0]


def move_to_shared(t: Tensor) -> None:
    """Move t's values, with the whole array its array is a view of (its "storage"), into a new shared block, in
    place: t (and its base tensor, when t is a view) keep their shapes, strides and values, now in the block."""
    d = t._data
    root = _root(d)
    ends = [s * (n - 1) for s, n in zip(root.strides, root.shape)] if root.size else []
    lo = _address(root) + sum(e for e in ends if e < 0)         # its lowest and highest byte (any strides)
    span = sum(abs(e) for e in ends) + root.itemsize if root.size else 0
    blk = new_block(span)
    moved = np.ndarray(root.shape, root.dtype, buffer=blk, offset=_address(root) - lo, strides=root.strides)
    np.copyto(moved, root)

    def rebase(x: np.ndarray) -> np.ndarray:
        return np.ndarray(x.shape, x.dtype, buffer=blk, offset=_address(x) - lo, strides=x.strides)
    base = t._base
    if base is not None and isinstance(base._data, np.ndarray) and _root(base._data) is root:
        base._data = rebase(base._data)
    t._data = moved if d is root else rebase(d)


@public(name="share_memory_", function=False, method=True)
def _share_memory_(self):
    """torch's Tensor.share_memory_: a no-op where the values are shared already and for CUDA tensors (which
    cross processes by device handles, not by host memory)."""
    d = self._data
    if isinstance(d, np.ndarray) and shared_block(d) is None:
        move_to_shared(self)
    return self


@public(name="is_shared", function=False, method=True)
def _is_shared(self):
    """Whether the values are in shared memory (share_memory_); CUDA tensors' always are, as torch says."""
    d = self._data
    return shared_block(d) is not None if isinstance(d, np.ndarray) else True
