"""verify's pure core: tolerances per metric kind, the cell comparison, sampling and the confident-rank check."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from cowbench.errors import InputError
from cowbench.verify import (
    DEFAULT_ABS,
    Rerun,
    Tolerance,
    VerifyResult,
    compare_cells,
    confident_rank_changes,
    select_jobs,
    substitute,
)


def _frame(values: dict[str, list[float]], metric: str = "world_err", scenario: str = "cow") -> pd.DataFrame:
    """A stored frame: one job per (method, replicate), ``values[method][replicate]``."""
    rows = []
    for method, vals in values.items():
        for r, v in enumerate(vals):
            rows.append({"job_id": f"{method}-{r}", "scenario": scenario, "method": method, "hparams": "",
                         "entry": method, "access": "pooled", "told": "", "replicate": r, "metric": metric,
                         "value": float(v)})
    return pd.DataFrame(rows)


def _reruns(frame: pd.DataFrame, change: dict[str, float] | None = None, scales: dict | None = None) -> list[Rerun]:
    change = change or {}
    out = []
    for job_id, block in frame.groupby("job_id"):
        metrics = {m: v + change.get(job_id, 0.0) for m, v in zip(block["metric"], block["value"], strict=True)}
        out.append(Rerun(job_id, "ok", metrics, scales=dict(scales or {})))
    return out


# -- tolerances ------------------------------------------------------------------------------------------------


def test_tolerance_by_metric_kind():
    tol = Tolerance(abs=1e-4, units=3)
    assert tol.for_metric("world_err", None) == 1e-4
    assert tol.for_metric("acc_id", 1 / 2000) == pytest.approx(1e-4 + 3 / 2000)
    assert tol.for_metric("detect_top1", None) == 0.0
    assert math.isinf(tol.for_metric("acc_id", None))  # no scale known: a count metric cannot be judged tighter


@pytest.mark.parametrize("kwargs", [{"abs": -1.0}, {"abs": math.nan}, {"units": math.inf}, {"abs": True}])
def test_bad_tolerance_is_named(kwargs):
    with pytest.raises(InputError, match="tolerance"):
        Tolerance(**kwargs)


# -- cells -------------------------------------------------------------------------------------------------------


def test_identical_rerun_passes():
    stored = _frame({"logistic": [0.1, 0.2, 0.3]})
    cells = compare_cells(stored, _reruns(stored), Tolerance())
    assert cells["ok"].all() and (cells["max_diff"] == 0).all() and cells["n"].tolist() == [3]


def test_a_change_beyond_tolerance_fails_its_cell_and_names_the_replicate():
    stored = _frame({"logistic": [0.1, 0.2, 0.3], "ols": [0.4, 0.5, 0.6]})
    cells = compare_cells(stored, _reruns(stored, {"ols-1": 10 * DEFAULT_ABS}), Tolerance())
    bad = cells[~cells["ok"]]
    assert bad[["entry", "metric", "worst_replicate"]].values.tolist() == [["ols", "world_err", 1]]
    assert bad["max_diff"].iloc[0] == pytest.approx(10 * DEFAULT_ABS)
    assert cells.loc[cells.entry == "logistic", "ok"].all()


def test_a_change_within_tolerance_passes():
    stored = _frame({"logistic": [0.1, 0.2]})
    assert compare_cells(stored, _reruns(stored, {"logistic-0": 0.5 * DEFAULT_ABS}), Tolerance())["ok"].all()


def test_count_metrics_allow_a_few_flipped_units_and_no_more():
    stored = _frame({"erase_spurious": [0.70, 0.71]}, metric="acc_id")
    scales = {"acc_id": 1 / 2000}
    two_flips = _reruns(stored, {"erase_spurious-0": 2 / 2000}, scales)
    five_flips = _reruns(stored, {"erase_spurious-0": 5 / 2000}, scales)
    assert compare_cells(stored, two_flips, Tolerance(units=3))["ok"].all()
    assert not compare_cells(stored, five_flips, Tolerance(units=3))["ok"].any()


def test_a_metric_missing_on_one_side_fails():
    stored = _frame({"logistic": [0.1, 0.2]})
    reruns = _reruns(stored)
    reruns[0].metrics["world_err"] = None
    reruns[1].metrics["world_cos"] = 0.9  # present only in the rerun
    cells = compare_cells(stored, reruns, Tolerance()).set_index("metric")
    assert not cells.loc["world_err", "ok"] and "rerun value missing" in cells.loc["world_err", "problem"]
    assert not cells.loc["world_cos", "ok"] and "stored value missing" in cells.loc["world_cos", "problem"]


def test_failed_reruns_are_not_compared():
    stored = _frame({"logistic": [0.1, 0.2]})
    reruns = [Rerun("logistic-0", "failed", error="boom"), *_reruns(stored)[1:]]
    assert compare_cells(stored, reruns, Tolerance())["n"].tolist() == [1]


# -- sampling ----------------------------------------------------------------------------------------------------


def test_sample_is_seeded_sized_and_sorted():
    ids = [f"{i:03d}" for i in range(50)]
    a, b = select_jobs(ids, 7, seed=3), select_jobs(ids, 7, seed=3)
    assert a == b and len(set(a)) == 7 and a == sorted(a) and set(a) <= set(ids)
    assert select_jobs(ids, 7, seed=4) != a
    assert select_jobs(ids, None, 0) == ids and select_jobs(ids, 500, 0) == ids


def test_sample_below_one_is_refused():
    with pytest.raises(InputError, match="--sample"):
        select_jobs(["a", "b"], 0, 0)


# -- confident ranks ---------------------------------------------------------------------------------------------


def _two_methods(a: list[float], b: list[float]) -> pd.DataFrame:
    return _frame({"a": a, "b": b}, metric="world_err")  # lower is better


def test_substitute_replaces_only_rerun_jobs():
    stored = _two_methods([0.1, 0.1], [0.5, 0.5])
    fresh = substitute(stored, [Rerun("a-0", "ok", {"world_err": 0.9})])
    got = fresh.set_index("job_id")["value"]
    assert got["a-0"] == 0.9 and got["a-1"] == 0.1 and got["b-0"] == 0.5 and len(fresh) == len(stored)


def test_a_swapped_confident_rank_is_reported():
    rng = np.random.default_rng(0)
    a = (0.1 + 0.01 * rng.standard_normal(5)).tolist()
    b = (0.5 + 0.01 * rng.standard_normal(5)).tolist()
    stored = _two_methods(a, b)
    same = confident_rank_changes(stored, stored.copy())
    assert len(same) >= 1 and not same["changed"].any()  # a is best with P(best) 1
    swapped = stored.copy()
    swapped["value"] = [*b, *a]  # the rerun reverses the two methods
    changed = confident_rank_changes(stored, swapped)
    assert changed.loc[changed.entry == "a", "changed"].all()


def test_unconfident_ranks_are_not_checked():
    # two methods whose replicates interleave: neither reaches P(best) 0.9, so no rank is held to account
    stored = _two_methods([0.1, 0.3, 0.1, 0.3, 0.2], [0.3, 0.1, 0.3, 0.1, 0.2])
    assert confident_rank_changes(stored, stored).empty


def test_a_verification_that_compared_nothing_does_not_pass():
    empty = compare_cells(_frame({"a": [0.1]}), [], Tolerance())
    no_ranks = confident_rank_changes(_frame({"a": [0.1]}), _frame({"a": [0.1]}))
    assert not VerifyResult(empty, no_ranks, [], n_jobs=1, n_stored=1, tolerance=Tolerance(), n_rerun_ok=0).ok
    assert not VerifyResult(empty, no_ranks, [], n_jobs=0, n_stored=0, tolerance=Tolerance(), n_rerun_ok=0).ok
