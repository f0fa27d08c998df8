"""A small linear-Gaussian SEM with a continuous label: the textbook settings of invariance and IV.

``x1 = x1_sd_e * eps + instrument * a + hidden_to_x1 * h`` (cause),
``y = beta * x1 + hidden_to_y * h + exclusion * a + y_noise_e * eps`` (label, continuous),
``x2 = x2_coef_e * y + x2_noise * eps`` (anti-causal child of y: spurious).
``a`` (instrument, observed) and ``h`` (hidden) exist only when their coefficients are non-zero. Per
environment ``e`` the knobs ``x1_sd``, ``y_noise`` and ``x2_coef`` take their values from tuples (one
entry per training environment, and ``*_test`` for deployment). Variable names are generic (x1, x2, y):
nothing in the machinery depends on cow names.

Settings of the methods catalog (§7) this family reproduces:

* O2 (anti-causal child): one environment, OLS of y on (x1, x2) puts ``b_x2 = g s_y^2/(g^2 s_y^2 + 1)``.
* O13 (Arjovsky et al. 2019, arXiv:1907.02893): ``x1_sd = y_noise = sigma``; OLS on both gives
  ``(1/(sigma^2+1), sigma^2/(sigma^2+1))``; only the regression on x1 is invariant.
* O12 A-D (ICP; Peters, Bühlmann & Meinshausen 2016, arXiv:1501.01332): A shifts x1's scale per
  environment (ICP returns {x1}); B shifts only x2's mechanism (ICP abstains); C shifts the noise of y
  (no invariant set); D adds a hidden confounder of x1 and y (false positive at small n).
* O11 (IV and anchor regression; Rothenhäusler et al. 2021, arXiv:1801.06229): ``instrument = 1``,
  ``hidden_to_x1 = 1``, ``hidden_to_y = 3``, ``beta = 2``: OLS of y on x1 -> 3, IV -> 2.

Expected: pooled OLS fails wherever x2 is present (it absorbs x2) or h confounds; invariance methods
(ICP, IRM, V-REx) succeed when x1's distribution shifts and y's mechanism does not (A), abstain or fail
otherwise (B-D); IV succeeds where the exclusion restriction holds.
"""

from __future__ import annotations

from cowbench.data import Truth
from cowbench.generators.knobs import integer, real, real_tuple, same_length, scenario_family
from cowbench.generators.scm import SCM, Environment, IdentityRendering, Variable

KNOBS = (
    real_tuple("x1_sd_train", (0.5, 1.0, 2.0), 0.0, 100.0,
               "sd of x1's own noise per training environment; its length is the number of environments"),
    real_tuple("y_noise_train", (1.0, 1.0, 1.0), 0.0, 100.0, "sd of y's noise per training environment"),
    real_tuple("x2_coef_train", (1.0, 1.0, 1.0), -100.0, 100.0, "coefficient of y in x2 per training environment"),
    real("x1_sd_test", 1.0, 0.0, 100.0, "sd of x1's own noise at deployment"),
    real("y_noise_test", 1.0, 0.0, 100.0, "sd of y's noise at deployment"),
    real("x2_coef_test", -1.0, -100.0, 100.0, "coefficient of y in x2 at deployment"),
    real("x2_noise", 1.0, 0.0, 100.0, "sd of x2's noise"),
    real("beta", 1.0, -100.0, 100.0, "coefficient of x1 in y (the world coefficient)"),
    real("instrument", 0.0, 0.0, 100.0, "coefficient of the instrument a in x1 (0: no instrument)"),
    real("exclusion", 0.0, -100.0, 100.0, "direct effect of a on y (0: the exclusion restriction holds)"),
    real("hidden_to_x1", 0.0, -100.0, 100.0, "coefficient of the hidden h in x1"),
    real("hidden_to_y", 0.0, -100.0, 100.0, "coefficient of the hidden h in y"),
    integer("n_train", 3000, 10, 10_000_000, "units per training environment"),
    integer("n_val", 500, 10, 10_000_000, "validation units per training environment"),
    integer("n_test", 2000, 10, 10_000_000, "units in test_id and in test_ood"),
)


