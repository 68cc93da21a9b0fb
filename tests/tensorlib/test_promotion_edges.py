"""Type promotion and half precision where tensorlib differed from torch 2.13 (found by a side-by-side sweep of
binary, ternary, list, matmul and reduction ops over every dtype and operand kind: devtools/torch_compat/
test_promotion_against_torch.py). Each value here is torch's; no torch needed."""
from __future__ import annotations

import numpy as np
import pytest

import tensorlib as tl
from tensorlib import _dtype as D
from tensorlib.nn import functional as F


def _bf16(values):
    return tl.tensor(values, dtype=tl.float32).to(tl.bfloat16)


def _vals(t):
    return t.float().tolist() if t.dtype in (tl.bfloat16, tl.float16) else t.tolist()


# --- bfloat16 is a floating dtype (NumPy's kind for it is "V") ---------------------------------------------

def test_bfloat16_in_place_arithmetic_takes_floats():
    x = _bf16([1.5, -2.0, 3.0])
    assert _vals(x.clone().add_(2.5)) == [4.0, 0.5, 5.5]
    assert _vals(x.clone().mul_(tl.full((3,), 2.0, dtype=tl.float16))) == [3.0, -4.0, 6.0]
    y = x.clone().div_(2)
    assert y.dtype is tl.bfloat16 and _vals(y) == [0.75, -1.0, 1.5]
    assert x.clone().sub_(0.5).dtype is tl.bfloat16


def test_integer_divided_by_bfloat16_is_bfloat16():
    a, b = tl.tensor([1, 2, 3]), _bf16([2.0, 2.0, 2.0])
    for r in (a / b, tl.div(a, b), tl.true_divide(a, b), tl.tensor([True, False, True]) / b):
        assert r.dtype is tl.bfloat16
    assert _vals(a / b) == [0.5, 1.0, 1.5]


def test_bfloat16_kernels_that_refused_it():
    x = _bf16([1.5, -2.0, 3.0])
    assert F.logsigmoid(x).dtype is tl.bfloat16
    assert _vals(F.logsigmoid(x)) == pytest.approx([-0.2012, -2.125, -0.0486], rel=1e-2)
    p = F.max_pool1d(x.reshape(1, 1, 3), 2)
    assert p.dtype is tl.bfloat16 and _vals(p) == [[[1.5]]]
    e = tl.einsum("i,i->", x, x)
    assert e.dtype is tl.bfloat16 and e.item() == 15.25
    assert tl.nanmean(x).dtype is tl.bfloat16
    for r in (tl.clamp(x, -1, 1), F.hardtanh(x), tl.clamp(x, True, True)):
        assert r.dtype is tl.bfloat16
    assert _vals(tl.clamp(x, -1, 1)) == [1.0, -1.0, 1.0]


# --- result dtypes --------------------------------------------------------------------------------------

@pytest.mark.parametrize("a, b, dt", [
    (lambda: tl.tensor([1, 2]), 3, tl.float32),
    (lambda: tl.tensor([True]), 2.5, tl.float32),
    (lambda: tl.tensor(2.0), 2.5, tl.float32),
    (lambda: tl.tensor([1.0, 2.0], dtype=tl.float16), 2.5, tl.float16),
    (lambda: _bf16([1.0]), True, tl.bfloat16),
])
def test_xlogy_with_a_number_keeps_the_tensors_dtype(a, b, dt):
    assert tl.xlogy(a(), b).dtype is dt        # was float64: NumPy's log of the number is a float64 scalar


def test_xlogy_half_values():
    r = tl.xlogy(tl.tensor([1.0, 2.0], dtype=tl.float16), 2.5)
    assert r.dtype is tl.float16 and _vals(r) == pytest.approx([0.9165, 1.833], rel=1e-3)


def test_where_of_two_numbers():
    c = tl.tensor([True, False])
    assert tl.where(c, True, 1 + 2j).dtype is tl.complex64          # was int64 (the imaginary part dropped)
    assert tl.where(c, True, 1 + 2j).tolist() == [1 + 0j, 1 + 2j]
    assert tl.where(c, True, False).dtype is tl.bool
    assert tl.where(c, 2.5, 1j).dtype is tl.complex64
    assert tl.where(c, 1, 2).dtype is tl.int64 and tl.where(c, 1, 2.5).dtype is tl.float32


