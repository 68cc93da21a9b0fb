"""tensorlib.testing against torch.testing 2.13: the same calls, the same exception types and messages (with the
library's name in dtypes and sizes written alike)."""
import warnings

import pytest

import tensorlib as tl

torch = pytest.importorskip("torch")

NAN, INF = float("nan"), float("inf")

CASES = {
    "float32": lambda L: L.testing.assert_close(L.tensor([1., 2., 3.]), L.tensor([1., 2., 3.1])),
    "float64": lambda L: L.testing.assert_close(L.tensor([1., 2., 3.1], dtype=L.float64), L.tensor([1., 2., 3.])),
    "int": lambda L: L.testing.assert_close(L.tensor([1, 2, 3]), L.tensor([1, 2, 4])),
    "bool": lambda L: L.testing.assert_close(L.tensor([True, False]), L.tensor([True, True])),
    "0-d": lambda L: L.testing.assert_close(L.tensor(1.), L.tensor(1.5)),
    "numbers": lambda L: L.testing.assert_close(1.0, 1.1),
    "ints vs float": lambda L: L.testing.assert_close(1, 1.0, check_dtype=True),
    "shape": lambda L: L.testing.assert_close(L.zeros(3), L.zeros(4)),
    "dtype": lambda L: L.testing.assert_close(L.zeros(3), L.zeros(3, dtype=L.float64)),
    "dtype unchecked": lambda L: L.testing.assert_close(L.zeros(3), L.zeros(3, dtype=L.float64), check_dtype=False),
    "nested": lambda L: L.testing.assert_close([L.zeros(2), {"a": L.ones(2)}], [L.zeros(2), {"a": L.zeros(2)}]),
    "keys": lambda L: L.testing.assert_close({"a": 1}, {"b": 1}),
    "lengths": lambda L: L.testing.assert_close([1, 2], [1]),
    "nan": lambda L: L.testing.assert_close(L.tensor([NAN]), L.tensor([NAN])),
    "equal_nan": lambda L: L.testing.assert_close(L.tensor([NAN, 1.]), L.tensor([NAN, 1.]), equal_nan=True),
    "inf": lambda L: L.testing.assert_close(L.tensor([INF, 1.]), L.tensor([-INF, 1.])),
    "one tolerance": lambda L: L.testing.assert_close(L.zeros(2), L.zeros(2), atol=1e-3),
    "None": lambda L: L.testing.assert_close(None, 1),
    "bools": lambda L: L.testing.assert_close(True, False),
    "msg": lambda L: L.testing.assert_close(L.tensor([1., 2.]), L.tensor([1., 3.]), msg="custom"),
    "msg callable": lambda L: L.testing.assert_close(L.tensor([1., 2.]), L.tensor([1., 3.]), msg=lambda m: m + "!"),
    "exact 2-d": lambda L: L.testing.assert_close(L.tensor([[1., 2.], [0., 5.]]), L.tensor([[1., 2.5], [1e-9, 5.]]),
                                                  rtol=0, atol=0),
    "int32 int64": lambda L: L.testing.assert_close(L.tensor([1, 2], dtype=L.int32), L.tensor([1, 3])),
    "allclose": lambda L: L.testing.assert_allclose(L.tensor([1., 2.]), [1., 2.01]),
    "allclose ok": lambda L: L.testing.assert_allclose(L.tensor([1., 2.]), [1., 2.00001]),
    "make_tensor grad int": lambda L: L.testing.make_tensor(2, dtype=L.int64, device="cpu", requires_grad=True),
    "make_tensor low high": lambda L: L.testing.make_tensor(2, dtype=L.float32, device="cpu", low=3, high=1),
    "make_tensor range": lambda L: L.testing.make_tensor(2, dtype=L.uint8, device="cpu", low=-5, high=-1),
}


def outcome(lib, case):
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            case(lib)
    except Exception as e:       # noqa: BLE001  (the exception is what is compared)
        return type(e).__name__, str(e).replace("torch.", "L.").replace("tensorlib.", "L.")
    return "ok", ""


@pytest.mark.parametrize("name", sorted(CASES))
def test_same_outcome_and_message(name):
    assert outcome(tl, CASES[name]) == outcome(torch, CASES[name])
