"""Environment-confounded cow: the environment shifts both cow's prevalence and how often there is grass.

In environment ``e``:
``cow = 1[shift_e + coef_moo * moo + coef_tail * tail + label_noise * eps > 0]`` (probit index with a
per-environment intercept ``shift_e``) and ``grass ~ Bernoulli(grass_rate_e)``, drawn independently of
everything else; ``sky`` is nuisance. Within an environment grass is independent of cow; pooled over the
training environments grass is associated with cow because environments with many cows also have much
grass (mechanism M1 of the methods catalog, §6.1: E -> grass, E -> cow, moo and tail -> cow). The model
sees moo and tail through measurement noise.

Mechanism of cow: the coefficients of moo and tail and the label noise are the same in every environment;
the intercept ``shift_e`` changes by design (E -> cow is the confounding path, an intervention on cow's
equation). Deployment keeps the prevalence shifts and reverses the grass rates (default: the
high-prevalence environment has little grass), so the pooled grass-cow association flips sign.

Expected behaviour (catalog §6.3, row S01; closed form §7 O1): adjustment for the environment (back-door /
environment fixed effects) drives grass's coefficient to 0, as do group reweighting and GroupDRO; pooled
OLS / logistic regression and ERM without the environment put weight on grass (omitted-confounder bias,
O1); ICP is expected to fail (its invariance of cow given its parents is broken by the E -> cow intercept;
Peters, Bühlmann & Meinshausen 2016, arXiv:1501.01332).

Test-set size (issue 16; README "Test-set sizes"): ``n_test`` defaults to 2000; the standard suite runs ``n_test =
20000`` here, the size at which edit_score's test-sampling s.d. on one replicate is at most 0.025 = d/2 for d =
0.05 where the oracle's gain is as large as on cow (0.015 there; it scales as 1/(gain sqrt(n_test)), so small-gain
scenarios stay above it: the README lists the measured values).
"""

from __future__ import annotations

import numpy as np

from cowbench.generators._cow_parts import (
    COW_INDEX_KNOBS,
    MEASUREMENT_KNOB,
    cow_rendering,
    cow_truth,
    size_knobs,
    sizes,
    standard_normal,
)
from cowbench.generators.knobs import real_tuple, same_length, scenario_family
from cowbench.generators.scm import SCM, Environment, Variable

KNOBS = (
    real_tuple("prevalence_shift_train", (1.0, -1.0), -10.0, 10.0,
               "intercept of cow's probit index in each training environment; its length is the number of "
               "training environments", max_len=16),
    real_tuple("grass_rate_train", (0.9, 0.1), 0.0, 1.0,
               "P(grass = 1) in each training environment (same length as prevalence_shift_train)", max_len=16),
    real_tuple("prevalence_shift_test", (1.0, -1.0), -10.0, 10.0,
               "intercept of cow's probit index in each deployment environment", max_len=16),
    real_tuple("grass_rate_test", (0.1, 0.9), 0.0, 1.0,
               "P(grass = 1) in each deployment environment (same length as prevalence_shift_test); the "
               "default reverses the training association", max_len=16),
    *COW_INDEX_KNOBS,
    MEASUREMENT_KNOB,
    *size_knobs(),
)


def _cow(parents, u, params):
    index = params["prevalence_shift"] + params["coef_moo"] * parents["moo"] + params["coef_tail"] * parents["tail"]
    return (index + params["label_noise"] * u > 0).astype(np.float64)


def _grass(parents, u, params):
    return (u < params["grass_rate"]).astype(np.float64)


@scenario_family("cow_confounded", version="1", knobs=KNOBS)
def cow_confounded(*, prevalence_shift_train, grass_rate_train, prevalence_shift_test, grass_rate_test, coef_moo,
                   coef_tail, label_noise, measurement_noise, n_train, n_val, n_test) -> SCM:
    """Environment confounding of grass and cow's prevalence (see the module docstring)."""
    same_length("grass_rate_train", grass_rate_train, "prevalence_shift_train", len(prevalence_shift_train))
    same_length("grass_rate_test", grass_rate_test, "prevalence_shift_test", len(prevalence_shift_test))
    variables = (
        Variable("moo", "causal", standard_normal, text="moo ~ N(0, 1)"),
        Variable("tail", "causal", standard_normal, text="tail ~ N(0, 1)"),
        Variable("cow", "label", _cow, parents=("moo", "tail"), kind="binary",
                 text="cow = 1[prevalence_shift_e + coef_moo*moo + coef_tail*tail + label_noise*N(0,1) > 0]"),
        Variable("grass", "spurious", _grass, noise="uniform", kind="binary",
                 text="grass ~ Bernoulli(grass_rate_e), independent of cow within an environment"),
        Variable("sky", "nuisance", standard_normal, text="sky ~ N(0, 1)"),
    )
    params = {"coef_moo": coef_moo, "coef_tail": coef_tail, "label_noise": label_noise,
              "prevalence_shift": prevalence_shift_train[0], "grass_rate": grass_rate_train[0],
              "measurement_noise": measurement_noise}
    environments = tuple(Environment(f"train{i}", {"prevalence_shift": a, "grass_rate": p})
                         for i, (a, p) in enumerate(zip(prevalence_shift_train, grass_rate_train, strict=True)))
    environments += tuple(Environment(f"deploy{i}", {"prevalence_shift": a, "grass_rate": p}, deployment=True)
                          for i, (a, p) in enumerate(zip(prevalence_shift_test, grass_rate_test, strict=True)))
    if len(set(prevalence_shift_train)) > 1 and len(set(grass_rate_train)) > 1:
        ident, why = "env", ("grass is independent of cow within each training environment: adjusting for the "
                             "environment (back-door) removes its pooled association")
    else:
        ident, why = "pooled", ("the training environments do not shift both prevalence and grass, so grass is "
                                "independent of cow in the pooled training data")
    truth = cow_truth(variables, coef_moo, coef_tail, ident, why)
    rendering = cow_rendering()
    return SCM(variables, params, environments, rendering, truth,
               sizes(n_train, n_val, n_test))
