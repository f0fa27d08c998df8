"""Guards, Missing-with-reason, magnitude-aware causal_kept, tie-aware model_rank and the world MSEs.

Each score is checked against an independent truth (a closed form, scipy, a linear model whose reliance
equals its weights) and attacked with the method that would game it.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from scipy import stats

import cowbench as cb
from cowbench.jobs import ReplicateSpec, make_job, prepare, run_job
from cowbench.method import MethodOutput
from cowbench.model_truth import reliance
from cowbench.models import build_model
from cowbench.scores import Metrics, Missing, compute_scores
from cowbench.scores._guards import combination_units, mean_se, paired_gap, se_guard
from cowbench.scores._vectors import somers_d
from cowbench.scores.context import ScoreContext
from cowbench.store import job_path
from cowbench.subject import SubjectConfig


def linear(weights, bias=0.0):
    model = build_model("linear", len(weights), seed=0)
    with torch.no_grad():
        model[0].weight.copy_(torch.tensor([weights], dtype=torch.float32))
        model[0].bias.fill_(bias)
    return model


def ctx_for(scn, data, output, base, oracle=None, base_ace=None):
    base_ace = base_ace if base_ace is not None else reliance(base, scn, data.test_id)
    return ScoreContext(scn, data, output, frozenset({"pooled"}), base, oracle or base, base_ace)


# -- Missing and the record ------------------------------------------------------------------------


def test_missing_needs_a_reason_and_compute_scores_files_it():
    with pytest.raises(ValueError, match="reason"):
        Missing("  ")
    scn = cb.make_scenario("cow", n_train=200, n_val=20, n_test=400)
    data = scn.sample(seed=0)
    base = linear([1.0, 1.0, 3.0, 0.0], -1.5)
    m = compute_scores(ctx_for(scn, data, MethodOutput(edited=base), base))  # oracle = base: nothing to recover
    assert isinstance(m, Metrics) and isinstance(m, dict)
    assert m["edit_score"] is None and set(m.missing) == {"edit_score"}
    # plain absences (no world, model or detection output) are None without a reason
    assert m["world_err"] is None and m["model_err"] is None and m["detect_auroc"] is None


def test_the_job_record_stores_the_reasons(tmp_path):
    """linear_sem has two observed variables: one pair, so model_rank is refused with its reason."""
    scn = cb.make_scenario("linear_sem", n_train=100, n_val=20, n_test=200)
    rspec = ReplicateSpec(scn.spec, 0, 0, SubjectConfig(arch="linear", epochs=5).to_dict())
    spec = make_job(rspec, "ols", {})
    assert run_job(spec, tmp_path) == "ok"
    record = json.loads(job_path(tmp_path, spec.id).read_text())
    assert record["metrics"]["model_rank"] is None
    assert "fewer than 2" in record["missing"]["model_rank"]
    assert "edit_score" not in record["missing"]  # OLS has no edit: a plain absence
    assert all(record["metrics"][k] is None for k in record["missing"])


# -- guard helpers ---------------------------------------------------------------------------------


def test_paired_gap_is_the_mean_difference_with_the_paired_standard_error():
    rng = np.random.default_rng(0)
    a = rng.random(1000) < 0.7
    b = np.where(rng.random(1000) < 0.9, a, ~a)  # agrees with a on ~90% of units
    gap, se = paired_gap(a, b)
    d = a.astype(float) - b.astype(float)
    assert gap == pytest.approx(d.mean())
    assert se == pytest.approx(stats.sem(d))
    # pairing: far below the SE of two independent accuracies
    assert se < 0.5 * np.sqrt(a.mean() * (1 - a.mean()) / 1000 + b.mean() * (1 - b.mean()) / 1000)


def test_combination_se_accounts_for_covariance():
    rng = np.random.default_rng(1)
    u = rng.standard_normal(5000)
    units = {"a": u, "b": -u + 0.1 * rng.standard_normal(5000)}  # nearly cancel
    comb = combination_units(units, {"a": 1.0, "b": 1.0})
    assert mean_se(comb) == pytest.approx(stats.sem(u + units["b"]))
    assert mean_se(comb) < 0.2 * np.hypot(mean_se(units["a"]), mean_se(units["b"]))


def test_se_guard_refuses_zero_and_noise():
    assert se_guard("d", 0.0, 0.0, 10) is not None  # identical models: nothing to divide by
    assert se_guard("d", 0.02, 0.01, 100) is not None
    assert se_guard("d", 0.04, 0.01, 100) is None


# -- causal_kept sees magnitude --------------------------------------------------------------------


@pytest.fixture(scope="module")
def cow_small():
    # n_train large so that model_rank's truth-tie resolution (3 sum|r| / sqrt(n_train)) is fine
    scn = cb.make_scenario("cow", n_train=5000, n_val=20, n_test=2000)
    return scn, scn.sample(seed=0)


@pytest.mark.parametrize(("weights", "expected"), [
    ([1.0, 1.0, 0.0, 0.0], 1.0),        # causal reliance kept, grass removed
    ([0.01, 0.01, 0.0, 0.0], 0.01),     # every causal weight times 0.01: the cosine said 1.0 (0.98 on a fit)
    ([0.5, 0.5, 3.0, 0.0], 0.5),
    ([-1.0, -1.0, 0.0, 0.0], 0.0),      # reversed: a change twice its size, clipped at 0
    ([0.0, 0.0, 0.0, 0.0], 0.0),        # deleted
    ([5.0, 5.0, 0.0, 0.0], 0.0),        # blown up
])
def test_causal_kept_against_a_linear_model_whose_reliance_is_its_weights(cow_small, weights, expected):
    scn, data = cow_small
    base = linear([1.0, 1.0, 3.0, 0.0], -1.5)
    m = compute_scores(ctx_for(scn, data, MethodOutput(edited=linear(weights)), base))
    assert m["causal_kept"] == pytest.approx(expected, abs=1e-5)


def test_causal_kept_with_a_single_cause():
    """linear_sem has one cause (x1): a cosine over one coordinate can only be +-1; the new score is graded."""
    scn = cb.make_scenario("linear_sem", n_train=100, n_val=20, n_test=2000)
    data = scn.sample(seed=0)
    assert scn.truth.keep == ["x1"]
    base = linear([2.0, 0.5])
    for weights, expected in [([2.0, 0.0], 1.0), ([1.0, 0.0], 0.5), ([0.02, 0.0], 0.01), ([-2.0, 0.0], 0.0)]:
        m = compute_scores(ctx_for(scn, data, MethodOutput(edited=linear(weights)), base))
        assert m["causal_kept"] == pytest.approx(expected, abs=1e-5), weights


def test_causal_kept_is_missing_when_the_base_has_no_causal_reliance(cow_small):
    scn, data = cow_small
    base = linear([0.0, 0.0, 3.0, 0.0], -1.5)
    m = compute_scores(ctx_for(scn, data, MethodOutput(edited=linear([0.0, 0.0, 0.0, 0.0])), base))
    assert m["causal_kept"] is None and "||ace_base[C]||" in m.missing["causal_kept"]


# -- model_rank is tie-aware -----------------------------------------------------------------------


def _rank(scn, data, estimate, base_ace):
    base = linear([1.0, 1.0, 3.0, 0.0])
    return compute_scores(ctx_for(scn, data, MethodOutput(model_coef=estimate), base, base_ace=base_ace))


def test_float_noise_does_not_decide_model_rank(cow_small):
    scn, data = cow_small
    truth = {"moo": 1.0, "tail": 2.0, "grass": 3.0, "sky": 0.0}
    a = _rank(scn, data, {"moo": 5.9e-17, "tail": 2.0, "grass": 3.0, "sky": -6.9e-17}, truth)["model_rank"]
    b = _rank(scn, data, {"moo": -6.9e-17, "tail": 2.0, "grass": 3.0, "sky": 5.9e-17}, truth)["model_rank"]
    assert a == b == pytest.approx(5 / 6)  # 5 of 6 ordered pairs right, the noise pair is an estimate tie
    # the same noise in the truth: a truth tie, whatever order the estimate gives
    truth = {"moo": 5.9e-17, "tail": 2.0, "grass": 3.0, "sky": -6.9e-17}
    a = _rank(scn, data, {"moo": 0.1, "tail": 2.0, "grass": 3.0, "sky": 0.2}, truth)["model_rank"]
    b = _rank(scn, data, {"moo": 0.2, "tail": 2.0, "grass": 3.0, "sky": 0.1}, truth)["model_rank"]
    assert a == b == pytest.approx(1.0)


def test_equal_true_reliance_of_moo_and_tail_is_not_a_coin_flip(cow_small):
    """A cow model with equal moo and tail weights: measured reliances tie (float32 rounding aside)."""
    scn, data = cow_small
    base = linear([0.8, 0.8, 3.0, 0.05])
    truth = reliance(base, scn, data.test_id)
    first = _rank(scn, data, {"moo": 1.1, "tail": 1.0, "grass": 4.0, "sky": 0.0}, truth)["model_rank"]
    second = _rank(scn, data, {"moo": 1.0, "tail": 1.1, "grass": 4.0, "sky": 0.0}, truth)["model_rank"]
    assert first == second == pytest.approx(1.0)


def test_a_trained_cow_subjects_moo_and_tail_do_not_decide_model_rank():
    """Equal coefficients, unequal measured reliance (training noise): within the training resolution, a tie."""
    scn = cb.make_scenario("cow")
    rep = prepare(ReplicateSpec(scn.spec, 0, 1, SubjectConfig().to_dict()))
    assert rep.base_ace["moo"] != rep.base_ace["tail"]
    scores = []
    for moo, tail in [(1.3, 1.2), (1.2, 1.3)]:
        est = {"moo": moo, "tail": tail, "grass": 1.7, "sky": 0.3}
        ctx = ScoreContext(scn, rep.data, MethodOutput(model_coef=est), frozenset({"pooled"}), rep.subject,
                           rep.oracle, dict(rep.base_ace))
        scores.append(compute_scores(ctx)["model_rank"])
    assert scores[0] == scores[1] == pytest.approx(1.0)


def test_model_rank_attacks(cow_small):
    scn, data = cow_small
    truth = {"moo": 0.5, "tail": 1.0, "grass": 3.0, "sky": 0.01}
    assert _rank(scn, data, dict(truth), truth)["model_rank"] == 1.0
    assert _rank(scn, data, {v: 1.0 for v in truth}, truth)["model_rank"] == 0.0  # constant: chance
    reversed_ = {"moo": 3.0, "tail": 1.0, "grass": 0.5, "sky": 9.0}
    assert _rank(scn, data, reversed_, truth)["model_rank"] == -1.0
    m = _rank(scn, data, dict(truth), {"moo": 1.0, "tail": 1.0, "grass": 1.0, "sky": 1.0})
    assert m["model_rank"] is None and "fewer than 2" in m.missing["model_rank"]


def test_somers_d_matches_scipy():
    rng = np.random.default_rng(3)
    for _ in range(20):
        truth = rng.integers(0, 4, 8).astype(float)  # exact ties
        est = rng.integers(0, 4, 8).astype(float)
        d, pairs = somers_d(est, truth)
        if pairs:
            assert d == pytest.approx(stats.somersd(truth, est).statistic)


# -- absolute world error where the scale is identified --------------------------------------------


def test_world_mse_and_the_primary_show_the_ols_bias_a_scale_free_error_hides():
    """y = 2 x1 + 3 h + e, x1 = e1 + h (all unit variance), x2 pure noise: OLS on x1 -> 2 + 3 / 2 = 3.5."""
    scn = cb.make_scenario("linear_sem", beta=2, hidden_to_x1=1, hidden_to_y=3, x1_sd_train=(1,),
                           y_noise_train=(1,), x2_coef_train=(0,))
    assert scn.truth.link == "identity"
    m = cb.evaluate(scn, cb.get_method("ols")(), seed=0, subject={"arch": "linear", "epochs": 5})
    n = scn.knobs["n_train"]
    se = np.sqrt(5.5 / (2 * n))  # residual variance 1.5^2 + 1.5^2 + 1 over var(x1) = 2
    assert abs(np.sqrt(m["world_mse_causal"]) - 1.5) < 4 * se
    assert m["world_mse_noncausal"] < (4 * np.sqrt(5.5 / n)) ** 2
    # the primary is the absolute error here (continuous label): sqrt(1 x mse_causal + 1 x mse_noncausal) / |2|
    assert m["world_err"] == pytest.approx(np.sqrt(m["world_mse_causal"] + m["world_mse_noncausal"]) / 2.0)
    assert abs(m["world_err"] - 1.5 / 2) < 4 * se  # a scale-free error would be near 0: 3.5 is parallel to 2


def test_world_mse_only_where_the_scale_is_identified(cow_small):
    scn, data = cow_small
    assert scn.truth.link != "identity"
    m = compute_scores(ctx_for(scn, data, MethodOutput(world_coef={"moo": 1.0, "tail": 1.0}), linear([1.0] * 4)))
    assert m["world_mse_causal"] is None and m["world_mse_noncausal"] is None
    assert "world_mse_causal" not in m.missing
