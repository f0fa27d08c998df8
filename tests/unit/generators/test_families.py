"""Unit tests of the scenario families cow_confounded, cow_proxy and cow_hidden."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import cowbench as cb
from cowbench.access import IDENTIFICATION_ORDER

FAMILIES = ("cow_confounded", "cow_proxy", "cow_hidden")
SMALL = {"n_train": 300, "n_val": 50, "n_test": 300}
OBSERVED = ("moo", "tail", "grass", "sky")


def assert_same_split(a, b) -> None:
    np.testing.assert_array_equal(a.x, b.x)
    np.testing.assert_array_equal(a.y, b.y)
    np.testing.assert_array_equal(a.env, b.env)
    np.testing.assert_array_equal(a.group, b.group)
    pd.testing.assert_frame_equal(a.concepts, b.concepts)


@pytest.mark.parametrize("name", FAMILIES)
def test_builds_with_defaults_and_is_registered(name):
    scn = cb.make_scenario(name)
    assert name in cb.list_scenarios()
    assert scn.name == name
    assert scn.variables == list(OBSERVED)
    assert scn.feature_names == OBSERVED
    roles = scn.truth.roles
    assert roles["moo"] == roles["tail"] == "causal"
    assert roles["grass"] == "spurious" and roles["sky"] == "nuisance" and roles["cow"] == "label"
    knobs = scn.knobs
    assert dict(scn.truth.world_coef) == {"moo": knobs["coef_moo"], "tail": knobs["coef_tail"],
                                          "grass": 0.0, "sky": 0.0}
    assert scn.truth.link == "probit"
    assert scn.truth.identifiable_with in IDENTIFICATION_ORDER
    assert scn.truth.identifiable_reason
    assert any(e.deployment for e in scn.environments) and not all(e.deployment for e in scn.environments)


@pytest.mark.parametrize("name", FAMILIES)
def test_docstring_states_expected_behaviour_with_citation(name):
    import importlib

    doc = importlib.import_module(f"cowbench.generators.{name}").__doc__
    assert "Expected behaviour" in doc and "catalog" in doc and "arXiv" in doc


@pytest.mark.parametrize("name", FAMILIES)
def test_arrays_are_finite_and_typed(name):
    data = cb.make_scenario(name, **SMALL).sample(seed=0)
    for split_name in ("train", "val", "test_id", "test_ood"):
        split = data.split(split_name)
        n = len(split)
        assert split.x.dtype == np.float32 and split.x.shape == (n, 4)
        assert np.isfinite(split.x).all()
        assert split.y.dtype == np.int64 and set(np.unique(split.y)) <= {0, 1}
        assert set(np.unique(split.group)) <= {0, 1, 2, 3}
        assert np.isfinite(split.concepts.to_numpy(dtype=np.float64)).all()
    assert 0.1 < data.train.y.mean() < 0.9


@pytest.mark.parametrize("name", FAMILIES)
def test_same_seed_same_arrays(name):
    scn = cb.make_scenario(name, **SMALL)
    assert scn.sample(seed=3).checksum() == scn.sample(seed=3).checksum()
    assert scn.sample(seed=3).checksum() != scn.sample(seed=4).checksum()


BAD_KNOBS = [
    ("cow_confounded", "grass_rate_train", (0.9,)),  # length differs from prevalence_shift_train
    ("cow_confounded", "grass_rate_test", (0.1, 0.9, 0.5)),
    ("cow_confounded", "grass_rate_train", (1.5, 0.1)),
    ("cow_confounded", "prevalence_shift_train", "high"),
    ("cow_proxy", "rho_test", 1.5),
    ("cow_proxy", "rho_train", (0.8, -2.0)),
    ("cow_proxy", "tau", -0.1),
    ("cow_hidden", "grass_noise", 0.0),
    ("cow_hidden", "confounding_train", ()),
    ("cow_hidden", "coef_hidden", float("nan")),
]


@pytest.mark.parametrize(("name", "knob", "value"), BAD_KNOBS)
def test_bad_knob_raises_value_error_naming_it(name, knob, value):
    with pytest.raises(ValueError, match=knob):
        cb.make_scenario(name, **{knob: value})


@pytest.mark.parametrize("name", FAMILIES)
def test_unknown_knob_is_rejected(name):
    with pytest.raises(ValueError, match="agreement_train"):
        cb.make_scenario(name, agreement_train=(0.9, 0.8))


@pytest.mark.parametrize("name", FAMILIES)
@pytest.mark.parametrize("variables", [("moo",), ("tail",), ("grass",), ("sky",), ("cow",), OBSERVED])
def test_do_observed_values_changes_nothing(name, variables):
    scn = cb.make_scenario(name, **SMALL)
    split = scn.sample(seed=1).train
    cf = scn.intervene(split, do={v: split.concepts[v].to_numpy(dtype=np.float64) for v in variables})
    assert_same_split(cf, split)


def test_do_hidden_observed_values_changes_nothing():
    scn = cb.make_scenario("cow_hidden", **SMALL)
    split = scn.sample(seed=1).train
    cf = scn.intervene(split, do={"u_hidden": split.concepts["u_hidden"].to_numpy()})
    assert_same_split(cf, split)


def test_intervening_on_hidden_recomputes_grass_and_cow():
    scn = cb.make_scenario("cow_hidden", **SMALL)
    split = scn.sample(seed=2).train
    k = scn.knobs
    u_new = np.random.default_rng(0).standard_normal(len(split))
    cf = scn.intervene(split, do={"u_hidden": u_new})
    c = split.concepts
    delta = np.array([e.params["confounding"] for e in scn.environments])[split.env]
    grass = delta * u_new + k["grass_noise"] * split.exogenous["grass"]
    index = k["coef_moo"] * c["moo"] + k["coef_tail"] * c["tail"] + k["coef_hidden"] * u_new
    cow = (index + k["label_noise"] * split.exogenous["cow"] > 0).astype(np.int64)
    np.testing.assert_allclose(cf.concepts["grass"], grass, rtol=0, atol=1e-12)
    np.testing.assert_array_equal(cf.y, cow)
    np.testing.assert_array_equal(cf.concepts["u_hidden"], u_new)
    assert (cf.y != split.y).any() and not np.allclose(cf.concepts["grass"], c["grass"])
    # non-descendants keep their values; the grass input follows the new grass, the others stay
    for v in ("moo", "tail", "sky"):
        np.testing.assert_array_equal(cf.concepts[v], c[v])
    j = scn.input_map["grass"]
    np.testing.assert_allclose(cf.x[:, j], grass.astype(np.float32), rtol=0, atol=1e-6)
    others = [scn.input_map[v] for v in ("moo", "tail", "sky")]
    np.testing.assert_array_equal(cf.x[:, others], split.x[:, others])


@pytest.mark.parametrize("name", FAMILIES)
def test_intervening_on_grass_leaves_cow_alone(name):
    scn = cb.make_scenario(name, **SMALL)
    split = scn.sample(seed=5).train
    for value in (0.0, 1.0):
        cf = scn.intervene(split, do={"grass": value})
        np.testing.assert_array_equal(cf.y, split.y)
        assert (cf.concepts["grass"] == value).all()


def test_proxy_grass_follows_moo():
    scn = cb.make_scenario("cow_proxy", **SMALL)
    split = scn.sample(seed=6).train
    cf = scn.intervene(split, do={"moo": 0.0})
    rho = np.array([e.params["rho"] for e in scn.environments])[split.env]
    np.testing.assert_allclose(cf.concepts["grass"], np.sqrt(1 - rho**2) * split.exogenous["grass"], atol=1e-12)


def test_mechanism_of_cow_is_invariant_where_stated():
    # cow_proxy and cow_hidden: no cow parameter is overridden by an environment;
    # cow_confounded: only the prevalence intercept is (by design).
    overridden = {name: {p for e in cb.make_scenario(name).environments for p in e.params} for name in FAMILIES}
    assert overridden["cow_proxy"] == {"rho"}
    assert overridden["cow_hidden"] == {"confounding"}
    assert overridden["cow_confounded"] == {"prevalence_shift", "grass_rate"}


def test_confounded_deployment_reverses_grass_association():
    scn = cb.make_scenario("cow_confounded", n_train=5000, n_val=10, n_test=10000)
    data = scn.sample(seed=7)

    def corr(split):
        return np.corrcoef(split.concepts["grass"], split.y)[0, 1]

    # population correlations are about +0.4 and -0.4; 4 / sqrt(n) is below 0.06 for both splits
    assert corr(data.train) > 4 / np.sqrt(len(data.train))
    assert corr(data.test_ood) < -4 / np.sqrt(len(data.test_ood))


@pytest.mark.parametrize(("name", "knobs", "level"), [
    ("cow_confounded", {}, "env"),
    ("cow_confounded", {"prevalence_shift_train": (1.0,), "grass_rate_train": (0.9,)}, "pooled"),
    ("cow_proxy", {}, "env"),
    ("cow_proxy", {"rho_train": (0.8,)}, "concept"),
    ("cow_proxy", {"tau": 0.0}, "pooled"),
    ("cow_hidden", {}, "env"),
    ("cow_hidden", {"confounding_train": (1.0,)}, "counterfactual"),
    ("cow_selection", {}, "pooled"),
    ("cow_selection", {"keep_train": (0.9,)}, "pooled"),
    ("cow_selection", {"keep_train": (0.9,), "coef_tail": 0.0}, "counterfactual"),
    ("cow_selection", {"coef_tail": 0.0}, "env"),
    ("four_groups", {}, "env"),
    ("four_groups", {"agreement_train": (0.9,)}, "never"),
    ("cow", {"agreement_train": (1.0, 1.0)}, "counterfactual"),
    ("cow_hidden", {"coef_hidden": 0.0}, "pooled"),
])
def test_identifiable_with(name, knobs, level):
    assert cb.make_scenario(name, **knobs).truth.identifiable_with == level
