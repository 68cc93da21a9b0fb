"""The weights enums of torchvision's model builders, without the weights: nothing can be downloaded here, so a
builder given anything but `weights=None` (or the legacy `pretrained=False`) refuses, saying so, instead of
building a model that a program would take for a pretrained one."""
from __future__ import annotations

import enum
import warnings


class WeightsEnum(enum.Enum):
    """torchvision.models.WeightsEnum: members name the published weights (IMAGENET1K_V1, ..., DEFAULT);
    `verify` accepts a member, its name as a string, or None, as torchvision's does."""

    @classmethod
    def verify(cls, obj):
        if obj is not None:
            if type(obj) is str:
                obj = cls[obj.replace(cls.__name__ + ".", "")]
            elif not isinstance(obj, cls):
                raise TypeError(
                    f"Invalid Weight class provided; expected {cls.__name__} but received {obj.__class__.__name__}."
                )
        return obj

    def __repr__(self):
        return f"{self.__class__.__name__}.{self._name_}"


def weights_enum(name, members, default):
    """A WeightsEnum named `name` with `members`, DEFAULT an alias of `default` (torchvision's recommended)."""
    return WeightsEnum(name, [*((m, m) for m in members), ("DEFAULT", default)])


def no_weights(builder, weights_cls, weights, kwargs):
    """None, or refuse: the weights would be fetched from download.pytorch.org, which this stand-in never does.
    The legacy `pretrained=` keyword is read as torchvision's handle_legacy_interface reads it (True: the
    IMAGENET1K_V1 weights) with its two deprecation warnings."""
    if "pretrained" in kwargs and weights is None:
        pretrained = kwargs.pop("pretrained")
        weights = weights_cls.IMAGENET1K_V1 if pretrained else None
        warnings.warn("The parameter 'pretrained' is deprecated since 0.13 and may be removed in the future, "
                      "please use 'weights' instead.")
        msg = ("Arguments other than a weight enum or `None` for 'weights' are deprecated since 0.13 and may be "
               f"removed in the future. The current behavior is equivalent to passing `weights={weights}`.")
        if pretrained:
            msg += f" You can also use `weights={weights_cls.__name__}.DEFAULT` to get the most up-to-date weights."
        warnings.warn(msg)
    weights = weights_cls.verify(weights)
    if weights is not None:
        raise RuntimeError(
            f"torchvision stand-in (tests/programs/stubs): {builder}(weights={weights!r}) needs pretrained weights "
            f"downloaded from download.pytorch.org, which are not available here; only weights=None "
            f"(randomly initialized) is supported")
