"""Selection: grass is independent of cow in the world; the association exists only among the photos taken.

In the population, ``cow = 1[coef_moo*moo + coef_tail*tail + label_noise*eps > 0]`` (probit index) and
``grass ~ Bernoulli(1/2)`` independently of everything; ``sky`` is nuisance. A unit enters the sample
with probability ``keep`` if ``grass == cow`` and ``1 - keep`` otherwise ("photos of cows are taken on
grass"), with ``keep`` set per environment. Because grass is a fair coin in the population, the
selected sample has ``P(grass = cow) = keep`` exactly, whatever the prevalence of cow, which makes the
knob comparable with cow's ``agreement``. Deployment photographs without that selection by default
(``keep_test = 0.5``). moo and tail are seen through measurement noise.

Selection conditions on a common effect (a collider) of grass and cow, so within the sample grass also
carries information about cow given the inputs. The mechanism of cow is untouched.

Expected behaviour (catalog §6.1, mechanism M5; §6.3): pooled regression and ERM put weight on grass;
with two environments whose selection differs, environment-based methods (per-environment fits, ICP when
the causes also shift) can flag grass; group balancing removes the association in the reweighted
sample and so the reliance (Sagawa et al. 2020, arXiv:1911.08731; Idrissi et al. 2022,
arXiv:2110.14503). Interventions act on the selected units and do not re-select them, so
``do(grass)`` never changes cow.

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
    probit_cow,
    size_knobs,
    sizes,
    standard_normal,
)
from cowbench.generators.knobs import real, real_tuple, scenario_family
from cowbench.generators.scm import SCM, Environment, Variable

KNOBS = (
    real_tuple("keep_train", (0.9, 0.8), 0.01, 0.99,
               "P(keep | grass = cow) in each training environment (P(keep | grass != cow) = 1 - keep); its "
               "length is the number of training environments", max_len=16),
    real("keep_test", 0.5, 0.01, 0.99, "P(keep | grass = cow) at deployment (0.5: no selection)"),
    *COW_INDEX_KNOBS,
    MEASUREMENT_KNOB,
    *size_knobs("selected "),
)


def _grass(parents, u, params):
    return (u < 0.5).astype(np.float64)


def _keep(values, params):
    return np.where(values["grass"] == values["cow"], params["keep"], 1.0 - params["keep"])


@scenario_family("cow_selection", version="2", knobs=KNOBS)
def cow_selection(*, keep_train, keep_test, coef_moo, coef_tail, label_noise, measurement_noise,
                  n_train, n_val, n_test) -> SCM:
    """Selection on grass and cow (see the module docstring)."""
    variables = (
        Variable("moo", "causal", standard_normal, text="moo ~ N(0, 1)"),
        Variable("tail", "causal", standard_normal, text="tail ~ N(0, 1)"),
        Variable("cow", "label", probit_cow, parents=("moo", "tail"), kind="binary",
                 text="cow = 1[coef_moo*moo + coef_tail*tail + label_noise*N(0,1) > 0]"),
        Variable("grass", "spurious", _grass, noise="uniform", kind="binary",
                 text="grass ~ Bernoulli(1/2); units kept w.p. keep_e if grass == cow, else 1 - keep_e"),
        Variable("sky", "nuisance", standard_normal, text="sky ~ N(0, 1)"),
    )
    params = {"coef_moo": coef_moo, "coef_tail": coef_tail, "label_noise": label_noise, "keep": keep_train[0],
              "measurement_noise": measurement_noise}
    environments = tuple(Environment(f"train{i}", {"keep": k}) for i, k in enumerate(keep_train))
    environments += (Environment("deploy", {"keep": keep_test}, deployment=True),)
    if coef_moo != 0 and coef_tail != 0:
        # grass is a fair coin, so P(kept | cow) = 1/2 and the selection leaves (moo, tail, cow) as drawn
        ident, why = "pooled", ("moo and tail are independent and dependent given cow (a collider), while grass "
                                "is independent of them given cow (selection acts on grass and cow only): a cause "
                                "of cow would not be, so the pooled distribution orients grass away from cow")
    elif len(set(keep_train)) > 1:
        ident, why = "env", ("the selection on (grass, cow) differs across training environments, cow's "
                             "mechanism does not")
    else:
        ident, why = "counterfactual", ("one selection strength and one cause: a selected association is Markov "
                                        "equivalent to a causal one; do(grass) leaves cow unchanged")
    truth = cow_truth(variables, coef_moo, coef_tail, ident, why)
    rendering = cow_rendering()
    return SCM(variables, params, environments, rendering, truth,
               sizes(n_train, n_val, n_test), selection=_keep)
