"""Anchor ``invariance_unit_tests``: Aubin et al. (2021)'s linear unit-tests beside the peer's committed table.

The scenarios are our ``iut_example1``-``iut_example3`` families at the peer's default experiment
(``dim_inv = dim_spu = 5``, three environments, 10,000 units per environment and split), plain and
scrambled. The peer's protocol, re-implemented (``facebookresearch/InvarianceUnitTests``, ``scripts/main.py``
and ``collect_results.py``, read, not copied):

* **test split**: every training environment again, with the spurious block of inputs permuted *jointly*
  across the units *of that environment* (`peer_test_split`; our ``test_bal`` permutes each spurious
  variable on its own across all test environments, so it is rebuilt here with ``Scenario.intervene``);
  the reported error is the mean over environments of the per-environment test error (MSE for Example1,
  0-1 error of ``logit > 0`` otherwise);
* **Oracle**: ERM trained on training and validation data made like the test split;
* **selection**: hyperparameters chosen by the summed per-environment error on a validation split drawn
  like the training data (training-domain validation). The peer picks one setting per (dataset, model)
  from the mean over its 50 data seeds; we pick per repetition (the rule of DESIGN.md).

Rows: ERM = our least squares (``ols``'s estimator) for Example1 and logistic regression at ``logistic``'s
defaults (C = 1e4) otherwise, both with an intercept; ``irm_linear`` and ``vrex_linear`` at their defaults
and selected over ``PENALTY_GRID``; Oracle; and, on fewer repetitions, the peer's own optimisation
re-implemented in torch (`peer_protocol_fit`: a ``Linear`` layer at torch's default initialisation, full-batch
Adam, lr 1e-3, 10,000 steps, raw inputs; IRMv1 with a scale and an offset dummy and the objective
``0.1 * mean risk + 0.9 * sum_e ||grad_dummies R_e||^2``) at the peer's default hyperparameters.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pandas as pd

from cowbench.anchors._common import cached, fmt, mean_se, method_class, rep_seeds, runtime_note, trial_rows, write
from cowbench.registries import make_scenario
from cowbench.version import __version__

NAME = "invariance_unit_tests"
COMMAND = f"cowbench anchor {NAME}"
DEFAULT_REPS = 4
PEER_REPS = 1  # repetitions of the peer-protocol rows (10,000 autograd steps each: about a minute per fit here)
EXAMPLES = (1, 2, 3)
# the peer's committed 50-seed table (reference/anchor-results.md): test MSE (Example1), test error (2, 3)
PUBLISHED = {
    1: {"ERM": 13.36, "IRMv1": 11.15, "ANDMask": 10.59, "IGA": 17.47, "Oracle": 10.42},
    2: {"ERM": 0.42, "IRMv1": 0.45, "ANDMask": 0.44, "IGA": 0.45, "Oracle": 0.00},
    3: {"ERM": 0.48, "IRMv1": 0.48, "ANDMask": 0.34, "IGA": 0.47, "Oracle": 0.013},
}
PENALTY_GRID = (1e1, 1e2, 1e3, 1e4, 1e5)
ROWS = (  # (row label, published column it sits beside)
    ("ERM (ols / logistic)", "ERM"),
    ("ERM, peer's optimisation (Adam 1e-3, raw inputs)", "ERM"),
    ("irm_linear, defaults (lam 1e4)", "IRMv1"),
    ("irm_linear, train-domain validation", "IRMv1"),
    ("IRMv1, peer's optimisation (Adam 1e-3, raw inputs)", "IRMv1"),
    ("vrex_linear, defaults (beta 1e3)", None),
    ("vrex_linear, train-domain validation", None),
    ("Oracle (ERM on spurious-permuted data)", "Oracle"),
    ("ERM on the subject MLP (erm_retrain)", "ERM"),
    ("IRMv1 on the subject MLP (irm_mlp)", "IRMv1"),
    ("V-REx on the subject MLP (vrex_mlp)", None),
)
# the methods that retrain the subject architecture, run through the harness's job path at their defaults
MLP_METHODS = {ROWS[8][0]: "erm_retrain", ROWS[9][0]: "irm_mlp", ROWS[10][0]: "vrex_mlp"}
MLP_REPS = 2


def peer_test_split(scn, split, rng: np.random.Generator):
    """``split`` with the spurious variables permuted jointly within each environment (the peer's test mode)."""
    perm = np.arange(len(split))
    for e in np.unique(split.env):
        rows = np.flatnonzero(split.env == e)
        perm[rows] = rng.permutation(rows)
    do = {v: split.concepts[v].to_numpy(dtype=np.float64)[perm] for v in scn.truth.of_role("spurious")}
    return scn.intervene(split, do)


def erm_fit(x: np.ndarray, y: np.ndarray, kind: str) -> tuple[np.ndarray, float]:
    """Our pooled ERM with an intercept: ``ols``'s least squares, or logistic regression as ``logistic`` fits it."""
    x = np.asarray(x, dtype=np.float64)
    if kind == "continuous":
        z = np.column_stack([np.ones(len(x)), x])
        coef = np.linalg.lstsq(z, np.asarray(y, dtype=np.float64), rcond=None)[0]
        return coef[1:], float(coef[0])
    from sklearn.linear_model import LogisticRegression

    fit = LogisticRegression(C=1e4, max_iter=1000, tol=1e-8).fit(x, y)  # the logistic method's defaults
    return fit.coef_.ravel().astype(np.float64), float(fit.intercept_[0])


class _Moments:
    """The squared loss of ``s * (x.w + b) + o`` on some rows, exactly, from their second moments.

    With ``z = [x, 1]``: ``mean (s z.t + o - y)^2 = s^2 t'Gt + 2 s o t'm + o^2 - 2 s t'c - 2 o ybar + v``
    (``G = z'z/n``, ``m = mean z``, ``c = z'y/n``, ``v = mean y^2``): the full-batch MSE and its gradients
    without a pass over the rows, so the peer's 10,000 Adam steps on Example1 cost milliseconds.
    """

    def __init__(self, x, y):
        import torch

        z = np.column_stack([np.asarray(x, dtype=np.float64), np.ones(len(x))])
        y = np.asarray(y, dtype=np.float64)
        self.g = torch.tensor(z.T @ z / len(z))
        self.m = torch.tensor(z.mean(0))
        self.c = torch.tensor(z.T @ y / len(z))
        self.ybar, self.v = float(y.mean()), float(y @ y / len(y))

    def __call__(self, t, s=1.0, o=0.0):
        return (s * s * (t @ self.g @ t) + 2 * s * o * (t @ self.m) + o * o - 2 * s * (t @ self.c)
                - 2 * o * self.ybar + self.v)


def peer_protocol_fit(x: np.ndarray, y: np.ndarray, env: np.ndarray, kind: str, *, irm: bool, steps: int = 10_000,
                      lr: float = 1e-3, irm_lambda: float = 0.9, seed: int = 0) -> tuple[np.ndarray, float]:
    """The peer's linear model and optimiser at its default hyperparameters (our implementation).

    ``torch.nn.Linear`` at torch's default initialisation (seeded), full-batch Adam on the raw inputs, no
    weight decay; ERM minimises the pooled loss (MSE or BCE with logits); IRMv1 multiplies the output by a
    dummy scale and adds a dummy offset and minimises ``(1 - irm_lambda) * mean_e R_e + irm_lambda *
    sum_e ||d R_e / d(scale, offset)||^2`` over the layer's weights only (the dummies stay at 1 and 0).
    The squared loss is computed from second moments (`_Moments`, exact). Returns the affine map ``(w, b)``.
    """
    import torch

    torch.manual_seed(seed)
    layer = torch.nn.Linear(x.shape[1], 1)
    # float32 on the rows, as the peer runs; float64 for the moments (their cancellations need it)
    dtype = torch.float64 if kind == "continuous" else torch.float32
    theta = torch.cat([layer.weight.detach().ravel(), layer.bias.detach()]).to(dtype).requires_grad_(True)
    opt = torch.optim.Adam([theta], lr=lr)
    groups = [np.flatnonzero(env == e) for e in np.unique(env)] if irm else [np.arange(len(x))]
    if kind == "continuous":
        risks = [_Moments(x[rows], y[rows]) for rows in groups]
    else:
        data = [(torch.tensor(np.column_stack([x[rows], np.ones(len(rows))]), dtype=dtype),
                 torch.tensor(y[rows], dtype=dtype)) for rows in groups]

        def bce(z, yy):
            return lambda t, s=1.0, o=0.0: torch.nn.functional.binary_cross_entropy_with_logits(s * (z @ t) + o, yy)

        risks = [bce(z, yy) for z, yy in data]
    scale = torch.ones((), dtype=dtype, requires_grad=True)
    offset = torch.zeros((), dtype=dtype, requires_grad=True)
    for _ in range(int(steps)):
        opt.zero_grad()
        if irm:
            rs, penalty = [], 0.0
            for risk in risks:
                r = risk(theta, scale, offset)
                g_s, g_o = torch.autograd.grad(r, (scale, offset), create_graph=True)
                penalty = penalty + g_s**2 + g_o**2
                rs.append(r)
            loss = (1 - irm_lambda) * torch.stack(rs).mean() + irm_lambda * penalty
        else:
            loss = risks[0](theta)
        loss.backward()
        opt.step()
    t = theta.detach().double().numpy()
    return t[:-1].copy(), float(t[-1])


def prediction_errors(pred: np.ndarray, split, kind: str) -> np.ndarray:
    """Per-environment error of predictions ``pred`` (MSE, or 0-1 error of ``pred > 0``)."""
    out = []
    for e in np.unique(split.env):
        m = split.env == e
        wrong = (pred[m] - split.y[m]) ** 2 if kind == "continuous" else (pred[m] > 0) != split.y[m]
        out.append(np.mean(wrong))
    return np.array(out)


def env_errors(w: np.ndarray, b: float, split, kind: str) -> np.ndarray:
    """Per-environment test error of the affine predictor ``x.w + b`` (see `prediction_errors`)."""
    return prediction_errors(split.x.astype(np.float64) @ w + b, split, kind)


def _selected(cls, key, grid, train, val, kind):
    """Train-domain validation: the grid value whose fit has the lowest summed per-environment val error."""
    best = None
    x, y = train.x.astype(np.float64), train.y.astype(np.float64)
    for value in grid:
        w, b = cls(**{key: value}).fit_inputs(x, y, train.env, kind)
        score = float(env_errors(w, b, val, kind).sum())
        if best is None or score < best[0]:
            best = (score, value, w, b)
    return best[1], best[2], best[3]


def reproduce(n_reps: int = DEFAULT_REPS, seed: int = 0, *, examples=EXAMPLES, scrambled=(0, 1),
              n: int = 10_000, peer_reps: int = PEER_REPS, peer_steps: int = 10_000,
              grid=PENALTY_GRID) -> pd.DataFrame:
    """One row per (example, scrambled, repetition, method) with the peer's test error (mean over environments).

    Repetition ``r`` draws its own scenario (``weights_seed``: Wxy, Wyz, the spurious directions, the
    scrambling) and data, as the peer draws both from its ``data_seed``. ``n`` units per environment and
    split. The peer-protocol rows run on the first ``peer_reps`` repetitions of the unscrambled examples
    (0 leaves them out).
    """
    irm_cls, vrex_cls = method_class("irm_linear"), method_class("vrex_linear")
    rows = []
    for ex in examples:
        for scr in scrambled:
            for r in range(n_reps):
                weights_seed, data_seed, perm_seed = rep_seeds(seed, ex, scr, r, count=3)
                scn = make_scenario(f"iut_example{ex}", scrambled=scr, weights_seed=weights_seed, n_train=n,
                                       n_val=n, n_test=3 * n)
                kind = scn.scm.label_kind
                data = scn.sample(data_seed)
                rng = np.random.default_rng(perm_seed)
                test = peer_test_split(scn, data.test_id, rng)
                tr, val = data.train, data.val
                x, y, env = tr.x.astype(np.float64), tr.y.astype(np.float64), tr.env
                fits = {"ERM (ols / logistic)": erm_fit(x, y, kind)}
                fits["irm_linear, defaults (lam 1e4)"] = irm_cls().fit_inputs(x, y, env, kind)
                fits["vrex_linear, defaults (beta 1e3)"] = vrex_cls().fit_inputs(x, y, env, kind)
                chosen = {}
                for label, cls, key in (("irm_linear", irm_cls, "lam"), ("vrex_linear", vrex_cls, "beta")):
                    value, w, b = _selected(cls, key, grid, tr, val, kind)
                    fits[f"{label}, train-domain validation"] = (w, b)
                    chosen[f"{label}, train-domain validation"] = value
                oracle_train = peer_test_split(scn, tr, rng)
                fits["Oracle (ERM on spurious-permuted data)"] = erm_fit(oracle_train.x, oracle_train.y, kind)
                if r < peer_reps and scr == 0:  # unscrambled only, the published table's setting
                    for label, irm in (("ERM", False), ("IRMv1", True)):
                        fits[f"{label}, peer's optimisation (Adam 1e-3, raw inputs)"] = peer_protocol_fit(
                            x, y, env, kind, irm=irm, steps=peer_steps, seed=r)
                for method, (w, b) in fits.items():
                    errs = env_errors(w, b, test, kind)
                    rows.append({"example": ex, "scrambled": scr, "rep": r, "weights_seed": weights_seed,
                                 "data_seed": data_seed, "method": method, "test_error": float(errs.mean()),
                                 "worst_env_error": float(errs.max()),
                                 "id_error": float(env_errors(w, b, data.test_id, kind).mean()),
                                 "selected": chosen.get(method, np.nan)})
    return pd.DataFrame(rows)


def reproduce_mlp(n_reps: int = MLP_REPS, seed: int = 0, *, examples=EXAMPLES, n: int = 10_000) -> pd.DataFrame:
    """Rows of `MLP_METHODS` (unscrambled, defaults): the subject architecture trained by the harness's jobs.

    Repetition ``r`` uses the scenario draw of the linear rows' repetition ``r`` (same ``weights_seed``) and
    the harness's own replicate data (root seed ``seed``); the error is on the peer's test split made from
    that replicate's ``test_id``.
    """
    from cowbench.models import logits

    rows = []
    for ex in examples:
        for r in range(n_reps):
            weights_seed, _, perm_seed = rep_seeds(seed, ex, 0, r, count=3)
            scn = make_scenario(f"iut_example{ex}", weights_seed=weights_seed, n_train=n, n_val=n // 5,
                                   n_test=3 * n)
            kind = scn.scm.label_kind

            def extra(rep, output, scn=scn, kind=kind, perm_seed=perm_seed):
                test = peer_test_split(scn, rep.data.test_id, np.random.default_rng(perm_seed))
                out = {}
                for key, split in (("test_error", test), ("id_error", rep.data.test_id)):
                    pred = logits(output.edited, split.x).astype(np.float64)
                    out[key] = float(prediction_errors(pred, split, kind).mean())
                return out

            frame = trial_rows(scn, MLP_METHODS, n_reps=1, seed=seed, trials=1, extra=extra)
            for row in frame.itertuples():
                rows.append({"example": ex, "scrambled": 0, "rep": r, "weights_seed": weights_seed, "data_seed": -1,
                             "method": row.method, "test_error": row.test_error,
                             "worst_env_error": np.nan, "id_error": row.id_error, "selected": np.nan})
    return pd.DataFrame(rows)


def _table(df: pd.DataFrame) -> str:
    lines = []
    for ex in sorted(df.example.unique()):
        digits = 2 if ex == 1 else 3
        metric = "test MSE" if ex == 1 else "test error"
        lines += [f"### Example{ex} ({metric}, mean over the three environments)", "",
                  f"| method | ours | ours, scrambled (Example{ex}s) | peer's table (beside) | reps |",
                  "|---|---|---|---|---|"]
        for label, peer in ROWS:
            cells = []
            reps = set()
            for scr in (0, 1):
                sub = df[(df.example == ex) & (df.scrambled == scr) & (df.method == label)]
                if len(sub):
                    reps.add(len(sub))
                cells.append(fmt(*mean_se(sub.test_error), digits) if len(sub) else "-")
            pub = f"{peer} {PUBLISHED[ex][peer]:g}" if peer else "-"
            lines.append(f"| {label} | {cells[0]} | {cells[1]} | {pub} | {'/'.join(map(str, sorted(reps)))} |")
        others = ", ".join(f"{m} {PUBLISHED[ex][m]:g}" for m in ("ANDMask", "IGA"))
        lines += ["", f"Peer's other rows (no counterpart here): {others}.", ""]
    return "\n".join(lines)


def _selected_table(df: pd.DataFrame) -> str:
    sel = df[df.method.str.contains("validation")]
    out = sel.groupby(["example", "scrambled", "method"])["selected"].agg(
        lambda s: ", ".join(f"{v:g}: {c}" for v, c in s.value_counts().sort_index().items()))
    lines = ["| example | scrambled | method | chosen penalty weight: repetitions |", "|---|---|---|---|"]
    lines += [f"| {ex} | {scr} | {m} | {v} |" for (ex, scr, m), v in out.items()]
    return "\n".join(lines)


#: Within this many standard errors of our mean, a published number "agrees within seed noise".
AGREE_SE = 2.0


def agreement(mean: float, se: float, published: float) -> str:
    """The words the explanation uses for our mean (with its standard error) against a published number: "agree
    within seed noise" only within `AGREE_SE` standard errors, else how many standard errors apart. Generated,
    so a regenerated file never claims an agreement its numbers do not show."""
    if not np.isfinite(se) or se == 0:
        return f"differ by {abs(mean - published):.2f} (no standard error: a single repetition)"
    z = abs(mean - published) / se
    if z <= AGREE_SE:
        return f"agree within seed noise ({z:.1f} standard errors of our mean apart)"
    return (f"are {abs(mean - published):.2f} apart, {z:.1f} standard errors of our mean: close, but more than "
            "seed noise")


def _measured(df: pd.DataFrame) -> dict[str, float]:
    """Numbers the explanation quotes (so a regenerated file never quotes stale ones)."""
    def m(ex, method, scr=0, col="test_error"):
        sub = df[(df.example == ex) & (df.scrambled == scr) & (df.method == method)]
        return float(sub[col].mean()) if len(sub) else float("nan")

    peer_erm, peer_irm = ROWS[1][0], ROWS[4][0]
    irm = df[(df.example == 1) & (df.scrambled == 0) & (df.method == ROWS[2][0])].test_error
    return {
        "e1_irm_agreement": agreement(*mean_se(irm), PUBLISHED[1]["IRMv1"]),
        "e1_erm": m(1, ROWS[0][0]), "e1_irm_sel": m(1, ROWS[3][0]), "e1_irm_def": m(1, ROWS[2][0]),
        "e1_peer_erm": m(1, peer_erm), "e1_peer_irm": m(1, peer_irm), "e1_oracle": m(1, ROWS[7][0]),
        "e1_vrex_def": m(1, ROWS[5][0]), "e1_vrex_sel": m(1, ROWS[6][0]),
        "e2_erm": m(2, ROWS[0][0]), "e2_peer_erm": m(2, peer_erm), "e2_peer_irm": m(2, peer_irm),
        "e2_peer_erm_id": m(2, peer_erm, 0, "id_error"),
        "e3_erm": m(3, ROWS[0][0]), "e3_irm_sel": m(3, ROWS[3][0]), "e3_peer_erm": m(3, peer_erm),
        "e3_peer_irm": m(3, peer_irm), "e3_oracle": m(3, ROWS[7][0]),
        **{key: " / ".join(f"{m(ex, label):.{2 if ex == 1 else 3}f}" for ex in EXAMPLES)
           for key, label in (("mlp_erm", ROWS[8][0]), ("mlp_irm", ROWS[9][0]), ("mlp_vrex", ROWS[10][0]))},
    }


EXPLANATION = """\
Where we agree and where we differ, and why:

* **Example1 (regression).** Our ERM ({e1_erm:.2f}) against the peer's 13.36; the peer's optimisation
  re-implemented gives {e1_peer_erm:.2f} (10,000 Adam steps reach least squares on this well-conditioned
  problem). IRMv1: the peer's optimisation {e1_peer_irm:.2f}, our `irm_linear` {e1_irm_def:.2f} at its
  defaults and {e1_irm_sel:.2f} under training-domain validation, against the peer's 11.15: our
  `irm_linear` at its defaults and the peer's IRMv1 {e1_irm_agreement}; both are close to the Oracle.
  Training-domain validation prefers the weakest penalty of the grid in every example (table below): on
  data drawn like training, the spurious inputs help, so the rule moves IRM back towards ERM
  (the selection-rule effect DomainBed documents). The Oracle's
  error is the noise floor, `dim_inv * mean_e sd_e^2 = 10.43` ({e1_oracle:.2f} here, 10.42 in the
  peer's table). Our Wxy and Wyz are other draws of the same law, so single repetitions differ; means
  over repetitions are comparable. V-REx ({e1_vrex_def:.2f} at its defaults, {e1_vrex_sel:.2f}
  selected) is not in the peer's repository; its penalty asks the three environments' risks to be equal,
  but the noise floor itself differs by a factor 400 between them (heteroskedastic noise), so the
  penalty pulls away from the invariant solution (the documented failure).
* **Example2 (cows and camels).** The data are separable through the invariant inputs (the label is
  `1[sum fg > 0]`), so any fit that converges classifies the test split perfectly: our ERM
  ({e2_erm:.3f}), `irm_linear` and `vrex_linear` (both standardise the inputs inside) reach 0.000 or
  close to it. The peer's optimisation - raw inputs whose invariant part is 100 times smaller than the
  background, Adam at lr 1e-3, 10,000 steps from a random start, no standardisation - stops long before
  the invariant weights grow: re-implemented here it gives {e2_peer_erm:.3f} (ERM) and {e2_peer_irm:.3f}
  (IRMv1) on the peer's test split, against 0.42 /
  0.45 in the peer's table, while its in-distribution error is {e2_peer_erm_id:.3f}. The peer's failure
  on Example2 is an optimisation (early stopping on badly scaled, separable data) result, not a property
  of the ERM or IRMv1 objectives.
* **The subject MLP** (the methods that retrain the subject architecture, at their defaults, {mlp_reps}
  repetitions, unscrambled): ERM {mlp_erm}; IRMv1 {mlp_irm}; V-REx {mlp_vrex} (Example1 / 2 / 3). These
  use the harness's own training loop (full-batch Adam on the subject MLP), not the peer's linear model.
  On Example2 the MLP's ERM reaches the separating solution like our linear fits, while `irm_mlp` and
  `vrex_mlp` at their (untuned) default penalties end worse than it; on Example1 V-REx shows the same
  heteroskedastic failure as `vrex_linear`; on Example3 every MLP row stays far from the Oracle.
* **Example3 (small invariant margin).** Our converged fits: ERM {e3_erm:.3f}, `irm_linear` selected
  {e3_irm_sel:.3f}, against the peer's 0.48 / 0.48: the spurious directions separate the classes by a
  margin of order 1 against the invariant 0.1 in every environment, so both objectives rely on them, with
  three environments for five spurious dimensions (IRMv1 needs more environments than spurious dimensions
  in linear classification, Rosenfeld et al. 2021). The peer's optimisation at its default hyperparameters
  (one repetition) stops earlier and does better, {e3_peer_erm:.3f} (ERM) / {e3_peer_irm:.3f} (IRMv1):
  from a small start, early stopping leaves weight on the invariant inputs. The peer's table does not show
  this because it selects among 20 hyperparameter draws (learning rate, weight decay) by validation error
  on the training distribution, where the spurious directions are perfect; that selection most likely
  picks the better-converged, spurious fits (not verified here: we run the defaults only). The Oracle
  ({e3_oracle:.3f}) matches the peer's 0.013: the invariant margin alone is 2 * 0.1 / 0.1 = 2 sd per
  input, so the Bayes error with five invariant inputs is Phi(-sqrt(5)) = 0.013.
* **Protocol differences.** Repetitions: {n_reps} (peer-protocol rows {peer_reps}) against the peer's 50
  data seeds x 20 hyperparameter draws; our selection is per repetition over a fixed grid of penalty
  weights (the peer draws random hyperparameters, including learning rate and weight decay, and picks one
  setting per dataset from the mean over data seeds). Example3's label is Bernoulli(1/2) per unit (the
  peer: exactly half per environment). ANDMask and IGA are not implemented in cowbench.
"""


def main(n_reps: int = DEFAULT_REPS, seed: int = 0, out: str | Path | None = None) -> pd.DataFrame:
    """Run `reproduce` and write ``results/anchors/invariance_unit_tests.md``; return the rows."""
    start = time.perf_counter()
    settings = {"n_reps": n_reps, "seed": seed, "peer_reps": PEER_REPS, "grid": list(PENALTY_GRID)}
    df = cached(NAME, settings, lambda: reproduce(n_reps=n_reps, seed=seed))
    versions = {name: getattr(method_class(name), "version", None) for name in MLP_METHODS.values()}
    mlp = cached(f"{NAME}_mlp", {"n_reps": MLP_REPS, "seed": seed, "methods": versions},
                 lambda: reproduce_mlp(n_reps=MLP_REPS, seed=seed))
    total = sum(float(f["compute_s"].iloc[0]) for f in (df, mlp) if "compute_s" in f and len(f))
    df = pd.concat([df, mlp], ignore_index=True).assign(compute_s=total)  # the header states both parts' cost
    elapsed = time.perf_counter() - start
    path = Path(out) if out is not None else Path(f"results/anchors/{NAME}.md")
    text = f"""# Linear unit-tests for invariance discovery: our reproduction beside the peer's table

Generated by `{COMMAND}` (function `cowbench.anchors.invariance_unit_tests.main(n_reps={n_reps},
seed={seed})`), cowbench {__version__}; {runtime_note(df, elapsed)}. Do not edit by hand.

Source of the published numbers: Aubin, Słowik, Arjovsky, Bottou & Lopez-Paz (2021), "Linear unit-tests
for invariance discovery", arXiv:2102.10867; the committed 50-seed table of
`facebookresearch/InvarianceUnitTests` (default experiment: dim_inv = 5, dim_spu = 5, 3 environments),
as listed in `reference/anchor-results.md`, selection by training-distribution validation error.
Scenarios: `iut_example1`-`iut_example3` (`scrambled` = 0 and 1), 10,000 units per environment and
split, a new scenario draw (`weights_seed`) and data seed per repetition.

**Selection rule.** "defaults" rows: no selection. "train-domain validation" rows: the penalty weight in
{{{", ".join(f"{g:g}" for g in PENALTY_GRID)}}} with the lowest summed per-environment error on the
validation split (drawn like the training data), chosen per repetition. ERM, Oracle and the
peer-protocol rows have no hyperparameter chosen (the peer's defaults). Cells: mean ± standard error over
repetitions of the mean over the three environments of the test error on the peer's test split (each
environment with its spurious inputs permuted jointly among its own units).

{_table(df)}
{EXPLANATION.format(n_reps=n_reps, peer_reps=PEER_REPS, mlp_reps=MLP_REPS, **_measured(df))}
Penalty weights chosen by training-domain validation:

{_selected_table(df)}
"""
    write(path, text)
    return df
