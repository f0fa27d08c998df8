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
from cowbench.registries import make_scenario
from cowbench.version import __version__

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
    scn = make_scenario("colored_digits", **{**KNOBS, **(knobs or {})})
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
    defaults = chosen[chosen.selection == "defaults"].groupby("method")[["train_acc", "acc_ood"]].mean() * 100
    irm_def = tuple(defaults.loc["IRM"]) if "IRM" in defaults.index else (float("nan"),) * 2
    erm_def = tuple(defaults.loc["ERM"]) if "ERM" in defaults.index else (float("nan"),) * 2
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
* IRM (`irm_mlp`), train / test accuracy by rule: {irm_text}. At its defaults (the Colored MNIST code's
  regime: penalty weight 1e4 after 100 ERM steps, the objective divided by it, a coupled L2 term of weight
  1e-3, Adam's moments kept at the switch) it shows the paper's pattern: training accuracy down from ERM's
  {erm_def[0]:.1f}% toward the invariant predictor's 75% ({irm_def[0]:.1f}%) and test accuracy up from ERM's
  {erm_def[1]:.1f}% to {irm_def[1]:.1f}%, short of the paper's 66.9 (our greyscale oracle: about 70). Version
  1 of `irm_mlp` (penalty weight 1e3, no L2 term, Adam's moments reset at the switch as DomainBed does) ended
  every drawn setting near a constant output (about 50% training accuracy): reset, Adam takes full
  lr-sized steps on the penalty-dominated objective and our small MLP reaches the penalty's trivial zero at
  f = 0 (catalog §4.6); kept, the second moments estimated in the ERM phase damp those steps while the
  penalty removes the colour, and the L2 term makes large weights that only serve the penalty costly.
  Remaining differences from the paper: its 2 x 390-unit MLP, lr 4.9e-4, 501 steps, anneal point 190 and
  weight 91257 were found by a search that looked at test accuracy, on MNIST with 25,000 images per
  environment; ours is the subject's MLP (one hidden layer of 32, lr 0.02, 300 steps), and `irm_mlp` draws
  {TRIALS} settings from its declared space (penalty weight log-uniform in [1, 1e5], anneal point in
  {{0, 50, 100, 200}}), whose weak penalties keep the colour and are the ones training-domain validation
  prefers. V-REx (`vrex_mlp`, not in the paper; same loop and defaults) trades training accuracy for test
  accuracy at some settings; training-domain validation picks its ERM-like settings.
* Smaller data than the paper's (1,797 distinct 8x8 digits, {KNOBS["n_train"]} images per training
  environment), fewer restarts ({n_reps} against 10), standard errors over replicates (the paper: standard
  deviations).
{"* Not registered, so left out: " + ", ".join(missing) + "." if missing else ""}
"""
    write(Path(out) if out is not None else Path(f"results/anchors/{NAME}.md"), text)
    return frame
