# `make test` / `make demo` set up .venv from scratch (PyPI only), then run.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# pytest-xdist workers for `make test` (the suite is ~2,900 tests: one per core keeps it near 10 minutes on 2)
WORKERS ?= 2

.PHONY: test demo test-gpu check-torch bench clean fuzz-release typecheck lint readme

$(STAMP): pyproject.toml setup.py tensorlib/_crecorded.c tensorlib/_cexecute.c tensorlib/autograd/_cengine.c tensorlib/_cmath.c \
		profiler/_crecord.c tensorlib/_native_common.h tensorlib/_native_slots.h tensorlib/_records_api.h
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test]'
	touch $(STAMP)

# `make test` lints (below), runs the suite, then the `cuda` tests on the CPU against the fake CuPy in tests/fakecupy, once under CuPy 13's rules and
# once under 14's (names, signatures and dtypes from the real wheels; CUDA code paths only, no kernels or
# device timings, so it does not replace `make test-gpu` on a GPU machine).
# CI=1: hypothesis draws the same examples every run (tests/conftest.py), so a red suite means a real failure
test: export CI ?= 1
test: $(STAMP) lint
	$(PY) -m pytest -q -p no:cacheprovider -n $(WORKERS) tests
	FAKECUPY_RULES=13 PYTHONPATH=tests/fakecupy $(PY) -m pytest -q -p no:cacheprovider -n $(WORKERS) -m cuda tests
	FAKECUPY_RULES=14 PYTHONPATH=tests/fakecupy $(PY) -m pytest -q -p no:cacheprovider -n $(WORKERS) -m cuda tests

# Static types: viewer and safeio are fully annotated and checked strictly (settings in pyproject.toml).
typecheck: $(STAMP)
	$(PY) -m mypy --strict viewer safeio

# `make test` lints first: ruff over the whole tree (rules in pyproject.toml), the strict types above, and
# profiler's and tensorlib's types without strictness (their settings in pyproject.toml).
lint: typecheck
	$(PY) -m ruff check .
	$(PY) -m mypy profiler
	$(PY) -m mypy tensorlib

# The fuzz suite at 20 times its default examples (tests/fuzz/_scale.py), for a release: about 15 minutes.
fuzz-release: $(STAMP)
	FUZZ_SCALE=20 $(PY) -m pytest -q -p no:cacheprovider tests/fuzz

# Regenerate the README's marked output blocks from real runs (devtools/readme.py).
readme: $(STAMP)
	$(PY) devtools/readme.py

demo: $(STAMP)
	$(PY) samples/profile_demo.py

# For a GPU machine that has CuPy but no package registry: current interpreter (python3), no venv; wheels in .whl/
# are installed to /tmp/site first (textual, orjson, nvtx, cupti-python...: a lent machine lacks them). The cuda
# tests, the real programs against torch, gpu_check, ncu's NVTX filter and the GPU benchmarks, logs in
# $(GPU_OUT); fails if a check fails (devtools/gpu_session.sh).
GPU_OUT ?= gpu-session
test-gpu:
	OUT=$(GPU_OUT) PYTHON=$(PYTHON) bash devtools/gpu_session.sh

# Side-by-side checks against PyTorch itself (torch is not a dependency): pip install torch into .venv first.
check-torch: $(STAMP)
	$(PY) -c "import torch" || (echo "install torch into .venv first: .venv/bin/pip install torch"; exit 1)
	$(PY) -m pytest -q -p no:cacheprovider devtools/torch_compat

bench: $(STAMP)
	$(PY) benchmarks/dispatch_overhead.py

clean:
	rm -rf $(VENV) build *.egg-info
