"""torch.nn.modules.fold: Fold and Unfold, the same classes as tensorlib.nn's. Programs name them by torch's file
(`torch.nn.modules.fold.X`: safe_globals lists for torch.load, isinstance checks); here they are defined elsewhere
(see the imports)."""
from .extra import Fold, Unfold

__all__ = ["Fold", "Unfold"]
