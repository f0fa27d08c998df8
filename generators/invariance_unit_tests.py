"""The Linear Unit-Tests for Invariance Discovery (Aubin et al. 2021) as three scenario families.

Re-implementation (read, not copied) of ``Example1``-``Example3`` of ``facebookresearch/InvarianceUnitTests``
(``scripts/datasets.py``), with their knobs ``dim_inv``, ``dim_spu``, ``n_envs`` and the scrambled variants
(``Example1s``-``Example3s``: the inputs times a random orthogonal matrix, our ``rotation`` rendering).
Per environment ``e``, with ``k = dim_inv`` invariant and ``m = dim_spu`` spurious inputs:

* ``iut_example1`` (regression, cause and effect of the target, heteroskedastic environments):
  ``x ~ N(0, sd_e^2 I_k)`` (causal), ``y_vec = x Wxy + sd_e N(0, I_k)`` (hidden), ``y = sum(y_vec)`` (the
  label, continuous), ``z = y_vec Wyz + N(0, I_m)`` (spurious: effects of the target). ``Wxy ~
  N(0,1)/k`` and ``Wyz ~ N(0,1)/m`` (seeded by ``weights_seed``); ``sd_e`` = 0.1, 1.5, 2 for the first three
  environments and ``10^U(-2, 1)`` beyond. World truth: ``x_i -> sum_j Wxy[i, j]``, ``z -> 0`` (identity link).
* ``iut_example2`` (cows and camels on grass and sand, binary): ``animal ~ Bernoulli(s_e)`` (hidden; 1 =
  cow), ``background = animal`` w.p. ``p_e`` else the other (hidden; 1 = grass),
  ``fg_i = fg_scale ((2 animal - 1) + N(0, 1/10))`` (causal), ``bg_j = bg_scale ((2 background - 1) +
  N(0, 1/10))`` (spurious), ``cow = 1[sum_i fg_i > 0]`` (the label). ``(p_e, s_e)`` = (0.95, 0.3), (0.97,
  0.5), (0.99, 0.7), then ``U(0.9, 1) x U(0.3, 0.7)``; ``fg_scale = 0.01``, ``bg_scale = 1`` (the peer's
  ``snr_fg``, ``snr_bg``: the animal is 100 times fainter than the background). The label is a noise-free
  threshold of the causes, so the world truth is ``fg_i -> 1`` (any positive multiple; scores are
  scale-free), ``bg -> 0``, link ``probit`` (its zero-noise limit). Groups are (cow, background), as in
  `four_groups`.
* ``iut_example3`` (a small invariant margin against a large spurious one, binary): ``y ~ Bernoulli(1/2)``
  (the label), ``inv_i = (1 - 2y) margin + sd N(0,1)`` (core: a child of the label with the same mechanism
  everywhere), ``spu_j = (1 - 2y) mu_e[j] + sd N(0,1)`` (spurious) with ``mu_e ~ N(0, I_m)`` a direction per
  environment (seeded), ``margin = sd = 0.1``. World truth: the invariant Bayes predictor's weight,
  ``inv_i -> -2 margin / sd^2`` (-20), ``spu -> 0`` (logistic link).

Deployment (``test_ood``; the peer has none, its test split is our ``test_bal``): Example1 multiplies
``Wyz`` by ``wyz_sign_test`` (-1: the effect of the target on z reversed) at scale ``sd_test``; Example2
uses ``p_test`` (0.05: background disagrees with the animal 95% of the time) and ``s_test``; Example3 uses
``mu_test = -sqrt(E) mean_e(mu_e)``, the reverse of the training directions' average, scaled to a typical
environment's norm (with one environment, exactly ``-mu_0``).

Differences from the peer, all in distribution-free details: our own seeded numpy draws (not torch's);
Example3's label is Bernoulli(1/2) per unit, where the peer makes each environment exactly half and half;
our ``test_bal`` permutes each spurious variable independently across the test environments, where the
peer permutes the spurious block jointly within each environment (``cowbench anchor
invariance_unit_tests`` rebuilds the peer's test split exactly with ``Scenario.intervene``); ``n_envs = 1``
gives the first environment alone (the peer's Example1 and Example2 have no environment then);
``dim_spu >= 1`` (the peer allows 0).

Expected behaviour (the peer's committed 50-seed table, dim_inv = dim_spu = 5, 3 environments, see
``results/anchors/invariance_unit_tests.md``; catalog §4.6-4.7): pooled ERM uses the spurious inputs
everywhere (test MSE 13.4 on Example1 against the oracle's 10.4; Example3 test error 0.48); IRMv1 and
V-REx need more environments than spurious dimensions in linear classification (Rosenfeld, Ravikumar &
Risteski 2021, arXiv:2010.05761); on Example2 the data are separable, so how far a fit gets depends on the
optimisation. Identifiability: with two or more environments the spurious mechanism's relation to the
label changes while the invariant one does not (``env``); with one environment Example1 and Example2 need
interventions (``counterfactual``) and Example3's two children of the label cannot be told apart
(``never``).

References
----------
Aubin, B., Słowik, A., Arjovsky, M., Bottou, L. & Lopez-Paz, D. (2021). Linear unit-tests for invariance
discovery. arXiv:2102.10867.

Test-set size (issue 16; README "Test-set sizes"): ``n_test`` defaults to 10000 (the peer's); the standard suite
runs ``n_test = 20000`` here, the size at which edit_score's test-sampling s.d. on one replicate is at most 0.025 =
d/2 for d = 0.05 where the oracle's gain is as large as on cow (0.015 there; it scales as 1/(gain sqrt(n_test)), so
small-gain scenarios stay above it: the README lists the measured values).
Continuous-label examples keep it: the world and detect tracks read no test split, and the model track's truth is
within 0.01 of itself at 2000.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from cowbench.access import NEVER
from cowbench.data import Split, Truth
from cowbench.generators._cow_parts import size_knobs, sizes
from cowbench.generators.knobs import integer, real, scenario_family
from cowbench.generators.renderings import RotationRendering
from cowbench.generators.scm import SCM, Environment, IdentityRendering, Variable

# the peer's first three environments; more are drawn at random (see each family)
EXAMPLE1_SDS = (0.1, 1.5, 2.0)
EXAMPLE2_PS = ((0.95, 0.3), (0.97, 0.5), (0.99, 0.7))


def _common_knobs() -> tuple:
    return (
        integer("dim_inv", 5, 1, 100, "number of invariant inputs"),
        integer("dim_spu", 5, 1, 100, "number of spurious inputs"),
        integer("n_envs", 3, 1, 10, "number of training environments (the first three are the peer's, more are drawn)"),
        integer("scrambled", 0, 0, 1, "1: inputs times a random orthogonal matrix (the peer's ExampleNs)"),
        integer("weights_seed", 0, 0, 2**31 - 1, "seed of the random matrices, extra environments and scrambling"),
        *size_knobs(n_train=10_000, n_val=10_000, n_test=10_000),
    )


def _weights_rng(weights_seed: int, family: int) -> np.random.Generator:
    # a separate stream per family, apart from the rendering's own (RotationRendering seeds by kind)
    return np.random.default_rng(np.random.SeedSequence(weights_seed, spawn_key=(7, family)))


def _rendering(observed: tuple[str, ...], scrambled: int, weights_seed: int):
    return RotationRendering(observed, None, weights_seed) if scrambled else IdentityRendering(observed)


def _names(prefix: str, n: int) -> list[str]:
    return [f"{prefix}{i + 1}" for i in range(n)]


# -- Example1 ----------------------------------------------------------------------------------------


def _scaled_noise(parents, u, params):
    return params["sd"] * u


def _linear_plus_noise(names: list[str], weights: np.ndarray, noise: str, gain: str | None = None):
    """``gain * sum_j w_j parent_j + params[noise] * u`` (``noise="one"``: unit noise)."""
    terms = [(n, float(w)) for n, w in zip(names, weights, strict=True)]

    def equation(parents, u, params):
        out = 0.0 * u
        for name, w in terms:
            out = out + w * parents[name]
        if gain is not None:
            out = params[gain] * out
        return out + (u if noise == "one" else params[noise] * u)

    return equation


def _sum(names: list[str]):
    def equation(parents, u, params):
        out = 0.0 * u
        for name in names:
            out = out + parents[name]
        return out

    return equation


@scenario_family("iut_example1", version="1", knobs=(
    *_common_knobs(),
    real("sd_test", 1.0, 0.0, 100.0, "sd_e of the deployment environment"),
    real("wyz_sign_test", -1.0, -10.0, 10.0, "multiplier of Wyz at deployment (1: unchanged, -1: reversed, 0: cut)"),
))
def iut_example1(*, dim_inv, dim_spu, n_envs, scrambled, weights_seed, n_train, n_val, n_test, sd_test,
                 wyz_sign_test) -> SCM:
    """Aubin et al.'s Example1: regression on a cause and an effect of the target, heteroskedastic envs."""
    rng = _weights_rng(weights_seed, 1)
    sds = list(EXAMPLE1_SDS[:n_envs]) + [float(10 ** rng.uniform(-2, 1)) for _ in range(n_envs - 3)]
    wxy = rng.standard_normal((dim_inv, dim_inv)) / dim_inv
    wyz = rng.standard_normal((dim_inv, dim_spu)) / dim_spu
    xs, ys, zs = _names("x", dim_inv), _names("y", dim_inv), _names("z", dim_spu)
    variables = [Variable(x, "causal", _scaled_noise, text=f"{x} = sd_e*N(0,1)") for x in xs]
    variables += [Variable(y, "hidden", _linear_plus_noise(xs, wxy[:, j], "sd"), parents=tuple(xs),
                           text=f"{y} = sum_i x_i Wxy[i,{j}] + sd_e*N(0,1)") for j, y in enumerate(ys)]
    variables.append(Variable("y", "label", _sum(ys), parents=tuple(ys), text="y = sum_j y_j"))
    variables += [Variable(z, "spurious", _linear_plus_noise(ys, wyz[:, k], "one", gain="wyz_sign"),
                           parents=tuple(ys), text=f"{z} = wyz_sign_e * sum_j y_j Wyz[j,{k}] + N(0,1)")
                  for k, z in enumerate(zs)]
    params = {"sd": sds[0], "wyz_sign": 1.0}
    environments = tuple(Environment(f"E{i}", {"sd": sd}) for i, sd in enumerate(sds))
    environments += (Environment("deploy", {"sd": sd_test, "wyz_sign": wyz_sign_test}, deployment=True),)
    world = {**{x: float(wxy[i].sum()) for i, x in enumerate(xs)}, **{z: 0.0 for z in zs}}
    if len(set(sds)) > 1:
        ident, why = "env", ("sd_e rescales x and the target's noise but not z's, so the regression on (x, z) "
                             "changes across environments while E[y | x] does not")
    else:
        ident, why = "counterfactual", ("one training distribution: a linear-Gaussian cause and effect are Markov "
                                        "equivalent")
    truth = Truth(roles={v.name: v.role for v in variables}, world_coef=world, link="identity",
                  identifiable_with=ident, identifiable_reason=why)
    return SCM(tuple(variables), params, environments, _rendering((*xs, *zs), scrambled, weights_seed), truth,
               sizes(n_train, n_val, n_test))


