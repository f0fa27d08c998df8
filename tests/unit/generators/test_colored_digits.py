"""Unit tests of the colored_digits family: IRM's Colored MNIST protocol on the 8x8 sklearn digits."""

from __future__ import annotations

import importlib

import numpy as np
import pandas as pd
import pytest

import cowbench as cb
from cowbench.models import accuracy
from cowbench.subject import SubjectConfig, fit_fresh

PIXELS = 64
SPLIT_SIZES = {"train": 2 * 5000, "val": 2 * 500, "test_id": 2000, "test_ood": 2000}


@pytest.fixture(scope="module")
def scn():
    return cb.make_scenario("colored_digits")


@pytest.fixture(scope="module")
def data(scn):
    return scn.sample(seed=0)


def digits():
    from sklearn.datasets import load_digits

    bunch = load_digits()
    return bunch.images.reshape(-1, PIXELS) / 16.0, bunch.target


def grey(x: np.ndarray) -> np.ndarray:
    """IRM's greyscale view: the two colour channels summed (exactly one of them is nonzero)."""
    return x[:, :PIXELS] + x[:, PIXELS:]


def test_registered_with_documented_truth(scn):
    assert "colored_digits" in cb.list_scenarios()
    assert scn.truth.roles == {"shape": "causal", "digit_id": "hidden", "label": "label", "color": "spurious"}
    assert scn.variables == ["shape", "color"]
    assert dict(scn.truth.world_coef) == {"shape": 1.0, "color": 0.0}
    assert scn.truth.identifiable_with == "env"
    assert cb.make_scenario("colored_digits", color_flip_train=(0.1,)).truth.identifiable_with == "counterfactual"
    assert scn.input_map is None and len(scn.feature_names) == 2 * PIXELS
    assert [e.params["color_flip"] for e in scn.environments] == [0.1, 0.2, 0.9]
    assert [e.deployment for e in scn.environments] == [False, False, True]
    doc = importlib.import_module("cowbench.generators.colored_digits").__doc__
    assert "Expected behaviour" in doc and "catalog" in doc and "arXiv:1907.02893" in doc


@pytest.mark.parametrize(("knob", "value"), [
    ("color_flip_train", (0.1, 1.5)),
    ("color_flip_train", ()),
    ("color_flip_test", -0.1),
    ("label_flip", 0.6),
    ("n_train", 0),
    ("n_test", 2.5),
    ("colour_flip_test", 0.9),  # unknown name
])
def test_bad_knobs_raise_a_value_error_naming_the_knob(knob, value):
    with pytest.raises(ValueError, match=knob):
        cb.make_scenario("colored_digits", **{knob: value})


def test_splits_have_the_documented_shapes_and_types(data):
    for name, n in SPLIT_SIZES.items():
        split = data.split(name)
        assert split.x.shape == (n, 2 * PIXELS) and split.x.dtype == np.float32
        assert split.y.shape == (n,) and split.y.dtype == np.int64 and set(np.unique(split.y)) <= {0, 1}
        assert isinstance(split.concepts, pd.DataFrame)
        assert list(split.concepts.columns) == ["shape", "digit_id", "label", "color"]
        assert np.isfinite(split.x).all() and split.x.min() >= 0.0 and split.x.max() <= 1.0
        assert np.array_equal(split.group, 2 * split.y + split.concepts["color"].to_numpy())
    assert set(np.unique(data.train.env)) == {0, 1}
    assert set(np.unique(data.test_ood.env)) == {2}


def test_the_image_is_the_chosen_digit_in_the_channel_of_its_colour(data):
    images, targets = digits()
    split = data.train
    c = split.concepts
    ids = c["digit_id"].to_numpy().astype(np.int64)
    red = c["color"].to_numpy() == 1
    np.testing.assert_array_equal(c["shape"].to_numpy(), (targets[ids] < 5).astype(np.int64))
    np.testing.assert_allclose(grey(split.x), images[ids], rtol=0, atol=1e-7)
    assert not split.x[red, PIXELS:].any() and not split.x[~red, :PIXELS].any()
    # every digit is reachable, and the images are drawn roughly uniformly (1797 digits, 10000 draws)
    assert len(np.unique(ids)) > 1700


def test_same_seed_is_bit_identical_and_replicates_differ():
    small = cb.make_scenario("colored_digits", n_train=200, n_val=20, n_test=200)
    assert small.sample(3).checksum() == small.sample(3).checksum()
    assert small.sample(3).checksum() != small.sample(4).checksum()


def test_intervening_with_the_observed_values_changes_nothing(scn, data):
    split = data.test_ood
    do = {v: split.concepts[v].to_numpy(dtype=float) for v in ("shape", "digit_id", "label", "color")}
    again = scn.intervene(split, do)
    assert np.array_equal(again.x, split.x)
    assert np.array_equal(again.y, split.y)
    assert again.concepts.equals(split.concepts)
    assert np.array_equal(scn.intervene(split, {}).x, split.x)


