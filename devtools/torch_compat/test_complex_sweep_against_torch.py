"""A complex-parity sweep against torch 2.13: every public function of `torch` and `torch.nn.functional` that
tensorlib also has and that takes a tensor first, called by both libraries on the same complex128 input (3, 4)
(and a second complex tensor where the call needs one), compares the outcome: both raise the same exception type
(and message when torch's is short), or both return equal values and dtypes.

Which arguments a function gets is found, not written per function: the first of a few argument patterns that torch
accepts for float64 inputs is the one used with complex ones (a function no pattern satisfies is listed in
`unsatisfied()`, so the sweep says what it did not compare). Known differences are in XFAIL with the reason."""
from __future__ import annotations

import warnings

import numpy as np
import pytest

import tensorlib as tl

torch = pytest.importorskip("torch")

_R = np.random.default_rng(23)
X = (_R.standard_normal((3, 4)) + 1j * _R.standard_normal((3, 4))) * 0.7
Y = (_R.standard_normal((3, 4)) + 1j * _R.standard_normal((3, 4))) * 0.7

# Not a function of a tensor (configuration, files, seeds, factories of sizes), or random (only the outcome's
# dtype and shape are compared for those).
NOT_TENSOR_FIRST = {"compile", "save", "load", "manual_seed", "seed", "initial_seed", "use_deterministic_algorithms",
                    "from_dlpack", "from_numpy", "typename", "is_storage", "broadcast_shapes", "can_cast",
                    "promote_types", "result_type", "tril_indices", "triu_indices", "sparse_coo_tensor"}
RANDOM = {"dropout", "dropout_", "dropout1d", "dropout2d", "dropout3d", "alpha_dropout", "alpha_dropout_",
          "feature_alpha_dropout", "feature_alpha_dropout_", "feature_dropout", "feature_dropout_", "native_dropout",
          "rrelu", "rrelu_", "bernoulli", "multinomial", "normal", "poisson", "binomial", "rand_like", "randn_like",
          "randint_like", "gumbel_softmax", "empty_like", "empty", "empty_strided", "fractional_max_pool2d",
          "fractional_max_pool2d_with_indices", "fractional_max_pool3d", "fractional_max_pool3d_with_indices"}


def _patterns(x, y):
    """Argument patterns, tried in order: the first torch accepts for real inputs is the function's."""
    return [((x,), {}), ((x, y), {}), ((x, y.mT), {}), ((x, 1), {}), ((x, y, y), {}), ((x, y.mT, y), {}),
            ((x, 0, 1), {}), ((x, x.mT), {}), ((x, 2), {}), ((x, (1, 1)), {}), ((x, y[0]), {}),
            ((x[None], 2), {}), ((x[None], y[None]), {})]


def _skip_name(name):
    return (name in NOT_TENSOR_FIRST or name.startswith(("set_", "get_", "are_", "init_"))
            or (name.startswith("is_") and name.endswith("_enabled")))


def _names(module, ours):
    import inspect
    out = []
    for n in dir(module):
        f = getattr(module, n, None)
        if (n.startswith("_") or not callable(f) or inspect.isclass(f) or inspect.ismodule(f)
                or not hasattr(ours, n) or _skip_name(n)):
            continue
        out.append(n)
    return out


CASES = [("torch", n) for n in _names(torch, tl)] + [("F", n) for n in _names(torch.nn.functional, tl.nn.functional)]


def _fn(lib, space, name):
    if space == "torch":
        return getattr(lib, name)
    return getattr(lib.nn.functional, name)


def _call(lib, space, name, k, arrays):
    x, y = (lib.tensor(a.copy()) for a in arrays)
    args, kw = _patterns(x, y)[k]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return _fn(lib, space, name)(*args, **kw)


_PATTERN: dict = {}


