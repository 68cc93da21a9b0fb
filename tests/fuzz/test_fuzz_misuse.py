"""Misuse of tensors and autograd against torch's error classes and messages (issue 21, item 10).

CORPUS: each snippet, run with T = tensorlib (F = T.nn.functional), must raise the class and message recorded
here from torch 2.13 (CPU), with "torch" read as "tensorlib". When torch is importable the same snippet is run
with T = torch too, so the recorded expectations stay honest. KNOWN_DIFFERENCES are strict xfails: each says
why tensorlib differs; when one gets fixed its test passes, fails as XPASS, and its entry goes.

The hypothesis part mixes random shapes, dims and indices: tensorlib either agrees with NumPy or raises one of
torch's error classes in torch's words; no NumPy exception class or wording ("axis", "array") leaks through.
"""
from __future__ import annotations

import re
import warnings

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import tensorlib as tl

from ._scale import SCALE

try:
    import torch
except ImportError:         # the recorded expectations are checked against torch where it is installed
    torch = None

CORPUS = [
    ('add_broadcast', 'T.ones(2, 3) + T.ones(4)',
     'RuntimeError', 'The size of tensor a (3) must match the size of tensor b (4) at non-singleton dimension 1'),
    ('mul_broadcast_3d', 'T.ones(2, 3, 4) * T.ones(3, 3)',
     'RuntimeError', 'The size of tensor a (4) must match the size of tensor b (3) at non-singleton dimension 2'),
    ('inplace_broadcast_out', 'T.ones(3).add_(T.ones(2, 3))',
     'RuntimeError', "output with shape [3] doesn't match the broadcast shape [2, 3]"),
    ('matmul_mismatch', 'T.ones(2, 3) @ T.ones(4, 5)',
     'RuntimeError', 'mat1 and mat2 shapes cannot be multiplied (2x3 and 4x5)'),
    ('matmul_vec_mismatch', 'T.ones(3) @ T.ones(4)',
     'RuntimeError', 'inconsistent tensor size, expected tensor [3] and src [4] to have the same number of elements, b'
     'ut got 3 and 4 elements respectively'),
    ('matmul_0d', 'T.tensor(1.0) @ T.ones(3)',
     'RuntimeError', 'both arguments to matmul need to be at least 1D, but they are 0D and 1D'),
    ('mm_1d', 'T.mm(T.ones(3), T.ones(3, 2))',
     'RuntimeError', 'self must be a matrix'),
    ('mm_mismatch', 'T.mm(T.ones(2, 3), T.ones(2, 3))',
     'RuntimeError', 'mat1 and mat2 shapes cannot be multiplied (2x3 and 2x3)'),
    ('bmm_2d', 'T.bmm(T.ones(2, 3), T.ones(3, 2))',
     'RuntimeError', 'batch1 must be a 3D tensor'),
    ('bmm_batch', 'T.bmm(T.ones(2, 2, 3), T.ones(3, 3, 2))',
     'RuntimeError', 'Expected size for first two dimensions of batch2 tensor to be: [2, 3] but got: [3, 3].'),
    ('view_bad_size', 'T.ones(2, 3).view(4, 2)',
     'RuntimeError', "shape '[4, 2]' is invalid for input of size 6"),
    ('view_two_infer', 'T.ones(2, 3).view(-1, -1)',
     'RuntimeError', 'only one dimension can be inferred'),
    ('view_noncontig', 'T.ones(2, 3).t().view(6)',
     'RuntimeError', "view size is not compatible with input tensor's size and stride (at least one dimension spans ac"
     'ross two contiguous subspaces). Use .reshape(...) instead.'),
    ('reshape_bad', 'T.ones(2, 3).reshape(5)',
     'RuntimeError', "shape '[5]' is invalid for input of size 6"),
    ('cat_mismatch', 'T.cat([T.ones(2, 3), T.ones(2, 4)])',
     'RuntimeError', 'Sizes of tensors must match except in dimension 0. Expected size 3 but got size 4 for tensor num'
     'ber 1 in the list.'),
    ('cat_ndim', 'T.cat([T.ones(2, 3), T.ones(3)])',
     'RuntimeError', 'Tensors must have same number of dimensions: got 2 and 1'),
    ('stack_mismatch', 'T.stack([T.ones(2), T.ones(3)])',
     'RuntimeError', 'stack expects each tensor to be equal size, but got [2] at entry 0 and [3] at entry 1'),
    ('expand_bad', 'T.ones(2, 3).expand(4, 3)',
     'RuntimeError', 'The expanded size of the tensor (4) must match the existing size (2) at non-singleton dimension '
     '0.  Target sizes: [4, 3].  Tensor sizes: [2, 3]'),
    ('expand_fewer', 'T.ones(2, 3).expand(3)',
     'RuntimeError', 'expand(tensorlib.FloatTensor{[2, 3]}, size=[3]): the number of sizes provided (1) must be greate'
     'r or equal to the number of dimensions in the tensor (2)'),
    ('linear_mismatch', 'F.linear(T.ones(2, 3), T.ones(4, 5))',
     'RuntimeError', 'mat1 and mat2 shapes cannot be multiplied (2x3 and 5x4)'),
    ('conv2d_3d_weight', 'F.conv2d(T.ones(1, 3, 8, 8), T.ones(4, 3, 3))',
     'RuntimeError', 'expected stride to be a single integer value or a list of 1 values to match the convolution dime'
     'nsions, but got stride=[1, 1]'),
    ('conv2d_channels', 'F.conv2d(T.ones(1, 3, 8, 8), T.ones(4, 2, 3, 3))',
     'RuntimeError', 'Given groups=1, weight of size [4, 2, 3, 3], expected input[1, 3, 8, 8] to have 2 channels, but '
     'got 3 channels instead'),
    ('maxpool_too_big', 'F.max_pool2d(T.ones(1, 1, 2, 2), 3)',
     'RuntimeError', 'Given input size: (1x2x2). Calculated output size: (1x0x0). Output size is too small'),
    ('cross_entropy_batch', 'F.cross_entropy(T.ones(3, 5), T.tensor([1, 2]))',
     'ValueError', 'Expected input batch_size (3) to match target batch_size (2).'),
    ('nll_target_oob', 'F.nll_loss(T.ones(2, 3), T.tensor([0, 5]))',
     'IndexError', 'Target 5 is out of bounds.'),
    ('embedding_oob', 'F.embedding(T.tensor([0, 7]), T.ones(5, 2))',
     'IndexError', 'index out of range in self'),
    ('masked_fill_shape', 'T.ones(2, 3).masked_fill(T.ones(4, dtype=T.bool), 0.0)',
     'RuntimeError', 'The size of tensor a (4) must match the size of tensor b (3) at non-singleton dimension 1'),
    ('where_shape', 'T.where(T.ones(2, dtype=T.bool), T.ones(3), T.ones(3))',
     'RuntimeError', 'The size of tensor a (2) must match the size of tensor b (3) at non-singleton dimension 0'),
    ('dot_1d_mismatch', 'T.dot(T.ones(3), T.ones(4))',
     'RuntimeError', 'inconsistent tensor size, expected tensor [3] and src [4] to have the same number of elements, b'
     'ut got 3 and 4 elements respectively'),
    ('dot_2d', 'T.dot(T.ones(2, 2), T.ones(2, 2))',
     'RuntimeError', '1D tensors expected, but got 2D and 2D tensors'),
    ('t_3d', 'T.ones(2, 3, 4).t()',
     'RuntimeError', 't() expects a tensor with <= 2 dimensions, but self is 3D'),
    ('permute_len', 'T.ones(2, 3).permute(0)',
     'RuntimeError', 'permute(sparse_coo): number of dimensions in the tensor input does not match the length of the d'
     'esired ordering of dimensions i.e. input.dim() = 2 is not equal to len(dims) = 1'),
    ('permute_repeat', 'T.ones(2, 3).permute(0, 0)',
     'RuntimeError', 'permute(): duplicate dims are not allowed.'),
    ('repeat_fewer', 'T.ones(2, 3).repeat(2)',
     'RuntimeError', 'Number of dimensions of repeat dims can not be smaller than number of dimensions of tensor'),
    ('chunk_zero', 'T.ones(4).chunk(0)',
     'RuntimeError', 'chunk expects `chunks` to be greater than 0, got: 0'),
    ('split_zero', 'T.ones(4).split(0)',
     'RuntimeError', 'split_size can only be 0 if dimension size is 0, but got dimension size of 4'),
    ('topk_too_big', 'T.ones(3).topk(5)',
     'RuntimeError', 'selected index k out of range'),
    ('sum_dim', 'T.ones(2, 3).sum(dim=5)',
     'IndexError', 'Dimension out of range (expected to be in range of [-2, 1], but got 5)'),
    ('mean_dim_neg', 'T.ones(2, 3).mean(dim=-3)',
     'IndexError', 'Dimension out of range (expected to be in range of [-2, 1], but got -3)'),
    ('softmax_dim', 'T.ones(2, 3).softmax(dim=3)',
     'IndexError', 'Dimension out of range (expected to be in range of [-2, 1], but got 3)'),
    ('transpose_dim', 'T.ones(2, 3).transpose(0, 5)',
     'IndexError', 'Dimension out of range (expected to be in range of [-2, 1], but got 5)'),
    ('squeeze_dim', 'T.ones(2, 3).squeeze(4)',
     'IndexError', 'Dimension out of range (expected to be in range of [-2, 1], but got 4)'),
    ('unsqueeze_dim', 'T.ones(2, 3).unsqueeze(5)',
     'IndexError', 'Dimension out of range (expected to be in range of [-3, 2], but got 5)'),
    ('cat_dim', 'T.cat([T.ones(2, 3), T.ones(2, 3)], dim=3)',
     'IndexError', 'Dimension out of range (expected to be in range of [-2, 1], but got 3)'),
    ('stack_dim', 'T.stack([T.ones(2), T.ones(2)], dim=3)',
     'IndexError', 'Dimension out of range (expected to be in range of [-2, 1], but got 3)'),
    ('flatten_dim', 'T.ones(2, 3).flatten(3)',
     'IndexError', 'Dimension out of range (expected to be in range of [-2, 1], but got 3)'),
    ('size_dim', 'T.ones(2, 3).size(5)',
     'IndexError', 'Dimension out of range (expected to be in range of [-2, 1], but got 5)'),
    ('max_dim', 'T.ones(2, 3).max(dim=4)',
     'IndexError', 'Dimension out of range (expected to be in range of [-2, 1], but got 4)'),
    ('argmax_dim', 'T.ones(2, 3).argmax(dim=2)',
     'IndexError', 'Dimension out of range (expected to be in range of [-2, 1], but got 2)'),
    ('gather_dim', 'T.ones(2, 3).gather(3, T.zeros(2, 3, dtype=T.long))',
     'IndexError', 'Dimension out of range (expected to be in range of [-2, 1], but got 3)'),
    ('index_select_dim', 'T.ones(2, 3).index_select(2, T.tensor([0]))',
     'IndexError', 'Dimension out of range (expected to be in range of [-2, 1], but got 2)'),
    ('narrow_range', 'T.ones(2, 3).narrow(1, 2, 3)',
     'RuntimeError', 'start (2) + length (3) exceeds dimension size (3).'),
    ('select_range', 'T.ones(2, 3).select(1, 3)',
     'IndexError', 'select(): index 3 out of range for tensor of size [2, 3] at dimension 1'),
    ('cumsum_dim', 'T.ones(3).cumsum(dim=1)',
     'IndexError', 'Dimension out of range (expected to be in range of [-1, 0], but got 1)'),
    ('flip_dim', 'T.ones(3).flip(1)',
     'IndexError', 'Dimension out of range (expected to be in range of [-1, 0], but got 1)'),
    ('int_floordiv_zero', 'T.tensor([4, 5]) // 0',
     'RuntimeError', 'ZeroDivisionError'),
    ('int_floordiv_zero_tensor', 'T.tensor([4, 5]) // T.tensor([0, 1])',
     'RuntimeError', 'ZeroDivisionError'),
    ('int_remainder_zero', 'T.tensor([4, 5]) % 0',
     'RuntimeError', 'ZeroDivisionError'),
    ('softmax_int', 'T.tensor([1, 2, 3]).softmax(0)',
     'NotImplementedError', '"softmax_lastdim_kernel_impl" not implemented for \'Long\''),
    ('log_softmax_int', 'F.log_softmax(T.tensor([1, 2, 3]), 0)',
     'NotImplementedError', '"log_softmax_lastdim_kernel_impl" not implemented for \'Long\''),
    ('mean_int', 'T.tensor([1, 2, 3]).mean()',
     'RuntimeError', 'mean(): could not infer output dtype. Input dtype must be either a floating point or complex dty'
     'pe. Got: Long'),
    ('requires_grad_int', 'T.tensor([1, 2]).requires_grad_()',
     'RuntimeError', 'only Tensors of floating point dtype can require gradients'),
    ('tensor_int_requires_grad', 'T.tensor([1, 2], requires_grad=True)',
     'RuntimeError', 'Only Tensors of floating point and complex dtype can require gradients'),
    ('matmul_dtype', 'T.ones(2, 2) @ T.ones(2, 2, dtype=T.float64)',
     'RuntimeError', 'expected m1 and m2 to have the same dtype, but got: float != double'),
    ('inplace_int_float', 'T.tensor([1, 2]).add_(1.5)',
     'RuntimeError', "result type Float can't be cast to the desired output type Long"),
    ('bitwise_float', 'T.ones(2) & T.ones(2)',
     'NotImplementedError', '"bitwise_and_cpu" not implemented for \'Float\''),
    ('float_index', 'T.ones(3)[T.tensor([0.0])]',
     'IndexError', 'tensors used as indices must be long, int, byte or bool tensors'),
    ('linear_dtype', 'F.linear(T.ones(2, 3), T.ones(4, 3, dtype=T.float64))',
     'RuntimeError', 'expected m1 and m2 to have the same dtype, but got: float != double'),
    ('cross_entropy_float_target_shape', 'F.cross_entropy(T.ones(2, 3), T.ones(2, 4))',
     'RuntimeError', '0D or 1D target tensor expected, multi-target not supported'),
    ('one_hot_float', 'F.one_hot(T.tensor([1.0]))',
     'RuntimeError', 'one_hot is only applicable to index tensor of type LongTensor.'),
    ('one_hot_negative', 'F.one_hot(T.tensor([-1]))',
     'RuntimeError', 'Class values must be non-negative.'),
    ('index_oob', 'T.ones(3)[5]',
     'IndexError', 'index 5 is out of bounds for dimension 0 with size 3'),
    ('index_oob_neg', 'T.ones(2, 3)[0, -4]',
     'IndexError', 'index -4 is out of bounds for dimension 1 with size 3'),
    ('too_many_indices', 'T.ones(3)[0, 0]',
     'IndexError', 'too many indices for tensor of dimension 1'),
    ('index_0d', 'T.tensor(1.0)[0]',
     'IndexError', 'invalid index of a 0-dim tensor. Use `tensor.item()` in Python or `tensor.item<T>()` in C++ to c'
     'onvert a 0-dim tensor to a number'),
    ('bool_mask_shape', 'T.ones(3)[T.tensor([True, False])]',
     'IndexError', 'The shape of the mask [2] at index 0 does not match the shape of the indexed tensor [3] at index'
     ' 0'),
    ('bool_mask_2d_shape', 'T.ones(2, 3)[T.ones(3, 2, dtype=T.bool)]',
     'IndexError', 'The shape of the mask [3, 2] at index 0 does not match the shape of the indexed tensor [2, 3] at'
     ' index 0'),
    ('adv_index_oob', 'T.ones(3)[[0, 5]]',
     'IndexError', 'index 5 is out of bounds for dimension 0 with size 3'),
    ('adv_index_tensor_oob', 'T.ones(3)[T.tensor([0, 5])]',
     'IndexError', 'index 5 is out of bounds for dimension 0 with size 3'),
    ('index_str', "T.ones(3)['a']",
     'TypeError', "new(): invalid data type 'str'"),
    ('index_str_in_tuple', "T.ones(2, 3)[0, 'a']",
     'TypeError', "new(): invalid data type 'str'"),
    ('index_str_list', "T.ones(3)[['a']]",
     'TypeError', "new(): invalid data type 'str'"),
    ('index_bytes', "T.ones(3)[b'a']",
     'TypeError', "new(): invalid data type 'bytes'"),
    ('setitem_str', "T.ones(3).__setitem__('a', 1.0)",
     'TypeError', "new(): invalid data type 'str'"),
    ('setitem_oob', 'T.ones(3).__setitem__(4, 1.0)',
     'IndexError', 'index 4 is out of bounds for dimension 0 with size 3'),
    ('setitem_shape', 'T.ones(2, 3).__setitem__(0, T.ones(4))',
     'RuntimeError', 'The expanded size of the tensor (3) must match the existing size (4) at non-singleton dimension '
     '0.  Target sizes: [3].  Tensor sizes: [4]'),
    ('gather_oob', 'T.ones(2, 3).gather(1, T.tensor([[0, 7], [0, 0]]))',
     'RuntimeError', 'index 7 is out of bounds for dimension 1 with size 3'),
    ('index_select_oob', 'T.ones(3).index_select(0, T.tensor([4]))',
     'IndexError', 'index out of range in self'),
    ('index_select_2d_index', 'T.ones(3).index_select(0, T.tensor([[0]]))',
     'IndexError', 'index_select(): Index is supposed to be a vector'),
    ('scatter_oob', 'T.zeros(3).scatter(0, T.tensor([5]), T.ones(1))',
     'RuntimeError', 'index 5 is out of bounds for dimension 0 with size 3'),
    ('backward_twice', 'x = T.ones(2, requires_grad=True); y = (x * x).sum(); y.backward(); y.backward()',
     'RuntimeError', 'Trying to backward through the graph a second time (or directly access saved tensors after they '
     'have already been freed). Saved intermediate values of the graph are freed when you call .backwa'
     'rd() or autograd.grad(). Specify retain_graph=True if you need to backward through the graph a s'
     'econd time or if you need to access saved tensors after calling backward.'),
    ('backward_nonscalar', 'x = T.ones(2, requires_grad=True); (x * 2).backward()',
     'RuntimeError', 'grad can be implicitly created only for scalar outputs'),
    ('backward_no_grad', 'T.ones(2).sum().backward()',
     'RuntimeError', 'element 0 of tensors does not require grad and does not have a grad_fn'),
    ('backward_grad_shape', 'x = T.ones(2, requires_grad=True); (x * 2).backward(T.ones(3))',
     'RuntimeError', 'Mismatch in shape: grad_output[0] has a shape of tensorlib.Size([3]) and output[0] has a shape o'
     'f tensorlib.Size([2]).'),
    ('inplace_leaf', 'T.ones(2, requires_grad=True).add_(1)',
     'RuntimeError', 'a leaf Variable that requires grad is being used in an in-place operation.'),
    ('inplace_view_leaf', 'T.ones(2, 2, requires_grad=True)[0].mul_(2)',
     'RuntimeError', 'a view of a leaf Variable that requires grad is being used in an in-place operation.'),
    ('item_many', 'T.ones(3).item()',
     'RuntimeError', 'a Tensor with 3 elements cannot be converted to Scalar'),
    ('item_empty', 'T.ones(0).item()',
     'RuntimeError', 'a Tensor with 0 elements cannot be converted to Scalar'),
    ('bool_many', 'bool(T.ones(3))',
     'RuntimeError', 'Boolean value of Tensor with more than one value is ambiguous'),
    ('float_many', 'float(T.ones(2))',
     'ValueError', 'only one element tensors can be converted to Python scalars'),
    ('int_many', 'int(T.ones(2))',
     'ValueError', 'only one element tensors can be converted to Python scalars'),
    ('requires_grad_false_nonleaf', '(T.ones(2, requires_grad=True) * 2).requires_grad_(False)',
     'RuntimeError', 'you can only change requires_grad flags of leaf variables. If you want to use a computed variabl'
     "e in a subgraph that doesn't require differentiation use var_no_grad = var.detach()."),
    ('numpy_requires_grad', 'T.ones(2, requires_grad=True).numpy()',
     'RuntimeError', "Can't call numpy() on Tensor that requires grad. Use tensor.detach().numpy() instead."),
    ('retain_grad_no_grad', 'T.ones(2).retain_grad()',
     'RuntimeError', "can't retain_grad on Tensor that has requires_grad=False"),
    ('register_hook_no_grad', 'T.ones(2).register_hook(lambda g: g)',
     'RuntimeError', "cannot register a hook on a tensor that doesn't require gradient"),
    ('grad_unused', 'x = T.ones(2, requires_grad=True); w = T.ones(2, requires_grad=True); '
                    'T.autograd.grad((x * 2).sum(), [x, w])',
     'RuntimeError', 'The differentiated Tensor at index 1 appears to not have been used in the graph. Set allow_unuse'
     'd=True if this is the desired behavior.'),
    ('grad_nonscalar', 'x = T.ones(2, requires_grad=True); T.autograd.grad(x * 2, x)',
     'RuntimeError', 'grad can be implicitly created only for scalar outputs'),
    ('grad_no_grad_output', 'x = T.ones(2, requires_grad=True); T.autograd.grad(T.ones(2).sum(), x)',
     'RuntimeError', 'element 0 of tensors does not require grad and does not have a grad_fn'),
    ('detach_view_inplace', 'T.ones(2, 3)[0].detach_()',
     'RuntimeError', "Can't detach views in-place. Use detach() instead. If you are using DistributedDataParallel (DDP"
     ') for training, and gradient_as_bucket_view is set as True, gradients are views of DDP buckets, '
     'and hence detach_() cannot be called on these gradients. To fix this error, please refer to the '
     'Optimizer.zero_grad() function in tensorlib/optim/optimizer.py as the solution.'),
    ('inference_requires_grad', "exec('with T.inference_mode():\\n    t = T.ones(2)'); t.requires_grad_()",
     'RuntimeError', 'Setting requires_grad=True on inference tensor outside InferenceMode is not allowed.'),
    ('inference_saved', "exec('with T.inference_mode():\\n    t = T.ones(2)'); "
                        "w = T.ones(2, requires_grad=True); (w * t).sum()",
     'RuntimeError', 'Inference tensors cannot be saved for backward. Please do not use Tensors created in inference m'
     'ode in computation tracked by autograd. To work around this, you can make a clone to get a norma'
     'l tensor and use it in autograd, or use `tensorlib.no_grad()` instead of `tensorlib.inference_mo'
     'de()`.'),
    ('inference_inplace', "exec('with T.inference_mode():\\n    t = T.ones(2)'); t.add_(1)",
     'RuntimeError', 'Inplace update to inference tensor outside InferenceMode is not allowed.You can make a clone to '
     'get a normal tensor before doing inplace update.See https://github.com/pytorch/rfcs/pull/17 '
     'for more details.'),
    ('grad_set_shape', 'x = T.ones(2, requires_grad=True); x.grad = T.ones(3)',
     'RuntimeError', "attempting to assign a gradient of size '[3]' to a tensor of size '[2]'. Please ensure that the "
     'gradient and the tensor are the same size'),
    ('grad_set_dtype', 'x = T.ones(2, requires_grad=True); x.grad = T.ones(2, dtype=T.float64)',
     'RuntimeError', "attempting to assign a gradient with dtype 'double' to a tensor with grad_dtype 'Float'. The gra"
     "dient must match the tensor's grad_dtype (defaults to the tensor's dtype). You can set the tenso"
     "r's grad_dtype attribute with a specific dtype, or None to allow any dtype. Set grad_dtype with "
     'caution. Diverging the dtypes of a tensor and its gradient may break downstream systems that ass'
     'ume they match.'),
    ('no_grad_view_inplace', 'y = T.ones(3, requires_grad=True) * 1\nwith T.no_grad():\n    v = y[0]\nv.mul_(2)',
     'RuntimeError', 'A view was created in no_grad mode and is being modified inplace with grad mode enabled. Given t'
     'hat this use case is ambiguous and error-prone, it is forbidden. You can clarify your code by mo'
     "ving both the view and the inplace either both inside the no_grad block (if you don't want the i"
     'nplace to be tracked) or both outside (if you want the inplace to be tracked).'),
    ('saved_modified', 'a = T.ones(3, requires_grad=True); b = a * 2; c = b * b; b.add_(1); c.sum().backward()',
     'RuntimeError', 'one of the variables needed for gradient computation has been modified by an inplace operation: '
     '[tensorlib.FloatTensor [3]], which is output 0 of Add, is at version 1; expected version 0 inste'
     'ad. Hint: enable anomaly detection to find the operation that failed to compute its gradient, wi'
     'th tensorlib.autograd.set_detect_anomaly(True, check_nan=False).'),
    ('cat_empty', 'T.cat([])',
     'ValueError', 'tensorlib.cat(): expected a non-empty list of Tensors'),
    ('stack_empty', 'T.stack([])',
     'RuntimeError', 'stack expects a non-empty TensorList'),
    ('tensor_ragged', 'T.tensor([[1, 2], [3]])',
     'ValueError', 'expected sequence of length 2 at dim 1 (got 1)'),
    ('zeros_negative', 'T.zeros(-1)',
     'RuntimeError', 'zeros: Dimension size must be non-negative.'),
    ('arange_zero_step', 'T.arange(0, 5, 0)',
     'RuntimeError', 'step must be nonzero'),
    ('arange_wrong_sign', 'T.arange(0, 5, -1)',
     'RuntimeError', 'upper bound and lower bound inconsistent with step sign'),
    ('randint_range', 'T.randint(5, 2, (3,))',
     'RuntimeError', "random_ expects 'from' to be less than 'to', but got from=5 >= to=2"),
    ('len_0d', 'len(T.tensor(1.0))',
     'TypeError', 'len() of a 0-d tensor'),
    ('iter_0d', 'iter(T.tensor(1.0))',
     'TypeError', 'iteration over a 0-d tensor'),
    ('max_empty', 'T.ones(0).max()',
     'RuntimeError', 'max(): Expected reduction dim to be specified for input.numel() == 0. Specify the reduction dim '
     "with the 'dim' argument."),
    ('argmax_empty', 'T.ones(0).argmax()',
     'IndexError', 'argmax(): Expected reduction dim to be specified for input.numel() == 0.'),
    ('multinomial_negative', 'T.multinomial(T.tensor([-1.0, 2.0]), 1)',
     'RuntimeError', 'probability tensor contains either `inf`, `nan` or element < 0'),
    ('full_bad_size', 'T.full((2, -3), 1.0)',
     'RuntimeError', 'Trying to create tensor with negative dimension -3: [2, -3]'),
    ('view_as_mismatch', 'T.ones(2, 3).view_as(T.ones(4))',
     'RuntimeError', "shape '[4]' is invalid for input of size 6"),
    ('diag_3d', 'T.diag(T.ones(2, 2, 2))',
     'RuntimeError', 'diag(): Supports 1D or 2D tensors. Got 3D'),
    ('device_mismatch_str', "T.ones(2).to('nosuchdevice')",
     'RuntimeError', 'Expected one of cpu, cuda, ipu, xpu, mkldnn, opengl, opencl, ideep, hip, ve, fpga, maia, xla, la'
     'zy, vulkan, mps, meta, hpu, mtia, privateuseone device type at start of device string: nosuchdev'
     'ice'),
    ('dtype_bad', "T.ones(2, dtype='float32')",
     'TypeError', "ones(): argument 'dtype' must be tensorlib.dtype, not str"),
    ('squeeze_arg_type', "T.ones(2).sum(dim='a')",
     'TypeError', 'sum() received an invalid combination of arguments - got (dim=str, ), but expected one of:\n * (*'
     ', tensorlib.dtype dtype = None)\n * (tuple of ints dim, bool keepdim = False, *, tensorlib.dtype '
     'dtype = None)\n'),
    ('sum_str_dim_positional', "T.ones(2).sum('a')",
     'TypeError', 'sum() received an invalid combination of arguments - got (str), but expected one of:\n * (*'
     ', tensorlib.dtype dtype = None)\n * (tuple of ints dim, bool keepdim = False, *, tensorlib.dtype '
     'dtype = None)\n'),
    ('sum_str_dim_function', "T.sum(T.ones(2), 'a')",
     'TypeError', 'sum() received an invalid combination of arguments - got (Tensor, str), but expected one of:\n'
     ' * (Tensor input, *, tensorlib.dtype dtype = None)\n * (Tensor input, tuple of ints dim, bool keepdim = '
     'False, *, tensorlib.dtype dtype = None, Tensor out = None)\n'),
    ('sum_str_dim_keepdim', "T.ones(2).sum('a', keepdim=True)",
     'TypeError', "sum(): argument 'dim' (position 1) must be tuple of ints, not str"),
    ('mean_str_dim', "T.mean(T.ones(2), dim='a')",
     'TypeError', 'mean() received an invalid combination of arguments - got (Tensor, dim=str), but expected one '
     'of:\n * (Tensor input, *, tensorlib.dtype dtype = None, Tensor out = None)\n * (Tensor input, tuple of ints '
     'dim, bool keepdim = False, *, tensorlib.dtype dtype = None, Tensor out = None)\n'),
    ('sum_float_dim', "T.ones(2).sum(1.5)",
     'TypeError', 'sum() received an invalid combination of arguments - got (float), but expected one of:\n * (*'
     ', tensorlib.dtype dtype = None)\n * (tuple of ints dim, bool keepdim = False, *, tensorlib.dtype '
     'dtype = None)\n'),
    ('mse_loss_reduction', "F.mse_loss(T.ones(2), T.ones(2), reduction='bogus')",
     'ValueError', 'bogus is not a valid value for reduction'),
    ('clamp_no_bounds', 'T.ones(2).clamp()',
     'RuntimeError', "tensorlib.clamp: At least one of 'min' or 'max' must not be None"),
]

