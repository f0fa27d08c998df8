import numpy as np
import pandas as pd
import pytest

import cowbench as cb


def test_splits_have_the_documented_shapes_and_types(cow_data):
    sizes = {"train": 2 * 2000, "val": 2 * 500, "test_id": 2000, "test_ood": 2000}
    for name, n in sizes.items():
        split = cow_data.split(name)
        assert split.x.shape == (n, 4) and split.x.dtype == np.float32
        assert split.y.shape == (n,) and set(np.unique(split.y)) <= {0, 1}
        assert isinstance(split.concepts, pd.DataFrame)
        assert list(split.concepts.columns) == ["moo", "tail", "cow", "grass", "sky"]
        assert np.isfinite(split.x).all()
    assert set(np.unique(cow_data.train.env)) == {0, 1}
    assert set(np.unique(cow_data.test_ood.env)) == {2}


def test_truth_roles_and_world_coefficients(cow):
    assert cow.truth.roles == {"moo": "causal", "tail": "causal", "cow": "label", "grass": "spurious",
                               "sky": "nuisance"}
    assert cow.truth.world_coef == {"moo": 1.0, "tail": 1.0, "grass": 0.0, "sky": 0.0}
    # two independent causes make cow a collider, which orients cow -> grass from pooled data alone
    assert cow.truth.identifiable_with == "pooled"
    assert cb.make_scenario("cow", agreement_train=(0.9,)).truth.identifiable_with == "pooled"
    # environment-dependent label noise confounds cow and grass in the pooled data: environments needed
    assert cb.make_scenario("cow", heteroskedastic=1.0).truth.identifiable_with == "env"
    # one effective cause: no collider, cow -> grass and grass -> cow are Markov equivalent
    assert cb.make_scenario("cow", coef_tail=0.0, agreement_train=(0.9,)).truth.identifiable_with == "counterfactual"
    assert cb.make_scenario("cow", coef_tail=0.0).truth.identifiable_with == "env"


def test_agreement_per_environment_matches_the_knobs(cow_data):
    # P(grass = cow) is the knob, per environment; binomial sd is at most 0.5/sqrt(n)
    for split, env, p in [(cow_data.train, 0, 0.9), (cow_data.train, 1, 0.8), (cow_data.test_ood, 2, 0.1)]:
        c = split.concepts[split.env == env]
        agree = float(np.mean(c["grass"] == c["cow"]))
        assert abs(agree - p) < 4 * 0.5 / np.sqrt(len(c))


def test_same_seed_is_bit_identical_and_replicates_differ(cow):
    a, b, c = cow.sample(7), cow.sample(7), cow.sample(8)
    assert a.checksum() == b.checksum()
    for name in ("train", "val", "test_id", "test_ood"):
        assert np.array_equal(a.split(name).x, b.split(name).x)
    assert a.checksum() != c.checksum()
    assert not np.array_equal(a.train.x, c.train.x)


def test_label_matches_its_structural_equation(cow_data):
    c = cow_data.train.concepts
    # cow is a deterministic function of moo, tail and its own exogenous noise
    index = c["moo"] + c["tail"] + 0.5 * cow_data.train.exogenous["cow"]
    assert np.array_equal((index > 0).astype(int).to_numpy(), c["cow"].to_numpy())


def test_intervening_with_the_observed_values_changes_nothing(cow, cow_data):
    split = cow_data.train
    do = {v: split.concepts[v].to_numpy(dtype=float) for v in ("moo", "tail", "cow", "grass", "sky")}
    again = cow.intervene(split, do)
    assert np.array_equal(again.x, split.x)
    assert np.array_equal(again.y, split.y)
    assert again.concepts.equals(split.concepts)
    assert np.array_equal(cow.intervene(split, {}).x, split.x)


def test_intervening_on_grass_never_changes_cow_moo_or_tail(cow, cow_data):
    split = cow_data.test_id
    for value in (0.0, 1.0):
        cf = cow.intervene(split, {"grass": value})
        assert np.array_equal(cf.y, split.y)  # grass is not a parent of cow
        for v in ("moo", "tail", "sky"):
            assert np.array_equal(cf.concepts[v], split.concepts[v])
        assert (cf.concepts["grass"] == value).all()
        assert np.array_equal(cf.x[:, 2], np.full(len(split), value, dtype=np.float32))
        assert np.array_equal(cf.x[:, [0, 1, 3]], split.x[:, [0, 1, 3]])


def test_intervening_on_moo_recomputes_descendants(cow, cow_data):
    split = cow_data.train
    cf = cow.intervene(split, {"moo": 5.0})
    c = cf.concepts
    index = 5.0 + c["tail"] + 0.5 * split.exogenous["cow"]
    assert np.array_equal(c["cow"].to_numpy(), (index > 0).astype(int).to_numpy())
    # grass follows the new cow with the same exogenous draw: grass == cow exactly where it agreed before
    agreed = (split.concepts["grass"] == split.concepts["cow"]).to_numpy()
    assert np.array_equal((c["grass"] == c["cow"]).to_numpy(), agreed)


def test_bad_interventions_are_rejected(cow, cow_data):
    with pytest.raises(ValueError, match="unknown variable 'mud'"):
        cow.intervene(cow_data.train, {"mud": 1.0})
    with pytest.raises(ValueError, match="shape"):
        cow.intervene(cow_data.train, {"moo": np.zeros(3)})
    with pytest.raises(ValueError, match="non-finite"):
        cow.intervene(cow_data.train, {"moo": np.nan})


@pytest.mark.parametrize(("knobs", "match"), [
    ({"agreement_test": 1.5}, "agreement_test=1.5 is invalid: allowed a number in \\[0.0, 1.0\\]"),
    ({"agreement_train": (0.9, 2.0)}, "agreement_train"),
    ({"agreement_train": ()}, "agreement_train"),
    ({"n_train": 0}, "n_train=0"),
    ({"n_train": 2.5}, "n_train"),
    ({"label_noise": float("nan")}, "label_noise"),
    ({"grass_color": 1}, "unknown knob 'grass_color'"),
])
def test_bad_knobs_raise_value_errors_naming_them(knobs, match):
    with pytest.raises(ValueError, match=match):
        cb.make_scenario("cow", **knobs)


def test_scenarios_are_immutable_and_hash_by_spec():
    a, b = cb.make_scenario("cow"), cb.make_scenario("cow", agreement_train=[0.9, 0.8])
    assert a == b and hash(a) == hash(b) and a.id == b.id
    assert a != cb.make_scenario("cow", agreement_test=0.2)
    with pytest.raises(AttributeError):
        a.foo = 1
    spec = a.spec
    spec["knobs"]["n_train"] = 1
    assert a.knobs["n_train"] == 2000


@pytest.mark.parametrize("noise", ["normal", "laplace"])
def test_sparsity_is_the_probability_of_an_exact_zero(noise):
    scn = cb.make_scenario("cow", sparsity=0.8, noise=noise, n_train=20_000)
    c = scn.sample(0).train.concepts
    for v in ("moo", "tail", "sky"):
        assert abs((c[v] == 0).mean() - 0.8) < 4 * np.sqrt(0.8 * 0.2 / len(c))
    assert set(np.unique(c["grass"])) == {0, 1}  # binary variables are not sparsified
