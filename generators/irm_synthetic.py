"""The linear chain of the IRM paper's synthetic experiment (Arjovsky et al. 2019, arXiv:1907.02893, §5.1).

Re-implementation of ``ChainEquationModel`` of ``facebookresearch/InvariantRiskMinimization``
(``code/experiment_synthetic/sem.py``), with ``ones=True`` (identity weights from x to y and from y to
z, as in the repository's default). With ``k = dim/2`` and ``e`` the environment's scale:

``h_i = e * N(0,1)`` (hidden), ``x_i = sum_j h_j Whx[j,i] + e * N(0,1)`` (causal),
``y_i = x_i + sum_j h_j Why[j,i] + s_y * N(0,1)`` (hidden per-coordinate label),
``y = sum_i y_i`` (the label, continuous), ``z_i = y_i + sum_j h_j Whz[j,i] + s_z * N(0,1)`` (spurious),

with ``(s_y, s_z) = (e, 1)`` when ``hetero = 1`` and ``(1, e)`` when ``hetero = 0``. ``hidden = 0``:
``Whx = I``, ``Why = Whz = 0`` (h is then only x's own extra noise); ``hidden = 1``: the three are
``N(0,1)/dim`` matrices drawn from ``weights_seed`` (h confounds x, y and z). Inputs: ``[x, z]``, or with
``scramble = 1`` ``[x, z] @ S`` with ``S`` a Haar-random orthogonal matrix (`RotationRendering`, seeded
by ``weights_seed``). World truth: ``x_i -> 1``, ``z_i -> 0`` (the repository's ``solution()``: row sums
of ``Wxy = I``); for the scrambled inputs a linear model ``b`` has variable coefficients ``S b``, which is
how the repository un-scrambles its estimates.

Environments: the training scales ``env_scales`` (the paper's 0.2, 2, 5) and one deployment scale
``deploy_scale``. The paper has no test environment; the default 10 is an extrapolation beyond the
training scales (larger than all of them), where the spurious z's relation to y changes the most.
``n_train`` rows per training environment (paper: 1000).

Expected (the paper's Table / the repository's ``synthetic_results.txt``; see ``results/anchors/``):
pooled least squares puts about 10% of the weight on z in the easy setting and much more with
``hetero = 1``; ICP is conservative (often nothing or too little selected); IRM is closest to the truth.
Identifiability: without the hidden confounder the environments shift x's distribution and z's
mechanism while ``E[y | x]`` stays invariant, so environment access suffices; with ``hidden = 1`` the
invariant regression is not the structural one, and only interventions tell z's role.
"""

from __future__ import annotations

import numpy as np

from cowbench.data import Truth
from cowbench.errors import InputError
from cowbench.generators.knobs import integer, real, real_tuple, scenario_family
from cowbench.generators.renderings import RotationRendering
from cowbench.generators.scm import SCM, Environment, IdentityRendering, Variable

KNOBS = (
    integer("dim", 10, 2, 40, "number of inputs (even): dim/2 causal x and dim/2 spurious z"),
    integer("hidden", 0, 0, 1, "1: a hidden confounder h feeds x, y and z through random weights"),
    integer("hetero", 0, 0, 1, "1: y's noise scales with the environment (else z's noise does)"),
    integer("scramble", 0, 0, 1, "1: inputs are [x, z] @ S with S a random orthogonal matrix"),
    integer("weights_seed", 0, 0, 2**31 - 1, "seed of S (scramble) and of Whx, Why, Whz (hidden)"),
    real_tuple("env_scales", (0.2, 2.0, 5.0), 0.0, 100.0, "scale e of each training environment"),
    real("deploy_scale", 10.0, 0.0, 100.0, "scale e of the deployment environment (the paper has none)"),
    integer("n_train", 1000, 10, 10_000_000, "units per training environment"),
    integer("n_val", 500, 10, 10_000_000, "validation units per training environment"),
    integer("n_test", 2000, 10, 10_000_000, "units in test_id and in test_ood"),
)