KNOWN_DIFFERENCES: dict[str, str] = {}


def _raised(T, code):
    """(class name, message) of what the snippet raises with module T, or ("OK", "")."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            exec(code, {"T": T, "F": T.nn.functional, "nn": T.nn})
        except Exception as e:      # noqa: BLE001 - the class is what is checked
            return type(e).__name__, str(e)
    return "OK", ""


def _params():
    for name, code, cls, msg in CORPUS:
        marks = [pytest.mark.xfail(strict=True, reason=KNOWN_DIFFERENCES[name])] if name in KNOWN_DIFFERENCES else []
        yield pytest.param(code, cls, msg, id=name, marks=marks)


@pytest.mark.parametrize("code, cls, msg", list(_params()))
def test_tensorlib_raises_what_torch_raises(code, cls, msg):
    assert _raised(tl, code) == (cls, msg)


@pytest.mark.skipif(torch is None, reason="checks the recorded expectations against torch itself")
@pytest.mark.parametrize("name, code, cls, msg", CORPUS, ids=[c[0] for c in CORPUS])
def test_recorded_expectation_is_what_torch_raises(name, code, cls, msg):
    got_cls, got_msg = _raised(torch, code)
    assert (got_cls, got_msg.replace("torch", "tensorlib").replace("/pytensorlib/", "/pytorch/")) == (cls, msg)


def test_corpus_is_large_and_names_are_unique():
    assert len(CORPUS) >= 80 and len({c[0] for c in CORPUS}) == len(CORPUS)
    assert set(KNOWN_DIFFERENCES) <= {c[0] for c in CORPUS}


# --- random shapes, dims and indices ---------------------------------------------------------------------------

TORCH_CLASSES = (RuntimeError, IndexError, ValueError, TypeError, NotImplementedError)
NUMPY_WORDS = re.compile(r"\baxis\b|\barray\b|boolean index|inhomogeneous|ufunc|numpy", re.I)

shapes = st.lists(st.integers(0, 4), min_size=0, max_size=4).map(tuple)
dims = st.integers(-6, 6)
basic = st.one_of(st.integers(-5, 5), st.none(), st.just(Ellipsis),
                  st.builds(slice, st.one_of(st.none(), st.integers(-5, 5)), st.one_of(st.none(), st.integers(-5, 5)),
                            st.one_of(st.none(), st.integers(1, 3))))
indices = st.one_of(basic, st.lists(basic, max_size=5).map(tuple),
                    st.lists(st.integers(-5, 5), min_size=1, max_size=4))


def _np_ref(fn, a):
    try:
        return fn(a), None
    except Exception as e:      # noqa: BLE001
        return None, e


def _check(ours_fn, ref_fn, shape):
    """tensorlib agrees with NumPy's result, or raises a torch error class in torch's words."""
    a = np.arange(float(np.prod(shape))).reshape(shape)
    ref, ref_err = _np_ref(ref_fn, a)
    try:
        out = ours_fn(tl.tensor(a))
    except TORCH_CLASSES as e:
        assert type(e).__module__ == "builtins", f"{type(e).__module__}.{type(e).__name__} leaked: {e}"
        assert not NUMPY_WORDS.search(str(e)), f"NumPy's wording leaked: {e}"
        assert "\n" not in str(e).strip(), f"not one line: {e}"
        return
    assert ref_err is None, f"NumPy raised {ref_err!r} where tensorlib returned {out!r}"
    np.testing.assert_array_equal(out.numpy(), np.asarray(ref))


OPS = {
    "sum": (lambda t, d: t.sum(dim=d), lambda a, d: a.sum(axis=d)),
    "softmax_shape": (lambda t, d: t.softmax(d).shape and t.sum(dim=d) * 0, lambda a, d: a.sum(axis=d) * 0),
    "cumsum": (lambda t, d: t.cumsum(d), lambda a, d: a.cumsum(axis=d)),
    "unsqueeze": (lambda t, d: t.unsqueeze(d), lambda a, d: np.expand_dims(a, d if d >= 0 else a.ndim + 1 + d)),
    "transpose0": (lambda t, d: t.transpose(0, d), lambda a, d: np.swapaxes(a, 0, d)),
    "flip": (lambda t, d: t.flip(d), lambda a, d: np.flip(a, d)),
    "argmax": (lambda t, d: t.argmax(dim=d), lambda a, d: a.argmax(axis=d)),
    "select0": (lambda t, d: t.select(0, d), lambda a, d: a[d]),
}


@settings(max_examples=150 * SCALE, deadline=None)
@given(shape=shapes, dim=dims, name=st.sampled_from(sorted(OPS)))
def test_dims_agree_with_numpy_or_raise_torch_errors(shape, dim, name):
    ours, ref = OPS[name]
    if not shape and name in ("sum", "cumsum", "flip", "argmax", "softmax_shape", "transpose0"):
        shape = (1,)     # 0-d tensors wrap dims as torch does ([-1, 0]); NumPy has no axis there
    _check(lambda t: ours(t, dim), lambda a: ref(a, dim), shape)


@settings(max_examples=200 * SCALE, deadline=None)
@given(shape=shapes, index=indices)
def test_indexing_agrees_with_numpy_or_raises_torch_errors(shape, index):
    if isinstance(index, list):
        index_np = np.asarray(index)
    else:
        index_np = index
    _check(lambda t: t[index], lambda a: a[index_np], shape)


@settings(max_examples=100 * SCALE, deadline=None)
@given(shape=shapes, index=st.one_of(basic, st.lists(basic, max_size=4).map(tuple)), value=st.floats(-5, 5))
def test_basic_index_views_write_through(shape, index, value):
    """Whatever basic index works gives a view: an in-place fill lands in the base where NumPy's would."""
    a = np.zeros(shape)
    try:
        view = a[index]
    except (IndexError, TypeError):
        return
    t = tl.tensor(a.copy())
    try:
        tv = t[index]
    except TORCH_CLASSES as e:      # NumPy is more lenient (e.g. an int index into a 0-d array)
        assert not NUMPY_WORDS.search(str(e)), str(e)
        return
    if np.ndim(view) == 0 and not isinstance(view, np.ndarray):
        a[index] = value
    else:
        view[...] = value
    tv.fill_(value)
    np.testing.assert_array_equal(t.numpy(), a)


@settings(max_examples=60 * SCALE, deadline=None)
@given(shape_a=shapes, shape_b=shapes, dim=dims)
def test_cat_and_broadcasting_agree_with_numpy_or_raise_torch_errors(shape_a, shape_b, dim):
    b = np.ones(shape_b)
    _check(lambda t: t + tl.tensor(b), lambda x: x + b, shape_a)
    if shape_a and shape_b and (0,) not in (shape_a, shape_b):     # torch's cat skips 1-D empty tensors
        _check(lambda t: tl.cat([t, tl.tensor(b)], dim), lambda x: np.concatenate([x, b], dim), shape_a)
