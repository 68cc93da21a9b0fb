"""torch.nn.modules.padding: the Constant/Zero/Reflection/Replication/CircularPad1d/2d/3d layers, the same classes as
tensorlib.nn's. Programs name them by torch's file (`torch.nn.modules.padding.X`: safe_globals lists for torch.load,
isinstance checks); here they are defined elsewhere (see the imports)."""
from .extra import (CircularPad1d, CircularPad2d, CircularPad3d, ConstantPad1d, ConstantPad2d, ConstantPad3d,
                    ReflectionPad1d, ReflectionPad2d, ReflectionPad3d, ReplicationPad1d, ReplicationPad2d,
                    ReplicationPad3d, ZeroPad1d, ZeroPad2d, ZeroPad3d)

__all__ = ["CircularPad1d", "CircularPad2d", "CircularPad3d", "ConstantPad1d", "ConstantPad2d", "ConstantPad3d",
           "ZeroPad1d", "ZeroPad2d", "ZeroPad3d", "ReflectionPad1d", "ReflectionPad2d", "ReflectionPad3d",
           "ReplicationPad1d", "ReplicationPad2d", "ReplicationPad3d"]
