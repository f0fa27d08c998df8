"""Anchor ``colored_mnist_irm``: IRM's Colored MNIST table (Arjovsky et al. 2019) on ``colored_digits``.

ERM, IRMv1 and the greyscale oracle, train and test accuracy, beside the paper's (87.4 / 17.1, 70.8 / 66.9,
73.5 / 73.0; the repository's ``reproduce_paper_results_output.txt``, 10 restarts). Our rows: ERM =
``erm_retrain`` (the subject architecture retrained by ERM), IRM = ``irm_mlp`` (IRMv1 with the penalty
annealed as in the paper's code), V-REx = ``vrex_mlp``, each with trial settings drawn from its declared
search space and reported under several selection rules; the greyscale oracle is the replicate's oracle
model (same architecture trained on a copy of ``train`` whose colour is redrawn independently of the label:
colour carries nothing, as in greyscale). "Train" accuracy is on the training split, "test" on
``test_ood`` (colour flipped with probability 0.9, the paper's test environment).

The paper chose its hyperparameters with a look at test accuracy; the "test-domain oracle" rows here pick,
per replicate, the setting with the best ``test_ood`` accuracy (an upper bound, as DomainBed's oracle), and
``oracle`` (`cowbench.selection`) the best accuracy on ``test_bal``.

The job-level rows are shared with ``domainbed_gap`` (same scenario, methods, trials): `trial_frame`
computes them once per setting and caches them as CSV under ``$COWBENCH_CACHE`` (default
``~/.cache/cowbench``)/anchors, keyed by the settings and the cowbench version.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pandas as pd

from cowbench.anchors._common import cached, fmt, mean_se, method_class, runtime_note, select, trial_rows, write

NAME = "colored_mnist_irm"
COMMAND = f"cowbench anchor {NAME}"
DEFAULT_REPS = 2
TRIALS = 3
# smaller than the family's default (5000) so that both anchors regenerate in minutes on 2 cores
KNOBS = {"n_train": 2500, "n_val": 500, "n_test": 2000}
METHODS = {"ERM": "erm_retrain", "IRM": "irm_mlp", "V-REx": "vrex_mlp"}
PUBLISHED = {"ERM": (87.4, 17.1), "IRM": (70.8, 66.9), "ERM on greyscale (oracle)": (73.5, 73.0),
             "optimal invariant predictor": (75.0, 75.0), "random guessing": (50.0, 50.0)}
RULES = ("defaults", "train_val", "oracle")
OOD_ORACLE = "test_ood_oracle"
RULE_TEXT = {"defaults": "defaults (no selection)", "train_val": "training-domain validation",
             "oracle": "test-domain oracle on test_bal (upper bound)",
             OOD_ORACLE: "test-domain oracle on test_ood (upper bound; the paper's kind of choice)"}


def _extra(rep, output) -> dict[str, float]:
    from cowbench.models import accuracy

    d = rep.data
    out = {"oracle_train_acc": accuracy(rep.oracle, d.train.x, d.train.y),
           "oracle_test_acc": accuracy(rep.oracle, d.test_ood.x, d.test_ood.y),
           "subject_train_acc": accuracy(rep.subject, d.train.x, d.train.y),
           "subject_test_acc": accuracy(rep.subject, d.test_ood.x, d.test_ood.y)}
    out["train_acc"] = accuracy(output.edited, d.train.x, d.train.y) if output.edited is not None else np.nan
    return out


def reproduce(n_reps: int = DEFAULT_REPS, seed: int = 0, *, trials: int = TRIALS, knobs: dict | None = None,
              methods: dict[str, str] | None = None) -> pd.DataFrame:
    """Job-level rows on ``colored_digits`` (``knobs`` over `KNOBS`): replicate x method x trial setting."""
    import cowbench as cb

    scn = cb.make_scenario("colored_digits", **{**KNOBS, **(knobs or {})})
    return trial_rows(scn, methods or METHODS, n_reps=n_reps, seed=seed, trials=trials, extra=_extra)


def trial_frame(n_reps: int, seed: int, *, trials: int = TRIALS) -> pd.DataFrame:
    """`reproduce` at the anchors' settings, computed once and cached (`cowbench.anchors._common.cached`)."""
    versions = {name: getattr(method_class(name), "version", None) for name in METHODS.values()}
    settings = {"n_reps": n_reps, "seed": seed, "trials": trials, "knobs": KNOBS, "methods": versions}
    return cached("colored_digits", settings, lambda: reproduce(n_reps=n_reps, seed=seed, trials=trials))


def ood_oracle(frame: pd.DataFrame) -> pd.DataFrame:
    """Per (replicate, method) the setting with the best test_ood accuracy (ties: lowest draw)."""
    rows = []
    for _, g in frame.groupby(["replicate", "method"]):
        g = g.sort_values("trial")
        rows.append(g.loc[pd.to_numeric(g.acc_ood).idxmax()])
    return pd.DataFrame(rows).assign(selection=OOD_ORACLE)


def chosen_rows(frame: pd.DataFrame) -> pd.DataFrame:
    """The rows of every rule: `cowbench.selection`'s RULES plus the test_ood oracle."""
    return pd.concat([select(frame, RULES), ood_oracle(frame)], ignore_index=True)


def _cell(g: pd.DataFrame, col: str) -> str:
    return fmt(*mean_se(pd.to_numeric(g[col]) * 100), 1) if len(g) else "-"


