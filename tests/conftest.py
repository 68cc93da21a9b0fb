"""Suite-wide settings: tests marked `cuda` run only where a GPU and CuPy are present, and say so."""
from __future__ import annotations

import os

import pytest
from hypothesis import settings

# CI runs the same examples every time: a property test that fails there fails for a reason, not a draw
settings.register_profile("tensorlib-ci", derandomize=True, deadline=None, print_blob=True)
if os.environ.get("CI"):
    settings.load_profile("tensorlib-ci")


def pytest_collection_modifyitems(config, items):
    import tensorlib
    if tensorlib.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs an NVIDIA GPU with CuPy (tensorlib.cuda.is_available() is False here)")
    for item in items:
        if item.get_closest_marker("cuda") is not None:
            item.add_marker(skip)
