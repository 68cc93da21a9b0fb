"""torchvision.models' ResNet-18/34/50 and VGG-16 as torchvision 0.28 defines them (resnet.py, vgg.py: same
classes, module tree, state_dict keys and initialization; BSD-3-Clause, LICENSE here), built from the `torch`
the program runs on (tensorlib under tensorlib.compat). Randomly initialized only: `weights=` anything but None
is refused (_weights.no_weights), as pretrained weights cannot be downloaded here."""
from ._weights import WeightsEnum  # noqa: F401
from .resnet import (  # noqa: F401
    BasicBlock, Bottleneck, ResNet, ResNet18_Weights, ResNet34_Weights, ResNet50_Weights, resnet18, resnet34,
    resnet50)
from .vgg import VGG, VGG16_Weights, vgg16  # noqa: F401