def pattern(space, name):
    """The index of the first pattern torch accepts for float64 inputs, or None."""
    key = (space, name)
    if key not in _PATTERN:
        _PATTERN[key] = None
        for k in range(len(_patterns(X, Y))):
            try:
                torch.manual_seed(0)
                _call(torch, space, name, k, [X.real, Y.real])
            except Exception:       # noqa: BLE001 - a pattern torch refuses is not this function's signature
                continue
            _PATTERN[key] = k
            break
    return _PATTERN[key]


def unsatisfied():
    return [f"{s}.{n}" for s, n in CASES if pattern(s, n) is None]


def _plain(v):
    """An outcome as comparable data: tensors as (dtype name, array), sequences element by element."""
    if hasattr(v, "detach") and hasattr(v, "dtype"):
        return ("tensor", str(v.dtype).split(".")[-1], np.asarray(v.detach().resolve_conj().numpy()
                                                                 if hasattr(v, "resolve_conj") else v.numpy()))
    if isinstance(v, (tuple, list)):
        return tuple(_plain(e) for e in v)
    if isinstance(v, (bool, int, float, complex)) or v is None:
        return ("scalar", type(v).__name__, v)
    return ("other", type(v).__name__)


def outcome(lib, space, name, k):
    try:
        torch.manual_seed(0)
        tl.manual_seed(0)
        return "ok", _plain(_call(lib, space, name, k, [X, Y]))
    except Exception as e:          # noqa: BLE001 - the exception is the outcome compared
        return "raise", type(e).__name__, str(e).strip()


def _differs(a, b, values=True):
    """Why outcome a (tensorlib) differs from b (torch), or None."""
    if a[0] != b[0]:
        if a[0] == "ok":
            return f"tensorlib computes, torch raises {b[1]}: {b[2][:90]}"
        return f"torch computes, tensorlib raises {a[1]}: {a[2][:90]}"
    if a[0] == "raise":
        if a[1] != b[1]:
            return f"both raise: {a[1]} vs torch's {b[1]}: {b[2][:90]}"
        if len(b[2]) <= 200 and "\n" not in b[2] and a[2] != b[2]:
            return f"message: {a[2][:90]!r} vs torch's {b[2][:90]!r}"
        return None
    return _value_differs(a[1], b[1], values)


def _value_differs(a, b, values):
    if isinstance(b, tuple) and b and b[0] == "tensor":
        if not (isinstance(a, tuple) and a and a[0] == "tensor"):
            return f"returns {a!r:.40} where torch returns a tensor"
        if a[1] != b[1]:
            return f"dtype {a[1]} vs torch's {b[1]}"
        if a[2].shape != b[2].shape:
            return f"shape {a[2].shape} vs torch's {b[2].shape}"
        if values and not np.allclose(a[2], b[2], rtol=1e-10, atol=1e-10, equal_nan=True):
            return "values differ"
        return None
    if isinstance(b, tuple) and b and b[0] == "scalar":
        if a != b and not (values is False and a[:2] == b[:2]):
            return f"{a!r:.60} vs torch's {b!r:.60}"
        return None
    if isinstance(b, tuple) and b and b[0] == "other":
        return None if a[:2] == b[:2] else f"{a!r:.40} vs torch's {b!r:.40}"
    if not isinstance(a, tuple) or len(a) != len(b):
        return f"{len(a) if isinstance(a, tuple) else a!r:.40} results vs torch's {len(b)}"
    for e, f in zip(a, b):
        d = _value_differs(e, f, values)
        if d:
            return d
    return None


def difference(space, name):
    k = pattern(space, name)
    if k is None:
        return None
    return _differs(outcome(tl, space, name, k), outcome(torch, space, name, k), values=name not in RANDOM)


