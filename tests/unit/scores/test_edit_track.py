"""The edit track through the harness scorer (ScoreContext + compute_scores) on a trained cow replicate.

Known edits with known answers: the oracle scores 1 by construction, doing nothing 0; negating the grass
input (reversing the shortcut) must score about 0 on test_bal, where removal, not reversal, is optimal,
and halving it must land strictly between. Tolerances are 4 standard errors of the paired per-unit
differences on test_bal (about 4/sqrt(n_test) scaled by the share of units where the models disagree).
"""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

import cowbench as cb
from cowbench.jobs import ReplicateSpec, prepare
from cowbench.method import MethodOutput
from cowbench.models import first_linear, logits
from cowbench.scores import compute_scores
from cowbench.scores._guards import mean_se, paired_gap
from cowbench.scores.context import ScoreContext
from cowbench.scores.edit import MIN_RECOVERABLE
from cowbench.subject import SubjectConfig, fit_fresh, loss_for


def replicate(scn, r: int = 0, **subject):
    return prepare(ReplicateSpec(scn.spec, r, 0, SubjectConfig(**subject).to_dict()))


def score(rep, edited):
    ctx = ScoreContext(rep.scenario, rep.data, MethodOutput(edited=edited), frozenset({"pooled"}), rep.subject,
                       rep.oracle, dict(rep.base_ace))
    return compute_scores(ctx), ctx


def scale_input(model, rep, variable: str, factor: float):
    """``model`` with the first layer's ``variable`` column times ``factor``, mean logit on train kept."""
    edited = copy.deepcopy(model)
    j = rep.scenario.input_map[variable]
    x = rep.data.train.x
    layer, last = first_linear(edited), [m for m in edited.modules() if isinstance(m, torch.nn.Linear)][-1]
    with torch.no_grad():
        # keep each hidden unit's mean pre-activation, then the mean logit exactly
        layer.bias += (1 - factor) * layer.weight[:, j] * float(x[:, j].mean())
        layer.weight[:, j] *= factor
        last.bias += float(logits(model, x).mean() - logits(edited, x).mean())
    return edited


def bal_correct(rep, model):
    s = rep.data.test_bal
    return (logits(model, s.x) > 0) == (s.y == 1)


@pytest.fixture(scope="module")
def cow_rep():
    return replicate(cb.make_scenario("cow", n_test=20_000))


def _tolerance(rep, edited, reference) -> float:
    """4 paired SEs of the numerator, in units of the edit score's denominator."""
    base, oracle = bal_correct(rep, rep.subject), bal_correct(rep, rep.oracle)
    denom, _ = paired_gap(oracle, base)
    _, se = paired_gap(bal_correct(rep, edited), bal_correct(rep, reference))
    return 4 * se / denom


def test_negating_the_shortcut_scores_about_zero_not_above_one(cow_rep):
    negated = scale_input(cow_rep.subject, cow_rep, "grass", -1.0)
    m, ctx = score(cow_rep, negated)
    assert abs(m["edit_score"]) < _tolerance(cow_rep, negated, cow_rep.subject), m["edit_score"]
    # the same edit on the flipped split (the old definition) scores far above 1: reversal pays there
    base, oracle = ctx.accuracy("base", "test_ood"), ctx.accuracy("oracle", "test_ood")
    assert (m["acc_ood"] - base) / (oracle - base) > 1.2
    assert m["residual_spurious"] == pytest.approx(1.0, abs=0.05)  # reversed, not removed


def test_doing_nothing_scores_zero_and_the_oracle_one(cow_rep):
    m, _ = score(cow_rep, copy.deepcopy(cow_rep.subject))
    assert m["edit_score"] == 0.0 and m["residual_spurious"] == pytest.approx(1.0)
    assert m["causal_kept"] == pytest.approx(1.0)
    m, _ = score(cow_rep, cow_rep.oracle)
    assert m["edit_score"] == pytest.approx(1.0)
    assert m["residual_spurious"] < 0.1


def test_halving_the_reliance_scores_strictly_between(cow_rep):
    halved = scale_input(cow_rep.subject, cow_rep, "grass", 0.5)
    m, _ = score(cow_rep, halved)
    assert _tolerance(cow_rep, halved, cow_rep.subject) < m["edit_score"]
    assert m["edit_score"] < 1 - _tolerance(cow_rep, halved, cow_rep.oracle)
    assert 0.2 < m["residual_spurious"] < 0.8


def test_a_do_nothing_retrain_on_a_weak_shortcut_is_missing_not_062():
    """``cow(agreement_train=(0.6, 0.55), agreement_test=0.4)``: the oracle barely beats the subject, so the old
    0.01 cut-off let noise through (0.62 for a retrain that changes nothing); the paired-SE guard refuses."""
    scn = cb.make_scenario("cow", agreement_train=(0.6, 0.55), agreement_test=0.4)
    rep = replicate(scn, 0)
    retrain = fit_fresh(SubjectConfig(), rep.data.train.x, rep.data.train.y, 1000, loss=loss_for(scn))
    m, _ = score(rep, retrain)
    assert m["edit_score"] is None
    assert "acc_bal(oracle) - acc_bal(base)" in m.missing["edit_score"]
    assert m["residual_spurious"] is not None  # the base does use grass here (about 0.6 against 0.8 per cause)


