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

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from cowbench.access import ACCESS_LEVELS
from cowbench.errors import InputError
from cowbench.loeo import loeo_accuracy, without_env  # noqa: F401  (re-exported: the refit runs with the job)
from cowbench.replicate import scenario_from_spec

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


# -- leave-one-environment-out: refit without each training environment (run by the job runner) ------------


def loeo_applies(scenario: Any, cls: type) -> str | None:
    """None if ``cls`` gets a ``loeo_acc`` on ``scenario`` (a spec or a `Scenario`), else the reason it does not."""
    if isinstance(scenario, Mapping):
        scenario = scenario_from_spec(scenario)
    n = len(scenario.scm.train_envs)
    if n < MIN_LOEO_ENVS:
        return f"{n} training environment(s); leave-one-environment-out needs at least {MIN_LOEO_ENVS}"
    if scenario.scm.label_kind != "binary":
        return "loeo_acc is an accuracy: it needs a binary label"
    if "edit" not in cls.outputs:
        return "the method returns no edited model to score on the held-out environment"
    return None
