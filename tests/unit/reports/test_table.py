"""Report aggregation: intervals that stay inside each metric's range, one row per hyperparameter setting."""

import math

import numpy as np
import pandas as pd
import pytest

from cowbench.reports.table import (
    add_entries,
    bootstrap_interval,
    cell_interval,
    interval_kind,
    score_table,
    summarize,
    t_interval,
    wilson_interval,
)

INF = math.inf


def scores_table(*rows: dict) -> pd.DataFrame:
    base = {"track": "world", "higher_is_better": False, "primary": False, "lower": -INF, "upper": INF,
            "chance": math.nan, "binary": None}
    return pd.DataFrame([{**base, **r} for r in rows]).set_index("metric")


BOUNDED = scores_table({"metric": "err", "lower": 0.0, "upper": 1.0, "primary": True, "chance": 1.0},
                       {"metric": "signed", "lower": -1.0, "upper": 1.0, "higher_is_better": True},
                       {"metric": "gain", "higher_is_better": True},
                       {"metric": "hit", "lower": 0.0, "upper": 1.0, "higher_is_better": True, "binary": True})


def frame(values: dict[str, list[float]], metric: str = "err", scenario: str = "cow") -> pd.DataFrame:
    rows = [{"job_id": f"{scenario}{m}{r}", "scenario": scenario, "method": m, "access": "pooled", "replicate": r,
             "metric": metric, "value": v} for m, vs in values.items() for r, v in enumerate(vs)]
    return pd.DataFrame(rows)


def test_t_interval_matches_the_textbook_value():
    # n = 3, sd = 1: half-width t_{0.975, 2} / sqrt(3) with t_{0.975, 2} = 4.302653
    lo, hi = t_interval(np.array([1.0, 2.0, 3.0]))
    assert (hi - lo) / 2 == pytest.approx(4.302653 / np.sqrt(3), rel=1e-6)
    assert all(math.isnan(x) for x in t_interval(np.array([1.0])))


def test_the_old_t_interval_leaves_the_range_which_is_why_bounded_metrics_use_the_bootstrap():
    # the case: with n = 2 a t-interval of a [0, 1] metric spans about +-6.35
    lo, hi = t_interval(np.array([0.0, 1.0]))
    assert lo < -5 and hi > 6
    assert bootstrap_interval(np.array([0.0, 1.0])) == (0.0, 1.0)


def test_bootstrap_with_two_values_is_their_range():
    # closed form: resampled means are a, (a+b)/2, b with probabilities 1/4, 1/2, 1/4, so the 2.5% and
    # 97.5% percentiles are a and b
    assert bootstrap_interval(np.array([0.2, 0.6])) == (0.2, 0.6)


@pytest.mark.parametrize("values", [
    [0.0, 1.0], [1.0, 1.0], [0.97, 1.0], [0.9, 1.0, 1.0], [0.3, 0.3, 0.3], [0.0, 0.0, 0.0, 0.1, 1.0],
    [1.0, 1.0, 1.0, 1.0, 1.0], [0.0, 0.0, 0.0, 0.0, 0.0], [0.99, 0.999, 1.0, 1.0, 0.98],
])
def test_summary_intervals_of_a_bounded_metric_stay_in_its_range_and_hold_the_mean(values):
    s = summarize(frame({"a": values}), scores=BOUNDED).iloc[0]
    zero_one = set(values) <= {0.0, 1.0}  # a [0, 1] metric seen only at 0 and 1 is treated as a proportion
    assert s.interval == ("wilson" if zero_one else "bootstrap") and s.n == len(values)
    assert 0.0 <= s.lo <= s["mean"] <= s.hi <= 1.0
    if len(set(values)) == 1 and not zero_one:  # all equal: a zero-width interval at the common value
        assert s.lo == s.hi == values[0]


def test_bootstrap_is_seeded_and_covers_about_95_percent():
    values = np.array([0.1, 0.5, 0.7, 0.2, 0.9])
    assert bootstrap_interval(values) == bootstrap_interval(values)
    # coverage on Beta(2, 5) samples of n = 30 (mean 2/7): the percentile bootstrap is close to nominal;
    # 400 trials give a coverage estimate with s.d. about 0.011, so 4 s.d. either side of 0.95
    rng = np.random.default_rng(0)
    covered = [lo <= 2 / 7 <= hi for lo, hi in (bootstrap_interval(rng.beta(2, 5, 30), n_boot=1000, seed=i)
                                                for i in range(400))]
    assert 0.95 - 0.045 <= np.mean(covered) <= 0.95 + 0.045


