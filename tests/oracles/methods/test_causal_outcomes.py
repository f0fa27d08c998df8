"""Expected outcomes of the causal baselines, one known success and one known failure per method.

Asserted on `cowbench.evaluate` metrics (root seed fixed, linear subject model) where the metric shows the
behaviour; world_err is scale-free, so a pure rescaling of the single causal coefficient (OLS's 3 against
IV's 2 in catalog O11) is invisible to it - there the method's output is asserted instead.
"""

import pytest

import cowbench as cb
from cowbench.access import Task

SCALES = (0.5, 1.0, 2.0)
O11 = {"x1_sd_train": (1, 1, 1), "x2_coef_train": (0, 0, 0), "x2_coef_test": 0.0, "instrument": 1.0,
       "hidden_to_x1": 1.0, "hidden_to_y": 3.0, "beta": 2.0}
O13 = {"x1_sd_train": (0.1**0.5, 1.0, 2.0), "y_noise_train": (0.1**0.5, 1.0, 2.0)}
HOMOSKEDASTIC = {"x1_sd_train": SCALES, "y_noise_train": (1.0, 1.0, 1.0), "x2_coef_train": (2.0, 1.0, -1.0)}
CONFOUNDED = {"x1_sd_train": SCALES, "hidden_to_x1": 1.0, "hidden_to_y": 1.0}


def _evaluate(method, scenario="linear_sem", seed=0, **knobs):
    return cb.evaluate(cb.make_scenario(scenario, **knobs), method, seed=seed, subject={"arch": "linear"})


# -- ICP: Peters, Bühlmann & Meinshausen 2016; catalog §3.2, O12 ----------------------------------


def test_icp_succeeds_when_the_cause_is_shifted():
    m = _evaluate(cb.get_method("icp")(), x1_sd_train=SCALES)  # O12 A
    assert m["abstained"] == 0.0 and m["world_spurious_mass"] == 0.0 and m["detect_auroc"] == 1.0


def test_icp_false_positive_under_hidden_confounding():
    m = _evaluate(cb.get_method("icp")(), n_train=500, **CONFOUNDED)  # O12 D: returns {x2}
    assert m["abstained"] == 0.0 and m["world_spurious_mass"] == 1.0 and m["detect_auroc"] == 0.0


def test_icp_abstains_when_only_the_spurious_mechanism_shifts():
    m = _evaluate(cb.get_method("icp")(), x1_sd_train=(1, 1, 1), x2_coef_train=(1.5, 1.0, 0.0))  # O12 B
    assert m["abstained"] == 1.0 and m["world_cos"] is None


# -- IRMv1 linear: Arjovsky et al. 2019; catalog §4.6, O13 ----------------------------------------


def test_irm_linear_succeeds_on_arjovskys_example():
    m = _evaluate(cb.get_method("irm_linear")(), **O13)
    assert m["world_cos"] > 0.99 and m["world_spurious_mass"] < 0.1 and m["detect_auroc"] == 1.0


def test_irm_linear_fails_with_a_hidden_confounder():
    # the invariant regression is not the structural one when h confounds x1 and y (catalog §4.6 (f))
    m = _evaluate(cb.get_method("irm_linear")(), **CONFOUNDED)
    assert m["world_spurious_mass"] > 0.5 and m["detect_auroc"] == 0.0


# -- V-REx linear: Krueger et al. 2021; catalog §4.7 ---------------------------------------------


def test_vrex_linear_succeeds_with_homoskedastic_label_noise():
    m = _evaluate(cb.get_method("vrex_linear")(), **HOMOSKEDASTIC)
    assert m["world_cos"] > 0.99 and m["world_spurious_mass"] < 0.05


def test_vrex_linear_fails_when_label_noise_changes():
    # O13: the causal predictor's risks differ across environments, V-REx moves to x2 (Jin et al. 2024)
    m = _evaluate(cb.get_method("vrex_linear")(), **O13)
    assert m["world_spurious_mass"] > 0.6 and m["detect_auroc"] == 0.0


# -- 2SLS: Angrist & Pischke 2009; catalog §3.3, O11 ----------------------------------------------


def test_iv_2sls_succeeds_under_hidden_confounding():
    m = _evaluate(cb.get_method("iv_2sls")(), **O11)
    assert m["world_err"] < 0.05


def test_iv_2sls_fails_when_the_exclusion_restriction_is_violated():
    # y = 2 x1 + 1 a + ...: IV -> beta + delta/pi = 3 and the direct effect of a is reported as 0
    m = _evaluate(cb.get_method("iv_2sls")(), exclusion=1.0, **O11)
    assert m["world_err"] > 0.3


# -- anchor regression: Rothenhäusler et al. 2021; catalog §3.4, O11 -------------------------------


def test_anchor_regression_large_gamma_is_iv_gamma_one_is_ols():
    scn = cb.make_scenario("linear_sem", **O11)
    data = scn.sample(0)
    import torch

    task = Task(scn, data, torch.nn.Linear(3, 1), {"pooled", "env"}, subject_config={"arch": "linear"})
    assert cb.get_method("anchor_regression")(gamma=1e6).run(task).world_coef["x1"] == pytest.approx(2.0, abs=0.1)
    # failure at gamma = 1 (OLS): the confounded 3 - invisible to the scale-free world_err, hence the output
    assert cb.get_method("anchor_regression")(gamma=1.0).run(task).world_coef["x1"] == pytest.approx(3.0, abs=0.1)


def test_anchor_regression_with_environment_anchors_keeps_an_anti_causal_child():
    # zero-mean environments: the one-hot anchors see no shift, so any gamma is OLS and x2 keeps its weight
    m = _evaluate(cb.get_method("anchor_regression")(gamma=100.0), **O13)
    assert m["world_spurious_mass"] > 0.5


# -- back-door adjustment: Pearl 2009; catalog §3.1 ------------------------------------------------


def test_backdoor_env_succeeds_on_environment_confounding():
    m = _evaluate(cb.get_method("backdoor_env")(), "cow_confounded", n_train=10_000)
    pooled = _evaluate(cb.get_method("logistic")(), "cow_confounded", n_train=10_000)
    assert m["world_spurious_mass"] < 0.1 < 0.5 < pooled["world_spurious_mass"]


def test_backdoor_env_fails_on_an_anti_causal_child():
    # x2 = y + noise: no adjustment set blocks x2 <- y; the within-environment coefficient stays (O2)
    m = _evaluate(cb.get_method("backdoor_env")(), x1_sd_train=SCALES)
    assert m["world_spurious_mass"] > 0.3


# -- sort-and-regress: Reisach, Seiler & Weichwald 2021; catalog §3.8 ------------------------------


def test_sort_regress_succeeds_where_variance_leaks_the_order():
    m = _evaluate(cb.get_method("sort_regress")(), x1_sd_train=SCALES)
    assert m["world_cos"] > 0.99 and m["detect_auroc"] == 1.0


def test_sort_regress_fails_when_the_cause_has_the_larger_variance():
    m = _evaluate(cb.get_method("sort_regress")(), x1_sd_train=(3, 3, 3), beta=0.3)
    assert m["world_err"] == 1.0 and m["detect_auroc"] == 0.0
