"""A stand-in for the few torchvision names the vendored programs use (torchvision is not a dependency and
its data sets cannot be downloaded here): `datasets.MNIST` gives synthetic digits of MNIST's shapes and
dtypes, `transforms` converts them as torchvision does, `utils.save_image` checks its argument and writes
nothing. It imports `torch`, so under tensorlib.compat it builds tensorlib tensors and under torch, torch's."""
from . import datasets, transforms, utils  # noqa: F401