def test_do_color_moves_the_same_digit_to_the_other_channel(scn, data):
    split = data.test_id
    color = split.concepts["color"].to_numpy()
    cf = scn.intervene(split, {"color": 1.0 - color})
    for v in ("shape", "digit_id", "label"):
        assert np.array_equal(cf.concepts[v], split.concepts[v])
    assert np.array_equal(cf.y, split.y)
    assert np.array_equal(cf.concepts["color"], 1 - color)
    assert np.array_equal(cf.x[:, :PIXELS], split.x[:, PIXELS:])
    assert np.array_equal(cf.x[:, PIXELS:], split.x[:, :PIXELS])
    for value in (0.0, 1.0):  # a constant colour: everything in one channel
        x = scn.intervene(split, {"color": value}).x
        assert not x[:, PIXELS:].any() if value == 1.0 else not x[:, :PIXELS].any()
        assert np.array_equal(grey(x), grey(split.x))


def test_do_shape_redraws_the_digit_and_recomputes_its_descendants(scn, data):
    _, targets = digits()
    split = data.train
    ex = split.exogenous
    for value in (0, 1):
        cf = scn.intervene(split, {"shape": float(value)})
        c = cf.concepts
        ids = c["digit_id"].to_numpy().astype(np.int64)
        assert ((targets[ids] < 5) == bool(value)).all()
        kept = split.concepts["shape"].to_numpy() == value  # same shape, same noise: same image
        assert np.array_equal(ids[kept], split.concepts["digit_id"].to_numpy()[kept].astype(np.int64))
        assert np.array_equal(cf.x[kept], split.x[kept])
        # the label and the colour follow from their own (unchanged) exogenous noise
        label = np.where(ex["label"] < 0.25, 1 - value, value)
        assert np.array_equal(c["label"].to_numpy(), label)
        flip = np.array([0.1, 0.2, 0.9])[split.env]
        assert np.array_equal(c["color"].to_numpy(), np.where(ex["color"] < flip, 1 - label, label))


def test_colour_agreement_per_environment_matches_the_knobs(data):
    # P(color != label) = e per environment; 4 binomial sd
    checks = [(data.train, 0, 0.1), (data.train, 1, 0.2), (data.val, 0, 0.1), (data.val, 1, 0.2),
              (data.test_id, 0, 0.1), (data.test_id, 1, 0.2), (data.test_ood, 2, 0.9)]
    for split, env, e in checks:
        c = split.concepts[split.env == env]
        flip = float(np.mean(c["color"] != c["label"]))
        assert abs(flip - e) < 4 * np.sqrt(e * (1 - e) / len(c)), (split.name, env, flip)


def test_label_noise_is_a_quarter_in_every_environment(data):
    for split in (data.train, data.test_ood):
        c = split.concepts
        flip = float(np.mean(c["label"] != c["shape"]))
        assert abs(flip - 0.25) < 4 * np.sqrt(0.25 * 0.75 / len(c)), (split.name, flip)
    shape_rate = float(data.train.concepts["shape"].mean())
    assert abs(shape_rate - 901 / 1797) < 4 * 0.5 / np.sqrt(len(data.train))


def test_published_pattern_erm_uses_colour_and_the_greyscale_oracle_is_near_75(scn, data):
    """IRM's Colored MNIST: ERM 87.4 / 17.1, greyscale ERM 73.5 / 73.0, optimum 75 / 75 (train / test).

    Measured here (seed 0, default subject settings: MLP, hidden 32, 300 full-batch Adam epochs, lr
    0.02): ERM 85.8 / 16.2 and greyscale 75.5 / 72.3. Bounds: ERM train > 80 (colour alone gives 85) and
    test_ood < 30 (colour is right 10% of the time there). For the greyscale model 75% is the ceiling of
    a predictor that ignores colour; with n_test = 2000 the binomial sd of an accuracy near 0.75 is about
    1 point and with 10 000 training units about 0.4, so [68, 80] allows roughly 5 sd below the ceiling
    for a digit classifier that is not perfect, and some memorisation of the noisy labels above it
    (1797 images repeat about 5.6 times each in training).
    """
    erm = cb.train_subject(scn, data, arch="mlp", seed=0)
    assert accuracy(erm, data.train.x, data.train.y) > 0.80
    assert accuracy(erm, data.test_ood.x, data.test_ood.y) < 0.30
    oracle = fit_fresh(SubjectConfig(arch="mlp"), grey(data.train.x), data.train.y, seed=0)
    for split in (data.train, data.test_ood):
        assert 0.68 < accuracy(oracle, grey(split.x), split.y) < 0.80, split.name
