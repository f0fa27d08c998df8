"""Anchor ``irm_synthetic``: the IRM paper's synthetic linear-SEM table, reproduced beside its numbers.

`reproduce_irm_synthetic` re-runs the synthetic linear-SEM experiment of Arjovsky, Bottou, Gulrajani &
Lopez-Paz (2019, "Invariant Risk Minimization", arXiv:1907.02893, §5.1) on our `irm_synthetic` scenario
family with our methods, and `main` writes ``results/anchors/irm_synthetic.md``. Methods are reached
through the registry (the core never imports a concrete method module) and called in their *input-space
mode* (``fit_inputs``): with ``scramble = 1`` the inputs mix every variable (``input_map`` is None), so a
per-variable ``run`` is impossible; instead each method fits coefficients ``b`` on the input columns, and
``b`` is mapped to the variables exactly as the IRM repository's ``main.py`` un-scrambles its estimates:
inputs are ``v @ S``, so the variable coefficients are ``S @ b`` (``S`` = the rendering's matrix).

Run: ``cowbench anchor irm_synthetic``.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pandas as pd

from cowbench.registries import METHODS, make_scenario
from cowbench.store import write_text_atomic
from cowbench.version import __version__

# The repository's committed synthetic_results.txt, means over 200 repetitions per configuration
# (copied from reference/anchor-results.md): (causal MSE, non-causal MSE).
PUBLISHED: dict[tuple[int, int, int], dict[str, tuple[float, float]]] = {
    (0, 0, 0): {"ERM": (0.0091, 0.0090), "ICP": (0.0201, 0.0000), "IRM": (0.0029, 0.0024)},
    (0, 0, 1): {"ERM": (0.0092, 0.0090), "ICP": (0.8463, 0.0011), "IRM": (0.0041, 0.0035)},
    (0, 1, 0): {"ERM": (0.8208, 0.8207), "ICP": (1.0000, 0.8035), "IRM": (0.2565, 0.3333)},
    (0, 1, 1): {"ERM": (0.8228, 0.8222), "ICP": (0.9858, 0.1031), "IRM": (0.2572, 0.3328)},
    (1, 0, 0): {"ERM": (0.0189, 0.0179), "ICP": (0.9700, 0.0000), "IRM": (0.0152, 0.0142)},
    (1, 0, 1): {"ERM": (0.0203, 0.0182), "ICP": (1.0000, 0.0000), "IRM": (0.0190, 0.0159)},
    (1, 1, 0): {"ERM": (0.7738, 0.7742), "ICP": (1.0000, 0.0000), "IRM": (0.2149, 0.3399)},
    (1, 1, 1): {"ERM": (0.7794, 0.7735), "ICP": (1.0000, 0.0000), "IRM": (0.2203, 0.3401)},
}
CONFIGS = tuple(PUBLISHED)
# IRM's penalty weights tried under the paper's selection protocol (ours is on the standardised problem;
# the repository tries reg in {0, 1e-5, ..., 1e-1} on reg * risk + (1 - reg) * penalty)
IRM_GRID = (1e1, 1e2, 1e3, 1e4, 1e5)
METHODS_SHOWN = ("ERM", "ICP", "IRM", "IRM-all")
COMMAND = "cowbench anchor irm_synthetic"
DEFAULT_REPS = 20


def _errors(truth: np.ndarray, estimate: np.ndarray) -> tuple[float, float]:
    """The repository's metric: MSE over the causal coordinates (truth != 0) and over the others."""
    causal = truth != 0
    return (float(np.mean((truth[causal] - estimate[causal]) ** 2)),
            float(np.mean((truth[~causal] - estimate[~causal]) ** 2)))


def _lstsq(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, float]:
    z = np.column_stack([np.ones(len(x)), x])
    coef = np.linalg.lstsq(z, y, rcond=None)[0]
    return coef[1:], float(coef[0])


def _input_space_estimates(x: np.ndarray, y: np.ndarray, env: np.ndarray) -> dict[str, np.ndarray]:
    """ERM, ICP, IRM (the repository's parametrisation and protocol) and irm_linear's defaults, on the inputs."""
    icp_cls, irm_cls = METHODS.get("icp"), METHODS.get("irm_linear")
    out = {"ERM": _lstsq(x, y)[0]}
    icp = icp_cls(alpha=0.05).fit_inputs(x, y, env)
    out["ICP"] = icp["coef"] if icp["coef"] is not None else np.zeros(x.shape[1])  # nothing accepted: zeros
    # the paper's protocol: fit on all environments but the last, choose lambda by the squared error on it
    last = np.unique(env)[-1]
    fit, val = env != last, env == last
    best = (np.inf, None)
    for lam in IRM_GRID:
        w, b = irm_cls(lam=lam, dummy="matrix").fit_inputs(x[fit], y[fit], env[fit], "continuous")
        err = float(np.mean((x[val] @ w + b - y[val]) ** 2))
        if err < best[0]:
            best = (err, w)
    out["IRM"] = best[1]
    out["IRM-all"] = irm_cls().fit_inputs(x, y, env, "continuous")[0]
    return out


