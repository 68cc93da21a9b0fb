"""torch.nn.modules.upsampling: Upsample, UpsamplingNearest2d and UpsamplingBilinear2d, the same classes as
tensorlib.nn's. Programs name them by torch's file (`torch.nn.modules.upsampling.X`: safe_globals lists for
torch.load, isinstance checks); here they are defined elsewhere (see the imports)."""
from .extra import Upsample, UpsamplingBilinear2d, UpsamplingNearest2d

__all__ = ["Upsample", "UpsamplingNearest2d", "UpsamplingBilinear2d"]
