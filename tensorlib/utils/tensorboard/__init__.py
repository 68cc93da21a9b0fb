"""torch.utils.tensorboard.SummaryWriter on tensorboardX (an extra: pip install 'tensorlib-profiler[tensorboard]').

Every `add_*` method takes tensorlib tensors wherever torch's takes torch tensors: they are handed to
tensorboardX as NumPy arrays (0-d ones as Python numbers), inside dicts and lists too. `add_graph` needs
torch's JIT tracer and is refused with a message saying so.
"""
from __future__ import annotations

import functools

try:
    from tensorboardX import SummaryWriter as _Writer
except ImportError as e:                       # the extra is not installed
    raise ImportError("tensorlib.utils.tensorboard needs tensorboardX: pip install 'tensorlib-profiler[tensorboard]' "
                      "(or pip install tensorboardX)") from e

from ..._tensor import Tensor

__all__ = ["SummaryWriter"]

_NO_TRACER = {"add_graph", "add_onnx_graph", "add_openvino_graph"}


def _plain(v):
    if isinstance(v, Tensor):
        a = v.detach().cpu().numpy()
        return a.item() if a.ndim == 0 else a
    if isinstance(v, dict):
        return {k: _plain(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return type(v)(_plain(x) for x in v)
    return v


def _converting(method):
    @functools.wraps(method)
    def add(self, *args, **kwargs):
        return method(self, *map(_plain, args), **{k: _plain(v) for k, v in kwargs.items()})
    return add


def _refused(name):
    def add(self, *args, **kwargs):
        raise NotImplementedError(f"SummaryWriter.{name} traces the model with torch's JIT, which tensorlib does "
                                  f"not have; log scalars, histograms and images instead")
    add.__name__ = name
    return add


class SummaryWriter(_Writer):
    """torch's SummaryWriter: the same arguments, event files readable by TensorBoard."""

    def __init__(self, log_dir=None, comment="", purge_step=None, max_queue=10, flush_secs=120,
                 filename_suffix=""):
        super().__init__(logdir=log_dir, comment=comment, purge_step=purge_step, max_queue=max_queue,
                         flush_secs=flush_secs, filename_suffix=filename_suffix)


for _name in [n for n in dir(_Writer) if n.startswith("add_")]:
    setattr(SummaryWriter, _name, _refused(_name) if _name in _NO_TRACER else _converting(getattr(_Writer, _name)))
del _name
