"""Performance budgets that cannot flake: counts of ops, bytes and syncs, not seconds.

    pytest samples/test_budgets_example.py                    # budgets only
    pytest samples/test_budgets_example.py --tl-profile       # + the "tensorlib profile" summary
    pytest samples/test_budgets_example.py --tl-profile-dir traces/   # + one Chrome trace per test
"""
import pytest

import tensorlib as tl
import tensorlib.nn as nn


def make_model():
    tl.manual_seed(0)
    return nn.Sequential(nn.Linear(32, 64), nn.ReLU(), nn.Linear(64, 10))


@pytest.mark.op_budget(max_calls={"linear": 2}, max_ops=40, max_bytes="64 KB")
def test_inference_stays_lean():
    model = make_model()
    with tl.no_grad():
        model(tl.randn(16, 32))


# as in torch, linear is t + addmm, and its backward AddmmBackward0 runs mm for each gradient it needs:
# the second layer's input and weight, the first layer's weight (its input needs none)
@pytest.mark.op_budget(max_calls={"linear": 2, "mm": 3}, max_syncs=0)
def test_training_step_budget():
    model = make_model()
    opt = tl.optim.SGD(model.parameters(), lr=0.1)
    x, y = tl.randn(16, 32), tl.randint(0, 10, (16,))
    loss = nn.functional.cross_entropy(model(x), y)
    loss.backward()
    opt.step()


@pytest.mark.xfail(strict=True, reason="shows what an exceeded budget reports")
@pytest.mark.op_budget(max_calls={"linear": 2})
def test_a_loop_that_calls_the_model_too_often():
    model = make_model()
    for _ in range(3):
        model(tl.randn(4, 32))


def test_assert_on_the_profile(tl_profile):
    model = make_model()
    model(tl.randn(8, 32)).sum().backward()
    tl_profile.stop()
    names = {e.key for e in tl_profile.key_averages()}
    assert {"aten::linear", "aten::relu"} <= names      # torch's profiled names
