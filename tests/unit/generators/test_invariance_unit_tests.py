"""Unit tests of the iut_example1-3 families (Aubin et al. 2021's linear unit-tests for invariance discovery).

Each check is against a closed form of the peer's data model, with tolerances from the sample size.
"""

from __future__ import annotations

import numpy as np
import pytest

import cowbench as cb
from cowbench.access import NEVER

FAMILIES = ("iut_example1", "iut_example2", "iut_example3")
N = 4000  # per training environment


@pytest.fixture(scope="module")
def samples():
    out = {}
    for name in FAMILIES:
        scn = cb.make_scenario(name, n_train=N, n_val=50, n_test=3 * N)
        out[name] = (scn, scn.sample(seed=0))
    return out


@pytest.mark.parametrize("name", FAMILIES)
def test_defaults_are_the_peers_dimensions_and_sizes(name):
    scn = cb.make_scenario(name)
    k = scn.knobs
    assert (k["dim_inv"], k["dim_spu"], k["n_envs"], k["scrambled"]) == (5, 5, 3, 0)
    assert k["n_train"] == k["n_val"] == 10_000  # the peer's num_samples per environment
    assert len(scn.scm.train_envs) == 3 and len(scn.variables) == 10
    assert scn.truth.identifiable_with == "env"
    roles = [scn.truth.roles[v] for v in scn.variables]
    assert roles[5:] == ["spurious"] * 5 and set(roles[:5]) <= {"causal", "core"}
    assert all(scn.truth.world_coef[v] == 0.0 for v in scn.variables[5:])
    assert all(scn.truth.world_coef[v] != 0.0 for v in scn.variables[:5])


def test_example1_residual_variance_is_the_peers_oracle_error(samples):
    """y - x.w has variance dim_inv * sd_e^2 in environment e; their mean over (0.1, 1.5, 2) is 10.43 (peer: 10.42)."""
    scn, data = samples["iut_example1"]
    w = np.array([scn.truth.world_coef[v] for v in scn.variables[:5]])
    split = data.test_id
    resid = split.y - split.x[:, :5].astype(np.float64) @ w
    sds = [scn.environments[e].params["sd"] for e in scn.scm.train_envs]
    assert sds == [0.1, 1.5, 2.0]
    for e, sd in zip(scn.scm.train_envs, sds, strict=True):
        r = resid[split.env == e]
        assert abs(r.mean()) < 4 * np.sqrt(5 * sd**2 / len(r))
        assert abs(r.var() / (5 * sd**2) - 1) < 4 * np.sqrt(2 / len(r))
    assert np.mean([5 * s**2 for s in sds]) == pytest.approx(31.3 / 3, abs=1e-9)


def test_example1_effect_reverses_at_deployment(samples):
    scn, data = samples["iut_example1"]
    for z in scn.variables[5:]:
        c_id = np.corrcoef(data.test_id.concepts[z], data.test_id.y)[0, 1]
        c_ood = np.corrcoef(data.test_ood.concepts[z], data.test_ood.y)[0, 1]
        if abs(c_id) > 8 / np.sqrt(len(data.test_id)):
            assert np.sign(c_ood) == -np.sign(c_id), z


def test_example2_environments_are_the_peers(samples):
    """P(cow) = s_e, P(background = animal) = p_e, the label equals the animal, fg is 100x fainter."""
    scn, data = samples["iut_example2"]
    c, env = data.train.concepts, data.train.env
    for e, (p, s) in zip(scn.scm.train_envs, [(0.95, 0.3), (0.97, 0.5), (0.99, 0.7)], strict=True):
        m = env == e
        assert abs(c["animal"][m].mean() - s) < 4 * np.sqrt(s * (1 - s) / m.sum())
        agree = (c["background"][m] == c["animal"][m]).mean()
        assert abs(agree - p) < 4 * np.sqrt(p * (1 - p) / m.sum())
    # sum of 5 fg is 0.01 * (+-5 + N(0, 1/2)): flipped from the animal with probability Phi(-7) ~ 1e-12
    np.testing.assert_array_equal(data.train.y, c["animal"].to_numpy())
    fg, bg = np.abs(data.train.x[:, :5]).mean(), np.abs(data.train.x[:, 5:]).mean()
    assert fg == pytest.approx(0.01, rel=0.05) and bg == pytest.approx(1.0, rel=0.05)
    np.testing.assert_array_equal(data.train.group, 2 * data.train.y + c["background"].to_numpy())


