"""Unit tests of the pooled estimation baselines against closed forms of the methods catalog (§7).

ols, ridge, lasso and probit are checked on about 2e5 training rows drawn from the scenario families
(proxy_sem, linear_sem, cow_proxy); the tolerance is 4 standard errors of the fit computed from the
sample (the OLS HC1 sandwich reported by the ols method, or the probit inverse Fisher information), so it
shrinks like 1/sqrt(n) and is not tuned to a draw. Ridge and lasso estimates are compared with the OLS
standard errors of the same data (shrinkage does not increase the sampling variance). The black-box
model methods (permutation_importance, partial_dependence) are checked against exact identities for
a linear subject model (catalog O16) and against the expectation of the permutation loss increase.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

import cowbench as cb
from cowbench.access import Task
from cowbench.models import build_model, logits

N = 200_000
Z = 4.0  # tolerance in standard errors
SMALL = {"n_val": 10, "n_test": 10}


def make_task(scn, data, subject=None, access=("pooled",)):
    if subject is None:  # the estimation methods never query the model
        subject = build_model("linear", data.train.x.shape[1])
    return Task(scn, data, subject, access, subject_config={"arch": "linear"})


def run(name, scn, data, subject=None, **params):
    return cb.get_method(name)(random_state=0, **params).run(make_task(scn, data, subject))


@pytest.fixture(scope="module")
def o9():
    """O9: y = 1.3 c + eps, s = 0.7 c + sqrt(1 - 0.49) e (single cause, exact inputs)."""
    scn = cb.make_scenario("proxy_sem", k=1, beta=(1.3,), r_train=(0.7,), r_test=0.0, noise_sd=1.0, tau=0.0,
                           n_train=N, **SMALL)
    return scn, scn.sample(seed=11)


@pytest.fixture(scope="module")
def o10():
    """O10 with r = 0.6 and r = 0.3: y = c1 + c2 + 0.5 eps, s = r (c1 + c2) + sqrt(1 - 2 r^2) e."""
    out = {}
    for r in (0.6, 0.3):
        scn = cb.make_scenario("proxy_sem", k=2, beta=(1.0, 1.0), r_train=(r,), r_test=0.0, noise_sd=0.5,
                               n_train=N, **SMALL)
        out[r] = (scn, scn.sample(seed=12))
    return out


# -- ols ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("x1_sd", "expected"), [
    (1.0, (0.5, 0.5)),            # O2 with beta = gamma = sigma_Y = sigma_S = 1
    (math.sqrt(0.1), (1 / 1.1, 0.1 / 1.1)),  # O13, sigma^2 = 0.1 -> (0.909, 0.091)
    (2.0, (0.2, 0.8)),            # O13, sigma^2 = 4
])
def test_ols_reproduces_o2_and_o13_on_linear_sem(x1_sd, expected):
    # O13: x1 ~ N(0, s^2), y = x1 + N(0, s^2), x2 = y + N(0, 1); O2 is its s = 1 case
    scn = cb.make_scenario("linear_sem", x1_sd_train=(x1_sd,), y_noise_train=(x1_sd,), x2_coef_train=(1.0,),
                           n_train=N, **SMALL)
    out = run("ols", scn, scn.sample(seed=3))
    se = out.details["se_hc1"]
    for v, target in zip(("x1", "x2"), expected, strict=True):
        assert abs(out.world_coef[v] - target) < Z * se[v], (v, out.world_coef[v], target, se[v])
    assert out.model_coef == out.world_coef


def test_ols_reproduces_o3_noisy_proxy():
    # O3 (continuous): beta = 1, rho = 0.8, tau = 0.7 -> (0.42353, 0.46118)
    scn = cb.make_scenario("proxy_sem", k=1, beta=(1.0,), r_train=(0.8,), r_test=0.0, tau=0.7, noise_sd=1.0,
                           n_train=N, **SMALL)
    out = run("ols", scn, scn.sample(seed=4))
    d = 1 + 0.49 - 0.64
    expected = {"c1": (1 - 0.64) / d, "s": 0.8 * 0.49 / d}
    assert expected["c1"] == pytest.approx(0.42353, abs=1e-5) and expected["s"] == pytest.approx(0.46118, abs=1e-5)
    for v, target in expected.items():
        assert abs(out.world_coef[v] - target) < Z * out.details["se_hc1"][v]


def test_ols_standard_errors_match_the_sampling_spread():
    # HC1 standard errors on a small sample: the spread of the estimate over 200 replicates agrees with them
    scn = cb.make_scenario("linear_sem", x1_sd_train=(1.0,), y_noise_train=(1.0,), x2_coef_train=(1.0,),
                           n_train=400, **SMALL)
    estimates, ses = [], []
    for seed in range(200):
        out = run("ols", scn, scn.sample(seed=seed))
        estimates.append(out.world_coef["x2"])
        ses.append(out.details["se_hc1"]["x2"])
    ratio = np.std(estimates, ddof=1) / np.mean(ses)
    # the sd of a sample sd from 200 draws is about 1/sqrt(400) = 5 %: allow 4 of those
    assert abs(ratio - 1) < 4 / math.sqrt(2 * 199)


# -- ridge -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("lam", "catalog"), [(0.1, (1.1014, 0.1264)), (1.0, (0.5593, 0.2593))])
def test_ridge_reproduces_o9(o9, lam, catalog):
    scn, data = o9
    beta, rho = 1.3, 0.7
    denom = (1 + lam) ** 2 - rho**2
    expected = {"c1": beta * (1 + lam - rho**2) / denom, "s": beta * rho * lam / denom}
    assert (expected["c1"], expected["s"]) == pytest.approx(catalog, abs=1e-4)
    n = len(data.train)
    out = run("ridge", scn, data, alpha=lam * n)  # sklearn convention: alpha = n * lambda
    assert out.details["lambda"] == pytest.approx(lam)
    se = run("ols", scn, data).details["se_hc1"]
    for v, target in expected.items():
        assert abs(out.world_coef[v] - target) < Z * se[v], (v, out.world_coef[v], target)


def test_ridge_at_zero_penalty_is_ols(o9):
    scn, data = o9
    ridge, ols = run("ridge", scn, data, alpha=1e-8), run("ols", scn, data)
    for v in scn.variables:
        assert ridge.world_coef[v] == pytest.approx(ols.world_coef[v], abs=1e-6)


# -- lasso -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("alpha", [0.1, 0.3])
def test_lasso_keeps_s_below_the_causes_entry_o10(o10, alpha):
    scn, data = o10[0.6]
    r = 0.6
    out = run("lasso", scn, data, alpha=alpha)
    expected = {"c1": 1 - alpha * (1 - r) / (1 - 2 * r**2), "c2": 1 - alpha * (1 - r) / (1 - 2 * r**2),
                "s": alpha * (2 * r - 1) / (1 - 2 * r**2)}
    se = run("ols", scn, data).details["se_hc1"]
    for v, target in expected.items():
        assert abs(out.world_coef[v] - target) < Z * se[v], (v, out.world_coef[v], target)
    assert set(out.details["selected"]) == {"c1", "c2", "s"}


@pytest.mark.parametrize("alpha", [0.8, 1.0, 1.1])
def test_lasso_selects_s_first_for_r_above_half_o10(o10, alpha):
    # between alpha = 0.7 and 2r = 1.2 only s is active, with b_s = 2r - alpha
    scn, data = o10[0.6]
    out = run("lasso", scn, data, alpha=alpha)
    assert out.details["selected"] == ["s"]
    # b_s = (cov(s, y) - alpha) / var(s) on the sample: its sd is about sd(s y) / sqrt(n)
    s_in = data.train.x[:, scn.input_map["s"]].astype(np.float64)
    y = data.train.y.astype(np.float64)
    tol = Z * np.std((s_in - s_in.mean()) * (y - y.mean())) / math.sqrt(len(y))
    assert abs(out.world_coef["s"] - (1.2 - alpha)) < tol


@pytest.mark.parametrize("alpha", [0.02, 0.1, 0.3, 0.6, 0.9])
def test_lasso_never_selects_s_for_r_below_half_o10(o10, alpha):
    scn, data = o10[0.3]
    out = run("lasso", scn, data, alpha=alpha)
    assert out.world_coef["s"] == 0.0
    assert set(out.details["selected"]) == {"c1", "c2"}
    # with s inactive b_c = S_cc^-1 (S_cy - alpha 1) on sample moments; population 1 - alpha. Its error is
    # alpha (S_11 - 1) + alpha S_12 + 0.5 S_1eps to first order: variance (2 alpha^2 + alpha^2 + 0.25) / n
    tol = Z * math.sqrt((3 * alpha**2 + 0.25) / len(data.train))
    assert abs(out.world_coef["c1"] - (1 - alpha)) < tol
    x, y = data.train.x.astype(np.float64), data.train.y.astype(np.float64)
    xc, yc = x[:, :2] - x[:, :2].mean(0), y - y.mean()
    kkt = np.linalg.solve(xc.T @ xc / len(y), xc.T @ yc / len(y) - alpha)  # exact on the sample
    assert [out.world_coef["c1"], out.world_coef["c2"]] == pytest.approx(kkt, abs=1e-5)


# -- probit ------------------------------------------------------------------------------------------


def cow_proxy_probit(rho, tau, coef_moo, coef_tail, label_noise):
    """Population probit coefficients of cow on (moo, tail, grass, sky) inputs (cow_proxy docstring, O3)."""
    d = 1 + tau**2 - rho**2
    s = math.sqrt(label_noise**2 + coef_moo**2 * tau**2 * (1 - rho**2) / d + coef_tail**2 * tau**2 / (1 + tau**2))
    return {"moo": coef_moo * (1 - rho**2) / d / s, "tail": coef_tail / (1 + tau**2) / s,
            "grass": coef_moo * rho * tau**2 / d / s, "sky": 0.0}


@pytest.mark.parametrize(("knobs", "catalog"), [
    # O3's probit version: beta = 1, rho = 0.8, tau = 0.7, unit index noise -> (0.3854, 0.4197)
    ({"rho_train": (0.8,), "tau": 0.7, "coef_moo": 1.0, "coef_tail": 0.0, "label_noise": 1.0},
     {"moo": 0.3854, "grass": 0.4197}),
    # cow_proxy's defaults in one environment (both causes, label noise 0.5)
    ({"rho_train": (0.8,), "tau": 0.7, "coef_moo": 1.0, "coef_tail": 1.0, "label_noise": 0.5}, None),
    # O3 with the causes observed exactly: (beta, 0) / label_noise
    ({"rho_train": (0.8,), "tau": 0.0, "coef_moo": 1.0, "coef_tail": 1.0, "label_noise": 0.5},
     {"moo": 2.0, "tail": 2.0, "grass": 0.0}),
])
def test_probit_reproduces_the_noisy_proxy_closed_form_o3(knobs, catalog):
    scn = cb.make_scenario("cow_proxy", rho_test=0.0, n_train=N, **SMALL, **knobs)
    out = run("probit", scn, scn.sample(seed=5))
    k = scn.knobs
    expected = cow_proxy_probit(k["rho_train"][0], k["tau"], k["coef_moo"], k["coef_tail"], k["label_noise"])
    for v, value in (catalog or {}).items():
        assert expected[v] == pytest.approx(value, abs=1e-4)
    assert out.details["converged"]
    for v, target in expected.items():
        assert abs(out.world_coef[v] - target) < Z * out.details["se"][v], (v, out.world_coef[v], target)


def test_probit_does_not_diverge_under_complete_separation():
    scn = cb.make_scenario("cow", agreement_train=(1.0,), n_train=300, **SMALL)
    out = run("probit", scn, scn.sample(seed=0), max_iter=25)
    assert all(np.isfinite(list(out.world_coef.values())))
    assert not out.details["converged"]


def test_probit_needs_a_binary_label():
    assert cb.get_method("probit").applicable(cb.make_scenario("linear_sem")) is not None
    for name in ("ols", "ridge", "lasso"):
        assert cb.get_method(name).applicable(cb.make_scenario("linear_sem")) is None
        assert cb.get_method(name).applicable(cb.make_scenario("cow")) is None


# -- partial dependence and permutation importance of a subject model --------------------------------


@pytest.fixture(scope="module")
def cow_linear():
    scn = cb.make_scenario("cow")
    data = scn.sample(seed=0)
    return scn, data, cb.train_subject(scn, data, arch="linear", seed=0)


def weights(model, scn):
    w = model[0].weight.detach().double().numpy().ravel()
    return {v: float(w[scn.input_map[v]]) for v in scn.variables}


def test_pd_slope_of_a_linear_model_is_its_weight_o16(cow_linear):
    scn, data, model = cow_linear
    out = run("partial_dependence", scn, data, subject=model)
    w = weights(model, scn)
    for v in scn.variables:  # continuous moo/tail/sky and binary grass alike
        assert out.model_coef[v] == pytest.approx(w[v], rel=1e-4, abs=1e-5)
    assert out.details["curves"]["grass"]["grid"] == [0.0, 1.0]


def test_pd_slope_equals_the_models_reliance_on_identity(cow_linear):
    scn, data, model = cow_linear
    ace = cb.reliance(model, scn, data.test_id)
    out = run("partial_dependence", scn, data, subject=model)
    for v in scn.variables:
        assert out.model_coef[v] == pytest.approx(ace[v], rel=1e-4, abs=1e-5)


def test_permutation_importance_ranks_grass_above_sky_on_cow(cow_linear):
    scn, data, model = cow_linear
    out = run("permutation_importance", scn, data, subject=model)
    imp = out.details["importance"]
    assert imp["grass"] > imp["sky"] + 4 * out.details["importance_sd"]["grass"]
    assert out.model_coef["grass"] > 0  # signed by the (positive) slope of the logit on grass
    w = weights(model, scn)
    for v in scn.variables:  # the permutation slope of a linear model is its weight
        assert out.details["slope"][v] == pytest.approx(w[v], rel=1e-4, abs=1e-5)


def test_permutation_importance_matches_its_expectation_for_a_linear_regressor():
    # squared error, f linear: E_pi[MR_j] = w_j^2 * 2 Var(x_j) + 2 w_j Cov(resid, x_j) (n/(n-1) factors dropped)
    scn = cb.make_scenario("linear_sem", n_train=3000)
    data = scn.sample(seed=2)
    model = cb.train_subject(scn, data, arch="linear", seed=0)
    repeats = 20
    out = run("permutation_importance", scn, data, subject=model, n_repeats=repeats, max_units=10_000)
    x = data.train.x.astype(np.float64)
    resid = data.train.y - logits(model, data.train.x)
    w = weights(model, scn)
    for v in scn.variables:
        j = scn.input_map[v]
        xj = x[:, j]
        expected = 2 * w[v] ** 2 * xj.var() + 2 * w[v] * np.mean((resid - resid.mean()) * (xj - xj.mean()))
        tol = Z * out.details["importance_sd"][v] / math.sqrt(repeats)
        assert abs(out.details["importance"][v] - expected) < tol, (v, out.details["importance"][v], expected, tol)


def test_permutation_importance_is_deterministic_given_random_state(cow_linear):
    scn, data, model = cow_linear
    task = make_task(scn, data, model)
    method = cb.get_method("permutation_importance")
    a, b = method(random_state=3).run(task), method(random_state=3).run(task)
    c = method(random_state=4).run(task)
    assert a.model_coef == b.model_coef and a.model_coef != c.model_coef


# -- proxy_sem, the family these oracles run on ------------------------------------------------------


def test_proxy_sem_truth_and_moments():
    scn = cb.make_scenario("proxy_sem", k=3, beta=(1.0, -2.0, 0.5), r_train=(0.5,), r_test=-0.2,
                           n_train=N, **SMALL)
    assert scn.variables == ["c1", "c2", "c3", "s"]
    assert dict(scn.truth.world_coef) == {"c1": 1.0, "c2": -2.0, "c3": 0.5, "s": 0.0}
    assert scn.truth.roles["s"] == "spurious" and scn.truth.link == "identity"
    c = scn.sample(seed=1).train.concepts
    tol = Z / math.sqrt(N)  # correlations and variances of unit-variance Gaussians
    assert np.var(c["s"]) == pytest.approx(1.0, abs=Z * math.sqrt(2 / N))
    for cause in ("c1", "c2", "c3"):
        assert np.corrcoef(c["s"], c[cause])[0, 1] == pytest.approx(0.5, abs=tol)


@pytest.mark.parametrize(("knobs", "name"), [
    ({"r_train": (0.8,)}, "r_train"),          # 2 r^2 >= 1
    ({"r_test": -0.71}, "r_test"),
    ({"k": 3}, "beta"),                         # beta has 2 entries
    ({"k": 4, "beta": (1.0,) * 4}, "r_train"),  # default r = 0.6 >= 1/2
    ({"tau": -1.0}, "tau"),
])
def test_proxy_sem_bad_knobs_name_the_knob(knobs, name):
    with pytest.raises(ValueError, match=name):
        cb.make_scenario("proxy_sem", **knobs)


@pytest.mark.parametrize(("knobs", "level"), [
    ({"tau": 0.0}, "pooled"), ({"tau": 0.5}, "env"), ({"tau": 0.5, "r_train": (0.6,)}, "concept"),
])
def test_proxy_sem_identifiable_with(knobs, level):
    truth = cb.make_scenario("proxy_sem", **knobs).truth
    assert truth.identifiable_with == level and truth.identifiable_reason
