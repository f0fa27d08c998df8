"""Closed-form oracles (methods catalog §7) checked on the generators' own samples.

Each test draws about 2e5 rows from a scenario family, fits a population-consistent estimator (probit MLE
or OLS, written here with numpy/scipy so the test depends on no estimation package) and compares every
coefficient with its closed form. The tolerance is 4 standard errors of the fit, computed from the
sample (inverse Fisher information for probit, HC0 sandwich for OLS): it shrinks like 1/sqrt(n) and is
never tuned to a particular draw.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.stats import norm

import cowbench as cb

N = 200_000
Z = 4.0  # tolerance in standard errors
SMALL = {"n_val": 10, "n_test": 10}


def probit_fit(features: np.ndarray, y: np.ndarray, iters: int = 50) -> tuple[np.ndarray, np.ndarray]:
    """Probit MLE by Fisher scoring; returns the coefficients (intercept first) and their standard errors."""
    X = np.column_stack([np.ones(len(y)), np.asarray(features, dtype=np.float64)])
    y = np.asarray(y, dtype=np.float64)
    beta = np.zeros(X.shape[1])
    for _ in range(iters):
        eta = X @ beta
        p = np.clip(norm.cdf(eta), 1e-12, 1 - 1e-12)
        dens = norm.pdf(eta)
        info = X.T @ (X * (dens**2 / (p * (1 - p)))[:, None])
        step = np.linalg.solve(info, X.T @ (dens * (y - p) / (p * (1 - p))))
        beta = beta + step
        if np.max(np.abs(step)) < 1e-10:
            break
    else:
        raise AssertionError("probit fit did not converge")
    eta = X @ beta
    p = np.clip(norm.cdf(eta), 1e-12, 1 - 1e-12)
    info = X.T @ (X * (norm.pdf(eta) ** 2 / (p * (1 - p)))[:, None])
    return beta, np.sqrt(np.diag(np.linalg.inv(info)))


def ols_fit(X: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """OLS coefficients and HC0 (heteroskedasticity-robust) standard errors; ``X`` holds every column."""
    X = np.asarray(X, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    bread = np.linalg.inv(X.T @ X)
    beta = bread @ X.T @ y
    resid = y - X @ beta
    meat = X.T @ (X * (resid**2)[:, None])
    return beta, np.sqrt(np.diag(bread @ meat @ bread))


def assert_close(est: np.ndarray, se: np.ndarray, expected, names) -> None:
    expected = np.asarray(expected, dtype=np.float64)
    bad = np.abs(est - expected) > Z * se
    detail = ", ".join(f"{n}: {e:.4f} vs {x:.4f} (se {s:.4f})" for n, e, x, s in zip(names, est, expected, se,
                                                                                      strict=True))
    assert not bad.any(), detail


def concepts(split, cols) -> np.ndarray:
    return split.concepts[list(cols)].to_numpy(dtype=np.float64)


# -- default cow: the probit index itself ------------------------------------------------------------------


def test_cow_probit_on_exact_causes_is_index_over_label_noise():
    scn = cb.make_scenario("cow", n_train=N // 2, **SMALL)
    split = scn.sample(seed=11).train
    beta, se = probit_fit(concepts(split, ("moo", "tail")), split.y)
    k = scn.knobs
    expected = [0.0, k["coef_moo"] / k["label_noise"], k["coef_tail"] / k["label_noise"]]
    assert_close(beta, se, expected, ("const", "moo", "tail"))


# -- noisy proxy: catalog §7 O3 -----------------------------------------------------------------------------


def o3_probit(coef_moo, coef_tail, label_noise, rho, tau):
    """Population probit coefficients of cow on (x_moo, x_tail, x_grass, x_sky), catalog O3 with tail."""
    d = 1 + tau**2 - rho**2
    b_moo, b_grass = coef_moo * (1 - rho**2) / d, coef_moo * rho * tau**2 / d
    b_tail = coef_tail / (1 + tau**2)
    var = label_noise**2 + coef_moo**2 * tau**2 * (1 - rho**2) / d + coef_tail**2 * tau**2 / (1 + tau**2)
    s = math.sqrt(var)
    return np.array([0.0, b_moo / s, b_tail / s, b_grass / s, 0.0])


def test_o3_formula_reproduces_catalog_numbers():
    # catalog O3: beta = 1, rho = 0.8, tau = 0.7, N(0, 1) index noise -> probit (0.3854, 0.4197)
    coef = o3_probit(1.0, 0.0, 1.0, 0.8, 0.7)
    assert coef[1] == pytest.approx(0.3854, abs=5e-5)
    assert coef[3] == pytest.approx(0.4197, abs=5e-5)


@pytest.mark.parametrize("knobs", [
    {"coef_moo": 1.0, "coef_tail": 0.0, "label_noise": 1.0, "rho_train": (0.8,), "tau": 0.7},  # catalog O3
    {"rho_train": (0.6,), "tau": 0.7},  # default coefficients, tail in the index
    {"rho_train": (0.8,), "tau": 0.0},  # moo exact: grass's coefficient is 0
], ids=["catalog", "with-tail", "tau0"])
def test_proxy_bayes_probit_on_inputs_matches_o3(knobs):
    scn = cb.make_scenario("cow_proxy", n_train=N, **SMALL, **knobs)
    split = scn.sample(seed=12).train
    beta, se = probit_fit(split.x, split.y)
    k = scn.knobs
    expected = o3_probit(k["coef_moo"], k["coef_tail"], k["label_noise"], k["rho_train"][0], k["tau"])
    assert_close(beta, se, expected, ("const", *scn.feature_names))


def test_proxy_deployment_flips_grass_coefficient():
    scn = cb.make_scenario("cow_proxy", rho_train=(0.8,), rho_test=-0.8, n_train=10, n_val=10, n_test=N)
    split = scn.sample(seed=13).test_ood
    beta, se = probit_fit(split.x, split.y)
    k = scn.knobs
    expected = o3_probit(k["coef_moo"], k["coef_tail"], k["label_noise"], -0.8, k["tau"])
    assert expected[3] < 0
    assert_close(beta, se, expected, ("const", *scn.feature_names))


# -- hidden confounder: catalog §7 O1 (omitted confounder) with O5 probit attenuation -----------------------


def hidden_probit(coef_moo, coef_tail, coef_hidden, label_noise, d, grass_noise):
    """Population probit coefficients of cow on exact (moo, tail, grass, sky), u_hidden omitted."""
    k = d / (d**2 + grass_noise**2)
    v = grass_noise**2 / (d**2 + grass_noise**2)
    s = math.sqrt(label_noise**2 + coef_hidden**2 * v)
    return np.array([0.0, coef_moo / s, coef_tail / s, coef_hidden * k / s, 0.0])


O1_KNOBS = {"coef_moo": 1.5, "coef_hidden": 2.0, "confounding_train": (0.8,), "grass_noise": 0.7,
            "coef_tail": 1.0, "label_noise": 1.0}


def test_hidden_formula_ratio_is_catalog_o1_bias():
    # catalog O1: beta = 1.5, alpha = 2, delta = 0.8, sigma_U = 1, sigma_S = 0.7 -> b_S = 1.41593 (in beta's units)
    coef = hidden_probit(1.5, 1.0, 2.0, 1.0, 0.8, 0.7)
    assert 1.5 * coef[3] / coef[1] == pytest.approx(1.41593, abs=5e-6)


def test_hidden_omitted_confounder_probit_matches_o1():
    scn = cb.make_scenario("cow_hidden", n_train=N, **SMALL, **O1_KNOBS)
    split = scn.sample(seed=14).train
    names = ("moo", "tail", "grass", "sky")
    beta, se = probit_fit(concepts(split, names), split.y)
    k = scn.knobs
    expected = hidden_probit(k["coef_moo"], k["coef_tail"], k["coef_hidden"], k["label_noise"],
                             k["confounding_train"][0], k["grass_noise"])
    assert_close(beta, se, expected, ("const", *names))


def test_hidden_adjusting_for_confounder_removes_grass():
    scn = cb.make_scenario("cow_hidden", n_train=N, **SMALL, **O1_KNOBS)
    split = scn.sample(seed=15).train
    names = ("moo", "tail", "grass", "u_hidden")
    beta, se = probit_fit(concepts(split, names), split.y)
    k = scn.knobs
    s = k["label_noise"]
    expected = [0.0, k["coef_moo"] / s, k["coef_tail"] / s, 0.0, k["coef_hidden"] / s]
    assert_close(beta, se, expected, ("const", *names))


def test_hidden_deployment_reverses_grass_coefficient():
    scn = cb.make_scenario("cow_hidden", **{**O1_KNOBS, "confounding_test": -0.8}, n_train=10, n_val=10, n_test=N)
    split = scn.sample(seed=16).test_ood
    names = ("moo", "tail", "grass", "sky")
    beta, se = probit_fit(concepts(split, names), split.y)
    k = scn.knobs
    expected = hidden_probit(k["coef_moo"], k["coef_tail"], k["coef_hidden"], k["label_noise"], -0.8,
                             k["grass_noise"])
    assert expected[3] < 0
    assert_close(beta, se, expected, ("const", *names))


# -- environment confounding: O1 in its binary form, and the back-door adjustment ---------------------------


def confounded_population(knobs):
    """Population OLS of cow on (1, grass, moo, tail), pooling equally sized training environments.

    Grass, moo and tail are mutually uncorrelated, so each slope is Cov(cow, v) / Var(v): for grass the
    omitted-environment bias; for moo, by Stein's lemma, the mean over environments of
    coef_moo / S * phi(shift_e / S) with S^2 = label_noise^2 + coef_moo^2 + coef_tail^2.
    """
    shift = np.array(knobs["prevalence_shift_train"])
    rate = np.array(knobs["grass_rate_train"])
    scale = math.sqrt(knobs["label_noise"] ** 2 + knobs["coef_moo"] ** 2 + knobs["coef_tail"] ** 2)
    prevalence = norm.cdf(shift / scale)
    p = rate.mean()
    b_grass = ((rate * prevalence).mean() - p * prevalence.mean()) / (p * (1 - p))
    dens = norm.pdf(shift / scale).mean() / scale
    b_moo, b_tail = knobs["coef_moo"] * dens, knobs["coef_tail"] * dens
    intercept = prevalence.mean() - b_grass * p
    return np.array([intercept, b_grass, b_moo, b_tail])


def test_confounded_pooled_ols_has_omitted_environment_bias():
    scn = cb.make_scenario("cow_confounded", n_train=N // 2, **SMALL)
    split = scn.sample(seed=17).train
    names = ("grass", "moo", "tail")
    X = np.column_stack([np.ones(len(split)), concepts(split, names)])
    beta, se = ols_fit(X, split.y)
    expected = confounded_population(scn.knobs)
    assert expected[1] > 0.3  # a strong spurious association, by construction
    assert_close(beta, se, expected, ("const", *names))


def test_confounded_backdoor_adjustment_removes_grass():
    scn = cb.make_scenario("cow_confounded", n_train=N // 2, **SMALL)
    split = scn.sample(seed=18).train
    dummies = (split.env[:, None] == np.array(scn.scm.train_envs)[None, :]).astype(np.float64)
    X = np.column_stack([dummies, concepts(split, ("grass", "moo", "tail"))])
    beta, se = ols_fit(X, split.y)
    assert abs(beta[len(scn.scm.train_envs)]) <= Z * se[len(scn.scm.train_envs)]


def test_confounded_within_environment_probit_is_the_structural_index():
    scn = cb.make_scenario("cow_confounded", n_train=N // 2, **SMALL)
    split = scn.sample(seed=19).train
    k = scn.knobs
    s = k["label_noise"]
    names = ("moo", "tail", "grass")
    for e, shift in zip(scn.scm.train_envs, k["prevalence_shift_train"], strict=True):
        rows = split.env == e
        beta, se = probit_fit(concepts(split, names)[rows], split.y[rows])
        assert_close(beta, se, [shift / s, k["coef_moo"] / s, k["coef_tail"] / s, 0.0], ("const", *names))