def reproduce_irm_synthetic(n_reps: int = 20, seed: int = 0) -> pd.DataFrame:
    """One row per (configuration, repetition, method) with the causal and non-causal coefficient MSE.

    Repetition ``r`` of configuration ``c`` uses its own ``weights_seed`` (the scrambling matrix and the
    hidden weights) and its own data seed, both drawn from ``SeedSequence([seed, c, r])``, as the
    repository draws a new SEM per repetition.
    """
    rows = []
    for c, (hidden, hetero, scramble) in enumerate(CONFIGS):
        for r in range(n_reps):
            weights_seed, data_seed = (int(s) for s in np.random.SeedSequence([seed, c, r]).generate_state(2) >> 1)
            scn = make_scenario("irm_synthetic", hidden=hidden, hetero=hetero, scramble=scramble,
                                   weights_seed=weights_seed)
            train = scn.sample(data_seed).train
            x = np.asarray(train.x, dtype=np.float64)
            y = np.asarray(train.y, dtype=np.float64)
            observed = scn.truth.observed
            truth = np.array([scn.truth.world_coef[v] for v in observed])
            if scramble:
                to_vars = scn.scm.rendering.matrix  # (k, d): inputs = v @ S, so variable coefficients = S @ b
            else:
                to_vars = np.zeros((len(observed), x.shape[1]))
                for i, v in enumerate(observed):
                    to_vars[i, scn.input_map[v]] = 1.0
            for method, b in _input_space_estimates(x, y, np.asarray(train.env)).items():
                err_c, err_n = _errors(truth, to_vars @ b)
                rows.append({"hidden": hidden, "hetero": hetero, "scramble": scramble, "rep": r,
                             "weights_seed": weights_seed, "data_seed": data_seed, "method": method,
                             "err_causal": err_c, "err_noncausal": err_n})
    return pd.DataFrame(rows)


def _table(df: pd.DataFrame) -> str:
    means = df.groupby(["hidden", "hetero", "scramble", "method"])[["err_causal", "err_noncausal"]].mean()
    header = ("| config (hidden, hetero, scramble) | ERM ours | ERM paper | ICP ours | ICP paper | IRM ours | "
              "IRM paper | irm_linear defaults, all envs |")
    lines = [header, "|" + "---|" * 8]
    for cfg in CONFIGS:
        cells = ["{},{},{}".format(*cfg)]
        for m in ("ERM", "ICP", "IRM"):
            ours = means.loc[(*cfg, m)]
            cells.append(f"{ours.err_causal:.4f} / {ours.err_noncausal:.4f}")
            pub = PUBLISHED[cfg][m]
            cells.append(f"{pub[0]:.4f} / {pub[1]:.4f}")
        extra = means.loc[(*cfg, "IRM-all")]
        cells.append(f"{extra.err_causal:.4f} / {extra.err_noncausal:.4f}")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


DIFFERENCES = """\
Where and why our numbers differ from the repository's:

* **Protocol kept.** Same SEM (`ChainEquationModel` with `ones=True`, dim = 10), same environments (scales
  0.2, 2, 5; 1000 rows each), a new SEM (scrambling matrix, hidden weights) and new data per repetition,
  the same metric (MSE over the causal and over the non-causal variable coefficients; scrambled
  estimates mapped back to the variables by `S @ b`, as the committed `main.py` does - the older
  `solution()` that returned `S^T w` in input space would leave no non-causal coordinate under
  scrambling), ICP's "nothing accepted" counted as all zeros, and IRM's selection rule (fit on the first
  two environments, choose the penalty weight by squared error on the third).
* **ERM** agrees with the repository in all eight rows within about 2.5 of our standard errors (ours
  fits an intercept, theirs does not; the data are centred, so only sampling noise differs).
* **ICP** reproduces the repository's pattern: near-exact when it selects (0,0,0; one of our 20
  repetitions rejected every set, which alone makes the mean 0.05 against their 0.02 over 200), all
  zeros under a hidden confounder, mostly all zeros when scrambled (every input mixes causes and effects,
  so few subsets are invariant), and in (0,1,0) both implementations end up with weight on the spurious
  coordinates (non-causal error 0.84 against their 0.80) and none on the causes: y's noise grows with
  the environment, which breaks the invariance ICP tests for the causal set itself. Our implementation
  differs in details only: it also tests
  the empty set (as Peters et al.; the repository skips it), regresses with an intercept, and uses the
  same Bonferroni factor (2|E| times the smallest of the 2|E| p-values; the repository's `|E| * 2 min(p_mean,
  p_var)` is the same). Row (0,1,1): 1.00 / 0.00 against 0.99 / 0.10, a difference of a few repetitions.
* **IRM** uses the repository's parametrisation (`dummy="matrix"`: `w = Phi 1`, penalty on `Phi'` times
  each environment's risk gradient) and its selection rule, and keeps its ordering: IRM well below ERM
  wherever the label noise changes (hetero = 1: 0.28-0.34 causal MSE against ERM's 0.77-0.82; the
  repository 0.21-0.26), better than ERM in the easy rows (0.006-0.007 against 0.009; the repository
  0.003-0.004), identical with and without scrambling (the objective is invariant to invertible linear
  maps of the inputs). Our errors are 1.3-2 times the repository's, and in the hidden-confounder rows
  without heteroskedasticity ours (0.029-0.036) is slightly worse than ERM (0.020-0.023) where theirs is
  slightly better (0.015-0.019 against 0.019-0.020). Likely causes, not separated here: the repository
  starts `Phi` at the identity (so `w` starts at all ones, the causal value on x) and runs Adam for
  100 000 steps at lr 1e-3, which acts as implicit regularisation, while we start from zero and solve
  each penalty weight to convergence by L-BFGS on standardised data; our penalty weights (10 to 1e5 on
  the standardised problem) are not the repository's (`reg` in {0, 1e-5, ..., 0.1}, including a pure
  penalty without risk).
* **The selection rule, not the penalty, limits IRM in the hetero = 1 rows.** The third environment has
  the largest label noise, and the squared error there favours a weakly penalised, partly spurious
  solution. The last column (our default scalar IRMv1, penalty 1e4, all three environments, no
  selection) reaches 0.08-0.14 causal / 0.04 non-causal MSE there - a reminder that reported IRM numbers
  depend on the model-selection rule (Gulrajani & Lopez-Paz 2021).
* **Repetitions.** {n_reps} per configuration here against 200 in the repository; see the standard errors
  below.
"""