def _linear(names: list[str], weights: np.ndarray, own: str | None = None, noise: str | None = None):
    """Equation ``sum_j w_j * parent_j (+ own parent) + params[noise] * u`` (weights skip exact zeros)."""
    terms = [(n, float(w)) for n, w in zip(names, weights, strict=True) if w != 0.0]

    def equation(parents, u, params):
        out = params[noise] * u if noise is not None else 0.0 * u
        if own is not None:
            out = out + parents[own]
        for name, w in terms:
            out = out + w * parents[name]
        return out

    return equation


@scenario_family("irm_synthetic", version="1", knobs=KNOBS)
def irm_synthetic(*, dim, hidden, hetero, scramble, weights_seed, env_scales, deploy_scale, n_train, n_val,
                  n_test) -> SCM:
    """IRM's ChainEquationModel x -> y -> z with optional hidden confounder and scrambling (module docstring)."""
    if dim % 2:
        raise InputError(f"knob dim={dim!r} is invalid: allowed an even integer (half causal, half spurious)")
    k = dim // 2
    rng = np.random.default_rng(np.random.SeedSequence(weights_seed, spawn_key=(1,)))
    if hidden:
        whx, why, whz = (rng.standard_normal((k, k)) / dim for _ in range(3))
    else:
        whx, why, whz = np.eye(k), np.zeros((k, k)), np.zeros((k, k))
    hs, xs, ys, zs = ([f"{p}{i + 1}" for i in range(k)] for p in "hxyz")
    variables = []
    for i in range(k):
        variables.append(Variable(hs[i], "hidden", _linear([], np.zeros(0), noise="scale"),
                                  text=f"{hs[i]} = e*N(0,1)"))
    xvars, yvars, zvars = [], [], []
    for i in range(k):
        px = [h for h, w in zip(hs, whx[:, i], strict=True) if w != 0]
        xvars.append(Variable(xs[i], "causal", _linear(hs, whx[:, i], noise="scale"), parents=tuple(px),
                              text=f"{xs[i]} = sum_j h_j Whx[j,{i}] + e*N(0,1)"))
        py = [h for h, w in zip(hs, why[:, i], strict=True) if w != 0]
        yvars.append(Variable(ys[i], "hidden", _linear(hs, why[:, i], own=xs[i], noise="y_sd"),
                              parents=(xs[i], *py), text=f"{ys[i]} = {xs[i]} + sum_j h_j Why[j,{i}] + s_y*N(0,1)"))
        pz = [h for h, w in zip(hs, whz[:, i], strict=True) if w != 0]
        zvars.append(Variable(zs[i], "spurious", _linear(hs, whz[:, i], own=ys[i], noise="z_sd"),
                              parents=(ys[i], *pz), text=f"{zs[i]} = {ys[i]} + sum_j h_j Whz[j,{i}] + s_z*N(0,1)"))
    variables += xvars + yvars + zvars
    variables.append(Variable("y", "label", _linear(ys, np.ones(k)), parents=tuple(ys), text="y = sum_i y_i"))

    def env_params(e: float) -> dict[str, float]:
        return {"scale": e, "y_sd": e if hetero else 1.0, "z_sd": 1.0 if hetero else e}

    params = env_params(env_scales[0])
    environments = tuple(Environment(f"train{i}", env_params(e)) for i, e in enumerate(env_scales))
    environments += (Environment("deploy", env_params(deploy_scale), deployment=True),)
    observed = tuple(xs + zs)
    rendering = RotationRendering(observed, None, weights_seed) if scramble else IdentityRendering(observed)
    world = {**{v: 1.0 for v in xs}, **{v: 0.0 for v in zs}}
    if hidden:
        ident, why_ = "counterfactual", ("the hidden h confounds x and y: no invariant regression equals the "
                                         "structural one, only interventions on z reveal it has no effect")
    elif len(set(env_scales)) > 1:
        ident, why_ = "env", "the environments rescale x and z's mechanism while E[y | x] stays invariant"
    else:
        ident, why_ = "counterfactual", "one training distribution: the chain and its reverse are Markov equivalent"
    truth = Truth(roles={v.name: v.role for v in variables}, world_coef=world, link="identity",
                  identifiable_with=ident, identifiable_reason=why_)
    return SCM(tuple(variables), params, environments, rendering, truth,
               {"n_train": n_train, "n_val": n_val, "n_test": n_test})
