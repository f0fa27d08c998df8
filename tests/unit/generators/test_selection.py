"""Selection: the association exists only among the selected units, and interventions respect the selection."""

import numpy as np
import pytest

import cowbench as cb


@pytest.fixture(scope="module")
def scn():
    return cb.make_scenario("cow_selection", n_train=20_000, n_test=20_000)


@pytest.fixture(scope="module")
def data(scn):
    return scn.sample(0)


def test_selected_agreement_equals_keep_and_is_absent_without_selection(data):
    train, ood = data.train, data.test_ood
    for env, keep in ((0, 0.9), (1, 0.8)):
        c = train.concepts[train.env == env]
        # grass is a fair coin in the population, so P(grass = cow | kept) = keep exactly
        assert abs((c.grass == c.cow).mean() - keep) < 4 * 0.5 / np.sqrt(len(c))
    c = ood.concepts  # keep_test = 0.5: no selection at deployment
    assert abs((c.grass == c.cow).mean() - 0.5) < 4 * 0.5 / np.sqrt(len(c))


def test_selection_does_not_touch_the_mechanism_of_cow(data):
    c = data.train.concepts
    index = c["moo"] + c["tail"] + 0.5 * data.train.exogenous["cow"]  # c.tail is DataFrame.tail
    assert np.array_equal((index > 0).astype(int).to_numpy(), c.cow.to_numpy())


def test_interventions_act_on_the_selected_units(scn, data):
    train = data.train
    same = scn.intervene(train, {v: train.concepts[v].to_numpy(float) for v in ("moo", "tail", "grass", "sky")})
    assert np.array_equal(same.x, train.x) and len(same) == len(train)
    for value in (0.0, 1.0):
        cf = scn.intervene(train, {"grass": value})
        assert len(cf) == len(train)  # no re-selection
        assert np.array_equal(cf.y, train.y)  # grass is not a parent of cow


def test_the_same_seed_gives_the_same_selected_sample(scn):
    assert scn.sample(5).checksum() == scn.sample(5).checksum()
    assert scn.sample(5).checksum() != scn.sample(6).checksum()


def test_hidden_variables_can_be_intervened_on():
    scn = cb.make_scenario("linear_sem", hidden_to_x1=1.0, hidden_to_y=2.0, n_train=500)
    train = scn.sample(0).train
    cf = scn.intervene(train, {"h": 0.0})
    c, u = cf.concepts, train.exogenous
    # x1 = x1_sd_e * eps (h = 0) and y = x1 + y_noise * eps: recomputed from the same noise
    sd = np.array([0.5, 1.0, 2.0])[train.env]
    assert np.allclose(c.x1, sd * u["x1"])
    assert np.allclose(c.y, c.x1 + u["y"])
    assert not np.allclose(c.x1, train.concepts.x1)
