"""torch.nn.modules.lazy: LazyModuleMixin and torch's lazy layers (LazyLinear, LazyConv*, LazyConvTranspose*,
LazyBatchNorm*, LazyInstanceNorm*).

A lazy module holds UninitializedParameter/UninitializedBuffer until its first call; a forward pre-hook infers
in_features / in_channels / num_features from that input, materializes them, runs the regular module's
reset_parameters (so the init distributions are the regular module's) and turns the module into its
`cls_to_become` (type(m) is nn.Linear afterwards), as torch does. torch defines these classes in linear.py,
conv.py, batchnorm.py and instancenorm.py; here they live together (conv.py and linear.py are imported by the
files that define the 3-d and transposed layers, so importing those from them would be circular)."""
from __future__ import annotations

import itertools
from typing import Any

from ... import ops
from ...autograd.grad_mode import no_grad
from ..parameter import UninitializedBuffer, UninitializedParameter, is_lazy
from . import conv as _conv, linear as _linear
from .conv import Conv1d, Conv2d, ConvTranspose2d
from .extra import BatchNorm3d, Conv3d, ConvTranspose1d, ConvTranspose3d, InstanceNorm1d, InstanceNorm2d, \
    InstanceNorm3d
from .linear import Linear
from .normalization import BatchNorm1d, BatchNorm2d


class LazyModuleMixin:
    """torch.nn.modules.lazy.LazyModuleMixin: a module whose parameters' shapes come from its first input.

    Subclasses implement initialize_parameters(*args, **kwargs) (materialize every uninitialized parameter and
    buffer, then reset them) and name cls_to_become, the regular class the module turns into once initialized.
    Until then state_dict() holds the uninitialized parameters themselves, and load_state_dict() of an
    initialized state materializes them from the loaded shapes (_lazy_load_hook), so a lazy module loads a
    checkpoint of the regular one."""
    cls_to_become: type[Any] | None = None

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._load_hook = self._register_load_state_dict_pre_hook(self._lazy_load_hook)
        self._initialize_hook = self.register_forward_pre_hook(
            self._infer_parameters, with_kwargs=True)

    def _save_to_state_dict(self, destination, prefix, keep_vars):
        """Module's, except that uninitialized ones are saved as they are (detaching one is an error)."""
        for name, param in self._parameters.items():
            if param is not None:
                if not (is_lazy(param) or keep_vars):
                    param = param.detach()
                destination[prefix + name] = param
        for name, buf in self._buffers.items():
            if buf is not None and name not in self._non_persistent_buffers_set:
                if not (is_lazy(buf) or keep_vars):
                    buf = buf.detach()
                destination[prefix + name] = buf

    def _lazy_load_hook(self, state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys,
                        error_msgs):
        """load_state_dict pre-hook: an uninitialized parameter or buffer whose entry in the state dict is an
        initialized tensor is materialized with that tensor's shape, so that the copy that follows fits."""
        for name, param in itertools.chain(self._parameters.items(),
                                           self._buffers.items()):
            key = prefix + name
            if key in state_dict and param is not None:
                input_param = state_dict[key]
                if is_lazy(param) and not is_lazy(input_param):
                    with no_grad():
                        param.materialize(input_param.shape)

    def initialize_parameters(self, *args, **kwargs):
        """Initialize parameters according to the input batch properties (each lazy layer's own)."""
        raise NotImplementedError(f"initialize_parameters is not implemented for {self.__class__.__name__}")

    def has_uninitialized_params(self):
        """Whether any of this module's own parameters or buffers is still uninitialized."""
        for param in itertools.chain(self._parameters.values(), self._buffers.values()):
            if is_lazy(param):
                return True
        return False

    def _infer_parameters(self, module, args, kwargs=None):
        """The forward pre-hook: initialize from the first call's arguments, then remove both hooks and turn
        the module into cls_to_become."""
        kwargs = kwargs if kwargs else {}
        module.initialize_parameters(*args, **kwargs)
        if module.has_uninitialized_params():
            raise RuntimeError(f"module {self._get_name()} has not been fully initialized")
        module._initialize_hook.remove()
        module._load_hook.remove()
        delattr(module, "_initialize_hook")
        delattr(module, "_load_hook")
        if module.cls_to_become is not None:
            module.__class__ = module.cls_to_become

    def _replicate_for_data_parallel(self):
        raise RuntimeError("Modules with uninitialized parameters can't be used with `DataParallel`. "
                           "Run a dummy forward pass to correctly initialize the modules")


