"""The names our events carry in every report: torch's profiled spellings, in one table.

A trace of a model run on tensorlib is meant to be compared op for op with torch's trace of the same
model, by tools that know nothing of tensorlib (HTA's TraceDiff matches events by name). So the event
store (`events.build`) renames once, after recording, and the table, the Chrome trace and the folded
stacks all read the renamed store:

- an op (forward or backward phase) is ``aten::<name>``, tensorlib's op names being aten's, except
  the few in `OP_NAMES` whose torch counterpart is spelled otherwise, and ops registered under a
  namespace of their own (tensorlib.distributed's ``c10d::allreduce_``), which keep it;
- a composite op (a range of kind ``"op"``: a function such as ``linear`` or ``cross_entropy_loss``
  whose work is the ops it dispatches, as torch's CompositeImplicitAutograd ops are) is an op too,
  ``aten::<name>`` around the ops it ran;
- a step of an op's kernel that torch dispatches as an op of its own (a view's ``as_strided``, stack's
  ``unsqueeze`` + ``cat``, clone's ``empty_strided`` + ``copy_``, item's ``_local_scalar_dense``, relu's
  ``clamp_min``, dropout's ``bernoulli_``/``div_``/``mul``, the attention kernel's math-backend ops, ...: the
  full list is in devtools/name_match.py's docstring) is a range of kind ``"op"`` the kernel opens while a
  profiler listens (`tensorlib._hooks.op_step`), so it is ``aten::<name>`` inside the op, as torch's (the few
  in `BARE_STEPS` keep their bare name, as torch records them);
- an autograd node is two events, as the autograd engine writes them: the engine's
  ``autograd::engine::evaluate_function: <node>`` around the node's own ``<node>`` (tensorlib's engine
  does its bookkeeping inside the node's range, so the outer event's self time is ~0);
  ``tensorlib::autograd::*`` nodes take torch's ``torch::autograd::*`` names;
- every other range keeps its name: optimizer (``Optimizer.step#Adam.step``), DataLoader
  (``enumerate(DataLoader)#_SingleProcessDataLoaderIter.__next__``), profiler steps and user ranges
  are already torch's, and module ranges (``MLP.fc1``) have no torch counterpart outside
  ``with_stack``'s python_function events.

The mapping is by op name only: it lives here rather than in tensorlib's op registry so that the
registry stays free of profiler concerns; should ops one day declare their profiled name, this table
is what moves. See devtools/trace_names_vs_torch.py for the measured share of torch's names matched.
"""
from __future__ import annotations

EVALUATE = "autograd::engine::evaluate_function: "
ATEN = "aten::"

# tensorlib op name -> the name torch's profiler gives the same work, where it is not "aten::" + name
OP_NAMES = {
    "norm": "aten::linalg_vector_norm",                 # torch.norm / clip_grad_norm_ call linalg.vector_norm
    "_amp_non_finite_check_and_unscale_": "aten::_amp_foreach_non_finite_check_and_unscale_",
    "adaptive_avg_pool2d_backward": "aten::_adaptive_avg_pool2d_backward",
    "convolution_backward_weight": "aten::convolution_backward",
    "index_backward": "aten::index_put_",               # IndexBackward0 scatters into zeros with index_put_
    "fmod_tensor": "aten::fmod",
    "rsub_scalar": "aten::rsub",                        # torch.rsub's (Tensor, Scalar) overload
    "squeeze_dims_": "aten::squeeze_",                  # squeeze_(dims): torch's squeeze_.dims overload
    "median_dim": "aten::median",
    "nanmedian_dim": "aten::nanmedian",
    "unique": "aten::_unique2",
    "alias_dtype": "aten::view",                        # Tensor.view(dtype)
    "copy_slices": "aten::copy_",                       # the base's update after an in-place op on a view
    # the kernel under a composite of the torch name (log_softmax -> _log_softmax, softmax -> _softmax)
    "log_softmax": "aten::_log_softmax",
    "to": "aten::_to_copy",                             # under the composite aten::to
    "conv2d": "aten::convolution",                      # under the composite aten::conv2d
    "batch_norm": "aten::native_batch_norm",            # under the composite aten::batch_norm
    "layer_norm": "aten::native_layer_norm",            # under the composite aten::layer_norm
    "max_pool2d": "aten::max_pool2d_with_indices",      # under the composite aten::max_pool2d
    "softmax": "aten::_softmax",
    "nll_loss": "aten::nll_loss_forward",               # under the composite aten::nll_loss
}

