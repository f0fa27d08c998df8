"""The balanced deployment split ``test_bal``: spurious variables independent of the label, causes unchanged.

Built once in the SCM machinery for every family, so every family is tested here.
"""

from __future__ import annotations

import hashlib

import numpy as np
import pytest

import cowbench as cb
from cowbench.subject import decorrelated_train

FAMILIES = cb.list_scenarios()


@pytest.fixture(scope="module")
def samples():
    return {name: (cb.make_scenario(name), cb.make_scenario(name).sample(seed=3)) for name in FAMILIES}


def _corr(a, b) -> float:
    return float(np.corrcoef(np.asarray(a, dtype=float), np.asarray(b, dtype=float))[0, 1])


@pytest.mark.parametrize("name", FAMILIES)
def test_spurious_is_independent_of_the_label(samples, name):
    scn, data = samples[name]
    split = data.test_bal
    tol = 4 / np.sqrt(len(split))
    spurious = scn.truth.of_role("spurious")
    assert spurious
    for v in spurious:
        assert abs(_corr(split.concepts[v], split.y)) < tol, v
        # the same variable is associated with the label on test_id, so the check has power
        assert abs(_corr(data.test_id.concepts[v], data.test_id.y)) > tol, v


@pytest.mark.parametrize("name", FAMILIES)
def test_causal_association_is_test_ids(samples, name):
    scn, data = samples[name]
    n_bal, n_id = len(data.test_bal), len(data.test_id)
    tol = 4 * np.sqrt(1 / n_bal + 1 / n_id)  # two independent samples
    for v in scn.truth.keep:
        diff = _corr(data.test_bal.concepts[v], data.test_bal.y) - _corr(data.test_id.concepts[v], data.test_id.y)
        assert abs(diff) < tol, v


@pytest.mark.parametrize("name", FAMILIES)
def test_is_a_permutation_of_test_id_like_units_with_the_label_untouched(samples, name):
    scn, data = samples[name]
    split = data.test_bal
    assert set(np.unique(split.env)) <= set(scn.scm.train_envs)
    plain = scn.scm.evaluate(split.exogenous, split.env)  # the same units without the permutation
    spurious = scn.truth.of_role("spurious")
    assert set(split.do) == set(spurious)
    for v in spurious:
        np.testing.assert_array_equal(np.sort(split.concepts[v].to_numpy(float)), np.sort(plain[v]))
        assert not np.array_equal(split.concepts[v].to_numpy(float), plain[v])
    # no spurious variable is an ancestor of the label: its values are the unpermuted units'
    np.testing.assert_array_equal(split.y, plain[scn.truth.label].astype(split.y.dtype))


def _old_sampler_checksums(scn, seed: int) -> dict[str, str]:
    """The sampler before test_bal existed: four SeedSequence children, one per split, in order."""
    scm = scn.scm
    out = {}
    children = np.random.SeedSequence(seed).spawn(4)
    for name, child in zip(("train", "val", "test_id", "test_ood"), children, strict=True):
        env = scm._env_plan(name)
        rng = np.random.default_rng(child)
        exo = scm.draw_exogenous(rng, env.shape[0]) if scm.selection is None else scm._draw_selected(rng, env)
        out[name] = scm.make_split(name, exo, env).checksum()
    return out


@pytest.mark.parametrize("name", FAMILIES)
def test_adding_the_split_leaves_the_other_splits_unchanged(samples, name):
    scn, data = samples[name]
    assert {s: data.split(s).checksum() for s in ("train", "val", "test_id", "test_ood")} == \
        _old_sampler_checksums(scn, 3)


def test_cow_splits_match_the_data_before_test_bal():
    """Checksums of ``cow`` (seed 3) recorded on main before test_bal was added (first 16 hex digits)."""
    data = cb.make_scenario("cow").sample(seed=3)
    before = {"train": "17d24b3188f1710b", "val": "1ace5403e99cd63d", "test_id": "f63c4e9688325173",
              "test_ood": "c2f045598d71eb97"}
    assert {s: data.split(s).checksum()[:16] for s in before} == before


def test_is_reproducible_and_seed_dependent():
    scn = cb.make_scenario("cow", n_train=100, n_val=20, n_test=300)
    a, b, c = scn.sample(seed=1), scn.sample(seed=1), scn.sample(seed=2)
    assert a.test_bal.checksum() == b.test_bal.checksum() != c.test_bal.checksum()
    assert a.checksum() == b.checksum()


def test_intervening_on_test_bal_keeps_the_permutation():
    scn = cb.make_scenario("cow", n_train=100, n_val=20, n_test=500)
    split = scn.sample(seed=0).test_bal
    cf = scn.intervene(split, do={"moo": 1.0})
    assert (cf.concepts["moo"] == 1).all()
    np.testing.assert_array_equal(cf.concepts["grass"], split.concepts["grass"])
    assert set(cf.do) == {"moo", "grass"}
    # an explicit do on the spurious variable wins over the split's own
    assert (scn.intervene(split, do={"grass": 0.0}).concepts["grass"] == 0).all()
    # re-intervening with nothing reproduces the split
    assert hashlib.sha256(scn.intervene(split, do={}).x.tobytes()).digest() == \
        hashlib.sha256(split.x.tobytes()).digest()


def test_oracle_training_data_is_the_same_construction():
    """``decorrelated_train`` and test_bal permute the spurious variables the same way (same helper)."""
    scn = cb.make_scenario("cow", n_train=300, n_val=20, n_test=100)
    train = scn.sample(seed=0).train
    dec = decorrelated_train(scn, train, seed=5)
    expected = scn.scm.balancing_do(np.random.default_rng(5), train.exogenous, train.env)
    np.testing.assert_array_equal(dec.concepts["grass"].to_numpy(float), expected["grass"])
