"""Four groups with Gaussian features: the toy model of the group-robustness literature.

The label is exogenous, ``cow ~ Bernoulli(1/2)``; with ``s = 2 cow - 1`` in {-1, +1}:
``moo = s * mu_core + sd_core * eta`` (a *core* feature: a child of cow whose mechanism is the same in every
environment), ``grass_attr = cow`` w.p. ``agreement_e`` else ``1 - cow`` (binary attribute, spurious),
``grass = (2 grass_attr - 1) * mu_spurious + sd_spurious * eta'`` (the spurious feature the model sees), and
``sky ~ N(0, 1)`` nuisance. Groups are (cow, grass_attr); the minority groups are those where they disagree.

World truth: cow has no parents, so no structural coefficient exists; the core feature's world coefficient
is its weight in the invariant Bayes predictor, ``2 mu_core / sd_core^2`` (catalog O6/O14: what group-balanced
logistic regression and GroupDRO converge to), grass and sky 0.

Closed forms (catalog §7 O14; Sagawa, Raghunathan, Koh & Liang 2020, arXiv:2005.04345): for the rule
``sign(w_c moo + w_s grass + b)`` group ``(y, a)`` has accuracy
``Phi(y (w_c y mu_c + w_s a mu_s + b) / sqrt(w_c^2 sd_c^2 + w_s^2 sd_s^2))`` (with y, a in {-1, +1}), and
population group-balanced logistic regression puts weight 0 on grass. Expected: ERM relies on grass and
has poor worst-group accuracy when agreement is high; group reweighting and GroupDRO recover
(Idrissi et al. 2022, arXiv:2110.14503), environment methods flag grass when agreements differ.

Test-set size (issue 16; README "Test-set sizes"): ``n_test`` defaults to 2000; the standard suite runs ``n_test =
20000`` here, the size at which edit_score's test-sampling s.d. on one replicate is at most 0.025 = d/2 for d =
0.05 where the oracle's gain is as large as on cow (0.015 there; it scales as 1/(gain sqrt(n_test)), so small-gain
scenarios stay above it: the README lists the measured values).
"""

from __future__ import annotations

import dataclasses

import numpy as np

from cowbench.access import NEVER
from cowbench.data import Split, Truth
from cowbench.generators._cow_parts import size_knobs, sizes, standard_normal
from cowbench.generators.knobs import real, real_tuple, scenario_family
from cowbench.generators.scm import SCM, Environment, IdentityRendering, Variable

KNOBS = (
    real_tuple("agreement_train", (0.95, 0.9), 0.0, 1.0,
               "P(grass_attr = cow) per training environment; its length is the number of environments"),
    real("agreement_test", 0.5, 0.0, 1.0, "P(grass_attr = cow) at deployment"),
    real("mu_core", 1.0, 0.0, 10.0, "mean of the core feature moo is +-mu_core"),
    real("sd_core", 1.0, 0.01, 10.0, "sd of moo around its mean", open_low=False),
    real("mu_spurious", 1.0, 0.0, 10.0, "mean of grass is +-mu_spurious"),
    real("sd_spurious", 0.5, 0.01, 10.0, "sd of grass around its mean"),
    *size_knobs(),
)


def _label(parents, u, params):
    return (u < 0.5).astype(np.float64)


def _sign(v):
    return 2.0 * v - 1.0


def _moo(parents, u, params):
    return _sign(parents["cow"]) * params["mu_core"] + params["sd_core"] * u


def _attr(parents, u, params):
    cow = parents["cow"]
    return np.where(u < params["agreement"], cow, 1.0 - cow)


def _grass(parents, u, params):
    return _sign(parents["grass_attr"]) * params["mu_spurious"] + params["sd_spurious"] * u


@scenario_family("four_groups", version="2", knobs=KNOBS)
def four_groups(*, agreement_train, agreement_test, mu_core, sd_core, mu_spurious, sd_spurious,
                n_train, n_val, n_test) -> SCM:
    """Gaussian core and spurious features of an exogenous label (see the module docstring)."""
    variables = (
        Variable("cow", "label", _label, noise="uniform", kind="binary", text="cow ~ Bernoulli(1/2)"),
        Variable("moo", "core", _moo, parents=("cow",), text="moo = (2cow - 1)*mu_core + sd_core*N(0,1)"),
        Variable("grass_attr", "hidden", _attr, parents=("cow",), noise="uniform", kind="binary",
                 text="grass_attr = cow w.p. agreement_e, else 1 - cow"),
        Variable("grass", "spurious", _grass, parents=("grass_attr",),
                 text="grass = (2grass_attr - 1)*mu_spurious + sd_spurious*N(0,1)"),
        Variable("sky", "nuisance", standard_normal, text="sky ~ N(0, 1)"),
    )
    params = {"agreement": agreement_train[0], "mu_core": mu_core, "sd_core": sd_core, "mu_spurious": mu_spurious,
              "sd_spurious": sd_spurious}
    environments = tuple(Environment(f"train{i}", {"agreement": a}) for i, a in enumerate(agreement_train))
    environments += (Environment("deploy", {"agreement": agreement_test}, deployment=True),)
    if len(set(agreement_train)) > 1:
        ident, why = "env", "P(grass_attr = cow) differs across training environments while moo's mechanism does not"
    else:
        ident, why = NEVER, ("one spurious strength in training: moo and grass are both children of cow, so no "
                             "interventional or observational query tells the invariant one from the one that "
                             "shifts at deployment; only group labels, which name it, separate them")
    truth = Truth(roles={v.name: v.role for v in variables},
                  world_coef={"moo": 2 * mu_core / sd_core**2, "grass": 0.0, "sky": 0.0}, link="logistic",
                  identifiable_with=ident, identifiable_reason=why)
    return _AttributeGroups(variables, params, environments, IdentityRendering(("moo", "grass", "sky")), truth,
                            sizes(n_train, n_val, n_test))


class _AttributeGroups(SCM):
    """The SCM with groups ``(cow, grass_attr)``, as the module docstring defines them.

    The generic groups binarise the observed spurious variable (``grass > 0``), which mislabels the units
    whose Gaussian grass crosses 0 against its attribute (2.3% at the defaults) and biases group-balanced
    estimators towards grass. Where grass itself is intervened on, the generic groups apply.
    """

    def make_split(self, name: str, exogenous, env: np.ndarray, do=None) -> Split:
        split = super().make_split(name, exogenous, env, do)
        if "grass" in (do or {}):  # grass set by intervention (test_bal permutes it): its attribute no longer drives it
            return split
        attr = split.concepts["grass_attr"].to_numpy().astype(np.int64)
        return dataclasses.replace(split, group=2 * split.y.astype(np.int64) + attr)