# Differences the sweep found and left (run this file as a script for the table with the details). relu/threshold
# are hot kernels, left without a complex check on purpose; the rest were not one-line kernel changes.
XFAIL = {
    'torch.abs_': 'both refuse complex; message differs',
    'torch.adaptive_max_pool1d': 'both refuse complex; exception type differs',
    'torch.amax': 'both refuse complex; exception type differs',
    'torch.amin': 'both refuse complex; exception type differs',
    'torch.aminmax': 'both refuse complex; exception type differs',
    'torch.arctan2': 'both refuse complex; exception type differs',
    'torch.atan2': 'both refuse complex; exception type differs',
    'torch.avg_pool1d': 'computes where torch refuses complex; not a one-kernel check',
    'torch.bernoulli': 'computes where torch refuses complex; not a one-kernel check',
    'torch.binary_cross_entropy_with_logits': 'both refuse complex; exception type differs',
    'torch.cdist': 'computes where torch refuses complex; not a one-kernel check',
    'torch.clamp': 'computes where torch refuses complex; not a one-kernel check',
    'torch.clamp_': 'both refuse complex; exception type differs',
    'torch.clamp_max': 'computes where torch refuses complex; not a one-kernel check',
    'torch.clamp_max_': 'computes where torch refuses complex; not a one-kernel check',
    'torch.clamp_min': 'computes where torch refuses complex; not a one-kernel check',
    'torch.clamp_min_': 'computes where torch refuses complex; not a one-kernel check',
    'torch.clip': 'computes where torch refuses complex; not a one-kernel check',
    'torch.clip_': 'both refuse complex; exception type differs',
    'torch.copysign': 'both refuse complex; exception type differs',
    'torch.cosine_similarity': 'both refuse complex; exception type differs',
    'torch.cummax': 'computes where torch refuses complex; not a one-kernel check',
    'torch.cummin': 'computes where torch refuses complex; not a one-kernel check',
    'torch.digamma': 'both refuse complex; exception type differs',
    'torch.float_power': "dtype float64 vs torch's complex128",
    'torch.group_norm': 'computes where torch refuses complex; not a one-kernel check',
    'torch.heaviside': 'both refuse complex; exception type differs',
    'torch.histc': 'both refuse complex; message differs',
    'torch.histogram': 'both refuse complex; exception type differs',
    'torch.hypot': 'both refuse complex; exception type differs',
    'torch.i0': 'both refuse complex; exception type differs',
    'torch.i0_': 'both refuse complex; exception type differs',
    'torch.igamma': 'both refuse complex; exception type differs',
    'torch.igammac': 'both refuse complex; exception type differs',
    'torch.isneginf': 'both refuse complex; exception type differs',
    'torch.isposinf': 'both refuse complex; exception type differs',
    'torch.kl_div': 'computes where torch refuses complex; not a one-kernel check',
    'torch.kthvalue': 'both refuse complex; exception type differs',
    'torch.ldexp': 'values differ',
    'torch.ldexp_': 'values differ',
    'torch.lgamma': 'both refuse complex; exception type differs',
    'torch.logaddexp2': 'both refuse complex; exception type differs',
    'torch.logcumsumexp': "torch computes; tensorlib's refusal is not a one-line kernel fix",
    'torch.max_pool1d': 'both refuse complex; exception type differs',
    'torch.max_pool2d': 'both refuse complex; exception type differs',
    'torch.mvlgamma': 'both refuse complex; exception type differs',
    'torch.nanquantile': 'both refuse complex; message differs',
    'torch.nextafter': 'both refuse complex; exception type differs',
    'torch.pdist': 'computes where torch refuses complex; not a one-kernel check',
    'torch.randint_like': 'computes where torch refuses complex; not a one-kernel check',
    'torch.relu': 'hot kernel left unchecked (brief)',
    'torch.relu_': 'hot kernel left unchecked (brief)',
    'torch.signbit': 'both refuse complex; message differs',
    'torch.threshold': 'hot kernel left unchecked (brief)',
    'torch.threshold_': 'hot kernel left unchecked (brief)',
    'F.adaptive_avg_pool2d': "torch computes; tensorlib's refusal is not a one-line kernel fix",
    'F.adaptive_max_pool1d': 'both refuse complex; exception type differs',
    'F.adaptive_max_pool1d_with_indices': 'both refuse complex; exception type differs',
    'F.adaptive_max_pool2d': 'both refuse complex; exception type differs',
    'F.adaptive_max_pool2d_with_indices': 'both refuse complex; exception type differs',
    'F.avg_pool1d': 'computes where torch refuses complex; not a one-kernel check',
    'F.avg_pool2d': 'computes where torch refuses complex; not a one-kernel check',
    'F.binary_cross_entropy_with_logits': 'both refuse complex; exception type differs',
    'F.cosine_similarity': 'both refuse complex; exception type differs',
    'F.cross_entropy': 'both refuse complex; message differs',
    'F.dropout': 'computes where torch refuses complex; not a one-kernel check',
    'F.dropout1d': 'computes where torch refuses complex; not a one-kernel check',
    'F.dropout2d': 'computes where torch refuses complex; not a one-kernel check',
    'F.dropout3d': 'computes where torch refuses complex; not a one-kernel check',
    'F.gelu': 'both refuse complex; exception type differs',
    'F.group_norm': 'computes where torch refuses complex; not a one-kernel check',
    'F.gumbel_softmax': 'both refuse complex; exception type differs',
    'F.hardtanh_': 'computes where torch refuses complex; not a one-kernel check',
    'F.huber_loss': 'computes where torch refuses complex; not a one-kernel check',
    'F.interpolate': 'computes where torch refuses complex; not a one-kernel check',
    'F.kl_div': 'computes where torch refuses complex; not a one-kernel check',
    'F.local_response_norm': 'computes where torch refuses complex; not a one-kernel check',
    'F.logsigmoid': 'both refuse complex; exception type differs',
    'F.max_pool1d': 'both refuse complex; exception type differs',
    'F.max_pool1d_with_indices': 'both refuse complex; exception type differs',
    'F.max_pool2d': 'both refuse complex; exception type differs',
    'F.max_pool2d_with_indices': 'both refuse complex; exception type differs',
    'F.mse_loss': 'computes where torch refuses complex; not a one-kernel check',
    'F.multilabel_soft_margin_loss': 'both refuse complex; exception type differs',
    'F.pdist': 'computes where torch refuses complex; not a one-kernel check',
    'F.relu': 'hot kernel left unchecked (brief)',
    'F.relu_': 'hot kernel left unchecked (brief)',
    'F.scaled_dot_product_attention': 'computes where torch refuses complex; not a one-kernel check',
    'F.smooth_l1_loss': 'computes where torch refuses complex; not a one-kernel check',
    'F.softplus': 'both refuse complex; exception type differs',
    'F.softshrink': 'both refuse complex; message differs',
    'F.threshold': 'hot kernel left unchecked (brief)',
    'F.threshold_': 'hot kernel left unchecked (brief)',
    'F.upsample': 'computes where torch refuses complex; not a one-kernel check',
    'F.upsample_nearest': 'computes where torch refuses complex; not a one-kernel check',
}


@pytest.mark.parametrize("space,name", CASES, ids=[f"{s}.{n}" for s, n in CASES])
def test_complex_outcome_matches_torch(space, name):
    if pattern(space, name) is None:
        pytest.skip("no argument pattern of the sweep satisfies its signature")
    d = difference(space, name)
    if f"{space}.{name}" in XFAIL:
        if d is None:
            pytest.fail(f"XPASS: {space}.{name} now agrees; remove it from XFAIL")
        pytest.xfail(XFAIL[f"{space}.{name}"])
    assert d is None, d


if __name__ == "__main__":      # the sweep's table: python devtools/torch_compat/test_complex_sweep_against_torch.py
    rows = [(f"{s}.{n}", difference(s, n)) for s, n in CASES if pattern(s, n) is not None]
    bad = [(n, d) for n, d in rows if d]
    print(f"compared {len(rows)}, agree {len(rows) - len(bad)}, differ {len(bad)}; unsatisfied {len(unsatisfied())}")
    for n, d in bad:
        print(f"| {n} | {d} |")
    print("unsatisfied:", " ".join(unsatisfied()))
