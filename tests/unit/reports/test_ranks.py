"""Report ranks: ties shared, no crown at chance, no detection rank for a told method, honest aggregation."""

import math

import numpy as np
import pandas as pd
import pytest

from cowbench.reliability import min_resolvable_difference
from cowbench.reports.markdown import render_markdown
from cowbench.reports.table import (
    across_scenarios,
    build_tables,
    rank_methods,
    rank_stability,
    resolvable_differences,
    results_from_frame,
    score_table,
    summarize,
    tied_ranks,
)

INF = math.inf


def scores_table() -> pd.DataFrame:
    base = {"higher_is_better": True, "primary": False, "lower": 0.0, "upper": 1.0, "chance": math.nan,
            "binary": None}
    rows = [{"metric": "err", "track": "world", "higher_is_better": False, "primary": True, "chance": 1.0},
            {"metric": "cos", "track": "world", "lower": -1.0},
            {"metric": "auroc", "track": "detect", "primary": True, "chance": 0.5},
            {"metric": "gain", "track": "edit", "primary": True, "lower": -INF, "upper": INF, "chance": 0.0},
            {"metric": "residual", "track": "edit", "higher_is_better": False, "upper": INF}]
    return pd.DataFrame([{**base, **r} for r in rows]).set_index("metric")


SCORES = scores_table()


def frame(values: dict[str, list[float]], metric: str = "err", scenario: str = "cow", told: str = "",
          told_methods: tuple[str, ...] = ()) -> pd.DataFrame:
    rows = [{"job_id": f"{scenario}-{m}-{r}", "scenario": scenario, "method": m, "hparams": "", "access": "pooled",
             "told": told if m in told_methods else "", "replicate": r, "metric": metric, "value": v}
            for m, vs in values.items() for r, v in enumerate(vs)]
    return pd.DataFrame(rows)


def ranks_of(f: pd.DataFrame) -> pd.DataFrame:
    return rank_methods(summarize(f, scores=SCORES), f, scores=SCORES)


def report(f: pd.DataFrame, missing: pd.DataFrame | None = None) -> str:
    return render_markdown(build_tables(results_from_frame(f, missing), scores=SCORES), title="test")


def table_lines(text: str, heading: str) -> list[str]:
    """The lines of the section under ``heading`` (up to the next heading)."""
    lines = text.splitlines()
    start = lines.index(heading)
    end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("## ")), len(lines))
    return lines[start:end]


def test_ranks_follow_the_metric_direction_and_win_rates_count_beaten_methods():
    r = ranks_of(frame({"a": [0.1, 0.2, 0.3], "b": [0.5, 0.6, 0.7]})).set_index("entry")  # err: lower is better
    assert r.loc["a", "rank"] == 1 and r.loc["b", "rank"] == 2
    assert r.loc["a", "win_rate"] == 1.0 and r.loc["b", "win_rate"] == 0.0


def test_equal_cells_share_a_rank_within_float_noise_and_count_half_a_win():
    assert list(tied_ranks(np.array([0.3, 0.1 + 0.2, 0.5]), higher_is_better=False)) == [1, 1, 3]
    assert list(tied_ranks(np.array([0.0, -0.0, 1e-300]), higher_is_better=True)) == [1, 1, 1]
    assert list(tied_ranks(np.array([0.3, 0.3 + 1e-6]), higher_is_better=True)) == [2, 1]  # a real difference
    base = [0.1, 0.2, 0.3]
    f = frame({"a": base, "b": [v * (1 + 1e-12) for v in base], "c": [0.6, 0.7, 0.8]})
    r = ranks_of(f).set_index("entry")
    assert r.loc["a", "rank"] == r.loc["b", "rank"] == 1 and r.loc["c", "rank"] == 3
    assert r.loc["a", "win_rate"] == r.loc["b", "win_rate"] == pytest.approx(0.75)  # beats c, ties the other