def _scaled(parents, u, params):
    return u


@scenario_family("linear_sem", version="1", knobs=KNOBS)
def linear_sem(*, x1_sd_train, y_noise_train, x2_coef_train, x1_sd_test, y_noise_test, x2_coef_test, x2_noise,
               beta, instrument, exclusion, hidden_to_x1, hidden_to_y, n_train, n_val, n_test) -> SCM:
    """Linear-Gaussian chain x1 -> y -> x2 with optional instrument and hidden confounder (module docstring)."""
    same_length("y_noise_train", y_noise_train, "x1_sd_train", len(x1_sd_train))
    same_length("x2_coef_train", x2_coef_train, "x1_sd_train", len(x1_sd_train))
    if instrument == 0 and exclusion != 0:
        raise ValueError("knob exclusion is only meaningful with an instrument: set instrument > 0")
    has_a, has_h = instrument != 0, hidden_to_x1 != 0 or hidden_to_y != 0
    x1_parents = ("a",) * has_a + ("h",) * has_h
    y_parents = ("x1",) + ("a",) * has_a + ("h",) * has_h

    def x1_eq(parents, u, params):
        out = params["x1_sd"] * u
        if has_a:
            out = out + instrument * parents["a"]
        if has_h:
            out = out + hidden_to_x1 * parents["h"]
        return out

    def y_eq(parents, u, params):
        out = beta * parents["x1"] + params["y_noise"] * u
        if has_a:
            out = out + exclusion * parents["a"]
        if has_h:
            out = out + hidden_to_y * parents["h"]
        return out

    def x2_eq(parents, u, params):
        return params["x2_coef"] * parents["y"] + x2_noise * u

    variables = [
        Variable("x1", "causal", x1_eq, parents=x1_parents, text="x1 = x1_sd_e*N(0,1) + instrument*a + hidden_to_x1*h"),
        Variable("y", "label", y_eq, parents=y_parents,
                 text="y = beta*x1 + exclusion*a + hidden_to_y*h + y_noise_e*N(0,1)"),
        Variable("x2", "spurious", x2_eq, parents=("y",), text="x2 = x2_coef_e*y + x2_noise*N(0,1)"),
    ]
    if has_a:
        variables.append(Variable("a", "instrument", _scaled, text="a ~ N(0, 1)"))
    if has_h:
        variables.append(Variable("h", "hidden", _scaled, text="h ~ N(0, 1)"))
    params = {"x1_sd": x1_sd_train[0], "y_noise": y_noise_train[0], "x2_coef": x2_coef_train[0]}
    environments = tuple(Environment(f"train{i}", {"x1_sd": s, "y_noise": v, "x2_coef": c})
                         for i, (s, v, c) in enumerate(zip(x1_sd_train, y_noise_train, x2_coef_train, strict=True)))
    environments += (Environment("deploy", {"x1_sd": x1_sd_test, "y_noise": y_noise_test, "x2_coef": x2_coef_test},
                                 deployment=True),)
    shifting = [k for k, v in (("x1_sd", x1_sd_train), ("y_noise", y_noise_train), ("x2_coef", x2_coef_train))
                if len(set(v)) > 1]
    if shifting:
        ident, why = "env", f"the training environments shift {', '.join(shifting)}: x2's conditional changes"
    else:
        ident, why = "counterfactual", ("one training distribution: a linear-Gaussian chain and its reverse are "
                                        "Markov equivalent, so only interventions tell x2 from a cause")
    observed = ["x1", "x2"] + ["a"] * has_a
    world = {"x1": beta, "x2": 0.0}
    if has_a:
        world["a"] = exclusion
    truth = Truth(roles={v.name: v.role for v in variables}, world_coef=world, link="identity",
                  identifiable_with=ident, identifiable_reason=why)
    return SCM(tuple(variables), params, environments, IdentityRendering(tuple(observed)), truth,
               {"n_train": n_train, "n_val": n_val, "n_test": n_test})
