"""A stand-in for the few torchvision names the vendored programs use (torchvision is not a dependency and
its data sets cannot be downloaded here): `datasets.MNIST` gives synthetic digits of MNIST's shapes and
dtypes, `transforms` converts them as torchvision does, `utils.save_image` checks its argument and writes
nothing, `models` builds torchvision's ResNet-18/34/50 and VGG-16 without pretrained weights. It imports
`torch`, so under tensorlib.compat it builds tensorlib tensors and under torch, torch's; `models` is imported
on first use, as it imports torch.nn at its top."""
from . import datasets, transforms, utils  # noqa: F401


def __getattr__(name):
    if name == "models":
        import importlib
        return importlib.import_module(".models", __name__)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
