"""Suite-wide settings: tests marked `cuda` run only where a GPU and CuPy are present, and say so.

With the fake CuPy on the path (PYTHONPATH=tests/fakecupy, see tests/fakecupy/cupy/__init__.py) CUDA
is "available": the `cuda` tests run on the CPU against it, except those also marked `real_gpu`
(they measure or need the real device), which are deselected there."""
from __future__ import annotations

import os

import pytest
from hypothesis import settings

# CI runs the same examples every time: a property test that fails there fails for a reason, not a draw
settings.register_profile("tensorlib-ci", derandomize=True, deadline=None, print_blob=True)
if os.environ.get("CI"):
    settings.load_profile("tensorlib-ci")


def fake_cupy() -> bool:
    """Whether tensorlib's CuPy is the fake one from tests/fakecupy."""
    import tensorlib
    if not tensorlib.cuda.is_available():
        return False
    from tensorlib import _device
    return bool(getattr(_device._cupy, "__fake__", False))


def pytest_collection_modifyitems(config, items):
    import tensorlib
    if tensorlib.cuda.is_available():
        if fake_cupy():
            gone = [it for it in items if it.get_closest_marker("real_gpu") is not None]
            if gone:
                config.hook.pytest_deselected(items=gone)
                items[:] = [it for it in items if it.get_closest_marker("real_gpu") is None]
        return
    skip = pytest.mark.skip(reason="needs an NVIDIA GPU with CuPy (tensorlib.cuda.is_available() is False here)")
    for item in items:
        if item.get_closest_marker("cuda") is not None:
            item.add_marker(skip)
