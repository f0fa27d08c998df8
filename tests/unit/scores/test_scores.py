import numpy as np
import pytest
import torch

from cowbench.method import MethodOutput
from cowbench.models import build_model
from cowbench.scores import all_scores, compute_scores
from cowbench.scores._vectors import cosine, scale_free_error
from cowbench.scores.context import ScoreContext

THETA = {"moo": 1.0, "tail": 1.0, "grass": 0.0, "sky": 0.0}


def context(cow, cow_data, output, *, base=None, oracle=None, base_ace=None, access=("pooled",), used=()):
    base = base if base is not None else build_model("linear", 4, seed=0)
    return ScoreContext(cow, cow_data, output, frozenset(access), base, oracle or base,
                        base_ace or {"moo": 0.5, "tail": 0.5, "grass": 2.0, "sky": 0.0}, used=set(used))


def linear(weights, bias=0.0):
    model = build_model("linear", 4, seed=0)
    with torch.no_grad():
        model[0].weight.copy_(torch.tensor([weights], dtype=torch.float32))
        model[0].bias.fill_(bias)
    return model


def test_scale_free_error_is_zero_for_any_positive_rescaling_and_one_for_opposite_sign():
    truth = np.array([1.0, 2.0, 0.0])
    assert scale_free_error(7.3 * truth, truth) == pytest.approx(0.0, abs=1e-12)
    assert scale_free_error(-truth, truth) == pytest.approx(1.0)
    assert scale_free_error(np.zeros(3), truth) == 1.0
    # orthogonal component: min_s ||s a - b|| / ||b|| with a = (1, 0, 1), b = (1, 0, 0) -> sqrt(1/2)
    assert scale_free_error(np.array([1.0, 0, 1]), np.array([1.0, 0, 0])) == pytest.approx(np.sqrt(0.5))
    assert cosine(np.array([1.0, 0]), np.array([1.0, 1])) == pytest.approx(1 / np.sqrt(2))


def test_world_scores_of_the_truth_and_of_a_grass_heavy_estimate(cow, cow_data):
    perfect = compute_scores(context(cow, cow_data, MethodOutput(world_coef={k: 3 * v for k, v in THETA.items()})))
    assert perfect["world_cos"] == pytest.approx(1.0) and perfect["world_err"] == pytest.approx(0.0)
    assert perfect["world_spurious_mass"] == 0.0
    est = {"moo": 1.0, "tail": 1.0, "grass": 2.0, "sky": 0.0}
    m = compute_scores(context(cow, cow_data, MethodOutput(world_coef=est)))
    assert m["world_spurious_mass"] == pytest.approx(0.5)
    assert m["world_cos"] == pytest.approx(2 / (np.sqrt(6) * np.sqrt(2)))
    assert m["model_cos"] is None and m["edit_score"] is None and m["detect_auroc"] is None


def test_model_scores_compare_with_the_base_reliance(cow, cow_data):
    base_ace = {"moo": 0.5, "tail": 0.6, "grass": 2.0, "sky": 0.01}
    m = compute_scores(context(cow, cow_data, MethodOutput(model_coef=dict(base_ace)), base_ace=base_ace))
    assert m["model_err"] == pytest.approx(0.0, abs=1e-12) and m["model_rank"] == pytest.approx(1.0)
    reversed_order = {"moo": 2.0, "tail": 0.6, "grass": 0.5, "sky": 3.0}
    m = compute_scores(context(cow, cow_data, MethodOutput(model_coef=reversed_order), base_ace=base_ace))
    assert m["model_rank"] < 0


@pytest.mark.parametrize(("scores", "auroc", "top1"), [
    ({"moo": 0.1, "tail": 0.2, "grass": 5.0, "sky": 0.0}, 1.0, 1.0),
    ({"moo": 0.1, "tail": 9.0, "grass": 5.0, "sky": 0.0}, 0.5, 0.0),
    ({"moo": 5.0, "tail": 5.0, "grass": 5.0, "sky": 0.0}, 0.5, 0.0),
    ({"moo": 1.0, "tail": 1.0, "grass": 0.0, "sky": 9.0}, 0.0, 0.0),  # nuisance excluded from AUROC only
])
def test_detection_auroc_and_top1(cow, cow_data, scores, auroc, top1):
    m = compute_scores(context(cow, cow_data, MethodOutput(spurious_score=scores)))
    assert m["detect_auroc"] == auroc and m["detect_top1"] == top1 and m["abstained"] == 0.0


