"""Expected outcomes of the pooled estimation baselines: where each is known to succeed and to fail.

Asserted on `cowbench.evaluate` metrics (one job in-process, linear subject model, root seed 0) or, for
hand-built subject models, on the method's output. Each case cites the catalog entry (methods-catalog.md)
and the paper behind it. Thresholds sit far from both the population value of the metric and the other
outcome: they are a few standard errors of the fit at the scenario's default sizes (2000 units per
training environment), worked out in the comments.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

import cowbench as cb
from cowbench.access import Task

LINEAR = {"arch": "linear"}


def evaluate(scenario, method, **knobs):
    return cb.evaluate(cb.make_scenario(scenario, **knobs), method, seed=0, subject=LINEAR)


# -- ols / logistic / probit: absorb an anti-causal variable, ignore a proxy of an exact cause ---------


@pytest.mark.parametrize("name", ["ols", "logistic", "probit"])
def test_pooled_regressions_absorb_anti_causal_grass_on_cow(name):
    # catalog §2.1 (f)(ii), §2.4 (f)(iii): an anti-causal child of the label gets its Bayes weight. On cow
    # (agreements 0.9/0.8, moo and tail seen through unit measurement noise) grass carries most of the
    # weight: world_spurious_mass about 0.7-0.8.
    m = evaluate("cow", cb.get_method(name)())
    assert m["world_spurious_mass"] > 0.5
    assert m["world_cos"] < 0.5


def test_ols_puts_no_weight_on_a_proxy_of_exactly_observed_causes():
    # catalog §2.1 (f) success / O3 with tau = 0: s is independent of y given c1, c2. b_s has sd about
    # 0.5 / sqrt(4000 * Var(s | c)) ~ 0.015 against causes of weight 1 + 1: mass below ~0.03 at 4 sd.
    m = evaluate("proxy_sem", cb.get_method("ols")(), tau=0.0)
    assert m["world_spurious_mass"] < 0.03
    assert m["world_cos"] > 0.999


@pytest.mark.parametrize("name", ["logistic", "probit"])
def test_binary_regressions_put_no_weight_on_a_proxy_of_an_exact_moo(name):
    # catalog §7 O3 probit check "with C observed exactly the probit coefficients are (beta, 0)";
    # cow_proxy with tau = 0 (probit coefficients (2, 2, 0, 0); grass sd ~0.04 at n = 4000)
    m = evaluate("cow_proxy", cb.get_method(name)(), tau=0.0)
    assert m["world_spurious_mass"] < 0.05
    assert m["world_cos"] > 0.99


def test_ols_fails_on_a_proxy_of_a_noisy_cause():
    # catalog §2.1 (f)(iii), O3: beta = 1, rho = 0.8, tau = 0.7 -> (0.4235, 0.4612): mass 0.52
    m = evaluate("proxy_sem", cb.get_method("ols")(), k=1, beta=(1.0,), r_train=(0.8,), r_test=0.0, tau=0.7)
    assert m["world_spurious_mass"] > 0.4


def test_probit_fails_on_a_proxy_of_a_noisy_moo():
    # catalog O3 (probit version) on cow_proxy's defaults: grass gets 0.52 / (0.48 + 0.76 + 0.52) ~ 0.3 of
    # the mass in the first environment, ~0.24 pooled over rho = 0.8, 0.6
    m = evaluate("cow_proxy", cb.get_method("probit")())
    assert m["world_spurious_mass"] > 0.15


# -- ridge: moves weight onto a correlated spurious variable (O9) ---------------------------------------

O9 = {"k": 1, "beta": (1.3,), "r_train": (0.7,), "r_test": 0.0, "noise_sd": 1.0, "tau": 0.0}


def test_ridge_moves_weight_onto_a_correlated_spurious_variable_o9():
    # catalog §2.2 (f), O9: lambda = 1 (sklearn alpha = n lambda = 2000) -> (0.5593, 0.2593): mass 0.317,
    # while OLS on the same data puts ~0 on s (Hoerl & Kennard 1970 shrinkage; catalog §7 O9)
    ridge = evaluate("proxy_sem", cb.get_method("ridge")(alpha=2000.0), **O9)
    ols = evaluate("proxy_sem", cb.get_method("ols")(), **O9)
    assert ridge["world_spurious_mass"] > 0.25
    assert ols["world_spurious_mass"] < 0.05
    # a negligible penalty is OLS: success
    assert evaluate("proxy_sem", cb.get_method("ridge")(alpha=1e-3), **O9)["world_spurious_mass"] < 0.05


# -- lasso: the irrepresentable condition (O10; Zhao & Yu 2006) -----------------------------------------


@pytest.mark.parametrize("alpha", [0.05, 0.3])
def test_lasso_succeeds_when_irrepresentable_holds_r_below_half(alpha):
    # ||Sigma_sc Sigma_cc^-1 1||_inf = 2r = 0.6 < 1: s is never selected (Zhao & Yu 2006; catalog O10)
    m = evaluate("proxy_sem", cb.get_method("lasso")(alpha=alpha), r_train=(0.3,), r_test=0.0)
    assert m["world_spurious_mass"] == 0.0


@pytest.mark.parametrize(("alpha", "low"), [(0.3, 0.1), (1.0, 0.99)])
def test_lasso_fails_when_irrepresentable_fails_r_above_half(alpha, low):
    # 2r = 1.2 > 1: at alpha = 0.3 b_s = 0.214 next to causes 0.571 (mass 0.158); at alpha = 1.0 only s
    # is selected (mass 1) (catalog O10)
    m = evaluate("proxy_sem", cb.get_method("lasso")(alpha=alpha), r_train=(0.6,), r_test=0.0)
    assert m["world_spurious_mass"] > low


# -- partial dependence and permutation importance of the subject model ---------------------------------


def test_pd_recovers_a_linear_subjects_reliance_exactly():
    # catalog O16: PD slope = w_S for a linear logit; on identity rendering w is the model's ace
    m = evaluate("cow", cb.get_method("partial_dependence")())
    assert m["model_cos"] > 0.9999 and m["model_err"] < 1e-3 and m["model_rank"] == 1.0


def test_permutation_importance_finds_the_linear_subjects_reliance_on_grass():
    # Fisher, Rudin & Dominici 2019: the cow subject relies on grass; signed importances point the way
    # the model's weights do (model_cos), grass's importance dominates
    m = evaluate("cow", cb.get_method("permutation_importance")())
    assert m["model_cos"] > 0.95


class _Interaction(nn.Module):
    """f(x) = 2 x_moo + 2 x_tail + x_moo * x_grass: uses grass only through an interaction."""

    def __init__(self, moo: int, tail: int, grass: int):
        super().__init__()
        self.moo, self.tail, self.grass = moo, tail, grass

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return 2 * x[:, self.moo] + 2 * x[:, self.tail] + x[:, self.moo] * x[:, self.grass]


class _Linear(nn.Module):
    def __init__(self, w: np.ndarray):
        super().__init__()
        self.w = torch.tensor(w, dtype=torch.float32)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x @ self.w


def _run(name, scn, data, model, **params):
    task = Task(scn, data, model, ("pooled",), subject_config=LINEAR)
    return cb.get_method(name)(random_state=0, **params).run(task)


def test_pd_fails_on_interaction_only_reliance():
    # catalog §2.5 (f) (Goldstein et al. 2015, ICE): the model uses grass through x_moo * x_grass with a
    # symmetric x_moo; the PD slope of grass is mean(x_moo) ~ 0 (sd 1.22 / sqrt(2000) = 0.027) while the
    # counterfactual reliance cr is ~ (2/pi) sqrt(1.49) sqrt(2) = 1.1
    scn = cb.make_scenario("cow_proxy", rho_train=(0.0,), n_train=4000)
    data = scn.sample(seed=0)
    model = _Interaction(scn.input_map["moo"], scn.input_map["tail"], scn.input_map["grass"])
    out = _run("partial_dependence", scn, data, model)
    assert abs(out.model_coef["grass"]) < 0.11
    assert cb.reliance(model, scn, data.test_id, measure="cr")["grass"] > 0.5


def test_permutation_importance_misses_reliance_on_an_independent_variable():
    # loss-based model reliance (Fisher, Rudin & Dominici 2019) only counts reliance that changes the
    # loss: permuting an input independent of the label and of the other inputs leaves the joint law of
    # (f(X), Y) unchanged, so E[MR] = 0 even though the model's logit moves 1 per unit of sky
    scn = cb.make_scenario("cow")
    data = scn.sample(seed=0)
    w = np.zeros(len(scn.variables))
    w[scn.input_map["moo"]] = w[scn.input_map["tail"]] = 1.0
    w[scn.input_map["sky"]] = 1.0
    out = _run("permutation_importance", scn, data, _Linear(w), n_repeats=20)
    imp = out.details["importance"]
    # sky's importance is sampling noise around 0 (-0.005 here), moo's (same weight, noisier input) ~0.25
    assert imp["moo"] > 10 * abs(imp["sky"])
    assert out.details["slope"]["sky"] == pytest.approx(1.0, abs=1e-5)  # the slope still sees the weight
