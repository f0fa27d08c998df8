"""Planted cow: the cow scenario whose subject model is a network built by construction, not trained.

The data are the default cow scenario's (identity rendering of moo, tail, grass, sky; grass anti-causal,
its agreement with cow set per environment). The subject is declared by the scenario (``arch =
"planted"``, replacing a suite's ``[subject]`` table): a one-hidden-layer ReLU network whose logit is exactly

    planted_moo * moo + planted_tail * tail + planted_grass * (grass - 1/2)
      [+ coef_hidden * max(|moo + sky|, tau)  with hidden_feature = 1]
      [+ coef_interaction * (grass - 1/2) * |moo|  with interaction = 1]

(on the rendered inputs), with every hidden unit's loading on every variable known (`cowbench.planted`
documents the construction: pairs of units ``z, -z`` keep the logit linear; offsets, unit norms, readouts
and the order of the units are drawn per network so that no statistic of the weights alone points at
grass's units, and grass's default coefficient is the causes'). The knobs that shape its
hidden layer:

* ``polysemantic`` (p in [0, 1]): the share of grass's pathway carried by units that also carry moo or tail
  (0: grass has units of its own; 1: no unit reads grass alone);
* ``superposition`` (m in 2..n-1, 0 = off): the n observed variables (moo, tail, grass and the ``n_nuisance``
  nuisances sky, sky2, ...) as dense, non-orthogonal directions in an m-dimensional hidden space of 2m units
  (Elhage et al. 2022): no unit and no axis is one variable, and with n > 2m there are more features than
  units. ``sparsity`` (the probability that a cause or nuisance is exactly 0; a feature is active with
  probability ``1 - sparsity``) and ``feature_importance`` (q: the variables' embedding norms are q^0, q^1,
  ... in an order drawn per network) are the toy-model knobs; the label and the logit are unchanged;
* ``hidden_feature``: the logit also uses ``max(|moo + sky|, tau)`` (``tau`` drawn per network in (0, sqrt 2)),
  a feature none of the named variables is (the "features nobody named"); it adds to ``cr``, not to ``ace``
  (it is even);
* ``interaction``: grass is also used through ``(grass - 1/2) * |moo|`` (gated units), so a linear erasure
  of grass leaves reliance behind (``ace[grass] = C + G E|x_moo|``).

The edit oracle is the same network with ``planted_grass = 0`` and the interaction removed, so an edit
that reproduces it scores ``edit_score = 1`` by construction. The exact feature directions at every hook point
are on the truth (`PlantedTruth.feature_directions`). Expected outcomes (issue 10, §6): unit
ablation of grass's units is clean at ``polysemantic = 0`` and fails at 1; direction-level methods recover
grass's direction where units cannot; linear erasure leaves the interaction's reliance; under
superposition no hidden-layer edit reaches ``C = 0`` exactly.
"""

from __future__ import annotations

from cowbench.errors import InputError
from cowbench.generators._cow_parts import size_knobs
from cowbench.generators.cow import cow
from cowbench.generators.knobs import integer, preset, real, real_tuple, scenario_family
from cowbench.generators.scm import SCM
from cowbench.planted import PLANTED_VERSION

KNOBS = (
    real_tuple("agreement_train", (0.9, 0.8), 0.0, 1.0,
               "P(grass = cow) in each training environment; its length is the number of environments",
               max_len=16),
    real("agreement_test", 0.1, 0.0, 1.0, "P(grass = cow) at deployment (test_ood)"),
    real("label_noise", 0.5, 0.0, 10.0, "sd of the noise in the probit index of cow"),
    real("measurement_noise", 1.0, 0.0, 10.0, "sd of the measurement noise on the causes' inputs"),
    *size_knobs(),
    real("planted_moo", 1.0, -10.0, 10.0, "A: the planted network's coefficient of moo"),
    real("planted_tail", 1.0, -10.0, 10.0, "B: the planted network's coefficient of tail"),
    real("planted_grass", 4.0, -10.0, 10.0, "C: the planted network's coefficient of (grass - 1/2), the shortcut "
         "(a binary shortcut costs measurable balanced accuracy only at C/2 near the causes' spread: at C = 1 or 2 "
         "edit_score is missing; its units' weights do not show C, the network's input gradient does)"),
    real("polysemantic", 0.0, 0.0, 1.0, "share of grass's pathway carried by units that also carry moo or tail"),
    integer("superposition", 0, 0, 50, "hidden directions the observed variables are superposed into: 2 to "
            "(number of variables - 1) (0: no superposition; must be 0 when polysemantic > 0)"),
    integer("n_nuisance", 1, 1, 50, "number of nuisance variables sky, sky2, ... (coefficient 0; features to "
            "superpose)"),
    real("sparsity", 0.0, 0.0, 0.99, "P(a cause or nuisance variable is exactly 0): 1 - the probability that a "
         "feature is active"),
    real("feature_importance", 1.0, 0.0, 1.0, "q: under superposition the variables' embedding norms are q^0, "
         "q^1, ... (in an order drawn per network); 1: all alike", open_low=True),
    integer("hidden_feature", 0, 0, 1, "1: the logit also uses |moo + sky| (coef_hidden), a feature no variable is"),
    real("coef_hidden", 0.5, -10.0, 10.0, "D: the hidden feature's coefficient"),
    integer("interaction", 0, 0, 1, "1: the logit also uses (grass - 1/2) * |moo| (coef_interaction)"),
    real("coef_interaction", 1.0, -10.0, 10.0, "G: the interaction's coefficient"),
)


