"""tensorlib.nn.utils.prune (issue 19): torch's masks, state-dict keys (weight_orig, weight_mask), forward
pre-hook, combined re-pruning, remove and is_pruned, with torch's errors."""
from __future__ import annotations

import numpy as np
import pytest

import tensorlib as tl
from tensorlib import nn
from tensorlib.nn.utils import prune


def _lin(seed=0):
    tl.manual_seed(seed)
    return nn.Linear(6, 4)


def test_l1_unstructured_masks_the_smallest_and_keeps_torchs_keys():
    m = _lin()
    w = m.weight.detach().numpy().copy()
    assert prune.l1_unstructured(m, "weight", amount=0.25) is m
    assert list(m.state_dict()) == ["bias", "weight_orig", "weight_mask"]
    assert [k for k, _ in m.named_parameters()] == ["bias", "weight_orig"]
    mask = m.weight_mask.numpy()
    assert mask.sum() == 24 - 6
    assert np.abs(w)[mask == 0].max() <= np.abs(w)[mask == 1].min()
    np.testing.assert_array_equal(m.weight.detach().numpy(), w * mask)
    assert prune.is_pruned(m) and len(m._forward_pre_hooks) == 1
    # the hook recomputes weight from weight_orig before every forward
    with tl.no_grad():
        m.weight_orig.add_(1.0)
    x = tl.randn(3, 6)
    np.testing.assert_allclose(m(x).detach().numpy(), x.numpy() @ ((w + 1) * mask).T + m.bias.detach().numpy(),
                               rtol=1e-5, atol=1e-6)
    # gradients reach weight_orig through the mask
    m(x).sum().backward()
    assert np.all(m.weight_orig.grad.numpy()[mask == 0] == 0) and np.any(m.weight_orig.grad.numpy() != 0)


def test_pruning_twice_combines_and_remove_makes_it_permanent():
    m = _lin(1)
    prune.l1_unstructured(m, "weight", amount=6)
    first = m.weight_mask.numpy().copy()
    prune.random_unstructured(m, "weight", amount=0.5)     # half of the 18 entries still kept
    hook = next(iter(m._forward_pre_hooks.values()))
    assert isinstance(hook, prune.PruningContainer) and len(hook) == 2
    second = m.weight_mask.numpy()
    assert second.sum() == 9 and np.all(second <= first)
    pruned = m.weight.detach().numpy().copy()
    prune.remove(m, "weight")
    assert list(m.state_dict()) == ["bias", "weight"]          # as torch (checked against torch 2.13)
    assert isinstance(m.weight, nn.Parameter) and not prune.is_pruned(m)
    np.testing.assert_array_equal(m.weight.detach().numpy(), pruned)
    with pytest.raises(ValueError, match="Parameter 'weight' of module .* has to be pruned before pruning can be "
                                         "removed"):
        prune.remove(m, "weight")


def test_structured_and_global_pruning():
    conv = nn.Conv2d(2, 6, 3)
    prune.ln_structured(conv, "weight", amount=0.5, n=2, dim=0)
    mask = conv.weight_mask.numpy()
    kept = mask.reshape(6, -1).max(axis=1)
    assert kept.sum() == 3 and np.all(mask.reshape(6, -1).min(axis=1) == kept)
    norms = np.linalg.norm(conv.weight_orig.detach().numpy().reshape(6, -1), axis=1)
    assert norms[kept == 1].min() >= norms[kept == 0].max()
    lin = nn.Linear(5, 5)
    prune.random_structured(lin, "weight", amount=2, dim=1)
    assert (lin.weight_mask.numpy().sum(axis=0) == 0).sum() == 2
    a, b = nn.Linear(4, 4), nn.Linear(4, 2)
    prune.global_unstructured([(a, "weight"), (b, "weight")], pruning_method=prune.L1Unstructured, amount=0.5)
    allw = np.concatenate([a.weight_orig.detach().numpy().ravel(), b.weight_orig.detach().numpy().ravel()])
    allm = np.concatenate([a.weight_mask.numpy().ravel(), b.weight_mask.numpy().ravel()])
    assert allm.sum() == 12 and np.abs(allw)[allm == 0].max() <= np.abs(allw)[allm == 1].min()


def test_torchs_errors():
    m = _lin()
    with pytest.raises(ValueError, match=r"amount=1.5 should either be a float in the range \[0, 1\] or a "
                                         r"non-negative integer"):
        prune.l1_unstructured(m, "weight", amount=1.5)
    with pytest.raises(TypeError, match="Invalid type for amount: x. Must be int or float."):
        prune.l1_unstructured(m, "weight", amount="x")
    with pytest.raises(ValueError, match="amount=30 should be smaller than the number of parameters to prune=24"):
        prune.l1_unstructured(m, "weight", amount=30)
    assert "weight" in m._parameters and not prune.is_pruned(m)       # a failed pruning leaves it as it was
    with pytest.raises(ValueError, match="Structured pruning can only be applied to multidimensional tensors"):
        prune.ln_structured(m, "bias", amount=1, n=2, dim=0)
    with pytest.raises(TypeError, match='Only "unstructured" PRUNING_TYPE supported'):
        prune.global_unstructured([(m, "weight")], pruning_method=prune.RandomStructured, amount=1)


def test_a_custom_method_written_for_torch_works():
    class EveryOther(prune.BasePruningMethod):
        PRUNING_TYPE = "unstructured"

        def compute_mask(self, t, default_mask):
            mask = default_mask.clone()
            mask.view(-1)[::2] = 0
            return mask
    m = _lin()
    EveryOther.apply(m, "bias")
    np.testing.assert_array_equal(m.bias_mask.numpy(), [0, 1, 0, 1])
