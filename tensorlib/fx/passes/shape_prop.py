"""torch.fx.passes.shape_prop: run a GraphModule on example inputs and record each node's result shape,
dtype, strides... in node.meta['tensor_meta'] (and its type in node.meta['type'])."""
from __future__ import annotations

import traceback
from typing import Any, NamedTuple

from ..interpreter import Interpreter
from ..node import Node, map_aggregate

__all__ = ["TensorMetadata", "ShapeProp"]


class TensorMetadata(NamedTuple):
    shape: Any
    dtype: Any
    requires_grad: bool
    stride: tuple[int, ...]
    memory_format: Any
    is_quantized: bool
    qparams: dict[str, Any]


def _extract_tensor_metadata(result: Any, include_contiguity: bool = True) -> TensorMetadata:
    from ..._memory_format import channels_last, channels_last_3d, contiguous_format
    shape = result.shape
    dtype = result.dtype
    requires_grad = result.requires_grad
    stride = result.stride()
    memory_format = None
    if include_contiguity:
        for query_format in (contiguous_format, channels_last, channels_last_3d):
            try:
                ok = result.is_contiguous(memory_format=query_format)
            except (RuntimeError, ValueError):
                ok = False
            if ok:
                memory_format = query_format
                break
    return TensorMetadata(shape, dtype, requires_grad, stride, memory_format, False, {})


class ShapeProp(Interpreter):
    """`ShapeProp(gm).propagate(*example_inputs)`: runs gm, and each node whose result holds tensors gets
    node.meta['tensor_meta'] (a TensorMetadata, or the result's structure of them)."""

    def __init__(self, gm: Any, fake_mode: Any = None) -> None:
        super().__init__(gm)
        self.fake_module = None
        self.fake_mode = None
        self.real_module = self.module

    def run_node(self, n: Node) -> Any:
        from ..._tensor import Tensor
        try:
            result = super().run_node(n)
        except Exception as e:
            traceback.print_exc()
            raise RuntimeError(f"ShapeProp error for: node={n.format_node()} with meta={n.meta}") from e
        found_tensor = False

        def extract_tensor_meta(obj: Any) -> Any:
            nonlocal found_tensor
            if isinstance(obj, Tensor):
                found_tensor = True
                return _extract_tensor_metadata(obj)
            return obj

        meta = map_aggregate(result, extract_tensor_meta)
        if found_tensor:
            n.meta["tensor_meta"] = meta
        n.meta["type"] = type(result)
        return result

    def propagate(self, *args: Any) -> Any:
        """Run the module on `args`, recording each node's tensor metadata; returns the module's result."""
        return super().run(*args)
