import numpy as np
import pandas as pd
import pytest

from cowbench.report import rank_methods, rank_stability, summarize, t_half_width


def frame(values: dict[str, list[float]], metric: str = "world_err") -> pd.DataFrame:
    rows = [{"job_id": f"{m}{r}", "scenario": "cow", "method": m, "access": "pooled", "replicate": r,
             "metric": metric, "value": v} for m, vs in values.items() for r, v in enumerate(vs)]
    return pd.DataFrame(rows)


def test_t_interval_half_width_matches_the_textbook_value():
    # n = 3, sd = 1: t_{0.975, 2} = 4.302653 times 1/sqrt(3)
    assert t_half_width(np.array([1.0, 2.0, 3.0])) == pytest.approx(4.302653 / np.sqrt(3), rel=1e-6)
    assert np.isnan(t_half_width(np.array([1.0])))


def test_summary_and_ranks_follow_the_metric_direction():
    f = frame({"a": [0.1, 0.2, 0.3], "b": [0.5, 0.6, 0.7]})  # world_err: lower is better
    s = summarize(f)
    assert s.set_index("method").loc["a", "mean"] == pytest.approx(0.2)
    assert (s.n == 3).all()
    r = rank_methods(s).set_index("method")
    assert r.loc["a", "rank"] == 1 and r.loc["b", "rank"] == 2
    assert r.loc["a", "win_rate"] == 1.0 and r.loc["b", "win_rate"] == 0.0


def test_rank_stability_is_one_for_a_method_better_in_every_replicate_and_shared_on_ties():
    p = rank_stability(frame({"a": [0.1, 0.2, 0.3], "b": [0.5, 0.6, 0.7]})).set_index("method")["p_best"]
    assert p["a"] == 1.0 and p["b"] == 0.0
    tied = rank_stability(frame({"a": [0.1, 0.2], "b": [0.1, 0.2]})).set_index("method")["p_best"]
    assert tied["a"] == tied["b"] == 0.5
    mixed = rank_stability(frame({"a": [0.1, 0.9], "b": [0.5, 0.5]})).set_index("method")["p_best"]
    assert 0 < mixed["a"] < 1 and mixed.sum() == pytest.approx(1.0)
