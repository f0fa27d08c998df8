"""The model-surgery interface against hand computations on the linear and MLP subjects."""

import numpy as np
import pytest
import torch

from cowbench import surgery
from cowbench.models import build_model, logits


@pytest.fixture
def mlp():
    return build_model("mlp", 4, hidden=6, seed=1)


@pytest.fixture
def x():
    return np.random.default_rng(0).normal(size=(50, 4)).astype(np.float32)


def test_hook_points_of_each_architecture(mlp):
    assert surgery.hook_points(mlp) == {"input": -1, "hidden.0.pre": 0, "hidden.0": 1, "logit": 3}
    assert surgery.hook_points(build_model("linear", 4)) == {"input": -1, "logit": 1}
    assert surgery.hidden_points(mlp) == ["hidden.0"]


def test_activations_equal_the_layer_computed_by_hand(mlp, x):
    w, b = mlp[0].weight.detach().double().numpy(), mlp[0].bias.detach().double().numpy()
    expected = np.maximum(x.astype(np.float64) @ w.T + b, 0)
    np.testing.assert_allclose(surgery.activations(mlp, "hidden.0", x), expected, atol=1e-5)
    np.testing.assert_allclose(surgery.activations(mlp, "input", x), x, atol=0)
    np.testing.assert_allclose(surgery.activations(mlp, "logit", x)[:, 0], logits(mlp, x), atol=1e-6)


def test_identity_hook_changes_nothing_and_original_is_untouched(mlp, x):
    before = logits(mlp, x)
    edited = surgery.with_hook(mlp, "hidden.0", surgery.AffineHook(np.eye(6)))
    np.testing.assert_allclose(logits(edited, x), before, atol=1e-6)
    zeroed = surgery.with_hook(mlp, "hidden.0", surgery.unit_hook(6, [0, 1, 2, 3, 4, 5]))
    np.testing.assert_allclose(logits(zeroed, x), mlp[2].bias.item(), atol=1e-6)
    np.testing.assert_allclose(logits(mlp, x), before, atol=0)  # a copy was edited


def test_zero_ablating_a_unit_equals_dropping_its_readout_weight(mlp, x):
    edited = surgery.with_hook(mlp, "hidden.0", surgery.unit_hook(6, [2]))
    h = surgery.activations(mlp, "hidden.0", x)
    w2 = mlp[2].weight.detach().double().numpy()[0]
    expected = logits(mlp, x) - h[:, 2] * w2[2]
    np.testing.assert_allclose(logits(edited, x), expected, atol=1e-5)


def test_projection_hook_removes_exactly_the_span(x):
    rng = np.random.default_rng(3)
    basis = rng.normal(size=(4, 2))
    mean = rng.normal(size=4)
    hook = surgery.projection_hook(basis, mean)
    out = hook(torch.tensor(x)).double().numpy()
    q, _ = np.linalg.qr(basis)
    np.testing.assert_allclose((out - mean) @ q, 0, atol=1e-5)  # nothing left along the span but the mean
    orth = np.linalg.svd(np.eye(4) - q @ q.T)[0][:, :2]
    np.testing.assert_allclose(out @ orth, x @ orth, atol=1e-5)  # the complement is kept


def test_edits_compose_and_points_stay_addressable(mlp, x):
    once = surgery.with_hook(mlp, "hidden.0", surgery.unit_hook(6, [0]))
    twice = surgery.with_hook(once, "hidden.0", surgery.unit_hook(6, [1]))
    assert set(surgery.hook_points(twice)) == set(surgery.hook_points(mlp))
    both = surgery.with_hook(mlp, "hidden.0", surgery.unit_hook(6, [0, 1]))
    np.testing.assert_allclose(logits(twice, x), logits(both, x), atol=1e-6)
    np.testing.assert_allclose(surgery.activations(twice, "hidden.0", x)[:, :2], 0, atol=0)


def test_forward_from_matches_the_model(mlp, x):
    h = torch.tensor(surgery.activations(mlp, "hidden.0", x), dtype=torch.float32)
    np.testing.assert_allclose(surgery.forward_from(mlp, "hidden.0", h).detach().numpy(), logits(mlp, x), atol=1e-5)
    assert surgery.reader(mlp, "hidden.0") is mlp[2]


@pytest.mark.parametrize("point", ["hidden.3", "output", ""])
def test_unknown_point_names_the_allowed_ones(mlp, point):
    with pytest.raises(ValueError, match=r"unknown hook point .*input, hidden\.0\.pre, hidden\.0, logit"):
        surgery.activations(mlp, point, np.zeros((1, 4)))


def test_bad_hooks_are_refused(mlp):
    with pytest.raises(ValueError, match="square"):
        surgery.AffineHook(np.ones((2, 3)))
    with pytest.raises(ValueError, match="unit indices"):
        surgery.unit_hook(6, [6])
    with pytest.raises(ValueError, match="read-only"):
        surgery.with_hook(mlp, "logit", lambda h: h)