def test_outer_promotes_as_torch():
    assert tl.outer(tl.tensor([1, 2], dtype=tl.int32), tl.ones(2, dtype=tl.float16)).dtype is tl.float16
    assert tl.outer(tl.tensor([1, 2]), tl.ones(2)).dtype is tl.float32      # NumPy's outer: float64


def test_dot_refuses_mixed_dtypes():
    with pytest.raises(RuntimeError, match="expected both vectors to have same dtype, but found Float and Double"):
        tl.dot(tl.ones(3), tl.ones(3, dtype=tl.float64))
    with pytest.raises(RuntimeError, match="found Int and Float"):
        tl.dot(tl.ones(3, dtype=tl.int32), tl.ones(3))


def test_result_type_of_several_tensors():
    T, Z = False, True
    assert D.result_type_many([(D.int32, T), (D.float64, Z), (D.float16, T)]) is D.float16
    assert D.result_type_many([(D.bool_, T), (D.int8, Z)]) is D.int8
    assert D.result_type_many([(D.int32, T), (D.float64, Z)]) is D.float64
    assert D.result_type_many([(D.float32, T), (D.complex128, Z)]) is D.complex64
    assert D.result_type_many([(D.float16, Z), (D.float32, Z)]) is D.float32


# --- addcmul / addcdiv: torch's result dtype of the three, value cast to it --------------------------------

def test_addcmul_addcdiv_result_dtypes():
    f32 = tl.tensor([1.0, 2.0])
    assert tl.addcmul(tl.tensor([True, False]), f32, tl.tensor([3, 4], dtype=tl.int32)).dtype is tl.float32
    h = tl.tensor([0.1, 0.2], dtype=tl.float16)
    r = tl.addcmul(tl.tensor([1, 2], dtype=tl.int32), h, tl.tensor([3.3, 4.4], dtype=tl.float16))
    assert r.dtype is tl.float16 and _vals(r) == [1.330078125, 2.87890625]
    assert tl.addcdiv(tl.tensor([1, 2], dtype=tl.int16), h, h).dtype is tl.float16
    assert tl.addcmul(tl.tensor([1, 2], dtype=tl.int8), tl.tensor([True]), tl.tensor([True])).dtype is tl.int8
    # integers with a float value: the value cast to the integer (torch's Scalar), not a float result
    r = tl.addcmul(tl.tensor([1, 2]), tl.tensor([3, 4]), tl.tensor([5, 6]), value=2.5)
    assert r.dtype is tl.int64 and r.tolist() == [31, 50]


def test_addcdiv_divides_in_the_result_dtype():
    r = tl.addcdiv(tl.tensor([1.0, 2.0], dtype=tl.float64), tl.tensor([1.0, 2.0]), tl.tensor([3.0, 7.0]))
    assert r.dtype is tl.float64 and r.tolist() == [1 + 1 / 3, 2 + 2 / 7]     # not float32's quotient


def test_addcmul_in_place_computes_in_the_common_dtype():
    x = tl.tensor([100, 200], dtype=tl.int16)
    x.addcmul_(tl.tensor([200, 100], dtype=tl.uint8), tl.tensor([3, 3], dtype=tl.uint8))
    assert x.tolist() == [700, 500]         # uint8's product wrapped before (600 -> 88)
    x = tl.tensor([1, 2], dtype=tl.uint8)
    x.addcmul_(tl.tensor(2), tl.tensor(3))  # int64 0-dim operands: uint8 result, as torch (NumPy refused the cast)
    assert x.tolist() == [7, 8]
    with pytest.raises(RuntimeError, match="result type Float can't be cast to the desired output type Long"):
        tl.tensor([1, 2]).addcmul_(tl.ones(2), tl.ones(2))


# --- clamp with tensor bounds -------------------------------------------------------------------------------