class LazyLinear(LazyModuleMixin, Linear):
    """torch.nn.LazyLinear: a Linear whose in_features is input.shape[-1] of its first call."""
    cls_to_become = Linear

    def __init__(self, out_features, bias=True, device=None, dtype=None):
        factory_kwargs = {"device": device, "dtype": dtype}
        super().__init__(0, 0, False)
        self.weight = UninitializedParameter(**factory_kwargs)
        self.out_features = out_features
        if bias:
            self.bias = UninitializedParameter(**factory_kwargs)

    def reset_parameters(self):
        if not self.has_uninitialized_params() and self.in_features != 0:
            super().reset_parameters()

    def initialize_parameters(self, input):
        if self.has_uninitialized_params():
            with no_grad():
                self.in_features = input.shape[-1]
                self.weight.materialize((self.out_features, self.in_features))
                if self.bias is not None:
                    self.bias.materialize((self.out_features,))
                self.reset_parameters()
        if self.in_features == 0:
            if input.shape[-1] != self.weight.shape[-1]:
                raise AssertionError(f"The in_features inferred from input: {input.shape[-1]} is not equal to "
                                     f"in_features from self.weight: {self.weight.shape[-1]}")
            self.in_features = input.shape[-1]


class _LazyConvXdMixin(LazyModuleMixin):
    """The lazy convolutions' common part: in_channels is the first input's channel dimension."""
    _spatial = 2

    def _lazy_init(self, out_channels, bias, factory_kwargs):
        self.weight = UninitializedParameter(**factory_kwargs)
        self.out_channels = out_channels
        if bias:
            self.bias = UninitializedParameter(**factory_kwargs)

    def reset_parameters(self):
        if not self.has_uninitialized_params() and self.in_channels != 0:
            super().reset_parameters()

    def initialize_parameters(self, input, *args, **kwargs):
        if self.has_uninitialized_params():
            self.in_channels = self._get_in_channels(input)
            if self.in_channels % self.groups != 0:
                raise ValueError("in_channels must be divisible by groups")
            if self.transposed:
                shape = (self.in_channels, self.out_channels // self.groups, *self.kernel_size)
            else:
                shape = (self.out_channels, self.in_channels // self.groups, *self.kernel_size)
            with no_grad():
                self.weight.materialize(shape)
                if self.bias is not None:
                    self.bias.materialize((self.out_channels,))
                self.reset_parameters()

    def _get_in_channels(self, input):
        num_dims_no_batch = self._spatial + 1
        num_dims_batch = num_dims_no_batch + 1
        if input.dim() not in (num_dims_no_batch, num_dims_batch):
            raise RuntimeError(f"Expected {num_dims_no_batch}D (unbatched) or {num_dims_batch}D (batched) input "
                               f"to {self.__class__.__name__}, but got input of size: {input.shape}")
        return input.shape[1] if input.dim() == num_dims_batch else input.shape[0]


class _LazyConvNdMixin(_LazyConvXdMixin):
    """LazyConv1d/2d/3d's constructor: the regular convolution made with no channels and no bias tensor (torch's
    comment: none made only to be replaced by the uninitialized one), then the lazy parameters."""

    def __init__(self, out_channels, kernel_size, stride=1, padding=0, dilation=1, groups=1, bias=True,
                 padding_mode="zeros", device=None, dtype=None):
        super().__init__(0, 0, kernel_size, stride, padding, dilation, groups, False, padding_mode,
                         device=device, dtype=dtype)
        self._lazy_init(out_channels, bias, {"device": device, "dtype": dtype})


class LazyConv1d(_LazyConvNdMixin, Conv1d):
    """torch.nn.LazyConv1d: a Conv1d whose in_channels is its first input's channel dimension."""
    cls_to_become = Conv1d
    _spatial = 1


class LazyConv2d(_LazyConvNdMixin, Conv2d):
    """torch.nn.LazyConv2d: a Conv2d whose in_channels is its first input's channel dimension."""
    cls_to_become = Conv2d
    _spatial = 2


class LazyConv3d(_LazyConvNdMixin, Conv3d):
    """torch.nn.LazyConv3d: a Conv3d whose in_channels is its first input's channel dimension."""
    cls_to_become = Conv3d
    _spatial = 3


class _LazyConvTransposeMixin(_LazyConvXdMixin):
    transposed = True

    def __init__(self, out_channels, kernel_size, stride=1, padding=0, output_padding=0, groups=1, bias=True,
                 dilation=1, padding_mode="zeros", device=None, dtype=None):
        super().__init__(0, 0, kernel_size, stride, padding, output_padding, groups, False, dilation,
                         padding_mode, device=device, dtype=dtype)
        self._lazy_init(out_channels, bias, {"device": device, "dtype": dtype})


class LazyConvTranspose1d(_LazyConvTransposeMixin, ConvTranspose1d):
    """torch.nn.LazyConvTranspose1d: a ConvTranspose1d whose in_channels is its first input's channels."""
    cls_to_become = ConvTranspose1d
    _spatial = 1


class LazyConvTranspose2d(_LazyConvTransposeMixin, ConvTranspose2d):
    """torch.nn.LazyConvTranspose2d: a ConvTranspose2d whose in_channels is its first input's channels."""
    cls_to_become = ConvTranspose2d
    _spatial = 2


class LazyConvTranspose3d(_LazyConvTransposeMixin, ConvTranspose3d):
    """torch.nn.LazyConvTranspose3d: a ConvTranspose3d whose in_channels is its first input's channels."""
    cls_to_become = ConvTranspose3d
    _spatial = 3


class _LazyNormBase(LazyModuleMixin):
    """torch's _LazyNormBase: num_features is input.shape[1] of the first call (for every input rank, as
    torch's: an unbatched InstanceNorm input's shape[1] is its length, not its channels)."""

    def __init__(self, eps=1e-5, momentum=0.1, affine=True, track_running_stats=True, device=None, dtype=None, *,
                 bias=True):
        factory_kwargs = {"device": device, "dtype": dtype}
        super().__init__(0, eps, momentum, False, False, device=device, dtype=dtype, bias=False)
        self.affine = affine
        self.track_running_stats = track_running_stats
        if self.affine:
            self.weight = UninitializedParameter(**factory_kwargs)
            if bias:
                self.bias = UninitializedParameter(**factory_kwargs)
        self._set_use_bias(bool(affine and bias))
        if self.track_running_stats:
            self.register_buffer("running_mean", UninitializedBuffer(**factory_kwargs))
            self.register_buffer("running_var", UninitializedBuffer(**factory_kwargs))
            self.register_buffer("num_batches_tracked", ops.tensor(0, dtype="int64", device=device))

    def _set_use_bias(self, flag):
        self.use_bias = flag        # _BatchNorm's repr reads it

    def reset_parameters(self):
        if not self.has_uninitialized_params() and self.num_features != 0:
            super().reset_parameters()

    def initialize_parameters(self, input):
        if self.has_uninitialized_params():
            self.num_features = input.shape[1]
            with no_grad():
                if self.affine:
                    self.weight.materialize((self.num_features,))
                    if self.bias is not None:
                        self.bias.materialize((self.num_features,))
                if self.track_running_stats:
                    self.running_mean.materialize((self.num_features,))
                    self.running_var.materialize((self.num_features,))
                self.reset_parameters()


class LazyBatchNorm1d(_LazyNormBase, BatchNorm1d):
    """torch.nn.LazyBatchNorm1d: a BatchNorm1d whose num_features is input.shape[1] of its first call."""
    cls_to_become = BatchNorm1d


class LazyBatchNorm2d(_LazyNormBase, BatchNorm2d):
    """torch.nn.LazyBatchNorm2d: a BatchNorm2d whose num_features is input.shape[1] of its first call."""
    cls_to_become = BatchNorm2d


class LazyBatchNorm3d(_LazyNormBase, BatchNorm3d):
    """torch.nn.LazyBatchNorm3d: a BatchNorm3d whose num_features is input.shape[1] of its first call."""
    cls_to_become = BatchNorm3d


class _LazyInstanceNorm(_LazyNormBase):
    def _set_use_bias(self, flag):
        self._bias = flag           # _InstanceNorm's repr reads it

    def reset_parameters(self):
        """_InstanceNorm has no reset_parameters of its own here: torch's _NormBase's (running stats to
        0/1/0, weight ones, bias zeros)."""
        if self.has_uninitialized_params() or self.num_features == 0:
            return
        with no_grad():
            if self.track_running_stats:
                self.running_mean.zero_()
                self.running_var.fill_(1)
                self.num_batches_tracked.zero_()
            if self.affine:
                self.weight.fill_(1)
                if self.bias is not None:
                    self.bias.zero_()


class LazyInstanceNorm1d(_LazyInstanceNorm, InstanceNorm1d):
    """torch.nn.LazyInstanceNorm1d (affine and track_running_stats default to True, as torch's)."""
    cls_to_become = InstanceNorm1d


class LazyInstanceNorm2d(_LazyInstanceNorm, InstanceNorm2d):
    """torch.nn.LazyInstanceNorm2d (affine and track_running_stats default to True, as torch's)."""
    cls_to_become = InstanceNorm2d


class LazyInstanceNorm3d(_LazyInstanceNorm, InstanceNorm3d):
    """torch.nn.LazyInstanceNorm3d (affine and track_running_stats default to True, as torch's)."""
    cls_to_become = InstanceNorm3d


__all__ = ["LazyModuleMixin", "LazyLinear", "LazyConv1d", "LazyConv2d", "LazyConv3d", "LazyConvTranspose1d",
           "LazyConvTranspose2d", "LazyConvTranspose3d", "LazyBatchNorm1d", "LazyBatchNorm2d", "LazyBatchNorm3d",
           "LazyInstanceNorm1d", "LazyInstanceNorm2d", "LazyInstanceNorm3d"]

# torch's files for them (torch.nn.modules.linear.LazyLinear, torch.nn.modules.conv.LazyConv2d): set from here,
# since linear.py and conv.py cannot import this file without an import cycle
_linear.LazyLinear = LazyLinear  # type: ignore[attr-defined]
for _cls in (LazyConv1d, LazyConv2d, LazyConv3d, LazyConvTranspose1d, LazyConvTranspose2d, LazyConvTranspose3d):
    setattr(_conv, _cls.__name__, _cls)
del _cls