def test_example2_deployment_flips_the_background(samples):
    _, data = samples["iut_example2"]
    c = data.test_ood.concepts
    agree = (c["background"] == c["animal"]).mean()
    assert abs(agree - 0.05) < 4 * np.sqrt(0.05 * 0.95 / len(c))


def test_example3_invariant_bayes_weight_is_the_world_coefficient(samples):
    """Logistic regression of y on the invariant inputs alone converges to -2 margin / sd^2 = -20 each."""
    from cowbench.methods._common import logistic_fit

    scn, data = samples["iut_example3"]
    coef, se = logistic_fit(data.train.x[:, :5], data.train.y, C=1e6, max_iter=2000)
    truth = np.array([scn.truth.world_coef[v] for v in scn.variables[:5]])
    np.testing.assert_allclose(truth, -20.0)
    assert np.all(np.abs(coef - truth) < 4 * se), (coef, se)


def test_example3_spurious_directions_by_environment(samples):
    scn, data = samples["iut_example3"]
    c, env = data.train.concepts, data.train.env
    sign = 1 - 2 * data.train.y
    mus = []
    for e in scn.scm.train_envs:
        m = env == e
        mu = np.array([scn.environments[e].params[f"mu{j}"] for j in range(5)])
        est = np.array([(c[f"spu{j + 1}"][m] * sign[m]).mean() for j in range(5)])
        np.testing.assert_allclose(est, mu, atol=4 * 0.1 / np.sqrt(m.sum()))
        mus.append(mu)
    assert abs(data.train.y.mean() - 0.5) < 4 * 0.5 / np.sqrt(len(data.train))
    dep = scn.scm.deploy_envs[0]
    mu_test = np.array([scn.environments[dep].params[f"mu{j}"] for j in range(5)])
    np.testing.assert_allclose(mu_test, -np.sqrt(3) * np.mean(mus, axis=0))
    one = cb.make_scenario("iut_example3", n_envs=1)
    assert one.truth.identifiable_with == NEVER
    np.testing.assert_allclose([one.environments[1].params[f"mu{j}"] for j in range(5)],
                               [-one.environments[0].params[f"mu{j}"] for j in range(5)])


@pytest.mark.parametrize("name", FAMILIES)
def test_scrambled_inputs_are_an_orthogonal_mix_of_the_variables(name):
    plain = cb.make_scenario(name, n_train=200, n_val=20, n_test=20)
    mixed = cb.make_scenario(name, n_train=200, n_val=20, n_test=20, scrambled=1)
    a, b = plain.sample(1).train, mixed.sample(1).train
    q = mixed.scm.rendering.matrix
    np.testing.assert_allclose(q @ q.T, np.eye(10), atol=1e-12)
    np.testing.assert_allclose(b.x, a.x.astype(np.float64) @ q, atol=1e-4 * np.abs(a.x).max())
    assert mixed.input_map is None and mixed.truth.world_coef == plain.truth.world_coef


@pytest.mark.parametrize("name", FAMILIES)
def test_knobs_change_the_dimensions_and_environments(name):
    scn = cb.make_scenario(name, dim_inv=2, dim_spu=7, n_envs=6, n_train=30, n_val=10, n_test=20)
    data = scn.sample(0)
    assert data.train.x.shape == (6 * 30, 9)
    assert sorted(np.unique(data.train.env)) == list(range(6))
    # extra environments are drawn from weights_seed: another seed, other environments (Example3: all of them)
    other = cb.make_scenario(name, dim_inv=2, dim_spu=7, n_envs=6, weights_seed=1)
    assert [e.params for e in other.environments] != [e.params for e in scn.environments]


@pytest.mark.parametrize("name,knob,value", [
    ("iut_example1", "dim_inv", 0), ("iut_example2", "dim_spu", 0), ("iut_example3", "n_envs", 11),
    ("iut_example1", "scrambled", 2), ("iut_example2", "fg_scale", 0.0), ("iut_example3", "sd", 0.0005),
])
def test_bad_knobs_name_themselves(name, knob, value):
    with pytest.raises(ValueError, match=knob):
        cb.make_scenario(name, **{knob: value})