def test_clamp_with_0dim_tensor_bounds_promotes():
    r = tl.clamp(tl.tensor([1, 2, 3]), tl.tensor(1.5))
    assert r.dtype is tl.float32 and r.tolist() == [1.5, 2.0, 3.0]      # was int64 [1, 2, 3]
    assert tl.clamp(tl.tensor([True, False]), min=_bf16(0.5)).dtype is tl.bfloat16
    assert tl.clamp(tl.ones(2), tl.tensor(0.0, dtype=tl.float64), tl.tensor(2.0, dtype=tl.float64)).dtype is tl.float32
    assert tl.clamp(tl.tensor(1, dtype=tl.uint8), tl.tensor(0, dtype=tl.int8)).dtype is tl.int16


def test_clamp_in_place_with_tensor_bounds():
    x = tl.tensor([1.0, 2.0, 3.0])
    assert x.clamp_(min=tl.tensor([2.0, 2.0, 2.0])) is x and x.tolist() == [2.0, 2.0, 3.0]
    with pytest.raises(RuntimeError, match="result type Float can't be cast to the desired output type Long"):
        tl.tensor([1, 2]).clamp_(min=tl.tensor([2.0, 2.0]))


# --- integer powers, shifts, xor --------------------------------------------------------------------------

def test_integer_power_with_negative_exponent_tensor():
    a, b = tl.tensor([-3, -1, 0, 1, 2, 5]), tl.tensor([2, -1, 3, -1, -2, 4])
    assert (a ** b).tolist() == [9, -1, 0, 1, 0, 625]          # NumPy refused the whole array
    assert tl.pow(a, b).tolist() == [9, -1, 0, 1, 0, 625]
    assert ((-2) ** b).tolist() == [4, 0, -8, 0, 0, 16]
    assert (True ** b).tolist() == [1, 1, 1, 1, 1, 1]
    x = tl.tensor([1, 2, -1])
    x.pow_(tl.tensor([2, -1, 3]))
    assert x.tolist() == [1, 0, -1]
    assert (tl.tensor([1, 2], dtype=tl.uint8) ** tl.tensor([-1, 2], dtype=tl.int8)).tolist() == [1, 4]
    with pytest.raises(RuntimeError, match="Integers to negative integer powers are not allowed"):
        tl.tensor([2]) ** -1      # a number exponent still refuses, as torch


def test_mask_to_a_bool_power_is_a_mask():
    m = tl.tensor([True, False])
    assert (m ** True).dtype is tl.bool and (m ** True).tolist() == [True, False]
    assert (m ** False).tolist() == [True, True]


def test_shifts_and_xor_take_python_numbers_on_either_side():
    t = tl.tensor([1, 2])
    assert (t << True).tolist() == [2, 4] and (t >> True).tolist() == [0, 1]
    assert t.clone().bitwise_left_shift_(True).tolist() == [2, 4]
    assert (3 << t).tolist() == [6, 12] and (16 >> t).tolist() == [8, 4]
    assert (True << tl.tensor([1, 2], dtype=tl.int8)).dtype is tl.int8
    assert (3 ^ t).tolist() == [2, 1] and (True ^ tl.tensor([True, False])).tolist() == [False, True]
    with pytest.raises(NotImplementedError):
        2.5 << t


def test_eq_in_place():
    x = tl.tensor([1.0, 2.0])
    assert x.eq_(tl.tensor([1.0, 3.0])) is x and x.tolist() == [1.0, 0.0]


def test_truncated_division_of_large_int64_is_exact():
    a = tl.tensor([-9223372036854775807, 9223372036854775807, -7, 7, -6, 0])
    assert tl.div(a, 70, rounding_mode="trunc").tolist() == [-131762457669353940, 131762457669353940, 0, 0, 0, 0]
    b = tl.tensor([3, -3, 2, -2, -4, 5])
    assert tl.div(a, b, rounding_mode="trunc").tolist() == [-3074457345618258602, -3074457345618258602, -3, -3, 1, 0]
    assert tl.div(tl.tensor([7, -7], dtype=tl.int8), 2, rounding_mode="trunc").tolist() == [3, -3]


# --- half precision: float32 accumulation (torch's opmath) ------------------------------------------------

