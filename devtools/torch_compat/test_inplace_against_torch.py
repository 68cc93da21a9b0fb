"""In-place operators, out=, integer and bool arithmetic and their errors against torch 2.13, side by side: 47 calls,
each compared by shape, dtype and values, or by the error's type where both raise (tests/tensorlib/
test_inplace_edges.py checks the cases that differed, without torch)."""
from __future__ import annotations

import warnings

import pytest

import tensorlib as tl

torch = pytest.importorskip("torch")

CALLS = {
    "iadd_int_float": lambda m: m.tensor([1, 2]).__iadd__(1.5),
    "iadd_int_ftensor": lambda m: m.tensor([1, 2]).__iadd__(m.tensor([0.5, 0.5])),
    "iadd_bcast_bigger": lambda m: m.ones(3).__iadd__(m.ones(2, 3)),
    "iadd_bcast_ok": lambda m: m.ones(2, 3).__iadd__(m.ones(3)),
    "imul_f32_f64": lambda m: m.ones(2).__imul__(m.ones(2, dtype=m.float64)),
    "iadd_f_int": lambda m: m.ones(2).__iadd__(m.tensor([1, 2])),
    "idiv_int": lambda m: m.tensor([4, 2]).__itruediv__(2), "ifloordiv": lambda m: m.tensor([5, 2]).__ifloordiv__(2),
    "imod": lambda m: m.tensor([5, 2]).__imod__(2), "ipow": lambda m: m.tensor([2.0, 3.0]).__ipow__(2),
    "iadd_bool": lambda m: m.tensor([True, False]).__iadd__(1),
    "ior_bool": lambda m: m.tensor([True, False]).__ior__(m.tensor([False, True])),
    "iand": lambda m: m.tensor([6]).__iand__(3), "ixor": lambda m: m.tensor([6]).__ixor__(3),
    "ilshift": lambda m: m.tensor([1, 2]).__ilshift__(2), "irshift": lambda m: m.tensor([12]).__irshift__(1),
    "out_dtype": lambda m: m.add(m.ones(2), m.ones(2), out=m.zeros(2, dtype=m.int64)),
    "out_resize": lambda m: m.add(m.ones(2), m.ones(2), out=m.zeros(5)),
    "out_int_into_float": lambda m: m.add(m.tensor([1, 2]), 1, out=m.zeros(2)),
    "clamp_int_float": lambda m: m.tensor([1, 5]).clamp_(0.5, 3.5), "fill_int": lambda m: m.tensor([1, 5]).fill_(2.7),
    "copy_bcast": lambda m: m.zeros(2, 3).copy_(m.ones(3)),
    "copy_dtype": lambda m: m.zeros(2, dtype=m.int64).copy_(m.tensor([1.7, -1.7])),
    "leaf_inplace": lambda m: m.ones(2, requires_grad=True).add_(1),
    "expand_inplace": lambda m: m.zeros(3).expand(2, 3).add_(1),
    "int_times_float": lambda m: m.tensor([1, 2]) * 2.5, "int_div": lambda m: m.tensor([5, 2]) / m.tensor([2, 2]),
    "int_pow_neg": lambda m: m.tensor([2, 3]) ** -1, "int_pow_float": lambda m: m.tensor([2, 3]) ** 0.5,
    "uint8_wrap": lambda m: m.tensor([1], dtype=m.uint8) - 2,
    "int8_overflow": lambda m: m.tensor([100], dtype=m.int8) * 2,
    "f16_plus_f32": lambda m: m.ones(2, dtype=m.float16) + m.ones(2),
    "f32_plus_0d_f64": lambda m: m.ones(2) + m.tensor(1.0, dtype=m.float64),
    "int_plus_0d_float": lambda m: m.tensor([1, 2]) + m.tensor(1.5),
    "bool_plus_bool": lambda m: m.tensor([True]) + m.tensor([True]), "bool_times_int": lambda m: m.tensor([True]) * 3,
    "remainder_neg": lambda m: m.tensor([-3, 3]) % 2, "fmod_neg": lambda m: m.fmod(m.tensor([-3.0, 3.0]), 2),
    "floordiv_neg": lambda m: m.tensor([-3, 3]) // 2, "floordiv_float_neg": lambda m: m.tensor([-3.5, 3.5]) // 2,
    "div_floor": lambda m: m.div(m.tensor([-3, 3]), 2, rounding_mode="floor"),
    "div_trunc": lambda m: m.div(m.tensor([-3, 3]), 2, rounding_mode="trunc"),
    "float_div_zero": lambda m: m.tensor([1.0]) / 0, "int_true_div_zero": lambda m: m.tensor([1]) / 0,
    "shift": lambda m: m.tensor([1, 2]) << 2, "neg_bool": lambda m: -m.tensor([True]),
    "invert_int": lambda m: ~m.tensor([5]), "invert_float": lambda m: ~m.tensor([5.0]),
}


def _result(lib, fn):
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            y = fn(lib)
    except (RuntimeError, TypeError, ValueError, IndexError, ZeroDivisionError) as e:
        return ("raised", type(e).__name__)
    return tuple(y.shape), str(y.dtype).split(".")[-1], [float(v) for v in y.detach().reshape(-1).tolist()]


@pytest.mark.parametrize("name", sorted(CALLS))
def test_in_place_and_integer_arithmetic_as_torchs(name):
    assert _result(tl, CALLS[name]) == _result(torch, CALLS[name])