def test_p_best_splits_ties_and_is_one_for_a_method_better_in_every_replicate():
    p = rank_stability(frame({"a": [0.1, 0.2, 0.3], "b": [0.5, 0.6, 0.7]}), scores=SCORES).set_index("entry")
    assert p.loc["a", "p_best"] == 1.0 and p.loc["b", "p_best"] == 0.0
    base = [0.1, 0.2, 0.3]
    tied = rank_stability(frame({"a": base, "b": [v * (1 + 1e-12) for v in base]}), scores=SCORES)
    assert list(tied.p_best) == [0.5, 0.5]  # float noise does not decide who is best
    mixed = rank_stability(frame({"a": [0.1, 0.5, 0.2, 0.4], "b": [0.3, 0.3, 0.3, 0.3]}),
                           scores=SCORES).set_index("entry")["p_best"]
    assert 0 < mixed["a"] < 1 and mixed.sum() == pytest.approx(1.0)


def test_methods_that_all_fail_are_not_crowned():
    # the cow_separable world track: two methods at world_err 1.000 in every replicate
    f = frame({"backdoor_env": [1.0] * 5, "logistic": [1.0] * 5}, metric="world_err")
    scores = score_table()
    assert scores.loc["world_err", "chance"] == 1.0
    r = rank_methods(summarize(f, scores=scores), f, scores=scores)
    assert r["rank"].isna().all() and (r.unranked == "chance").all()
    assert rank_stability(f, r, scores=scores).empty  # and no P(best) 1.00 for either


def test_a_table_where_every_method_is_at_chance_has_no_rank_no_bold_and_says_so():
    # do-nothing detectors: AUROC around 1/2, every interval straddles the chance level
    f = frame({"constant": [0.5] * 5, "coin": [0.0, 1.0, 0.5, 1.0, 0.0], "reversed": [0.25, 0.75, 0.5, 0.5, 0.25]},
              metric="auroc")
    r = ranks_of(f)
    assert r["rank"].isna().all()
    section = table_lines(report(f), "## Detection — cow")
    rows = [line for line in section if line.startswith("| —")]
    assert len(rows) == 3 and not any("**" in line for line in section)
    assert "- no method beats chance (0.5) on auroc: no rank" in section


def test_one_method_above_chance_ranks_the_table_and_only_best_cells_are_bold():
    # each method is ranked only where it beats chance itself: the coin, beside a good detector, gets no rank 2
    f = pd.concat([frame({"good": [0.9, 0.95, 0.92], "coin": [0.0, 1.0, 0.5]}, metric="auroc")])
    r = ranks_of(f).set_index("entry")
    assert r.loc["good", "rank"] == 1 and r.loc["good", "rank_label"] == "1" and bool(r.loc["good", "bold"])
    assert math.isnan(r.loc["coin", "rank"]) and r.loc["coin", "unranked"] == "chance"
    section = table_lines(report(f), "## Detection — cow")
    bold = [line for line in section if "**" in line]
    assert len(bold) == 1 and "| good |" in bold[0]
    assert not any("beats chance" in line for line in section)
    assert "- not ranked, not better than chance (0.5) on auroc by the paired t-test (Holm): coin" in section


def test_a_reversed_method_does_not_beat_chance_in_the_wrong_direction():
    # world_err: lower is better and chance 1; a method stuck at the worst end is not above chance
    f = frame({"reversed": [1.0, 1.0, 1.0], "good": [0.2, 0.3, 0.25]})
    r = ranks_of(f).set_index("entry")
    assert r.loc["good", "rank"] == 1 and math.isnan(r.loc["reversed", "rank"])
    assert ranks_of(frame({"reversed": [1.0, 1.0, 1.0]}))["rank"].isna().all()


