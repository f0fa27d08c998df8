"""Ranks a paired test backs (issue 16 section 3), on constructed tables with attack methods.

One paired t-test (Holm over a table's comparisons) decides whether a method is ranked at all (it must beat the
best control of its table) and whether it shares the leader's rank; a told method is ranked in its own league
on every track; a job the audit hook flagged is ranked nowhere; the oracle selection rule's rows are labelled
as an upper bound. The expected values are worked out by hand (or by scipy's `ttest_rel`) in the comments.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy.stats import ttest_rel

from cowbench.reports.table import (
    UPPER_BOUND_MARK,
    build_tables,
    rank_stability,
    results_from_frame,
    tidy_cells,
)
from cowbench.stats import RANK_RULE

from .test_ranks import SCORES, frame, ranks_of, report, table_lines

# a model-track metric like model_err: lower is better, range [0, 1], declared chance 1 (what the issue found
# a constant attribution beating at 0.02)
MODEL_SCORES = pd.concat([SCORES, pd.DataFrame([
    {"metric": "model_err", "track": "model", "higher_is_better": False, "primary": True, "lower": 0.0,
     "upper": 1.0, "chance": 1.0, "binary": None}]).set_index("metric")])


def test_a_tied_pair_with_a_high_bootstrap_p_best_shares_rank_one_and_nothing_is_bold():
    # a is better than b in 4 of 5 replicates by about 0.01 and worse in one: the bootstrap says P(best) 0.94,
    # the paired t-test says p = 0.196 (scipy below): not separated, so both are "1=" and neither is bold
    b = [0.30, 0.40, 0.35, 0.45, 0.38]
    d = [0.01, 0.012, 0.009, 0.011, -0.01]
    a = [x - y for x, y in zip(b, d, strict=True)]
    assert ttest_rel(a, b).pvalue == pytest.approx(0.196, abs=1e-3)
    f = frame({"a": a, "b": b})
    r = ranks_of(f).set_index("entry")
    assert r["rank"].tolist() == [1, 1] and r["rank_label"].tolist() == ["1=", "1="]
    assert not r["bold"].any()
    assert r.loc["b", "p_leader"] == pytest.approx(ttest_rel(a, b).pvalue)  # one comparison: Holm changes nothing
    p_best = rank_stability(f, ranks_of(f), scores=SCORES).set_index("entry")["p_best"]
    assert p_best["a"] >= 0.9  # high P(best) alone does not make a rank or a bold cell
    section = table_lines(report(f), "## World recovery — cow")
    assert not any("**" in line for line in section)
    assert sum(line.startswith("| 1= |") for line in section) == 2
    # the same pair 10x further apart (every replicate says a is better): separated, a alone at 1 and bold
    far = frame({"a": [x - 10 * y for x, y in zip(b, [0.01, 0.012, 0.009, 0.011, 0.01], strict=True)], "b": b})
    r = ranks_of(far).set_index("entry")
    assert r["rank_label"].tolist() == ["1", "2"] and r["bold"].tolist() == [True, False]


def test_a_constant_attribution_control_that_beats_a_real_method_leaves_it_unranked():
    # the linear_sem: a constant attribution scores model_err 0.019 and would rank above vrex_linear;
    # the declared chance level 1.0 would let all three real methods through. The measured control level decides.
    f = frame({"constant_attribution": [0.02, 0.018, 0.019, 0.02, 0.018],
               "vrex_linear": [0.30, 0.25, 0.35, 0.28, 0.32],
               "grad_x_input": [0.019, 0.021, 0.02, 0.018, 0.019],
               "good": [0.005, 0.01, 0.008, 0.006, 0.007]}, metric="model_err")
    f["control"] = f["method"] == "constant_attribution"
    tables = build_tables(results_from_frame(f), scores=MODEL_SCORES)
    r = tables.ranks.set_index("method")
    assert r.loc["constant_attribution", "unranked"] == "control" and r.loc["constant_attribution", "control"]
    assert r.loc["vrex_linear", "unranked"] == "below control" and math.isnan(r.loc["vrex_linear", "rank"])
    assert r.loc["grad_x_input", "unranked"] == "below control"  # no better than the control either
    assert r.loc["good", "rank_label"] == "1" and r.loc["good", "bold"]
    assert (r["gate"] == "constant_attribution (control)").all()
    assert set(tables.stability.entry) == {"good"}  # P(best) only among the ranked
    md = render_markdown_of(tables)
    section = table_lines(md, "## Model recovery — cow")
    assert "- not ranked, not better than the best control (constant_attribution (control)) on model_err by the " \
        "paired t-test (Holm): grad_x_input, vrex_linear" in section
    assert any(line.startswith("| — | — | constant_attribution (control) |") for line in section)
    cells = tidy_cells(tables).set_index("method")
    assert cells.loc["constant_attribution", "control"] and not cells.loc["good", "control"]
    assert cells.loc["vrex_linear", "rank_label"] == "" and cells.loc["good", "rank_label"] == "1"
    assert (cells["gate"] == "constant_attribution (control)").all()


def test_a_table_where_nothing_beats_the_best_control_ranks_nobody_and_says_so():
    f = frame({"constant_attribution": [0.02] * 4, "vrex_linear": [0.30, 0.25, 0.35, 0.28]}, metric="model_err")
    f["control"] = f["method"] == "constant_attribution"
    tables = build_tables(results_from_frame(f), scores=MODEL_SCORES)
    assert tables.ranks["rank"].isna().all() and tables.stability.empty
    section = table_lines(render_markdown_of(tables), "## Model recovery — cow")
    assert "- no method beats the best control (constant_attribution (control), 0.020) on model_err by the paired " \
        "t-test (Holm): no rank" in section
    assert not any("**" in line for line in section)


def test_a_group_label_world_method_sits_in_the_told_league():
    # group_gap reads group labels (which name the spurious variable) and is best on the world track: it leads
    # the told league, and the league of methods told nothing has its own leader and its own bold cell
    f = frame({"group_gap": [0.05, 0.06, 0.05], "irm_linear": [0.30, 0.35, 0.32], "logistic": [0.50, 0.52, 0.55]},
              told="group", told_methods=("group_gap",))
    r = ranks_of(f).set_index("entry")
    assert r.loc["group_gap", ["league", "rank_label", "bold"]].tolist() == ["told", "1", True]
    assert r.loc["irm_linear", ["league", "rank_label", "bold"]].tolist() == ["not told", "1", True]
    assert r.loc["logistic", ["league", "rank_label"]].tolist() == ["not told", "2"]
    assert r.loc["irm_linear", "win_rate"] == 1.0  # group_gap is not its opponent
    section = table_lines(report(f), "## World recovery — cow")
    rows = [line for line in section if line.startswith("| 1 ") or line.startswith("| 2 ")]
    assert [row.split(" | ")[2:4] for row in rows] == [["irm_linear", "not told"], ["logistic", "not told"],
                                                       ["group_gap", "told"]]  # untold league first


def test_an_audit_flagged_job_is_unranked_in_every_track():
    # "peek" is best on world and detection, but the audit hook saw it open a file: no rank anywhere
    f = pd.concat([frame({"peek": [0.01, 0.02, 0.01], "honest": [0.3, 0.35, 0.32]}, metric="err",
                         told="audit:open", told_methods=("peek",)),
                   frame({"peek": [1.0, 1.0, 1.0], "honest": [0.8, 0.85, 0.9]}, metric="auroc",
                         told="audit:open", told_methods=("peek",)),
                   frame({"peek": [0.5, 0.6, 0.55], "honest": [0.1, 0.15, 0.12]}, metric="gain",
                         told="audit:open", told_methods=("peek",))])
    f["job_id"] = f.scenario + f.method + f.replicate.astype(str)
    tables = build_tables(results_from_frame(f), scores=SCORES)
    peek = tables.ranks[tables.ranks.method == "peek"]
    assert len(peek) == 3 and (peek["unranked"] == "audit").all() and peek["rank"].isna().all()
    assert "peek" not in set(tables.stability.entry) and "peek" not in set(tables.across.entry)
    honest = tables.ranks[tables.ranks.method == "honest"]
    assert (honest["rank_label"] == "1").all()  # the honest method leads each track
    # an audit route is not a telling route: it does not put the job in the told league
    assert (peek[peek.track != "edit"]["league"] == "not told").all()
    assert (peek[peek.track == "edit"]["league"] == "pooled").all()
    md = render_markdown_of(tables)
    for heading in ("## World recovery — cow", "## Detection — cow", "## Edit — cow"):
        section = table_lines(md, heading)
        assert "- not ranked in any track: the audit hook saw the method reach outside its task: peek " \
            "(audit:open)" in section, heading


def test_the_oracle_rules_rows_are_labelled_an_upper_bound_in_their_own_table():
    rows = []
    for rule, values in (("train_val", {"a": 0.3, "b": 0.2}), ("oracle", {"a": 0.05, "b": 0.1})):
        for method, v in values.items():
            for r in range(3):
                rows.append({"job_id": f"{rule}-{method}-{r}", "scenario": "s1", "method": method, "hparams": "",
                             "access": "pooled", "told": "", "replicate": r, "metric": "err",
                             "value": v + 0.01 * r + 0.001 * (r == 1) * (method == "a"), "selection": rule})
    tables = build_tables(results_from_frame(pd.DataFrame(rows)), scores=SCORES)
    cells = tidy_cells(tables)
    oracle = cells[cells.selection == "oracle"]
    assert oracle["upper_bound"].all() and not cells.loc[cells.selection != "oracle", "upper_bound"].any()
    assert set(oracle.entry) == {f"a [oracle]{UPPER_BOUND_MARK}", f"b [oracle]{UPPER_BOUND_MARK}"}
    md = render_markdown_of(tables)
    heading = "## World recovery — s1 — selection: test-domain oracle on test_bal (upper bound)"
    section = table_lines(md, heading)
    assert any(f"| a [oracle]{UPPER_BOUND_MARK} |" in line for line in section)
    assert not any("train_val" in line for line in section)  # one rule per table
    other = table_lines(md, "## World recovery — s1 — selection: training-domain validation (val accuracy)")
    assert not any("oracle" in line for line in other)


def test_the_header_and_the_tables_state_the_rule():
    tables = build_tables(results_from_frame(frame({"a": [0.1, 0.2, 0.15]})), scores=SCORES)
    assert tables.rank_rule == RANK_RULE == tables.provenance["rank_rule"]
    assert "Holm" in RANK_RULE and "paired two-sided t-test" in RANK_RULE
    header = render_markdown_of(tables).split("\n## ")[0]
    assert RANK_RULE in header


def render_markdown_of(tables) -> str:
    from cowbench.reports.markdown import render_markdown

    return render_markdown(tables, title="test")


def test_holm_over_the_leaders_comparisons_is_applied():
    # three challengers, each 0.05 worse than the leader with a paired s.d. of 0.038 (raw p 0.024 at n = 6):
    # every raw test would separate them, Holm over 3 comparisons does not
    rng = np.random.default_rng(0)
    lead = rng.uniform(0.1, 0.2, size=6)
    noise = np.array([1.0, -1.0, 1.0, -1.0, 1.0, -1.0])
    values = {"lead": list(lead)}
    for k, name in enumerate(("x", "y", "z")):
        d = 0.05 + 0.035 * np.roll(noise, k)
        values[name] = list(lead + d)
    f = frame(values)
    raw = {n: ttest_rel(values[n], values["lead"]).pvalue for n in ("x", "y", "z")}
    assert all(0.01 < p < 0.05 for p in raw.values())
    r = ranks_of(f).set_index("entry")
    assert (r["rank_label"] == "1=").all()
    assert r.loc["x", "p_leader"] == pytest.approx(min(1.0, 3 * raw["x"]))


def test_the_headers_resolvable_difference_is_the_leading_pairs_not_a_broken_methods():
    # a and b lead and differ by a steady 0.1 +- 0.01; "broken" swings wildly. Pooled over every pair of the
    # table (the old header) broken's swings dominate; between the two leaders the noise is 0.01
    from cowbench.reports.table import leading_pairs, resolvable_differences
    from cowbench.stats import min_resolvable_difference

    base = np.array([0.20, 0.25, 0.22, 0.27, 0.24])
    wobble = np.array([0.01, -0.01, 0.0, 0.01, -0.01])
    f = frame({"a": list(base), "b": list(base + 0.1 + wobble), "broken": [0.1, 0.9, 0.2, 0.8, 0.5],
               "ctrl": [0.95] * 5})
    f["control"] = f["method"] == "ctrl"
    pairs = leading_pairs(f, scores=SCORES)
    (row,) = pairs.itertuples()
    assert (row.a, row.b, row.league, row.n_pairs) == ("a", "b", "not told", 5)
    assert row.sd_diff == pytest.approx(np.std(wobble, ddof=1))
    out = resolvable_differences(f, scores=SCORES).set_index("metric").loc["err"]
    assert out.mrd == pytest.approx(min_resolvable_difference(np.std(wobble, ddof=1), 5)) and out.pairs == 1
    assert out.mrd < 0.05  # pooled over every pair of the table, as the header used to, it is 0.40