def test_half_cumsum_accumulates_in_float32():
    h = tl.tensor([-2.5, -0.75, 0.3, 1.0, 2.0, 3.5], dtype=tl.float16)
    assert tl.cumsum(h, 0).tolist() == [-2.5, -3.25, -2.94921875, -1.9501953125, 0.050048828125, 3.55078125]
    assert tl.cumsum(h.float(), 0, dtype=tl.float16).tolist()[-2] == 0.050048828125
    assert tl.cumsum(h.to(tl.bfloat16), 0).dtype is tl.bfloat16


def test_half_gelu_tanh_in_float32():
    h = tl.tensor([-2.5, -0.75, 0.3, 1.0, 2.0, 3.5], dtype=tl.float16)
    r = F.gelu(h, approximate="tanh")
    assert r.dtype is tl.float16
    assert r.tolist() == [-0.01508331298828125, -0.1700439453125, 0.1854248046875, 0.84130859375, 1.955078125, 3.5]
    h.requires_grad_()
    F.gelu(h, approximate="tanh").sum().backward()
    assert h.grad.dtype is tl.float16


# --- lerp: torch's dtype rules ----------------------------------------------------------------------------

def test_lerp_refuses_mixed_dtypes():
    a = tl.ones(2)
    with pytest.raises(RuntimeError, match="expected dtype float for `end` but got dtype double"):
        tl.lerp(a, a.double(), 0.5)
    with pytest.raises(RuntimeError, match="expected dtype float for `weight` but got dtype double"):
        tl.lerp(a, a, a.double())
    with pytest.raises(RuntimeError, match="expected dtype c10::Half for `weight` but got dtype float"):
        tl.lerp(a.half(), a.half(), a)
    with pytest.raises(RuntimeError, match="expected dtype float for `end` but got dtype double"):
        a.lerp_(a.double(), 0.5)
    with pytest.raises(NotImplementedError, match='"lerp_kernel_scalar" not implemented for \'Int\''):
        tl.lerp(a.int(), a.int(), 0.5)


def test_lerp_with_a_0dim_weight_promotes():
    r = tl.lerp(tl.tensor([1, 3]), tl.tensor([5, 7]), tl.tensor(0.5))
    assert r.dtype is tl.float32 and r.tolist() == [3.0, 5.0]
    assert tl.lerp(tl.ones(2), tl.ones(2), tl.tensor(0.5, dtype=tl.float64)).dtype is tl.float32
    assert tl.lerp(tl.tensor(1.0), tl.tensor(2.0), tl.tensor(0.5, dtype=tl.float64)).dtype is tl.float64


# --- refusals --------------------------------------------------------------------------------------------

def test_mean_refuses_an_integral_dtype_argument():
    with pytest.raises(RuntimeError, match="mean\\(\\): could not infer output dtype. Optional dtype must be either a "
                                           "floating point or complex dtype. Got: Long"):
        tl.mean(tl.ones(2), dtype=tl.int64)
    with pytest.raises(RuntimeError, match="nanmean\\(\\): expected input to have floating point"):
        tl.nanmean(tl.tensor([1, 2]), dtype=tl.float32)
    with pytest.raises(RuntimeError, match="Got: Bool"):
        tl.nanmean(tl.ones(2), dtype=tl.bool)
    assert tl.mean(tl.tensor([1, 2]), dtype=tl.float64).item() == 1.5


def test_subtracting_a_python_bool_is_refused():
    # (a bool tensor with a number or an integer tensor, and sub_/rsub: refused before promotion, as torch's check)
    for f in (lambda: tl.ones(2) - True, lambda: True - tl.ones(2), lambda: tl.sub(tl.tensor([1, 2]), False),
              lambda: tl.tensor([True]) - 1, lambda: tl.tensor([True]) - tl.tensor([2]), lambda: 1 - tl.tensor([True]),
              lambda: tl.rsub(tl.tensor([True]), 1), lambda: tl.tensor([3]).sub_(True),
              lambda: tl.tensor([True]).sub_(1)):
        with pytest.raises(RuntimeError, match="Subtraction, the `-` operator, with a bool tensor is not supported"):
            f()


