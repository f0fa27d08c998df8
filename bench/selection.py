"""Hyperparameter-selection rules: which of a method's settings a table reports, per replicate.

A suite with ``trials = K`` runs K settings of each method (`cowbench.trials`); a rule picks one of them per
(scenario, replicate, method) from metrics the harness stored for every job (`cowbench.scores.selection`),
never from anything the method reports. The rules (Gulrajani & Lopez-Paz 2021, section 3):

``defaults``
    Draw 0: the method's defaults (with the suite's fixed hyperparameters). No selection; today's tables.
``train_val``
    Training-domain validation: the highest ``val_acc`` (accuracy on ``val``, same distribution as train).
``worst_group_val``
    The highest ``val_wga`` (worst-group accuracy on ``val``). It reads val's group labels, which name the
    spurious variable: the selected row counts as ``group_val`` access (validation group labels only; a row
    that already has ``group`` keeps it) and as told (``group_val`` among its routes), so it is never ranked
    against methods that saw less.
``loeo``
    Leave-one-environment-out: the highest ``loeo_acc``, the mean over training environments ``e`` of the
    accuracy on ``e`` of the method refit without ``e`` (`loeo_accuracy`). Only where train has at least 3
    environments (with 2, each fold would train on one environment: no environment variation left to learn
    from); elsewhere the rule gives no row, with the reason.
``oracle``
    Test-domain oracle: the highest ``acc_bal`` (accuracy on ``test_bal``, the split of the primary
    ``edit_score``). It looks at the test data, so its row is an upper bound, and labelled so.

Within a rule, ties go to the lowest draw index (the defaults first). A rule that needs a metric no setting
has (a method without an edited model) picks the only setting if there is one (nothing was chosen) and gives
no row otherwise, with the reason.

References
----------
Gulrajani, I., & Lopez-Paz, D. (2021). In search of lost domain generalization. ICLR.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from cowbench.errors import InputError

if TYPE_CHECKING:
    from cowbench.data import Dataset, Split
    from cowbench.jobs import Replicate
    from cowbench.method import Method
    from cowbench.scores import Missing

#: rule -> the stored metric it maximises (None: no metric, draw 0)
RULES: dict[str, str | None] = {"defaults": None, "train_val": "val_acc", "worst_group_val": "val_wga",
                                "loeo": "loeo_acc", "oracle": "acc_bal"}
#: how a report names each rule (the oracle is marked as an upper bound)
RULE_LABELS = {"defaults": "defaults (no selection)", "train_val": "training-domain validation (val accuracy)",
               "worst_group_val": "worst-group validation (val group labels: group_val access)",
               "loeo": "leave-one-environment-out", "oracle": "test-domain oracle on test_bal (upper bound)"}
#: access a rule adds to the selected row (it read those labels to choose): validation group labels only
RULE_ACCESS = {"worst_group_val": "group_val"}
MIN_LOEO_ENVS = 3
UPPER_BOUND_MARK = " (upper bound)"
_KEYS = ["scenario", "replicate", "method"]


def check_rules(rules: Sequence[str]) -> list[str]:
    """The rule names, validated; `InputError` naming an unknown one and the allowed names."""
    unknown = [r for r in rules if r not in RULES]
    if unknown or not rules:
        raise InputError(f"unknown selection rule(s) {unknown or list(rules)}; allowed: {', '.join(RULES)}")
    return list(rules)


def _with_level(access: str, level: str) -> str:
    """The access label ``access`` (levels joined by ``+``) with ``level`` added, in `ACCESS_LEVELS` order."""
    from cowbench.access import ACCESS_LEVELS

    have = set(filter(None, str(access).split("+")))
    if level == "group_val" and "group" in have:  # group labels of every split already include val's
        return str(access)
    have |= {level}
    return "+".join([a for a in ACCESS_LEVELS if a in have] + sorted(have - set(ACCESS_LEVELS)))


def _with_route(told: str, route: str) -> str:
    have = set(filter(None, str(told).split(",")))
    return ",".join(sorted(have if route == "group_val" and "group" in have else have | {route}))


def _choose(frame: pd.DataFrame, rule: str, metric: str, reasons: dict[tuple[str, str, str], str]) -> pd.DataFrame:
    """Per (scenario, replicate, method) the row with the highest ``metric``, ties to the lowest draw index (then
    the hyperparameter label). A group where no row has the metric keeps its row if it has one setting only
    (nothing to choose; not for loeo, whose metric says the rule applies at all); else it gives no row and its
    reason goes to ``reasons``. Sorts once instead of looping over groups: a paper-sized run has ~10^4 of them."""
    values = pd.to_numeric(frame[metric], errors="coerce") if metric in frame else pd.Series(np.nan, frame.index)
    f = frame.assign(_value=values.to_numpy())
    grouped = f.groupby(_KEYS, sort=False)
    f["_count"] = grouped["_value"].transform("count")
    f["_settings"] = grouped["hparams"].transform("nunique")
    f = f.sort_values([*_KEYS, "_value", "trial", "hparams"], ascending=[True, True, True, False, True, True],
                      na_position="last", kind="mergesort")
    best = f[f["_value"].notna()]
    alone = f[(f["_count"] == 0) & (f["_settings"] == 1)] if rule != "loeo" else f.iloc[:0]
    none = f[(f["_count"] == 0) & ~f.index.isin(alone.index)]
    for scenario, method in none[["scenario", "method"]].drop_duplicates().itertuples(index=False):
        reasons[(scenario, method, rule)] = (
            f"no loeo_acc: leave-one-environment-out needs at least {MIN_LOEO_ENVS} training environments, a "
            "binary label and an edited model" if rule == "loeo" else
            f"no setting has {metric} (the method returns no edited model, or every value is missing)")
    chosen = pd.concat([best, alone]).drop_duplicates(_KEYS, keep="first")
    return chosen.sort_values(_KEYS, kind="mergesort").drop(columns=["_value", "_count", "_settings"])


def apply_rules(frame: pd.DataFrame, rules: Sequence[str], *,
                skipped: list[dict[str, Any]] | None = None) -> pd.DataFrame:
    """The rows each rule selects, with columns ``selection`` (the rule) and ``selected_hparams`` added.

    ``frame`` is job-level: one row per ok job with ``scenario``, ``replicate``, ``method``, ``hparams`` (its
    label), ``trial`` (draw index; 0 if absent), ``access``, ``told`` and the selection metrics as columns.
    ``defaults`` keeps every draw-0 row (several where the suite lists a method with several fixed settings);
    every other rule keeps one row per (scenario, replicate, method). Rows chosen by ``worst_group_val`` among
    several settings get ``group_val`` added to ``access`` and ``told``; the oracle's rows get
    `UPPER_BOUND_MARK` on ``entry`` (if the frame has one). ``skipped`` (if given) receives ``{scenario,
    method, selection, reason}`` for each (scenario, method, rule) that gives no row.
    """
    rules = check_rules(rules)
    frame = frame.copy()
    if "trial" not in frame:
        frame["trial"] = 0
    frame["trial"] = frame["trial"].fillna(0).astype(int)
    for column, default in (("access", "pooled"), ("told", ""), ("hparams", "")):
        if column not in frame:
            frame[column] = default
        frame[column] = frame[column].fillna(default)
    pieces, reasons = [], {}
    for rule in rules:
        metric = RULES[rule]
        if metric is None:
            chosen = frame[frame["trial"] == 0].copy()
            missing = frame.groupby(_KEYS)["trial"].min()
            for (scenario, _, method), first in missing.items():
                if first != 0:
                    reasons[(scenario, method, rule)] = "the defaults job (draw 0) did not come back ok"
        else:
            chosen = _choose(frame, rule, metric, reasons)
        chosen["selection"] = rule
        chosen["selected_hparams"] = chosen["hparams"]
        if rule in RULE_ACCESS and not chosen.empty:
            # a choice among several settings read the labels; with one setting nothing was read
            several = frame.groupby(_KEYS)["hparams"].nunique()
            read = [several.get(tuple(k), 1) > 1 for k in chosen[_KEYS].itertuples(index=False)]
            level = RULE_ACCESS[rule]
            chosen.loc[read, "access"] = [_with_level(a, level) for a in chosen.loc[read, "access"]]
            chosen.loc[read, "told"] = [_with_route(t, level) for t in chosen.loc[read, "told"]]
        if rule == "oracle" and "entry" in chosen:
            chosen["entry"] = chosen["entry"].astype(str) + UPPER_BOUND_MARK
        pieces.append(chosen)
    if skipped is not None:
        skipped.extend({"scenario": s, "method": m, "selection": r, "reason": why}
                       for (s, m, r), why in sorted(reasons.items()))
    out = pd.concat(pieces, ignore_index=True) if pieces else frame.iloc[:0].assign(selection="", selected_hparams="")
    return out.reset_index(drop=True)


def selections(selected: pd.DataFrame) -> list[dict[str, Any]]:
    """The setting each rule chose, one dict per (scenario, replicate, method, rule): what a report stores."""
    cols = ["scenario", "replicate", "method", "selection", "selected_hparams", "trial"]
    rows = [dict(zip(cols, (r[0], int(r[1]), r[2], r[3], r[4], int(r[5])), strict=True))
            for r in selected[cols].itertuples(index=False)]
    return sorted(rows, key=lambda d: (d["scenario"], d["method"], d["selection"], d["replicate"], d["trial"],
                                       d["selected_hparams"]))


def _job_level(res: Any, trials: Mapping[str, int]) -> pd.DataFrame:
    """One row per ok job of ``res`` (`RunResults`) with the selection metrics as columns and the draw index."""
    metrics = [m for m in RULES.values() if m is not None]
    part = res.frame[res.frame["metric"].isin(metrics)]
    wide = part.pivot_table(index="job_id", columns="metric", values="value", aggfunc="first")
    jobs = res.jobs.drop(columns=[c for c in ("selection", "entry") if c in res.jobs])
    out = jobs.set_index("job_id").join(wide.reindex(columns=metrics)).reset_index()
    out["trial"] = out["job_id"].map(lambda j: int(trials.get(j, 0)))
    return out


def apply_selection(res: Any) -> Any:
    """A `RunResults` whose rows are the jobs each of the manifest's rules selected, once per rule.

    The manifest's ``selection`` (default ``["defaults"]``) and ``trials`` (job id -> draw index) say what to
    do; a run with neither is returned unchanged. Each selected job's rows carry ``selection`` (the rule) and
    ``selected_hparams`` (its setting); ``hparams`` is emptied for every rule but ``defaults``, so one row
    gathers a rule's choices over replicates whatever setting each replicate chose; ``access`` and ``told``
    are as the rule set them; ``entry`` is recomputed (`add_entries`) and the oracle's is marked as an upper
    bound. The manifest copy gains ``selections`` (`selections`: the setting each rule chose per replicate,
    computed here at report time from the stored jobs, so it is never out of date) and ``selection_skipped``
    (why a rule gave no row), which are also added to its ``skipped`` list.
    """
    import copy

    from cowbench.reports.table import add_entries, scenario_label

    manifest = copy.deepcopy(res.manifest) if res.manifest else {}
    rules = check_rules(manifest.get("selection") or ["defaults"])
    trials = manifest.get("trials") or {}
    if rules == ["defaults"] and not trials:
        return res
    skipped: list[dict[str, Any]] = []
    chosen = apply_rules(_job_level(res, trials), rules, skipped=skipped)
    chosen.loc[chosen["selection"] != "defaults", "hparams"] = ""
    keyed = chosen[["job_id", "selection", "selected_hparams", "hparams", "access", "told"]]
    jobs = res.jobs.drop(columns=[c for c in ("selection", "entry", "hparams", "access", "told") if c in res.jobs])
    jobs = add_entries(jobs.merge(keyed, on="job_id", how="inner"))  # marks the oracle's rows as an upper bound
    entries = jobs[["job_id", "selection", "entry"]]
    columns = ["selection", "entry", "hparams", "access", "told"]

    def expand(table: pd.DataFrame) -> pd.DataFrame:
        base = table.drop(columns=[c for c in columns if c in table])
        return base.merge(keyed, on="job_id", how="inner").merge(entries, on=["job_id", "selection"], how="left")

    manifest["selections"] = selections(chosen)
    manifest["selection_skipped"] = skipped
    # the report lists them with the pairs the suite skipped (by scenario spec), once per (scenario, method, rule)
    specs = {scenario_label(spec): spec for spec in (manifest.get("suite") or {}).get("scenarios", [])}
    listed = {(scenario_label(s["scenario"]), s["method"]) for s in manifest.get("skipped", [])
              if str(s.get("reason", "")).startswith("no loeo selection")}
    manifest["skipped"] = list(manifest.get("skipped", [])) + [
        {"scenario": specs[s["scenario"]], "method": s["method"], "reason": f"no {s['selection']} row: {s['reason']}"}
        for s in skipped if s["scenario"] in specs and (s["selection"] != "loeo" or (s["scenario"], s["method"])
                                                        not in listed)]
    return dataclasses.replace(res, frame=expand(res.frame), jobs=jobs, missing=expand(res.missing),
                               manifest=manifest)


# -- leave-one-environment-out: refit without each training environment (run by the job runner) ------------


def loeo_applies(scenario: Any, cls: type) -> str | None:
    """None if ``cls`` gets a ``loeo_acc`` on ``scenario`` (a spec or a `Scenario`), else the reason it does not."""
    if isinstance(scenario, Mapping):
        from cowbench.jobs import scenario_from_spec

        scenario = scenario_from_spec(scenario)
    n = len(scenario.scm.train_envs)
    if n < MIN_LOEO_ENVS:
        return f"{n} training environment(s); leave-one-environment-out needs at least {MIN_LOEO_ENVS}"
    if scenario.scm.label_kind != "binary":
        return "loeo_acc is an accuracy: it needs a binary label"
    if "edit" not in cls.outputs:
        return "the method returns no edited model to score on the held-out environment"
    return None


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


def _fold_subject(rep: Replicate, env: int, train: Split) -> Any:
    """The subject architecture retrained without ``env``: the held-out units must not have shaped the model an
    edit starts from either. Kept for the replicate's other jobs in this process (one replicate at a time)."""
    from cowbench.seeds import derive_seed
    from cowbench.subject import SubjectConfig, fit_fresh, loss_for

    key = (rep.fingerprint, int(env))
    if key not in _FOLDS:
        if any(k[0] != rep.fingerprint for k in _FOLDS):
            _FOLDS.clear()
        cfg = SubjectConfig.from_mapping({k: v for k, v in rep.subject_config.items() if k != "version"})
        seed = derive_seed(0, "loeo-subject", rep.fingerprint, int(env))
        _FOLDS[key] = fit_fresh(cfg, train.x, train.y, seed, loss=loss_for(rep.scenario))
    return _FOLDS[key]


