"""Noisy-proxy cow: grass is a continuous proxy of moo, and the model sees moo only through noise.

``cow = 1[coef_moo * moo + coef_tail * tail + label_noise * eps > 0]`` (probit index, the same in every
environment); ``grass = rho_e * moo + sqrt(1 - rho_e^2) * e`` is continuous, standard normal, with
correlation ``rho_e`` with moo (per environment) and no arrow into cow; ``sky`` is nuisance. The inputs
are ``moo + tau * eta``, ``tail + tau * eta'``, grass and sky (identity rendering). Mechanism M3 of the
methods catalog (§6.1). For the group labels grass is binarised at 0 (``grass > 0``).

Grass's world coefficient is 0, yet with ``tau > 0`` the Bayes predictor from the inputs relies on it
(catalog §7 O3): with ``D = 1 + tau^2 - rho^2`` and ``s^2 = label_noise^2 + coef_moo^2 tau^2 (1 - rho^2) / D
+ coef_tail^2 tau^2 / (1 + tau^2)``, ``P(cow = 1 | x) = Phi((coef_moo ((1 - rho^2) x_moo + rho tau^2 x_grass)
/ D + coef_tail x_tail / (1 + tau^2)) / s)``. With ``tau = 0`` it does not. Deployment changes the
correlation to ``rho_test`` (default ``-0.8``: the proxy flips).

Expected behaviour (catalog §6.3, row S09; §7 O3 and O15; Khani & Liang 2021, "Removing spurious features
can hurt accuracy and affect groups disproportionately", arXiv:2012.04104): methods that target the
model's reliance should report non-zero reliance on grass; regression of cow on the inputs (OLS, probit,
logistic, ERM) is expected to fail as an estimator of the world coefficients (grass gets the O3 weight);
(cow x grass) group balancing does not remove the reliance, and zeroing grass's weight costs accuracy
(O15). Concept access (exact moo) makes grass's conditional coefficient vanish.

Test-set size (issue 16; README "Test-set sizes"): ``n_test`` defaults to 2000; the standard suite runs ``n_test =
20000`` here, the size at which edit_score's test-sampling s.d. on one replicate is at most 0.025 = d/2 for d =
0.05 where the oracle's gain is as large as on cow (0.015 there; it scales as 1/(gain sqrt(n_test)), so small-gain
scenarios stay above it: the README lists the measured values).
"""

from __future__ import annotations

import numpy as np

from cowbench.generators._cow_parts import COW_INDEX_KNOBS, cow_truth, probit_cow, size_knobs, sizes, standard_normal
from cowbench.generators.knobs import real, real_tuple, scenario_family
from cowbench.generators.scm import SCM, Environment, IdentityRendering, Variable

KNOBS = (
    real_tuple("rho_train", (0.8, 0.6), -1.0, 1.0,
               "correlation of grass with moo in each training environment; its length is the number of "
               "environments", max_len=16),
    real("rho_test", -0.8, -1.0, 1.0, "correlation of grass with moo at deployment (test_ood)"),
    real("tau", 0.7, 0.0, 10.0, "sd of the measurement noise on the moo and tail inputs"),
    *COW_INDEX_KNOBS,
    *size_knobs(),
)


def _grass(parents, u, params):
    rho = params["rho"]
    return rho * parents["moo"] + np.sqrt(1.0 - rho**2) * u


@scenario_family("cow_proxy", version="2", knobs=KNOBS)
def cow_proxy(*, rho_train, rho_test, tau, coef_moo, coef_tail, label_noise, n_train, n_val, n_test) -> SCM:
    """Grass as a correlated proxy of a noisily observed moo (see the module docstring)."""
    variables = (
        Variable("moo", "causal", standard_normal, text="moo ~ N(0, 1)"),
        Variable("tail", "causal", standard_normal, text="tail ~ N(0, 1)"),
        Variable("cow", "label", probit_cow, parents=("moo", "tail"), kind="binary",
                 text="cow = 1[coef_moo*moo + coef_tail*tail + label_noise*N(0,1) > 0]"),
        Variable("grass", "spurious", _grass, parents=("moo",),
                 text="grass = rho_e*moo + sqrt(1 - rho_e^2)*N(0,1)"),
        Variable("sky", "nuisance", standard_normal, text="sky ~ N(0, 1)"),
    )
    params = {"coef_moo": coef_moo, "coef_tail": coef_tail, "label_noise": label_noise, "rho": rho_train[0],
              "tau": tau}
    environments = tuple(Environment(f"train{i}", {"rho": r}) for i, r in enumerate(rho_train))
    environments += (Environment("deploy", {"rho": rho_test}, deployment=True),)
    if tau == 0.0:
        ident, why = "pooled", "moo is observed exactly, so grass has no association with cow given the inputs"
    elif len(set(rho_train)) > 1:
        ident, why = "env", ("grass's correlation with moo differs across training environments, so the "
                             "prediction of cow from the inputs is invariant only without grass")
    else:
        ident, why = "concept", ("one proxy strength in training: from the noisy inputs a proxy of moo looks like "
                                 "a cause; the exact moo (concept labels) makes grass independent of cow")
    truth = cow_truth(variables, coef_moo, coef_tail, ident, why)
    rendering = IdentityRendering(("moo", "tail", "grass", "sky"), {"moo": "tau", "tail": "tau"})
    return SCM(variables, params, environments, rendering, truth,
               sizes(n_train, n_val, n_test))
