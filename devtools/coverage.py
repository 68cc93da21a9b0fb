"""How much of torch's training surface tensorlib has, by name (issue 13's targets), measured against the
installed torch (2.13 here; torch is needed only to list its names).

    python devtools/coverage.py              # one line per family: have / torch's, percent, target
    python devtools/coverage.py --missing    # and the names tensorlib lacks, per family

Families and what is left out of torch's lists (say so when a target is quoted):
- nn Module classes: every `torch.nn.X` that is a Module subclass, less the lazy modules (`Lazy*`, which
  infer shapes on the first call) and the quantization stubs.
- nn.functional: its public functions, less torch's dispatch helpers (`handle_torch_function`,
  `has_torch_function*`, `boolean_dispatch`, `assert_int_or_pair`) and the experimental grouped/scaled
  matmuls and `native_channel_shuffle` (private kernels under public names).
- optimizers and LR schedulers: the Optimizer / LRScheduler subclasses in `torch.optim(.lr_scheduler)`.
- Tensor methods: public attributes of `torch.Tensor`, less sparse, quantized, complex-only, named-tensor
  and storage/internal names (the patterns in `TENSOR_EXCLUDED`).
"""
from __future__ import annotations

import inspect
import re
import sys

FUNCTIONAL_EXCLUDED = {"handle_torch_function", "has_torch_function", "has_torch_function_unary",
                       "has_torch_function_variadic", "boolean_dispatch", "assert_int_or_pair", "grouped_mm",
                       "scaled_grouped_mm", "scaled_mm", "native_channel_shuffle"}
MODULE_EXCLUDED = re.compile(r"^(Lazy.*|.*Quant.*|NonDynamicallyQuantizableLinear)$")
TENSOR_EXCLUDED = re.compile(
    r"sparse|to_dense|coalesce|indices$|^values$|crow_|col_indices|ccol_|row_indices|q_|^int_repr$|qscheme|"
    r"dequantize|quantize|^conj|^resolve_|is_conj|is_neg|^real$|^imag$|^angle$|polar|complex|is_complex|"
    r"refine_names|rename|align_|unflatten_names|^names$|has_names|^data_ptr$|_nested|"
    r"^is_nested$|share_memory|is_shared|pin_memory|is_pinned|ipu|xpu|mps|mtia|hpu|xla|mkldnn|vulkan|"
    r"is_meta|^is_inference$|^smm$|^sspaddmm$|^hsmm$|^to_mkldnn$|^map_|^apply_$|^record_stream$|"
    r"^module_load$|^nbytes$|^itemsize$|^is_quantized$|^sum_to_size$|^H$|^mH$|"
    r"^mT$|^T$|^grad_fn$|^is_leaf$|^output_nr$|^layout$|^dtype$|^device$|^shape$|^data$|^grad$|"
    r"^requires_grad$|^retains_grad$|^ndim$|^is_cuda$|^is_cpu$|^name$")
TARGETS = {"nn Module classes": 90, "nn.functional": 90, "optimizers": 90, "LR schedulers": 90,
           "Tensor methods": 80}


def torch_names():
    import torch
    import torch.nn.functional as F
    from torch.optim import lr_scheduler
    nn = torch.nn
    modules = sorted(n for n, v in vars(nn).items() if inspect.isclass(v) and issubclass(v, nn.Module)
                     and not n.startswith("_") and not MODULE_EXCLUDED.match(n))
    functional = sorted(n for n in dir(F) if not n.startswith("_") and n not in FUNCTIONAL_EXCLUDED
                        and inspect.isroutine(getattr(F, n)))
    optimizers = sorted(n for n, v in vars(torch.optim).items() if inspect.isclass(v)
                        and issubclass(v, torch.optim.Optimizer) and v is not torch.optim.Optimizer)
    schedulers = sorted(n for n, v in vars(lr_scheduler).items() if inspect.isclass(v) and not n.startswith("_")
                        and issubclass(v, lr_scheduler.LRScheduler) and v is not lr_scheduler.LRScheduler)
    tensor = sorted(n for n in dir(torch.Tensor) if not n.startswith("_") and not TENSOR_EXCLUDED.search(n))
    return {"nn Module classes": modules, "nn.functional": functional, "optimizers": optimizers,
            "LR schedulers": schedulers, "Tensor methods": tensor}


def has(family, name):
    import tensorlib as tl
    import tensorlib.nn.functional as F
    from tensorlib.optim import lr_scheduler
    where = {"nn Module classes": tl.nn, "nn.functional": F, "optimizers": tl.optim, "LR schedulers": lr_scheduler,
             "Tensor methods": tl.Tensor}[family]
    return hasattr(where, name)


def report(missing=False, out=sys.stdout):
    names = torch_names()
    rows = {}
    for family, lst in names.items():
        lacking = [n for n in lst if not has(family, n)]
        rows[family] = (len(lst) - len(lacking), len(lst), lacking)
        got, total = rows[family][:2]
        print(f"{family:18} {got:4d} / {total:4d}  {100 * got / total:5.1f} %   (target {TARGETS[family]} %)", file=out)
    if missing:
        for family, (_, _, lacking) in rows.items():
            print(f"\nmissing {family} ({len(lacking)}): {' '.join(lacking)}", file=out)
    return rows


if __name__ == "__main__":
    report(missing="--missing" in sys.argv[1:])
