"""A linear proxy SEM with a continuous label: a spurious variable correlated with several causes.

``c1, ..., ck ~ N(0, 1)`` independent (causes), ``y = sum_j beta_j c_j + noise_sd * eps`` (label,
continuous), ``s = r_e (c1 + ... + ck) + sqrt(1 - k r_e^2) e`` (spurious proxy of the causes, unit variance,
no arrow into y; ``r_e`` per environment, ``|r_e| < 1/sqrt(k)``). The inputs are ``c_j + tau * eta_j`` and
``s`` (identity rendering; ``tau`` is measurement noise on the causes' inputs only). Deployment changes
the correlation to ``r_test``.

Settings of the methods catalog (§7) this family reproduces:

* O9 (ridge spreads weight): ``k = 1``, ``tau = 0``: ``y = beta c + eps``, ``s = r c + sqrt(1 - r^2) e``; sklearn
  Ridge with ``alpha = n lambda`` gives ``b_s = beta r lambda / ((1 + lambda)^2 - r^2)`` although OLS gives 0.
* O10 (lasso irrepresentable failure; Zhao & Yu 2006, "On model selection consistency of Lasso", JMLR 7;
  Tibshirani 1996, "Regression shrinkage and selection via the lasso", JRSS B 58): ``k = 2``,
  ``beta = (1, 1)``, ``noise_sd = 0.5``: ``||Sigma_sc Sigma_cc^-1 sign(beta)||_inf = 2r``; for ``r > 1/2`` the lasso
  selects ``s`` first and keeps it, ``b_s(alpha) = alpha (2r - 1) / (1 - 2 r^2)`` for small alpha; for
  ``r < 1/2`` it never selects ``s``.
* O3 (noisy proxy, continuous version): ``k = 1``, ``tau > 0``: OLS gives ``b_s = beta r tau^2 / (1 + tau^2 - r^2)``.

Expected behaviour (catalog §2.1-2.3, §7 O3, O9, O10): with ``tau = 0`` OLS puts 0 on ``s`` (the causes
are observed exactly and s carries nothing more); ridge moves weight onto ``s`` (O9); the lasso fails for
``k r > 1`` (here ``2r > 1``) and succeeds otherwise (O10); with ``tau > 0`` every regression of y on the
inputs gives ``s`` non-zero weight.
"""

from __future__ import annotations

import math

from cowbench.data import Truth
from cowbench.errors import InputError
from cowbench.generators.knobs import integer, real, real_tuple, same_length, scenario_family
from cowbench.generators.scm import SCM, Environment, IdentityRendering, Variable

KNOBS = (
    integer("k", 2, 1, 16, "number of causes c1..ck (s is correlated with each of them)"),
    real_tuple("beta", (1.0, 1.0), -100.0, 100.0, "coefficient of each cause in y; as many entries as k"),
    real_tuple("r_train", (0.6, 0.4), -1.0, 1.0,
               "correlation of s with each cause per training environment, |r| < 1/sqrt(k); its length is "
               "the number of environments"),
    real("r_test", -0.6, -1.0, 1.0, "correlation of s with each cause at deployment, |r| < 1/sqrt(k)"),
    real("noise_sd", 0.5, 0.0, 100.0, "sd of y's noise"),
    real("tau", 0.0, 0.0, 100.0, "sd of the measurement noise on the causes' inputs (0: observed exactly)"),
    integer("n_train", 2000, 10, 10_000_000, "units per training environment"),
    integer("n_val", 500, 10, 10_000_000, "validation units per training environment"),
    integer("n_test", 2000, 10, 10_000_000, "units in test_id and in test_ood"),
)


def _normal(parents, u, params):
    return u


def _check_r(name: str, value, k: int) -> None:
    bound = 1.0 / math.sqrt(k)
    values = value if isinstance(value, tuple) else (value,)
    if any(abs(r) >= bound for r in values):
        raise InputError(f"knob {name}={value!r} is invalid: allowed |r| < 1/sqrt(k) = {bound:.6g} for k={k} "
                         "(s must have unit variance: k r^2 < 1)")


@scenario_family("proxy_sem", version="1", knobs=KNOBS)
def proxy_sem(*, k, beta, r_train, r_test, noise_sd, tau, n_train, n_val, n_test) -> SCM:
    """Spurious proxy s of k independent causes of a continuous label (module docstring)."""
    same_length("beta", beta, "k", k)
    _check_r("r_train", r_train, k)
    _check_r("r_test", r_test, k)
    causes = tuple(f"c{j + 1}" for j in range(k))

    def y_eq(parents, u, params):
        out = noise_sd * u
        for c, b in zip(causes, beta, strict=True):
            out = out + b * parents[c]
        return out

    def s_eq(parents, u, params):
        r = params["r"]
        total = sum(parents[c] for c in causes)
        return r * total + (1.0 - k * r**2) ** 0.5 * u

    terms = " + ".join(f"beta_{j + 1}*{c}" for j, c in enumerate(causes))
    variables = (
        *(Variable(c, "causal", _normal, text=f"{c} ~ N(0, 1)") for c in causes),
        Variable("y", "label", y_eq, parents=causes, text=f"y = {terms} + noise_sd*N(0,1)"),
        Variable("s", "spurious", s_eq, parents=causes,
                 text=f"s = r_e*({' + '.join(causes)}) + sqrt(1 - k*r_e^2)*N(0,1)"),
    )
    params = {"r": r_train[0], "tau": tau}
    environments = tuple(Environment(f"train{i}", {"r": r}) for i, r in enumerate(r_train))
    environments += (Environment("deploy", {"r": r_test}, deployment=True),)
    if tau == 0.0:
        ident, why = "pooled", "the causes are observed exactly, so s has no association with y given the inputs"
    elif len(set(r_train)) > 1:
        ident, why = "env", ("s's correlation with the causes differs across training environments, so the "
                             "regression of y on the inputs is invariant only without s")
    else:
        ident, why = "concept", ("one proxy strength and noisy causes: only the exact causes (concept labels) "
                                 "make s's conditional coefficient vanish")
    truth = Truth(
        roles={v.name: v.role for v in variables},
        world_coef={**{c: b for c, b in zip(causes, beta, strict=True)}, "s": 0.0},
        link="identity",
        identifiable_with=ident,
        identifiable_reason=why,
    )
    rendering = IdentityRendering((*causes, "s"), {c: "tau" for c in causes})
    return SCM(variables, params, environments, rendering, truth,
               {"n_train": n_train, "n_val": n_val, "n_test": n_test})