# -- Example2 ----------------------------------------------------------------------------------------


def _animal(parents, u, params):
    return (u < params["s"]).astype(np.float64)


def _background(parents, u, params):
    animal = parents["animal"]
    return np.where(u < params["p"], animal, 1.0 - animal)


def _picture(parent: str, scale: float):
    def equation(parents, u, params):
        return scale * ((2.0 * parents[parent] - 1.0) + u / np.sqrt(10.0))

    return equation


def _threshold(names: list[str]):
    total = _sum(names)

    def equation(parents, u, params):
        return (total(parents, u, params) > 0).astype(np.float64)

    return equation


@scenario_family("iut_example2", version="1", knobs=(
    *_common_knobs(),
    real("fg_scale", 0.01, 0.0, 100.0, "scale of the animal (invariant) inputs: the peer's snr_fg", open_low=True),
    real("bg_scale", 1.0, 0.0, 100.0, "scale of the background (spurious) inputs: the peer's snr_bg", open_low=True),
    real("p_test", 0.05, 0.0, 1.0, "P(background matches the animal) at deployment"),
    real("s_test", 0.5, 0.0, 1.0, "P(cow) at deployment"),
))
def iut_example2(*, dim_inv, dim_spu, n_envs, scrambled, weights_seed, n_train, n_val, n_test, fg_scale, bg_scale,
                 p_test, s_test) -> SCM:
    """Aubin et al.'s Example2: cows and camels on grass and sand (binary, separable)."""
    rng = _weights_rng(weights_seed, 2)
    ps = list(EXAMPLE2_PS[:n_envs]) + [(float(rng.uniform(0.9, 1.0)), float(rng.uniform(0.3, 0.7)))
                                        for _ in range(n_envs - 3)]
    fgs, bgs = _names("fg", dim_inv), _names("bg", dim_spu)
    variables = [
        Variable("animal", "hidden", _animal, noise="uniform", kind="binary", text="animal ~ Bernoulli(s_e), 1 = cow"),
        Variable("background", "hidden", _background, parents=("animal",), noise="uniform", kind="binary",
                 text="background = animal w.p. p_e, else 1 - animal; 1 = grass"),
    ]
    variables += [Variable(f, "causal", _picture("animal", fg_scale), parents=("animal",),
                           text=f"{f} = fg_scale*((2animal - 1) + N(0, 1/10))") for f in fgs]
    variables += [Variable(b, "spurious", _picture("background", bg_scale), parents=("background",),
                           text=f"{b} = bg_scale*((2background - 1) + N(0, 1/10))") for b in bgs]
    variables.append(Variable("cow", "label", _threshold(fgs), parents=tuple(fgs), kind="binary",
                              text="cow = 1[sum_i fg_i > 0]"))
    params = {"p": ps[0][0], "s": ps[0][1]}
    environments = tuple(Environment(f"E{i}", {"p": p, "s": s}) for i, (p, s) in enumerate(ps))
    environments += (Environment("deploy", {"p": p_test, "s": s_test}, deployment=True),)
    world = {**{f: 1.0 for f in fgs}, **{b: 0.0 for b in bgs}}
    if len({p for p, _ in ps}) > 1:
        ident, why = "env", ("P(background = animal) differs across training environments while the label's "
                             "mechanism does not")
    else:
        ident, why = "counterfactual", ("one background strength in training: do(bg) leaves the label unchanged, "
                                        "do(fg) does not, but no observational contrast shows it")
    truth = Truth(roles={v.name: v.role for v in variables}, world_coef=world, link="probit",
                  identifiable_with=ident, identifiable_reason=why)
    return _BackgroundGroups(tuple(variables), params, environments, _rendering((*fgs, *bgs), scrambled, weights_seed),
                             truth, sizes(n_train, n_val, n_test))