def main(n_reps: int = DEFAULT_REPS, seed: int = 0, out: str | Path | None = None) -> pd.DataFrame:
    """Write ``results/anchors/colored_mnist_irm.md``; return the job-level rows."""
    from cowbench import __version__

    start = time.perf_counter()
    frame = trial_frame(n_reps, seed)
    elapsed = time.perf_counter() - start
    chosen = chosen_rows(frame)
    lines = ["| method | selection rule | train accuracy (ours) | test accuracy (ours) | paper: train / test |",
             "|---|---|---|---|---|"]
    for label in METHODS:
        pub = PUBLISHED.get(label)
        pub_text = f"{pub[0]:.1f} / {pub[1]:.1f}" if pub else "-"
        for rule in (*RULES, OOD_ORACLE):
            g = chosen[(chosen.method == label) & (chosen.selection == rule)]
            lines.append(f"| {label} | {RULE_TEXT[rule]} | {_cell(g, 'train_acc')} | {_cell(g, 'acc_ood')} | "
                         f"{pub_text} |")
    per_rep = frame.drop_duplicates("replicate")
    lines.append(f"| ERM on greyscale (oracle model) | none | {_cell(per_rep, 'oracle_train_acc')} | "
                 f"{_cell(per_rep, 'oracle_test_acc')} | 73.5 / 73.0 |")
    lines.append(f"| ERM (the shared subject model) | none | {_cell(per_rep, 'subject_train_acc')} | "
                 f"{_cell(per_rep, 'subject_test_acc')} | 87.4 / 17.1 |")
    lines.append("| optimal invariant predictor | - | 75 | 75 | 75 / 75 |")
    missing = [name for name in METHODS.values() if method_class(name) is None]
    irm = chosen[(chosen.method == "IRM")]
    irm_means = irm.groupby("selection")[["train_acc", "acc_ood"]].mean() * 100
    irm_text = "; ".join(f"{rule} {r.train_acc:.1f} / {r.acc_ood:.1f}" for rule, r in irm_means.iterrows()) or "-"
    text = f"""# IRM's Colored MNIST on colored_digits: our reproduction beside the paper's table

Generated by `{COMMAND}` (function `cowbench.anchors.colored_mnist.main(n_reps={n_reps}, seed={seed})`),
cowbench {__version__}; {runtime_note(frame, elapsed)}; `cowbench anchor domainbed_gap` reads the same
rows. Do not edit by hand.

Published (Arjovsky, Bottou, Gulrajani & Lopez-Paz 2019, arXiv:1907.02893; repository
`facebookresearch/InvariantRiskMinimization`, `code/colored_mnist/reproduce_paper_results_output.txt`, 10
restarts, MNIST 14x14, 25,000 images per environment, accuracy in %): ERM 87.4 / 17.1, IRM 70.8 / 66.9, ERM on
greyscale 73.5 / 73.0 (train / test). The paper's hyperparameters were chosen by a search that looked at
test accuracy.

Ours: scenario `colored_digits` (sklearn's 8x8 digits coloured by IRM's protocol: label = digit < 5 flipped
w.p. 0.25; colour = label flipped w.p. 0.1 and 0.2 in the two training environments, 0.9 at test) with
{KNOBS}, the default subject architecture (MLP, the harness's training loop), {n_reps} replicates (root seed
{seed}), {TRIALS} trial settings per method (draw 0 = its defaults, then its declared search space,
`cowbench.trials`), each run as a harness job. Train accuracy on `train`, test accuracy on `test_ood`, mean ±
standard error over replicates, in %.

**Selection rules:** {"; ".join(f"`{k}`: {v}" for k, v in RULE_TEXT.items())}.

{chr(10).join(lines)}

Reading and differences:

* The ERM rows reproduce the paper's failure: high training accuracy from the colour (which agrees with the
  label 85% of the time against 75% for the digit) and a test accuracy far below chance once the colour is
  flipped.
* The greyscale oracle reproduces the paper's oracle: about the 75% of the optimal invariant predictor, in
  training and at test alike. Our oracle is trained on data whose colour is independent of the label rather
  than on greyscale images; both remove the colour's information.
* IRM (`irm_mlp`), train / test accuracy by rule: {irm_text}. Training accuracy near 50% means the
  network is close to a constant: the IRMv1 penalty is also zero at f = 0 (a known failure, catalog §4.6),
  and at these penalty weights our small MLP ends there in training; a test accuracy above 50% with a
  training accuracy near 50% comes from logits near 0 whose small residual effects happen to fall on the
  right side at test, not from the invariant predictor (which would score about 75% in training as well).
  The paper's 70.8 / 66.9 comes from a setting found by a search that looked at test accuracy, on MNIST with
  25,000 images per environment, a 390-unit MLP, 501 steps and an annealing point tuned with it; our
  `irm_mlp` draws {TRIALS} settings from its declared space (penalty weight log-uniform in [1, 1e5], anneal
  point in {{0, 50, 100, 200}}) on the subject's small MLP, so we do not reproduce IRM's row. V-REx
  (`vrex_mlp`, not in the paper) trades training accuracy for test accuracy at some settings; training-domain
  validation picks its ERM-like settings.
* Smaller data than the paper's (1,797 distinct 8x8 digits, {KNOBS["n_train"]} images per training
  environment), fewer restarts ({n_reps} against 10), standard errors over replicates (the paper: standard
  deviations).
{"* Not registered, so left out: " + ", ".join(missing) + "." if missing else ""}
"""
    write(Path(out) if out is not None else Path(f"results/anchors/{NAME}.md"), text)
    return frame
