"""The default cow scenario: an anti-causal spurious variable whose strength changes by environment.

``cow = 1[coef_moo * moo + coef_tail * tail + label_noise * eps > 0]`` (probit index);
``grass = cow`` with probability ``agreement`` (per environment) and ``1 - cow`` otherwise; ``sky`` is
nuisance. The model sees moo and tail only through measurement noise, so grass carries information
about cow that the model will use; at deployment the agreement flips (``agreement_test``).

Expected behaviour: ERM (linear or MLP) puts weight on grass and loses accuracy at deployment; methods
with environment labels can flag grass (its association with cow differs across environments while the
mechanism of cow does not); group balancing and concept erasure remove the reliance.

More knobs widen the family (see the glossary, ``cowbench knobs``):

* ``causal_form``: ``linear`` (above), or ``and``/``or``/``xor`` of ``moo > 0`` and ``tail > 0``: the index is
  then ``coef_moo * (2 g - 1)`` with ``g`` the boolean form, plus the extra causes' linear terms. The world
  coefficient of a cause is its average partial effect on the index, ``E[d index / d v]``: the coefficient
  for the linear form; for and/or ``2 coef_moo f(0) P(other cause on/off) = coef_moo f(0)``, with ``f`` the
  density of the cause as drawn (``noise``): ``1/sqrt(2 pi) = 0.399`` for normal, ``1/sqrt(2) = 0.707`` for
  unit-variance Laplace; and 0 for xor (the kink's up and down steps cancel), where no linear summary of
  the mechanism exists (the world track is then not scored: the truth vector is zero) while detection and
  editing still are. With ``sparsity > 0`` a cause has an atom at the kink, so for and/or/xor the partial
  effect grows like 1/h: the world truth is undefined (``Truth.world_undefined``) and the world track is not
  scored. Simplicity bias makes ERM lean on grass when the cause is an xor (Shah et al. 2020,
  arXiv:2006.07710).
* ``n_causal``, ``n_spurious``, ``n_nuisance``: extra causes ``cause3, ...`` (coefficient ``coef_extra``),
  extra anti-causal spurious copies ``grass2, ...`` (same agreement, independent draws) and extra nuisance
  ``sky2, ...``; ``n_nuisance = 0`` drops sky.
* ``noise``: the exogenous distribution of the causes, the nuisance variables and the label noise, ``normal``
  or ``laplace`` (scaled to unit variance); ``sparsity``: the probability that a cause or nuisance variable
  is exactly 0 (sparse features, the regime in which superposition works; Elhage et al. 2022).
* ``heteroskedastic``: the label noise sd in training environment ``i`` is ``label_noise * (1 + h * i)``
  (deployment: ``label_noise``); with ``h > 0`` every per-environment coefficient rescales, which breaks
  methods that compare raw coefficients across environments.
* ``standardize``: inputs centred and scaled by moments measured once on a pilot training sample with a
  fixed seed (part of the scenario); ``input_offset`` adds a constant to every input.

The ``rendering`` knob picks how the observed variables become inputs (identity, rotation, superposition,
mlp, image; see `cowbench.generators.renderings`); the SCM and the truth do not depend on it, and the
fixed random maps use one constant seed, so they belong to the scenario rather than to the replicate.

Test-set size (issue 16; README "Test-set sizes"): ``n_test`` defaults to 2000; the standard suite runs ``n_test =
20000`` here, the size at which edit_score's test-sampling s.d. on one replicate is at most 0.025 = d/2 for d =
0.05 where the oracle's gain is as large as on cow (0.015 there; it scales as 1/(gain sqrt(n_test)), so small-gain
scenarios stay above it: the README lists the measured values).
"""

from __future__ import annotations

import math

import numpy as np

from cowbench.data import Truth
from cowbench.errors import InputError
from cowbench.generators._cow_parts import size_knobs, sizes
from cowbench.generators.knobs import choice, integer, preset, real, real_tuple, scenario_family
from cowbench.generators.renderings import (
    AffineRendering,
    ImageRendering,
    MLPRendering,
    RotationRendering,
    SuperpositionRendering,
)
from cowbench.generators.scm import SCM, Environment, IdentityRendering, Rendering, Variable

