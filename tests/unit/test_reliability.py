"""Reliability statistics against constructed cases with a known s.d., and the paired t-test's exact power."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy.stats import nct, t

from cowbench.errors import InputError
from cowbench.reliability import (
    DEFAULT_PAIRS,
    check_pairs,
    min_resolvable_difference,
    plan_units,
    replicates_needed,
    reseed_table,
    resolution_table,
)


def _exact_power(delta: float, sd: float, n: int, alpha: float = 0.05) -> float:
    """Power of the two-sided paired t-test: the noncentral t distribution (independent of the formula)."""
    crit = t.ppf(1 - alpha / 2, n - 1)
    nc = delta / sd * math.sqrt(n)
    return float(1 - nct.cdf(crit, n - 1, nc) + nct.cdf(-crit, n - 1, nc))


@pytest.mark.parametrize("n", [5, 10, 30])
def test_min_resolvable_difference_has_the_stated_power(n):
    # the closed form is the usual approximation; at n >= 5 its exact power is within 0.015 of 0.8
    delta = min_resolvable_difference(0.03, n)
    assert _exact_power(delta, 0.03, n) == pytest.approx(0.8, abs=0.015)


def test_min_resolvable_difference_closed_form_and_limits():
    assert min_resolvable_difference(0.03, 5) == pytest.approx((t.ppf(0.975, 4) + t.ppf(0.8, 4)) * 0.03 / math.sqrt(5))
    assert min_resolvable_difference(0.0, 5) == 0.0
    assert math.isinf(min_resolvable_difference(0.03, 1))
    with pytest.raises(ValueError, match="sd_diff"):
        min_resolvable_difference(math.nan, 5)


@pytest.mark.parametrize("sd", [0.005, 0.03, 0.1])
def test_replicates_needed_is_the_least_sufficient_count(sd):
    n = replicates_needed(sd, 0.02)
    assert min_resolvable_difference(sd, n) <= 0.02
    assert n == 2 or min_resolvable_difference(sd, n - 1) > 0.02


def test_replicates_needed_edges():
    assert replicates_needed(0.0, 0.02) == 2
    assert replicates_needed(1e6, 1e-6, n_max=1000) is None
    with pytest.raises(ValueError, match="target"):
        replicates_needed(0.1, 0.0)


def _values(track: str, metric: str, method: str, kind: str, vals: list[float], scenario: str = "cow"):
    return [{"track": track, "metric": metric, "scenario": scenario, "method": method, "kind": kind, "index": i,
             "value": v} for i, v in enumerate(vals)]


def test_reseed_table_recovers_a_known_sd_per_seed_kind():
    # constructed: values with sample s.d. exactly 0.02 (training data), 0.05 (subject), 0 (fit), 0.03 (all)
    z = np.array([-1.5, -0.5, 0.5, 1.5])
    unit = z / np.std(z, ddof=1)
    rows = (_values("edit", "edit_score", "m", "train_data", list(0.9 + 0.02 * unit))
            + _values("edit", "edit_score", "m", "subject", list(0.9 + 0.05 * unit))
            + _values("edit", "edit_score", "m", "fit", [0.9] * 4)
            + _values("edit", "edit_score", "m", "all", [*list(0.9 + 0.03 * unit)[:3], math.nan]))
    table = reseed_table(pd.DataFrame(rows)).iloc[0]
    assert table.sd_train_data == pytest.approx(0.02) and table.sd_subject == pytest.approx(0.05)
    assert math.isnan(table.sd_test_data) and table.n_test_data == 0  # a kind without values: no s.d.
    assert table.sd_fit == 0.0 and table.n_fit == 4
    assert table.n_all == 3  # the missing value is left out and not counted
    assert table["mean"] == pytest.approx(np.mean(list(0.9 + 0.03 * unit)[:3]))


def test_resolution_uses_paired_differences_not_each_methods_spread():
    # both methods swing by 0.2 with the shared data, but their difference has s.d. exactly 0.01:
    # pairing must see 0.01 (an unpaired view would see ~0.2 and need hundreds of replicates)
    shared = np.array([0.0, 0.2, -0.2, 0.1, -0.1])
    d = np.array([-1.0, -0.5, 0.0, 0.5, 1.0])
    d = 0.01 * d / np.std(d, ddof=1)
    rows = (_values("edit", "edit_score", "a", "all", list(0.8 + shared + d))
            + _values("edit", "edit_score", "b", "all", list(0.8 + shared)))
    row = resolution_table(pd.DataFrame(rows), n=5, target=0.02).iloc[0]
    assert (row.a, row.b, row.n_pairs) == ("a", "b", 5)
    assert row.sd_diff == pytest.approx(0.01)
    assert row.mean_diff == pytest.approx(0.0, abs=1e-12)
    assert row.mrd == pytest.approx(min_resolvable_difference(0.01, 5))
    assert row.replicates_needed == replicates_needed(0.01, 0.02)


def test_plan_varies_one_seed_at_a_time_and_all_is_the_suites_replicate():
    import cowbench as cb
    from cowbench.jobs import ReplicateSpec, make_job
    from cowbench.subject import SubjectConfig

    units, plan = plan_units({"world": [("cow", "logistic")]}, replicates=3, root_seed=0)
    plan = pd.DataFrame(plan)
    base = plan[(plan.kind == "all") & (plan["index"] == 0)].iloc[0]
    seeds = ("data_seed", "test_seed", "subject_seed", "fit_seed")
    for kind, column in (("train_data", "data_seed"), ("test_data", "test_seed"), ("subject", "subject_seed"),
                         ("fit", "fit_seed")):
        part = plan[plan.kind == kind]
        assert part[column].nunique() == 3  # the varied seed takes 3 values
        others = [c for c in seeds if c != column]
        assert (part[others] == base[others]).all().all()  # the others stay at replicate 0's
    # the suite's replicate draws its test splits from its own data sample, as a suite job does
    assert (plan.loc[plan.kind == "all", "test_seed"] == plan.loc[plan.kind == "all", "data_seed"]).all()
    # test-data reseeds share replicate 0's training unit: its subject is trained once for all test samples
    (zero,) = [u for u in units if (u.data_seed, u.subject_seed) == (base.data_seed, base.subject_seed)]
    assert {r[0] for r in zero.runs} == set(plan.loc[plan.kind == "test_data", "test_seed"])
    spec = ReplicateSpec(cb.make_scenario("cow").spec, 2, 0, SubjectConfig().to_dict())
    job = make_job(spec, "logistic", cb.get_method("logistic")().hyperparameters())
    suite_rep = plan[(plan.kind == "all") & (plan["index"] == 2)].iloc[0]
    assert (suite_rep.data_seed, suite_rep.subject_seed, suite_rep.fit_seed) == (spec.data_seed, spec.subject_seed,
                                                                                 job.fit_seed)
    assert len(units) == 3 * 3 - 2  # replicate 0 is shared by every kind; fit and test-data reseeds reuse it


def test_default_pairs_are_valid_and_bad_pairs_are_named():
    assert set(check_pairs(DEFAULT_PAIRS)) == {"world", "model", "detect", "edit"}
    with pytest.raises(InputError, match="unknown track 'speed'"):
        check_pairs({"speed": [("cow", "logistic")]})
    with pytest.raises(InputError, match="does not output the edit track"):
        check_pairs({"edit": [("cow", "logistic")]})
    with pytest.raises(InputError, match="replicates"):
        plan_units({"world": [("cow", "logistic")]}, replicates=1)


def test_resolution_splits_a_pairs_noise_into_its_sources():
    # the difference a - b moves only with the test sample (s.d. 0.03) and not at all with the training data,
    # the subject or the fit seed: the split must say so
    z = np.array([-1.0, 0.0, 1.0])
    unit = z / np.std(z, ddof=1)
    rows = []
    for kind in ("train_data", "subject", "fit"):
        rows += _values("edit", "edit_score", "a", kind, list(0.8 + 0.1 * unit))
        rows += _values("edit", "edit_score", "b", kind, list(0.7 + 0.1 * unit))
    rows += _values("edit", "edit_score", "a", "test_data", list(0.8 + 0.03 * unit))
    rows += _values("edit", "edit_score", "b", "test_data", [0.7] * 3)
    rows += _values("edit", "edit_score", "a", "all", list(0.8 + 0.03 * unit))
    rows += _values("edit", "edit_score", "b", "all", [0.7] * 3)
    row = resolution_table(pd.DataFrame(rows), n=5, target=0.05).iloc[0]
    assert row.sd_test_data == pytest.approx(0.03) and row.sd_diff == pytest.approx(0.03)
    assert row.sd_train_data == row.sd_subject == row.sd_fit == pytest.approx(0.0, abs=1e-12)


def test_leading_pairs_set_the_suite_replicate_count_from_the_target():
    from cowbench.reliability import leading_resolution, resolution_per_track, suite_replicates

    leading = pd.DataFrame([
        {"track": "edit", "metric": "edit_score", "scenario": "cow", "selection": "defaults", "league": "pooled",
         "a": "x", "b": "y", "n_pairs": 5, "mean_diff": 0.1, "sd_diff": 0.03, "n": 5, "mrd": 0.0},
        {"track": "edit", "metric": "edit_score", "scenario": "four_groups", "selection": "defaults",
         "league": "pooled", "a": "x", "b": "z", "n_pairs": 5, "mean_diff": 0.1, "sd_diff": 0.06, "n": 5,
         "mrd": 0.0},
        {"track": "world", "metric": "world_err", "scenario": "cow", "selection": "defaults", "league": "not told",
         "a": "p", "b": "q", "n_pairs": 5, "mean_diff": 0.1, "sd_diff": 0.18, "n": 5, "mrd": 0.0}])
    res = leading_resolution(leading, n=5)
    assert res["mrd"].tolist() == pytest.approx([min_resolvable_difference(s, 5) for s in (0.03, 0.06, 0.18)])
    # edit has a target of 0.05; world has none: it states the resolution it reaches instead
    assert res["replicates_needed"].tolist()[:2] == [replicates_needed(0.03, 0.05), replicates_needed(0.06, 0.05)]
    assert pd.isna(res["replicates_needed"].iloc[2])
    choice = suite_replicates(res)
    assert choice == {"replicates": replicates_needed(0.06, 0.05), "track": "edit", "scenario": "four_groups",
                      "pair": ["x", "z"]}
    per_track = resolution_per_track(res, 5).set_index("track")
    assert per_track.loc["world", "max_mrd"] == pytest.approx(min_resolvable_difference(0.18, 5))
    assert per_track.loc["edit", "pairs"] == 2


def test_resolutions_are_stated_at_the_suites_own_replicate_count():
    # the study's n is the standard suite's file, not a copy of its number (it was 5 while the suite ran 3)
    import json
    import tomllib
    from pathlib import Path

    import cowbench
    from cowbench.reliability import STANDARD_REPLICATES, from_results

    suite_file = Path(cowbench.__file__).parent / "suites" / "standard.toml"
    assert STANDARD_REPLICATES == tomllib.loads(suite_file.read_text())["suite"]["replicates"]
    # the published folder's resolution is stated at its own suite's replicates (its manifest), and any n given
    published = Path(__file__).parents[2] / "results" / "standard"
    held = json.loads((published / "manifests" / "standard.json").read_text())["suite"]["replicates"]
    leading = from_results(published)
    assert not leading.empty and set(leading["n"]) == {held}
    assert set(from_results(published, n=held + 4)["n"]) == {held + 4}