def test_abstention_is_counted_and_judged_against_identifiability(cow_data):
    import cowbench as cb

    # environment-dependent label noise: identifiable with environments, not from pooled data
    hetero = cb.make_scenario("cow", heteroskedastic=1.0)
    assert hetero.truth.identifiable_with == "env"
    out = MethodOutput(abstain=True)
    pooled = compute_scores(context(hetero, cow_data, out, access=("pooled",)))
    assert pooled["abstained"] == 1.0 and pooled["abstain_correct"] == 1.0 and pooled["detect_auroc"] is None
    env = compute_scores(context(hetero, cow_data, out, access=("pooled", "env")))
    assert env["abstain_correct"] == 0.0


def test_detection_is_dropped_when_the_method_read_the_edit_target(cow, cow_data):
    out = MethodOutput(spurious_score={"moo": 0.0, "tail": 0.0, "grass": 1.0, "sky": 0.0})
    m = compute_scores(context(cow, cow_data, out, used=("concept", "edit_target")))
    assert m["detect_auroc"] is None and m["detect_top1"] is None


def test_edit_scores_by_hand(cow, cow_data):
    from cowbench.model_truth import reliance
    from cowbench.models import accuracy

    base, oracle = linear([1.0, 1.0, 3.0, 0.0], -1.5), linear([1.0, 1.0, 0.0, 0.0])
    edited = linear([0.5, 0.5, 0.3, 0.0], -0.15)
    base_ace = reliance(base, cow, cow_data.test_id)
    ctx = context(cow, cow_data, MethodOutput(edited=edited), base=base, oracle=oracle, base_ace=base_ace)
    m = compute_scores(ctx)
    models = {"base": base, "oracle": oracle, "edited": edited}
    ood = {k: accuracy(mod, cow_data.test_ood.x, cow_data.test_ood.y) for k, mod in models.items()}
    bal = {k: accuracy(mod, cow_data.test_bal.x, cow_data.test_bal.y) for k, mod in models.items()}
    assert m["acc_ood"] == pytest.approx(ood["edited"]) and m["acc_bal"] == pytest.approx(bal["edited"])
    # the edit score is computed on test_bal (where the oracle is optimal), not on the flipped test_ood
    assert m["edit_score"] == pytest.approx((bal["edited"] - bal["base"]) / (bal["oracle"] - bal["base"]))
    # the spurious share of the total reliance, edited against base: (0.3 / 1.3) / (3.0 / 5.0)
    assert m["residual_spurious"] == pytest.approx((0.3 / 1.3) / (3.0 / 5.0), rel=1e-4)
    # magnitude-aware: (0.5, 0.5) is parallel to (1, 1) but half of it: 1 - ||(0.5, 0.5)|| / ||(1, 1)||
    assert m["causal_kept"] == pytest.approx(0.5, abs=1e-6)
    assert m.missing == {}
    assert m["id_drop"] == pytest.approx(accuracy(base, cow_data.test_id.x, cow_data.test_id.y) - m["acc_id"])
    split = cow_data.test_ood
    correct = (edited(torch.tensor(split.x)).detach().numpy() > 0) == (split.y == 1)
    assert m["wga"] == pytest.approx(min(correct[split.group == g].mean() for g in range(4)))


def test_edit_score_is_missing_when_there_is_nothing_to_recover(cow, cow_data):
    same = linear([1.0, 1.0, 0.0, 0.0])
    m = compute_scores(context(cow, cow_data, MethodOutput(edited=same), base=same, oracle=same))
    assert m["edit_score"] is None and m["acc_ood"] is not None
    assert "acc_bal(oracle) - acc_bal(base)" in m.missing["edit_score"]


def test_every_score_documents_its_formula_and_ranks_tracks_once():
    scores = all_scores()
    assert all(s.doc for s in scores)
    primaries = [s.track for s in scores if s.primary]
    assert sorted(primaries) == sorted(set(primaries)) == ["detect", "discover", "edit", "model", "world"]