def test_a_told_method_is_ranked_in_its_own_league_on_every_track_and_the_report_says_why():
    # a label-peeking detector (reads group labels) is perfect; it must not take the crown of the methods told
    # nothing, on detection or on the world track (group_gap reads the labels that name the spurious variable)
    f = pd.concat([frame({"group_gap": [1.0, 1.0, 1.0], "group_reweight": [1.0, 0.9, 1.0], "env_instability":
                         [0.8, 0.7, 0.9]}, metric="auroc", told="group", told_methods=("group_gap", "group_reweight")),
                   frame({"group_gap": [0.1, 0.2, 0.1], "env_instability": [0.5, 0.6, 0.5]}, metric="err")])
    f["job_id"] = f.scenario + f.method + f.replicate.astype(str)  # one job scores both tracks
    r = ranks_of(f)
    detect = r[r.track == "detect"].set_index("entry")
    assert detect.loc["env_instability", ["rank", "rank_label", "league"]].tolist() == [1, "1", "not told"]
    assert (detect.loc[["group_gap", "group_reweight"], "league"] == "told").all()
    # told league: group_reweight (1, 0.9, 1) is not separable from group_gap (1, 1, 1) in 3 replicates
    assert detect.loc[["group_gap", "group_reweight"], "rank_label"].tolist() == ["1=", "1="]
    assert not detect.loc[["group_gap", "group_reweight"], "bold"].any()
    world = r[r.track == "world"].set_index("entry")
    assert world.loc["group_gap", ["rank", "league"]].tolist() == [1, "told"]
    assert world.loc["env_instability", ["rank", "league"]].tolist() == [1, "not told"]  # alone in its league
    p = rank_stability(f, r, scores=SCORES).set_index(["track", "entry"])["p_best"]
    assert p[("detect", "env_instability")] == 1.0  # P(best) within the league: the told ones are not rivals
    assert p[("detect", "group_gap")] + p[("detect", "group_reweight")] == pytest.approx(1.0)
    section = table_lines(report(f), "## Detection — cow")
    assert "- league `told`, ranked among themselves: told the spurious variable: group_gap (group labels); " \
        "group_reweight (group labels)" in section
    bold = [line for line in section if "**" in line]
    assert len(bold) == 1 and "| env_instability |" in bold[0]
    world_section = table_lines(report(f), "## World recovery — cow")
    assert any(line.startswith("| 1 | 1.00 | group_gap | told |") for line in world_section)


def test_a_told_detector_whose_detection_metrics_are_all_missing_is_named_under_the_detection_table():
    # records with ``told``: the scorer leaves every detection metric of a told job missing, so the method
    # has no row in the detection table; the line still says why it is not ranked there
    f = pd.concat([frame({"group_gap": [0.1, 0.2, 0.1], "env_instability": [0.5, 0.6, 0.5]}, metric="err"),
                   frame({"env_instability": [0.9, 0.8, 0.9]}, metric="auroc"),
                   frame({"group_reweight": [0.5, 0.6, 0.7]}, metric="gain")])
    f["job_id"] = f.scenario + f.method + f.replicate.astype(str)
    f["told"] = np.where(f.method.isin(["group_gap", "group_reweight"]), "edit_target,group", "")
    f["detects"] = f.method != "group_reweight"  # an edit method: not a detector, not listed
    section = table_lines(report(f), "## Detection — cow")
    assert "- no detection value: told the spurious variable: group_gap (the edit target and group labels)" \
        in section
    assert not any("group_reweight" in line for line in section)
    assert sum(line.startswith("| 1 | 1.00 | env_instability |") for line in section) == 1


def test_missing_metrics_are_counted_with_their_reason_once():
    f = frame({"erase": [0.5, 0.6, 0.7, 0.6, 0.5], "retrain": [0.1, 0.2, 0.1, 0.3, 0.2],
               "reweight": [0.1, 0.2, 0.1, 0.3, 0.2]}, metric="gain")
    jobs = f.drop_duplicates("job_id").drop(columns="value").assign(metric="residual")
    # the guard's reason carries each replicate's numbers: one line per setting, the first as an example
    erase = jobs[jobs.method == "erase"].assign(reason=[f"base = {0.001 * (r + 1):.4g} below 3 x 0.01 (n = 2000)"
                                                        for r in range(5)])
    # the same reason, word for word, in 2 of 5 replicates of two settings: one line naming both
    few = jobs[jobs.method.isin(["retrain", "reweight"]) & (jobs.replicate < 2)].assign(reason="no shortcut")
    section = table_lines(report(f, pd.concat([erase, few])), "## Edit — cow")
    assert "- residual missing in 5/5 replicates of erase: e.g. base = 0.001 below 3 x 0.01 (n = 2000)" in section
    assert "- residual missing in 2/5 replicates of retrain, reweight: no shortcut" in section
    assert sum("missing in" in line for line in section) == 2


