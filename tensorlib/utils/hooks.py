"""torch.utils.hooks: RemovableHandle (what nn.Module's register_*_hook methods return) and BackwardHook
(nn.Module's full backward hooks), defined beside nn.Module (this module is not imported by `import tensorlib`,
so nn.Module cannot import it without a cycle)."""
from __future__ import annotations

from ..nn.modules._functions import BackwardHook
from ..nn.modules.module import RemovableHandle

__all__ = ["BackwardHook", "RemovableHandle"]
