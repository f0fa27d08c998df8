"""Leave-one-environment-out: refit a job's method without each training environment (run by the job).

The ``loeo_acc`` selection metric (`cowbench.scores.selection`) of a job is computed where the job runs, from
its replicate and its method: it belongs with the job, not with the report-time selection rules
(`cowbench.selection`), which only read the stored metric.

The refits run as the job's own method run does: blind, through the job's runner (`cowbench.job_run.blind_refit`:
the fold's blinded Task, a fresh sandbox process, the edited model evaluated in another one), never in the
harness's process. Only the fold subject is trained here (harness code, like the replicate's subject).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from cowbench.replicate import _load_or_train, subject_trainer
from cowbench.scores import Missing
from cowbench.seeds import derive_seed

if TYPE_CHECKING:
    from cowbench.data import Dataset, Split
    from cowbench.replicate import Replicate

#: ``refit(fold_replicate, seed, x_held)``: the job's method run on a replicate without one training environment,
#: with ``random_state = seed``; its edited model's logits on ``x_held`` (the held-out units, real columns), or
#: None when it returns no edited model. It may raise.
Refit = Callable[["Replicate", int, np.ndarray], "np.ndarray | None"]


def _subset(split: Split, keep: np.ndarray) -> Split:
    n = len(split)

    def cut(value: Any) -> Any:
        return value[keep] if isinstance(value, np.ndarray) and value.shape[:1] == (n,) else value

    return dataclasses.replace(split, x=split.x[keep], y=split.y[keep], env=split.env[keep],
                               group=split.group[keep],
                               concepts=split.concepts.iloc[np.flatnonzero(keep)].reset_index(drop=True),
                               exogenous={k: cut(v) for k, v in split.exogenous.items()},
                               do={k: cut(v) for k, v in split.do.items()})


def without_env(data: Dataset, env: int) -> Dataset:
    """``data`` with the training and validation units of environment ``env`` removed (test splits unchanged)."""
    return dataclasses.replace(data, train=_subset(data.train, data.train.env != env),
                               val=_subset(data.val, data.val.env != env))


_FOLDS: dict[tuple[str, int], Any] = {}  # (replicate fingerprint, env) -> subject retrained without env


def _fold_subject(rep: Replicate, env: int, train: Split, folder: Path | None = None) -> Any:
    """The subject architecture retrained without ``env``: the held-out units must not have shaped the model an
    edit starts from either. A function of the replicate and ``env`` alone (its seed too), so it is the same fit
    in every job of the replicate: kept in this process for the replicate's other jobs, and in ``folder`` (the
    replicate's cache folder, checksummed like its subject) for the other workers and later runs."""
    from cowbench.subject import SubjectConfig, loss_for  # torch: not at import

    key = (rep.fingerprint, int(env))
    if key not in _FOLDS:
        if any(k[0] != rep.fingerprint for k in _FOLDS):
            _FOLDS.clear()
        cfg = SubjectConfig.from_mapping({k: v for k, v in rep.subject_config.items() if k != "version"})
        seed = derive_seed(0, "loeo-subject", rep.fingerprint, int(env))
        train_fold = subject_trainer(cfg, train.x, train.y, seed, loss_for(rep.scenario))
        # named by the replicate's content, not only its id: a file from other data or another subject is not read
        path = folder / f"loeo-subject-{int(env)}-{rep.fingerprint[:16]}.pt" if folder is not None else None
        _FOLDS[key] = _load_or_train(path, train_fold)
    return _FOLDS[key]


def fold_replicate(rep: Replicate, env: int, folder: Path | None = None) -> Replicate:
    """``rep`` without the training and validation units of ``env``, its subject retrained without them (cached
    in ``folder``, the replicate's cache folder, when given): what a loeo refit is run on (the test splits, the
    truth and the oracle are the replicate's)."""
    fold = without_env(rep.data, int(env))
    return dataclasses.replace(rep, data=fold, subject=_fold_subject(rep, int(env), fold.train, folder))


def loeo_accuracy(rep: Replicate, refit: Refit, fit_seed: int, *, folder: Path | None = None
                  ) -> float | Missing | None:
    """Mean over training environments ``e`` of the accuracy, on train's units of ``e``, of the job's method refit
    (by ``refit``) on the data without ``e`` (subject retrained without ``e`` as well). None if a fold returns no
    edited model; `Missing` with the reason if a fold's refit raises or is lost (the job itself stays ok: its
    other scores stand). ``folder``: the replicate's cache folder, where the fold subjects are kept."""
    accs = []
    for env in np.unique(rep.data.train.env):
        held = rep.data.train.env == env
        try:
            out = refit(fold_replicate(rep, int(env), folder), derive_seed(fit_seed, "loeo", int(env)),
                        rep.data.train.x[held])
        except Exception as exc:  # e.g. a method that assumes every training environment is present
            return Missing(f"the refit without training environment {int(env)} raised {type(exc).__name__}: "
                           f"{' '.join(str(exc).split())[:200]}")
        if out is None:
            return None
        pred = np.asarray(out).reshape(-1) > 0
        accs.append(float(np.mean(pred == (np.asarray(rep.data.train.y[held]) == 1))))
    return float(np.mean(accs))
