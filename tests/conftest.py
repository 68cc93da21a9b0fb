"""Suite-wide settings: tests marked `cuda` run only where a GPU and CuPy are present, and say so."""
from __future__ import annotations

import pytest


def pytest_collection_modifyitems(config, items):
    import tensorlib
    if tensorlib.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs an NVIDIA GPU with CuPy (tensorlib.cuda.is_available() is False here)")
    for item in items:
        if item.get_closest_marker("cuda") is not None:
            item.add_marker(skip)
