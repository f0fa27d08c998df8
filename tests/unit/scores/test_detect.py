"""Detection scores under attack: told methods, abstentions, do-nothing, reversed and tie-producing detectors."""

import numpy as np
import pytest

import cowbench as cb
from cowbench.method import MethodOutput
from cowbench.models import build_model
from cowbench.scores import SCORES, compute_scores
from cowbench.scores.context import ScoreContext

DETECT = ("detect_score", "detect_auroc", "detect_top1", "abstained", "abstain_correct", "abstain_right")
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


def test_abstentions_score_chance_where_the_data_read_could_answer_and_are_graded_apart(scenarios, cow_data):
    abstain = MethodOutput(abstain=True)
    m = scores(scenarios["env"], cow_data, abstain)  # pooled cannot identify it: no primary, a right abstention
    assert m["detect_score"] is None and m["abstain_right"] == 1.0
    m = scores(scenarios["env"], cow_data, abstain, access=("pooled", "env"), used=("env",))
    assert m["detect_score"] == 0.5 and m["abstain_right"] == 0.0
    m = scores(scenarios["never"], cow_data, abstain, access=("pooled", "counterfactual"), used=("counterfactual",))
    assert m["detect_score"] is None and m["abstain_right"] == 1.0
    # group access does not make a scenario identifiable: group labels reveal, they do not identify
    assert scores(scenarios["counterfactual"], cow_data, abstain, access=("pooled", "group"))["abstain_correct"] == 1.0


def test_declared_but_unread_access_neither_defines_the_primary_nor_excuses_an_abstention(scenarios, cow_data):
    # a verdict needs the data behind it: env declared, not read, on a scenario that needs env
    m = scores(scenarios["env"], cow_data, MethodOutput(spurious_score=RIGHT), access=("pooled", "env"))
    assert m["detect_score"] is None and m["detect_auroc"] == 1.0 and m["abstain_right"] == 0.0
    # an abstention is judged against what it could have read
    m = scores(scenarios["env"], cow_data, MethodOutput(abstain=True), access=("pooled", "env"))
    assert m["detect_score"] is None and m["abstain_right"] == 0.0


def test_a_verdict_on_an_unidentifiable_scenario_has_no_primary_whatever_its_auroc(scenarios, cow_data):
    m = scores(scenarios["counterfactual"], cow_data, MethodOutput(spurious_score=RIGHT), access=("pooled", "env"),
               used=("env",))
    assert m["detect_auroc"] == 1.0 and m["detect_score"] is None  # luck or a prior, not the data
    assert m["abstain_right"] == 0.0
    m = scores(scenarios["counterfactual"], cow_data, MethodOutput(spurious_score=RIGHT),
               access=("pooled", "counterfactual"), used=("counterfactual",))
    assert m["detect_score"] == 1.0 and m["abstain_right"] == 1.0


@pytest.mark.parametrize(("name", "spurious_score", "expected"), [
    ("right", RIGHT, 1.0),
    ("reversed", {k: -v for k, v in RIGHT.items()}, 0.0),
    ("do-nothing", dict.fromkeys(RIGHT, 0.0), 0.5),
    ("tie with one cause", {"moo": 5.0, "tail": 0.0, "grass": 5.0, "sky": 0.0}, 0.75),
])
def test_wrong_detectors_do_not_beat_chance(scenarios, cow_data, name, spurious_score, expected):
    m = scores(scenarios["pooled"], cow_data, MethodOutput(spurious_score=spurious_score))
    assert m["detect_score"] == pytest.approx(expected), name


def test_an_always_abstaining_pooled_detector_cannot_win_on_scenarios_that_need_environments(cow_data):
    """Attack (issue 16): a pooled blanket abstainer scored 1.000 and ranked first on cow_hidden, cow_confounded,
    cow_separable, four_groups and linear_sem. Now it has no primary there at all, while an env detector that
    reads the environments and ranks right has one."""
    for name in ("cow_hidden", "cow_confounded", "four_groups"):
        scn = cb.make_scenario(name)
        assert scn.truth.identifiable_with == "env"
        data = scn.sample(seed=0)
        base = build_model("linear", len(scn.variables), seed=0)
        ace = dict.fromkeys(scn.variables, 1.0)
        right = {v: float(scn.truth.roles[v] == "spurious") for v in scn.variables}

        def run(output, access, used, scn=scn, data=data, base=base, ace=ace):
            ctx = ScoreContext(scn, data, output, frozenset(access), base, base, ace, used=set(used))
            return compute_scores(ctx)

        lazy = run(MethodOutput(abstain=True), ("pooled",), ())
        honest = run(MethodOutput(spurious_score=right), ("pooled", "env"), ("env",))
        assert lazy["detect_score"] is None, name
        assert honest["detect_score"] == 1.0 and honest["abstain_right"] == 1.0, name
        assert lazy["abstain_right"] == 1.0  # the abstention was right, and is credited on its own metric


def test_no_fixed_policy_beats_a_correct_detector_over_mixed_scenarios(scenarios, cow_data):
    """Over the four identification levels at pooled+env access (env read), the right policy (verdict where
    identifiable, abstention where not) is perfect on both metrics; always abstaining sits at chance on the
    primary and always answering fails abstain_right where nothing can be identified."""
    access, used = ("pooled", "env"), ("env",)

    def mean(policy, metric):
        values = [scores(scn, cow_data, policy(level), access=access, used=used)[metric]
                  for level, scn in scenarios.items()]
        return np.mean([v for v in values if v is not None])

    def right(level):
        return MethodOutput(spurious_score=RIGHT) if level in ("pooled", "env") else MethodOutput(abstain=True)

    def abstain(level):
        return MethodOutput(abstain=True)

    def answer(level):
        return MethodOutput(spurious_score=RIGHT)

    assert mean(right, "detect_score") == 1.0 and mean(right, "abstain_right") == 1.0
    assert mean(abstain, "detect_score") == pytest.approx(0.5)
    assert mean(abstain, "abstain_right") == pytest.approx(0.5)
    assert mean(answer, "detect_score") == 1.0 and mean(answer, "abstain_right") == pytest.approx(0.5)
    assert mean(lambda level: MethodOutput(spurious_score=dict.fromkeys(RIGHT, 0.0)), "detect_score") == 0.5