@pytest.mark.parametrize("arch", ["mlp", "linear"])
def test_residual_spurious_is_missing_on_proxy_sem_and_scored_on_cow(arch):
    """proxy_sem's base barely uses s (ace 0.001-0.01 against 1 for each cause): ratios of 7-95 before.

    The guards look only at the base, so the edit here is the base itself. With a linear subject every
    per-unit slope is equal (SE 0): only the second, relative guard can refuse, and it must.
    """
    scn = cb.make_scenario("proxy_sem")
    for r in range(3):
        rep = replicate(scn, r, arch=arch)
        m, ctx = score(rep, rep.subject)
        assert m["residual_spurious"] is None, (r, ctx.base_ace)
        assert "sum_S |ace_base|" in m.missing["residual_spurious"]
        if arch == "linear":
            slopes = ctx.base_ace_units["s"]
            # one slope up to float32 rounding: the SE guard alone would let this base through
            assert 3 * mean_se(slopes) < abs(slopes.mean())
            assert "sqrt(n_train)" in m.missing["residual_spurious"]
    rep = replicate(cb.make_scenario("cow"), 0, arch=arch)
    m, _ = score(rep, scale_input(rep.subject, rep, "grass", 0.0))
    assert m["residual_spurious"] is not None and "residual_spurious" not in m.missing
    assert m["residual_spurious"] < 0.1


def shrink(model, factor: float):
    """``model`` with its logit multiplied by ``factor`` (last layer's weight and bias): same predictions."""
    shrunk = copy.deepcopy(model)
    last = [m for m in shrunk.modules() if isinstance(m, torch.nn.Linear)][-1]
    with torch.no_grad():
        last.weight *= factor
        last.bias *= factor
    return shrunk


def test_shrinking_the_whole_model_is_not_an_edit_and_shows_in_causal_kept_and_log_loss(cow_rep):
    """Attack: halve every logit. Predictions do not change (edit_score exactly 0); the spurious share of the
    model's reliance does not change either (residual_spurious 1, not 0.5), causal_kept shows the causes were
    halved and the log loss on test_bal rises."""
    m, _ = score(cow_rep, shrink(cow_rep.subject, 0.5))
    base, _ = score(cow_rep, copy.deepcopy(cow_rep.subject))
    assert m["edit_score"] == 0.0
    assert m["residual_spurious"] == pytest.approx(1.0, abs=1e-3)
    assert m["causal_kept"] == pytest.approx(0.5, abs=1e-3)
    assert m["logloss_bal"] != pytest.approx(base["logloss_bal"], abs=1e-3)


def test_erase_then_shrink_wins_nothing_over_the_erase_and_its_scale_damage_shows(cow_rep):
    """Attack (issue 16): erase grass, then multiply the model by 0.01. It scored residual_spurious 0.010 and tied
    rank 1 on cow_confounded. Its residual is now the erase's own, causal_kept shows the x0.01, and the log loss
    on test_bal goes to about log 2 (every probability near 1/2), far above the erase's."""
    erased = scale_input(cow_rep.subject, cow_rep, "grass", 0.0)
    e, _ = score(cow_rep, erased)
    s, _ = score(cow_rep, shrink(erased, 0.01))
    assert s["edit_score"] == pytest.approx(e["edit_score"])  # the same predictions: accuracy cannot see it
    assert s["residual_spurious"] == pytest.approx(e["residual_spurious"], rel=1e-3, abs=1e-4)
    assert s["causal_kept"] < 0.02 < 0.5 < e["causal_kept"]
    assert s["logloss_bal"] == pytest.approx(np.log(2), abs=0.01)
    assert e["logloss_bal"] < np.log(2) - 0.1


def test_a_constant_prediction_scores_below_zero_and_wins_no_ratio(cow_rep):
    """Attack: a model that answers the same class for every unit gains nothing on test_bal, relies on nothing
    (residual_spurious missing with the reason, not a perfect 0), and its log loss is no better than the
    label's entropy on test_bal."""
    constant = copy.deepcopy(cow_rep.subject)
    last = [m for m in constant.modules() if isinstance(m, torch.nn.Linear)][-1]
    with torch.no_grad():
        last.weight.zero_()
        last.bias.fill_(1.0)
    m, _ = score(cow_rep, constant)
    assert m["edit_score"] < 0
    assert m["residual_spurious"] is None and "total reliance" in m.missing["residual_spurious"]
    assert m["causal_kept"] == 0.0
    p = float(np.mean(cow_rep.data.test_bal.y == 1))
    entropy = -(p * np.log(p) + (1 - p) * np.log(1 - p))
    assert m["logloss_bal"] >= entropy


def test_a_gap_only_pairing_resolves_is_missing_not_minus_165():
    """Attack: on ``iut_example2`` (separable; the subject nearly ignores the background) the oracle beats the
    subject on a handful of test_bal units. The paired guard passes that gap, but a constant prediction's
    accuracy loss divided by it gave -88 to -165 in the standard suite; the scale floor refuses it."""
    scn = cb.make_scenario("iut_example2", n_train=1000, n_val=1000, n_test=4000)
    rep = replicate(scn, 3)
    base, oracle = bal_correct(rep, rep.subject), bal_correct(rep, rep.oracle)
    denom, se = paired_gap(oracle, base)
    assert denom > 3 * se  # the paired guard alone lets it through
    assert denom < MIN_RECOVERABLE
    constant = copy.deepcopy(rep.subject)
    last = [m for m in constant.modules() if isinstance(m, torch.nn.Linear)][-1]
    with torch.no_grad():
        last.weight.zero_()
        last.bias.fill_(1.0)
    m, _ = score(rep, constant)
    assert m["edit_score"] is None
    assert "acc_bal(oracle) - acc_bal(base)" in m.missing["edit_score"]