def test_kind_helper():
    assert D.kind(np.dtype(np.float16)) == "f"
    assert D.kind(tl.bfloat16.np) == "f"
    assert D.kind(np.dtype(np.int8)) == "i"


@pytest.mark.parametrize("dtype, number, wrapped", [("uint8", -2, 254), ("uint8", 300, 44), ("int8", 128, -128),
                                                    ("int16", 40000, -25536), ("int32", 2 ** 31, -2 ** 31),
                                                    ("uint8", -1, 255)])
def test_an_int_outside_an_integer_dtype_is_wrapped_into_it_as_torch_casts_it(dtype, number, wrapped):
    """torch casts the number to the tensor's dtype (two's complement): `uint8 + -2` adds 254 and `uint8 < -2`
    compares with 254; NumPy raised OverflowError for the first and compared with -2 itself for the second."""
    v = np.array([0, 5, 100], dtype=dtype)
    t = tl.tensor(v)
    w = np.array(wrapped).astype(dtype)
    assert (t + number).tolist() == (v + w).tolist() and (t + number).dtype == t.dtype
    assert (t * number).tolist() == (v * w).tolist()
    assert (number - t).tolist() == (w - v).tolist()
    assert (t < number).tolist() == (v < w).tolist() and (t == number).tolist() == (v == w).tolist()
    with pytest.raises((OverflowError, RuntimeError)):
        t + 2 ** 70                                                     # beyond int64: refused, as torch does


@pytest.mark.parametrize("approximate", ["none", "tanh"])
def test_bfloat16_gelu_is_float32s_rounded_once(approximate):
    """torch's opmath: a bfloat16 (or float16) gelu and its backward are the float32 ones rounded to the dtype (the
    exact GELU's erf in bfloat16 itself drifted, and ran ml_dtypes' slow loops); the tanh form by products (torch's
    x*x*x, not pow), so float32 agrees with the float64 formula to float32's rounding."""
    x32 = tl.linspace(-6, 6, 97)
    g32 = tl.linspace(1, -1, 97)
    for dt in (tl.bfloat16, tl.float16):
        x, g = x32.to(dt), g32.to(dt)
        y = F.gelu(x, approximate=approximate)
        assert y.dtype is dt
        assert y.tolist() == F.gelu(x.float(), approximate=approximate).to(dt).tolist()
        xr = x.detach().requires_grad_()
        F.gelu(xr, approximate=approximate).backward(g)
        xf = x.float().requires_grad_()
        F.gelu(xf, approximate=approximate).backward(g.float())
        assert xr.grad.tolist() == xf.grad.to(dt).tolist()
    x = np.linspace(-6, 6, 97)
    c = np.sqrt(2 / np.pi)
    want = 0.5 * x * (1 + np.tanh(c * (x + 0.044715 * x ** 3)))
    if approximate == "tanh":
        got = F.gelu(tl.tensor(x.astype(np.float32)), approximate="tanh").numpy()
        np.testing.assert_allclose(got, want, rtol=2e-6, atol=2e-7)


@pytest.mark.parametrize("dt", ["bfloat16", "float16"])
def test_half_norms_softmaxes_and_activations_compute_in_float32(dt):
    """layer_norm, softmax, log_softmax and the activations of bfloat16 and float16 (and their backward ops) are the
    float32 ones rounded once (torch's opmath, _define.half_in_float32: ml_dtypes' own bfloat16 loops ran 10-30x
    torch's time; float16's own loops gave a softmax 65% of whose values differed from torch's), their dtypes the
    half one throughout."""
    dt = getattr(tl, dt)
    x32 = tl.randn(6, 40, generator=tl.Generator().manual_seed(3))
    g32 = tl.randn(6, 40, generator=tl.Generator().manual_seed(4))
    x, g = x32.to(dt), g32.to(dt)
    w, b = tl.linspace(0.5, 1.5, 40).to(dt), tl.linspace(-1, 1, 40).to(dt)
    cases = [lambda t, w, b: F.layer_norm(t, (40,), w, b), lambda t, w, b: F.softmax(t, -1),
             lambda t, w, b: F.log_softmax(t, -1), lambda t, w, b: F.elu(t, 0.7), lambda t, w, b: F.silu(t),
             lambda t, w, b: F.mish(t), lambda t, w, b: F.logsigmoid(t), lambda t, w, b: tl.sigmoid(t),
             lambda t, w, b: tl.logit(t, 0.25)]
    for f in cases:
        xr = x.detach().requires_grad_()
        y = f(xr, w, b)
        assert y.dtype is dt
        xf = x.float().requires_grad_()
        yf = f(xf, w.float(), b.float())
        assert y.tolist() == yf.to(dt).tolist()
        y.backward(g)
        yf.backward(g.float())
        assert xr.grad.dtype is dt
        np.testing.assert_allclose(xr.grad.float().numpy(), xf.grad.numpy(), rtol=2e-2, atol=2e-2)


