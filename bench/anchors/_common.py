"""Pieces every anchor shares: seeds per repetition, mean and standard error, the atomic write."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from cowbench.jobs import ReplicateSpec, execute, make_job, prepare
from cowbench.registries import METHODS
from cowbench.seeds import stable_hash
from cowbench.selection import apply_rules
from cowbench.store import write_text_atomic
from cowbench.trials import trial_settings
from cowbench.version import __version__


def rep_seeds(seed: int, *key: int, count: int = 2) -> list[int]:
    """``count`` independent non-negative seeds for one repetition, from ``SeedSequence([seed, *key])``."""
    return [int(s) for s in np.random.SeedSequence([seed, *key]).generate_state(count) >> 1]


def mean_se(values: pd.Series) -> tuple[float, float]:
    """Mean and standard error over repetitions (se NaN with one value)."""
    v = np.asarray(values, dtype=np.float64)
    se = float(v.std(ddof=1) / np.sqrt(len(v))) if len(v) > 1 else float("nan")
    return float(v.mean()), se


def fmt(mean: float, se: float, digits: int = 2) -> str:
    """``mean ± se`` (``mean`` alone when se is undefined; ``-`` when missing)."""
    if not np.isfinite(mean):
        return "-"
    return f"{mean:.{digits}f} ± {se:.{digits}f}" if np.isfinite(se) else f"{mean:.{digits}f}"


def cached(name: str, settings: dict, compute) -> pd.DataFrame:
    """``compute()``'s frame, cached as CSV under ``$COWBENCH_CACHE`` (default ``~/.cache/cowbench``)/anchors.

    Keyed by ``settings`` and the cowbench version, so the text of an anchor file can be regenerated (or two
    anchors can share rows) without rerunning its jobs; delete the folder to recompute. The frame gets a
    ``compute_s`` column: the wall time of ``compute()`` when it ran.
    """
    import os

    key = stable_hash({**settings, "cowbench": __version__})[:16]
    folder = Path(os.environ.get("COWBENCH_CACHE", Path.home() / ".cache" / "cowbench")) / "anchors"
    path = folder / f"{name}-{key}.csv"
    if path.exists():
        return pd.read_csv(path)
    import time

    start = time.perf_counter()
    frame = compute()
    frame["compute_s"] = time.perf_counter() - start  # what the jobs cost when they ran, for the file's header
    folder.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    frame.to_csv(tmp, index=False)
    tmp.replace(path)
    return frame


def runtime_note(frame: pd.DataFrame, elapsed: float) -> str:
    """How long the rows took to compute (cached or not) and how long this rendering took."""
    computed = float(frame["compute_s"].iloc[0]) if "compute_s" in frame and len(frame) else elapsed
    return (f"its jobs took {computed:.0f} s of wall time on this machine (2 cores shared with other work) and "
            f"this rendering {elapsed:.0f} s (rows cached by `cowbench.anchors._common.cached`)")


def write(path: str | Path, text: str) -> Path:
    """Write ``text`` atomically (temp file, fsync, rename: a killed run never leaves half a table)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_text_atomic(path, text)
    return path


def method_class(name: str):
    """A registered method's class, or None when it is not registered (yet): anchors list what is missing."""
    try:
        return METHODS.get(name)
    except (KeyError, ValueError):
        return None


def trial_rows(scn, methods: dict[str, str], *, n_reps: int, seed: int, trials: int,
               extra=None, subject: dict | None = None) -> pd.DataFrame:
    """Job-level rows: every (replicate, method, trial setting) run through the harness's own job path.

    ``methods`` maps a row label to a registered method name (missing methods are left out: see
    `method_class`). Trial settings are the suite machinery's draws (`cowbench.trials.trial_settings`: draw 0
    the defaults, then the declared search space with the derived ``hparam_seed``); each job is
    `cowbench.jobs.execute` on the replicate that `cowbench.jobs.prepare` builds (data, subject, oracle)
    for root seed ``seed``, so the metrics are exactly a suite's. ``extra(rep, output)`` may add columns.
    The frame has the columns `cowbench.selection.apply_rules` needs.
    """
    from cowbench.subject import SubjectConfig, subject_for

    cfg = SubjectConfig.from_mapping(subject_for(scn.spec, subject or {})).to_dict()
    rows = []
    for r in range(n_reps):
        rspec = ReplicateSpec(scn.spec, r, seed, cfg)
        rep = prepare(rspec)
        for label, name in methods.items():
            cls = method_class(name)
            if cls is None:
                continue
            for trial, params in trial_settings(cls, trials, seed):
                method = cls(**params)
                spec = make_job(rspec, name, method.hyperparameters())
                output, metrics, _ = execute(rep, method, spec.fit_seed)
                row = {"scenario": scn.id[:12], "replicate": r, "method": label, "trial": trial,
                       "hparams": stable_hash(params)[:12] if params else "defaults", "params": repr(params),
                       **{k: v for k, v in metrics.items() if isinstance(v, int | float) or v is None}}
                if extra is not None:
                    row.update(extra(rep, output))
                rows.append(row)
    return pd.DataFrame(rows)


def select(frame: pd.DataFrame, rules) -> pd.DataFrame:
    """The rows each selection rule of `cowbench.selection` picks, per (replicate, method)."""
    return apply_rules(frame, list(rules))