# tensorlib's composite ops (ranges of kind "op" around the ops they dispatch, as torch's
# CompositeImplicitAutograd ops): the names op budgets accept besides the op registry's
COMPOSITES = ("linear", "cross_entropy_loss", "log_softmax", "softmax", "nll_loss_nd", "to", "item", "ones_like",
              "zeros_like", "empty_like", "rand_like", "randn_like", "_foreach_norm", "_foreach_mul_", "conv2d",
              "batch_norm", "layer_norm", "max_pool2d", "flatten", "native_layer_norm_backward",
              "native_batch_norm_backward", "max_pool2d_with_indices_backward", "nll_loss",
              # steps of an op's kernel that torch dispatches as ops of their own (tensorlib._hooks.op_step)
              "as_strided", "_local_scalar_dense", "clamp_min", "zero_", "transpose", "unsqueeze", "cat",
              "empty_strided", "copy_", "bernoulli_", "div_", "mul", "detach", "_convolution",
              "unflatten", "_scaled_dot_product_attention_math", "_safe_softmax", "_softmax", "isneginf", "all",
              "scalar_tensor", "where", "bmm", "dropout", "_softmax_backward_data",
              "view", "clone", "empty_like", "empty", "reshape",
              "zeros", "select", "slice")

# an op whose FLOPs torch counts on the composite that called it instead (its own count is 0)
FLOPS_ON_COMPOSITE = {"aten::convolution": "aten::conv2d"}

# autograd node names tensorlib spells in its own namespace
NODE_NAMES = {
    "tensorlib::autograd::AccumulateGrad": "torch::autograd::AccumulateGrad",
    "tensorlib::autograd::CopySlices": "torch::autograd::CopySlices",
}

# record tags (recorder.py): the two op phases, the engine's range around a node, and the node itself
OP_TAGS = ("forward", "backward")
COMPOSITE_TAG = "r:op"                      # a composite op's range (kind "op"), written as a cpu_op
ENGINE_TAG = "r:backward"
NODE_TAG = "r:autograd_node"
AUTOGRAD_TAGS = (ENGINE_TAG, NODE_TAG)      # ranges of the backward phase, written as cpu_op as torch does


def op_name(name: str) -> str:
    """torch's profiled name of tensorlib op `name`."""
    return OP_NAMES.get(name) or (name if "::" in name else ATEN + name)   # c10d::, quantized:: keep theirs


# kernel steps that torch records without a namespace: the alias that aten::detach's autograd kernel makes below
# autograd (VariableType's RECORD_FUNCTION("detach"))
BARE_STEPS = frozenset({"detach"})


def composite_name(name: str) -> str:
    """torch's profiled name of tensorlib composite op `name` (a range of kind "op")."""
    return name if name.startswith(ATEN) or name in BARE_STEPS else ATEN + name


def node_name(name: str) -> str:
    """torch's name of autograd node `name` (e.g. ``AddmmBackward0``, ``torch::autograd::AccumulateGrad``)."""
    return NODE_NAMES.get(name, name)


def profiled_name(name: str, tag: str) -> str:
    """The name an event recorded as (`name`, `tag`) carries in the table, the trace and the stacks."""
    if tag in OP_TAGS:
        return op_name(name)
    if tag == COMPOSITE_TAG:
        return composite_name(name)
    if tag == ENGINE_TAG:
        return EVALUATE + node_name(name)
    if tag == NODE_TAG:
        return node_name(name)
    return name