def test_wilson_interval_matches_published_values():
    # Wilson (1927); e.g. Newcombe (1998) table I: 0/10 -> [0, 0.2775], 8/10 -> [0.4902, 0.9433]
    assert wilson_interval(0, 10) == pytest.approx((0.0, 0.2775), abs=1e-4)
    assert wilson_interval(8, 10) == pytest.approx((0.4902, 0.9433), abs=1e-4)
    assert wilson_interval(10, 10) == pytest.approx((0.7225, 1.0), abs=1e-4)
    lo, hi = wilson_interval(1, 2)
    assert 0 < lo < 0.5 < hi < 1 and lo + hi == pytest.approx(1.0)  # symmetric about 1/2
    with pytest.raises(ValueError, match="successes"):
        wilson_interval(3, 2)


@pytest.mark.parametrize("values", [[1.0, 0.0], [1.0, 1.0, 1.0], [0.0, 1.0, 1.0, 1.0, 1.0], [0.0] * 5])
def test_a_zero_one_metric_gets_the_wilson_interval(values):
    s = summarize(frame({"a": values}, metric="hit"), scores=BOUNDED).iloc[0]
    assert s.interval == "wilson"
    assert (s.lo, s.hi) == pytest.approx(wilson_interval(int(sum(values)), len(values)))
    assert 0.0 <= s.lo <= s["mean"] <= s.hi <= 1.0


def test_interval_method_follows_the_declared_range():
    # undeclared 0/1 observations in [0, 1] or an undeclared range: Wilson (conservative for [0, 1] values)
    assert interval_kind(BOUNDED.loc["err"].to_dict(), np.array([1.0, 1.0, 0.0])) == "wilson"
    assert interval_kind(BOUNDED.loc["gain"].to_dict(), np.array([1.0, 0.0])) == "wilson"
    # a [-1, 1] metric (a correlation) at 1 in every replicate is not a proportion
    assert interval_kind(BOUNDED.loc["signed"].to_dict(), np.array([1.0, 1.0])) == "bootstrap"
    assert interval_kind(BOUNDED.loc["err"].to_dict(), np.array([0.5, 1.0])) == "bootstrap"
    assert interval_kind(BOUNDED.loc["gain"].to_dict(), np.array([0.5, 3.0])) == "t"
    with pytest.raises(ValueError, match="interval kind"):
        cell_interval(np.array([0.1, 0.2]), "normal")


def test_one_replicate_has_no_interval():
    s = summarize(frame({"a": [0.4]}), scores=BOUNDED).iloc[0]
    assert s.n == 1 and s.interval == "none" and math.isnan(s.lo) and math.isnan(s.hi)


def test_registered_bounded_metrics_get_in_range_intervals_at_two_replicates():
    scores = score_table()
    finite = np.isfinite(scores["lower"]) & np.isfinite(scores["upper"])
    bounded = list(scores.index[finite])
    assert bounded, "no registered metric declares a finite range"
    for m in bounded:
        lower, upper = scores.loc[m, "lower"], scores.loc[m, "upper"]
        s = summarize(frame({"a": [lower, upper]}, metric=m), scores=scores).iloc[0]
        assert lower <= s.lo <= s.hi <= upper, m


def test_summary_mean_and_direction_free_columns():
    s = summarize(frame({"a": [0.1, 0.2, 0.3], "b": [0.5, 0.6, 0.7]}), scores=BOUNDED).set_index("method")
    assert s.loc["a", "mean"] == pytest.approx(0.2) and (s.n == 3).all()
    assert {"mean", "lo", "hi", "n", "interval"} <= set(s.columns)


def test_two_hyperparameter_settings_are_two_rows_not_pooled_replicates():
    f = pd.concat([frame({"irm": [0.1, 0.2, 0.3]}).assign(hparams="penalty=1"),
                   frame({"irm": [0.7, 0.8, 0.9]}).assign(hparams="penalty=10", job_id=lambda d: d.job_id + "b"),
                   frame({"ols": [0.5, 0.5, 0.5]}).assign(hparams="")])
    s = summarize(add_entries(f), scores=BOUNDED).set_index("entry")
    assert set(s.index) == {"irm(penalty=1)", "irm(penalty=10)", "ols"}  # hparams shown only where several
    assert s.loc["irm(penalty=1)", "mean"] == pytest.approx(0.2)
    assert s.loc["irm(penalty=10)", "mean"] == pytest.approx(0.8)
    assert (s.n == 3).all()


def test_json_is_strict_json_with_null_for_a_missing_interval():
    import json

    from cowbench.reports import get_format
    from cowbench.reports.table import build_tables, results_from_frame

    res = results_from_frame(frame({"a": [0.4], "b": [0.2, 0.3]}, metric="world_err"))  # registered: [0, 1]
    text = get_format("json").render(build_tables(res))
    records = json.loads(text, parse_constant=lambda c: pytest.fail(f"{c} in JSON"))["cells"]
    by_method = {r["method"]: r for r in records}
    assert by_method["a"]["lo"] is None and by_method["a"]["interval"] == "none"
    assert by_method["b"]["lo"] == pytest.approx(0.2) and by_method["b"]["n"] == 2
