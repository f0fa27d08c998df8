"""Detection scores under attack: told methods, abstentions, do-nothing, reversed and tie-producing detectors."""

import numpy as np
import pytest

import cowbench as cb
from cowbench.method import MethodOutput
from cowbench.models import build_model
from cowbench.scores import SCORES, compute_scores
from cowbench.scores.context import ScoreContext

DETECT = ("detect_score", "detect_auroc", "detect_top1", "abstained", "abstain_correct")
RIGHT = {"moo": 0.1, "tail": 0.2, "grass": 5.0, "sky": 0.0}


def scores(scn, data, output, access=("pooled",), used=()):
    base = build_model("linear", 4, seed=0)
    ctx = ScoreContext(scn, data, output, frozenset(access), base, base, {"moo": 1.0, "tail": 1.0, "grass": 1.0,
                                                                          "sky": 0.0}, used=set(used))
    return {k: v for k, v in compute_scores(ctx).items() if k in DETECT}


@pytest.fixture(scope="module")
def scenarios():
    return {"pooled": cb.make_scenario("cow"),  # identifiable from pooled data (collider at cow)
            "env": cb.make_scenario("cow", heteroskedastic=1.0),
            "counterfactual": cb.make_scenario("cow_separable"),
            "never": cb.make_scenario("four_groups", agreement_train=(0.9,))}


def test_detect_score_is_primary_bounded_and_states_chance():
    entry = SCORES.get("detect_score")
    assert entry.primary and entry.bounds == (0.0, 1.0) and entry.chance == 0.5
    assert not SCORES.get("detect_auroc").primary


@pytest.mark.parametrize("route", [("group",), ("concept", "edit_target"), ("group", "env")])
def test_a_told_method_has_no_detection_metric(scenarios, cow_data, route):
    for output in (MethodOutput(spurious_score=RIGHT), MethodOutput(abstain=True)):
        m = scores(scenarios["pooled"], cow_data, output, access=("pooled", "group", "concept", "env"), used=route)
        assert all(v is None for v in m.values()), m


def test_reading_environments_or_concepts_is_not_being_told(scenarios, cow_data):
    m = scores(scenarios["pooled"], cow_data, MethodOutput(spurious_score=RIGHT), access=("pooled", "env", "concept"),
               used=("env", "concept"))
    assert m["detect_score"] == m["detect_auroc"] == 1.0


def test_abstentions_count_full_where_correct_and_chance_where_the_data_could_answer(scenarios, cow_data):
    abstain = MethodOutput(abstain=True)
    assert scores(scenarios["env"], cow_data, abstain)["detect_score"] == 1.0  # pooled cannot: correct
    assert scores(scenarios["env"], cow_data, abstain, access=("pooled", "env"))["detect_score"] == 0.5
    assert scores(scenarios["never"], cow_data, abstain, access=("pooled", "counterfactual"))["detect_score"] == 1.0
    # group access does not make a scenario identifiable: group labels reveal, they do not identify
    assert scores(scenarios["counterfactual"], cow_data, abstain, access=("pooled", "group"))["abstain_correct"] == 1.0


def test_a_verdict_on_an_unidentifiable_scenario_scores_chance_whatever_its_auroc(scenarios, cow_data):
    m = scores(scenarios["counterfactual"], cow_data, MethodOutput(spurious_score=RIGHT), access=("pooled", "env"))
    assert m["detect_auroc"] == 1.0 and m["detect_score"] == 0.5  # luck or a prior, not the data
    m = scores(scenarios["counterfactual"], cow_data, MethodOutput(spurious_score=RIGHT),
               access=("pooled", "counterfactual"))
    assert m["detect_score"] == 1.0


@pytest.mark.parametrize(("name", "spurious_score", "expected"), [
    ("right", RIGHT, 1.0),
    ("reversed", {k: -v for k, v in RIGHT.items()}, 0.0),
    ("do-nothing", dict.fromkeys(RIGHT, 0.0), 0.5),
    ("tie with one cause", {"moo": 5.0, "tail": 0.0, "grass": 5.0, "sky": 0.0}, 0.75),
])
def test_wrong_detectors_do_not_beat_chance(scenarios, cow_data, name, spurious_score, expected):
    m = scores(scenarios["pooled"], cow_data, MethodOutput(spurious_score=spurious_score))
    assert m["detect_score"] == pytest.approx(expected), name


def test_no_fixed_policy_beats_a_correct_detector_over_mixed_scenarios(scenarios, cow_data):
    """Over the four identification levels at pooled+env access, the right policy (verdict where identifiable,
    abstention where not) wins; always abstaining and always answering both sit at chance somewhere."""
    access = ("pooled", "env")

    def mean(policy):
        return np.mean([scores(scn, cow_data, policy(level), access=access)["detect_score"]
                        for level, scn in scenarios.items()])

    def right(level):
        return MethodOutput(spurious_score=RIGHT) if level in ("pooled", "env") else MethodOutput(abstain=True)

    best = mean(right)
    assert best == 1.0
    assert mean(lambda level: MethodOutput(abstain=True)) == pytest.approx(0.75)
    assert mean(lambda level: MethodOutput(spurious_score=RIGHT)) == pytest.approx(0.75)
    assert mean(lambda level: MethodOutput(spurious_score=dict.fromkeys(RIGHT, 0.0))) == pytest.approx(0.5)