def main(n_reps: int = 20, seed: int = 0, out: str | Path | None = None) -> pd.DataFrame:
    """Run `reproduce_irm_synthetic` and write ``results/anchors/irm_synthetic.md``; return the rows."""
    start = time.perf_counter()
    df = reproduce_irm_synthetic(n_reps=n_reps, seed=seed)
    elapsed = time.perf_counter() - start
    path = Path(out) if out is not None else Path("results/anchors/irm_synthetic.md")  # like `run`: under the cwd
    path.parent.mkdir(parents=True, exist_ok=True)
    sem = df.groupby(["hidden", "hetero", "scramble", "method"])[["err_causal", "err_noncausal"]].agg(
        lambda s: s.std(ddof=1) / np.sqrt(len(s)))
    means = df.groupby(["hidden", "hetero", "scramble", "method"])[["err_causal", "err_noncausal"]].mean()
    detail = means.join(sem, rsuffix="_se").reset_index()
    detail_md = "\n".join(["| hidden | hetero | scramble | method | causal MSE (se) | non-causal MSE (se) |",
                           "|---|---|---|---|---|---|"] + [
        f"| {r.hidden} | {r.hetero} | {r.scramble} | {r.method} | {r.err_causal:.4f} ({r.err_causal_se:.4f}) | "
        f"{r.err_noncausal:.4f} ({r.err_noncausal_se:.4f}) |" for r in detail.itertuples()])
    text = f"""# IRM synthetic linear SEM: our reproduction beside the published numbers

Generated by `{COMMAND}` (function `cowbench.anchors.main(n_reps={n_reps}, seed={seed})`), cowbench
{__version__}, {n_reps} repetitions per configuration, {elapsed:.0f} s on this machine. Do not edit by hand.

Source of the published numbers: Arjovsky, Bottou, Gulrajani & Lopez-Paz (2019), "Invariant Risk
Minimization", arXiv:1907.02893; means over the 200 repetitions per configuration of the repository's
committed `code/experiment_synthetic/synthetic_results.txt` (`facebookresearch/InvariantRiskMinimization`),
as listed in `reference/anchor-results.md`. Each cell: causal MSE / non-causal MSE of the estimated
coefficients (variable space; dim = 10: 5 causal, 5 spurious). Scenario: `irm_synthetic` with
`hidden`, `hetero`, `scramble` as in the first column, other knobs at their defaults.

Methods: **ERM** = pooled least squares on all three environments; **ICP** = our `icp` (alpha = 0.05) in
input-space mode, all zeros when it accepts nothing; **IRM** = our `irm_linear` with `dummy="matrix"` (the
repository's parametrisation: `w = Phi 1`, penalty `sum_e ||Phi' grad_w R_e||^2`) under the repository's
selection protocol (penalty weight in {{{", ".join(f"{g:g}" for g in IRM_GRID)}}} fitted on the environments
0.2 and 2 and chosen by squared error on the environment 5); last column: `irm_linear` with its defaults
(scalar dummy, λ = 1e4) on all three environments, no selection, for reference.

{_table(df)}

{DIFFERENCES.replace("{n_reps}", str(n_reps))}
Means with standard errors over repetitions:

{detail_md}
"""
    write_text_atomic(path, text)  # temp file, fsync, rename: a killed run never leaves half a table
    return df
