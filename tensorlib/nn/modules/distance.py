"""torch.nn.modules.distance: PairwiseDistance and CosineSimilarity, the same classes as tensorlib.nn's. Programs name
them by torch's file (`torch.nn.modules.distance.X`: safe_globals lists for torch.load, isinstance checks); here
they are defined elsewhere (see the imports)."""
from .extra import CosineSimilarity, PairwiseDistance

__all__ = ["PairwiseDistance", "CosineSimilarity"]
