"""Sums in torch's order (tensorlib/_cmath.c sum_cascade, _fastmath.cascade_sum): ATen's cascade_sum as its AVX2 build
runs it (8 float / 4 double lanes), checked here against a plain-Python transcription of that algorithm (scalar
additions, in the same order), and against the ops that use it. devtools/torch_compat checks torch itself."""
import numpy as np
import pytest

import tensorlib as tl
from tensorlib.ops import _fastmath

pytestmark = pytest.mark.skipif(_fastmath.cascade_sum(np.ones(3, np.float32)) is None,
                                reason="tensorlib._cmath is not built here")


def _ceil_log2(x):
    return 1 if x <= 2 else int(x - 1).bit_length()


def _multi_row_sum(rows):
    """ATen's multi_row_sum for one column (`rows` its values, numbers of one NumPy dtype, or lane vectors)."""
    size = len(rows)
    power = max(4, _ceil_log2(size) // 4)
    step, mask = 1 << power, (1 << power) - 1
    zero = rows[0] * 0 if size else 0
    acc = [zero] * 4
    i = 0
    while i + step <= size:
        for _ in range(step):
            acc[0] = acc[0] + rows[i]
            i += 1
        for j in range(1, 4):
            acc[j] = acc[j] + acc[j - 1]
            acc[j - 1] = zero
            if i & (mask << (j * power)):
                break
    while i < size:
        acc[0] = acc[0] + rows[i]
        i += 1
    for j in range(1, 4):
        acc[0] = acc[0] + acc[j]
    return acc[0]


def _row_sum(vals, zero):
    """ATen's row_sum: the run as (-1, 4) rows, the rest into the first sum, the four added in order."""
    k = len(vals) // 4
    parts = [_multi_row_sum([vals[i * 4 + c] for i in range(k)]) if k else zero for c in range(4)]
    for v in vals[k * 4:]:
        parts[0] = parts[0] + v
    return parts[0] + parts[1] + parts[2] + parts[3]


def _inner(x, lanes):
    t = x.dtype.type
    if x.size < lanes:
        return _row_sum(list(x), t(0))
    vs = x.size // lanes
    acc = _row_sum([x[i * lanes:(i + 1) * lanes] for i in range(vs)], np.zeros(lanes, x.dtype))
    total = t(0)
    for v in list(x[vs * lanes:]) + list(acc):
        total = t(total + v)
    return total


def _outer(x, lanes):
    rows, cols = x.shape
    t = x.dtype.type
    out = np.zeros(cols, x.dtype)
    j = 0
    if cols >= lanes:
        while j + 4 * lanes <= cols:
            for c in range(j, j + 4 * lanes):
                out[c] = _multi_row_sum(list(x[:, c]))
            j += 4 * lanes
        while j + lanes <= cols:
            for c in range(j, j + lanes):
                out[c] = _row_sum(list(x[:, c]), t(0))
            j += lanes
    else:
        while j + 3 < cols:
            for c in range(j, j + 4):
                out[c] = _multi_row_sum(list(x[:, c]))
            j += 4
    for c in range(j, cols):
        out[c] = _row_sum(list(x[:, c]), t(0))
    return out


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_full_sums_follow_the_cascade(dtype):
    lanes = 8 if dtype == np.float32 else 4
    rng = np.random.default_rng(1)
    for n in list(range(2, 40)) + [63, 64, 65, 200, 1023, 1024, 1031, 5000]:
        x = (rng.standard_normal(n) * rng.choice([1.0, 1e4], n)).astype(dtype)
        got = _fastmath.cascade_sum(x)
        assert got.shape == () and got == _inner(x, lanes), n


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_axis_sums_follow_the_cascade(dtype):
    lanes = 8 if dtype == np.float32 else 4
    rng = np.random.default_rng(2)
    for rows, cols in [(100, 10), (17, 3), (40, 70), (33, 8), (5, 130), (300, 1), (2, 2)]:
        x = (rng.standard_normal((rows, cols)) * 100).astype(dtype)
        want = _outer(x, lanes) if cols > 1 else [_inner(x[:, 0].copy(), lanes)]     # (a size-1 dim drops out)
        np.testing.assert_array_equal(_fastmath.cascade_sum(x, (0,)), want)
        if cols > 1:
            np.testing.assert_array_equal(_fastmath.cascade_sum(x, (1,), True)[:, 0], [_inner(r, lanes) for r in x])
    x = rng.standard_normal((4, 6, 5)).astype(dtype)            # (outer, red, inner): per outer slab
    np.testing.assert_array_equal(_fastmath.cascade_sum(x, (1,)), np.stack([_outer(s, lanes) for s in x]))


def test_where_the_cascade_does_not_apply_numpy_sums():
    x = np.ones((3, 4, 5), np.float32)
    assert _fastmath.cascade_sum(x, (0, 2)) is None               # reduced axes apart: NumPy's
    assert _fastmath.cascade_sum(x.transpose(1, 0, 2), (0,)) is None      # not C-contiguous
    assert _fastmath.cascade_sum(np.ones(4, np.int64)) is None
    np.testing.assert_array_equal(_fastmath.add_reduce(x, (0, 2)), np.add.reduce(x, (0, 2)))


def test_ops_sum_in_torchs_order():
    """sum, mean (the sum, then a division in the dtype), a linear layer's bias gradient and a broadcast gradient's
    sum_to all take the cascade."""
    rng = np.random.default_rng(3)
    g = rng.standard_normal((100, 10)).astype(np.float32)
    x = tl.tensor(g)
    want = _outer(g, 8)
    np.testing.assert_array_equal(x.sum(0).numpy(), want)
    np.testing.assert_array_equal(x.mean(0).numpy(), want / np.float32(100))
    assert x.sum().item() == _inner(g.ravel(), 8)
    lin = tl.nn.Linear(7, 10)
    inp = tl.tensor(rng.standard_normal((100, 7)).astype(np.float32))
    lin(inp).backward(x)
    np.testing.assert_array_equal(lin.bias.grad.numpy(), want)
    b = tl.zeros(10, requires_grad=True)
    (tl.zeros(100, 10) + b).backward(x)
    np.testing.assert_array_equal(b.grad.numpy(), want)
    assert not np.array_equal(want, np.add.reduce(g, 0))         # (the test tells the orders apart)