@scenario_family("cow_planted", version=PLANTED_VERSION, knobs=KNOBS, subject={"arch": "planted"})
def cow_planted(*, agreement_train, agreement_test, label_noise, measurement_noise, n_train, n_val, n_test,
                planted_moo, planted_tail, planted_grass, polysemantic, superposition, hidden_feature,
                coef_hidden, interaction, coef_interaction, n_nuisance, sparsity, feature_importance) -> SCM:
    """The default cow data with a planted subject network (see the module docstring)."""
    n_variables = 3 + n_nuisance
    if superposition == 1 or superposition >= n_variables:
        raise InputError(f"knob superposition={superposition} is invalid: allowed 0 or 2 to {n_variables - 1} "
                         f"(fewer directions than the {n_variables} observed variables, and more than the logit's "
                         "own one)")
    if superposition and polysemantic:
        raise InputError(f"knob polysemantic={polysemantic!r} is invalid with superposition={superposition}: "
                         "allowed 0 (under superposition every unit already carries several variables)")
    knobs = cow.resolve({"agreement_train": agreement_train, "agreement_test": agreement_test,
                         "label_noise": label_noise, "measurement_noise": measurement_noise,
                         "n_train": n_train, "n_val": n_val, "n_test": n_test, "n_nuisance": n_nuisance,
                         "sparsity": sparsity})
    return cow.build(**knobs)


preset("planted_mono", cow_planted, polysemantic=0.0, doc=(
    "planted cow whose grass has hidden units of its own (polysemantic = 0: two pairs, four units). Expected: "
    "ablating the units most associated with grass removes the shortcut cleanly (edit_score about 1, "
    "causal_kept 1); the localization AUROC of such a unit ranking is 1, of any ranking by a weight statistic "
    "(bias, norm, gain) 0.5 in expectation."))
preset("planted_poly", cow_planted, polysemantic=1.0, doc=(
    "planted cow in which every unit that reads grass also reads moo or tail (polysemantic = 1). Expected: "
    "unit ablation fails (it either leaves grass or destroys moo/tail: causal_kept drops), while a linear edit "
    "at the same layer can still remove grass exactly (the variables stay linearly independent there)."))
preset("planted_half", cow_planted, polysemantic=0.5, doc=(
    "planted cow with half of grass's pathway in mixed units (polysemantic = 0.5). Expected: unit ablation "
    "of grass's own units removes about half of the shortcut (residual_spurious about 0.5)."))
preset("planted_superposed", cow_planted, superposition=3, doc=(
    "planted cow whose four variables are dense, non-orthogonal directions in a 3-dimensional hidden space "
    "(Elhage et al. 2022). Expected: no unit and no axis is grass, so unit ablation fails; subspace methods "
    "(DAS) can find grass's direction (loc_overlap near 1), but no hidden-layer edit reaches C = 0 exactly."))
preset("planted_hidden", cow_planted, hidden_feature=1, doc=(
    "planted cow whose logit also uses max(|moo + sky|, tau), a feature none of the named variables is. Expected: "
    "ace is unchanged (the feature is even), cr shows it; edits of grass should leave it alone (the oracle "
    "keeps it)."))
preset("planted_interaction", cow_planted, interaction=1, doc=(
    "planted cow that also uses grass through (grass - 1/2) * |moo| (units gated by grass). Expected: a linear "
    "erasure of grass's direction at the hidden layer leaves reliance (residual_spurious about "
    "G E|x_moo| / (C + G E|x_moo|) = 0.22 at the defaults) while a linear probe for grass there is at chance."))
preset("planted_sparse", cow_planted, superposition=3, n_nuisance=5, sparsity=0.9, feature_importance=0.8, doc=(
    "planted cow in the toy-model regime (Elhage et al. 2022): eight observed variables (moo, tail, grass, sky, "
    "sky2..sky5) packed as dense directions into a 3-dimensional hidden space of 6 units, causes and nuisances "
    "exactly 0 with probability 0.9 (sparse features), embedding norms 0.8^k by a drawn order (importance). "
    "The logit is still A moo + B tail + C (grass - 1/2). Expected: more features than units, so no unit and "
    "no axis is a variable; the exact directions (PlantedTruth.feature_directions) are what a dictionary "
    "method should recover (sparse features are what makes that possible)."))
