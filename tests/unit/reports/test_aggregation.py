"""Aggregation across scenarios on a constructed case: different scenario sets, ties, access levels, settings."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from cowbench.reports.table import (
    MIN_COVERAGE,
    across_scenarios,
    add_entries,
    rank_methods,
    summarize,
    tidy_cells,
)

INF = math.inf
SCORES = pd.DataFrame([
    {"metric": "err", "track": "world", "higher_is_better": False, "primary": True, "lower": 0.0, "upper": 1.0,
     "chance": 1.0, "binary": None},
]).set_index("metric")


def frame(table: dict[str, dict[str, float]], access: dict[str, str], reps: int = 2) -> pd.DataFrame:
    """scenario -> {entry: value} (the same value in every replicate: means are exact); ``entry`` may carry
    hyperparameters as ``method|hparams``."""
    rows = []
    for scenario, values in table.items():
        for entry, v in values.items():
            method, _, hparams = entry.partition("|")
            for r in range(reps):
                rows.append({"job_id": f"{scenario}-{entry}-{r}", "scenario": scenario, "method": method,
                             "hparams": hparams, "access": access[method], "told": "", "replicate": r,
                             "metric": "err", "value": v + 0.01 * r})  # a spread, so intervals clear chance
    return add_entries(pd.DataFrame(rows))


def across(f: pd.DataFrame) -> pd.DataFrame:
    return across_scenarios(rank_methods(summarize(f, scores=SCORES), f, scores=SCORES))


ACCESS = {"a": "pooled", "b": "pooled", "c": "pooled", "only1": "pooled", "e": "pooled+env", "g": "pooled+env"}


def test_win_rates_count_only_shared_scenarios_and_ties_as_half():
    # s1..s4. a and b everywhere; c on s1, s2 only; only1 on s4 only (where it is best of all)
    table = {"s1": {"a": 0.1, "b": 0.2, "c": 0.3},
             "s2": {"a": 0.3, "b": 0.3, "c": 0.1},   # a ties b
             "s3": {"a": 0.2, "b": 0.1},
             "s4": {"a": 0.5, "b": 0.4, "only1": 0.05}}
    agg = across(frame(table, ACCESS)).set_index("entry")
    # by hand: contests a: s1 (b: win, c: win), s2 (b: tie, c: loss), s3 (b: loss), s4 (b: loss, only1: loss)
    assert agg.loc["a", "contests"] == 7 and agg.loc["a", "win_rate"] == pytest.approx(2.5 / 7)
    # b: s1 (a: loss, c: win), s2 (a: tie, c: loss), s3 (a: win), s4 (a: win, only1: loss)
    assert agg.loc["b", "contests"] == 7 and agg.loc["b", "win_rate"] == pytest.approx(3.5 / 7)
    # c: s1 (a, b: losses), s2 (a, b: wins)
    assert agg.loc["c", "contests"] == 4 and agg.loc["c", "win_rate"] == pytest.approx(0.5)
    assert agg.loc["only1", "win_rate"] == 1.0 and agg.loc["only1", "scenarios"] == 1
    assert (agg["tables"] == 4).all()
    # coverage: c 2/4 = 50% is ranked; only1 1/4 is not, whatever its rate
    assert MIN_COVERAGE == 0.5
    assert agg.loc["only1", "unranked"] == "coverage" and math.isnan(agg.loc["only1", "rank"])
    # b and c tie at 0.5 (from different opponents, each on the scenarios it shares with them)
    assert agg.loc["b", "rank"] == agg.loc["c", "rank"] == 1 and agg.loc["a", "rank"] == 3
    assert list(agg.index) == ["b", "c", "a", "only1"]  # by rank (wider coverage first), the unranked last


def test_equal_win_rates_share_a_rank_and_rows_are_ranked_within_each_access_level():
    table = {"s1": {"a": 0.1, "b": 0.2, "e": 0.3, "g": 0.4},
             "s2": {"a": 0.2, "b": 0.1, "e": 0.3, "g": 0.4}}
    agg = across(frame(table, ACCESS))
    assert list(agg["access"]) == ["pooled", "pooled", "pooled+env", "pooled+env"]  # fewer levels first
    pooled = agg[agg.access == "pooled"].set_index("entry")
    # a: s1 beats b, e, g; s2 beats e, g, loses to b -> 5 of 6; b mirrors it
    assert pooled.loc["a", "win_rate"] == pooled.loc["b", "win_rate"] == pytest.approx(5 / 6)
    assert pooled.loc["a", "rank"] == pooled.loc["b", "rank"] == 1  # a tie shares the rank
    env = agg[agg.access == "pooled+env"]
    assert list(env["entry"]) == ["e", "g"] and list(env["rank"]) == [1, 2]  # ranks restart per access level


def test_each_hyperparameter_setting_and_selection_rule_is_its_own_row():
    table = {"s1": {"a|lr=0.1": 0.1, "a|lr=1": 0.5, "b": 0.3}, "s2": {"a|lr=0.1": 0.2, "a|lr=1": 0.6, "b": 0.3}}
    f = frame(table, ACCESS)
    summary = summarize(f, scores=SCORES)
    assert set(summary.entry) == {"a(lr=0.1)", "a(lr=1)", "b"}
    assert (summary.n == 2).all()  # two replicates each: settings are never pooled as if replicates
    agg = across_scenarios(rank_methods(summary, f, scores=SCORES)).set_index("entry")
    assert agg.loc["a(lr=0.1)", "rank"] == 1 and agg.loc["a(lr=1)", "rank"] == 3
    # two selection rules of one method: two rows, named by rule; a frame without the column is "defaults"
    rules = pd.concat([f.assign(selection="train_val"),
                       f.assign(selection="oracle", job_id=f.job_id + "o")]).drop(columns="entry")
    summary = summarize(add_entries(rules), scores=SCORES)
    assert {"a(lr=0.1) [oracle] (upper bound)", "a(lr=0.1) [train_val]", "b [oracle] (upper bound)"} \
        <= set(summary.entry)
    assert set(summary.selection) == {"train_val", "oracle"} and (summary.n == 2).all()
    assert set(summarize(f.drop(columns="selection"), scores=SCORES).selection) == {"defaults"}


def test_tidy_cells_carry_rank_p_best_and_best_flag(synthetic_tables):
    cells = tidy_cells(synthetic_tables)
    err = cells[cells.metric == "world_err"].set_index(["scenario", "method"])
    # cow: a_method leads, separated from b and c by the paired test: its primary cell is bold, and only that
    assert err.loc[("cow", "a_method"), "best"] and err.loc[("cow", "a_method"), "bold"]
    assert cells["bold"].sum() == 1 and not cells.loc[~cells["primary"], "bold"].any()
    # four_groups: b and c tie, and a_method (0.22 worse, 3 replicates) is not separated from them either:
    # all three share rank 1 and nothing is bold, whatever P(best) says
    assert not err.loc["four_groups", "best"].any()
    assert set(err.loc["four_groups", "rank_label"]) == {"1="}
    assert err.loc[("four_groups", "a_method"), "p_best"] == 0.0
    assert (cells.loc[cells.method == "a_method", "league"] == "not told").all()
    assert not cells["control"].any() and not cells["upper_bound"].any()
    assert (cells.family == cells.scenario).all() and set(cells.track) == {"world"}


def test_each_selection_rule_is_its_own_table():
    """A setting picked on test data (oracle) is never ranked against one picked on validation data."""
    rows = []
    for rule, values in (("train_val", {"a": 0.3, "b": 0.2}), ("oracle", {"a": 0.05, "b": 0.1})):
        for method, v in values.items():
            for r in range(2):
                rows.append({"job_id": f"{rule}-{method}-{r}", "scenario": "s1", "method": method, "hparams": "",
                             "access": "pooled", "told": "", "replicate": r, "metric": "err",
                             "value": v + 0.01 * r, "selection": rule})
    f = add_entries(pd.DataFrame(rows))
    ranks = rank_methods(summarize(f, scores=SCORES), f, scores=SCORES).set_index("entry")
    by_rule = {(m, rule): ranks.loc[e, "rank"] for e, m, rule in zip(ranks.index, ranks["method"],
                                                                     ranks["selection"], strict=True)}
    # within each rule two contestants: b wins under train_val, a under oracle; no rank 3 or 4 exists
    assert by_rule == {("a", "train_val"): 2.0, ("b", "train_val"): 1.0, ("a", "oracle"): 1.0,
                       ("b", "oracle"): 2.0}
    agg = across_scenarios(rank_methods(summarize(f, scores=SCORES), f, scores=SCORES))
    assert set(agg["contests"]) == {1}  # one opponent each: the same method under another rule is none
