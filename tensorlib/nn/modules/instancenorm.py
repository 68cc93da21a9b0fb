"""torch.nn.modules.instancenorm: InstanceNorm1d/2d/3d (and its base class _InstanceNorm, which isinstance checks
name), the same classes as tensorlib.nn's. Programs name them by torch's file (`torch.nn.modules.instancenorm.X`:
safe_globals lists for torch.load, isinstance checks); here they are defined elsewhere (see the imports)."""
from .extra import InstanceNorm1d, InstanceNorm2d, InstanceNorm3d, _InstanceNorm  # noqa: F401  (isinstance checks)

from .lazy import LazyInstanceNorm1d, LazyInstanceNorm2d, LazyInstanceNorm3d

__all__ = ["InstanceNorm1d", "InstanceNorm2d", "InstanceNorm3d", "LazyInstanceNorm1d", "LazyInstanceNorm2d",
           "LazyInstanceNorm3d"]
