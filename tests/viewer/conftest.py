from pathlib import Path

import pytest

DATA = Path(__file__).parent / "data"
CPU = DATA / "torch_cpu_mlp.json"
CUDA = DATA / "torch_cuda_mlp.json"
SMALL = DATA / "small.json"


@pytest.fixture
def cpu_path() -> str:
    return str(CPU)


@pytest.fixture
def cuda_path() -> str:
    return str(CUDA)
