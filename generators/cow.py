"""The default cow scenario: an anti-causal spurious variable whose strength changes by environment.

``cow = 1[coef_moo * moo + coef_tail * tail + label_noise * eps > 0]`` (probit index);
``grass = cow`` with probability ``agreement`` (per environment) and ``1 - cow`` otherwise; ``sky`` is
nuisance. The model sees moo and tail only through measurement noise, so grass carries information
about cow that the model will use; at deployment the agreement flips (``agreement_test``).

Expected behaviour: ERM (linear or MLP) puts weight on grass and loses accuracy at deployment; methods
with environment labels can flag grass (its association with cow differs across environments while the
mechanism of cow does not); group balancing and concept erasure remove the reliance.

The ``rendering`` knob picks how the observed variables become inputs (identity, rotation, superposition,
mlp, image; see `cowbench.generators.renderings`); the SCM and the truth do not depend on it, and the
fixed random maps use one constant seed, so they belong to the scenario rather than to the replicate.
"""

from __future__ import annotations

import numpy as np

from cowbench.data import Truth
from cowbench.errors import InputError
from cowbench.generators.knobs import choice, integer, real, real_tuple, scenario_family
from cowbench.generators.renderings import ImageRendering, MLPRendering, RotationRendering, SuperpositionRendering
from cowbench.generators.scm import SCM, Environment, IdentityRendering, Rendering, Variable

RENDERINGS = ("identity", "rotation", "superposition", "mlp", "image")
OBSERVED = ("moo", "tail", "grass", "sky")
MEASURED = {"moo": "measurement_noise", "tail": "measurement_noise"}
RENDER_SEED = 0  # the fixed random maps are part of the scenario: one constant seed, not the replicate's
# render_dim: (smallest, largest, default) per rendering that uses it
RENDER_DIMS = {"rotation": (len(OBSERVED), 4096, len(OBSERVED)),
               "superposition": (1, len(OBSERVED) - 1, len(OBSERVED) // 2),
               "mlp": (1, 4096, 16)}

KNOBS = (
    real_tuple("agreement_train", (0.9, 0.8), 0.0, 1.0,
               "P(grass = cow) in each training environment; its length is the number of environments",
               max_len=16),
    real("agreement_test", 0.1, 0.0, 1.0, "P(grass = cow) at deployment (test_ood)"),
    real("coef_moo", 1.0, -10.0, 10.0, "coefficient of moo in the probit index of cow"),
    real("coef_tail", 1.0, -10.0, 10.0, "coefficient of tail in the probit index of cow"),
    real("label_noise", 0.5, 0.0, 10.0, "sd of the Gaussian noise in the probit index of cow"),
    real("measurement_noise", 1.0, 0.0, 10.0, "sd of the measurement noise on the moo and tail inputs"),
    integer("n_train", 2000, 10, 10_000_000, "training units per training environment"),
    integer("n_val", 500, 10, 10_000_000, "validation units per training environment"),
    integer("n_test", 2000, 10, 10_000_000, "units in test_id and in test_ood"),
    choice("rendering", "identity", RENDERINGS, "how moo, tail, grass and sky become the inputs x"),
    integer("render_dim", 0, 0, 4096,
            "input dimension for rotation (4 to 4096), superposition (1 to 3) and mlp (1 to 4096); "
            "0 = that rendering's default (4, 2, 16); must be 0 for identity and image"),
)


def _rendering(rendering: str, render_dim: int) -> Rendering:
    if rendering not in RENDER_DIMS:
        if render_dim != 0:
            raise InputError(f"knob render_dim={render_dim!r} is invalid: the {rendering} rendering has no "
                             "dimension to set; allowed 0")
        if rendering == "image":
            return ImageRendering((("moo", "blob"), ("tail", "stroke"), ("grass", "bottom_band"), ("sky", "top_band")),
                                  MEASURED, RENDER_SEED)
        return IdentityRendering(OBSERVED, MEASURED)
    low, high, default = RENDER_DIMS[rendering]
    if render_dim == 0:
        render_dim = default
    elif not low <= render_dim <= high:
        raise InputError(f"knob render_dim={render_dim!r} is invalid: allowed an integer in [{low}, {high}] "
                         f"(or 0) for the {rendering} rendering")
    if rendering == "rotation":
        return RotationRendering(OBSERVED, MEASURED, RENDER_SEED, d_out=render_dim)
    if rendering == "superposition":
        return SuperpositionRendering(OBSERVED, MEASURED, RENDER_SEED, d_out=render_dim)
    return MLPRendering(OBSERVED, MEASURED, RENDER_SEED, d_out=render_dim, hidden=32)


def _normal(parents, u, params):
    return u


def _cow(parents, u, params):
    index = params["coef_moo"] * parents["moo"] + params["coef_tail"] * parents["tail"]
    return (index + params["label_noise"] * u > 0).astype(np.float64)


def _grass(parents, u, params):
    cow = parents["cow"]
    return np.where(u < params["agreement"], cow, 1.0 - cow)


@scenario_family("cow", version="1", knobs=KNOBS)
def cow(*, agreement_train, agreement_test, coef_moo, coef_tail, label_noise, measurement_noise,
        n_train, n_val, n_test, rendering, render_dim) -> SCM:
    """Anti-causal grass, with P(grass = cow) set per environment (see the module docstring)."""
    variables = (
        Variable("moo", "causal", _normal, text="moo ~ N(0, 1)"),
        Variable("tail", "causal", _normal, text="tail ~ N(0, 1)"),
        Variable("cow", "label", _cow, parents=("moo", "tail"), kind="binary",
                 text="cow = 1[coef_moo*moo + coef_tail*tail + label_noise*N(0,1) > 0]"),
        Variable("grass", "spurious", _grass, parents=("cow",), noise="uniform", kind="binary",
                 text="grass = cow w.p. agreement, else 1 - cow"),
        Variable("sky", "nuisance", _normal, text="sky ~ N(0, 1)"),
    )
    params = {"coef_moo": coef_moo, "coef_tail": coef_tail, "label_noise": label_noise,
              "agreement": agreement_train[0], "measurement_noise": measurement_noise}
    environments = tuple(Environment(f"train{i}", {"agreement": a}) for i, a in enumerate(agreement_train))
    environments += (Environment("deploy", {"agreement": agreement_test}, deployment=True),)
    if len(set(agreement_train)) > 1:
        ident, why = "env", "P(grass = cow) differs across training environments while cow's mechanism does not"
    else:
        ident, why = "group", ("one spurious strength in training: pooled or environment data cannot tell an "
                               "anti-causal child of cow from a cause")
    truth = Truth(
        roles={v.name: v.role for v in variables},
        world_coef={"moo": coef_moo, "tail": coef_tail, "grass": 0.0, "sky": 0.0},
        link="probit",
        identifiable_with=ident,
        identifiable_reason=why,
    )
    return SCM(variables, params, environments, _rendering(rendering, render_dim), truth,
               {"n_train": n_train, "n_val": n_val, "n_test": n_test})
