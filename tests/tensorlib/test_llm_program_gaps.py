"""What karpathy/minGPT and rasbt/LLMs-from-scratch (tests/programs/vendor/mingpt, llms_from_scratch) met in
tensorlib: torch's math constants (`torch.inf` in the attention masks, `torch.pi` in GELU), bfloat16 tensors
scaled in place by a Python float (AdamW's decoupled weight decay on a `.to(torch.bfloat16)` model), and a
compiled module's attributes read through the wrapper (`torch.compile(model).pos_emb`)."""
from __future__ import annotations

import math

import numpy as np
import pytest

import tensorlib as tl
import tensorlib.nn.functional as F


def test_math_constants():
    assert (tl.e, tl.pi) == (math.e, math.pi)
    assert tl.inf == math.inf and math.isnan(tl.nan)
    assert tl.newaxis is None
    x = tl.zeros(2, 3)
    assert x[tl.newaxis].shape == (1, 2, 3)
    s = tl.ones(3, 3).masked_fill(tl.ones(3, 3, dtype=tl.bool).triu(1), -tl.inf)
    assert tl.softmax(s, dim=-1)[0].tolist() == [1.0, 0.0, 0.0]


@pytest.mark.parametrize("op, expected", [("mul_", 0.5), ("add_", 1.5), ("sub_", 0.5), ("div_", 2.0)])
def test_bfloat16_inplace_with_a_float(op, expected):
    x = tl.ones(3, dtype=tl.bfloat16)
    getattr(x, op)(0.5)
    assert x.dtype == tl.bfloat16 and x.float().tolist() == [expected] * 3
    y = tl.ones(3, dtype=tl.bfloat16)
    getattr(y, op)(tl.full((3,), 0.5))         # a float32 tensor into bfloat16: torch casts it
    assert y.dtype == tl.bfloat16 and y.float().tolist() == [expected] * 3


def test_integer_tensor_still_refuses_a_float_in_place():
    with pytest.raises(RuntimeError, match="result type Float can't be cast to the desired output type Long"):
        tl.ones(3, dtype=tl.int64).mul_(0.5)
    with pytest.raises(RuntimeError, match="can't be cast to the desired output type Long"):
        tl.ones(3, dtype=tl.int64).add_(tl.ones(3, dtype=tl.bfloat16))


def test_adamw_steps_a_bfloat16_model():
    p = tl.nn.Parameter(tl.ones(3, dtype=tl.bfloat16))
    p.grad = tl.ones(3, dtype=tl.bfloat16)
    tl.optim.AdamW([p], lr=0.1, weight_decay=0.1).step()
    assert p.dtype == tl.bfloat16
    assert p.float().tolist() == [0.88671875] * 3          # torch 2.13: bf16(1 * (1 - 0.01)) - 0.1 = 0.8867


def test_integer_divided_by_bfloat16_is_bfloat16():
    assert (tl.arange(3) / tl.ones(3, dtype=tl.bfloat16)).dtype == tl.bfloat16


def test_log_sigmoid_bfloat16():
    x = tl.ones(3, dtype=tl.bfloat16, requires_grad=True)
    y = F.logsigmoid(x)
    y.sum().backward()
    assert y.dtype == x.grad.dtype == tl.bfloat16
    np.testing.assert_allclose(y.detach().float().numpy(), -0.3125)          # torch 2.13's values
    np.testing.assert_allclose(x.grad.float().numpy(), 0.26953125)


def test_compiled_module_reads_the_wrapped_modules_attributes():
    class Net(tl.nn.Module):
        def __init__(self):
            super().__init__()
            self.pos_emb = tl.nn.Embedding(8, 4)
            self.config = {"n": 8}

        def forward(self, x):
            return self.pos_emb(x)

    net = Net()
    c = tl.compile(net)
    assert c.pos_emb is net.pos_emb and c.pos_emb.weight.shape[0] == 8
    assert c.config == {"n": 8}
    assert c._orig_mod is net
    with pytest.raises(AttributeError, match="'Net' object has no attribute 'missing'"):
        c.missing


def test_bfloat16_sampling_norms_and_nan_reductions():
    """What a bfloat16 LLM meets after training (torch 2.13's values): sampling from its probabilities,
    clip_grad_norm_'s vector norms, NaN-ignoring means; linalg still refuses it as low precision."""
    p = tl.tensor([[0.0, 1.0, 0.0]], dtype=tl.bfloat16)
    s = tl.multinomial(p, 2, replacement=True)
    assert s.dtype == tl.int64 and s.tolist() == [[1, 1]]
    b = tl.tensor([0.1, 0.2, 0.7], dtype=tl.bfloat16)
    n = tl.linalg.vector_norm(b)
    assert n.dtype == tl.bfloat16 and n.item() == 0.734375
    assert b.norm(dtype=tl.float32).dtype == tl.float32
    x = tl.tensor([[1.0, float("nan")], [2.0, 3.0]], dtype=tl.bfloat16, requires_grad=True)
    y = tl.nansum(x)
    y.backward()
    assert y.dtype == tl.bfloat16 and y.item() == 6.0
    assert x.grad.tolist() == [[1.0, 0.0], [1.0, 1.0]]
    assert tl.nanmean(x.detach()[0]).item() == 1.0
    with pytest.raises(RuntimeError, match="linalg.inv: Low precision dtypes not supported. Got BFloat16"):
        tl.linalg.inv(tl.eye(2, dtype=tl.bfloat16))


def test_bfloat16_matrix_norms():
    """matrix_norm of a bfloat16 matrix: 'fro' (a vector norm) as torch's; the SVD-based orders refused as low
    precision under matrix_norm's name, as torch 2.13 (float16 too)."""
    a = tl.tensor([[1.0, 0.5], [0.25, 2.0]], dtype=tl.bfloat16)
    r = tl.linalg.matrix_norm(a)
    assert r.dtype == tl.bfloat16 and r.item() == 2.3125
    for d in (tl.bfloat16, tl.float16):
        with pytest.raises(RuntimeError, match="linalg.matrix_norm: Low precision dtypes not supported"):
            tl.linalg.matrix_norm(a.to(d), "nuc")
