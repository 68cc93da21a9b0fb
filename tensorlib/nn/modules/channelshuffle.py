"""torch.nn.modules.channelshuffle: ChannelShuffle, the same classes as tensorlib.nn's. Programs name them by torch's
file (`torch.nn.modules.channelshuffle.X`: safe_globals lists for torch.load, isinstance checks); here they are
defined elsewhere (see the imports)."""
from .extra import ChannelShuffle

__all__ = ["ChannelShuffle"]