class _BackgroundGroups(SCM):
    """Groups ``(cow, background)``: the attribute, not the sign of the first noisy background input."""

    def make_split(self, name: str, exogenous, env: np.ndarray, do=None) -> Split:
        split = super().make_split(name, exogenous, env, do)
        spurious = self.truth.of_role("spurious")
        if any(v in (do or {}) for v in spurious):  # set by intervention: the attribute no longer drives them
            return split
        attr = split.concepts["background"].to_numpy().astype(np.int64)
        return dataclasses.replace(split, group=2 * split.y.astype(np.int64) + attr)


# -- Example3 ----------------------------------------------------------------------------------------


def _half(parents, u, params):
    return (u < 0.5).astype(np.float64)


def _child_of_label(mean_param: str | None, margin: float, sd: float):
    def equation(parents, u, params):
        sign = 1.0 - 2.0 * parents["y"]
        mean = params[mean_param] if mean_param is not None else margin
        return sign * mean + sd * u

    return equation


@scenario_family("iut_example3", version="1", knobs=(
    *_common_knobs(),
    real("margin", 0.1, 0.0, 10.0, "mean of each invariant input is +-margin (the peer's sep)", open_low=True),
    real("sd", 0.1, 0.001, 10.0, "sd of every input around its mean"),
))
def iut_example3(*, dim_inv, dim_spu, n_envs, scrambled, weights_seed, n_train, n_val, n_test, margin, sd) -> SCM:
    """Aubin et al.'s Example3: a small invariant margin against spurious directions that change by environment."""
    rng = _weights_rng(weights_seed, 3)
    mus = rng.standard_normal((n_envs, dim_spu))
    mu_test = -np.sqrt(n_envs) * mus.mean(0)
    invs, spus = _names("inv", dim_inv), _names("spu", dim_spu)
    variables = [Variable("y", "label", _half, noise="uniform", kind="binary", text="y ~ Bernoulli(1/2)")]
    variables += [Variable(v, "core", _child_of_label(None, margin, sd), parents=("y",),
                           text=f"{v} = (1 - 2y)*margin + sd*N(0,1)") for v in invs]
    variables += [Variable(v, "spurious", _child_of_label(f"mu{j}", margin, sd), parents=("y",),
                           text=f"{v} = (1 - 2y)*mu_e[{j}] + sd*N(0,1)") for j, v in enumerate(spus)]
    params = {f"mu{j}": float(mus[0, j]) for j in range(dim_spu)}
    environments = tuple(Environment(f"E{i}", {f"mu{j}": float(mus[i, j]) for j in range(dim_spu)})
                         for i in range(n_envs))
    environments += (Environment("deploy", {f"mu{j}": float(mu_test[j]) for j in range(dim_spu)}, deployment=True),)
    world = {**{v: -2.0 * margin / sd**2 for v in invs}, **{v: 0.0 for v in spus}}
    if n_envs > 1:
        ident, why = "env", ("the spurious direction mu_e changes across training environments while the "
                             "invariant margin does not")
    else:
        ident, why = NEVER, ("one spurious direction in training: inv and spu are both children of the label, so no "
                             "query that does not name the spurious inputs tells which one shifts at deployment")
    truth = Truth(roles={v.name: v.role for v in variables}, world_coef=world, link="logistic",
                  identifiable_with=ident, identifiable_reason=why)
    return SCM(tuple(variables), params, environments, _rendering((*invs, *spus), scrambled, weights_seed), truth,
               sizes(n_train, n_val, n_test))