def test_across_scenarios_compares_methods_only_on_scenarios_they_share():
    # a: ranked everywhere; b: s1 and s2 (ties a on s2); c: only s3, where it beats a.
    # Mean rank over each method's own scenarios would put c first with 1.00 from one scenario.
    f = pd.concat([frame({"a": [0.1, 0.1], "b": [0.5, 0.5]}, scenario="s1"),
                   frame({"a": [0.3, 0.3], "b": [0.3, 0.3]}, scenario="s2"),
                   frame({"a": [0.4, 0.4], "c": [0.2, 0.2]}, scenario="s3")])
    agg = across_scenarios(ranks_of(f)).set_index("entry")
    # contests: a-b on s1 (a wins), a-b on s2 (tie), a-c on s3 (c wins)
    assert agg.loc["a", "win_rate"] == pytest.approx(1.5 / 3) and agg.loc["a", "contests"] == 3
    assert agg.loc["b", "win_rate"] == pytest.approx(0.5 / 2) and agg.loc["b", "contests"] == 2
    assert agg.loc["c", "win_rate"] == 1.0 and agg.loc["c", "contests"] == 1
    assert list(agg.scenarios) == [3, 2, 1] and (agg.tables == 3).all()
    section = table_lines(report(f), "## Across scenarios: pairwise win rate per track")
    rows = [line for line in section if line.startswith("| world |")]
    # c's perfect rate comes from one scenario of three: below the coverage floor, listed last without a rank
    assert rows == ["| world | not told | 1 | a | pooled | 0.50 | 3 | 3/3 |",
                    "| world | not told | 2 | b | pooled | 0.25 | 2 | 2/3 |",
                    "| world | not told | — | c | pooled | 1.00 | 1 | 1/3 |"]
    assert agg.loc["c", "unranked"] == "coverage" and math.isnan(agg.loc["c", "rank"])


def test_across_scenarios_leaves_out_tables_without_ranks():
    f = pd.concat([frame({"a": [0.1, 0.1], "b": [0.5, 0.5]}, scenario="s1"),
                   frame({"a": [1.0, 1.0], "b": [1.0, 1.0]}, scenario="s2")])  # both at chance on s2
    agg = across_scenarios(ranks_of(f)).set_index("entry")
    assert (agg.tables == 1).all() and agg.loc["a", "contests"] == 1


def test_min_resolvable_difference_pools_paired_differences_over_the_tracks_tables():
    # the two leading (ranked: well above the chance level 0) methods of each table; per-replicate differences
    # a - b: s1 (1, 2, 3) var 1, df 2; s2 (0, 4, 2) var 4, df 2 -> pooled var 10/4
    f = pd.concat([frame({"a": [1.2, 1.4, 1.6], "b": [1.1, 1.2, 1.3]}, metric="gain", scenario="s1"),
                   frame({"a": [1.5, 1.9, 1.7], "b": [1.5, 1.5, 1.5]}, metric="gain", scenario="s2")])
    f["value"] = f.value * 10
    out = resolvable_differences(f, scores=SCORES).set_index("metric").loc["gain"]
    sd = math.sqrt(10 / 4)
    assert out.sd_diff == pytest.approx(sd) and out.dof == 4 and out.pairs == 2
    assert out.n == 3 and out.mrd == pytest.approx(min_resolvable_difference(sd, 3))
    header = report(f).splitlines()
    line = next(x for x in header if x.startswith("- min. resolvable difference"))
    assert f"gain {min_resolvable_difference(sd, 3):.3f}" in line


def test_cells_print_the_interval_and_n():
    text = report(frame({"a": [0.2, 0.6]}))
    assert "| a | pooled | 0.400 [0.200, 0.600] (2) |" in text  # the n = 2 percentile bootstrap: the two values
    assert "±" not in text


def test_a_table_without_its_primary_metric_says_why_it_has_no_rank():
    section = table_lines(report(frame({"a": [0.2, 0.3], "b": [0.4, 0.5]}, metric="cos")), "## World recovery — cow")
    assert "- no rank: no method has a value of the track's primary metric err" in section
    assert not any("**" in line for line in section)