RENDERINGS = ("identity", "rotation", "superposition", "mlp", "image")
FORMS = ("linear", "and", "or", "xor")
RENDER_SEED = 0  # the fixed random maps are part of the scenario: one constant seed, not the replicate's
PILOT_SEED = 0  # the pilot sample that measures the standardisation moments
IMAGE_ATTRIBUTES = {"moo": "blob", "tail": "stroke", "grass": "bottom_band", "sky": "top_band"}

KNOBS = (
    real_tuple("agreement_train", (0.9, 0.8), 0.0, 1.0,
               "P(grass = cow) in each training environment; its length is the number of environments",
               max_len=16),
    real("agreement_test", 0.1, 0.0, 1.0, "P(grass = cow) at deployment (test_ood)"),
    real("coef_moo", 1.0, -10.0, 10.0, "coefficient of moo in the probit index of cow"),
    real("coef_tail", 1.0, -10.0, 10.0, "coefficient of tail in the probit index of cow"),
    real("label_noise", 0.5, 0.0, 10.0, "sd of the noise in the probit index of cow"),
    real("measurement_noise", 1.0, 0.0, 10.0, "sd of the measurement noise on the causes' inputs"),
    *size_knobs(),
    choice("rendering", "identity", RENDERINGS, "how the observed variables become the inputs x"),
    integer("render_dim", 0, 0, 4096,
            "input dimension for rotation (>= number of observed variables), superposition (1 to that number "
            "- 1) and mlp (1 to 4096); 0 = that rendering's default; must be 0 for identity and image"),
    choice("causal_form", "linear", FORMS, "how moo and tail enter cow's index: linear, or and/or/xor of their signs"),
    integer("n_causal", 2, 2, 50, "number of causes: moo, tail, then cause3, cause4, ..."),
    real("coef_extra", 0.5, -10.0, 10.0, "coefficient of each extra cause (cause3, ...) in cow's index"),
    integer("n_spurious", 1, 1, 50, "number of anti-causal spurious variables: grass, then grass2, ..."),
    integer("n_nuisance", 1, 0, 50, "number of nuisance variables: sky, then sky2, ... (0: none)"),
    choice("noise", "normal", ("normal", "laplace"),
           "distribution of the causes, nuisance variables and label noise (unit variance)"),
    real("heteroskedastic", 0.0, 0.0, 10.0,
         "label noise sd in training environment i is label_noise * (1 + heteroskedastic * i)"),
    integer("standardize", 0, 0, 1, "1: centre and scale every input by moments of a fixed pilot training sample"),
    real("input_offset", 0.0, -100.0, 100.0, "a constant added to every input (after standardisation)"),
    real("sparsity", 0.0, 0.0, 0.99, "P(a cause or nuisance variable is exactly 0): sparse features, as superposition "
         "needs (Elhage et al. 2022)"),
)


def _names(n_causal: int, n_spurious: int, n_nuisance: int) -> tuple[list[str], list[str], list[str]]:
    causes = ["moo", "tail"] + [f"cause{i}" for i in range(3, n_causal + 1)]
    spurious = ["grass"] + [f"grass{i}" for i in range(2, n_spurious + 1)]
    nuisance = (["sky"] + [f"sky{i}" for i in range(2, n_nuisance + 1)]) if n_nuisance else []
    return causes, spurious, nuisance


def _exogenous(noise: str, sparsity: float):
    scale = 1.0 if noise == "normal" else 1.0 / math.sqrt(2.0)  # Laplace(0, 1) has variance 2
    # sparse features: exactly 0 when |u| falls below the quantile that has mass `sparsity` (one draw per unit,
    # so sparsity needs no extra exogenous variable); normal: P(|u| < c) = 2 Phi(c) - 1
    if sparsity == 0:
        cut = 0.0
    elif noise == "normal":
        from scipy.stats import norm

        cut = float(norm.ppf(0.5 + sparsity / 2))
    else:
        cut = -math.log(1 - sparsity)  # Laplace(0, 1): P(|u| < c) = 1 - exp(-c)

    def draw(parents, u, params):
        return np.where(np.abs(u) < cut, 0.0, scale * u)

    return draw, scale


