"""torch.nn.modules.batchnorm: BatchNorm1d/2d/3d and SyncBatchNorm (and its base class _BatchNorm, which isinstance
checks name), the same classes as tensorlib.nn's. Programs name them by torch's file
(`torch.nn.modules.batchnorm.X`: safe_globals lists for torch.load, isinstance checks); here they are defined
elsewhere (see the imports)."""
from .extra import BatchNorm3d
from .normalization import BatchNorm1d, BatchNorm2d, _BatchNorm  # noqa: F401  (torch.nn.modules.batchnorm._BatchNorm)
from .lazy import LazyBatchNorm1d, LazyBatchNorm2d, LazyBatchNorm3d
from .sync_batchnorm import SyncBatchNorm

__all__ = ["BatchNorm1d", "LazyBatchNorm1d", "BatchNorm2d", "LazyBatchNorm2d", "BatchNorm3d", "LazyBatchNorm3d",
           "SyncBatchNorm"]