def test_header_names_the_versions_and_machine_the_results_were_made_with():
    from cowbench import __version__
    from cowbench.fingerprint import fingerprint_summary
    from cowbench.reports.table import machine_line
    from cowbench.scores import scorer_version

    fp = {"cpu": "Test CPU", "machine": "x86_64", "simd": ["avx2"], "torch": {"version": "9"}, "blas": [], "env": {}}
    other = {**fp, "cpu": "Other CPU"}
    assert machine_line([{"fingerprint": fp}, {"fingerprint": fp}]) == fingerprint_summary(fp)
    assert machine_line([{"fingerprint": fp}, {"fingerprint": other}]).startswith("2 machines: ")
    assert machine_line([{"machine": "x86_64", "host": "vm"}]).startswith("no machine fingerprint")
    res = results_from_frame(frame({"a": [0.2, 0.3]}))
    res.jobs["scorer"] = "0ld5c0re"
    res.runs.extend([{"fingerprint": fp, "versions": {"cowbench": "0.0.1"}}])
    text = render_markdown(build_tables(res, scores=SCORES))
    assert f"cowbench 0.0.1 (installed: {__version__})" in text
    assert f"scorer `0ld5c0re` (installed scorer `{scorer_version()}`: these results predate it)" in text
    assert f"- machine: {fingerprint_summary(fp)}" in text.splitlines()


def test_a_significant_but_unprinted_difference_from_chance_does_not_rank_a_table():
    # the cow_separable world track: world_err 0.9998 (cosine 0.02) prints as 1.000, chance 1
    f = frame({"backdoor_env": [0.99981, 0.99982, 0.99983], "logistic": [0.99980, 0.99981, 0.99982]})
    s = summarize(f, scores=SCORES)
    assert (s.hi < 1.0).all()  # the intervals do clear chance, by 2e-4
    assert ranks_of(f)["rank"].isna().all()
    section = table_lines(report(f), "## World recovery — cow")
    assert "- no method beats chance (1) on err: no rank" in section and not any("**" in x for x in section)


def test_cells_never_print_negative_zero():
    from cowbench.reports.text import cell_text

    assert cell_text(-1e-6, -2e-6, 1e-6, 5) == "0.000 [0.000, 0.000] (5)"
    assert cell_text(-0.0006, -0.001, 0.0, 5) == "-0.001 [-0.001, 0.000] (5)"


def test_two_primary_metrics_on_one_track_are_refused_by_name():
    scores = SCORES.copy()
    scores.loc["cos", "primary"] = True
    with pytest.raises(ValueError, match="track 'world' has several primary metrics \\(err, cos\\)"):
        f = frame({"a": [0.1, 0.2]})
        rank_methods(summarize(f, scores=scores), f, scores=scores)


def test_a_method_that_answers_only_in_easy_replicates_is_not_ranked():
    # "cherry" gives a value only in the replicates where it does well: its mean would win
    f = frame({"steady": [0.3, 0.3, 0.3, 0.3, 0.3], "cherry": [0.1, 0.1]})
    r = ranks_of(f).set_index("entry")
    assert r.loc["steady", "rank"] == 1 and math.isnan(r.loc["cherry", "rank"])
    assert r.loc["cherry", "unranked"] == "incomplete"
    section = table_lines(report(f), "## World recovery — cow")
    assert any(line.startswith("- not ranked: err in fewer replicates than the others") and
               line.endswith(": cherry 2/5") for line in section)
    # a replicate missing for every method (a scenario-level guard) leaves the table paired and ranked
    r = ranks_of(frame({"a": [0.3, 0.3, 0.3], "b": [0.1, 0.2, 0.1]})).set_index("entry")
    assert list(r["rank"]) == [2, 1]


def test_unranked_rows_are_ordered_by_name_not_by_hash_order():
    # every method at chance: no ranks; rows used to follow set iteration order, which Python salts per process
    names = ["zeta", "alpha", "mid", "beta", "omega"]
    f = frame({n: [1.0, 1.0] for n in names})
    section = table_lines(report(f), "## World recovery — cow")
    rows = [line.split(" | ")[2] for line in section if line.startswith("| —")]
    assert rows == sorted(names)