def test_half_in_float32_leaves_mixed_dtypes_to_the_kernel():
    """half_in_float32 runs a kernel in float32 only when its floating arguments are all of one half dtype (a mix
    promotes: the kernel's own dtypes stand), and rounds only its float32 outputs back."""
    from tensorlib import _dtype as D
    from tensorlib.ops._define import half_in_float32
    h = np.ones(3, np.float16)
    seen = []

    def k(xp, *arrays, scale=1):
        seen.append([a.dtype for a in arrays if isinstance(a, np.ndarray)])
        return arrays[0] * scale, np.arange(3)
    assert half_in_float32(k, np, h, np.ones(3, np.float32)) is None
    assert half_in_float32(k, np, np.ones(3, np.float32)) is None and not seen
    y, i = half_in_float32(k, np, h, h, scale=3)
    assert seen == [[np.float32, np.float32]] and y.dtype == np.float16 and y.tolist() == [3, 3, 3]
    assert i.dtype == np.int64
    y, _ = half_in_float32(k, np, h.astype(D.BF16), 2.0)
    assert y.dtype is D.BF16 and half_in_float32(k, np, h.astype(D.BF16), h) is None


@pytest.mark.parametrize("dt", ["bfloat16", "float16"])
def test_half_with_a_python_float_computes_in_float32(dt):
    """A float16/bfloat16 tensor and a Python float (add, sub, mul, div and their in-place and reflected forms): the
    number taken as float32 and the result rounded once, as torch's CPU kernels (TensorIterator's
    original_scalar_value<opmath_t>); NumPy and ml_dtypes rounded the number to the half dtype first (bfloat16 /
    0.0316 differed from torch's in 72% of elements). The optimizers' in-place addcmul_, addcdiv_ and lerp_ of
    half tensors likewise run in float32, rounded once."""
    dt = getattr(tl, dt)
    x = (tl.randn(64, 32, generator=tl.Generator().manual_seed(1)).abs() * 0.1 + 0.01).to(dt)
    f = x.float().numpy()
    s, s32 = 0.0316, np.float32(0.0316)
    half = x.numpy().dtype

    def want(v):
        return np.asarray(v, np.float32).astype(half)
    cases = [(x + s, f + s32), (x - s, f - s32), (x * s, f * s32), (x / s, f / s32), (s - x, s32 - f),
             (s + x, s32 + f), (x.clone().add_(s), f + s32), (x.clone().sub_(s), f - s32),
             (x.clone().mul_(s), f * s32), (x.clone().div_(s), f / s32)]
    for got, ref in cases:
        assert got.dtype is dt
        np.testing.assert_array_equal(got.numpy(), want(ref))
    y, z = x.flip(0), x.flip(1)
    yf, zf = y.float().numpy(), z.float().numpy()
    np.testing.assert_array_equal(x.clone().addcmul_(y, z, value=0.3).numpy(), want(f + np.float32(0.3) * yf * zf))
    np.testing.assert_array_equal(x.clone().addcdiv_(y, z, value=-0.3).numpy(), want(f + np.float32(-0.3) * yf / zf))
    lerp = x.clone().lerp_(y, 0.1).numpy()
    np.testing.assert_array_equal(lerp, x.float().lerp_(y.float(), 0.1).to(dt).numpy())
