"""The cnn subject: square pictures only, every surgery hook point works, and it trains on cow_image."""

import numpy as np
import pytest
import torch

import cowbench as cb
from cowbench import surgery
from cowbench.models import build_model, logits
from cowbench.subject import SubjectConfig


def test_hook_points_and_widths():
    model = build_model("cnn", 256, hidden=16, seed=0)
    x = np.random.default_rng(0).random((5, 256)).astype(np.float32)
    widths = {p: surgery.activations(model, p, x).shape[1] for p in surgery.hook_points(model)}
    assert widths == {"input": 256, "hidden.0.pre": 4 * 4 * 4, "hidden.0": 4 * 4 * 4, "hidden.1.pre": 16,
                      "hidden.1": 16, "logit": 1}
    assert surgery.hidden_points(model) == ["hidden.0", "hidden.1"]
    assert surgery.activation_shape(model, "hidden.0", x) == (4, 4, 4)
    assert isinstance(surgery.reader(model, "hidden.0"), torch.nn.Linear)  # the dense layer reads the maps


@pytest.mark.parametrize("point", ["input", "hidden.0.pre", "hidden.0", "hidden.1"])
def test_forward_to_then_from_is_the_model(point):
    model = build_model("cnn", 256, seed=1)
    x = np.random.default_rng(1).random((7, 256)).astype(np.float32)
    shape = surgery.activation_shape(model, point, x)
    with torch.no_grad():
        h = surgery.forward_to(model, point, torch.tensor(x))
        out = surgery.forward_from(model, point, h, shape)
    np.testing.assert_allclose(out.numpy(), logits(model, x), atol=1e-6)


def test_a_hook_on_the_feature_maps_edits_the_output():
    model = build_model("cnn", 256, seed=2)
    x = np.random.default_rng(2).random((6, 256)).astype(np.float32)
    width = surgery.activations(model, "hidden.0", x).shape[1]
    ablated = surgery.with_hook(model, "hidden.0", surgery.unit_hook(width, np.arange(width)))
    out = logits(ablated, x)
    np.testing.assert_allclose(out, out[0], atol=1e-6)  # every feature map zeroed: one constant logit
    identity = surgery.with_hook(model, "hidden.0", surgery.AffineHook(np.eye(width)))
    np.testing.assert_allclose(logits(identity, x), logits(model, x), atol=1e-6)
    assert not np.allclose(out, logits(model, x))


def test_non_square_inputs_are_refused():
    with pytest.raises(ValueError, match="square pictures"):
        build_model("cnn", 5)
    with pytest.raises(ValueError, match="side >= 8"):
        build_model("cnn", 16)


def test_cnn_subject_trains_on_cow_image_and_relies_on_grass():
    scn = cb.make_scenario("cow_image", n_train=400, n_val=50, n_test=400)
    data = scn.sample(0)
    model = cb.train_subject(scn, data, arch="cnn", seed=0, epochs=150)
    acc = float(np.mean((logits(model, data.test_id.x) > 0) == (data.test_id.y == 1)))
    assert acc > 0.7  # chance is about 0.5; ERM on cow_image reaches about 0.85
    assert cb.reliance(model, scn, data.test_id)["grass"] > 0.5  # the shortcut is learnt
    assert SubjectConfig(arch="cnn").arch == "cnn"
