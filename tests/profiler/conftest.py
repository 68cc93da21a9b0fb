"""Fixtures shared by tests/profiler; names start with ``nvtx_`` to stay clear of other features'."""

from __future__ import annotations

import pytest

from .nvtx_injection.build import HEADERS_HINT, build_recorder, find_compiler, find_nvtx_include


@pytest.fixture(scope="session")
def nvtx_recorder_lib(tmp_path_factory):
    """The NVTX recorder tool (nvtx_injection/nvtx_recorder.c), compiled once per session."""
    compiler = find_compiler()
    if compiler is None:
        pytest.skip("no C compiler (cc, gcc or clang) on PATH to build the NVTX recorder tool")
    include = find_nvtx_include()
    if include is None:
        pytest.fail(HEADERS_HINT)
    return build_recorder(tmp_path_factory.mktemp("nvtx_recorder"), compiler, include)
