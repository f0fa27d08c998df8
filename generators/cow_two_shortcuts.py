"""Two shortcuts: grass and sky are both anti-causal children of cow, and an edit is asked to remove one.

``cow = 1[coef_moo * moo + coef_tail * tail + label_noise * eps > 0]`` (probit index, as in cow);
``grass = cow`` with probability ``agreement_grass_e`` and ``1 - cow`` otherwise, per environment; ``sky``
copies grass with probability ``shared`` and is otherwise ``cow`` with probability ``agreement_sky_e`` (else
``1 - cow``), so the two shortcuts overlap given cow: a model that stops using one finds part of its signal
in the other (with ``shared = 0`` they are independent given cow, and a logistic model's weight on sky does
not depend on whether grass is used). Both are spurious; the deployment
environment weakens both (``agreement_*_test``). The model sees moo and tail through measurement noise.
The edit target (``edit_target``, ``task.edit_target``) names one of them; the other is watched by
``other_spurious_ratio``: removing one shortcut can amplify the other (Whac-A-Mole: Li et al. 2023,
arXiv:2212.04825). Group labels name grass (the first spurious variable).

Expected behaviour: ERM relies on both; an edit of the target alone leaves the other (edit_score well
below 1, since test_bal and the oracle decorrelate both; other_spurious_ratio about 1 for a frozen-model
edit). Whether retraining that balances the target's groups amplifies the other shortcut is what
``other_spurious_ratio`` measures (measured on the defaults, replicate 0: group_reweight 1.03,
erase_spurious 0.95; no amplification is planted).

Test-set size (issue 16; README "Test-set sizes"): ``n_test`` defaults to 2000; the standard suite runs ``n_test =
20000`` here, the size at which edit_score's test-sampling s.d. on one replicate is at most 0.025 = d/2 for d =
0.05 where the oracle's gain is as large as on cow (0.015 there; it scales as 1/(gain sqrt(n_test)), so small-gain
scenarios stay above it: the README lists the measured values).
"""

from __future__ import annotations

import numpy as np

from cowbench.data import Truth
from cowbench.generators._cow_parts import (
    COW_INDEX_KNOBS,
    MEASUREMENT_KNOB,
    probit_cow,
    size_knobs,
    sizes,
    standard_normal,
)
from cowbench.generators.knobs import choice, real, real_tuple, same_length, scenario_family
from cowbench.generators.scm import SCM, Environment, IdentityRendering, Variable

KNOBS = (
    real_tuple("agreement_grass_train", (0.9, 0.8), 0.0, 1.0,
               "P(grass = cow) in each training environment; its length is the number of environments", max_len=16),
    real_tuple("agreement_sky_train", (0.8, 0.75), 0.0, 1.0,
               "P(sky = cow) in each training environment (same length as agreement_grass_train)", max_len=16),
    real("agreement_grass_test", 0.1, 0.0, 1.0, "P(grass = cow) at deployment (test_ood)"),
    real("agreement_sky_test", 0.2, 0.0, 1.0, "P(sky = cow) at deployment (test_ood)"),
    real("shared", 0.5, 0.0, 0.99, "P(sky copies grass): how much the two shortcuts overlap given cow"),
    choice("edit_target", "grass", ("grass", "sky"), "the shortcut an edit is asked to remove; the other is watched"),
    *COW_INDEX_KNOBS,
    MEASUREMENT_KNOB,
    *size_knobs(),
)


def _grass(parents, u, params):
    cow = parents["cow"]
    return np.where(u < params["agreement_grass"], cow, 1.0 - cow)


def _sky(parents, u, params):
    # one uniform: below `shared` sky copies grass; above it, rescaled to [0, 1), it draws sky's own agreement
    shared = params["shared"]
    own = np.where((u - shared) / (1.0 - shared) < params["agreement_sky"], parents["cow"], 1.0 - parents["cow"])
    return np.where(u < shared, parents["grass"], own)


@scenario_family("cow_two_shortcuts", version="1", knobs=KNOBS)
def cow_two_shortcuts(*, agreement_grass_train, agreement_sky_train, agreement_grass_test, agreement_sky_test,
                      shared, edit_target, coef_moo, coef_tail, label_noise, measurement_noise, n_train, n_val,
                      n_test) -> SCM:
    """Grass and sky, two anti-causal shortcuts; the edit target is one of them (see the module docstring)."""
    same_length("agreement_sky_train", agreement_sky_train, "agreement_grass_train", len(agreement_grass_train))
    variables = (
        Variable("moo", "causal", standard_normal, text="moo ~ N(0, 1)"),
        Variable("tail", "causal", standard_normal, text="tail ~ N(0, 1)"),
        Variable("cow", "label", probit_cow, parents=("moo", "tail"), kind="binary",
                 text="cow = 1[coef_moo*moo + coef_tail*tail + label_noise*N(0,1) > 0]"),
        Variable("grass", "spurious", _grass, parents=("cow",), noise="uniform", kind="binary",
                 text="grass = cow w.p. agreement_grass_e, else 1 - cow"),
        Variable("sky", "spurious", _sky, parents=("cow", "grass"), noise="uniform", kind="binary",
                 text="sky = grass w.p. shared, else cow w.p. agreement_sky_e, else 1 - cow"),
    )
    params = {"coef_moo": coef_moo, "coef_tail": coef_tail, "label_noise": label_noise,
              "agreement_grass": agreement_grass_train[0], "agreement_sky": agreement_sky_train[0],
              "measurement_noise": measurement_noise, "shared": shared}
    environments = tuple(Environment(f"train{i}", {"agreement_grass": g, "agreement_sky": s})
                         for i, (g, s) in enumerate(zip(agreement_grass_train, agreement_sky_train, strict=True)))
    environments += (Environment("deploy", {"agreement_grass": agreement_grass_test,
                                            "agreement_sky": agreement_sky_test}, deployment=True),)
    causes = sum(c != 0 for c in (coef_moo, coef_tail))
    if causes >= 2:
        ident, why = "pooled", ("two independent causes make cow a collider while grass and sky are independent of "
                                "the causes given cow, so the pooled distribution orients cow -> grass and cow -> sky")
    else:
        ident, why = "counterfactual", "fewer than two causes with an effect: only interventions orient the shortcuts"
    truth = Truth(roles={v.name: v.role for v in variables},
                  world_coef={"moo": coef_moo, "tail": coef_tail, "grass": 0.0, "sky": 0.0}, link="probit",
                  identifiable_with=ident, identifiable_reason=why, edit_target=(edit_target,))
    rendering = IdentityRendering(("moo", "tail", "grass", "sky"), {"moo": "measurement_noise",
                                                                  "tail": "measurement_noise"})
    return SCM(variables, params, environments, rendering, truth, sizes(n_train, n_val, n_test))
