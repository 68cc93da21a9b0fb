"""torch.nn.modules.pixelshuffle: PixelShuffle and PixelUnshuffle, the same classes as tensorlib.nn's. Programs name
them by torch's file (`torch.nn.modules.pixelshuffle.X`: safe_globals lists for torch.load, isinstance checks); here
they are defined elsewhere (see the imports)."""
from .extra import PixelShuffle, PixelUnshuffle

__all__ = ["PixelShuffle", "PixelUnshuffle"]
