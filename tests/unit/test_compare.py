"""Paired comparison on constructed sides with a known difference: the interval, the sign test's exact
p-value, the direction of lower-is-better metrics, the pairing key, and the verdicts."""

import math

import numpy as np
import pandas as pd
import pytest
from scipy.stats import t as student_t

from cowbench.compare import PAIR_KEY, compare_sides, sign_test, verdicts

NOISE = np.array([0.02, -0.01, 0.03, -0.02, 0.0, 0.01, -0.03, 0.02])
N = len(NOISE)


def side(shift: float, *, metric: str = "edit_score", entry: str = "m", seeds=None, scenario: str = "cow"):
    seeds = list(range(100, 100 + N)) if seeds is None else seeds
    rows = [{"scenario_id": "s" + scenario, "replicate": r, "data_seed": seeds[r], "scenario": scenario,
             "method": entry, "hparams": "", "entry": entry, "access": "pooled", "metric": metric,
             "value": 0.5 + 0.1 * r + shift + (NOISE[r] if shift else 0.0)} for r in range(N)]
    return pd.DataFrame(rows)


def test_a_known_shift_is_found_with_its_t_interval_and_exact_sign_test():
    a, b = side(0.1), side(0.0)
    (cell,) = compare_sides(a, b).itertuples()
    d = 0.1 + NOISE
    half = student_t.ppf(0.975, N - 1) * d.std(ddof=1) / math.sqrt(N)
    assert cell.n == N and cell.mean_diff == pytest.approx(d.mean(), abs=1e-12)
    assert (cell.lo, cell.hi) == pytest.approx((d.mean() - half, d.mean() + half), abs=1e-12)
    assert cell.sign_p == pytest.approx(2 * 0.5 ** N)  # every pair favours A: two-sided exact binomial tail
    assert (cell.a_wins, cell.b_wins, cell.better) == (N, 0, "A")
    (back,) = compare_sides(b, a).itertuples()  # swapping the sides reverses the verdict, not the evidence
    assert (back.mean_diff, back.better, back.sign_p) == pytest.approx((-cell.mean_diff, "B", cell.sign_p))


def test_lower_is_better_metrics_favour_the_smaller_side():
    a, b = side(0.1, metric="world_err"), side(0.0, metric="world_err")
    (cell,) = compare_sides(a, b).itertuples()
    assert cell.mean_diff > 0 and (cell.better, cell.a_wins, cell.b_wins) == ("B", 0, N)


def test_a_side_against_itself_has_no_difference():
    a = side(0.1)
    (cell,) = compare_sides(a, a).itertuples()
    assert cell.mean_diff == 0 and cell.sign_p == 1.0 and cell.better == "" and cell.a_wins == cell.b_wins == 0
    (v,) = verdicts(compare_sides(a, a))
    assert "no resolvable difference" in v.text and (v.a, v.b, v.neither) == (0, 0, 1)


def test_pairs_need_the_same_scenario_replicate_and_data_seed():
    a = side(0.1)
    b = side(0.0, seeds=[100, 101, 102, 999, 104, 105, 106, 107])  # replicate 3 drew other data
    assert compare_sides(a, b).iloc[0]["n"] == N - 1
    assert compare_sides(a, side(0.0, seeds=list(range(200, 200 + N)))).empty
    assert compare_sides(a, side(0.0, scenario="other")).empty
    assert compare_sides(a, side(0.0, entry="other")).empty  # two directories: a setting meets only itself
    two = compare_sides(a, side(0.0, entry="other"), by_entry=False)  # two methods: paired across them
    assert list(two.entry) == ["m − other"] and two.iloc[0]["better"] == "A"
    assert set(PAIR_KEY) <= set(a.columns)


def test_verdict_counts_primary_cells_per_track_and_says_mixed():
    a = pd.concat([side(0.1), side(-0.1, scenario="b"), side(0.0, scenario="c")])
    b = pd.concat([side(0.0), side(0.0, scenario="b"), side(0.0, scenario="c")])
    b.loc[b.scenario == "c", "value"] += NOISE  # c: a difference that averages to zero-ish, interval covers 0
    (v,) = verdicts(compare_sides(a, b))
    assert (v.track, v.a, v.b, v.neither) == ("edit", 1, 1, 1) and v.text.startswith("edit: mixed")


def test_sign_test_drops_ties():
    p, up, down = sign_test(np.array([1.0, 1.0, 2.0]), np.array([1.0, 0.0, 1.0]))
    assert (up, down) == (2, 0) and p == pytest.approx(0.5)


def test_the_verdict_follows_the_paired_t_test_and_says_when_the_sign_test_cannot_reach_significance():
    # issue 19: at 3 pairs the t interval says "A better" while the exact sign test prints p = 0.25, which no
    # data could push below 0.05 (2 x 0.5^3); the report says which test the verdict follows and why
    from scipy.stats import ttest_rel

    from cowbench.compare import render_comparison

    a, b = side(0.1).iloc[:3], side(0.0).iloc[:3]
    (cell,) = compare_sides(a, b).itertuples()
    assert cell.better == "A" and cell.sign_p == pytest.approx(0.25) and not cell.sign_can_reject
    assert cell.t_p == pytest.approx(ttest_rel(a.value, b.value).pvalue) and cell.t_p < 0.05
    text = render_comparison(compare_sides(a, b), "x", "y")
    assert "The verdicts follow the paired t-test" in text
    assert "cannot reach significance below 6 differing pairs" in text
    assert "| 0.25 (cannot reach 0.05 at 3 differing pairs) |" in text
    assert "(by the paired t-test)" in text
    # at 8 pairs the sign test can reject, and no warning is printed
    (full,) = compare_sides(side(0.1), side(0.0)).itertuples()
    assert full.sign_can_reject
    assert "cannot reach 0.05 at" not in render_comparison(compare_sides(side(0.1), side(0.0)), "x", "y")
