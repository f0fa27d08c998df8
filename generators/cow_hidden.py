"""Hidden-confounder cow: an unobserved ``u_hidden`` drives both grass and cow.

``u_hidden ~ N(0, 1)`` (role ``hidden``: in the SCM and in ``concepts``, never in the inputs);
``cow = 1[coef_moo * moo + coef_tail * tail + coef_hidden * u_hidden + label_noise * eps > 0]`` (probit
index; its coefficients, the law of ``u_hidden`` and the label noise are the same in every environment, so
cow's mechanism is invariant); ``grass = confounding_e * u_hidden + grass_noise * e`` is continuous, with
no arrow into cow, and the strength ``confounding_e`` of the confounder's effect on grass changes by
environment; ``sky`` is nuisance. Deployment sets it to ``confounding_test`` (default ``-1.0``: the
grass-cow association reverses; ``0`` removes it). The model sees moo and tail through measurement
noise. Mechanism M4 of the methods catalog (§6.1); no instrument. For the group labels grass is binarised
at 0 (``grass > 0``). ``coef_hidden`` is u_hidden's coefficient in cow's index; the world truth lists only
observed variables.

Closed form (catalog §7 O1 and O5, [D]): within one environment, with ``k = d / (d^2 + grass_noise^2)``,
``v = grass_noise^2 / (d^2 + grass_noise^2)`` (``d = confounding_e``) and ``s^2 = label_noise^2 +
coef_hidden^2 v``, ``P(cow = 1 | moo, tail, grass) = Phi((coef_moo moo + coef_tail tail + coef_hidden k
grass) / s)``: the probit coefficient of grass relative to moo's is the O1 omitted-confounder bias
``coef_hidden k / coef_moo``, and it vanishes once u_hidden is adjusted for.

Expected behaviour (catalog §6.1 M4 "needs IV / anchors / invariance", §6.3 S05, §7 O1): pooled OLS,
probit/logistic regression and ERM put weight on grass (O1 bias), and adjusting for the environment does
not remove it (the confounder is not the environment); with several training environments that differ in
``confounding_e``, invariance-based methods can exclude grass because cow given moo and tail is invariant
while cow given moo, tail and grass is not (ICP: Peters, Bühlmann & Meinshausen 2016, arXiv:1501.01332; a
conservative subset, [D]). IV needs an instrument, which this family does not provide (Angrist & Pischke
2009); anchor regression needs the anchors to shift grass's mean (Rothenhäusler et al. 2021,
arXiv:1801.06229), which a change of ``confounding_e`` alone does not.

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
from cowbench.generators.knobs import real, real_tuple, scenario_family
from cowbench.generators.scm import SCM, Environment, Variable

KNOBS = (
    real_tuple("confounding_train", (1.0, 0.5), -10.0, 10.0,
               "effect of u_hidden on grass in each training environment; its length is the number of "
               "environments", max_len=16),
    real("confounding_test", -1.0, -10.0, 10.0, "effect of u_hidden on grass at deployment (test_ood)"),
    real("coef_hidden", 1.0, -10.0, 10.0, "coefficient of u_hidden in the probit index of cow"),
    real("grass_noise", 0.7, 0.0, 10.0, "sd of grass's own noise", open_low=True),
    *COW_INDEX_KNOBS,
    MEASUREMENT_KNOB,
    *size_knobs(),
)


def _cow(parents, u, params):
    index = (params["coef_moo"] * parents["moo"] + params["coef_tail"] * parents["tail"]
             + params["coef_hidden"] * parents["u_hidden"])
    return (index + params["label_noise"] * u > 0).astype(np.float64)


def _grass(parents, u, params):
    return params["confounding"] * parents["u_hidden"] + params["grass_noise"] * u


@scenario_family("cow_hidden", version="2", knobs=KNOBS)
def cow_hidden(*, confounding_train, confounding_test, coef_hidden, grass_noise, coef_moo, coef_tail, label_noise,
               measurement_noise, n_train, n_val, n_test) -> SCM:
    """A hidden confounder of grass and cow (see the module docstring)."""
    variables = (
        Variable("moo", "causal", standard_normal, text="moo ~ N(0, 1)"),
        Variable("tail", "causal", standard_normal, text="tail ~ N(0, 1)"),
        Variable("u_hidden", "hidden", standard_normal, text="u_hidden ~ N(0, 1), unobserved"),
        Variable("cow", "label", _cow, parents=("moo", "tail", "u_hidden"), kind="binary",
                 text="cow = 1[coef_moo*moo + coef_tail*tail + coef_hidden*u_hidden + label_noise*N(0,1) > 0]"),
        Variable("grass", "spurious", _grass, parents=("u_hidden",),
                 text="grass = confounding_e*u_hidden + grass_noise*N(0,1)"),
        Variable("sky", "nuisance", standard_normal, text="sky ~ N(0, 1)"),
    )
    params = {"coef_moo": coef_moo, "coef_tail": coef_tail, "coef_hidden": coef_hidden,
              "label_noise": label_noise, "confounding": confounding_train[0], "grass_noise": grass_noise,
              "measurement_noise": measurement_noise}
    environments = tuple(Environment(f"train{i}", {"confounding": d}) for i, d in enumerate(confounding_train))
    environments += (Environment("deploy", {"confounding": confounding_test}, deployment=True),)
    if coef_hidden == 0.0 or all(d == 0.0 for d in confounding_train):
        ident, why = "pooled", "u_hidden does not reach both grass and cow in training, so grass is independent of cow"
    elif len(set(confounding_train)) > 1:
        ident, why = "env", ("cow given moo and tail is invariant across training environments, cow given moo, "
                             "tail and grass is not (the confounder's effect on grass differs)")
    else:
        ident, why = "counterfactual", ("one confounding strength in training: a hidden-confounded grass looks "
                                        "like a cause in every observational view, exact concepts included "
                                        "(u_hidden is never given); do(grass) leaves cow unchanged")
    truth = cow_truth(variables, coef_moo, coef_tail, ident, why)
    rendering = cow_rendering()
    return SCM(variables, params, environments, rendering, truth,
               sizes(n_train, n_val, n_test))