def _cow_equation(form: str, extra: list[str], scale: float):
    def equation(parents, u, params):
        moo, tail = parents["moo"], parents["tail"]
        if form == "linear":
            index = params["coef_moo"] * moo + params["coef_tail"] * tail
        else:
            a, b = moo > 0, tail > 0
            g = {"and": a & b, "or": a | b, "xor": a ^ b}[form]
            index = params["coef_moo"] * (2.0 * g - 1.0)
        for name in extra:
            index = index + params["coef_extra"] * parents[name]
        return (index + params["label_noise"] * scale * u > 0).astype(np.float64)

    return equation


def _grass(parents, u, params):
    cow = parents["cow"]
    return np.where(u < params["agreement"], cow, 1.0 - cow)


def _rendering(rendering: str, render_dim: int, observed: tuple[str, ...], measured: dict[str, str]) -> Rendering:
    k = len(observed)
    dims = {"rotation": (k, 4096, k), "superposition": (1, k - 1, max(1, k // 2)), "mlp": (1, 4096, 16)}
    if rendering not in dims:
        if render_dim != 0:
            raise InputError(f"knob render_dim={render_dim!r} is invalid: the {rendering} rendering has no "
                             "dimension to set; allowed 0")
        if rendering == "image":
            if set(observed) != set(IMAGE_ATTRIBUTES):
                raise InputError("knob rendering='image' is invalid with extra variables: the picture draws "
                                 "moo, tail, grass and sky only (set n_causal=2, n_spurious=1, n_nuisance=1)")
            return ImageRendering(tuple((v, IMAGE_ATTRIBUTES[v]) for v in observed), measured, RENDER_SEED)
        return IdentityRendering(observed, measured)
    low, high, default = dims[rendering]
    if render_dim == 0:
        render_dim = default
    elif not low <= render_dim <= high:
        raise InputError(f"knob render_dim={render_dim!r} is invalid: allowed an integer in [{low}, {high}] "
                         f"(or 0) for the {rendering} rendering")
    if rendering == "rotation":
        return RotationRendering(observed, measured, RENDER_SEED, d_out=render_dim)
    if rendering == "superposition":
        return SuperpositionRendering(observed, measured, RENDER_SEED, d_out=render_dim)
    return MLPRendering(observed, measured, RENDER_SEED, d_out=render_dim, hidden=32)


def density_at_zero(noise: str) -> float:
    """Density at 0 of a cause drawn as ``noise`` scaled to unit variance (before sparsity).

    Normal: ``1 / sqrt(2 pi)``; Laplace(0, b) with ``b = 1 / sqrt(2)`` (variance ``2 b^2 = 1``): ``1 / (2 b)``.
    """
    if noise == "normal":
        return 1.0 / math.sqrt(2 * math.pi)
    if noise == "laplace":
        return 1.0 / (2 * (1.0 / math.sqrt(2.0)))
    raise ValueError(f"no density for noise {noise!r}; allowed: normal, laplace")


def _world_coef(form: str, causes: list[str], coef_moo: float, coef_tail: float, coef_extra: float,
                noise: str, sparsity: float) -> tuple[dict, str]:
    """The world truth (average partial effects on the index) and, where it is undefined, why."""
    if form != "linear" and sparsity > 0 and coef_moo != 0:
        return {}, (f"causal_form={form} with sparsity={sparsity}: moo and tail are exactly 0 with probability "
                    f"{sparsity}, an atom at the kink of the index, so the average partial effect grows like "
                    "1/h and no world coefficient exists")
    if form == "linear":
        world = {"moo": coef_moo, "tail": coef_tail}
    elif form in ("and", "or"):
        # E[d/dv coef*(2g - 1)] = 2 coef f(0) P(the other cause is on (and) / off (or)); the causes are
        # symmetric and continuous, so that probability is 1/2
        world = dict.fromkeys(("moo", "tail"), 2 * coef_moo * density_at_zero(noise) * 0.5)
    else:
        # xor: the step at moo = 0 is up when tail <= 0 and down when tail > 0, each with probability 1/2
        world = {"moo": 0.0, "tail": 0.0}
    world.update(dict.fromkeys(causes[2:], coef_extra))
    return world, ""


def _identification(agreement_train: tuple[float, ...], heteroskedastic: float, n_effective_causes: int
                    ) -> tuple[str, str]:
    """The least access level, among those that do not reveal the answer, at which grass is identifiable."""
    if all(a in (0.0, 1.0) for a in agreement_train):
        return "counterfactual", ("grass is a function of cow in every training environment (no minority group): "
                                  "only interventions separate it from a cause")
    differ = len(set(agreement_train)) > 1
    if n_effective_causes >= 2 and not (heteroskedastic > 0 and differ):
        return "pooled", ("two independent causes make cow a collider (dependent given cow, independent "
                          "otherwise), while grass is independent of the causes given cow: a cause of cow would "
                          "be independent of them and dependent given cow, so the pooled distribution orients "
                          "cow -> grass (PC/FCI under faithfulness, measurement noise on the causes included)")
    if differ:
        return "env", ("P(grass = cow) differs across training environments while cow's mechanism does not; within "
                       "an environment the collider at cow orients cow -> grass")
    return "counterfactual", ("one spurious strength and fewer than two causes with an effect: cow -> grass and a "
                              "cause -> cow are Markov equivalent; only interventions separate them")


@scenario_family("cow", version="2", knobs=KNOBS)
def cow(*, agreement_train, agreement_test, coef_moo, coef_tail, label_noise, measurement_noise,
        n_train, n_val, n_test, rendering, render_dim, causal_form, n_causal, coef_extra, n_spurious, n_nuisance,
        noise, heteroskedastic, standardize, input_offset, sparsity) -> SCM:
    """Anti-causal grass, with P(grass = cow) set per environment (see the module docstring)."""
    causes, spurious, nuisance = _names(n_causal, n_spurious, n_nuisance)
    draw, scale = _exogenous(noise, sparsity)
    form_text = ("coef_moo*moo + coef_tail*tail" if causal_form == "linear"
                 else f"coef_moo*(2*[{causal_form}(moo > 0, tail > 0)] - 1)")
    extra_text = " + coef_extra*(" + " + ".join(causes[2:]) + ")" if len(causes) > 2 else ""
    variables = [Variable(c, "causal", draw, noise=noise, text=f"{c} ~ {noise}(0, 1)") for c in causes]
    variables.append(Variable("cow", "label", _cow_equation(causal_form, causes[2:], scale), parents=tuple(causes),
                              noise=noise, kind="binary",
                              text=f"cow = 1[{form_text}{extra_text} + label_noise_e*{noise}(0,1) > 0]"))
    variables += [Variable(g, "spurious", _grass, parents=("cow",), noise="uniform", kind="binary",
                           text=f"{g} = cow w.p. agreement_e, else 1 - cow") for g in spurious]
    variables += [Variable(n, "nuisance", draw, noise=noise, text=f"{n} ~ {noise}(0, 1)") for n in nuisance]
    params = {"coef_moo": coef_moo, "coef_tail": coef_tail, "coef_extra": coef_extra, "label_noise": label_noise,
              "agreement": agreement_train[0], "measurement_noise": measurement_noise}
    environments = tuple(
        Environment(f"train{i}", {"agreement": a, "label_noise": label_noise * (1 + heteroskedastic * i)})
        for i, a in enumerate(agreement_train))
    environments += (Environment("deploy", {"agreement": agreement_test}, deployment=True),)
    coefs = [coef_moo, coef_tail] if causal_form == "linear" else [coef_moo, coef_moo]
    effective = sum(c != 0 for c in coefs) + (len(causes) - 2) * (coef_extra != 0)
    ident, why = _identification(agreement_train, heteroskedastic, effective)
    world, undefined = _world_coef(causal_form, causes, coef_moo, coef_tail, coef_extra, noise, sparsity)
    if not undefined:
        world.update(dict.fromkeys(spurious + nuisance, 0.0))
    truth = Truth(roles={v.name: v.role for v in variables}, world_coef=world, link="probit",
                  identifiable_with=ident, identifiable_reason=why, world_undefined=undefined)
    observed = tuple(causes + spurious + nuisance)
    render = _rendering(rendering, render_dim, observed, dict.fromkeys(causes, "measurement_noise"))
    scm = SCM(tuple(variables), params, environments, render, truth, sizes(n_train, n_val, n_test))
    if standardize or input_offset:
        shift, spread = np.zeros(len(render.feature_names)), np.ones(len(render.feature_names))
        if standardize:
            pilot = scm.sample(PILOT_SEED).train.x.astype(np.float64)
            shift, spread = pilot.mean(0), np.where(pilot.std(0) > 0, pilot.std(0), 1.0)
        scm = SCM(tuple(variables), params, environments, AffineRendering(render, shift, spread, input_offset),
                  truth, sizes(n_train, n_val, n_test))
    return scm


# Named presets: the cow family with other defaults (each a scenario of its own name). Expected outcomes
# follow the methods catalog, §6.3 (row numbers S..).
preset("cow_xor", cow, causal_form="xor", doc=(
    "cow whose label is the xor of the signs of moo and tail (catalog S08). Expected: ERM leans on the linearly "
    "separable grass (simplicity bias; Shah et al. 2020, arXiv:2006.07710); group balancing helps only while "
    "minority groups exist (Idrissi et al. 2022, arXiv:2110.14503); the world track is not scored (xor has no "
    "linear truth), detection and editing are."))
preset("cow_rotated", cow, rendering="rotation", doc=(
    "cow seen through a fixed random rotation of its inputs, so no input column is a variable (catalog S14). "
    "Expected: methods that read answers off input columns are not applicable; concept-based erasure and "
    "probes work at the rotated direction (Belrose et al. 2023, arXiv:2306.03819; Geiger et al. 2023, "
    "arXiv:2303.02536); per-neuron patching and pruning fail."))
preset("cow_superposed", cow, rendering="superposition", doc=(
    "cow with its four variables superposed into two input dimensions (catalog S17). Expected: no linear "
    "read-out separates every variable, so linear erasure of grass also removes part of the causes and "
    "neuron pruning fails (Elhage et al. 2022, 'Toy models of superposition')."))
preset("cow_image", cow, rendering="image", doc=(
    "cow drawn as 16x16 greyscale pictures: a blob (moo), a stroke (tail), a textured bottom band (grass), a "
    "top band (sky). Expected: ERM uses the grass band as on tabular cow; only concept- or "
    "counterfactual-based methods give per-variable answers (Sagawa et al. 2020 Waterbirds analogue, "
    "arXiv:1911.08731)."))
preset("cow_single_env", cow, agreement_train=(0.85,), doc=(
    "cow with one training environment: invariance across environments cannot flag grass, though the pooled "
    "distribution still orients cow -> grass (the causes make cow a collider). Expected: environment-based "
    "methods abstain (ICP returns nothing; Peters et al. 2016, arXiv:1501.01332), which the detection score "
    "counts as chance since the scenario is identifiable; group-label methods still remove the reliance."))
preset("cow_separable", cow, agreement_train=(1.0, 1.0), doc=(
    "cow where grass equals cow in every training environment (catalog S23). Expected: no observational "
    "method can tell grass from a cause, so abstention is the correct answer; the logistic MLE diverges "
    "(complete separation) and ERM relies on grass entirely."))
