"""Closed-form oracles (methods catalog §7) on the generators' own samples: linear_sem and four_groups.

Tolerances are 4 standard errors of the estimator at the sample size used (about 4/sqrt(n) times its scale).
"""

import numpy as np
import pytest
from scipy.stats import norm

import cowbench as cb

N = 200_000


def ols(columns, y):
    x = np.column_stack([*columns, np.ones(len(y))])
    coef, *_ = np.linalg.lstsq(x, y, rcond=None)
    return coef[:-1]


def one_env(**knobs):
    base = {"x1_sd_train": (1.0,), "y_noise_train": (1.0,), "x2_coef_train": (1.0,), "n_train": N}
    return cb.make_scenario("linear_sem", **{**base, **knobs}).sample(0).train.concepts


@pytest.mark.parametrize(("beta", "gamma", "sd_y", "sd_s"), [(1.0, 1.0, 1.0, 1.0), (1.5, 0.5, 2.0, 1.0)])
def test_o2_anti_causal_child_biases_ols(beta, gamma, sd_y, sd_s):
    c = one_env(beta=beta, x2_coef_train=(gamma,), y_noise_train=(sd_y,), x2_noise=sd_s)
    b1, b2 = ols([c.x1, c.x2], c.y)
    var_y = beta**2 + sd_y**2  # Var(x1) = 1
    denom = gamma**2 * sd_y**2 + sd_s**2
    # O2 with C observed: b_C = beta*sd_s^2/denom, b_S = gamma*sd_y^2/denom
    assert b1 == pytest.approx(beta * sd_s**2 / denom, abs=4 * np.sqrt(var_y) / np.sqrt(N))
    assert b2 == pytest.approx(gamma * sd_y**2 / denom, abs=4 * np.sqrt(var_y) / np.sqrt(N))


@pytest.mark.parametrize("var", [0.1, 1.0, 4.0])
def test_o13_arjovsky_example(var):
    sd = np.sqrt(var)
    c = one_env(x1_sd_train=(sd,), y_noise_train=(sd,))
    b1, b2 = ols([c.x1, c.x2], c.y)
    tol = 4 * max(1.0, sd) / np.sqrt(N)
    assert b1 == pytest.approx(1 / (var + 1), abs=tol)
    assert b2 == pytest.approx(var / (var + 1), abs=tol)
    assert ols([c.x1], c.y)[0] == pytest.approx(1.0, abs=tol)  # the invariant regression
    assert ols([c.x2], c.y)[0] == pytest.approx(2 * var / (2 * var + 1), abs=tol)


def test_o11_ols_is_biased_and_iv_recovers_the_cause():
    c = one_env(instrument=1.0, hidden_to_x1=1.0, hidden_to_y=3.0, beta=2.0)
    tol = 4 * 4 / np.sqrt(N)  # residual sd of y given x1 is about 2.5-3.5 here
    assert ols([c.x1], c.y)[0] == pytest.approx(3.0, abs=tol)  # 2 + 3*Cov(x1,h)/Var(x1) = 2 + 3/3
    wald = np.cov(c.a, c.y)[0, 1] / np.cov(c.a, c.x1)[0, 1]
    assert wald == pytest.approx(2.0, abs=tol)
    # exclusion violated: IV converges to beta + exclusion/pi (pi = 1)
    c = one_env(instrument=1.0, exclusion=0.5, hidden_to_x1=1.0, hidden_to_y=3.0, beta=2.0)
    assert np.cov(c.a, c.y)[0, 1] / np.cov(c.a, c.x1)[0, 1] == pytest.approx(2.5, abs=tol)


def test_o12_d_residual_variance_of_y_on_x2_depends_on_the_environment():
    # population fact behind ICP's false positive under hidden confounding (catalog O12-D)
    scn = cb.make_scenario("linear_sem", hidden_to_x1=1.0, hidden_to_y=1.0, n_train=N)
    train = scn.sample(0).train
    c, env = train.concepts, train.env
    for e, s in enumerate((0.5, 1.0, 2.0)):
        ce = c[env == e]
        var_y = s**2 + 5  # x1 = s*eps + h, y = x1 + h + eps: Var(y) = s^2 + 4 + 1
        resid = ce.y - ols([ce.x2], ce.y)[0] * ce.x2
        assert np.var(ce.y) == pytest.approx(var_y, rel=4 * np.sqrt(2 / (N / 1)))
        assert np.var(resid) == pytest.approx(var_y / (var_y + 1), rel=4 * np.sqrt(2 / N))


def test_o14_four_group_accuracies_of_a_fixed_rule():
    scn = cb.make_scenario("four_groups", agreement_train=(0.9,), mu_core=1.0, sd_core=1.0, mu_spurious=1.0,
                           sd_spurious=0.5, n_train=N)
    train = scn.sample(0).train
    c = train.concepts
    w_c, w_s = 1.0, 1.5
    correct = (w_c * c.moo + w_s * c.grass > 0).to_numpy() == (train.y == 1)
    y_sign, a_sign = 2 * c.cow.to_numpy() - 1, 2 * c.grass_attr.to_numpy() - 1
    for y in (-1, 1):
        for a in (-1, 1):
            mask = (y_sign == y) & (a_sign == a)
            expected = norm.cdf(y * (w_c * y * 1.0 + w_s * a * 1.0) / np.sqrt(w_c**2 + w_s**2 * 0.25))
            assert correct[mask].mean() == pytest.approx(expected, abs=4 * 0.5 / np.sqrt(mask.sum()))
    # the catalog's numbers for this rule: majority 0.9772, minority 0.3446
    assert norm.cdf(2.5 / np.sqrt(1.5625)) == pytest.approx(0.9772, abs=1e-4)
    assert norm.cdf(-0.5 / np.sqrt(1.5625)) == pytest.approx(0.3446, abs=1e-4)


def test_o14_group_balanced_logistic_puts_no_weight_on_grass():
    from sklearn.linear_model import LogisticRegression

    scn = cb.make_scenario("four_groups", agreement_train=(0.95,), sd_spurious=0.5, n_train=N)
    train = scn.sample(0).train
    groups = 2 * train.concepts.cow.to_numpy() + train.concepts.grass_attr.to_numpy()
    counts = np.bincount(groups, minlength=4)
    weights = 1.0 / (4 * counts[groups])
    fit = LogisticRegression(C=1e6, max_iter=1000).fit(train.x[:, :2], train.y, sample_weight=weights * len(groups))
    w_core, w_grass = fit.coef_.ravel()
    # the minority groups hold 5% of the units: the weighted fit's standard error is about 1/sqrt(0.05 N) per unit scale
    tol = 4 * 2 / np.sqrt(0.05 * N)
    assert w_grass == pytest.approx(0.0, abs=tol)
    assert w_core == pytest.approx(2.0, abs=2 * tol)  # 2 mu_c / sd_c^2
    plain = LogisticRegression(C=1e6, max_iter=1000).fit(train.x[:, :2], train.y).coef_.ravel()
    assert plain[1] > 1.0  # ERM leans on grass (O14: about 2.6 at p = 0.95)
