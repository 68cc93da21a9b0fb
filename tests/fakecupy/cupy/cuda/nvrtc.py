"""cupy.cuda.nvrtc (fake): what NVRTC reports of itself (CUDA 12.8's), no compilation."""
from __future__ import annotations


def getVersion():
    return 12, 8


def getSupportedArchs():
    return [50, 52, 53, 60, 61, 62, 70, 72, 75, 80, 86, 87, 89, 90, 100, 101, 120]
