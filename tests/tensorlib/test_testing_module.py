"""tensorlib.testing (torch.testing) and tensorlib.version without torch: torch 2.13's messages, tolerances and
item paths, written out (devtools/torch_compat/test_testing_against_torch.py compares them with torch's)."""
import warnings

import numpy as np
import pytest

import tensorlib as tl
from tensorlib.testing import assert_allclose, assert_close, make_tensor


def fails(exc, *args, **kw):
    with pytest.raises(exc) as info:
        assert_close(*args, **kw)
    return str(info.value)


def test_tensor_message_has_torchs_statistics_and_default_float32_tolerances():
    msg = fails(AssertionError, tl.tensor([1., 2., 3.]), tl.tensor([1., 2., 3.1]))
    assert msg == ("Tensor-likes are not close!\n\nMismatched elements: 1 / 3 (33.3%)\n"
                   "Greatest absolute difference: 0.09999990463256836 at index (2,) (up to 1e-05 allowed)\n"
                   "Greatest relative difference: 0.032258033752441406 at index (2,) (up to 1.3e-06 allowed)")
    assert_close(tl.tensor([1., 2., 3.]), tl.tensor([1., 2., 3.000001]))     # within float32's tolerances


def test_integers_compare_exactly_and_index_is_multi_dimensional():
    assert fails(AssertionError, tl.tensor([1, 2, 3]), tl.tensor([1, 2, 4])).endswith(
        "Greatest absolute difference: 1 at index (2,)\nGreatest relative difference: 0.25 at index (2,)")
    msg = fails(AssertionError, tl.tensor([[1., 2.], [0., 5.]]), tl.tensor([[1., 2.5], [1e-9, 5.]]), rtol=0, atol=0)
    assert "not equal!" in msg and "at index (0, 1)" in msg
    assert "Greatest relative difference: 1.0 at index (1, 0)" in msg


def test_scalars_attributes_and_item_paths():
    assert fails(AssertionError, 1.0, 1.1) == ("Scalars are not close!\n\nExpected 1.1 but got 1.0.\n"
                                               "Absolute difference: 0.10000000000000009 (up to 1e-07 allowed)\n"
                                               "Relative difference: 0.09090909090909098 (up to 1e-07 allowed)")
    assert "attribute 'shape' do not match" in fails(AssertionError, tl.zeros(3), tl.zeros(4))
    assert fails(AssertionError, tl.zeros(3), tl.zeros(3, dtype=tl.float64)).endswith(
        "do not match: tensorlib.float32 != tensorlib.float64.")
    assert_close(tl.zeros(3), tl.zeros(3, dtype=tl.float64), check_dtype=False)
    msg = fails(AssertionError, [tl.zeros(2), {"a": tl.ones(2)}], [tl.zeros(2), {"a": tl.zeros(2)}])
    assert msg.endswith("The failure occurred for item [1]['a']")
    assert "Missing keys in the actual mapping: ['b']" in fails(AssertionError, {"a": 1}, {"b": 1})
    assert fails(AssertionError, [1, 2], [1]) == "The length of the sequences mismatch: 2 != 1"
    assert fails(TypeError, tl.zeros(2), [0.0, 0.0]).startswith("No comparison pair was able to handle")
    assert fails(ValueError, tl.zeros(2), tl.zeros(2), rtol=1e-3).endswith("but got no atol.")
    assert fails(AssertionError, None, 1) == "None mismatch: None is not 1"
    assert fails(AssertionError, True, False) == "Booleans mismatch: True is not False"
    assert fails(AssertionError, tl.ones(2), tl.zeros(2), msg="custom") == "custom"
    assert fails(AssertionError, tl.ones(2), tl.zeros(2), msg=lambda m: m + "\nFooter").endswith("\nFooter")
    assert_close(np.ones(3), np.ones(3))     # arrays: tensor-likes


def test_nan_and_infinities():
    nan, inf = float("nan"), float("inf")
    assert "nan at index (0,)" in fails(AssertionError, tl.tensor([nan]), tl.tensor([nan]))
    assert_close(tl.tensor([nan]), tl.tensor([nan]), equal_nan=True)
    assert_close(tl.tensor([inf, 1.]), tl.tensor([inf, 1.]))
    assert "Greatest absolute difference: inf" in fails(AssertionError, tl.tensor([inf]), tl.tensor([-inf]))


def test_assert_allclose_is_deprecated_with_its_own_tolerances():
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        assert_allclose(tl.tensor([1., 2.]), [1., 2.00001])          # 1e-4 relative: close
        with pytest.raises(AssertionError, match="up to 0.0001 allowed"):
            assert_allclose(tl.tensor([1., 2.]), [1., 2.01])
    assert all(issubclass(x.category, FutureWarning) for x in w) and len(w) == 2


def test_make_tensor_ranges_flags_and_errors():
    t = make_tensor(50, 4, dtype=tl.float32, device="cpu", low=-1, high=1, requires_grad=True)
    assert t.shape == (50, 4) and t.requires_grad and float(t.min()) >= -1 and float(t.max()) < 1
    i = make_tensor((6, 3), dtype=tl.int64, device="cpu", noncontiguous=True, exclude_zero=True)
    assert not i.is_contiguous() and i.shape == (6, 3) and bool((i != 0).all()) and int(i.min()) >= -9
    assert make_tensor(4, dtype=tl.bool, device="cpu").dtype == tl.bool
    with pytest.raises(ValueError, match="not supported for boolean and integral dtypes"):
        make_tensor(2, dtype=tl.int64, device="cpu", requires_grad=True)
    with pytest.raises(ValueError, match=r"`low` must be less than `high`, but got 3 >= 1"):
        make_tensor(2, dtype=tl.float32, device="cpu", low=3, high=1)
    with pytest.raises(ValueError, match=r"only supports \[0, 256\)"):
        make_tensor(2, dtype=tl.uint8, device="cpu", low=-5, high=-1)


def test_lazy_attributes_and_version():
    assert tl.testing.assert_close is assert_close
    assert tl.version.__version__ == tl.__version__
    assert tl.version.cuda is None or isinstance(tl.version.cuda, str)
    assert tl.version.hip is None and tl.version.debug is False