def loeo_accuracy(rep: Replicate, method: Method, fit_seed: int) -> float | Missing | None:
    """Mean over training environments ``e`` of the accuracy, on train's units of ``e``, of ``method`` refit on
    the data without ``e`` (subject retrained without ``e`` as well). None if a fold returns no edited model;
    `Missing` with the reason if a fold's refit raises (the job itself stays ok: its other scores stand)."""
    from cowbench.access import Task
    from cowbench.models import logits
    from cowbench.scores import Missing
    from cowbench.seeds import derive_seed

    accs = []
    for env in np.unique(rep.data.train.env):
        fold = without_env(rep.data, int(env))
        subject = _fold_subject(rep, int(env), fold.train)
        task = Task(rep.scenario, fold, subject, type(method).access, subject_config=rep.subject_config)
        try:
            output = method.clone(random_state=derive_seed(fit_seed, "loeo", int(env))).run(task)
        except Exception as exc:  # e.g. a method that assumes every training environment is present
            return Missing(f"the refit without training environment {int(env)} raised {type(exc).__name__}: "
                           f"{' '.join(str(exc).split())[:200]}")
        if output.edited is None:
            return None
        held = rep.data.train.env == env
        pred = logits(output.edited, rep.data.train.x[held]) > 0
        accs.append(float(np.mean(pred == (np.asarray(rep.data.train.y[held]) == 1))))
    return float(np.mean(accs))
