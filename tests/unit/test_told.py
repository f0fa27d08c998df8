"""A detector told the answer through group labels is not ranked on detection, in every scenario family.

The test double reads only ``|corr(v, group % 2)|`` on the labelled subset: before routes were tracked it
scored AUROC 1.0 wherever the group labels carry the spurious variable (every single-spurious family,
cow_separable included). Through the harness's ``execute`` its detection metrics are now missing and the
route is returned for the job record (``told``).
"""

import numpy as np
import pytest

import cowbench as cb
from cowbench.jobs import ReplicateSpec, execute, prepare
from cowbench.method import Method, MethodOutput
from cowbench.scores import compute_scores
from cowbench.scores.context import ScoreContext
from cowbench.subject import SubjectConfig

SMALL = {"n_train": 300, "n_val": 100, "n_test": 300}
DETECT = ("detect_score", "detect_auroc", "detect_top1", "abstained", "abstain_correct")


class GroupPeek(Method):
    """Test double: ranks each variable by its correlation with the group labels' spurious bit.

    References
    ----------
    None (a cheat).
    """

    name = "group_peek"
    family = "attribution"
    access = frozenset({"pooled", "group", "concept"})
    outputs = frozenset({"detect"})

    def __init__(self, *, random_state=None):
        self.random_state = random_state

    def run(self, task):
        concepts, bit = task.concepts, task.train.group[task.concept_index] % 2
        return MethodOutput(spurious_score={
            v: abs(float(np.nan_to_num(np.corrcoef(concepts[v], bit)[0, 1]))) for v in task.variables})


@pytest.mark.parametrize("name", cb.list_scenarios())
def test_group_peeking_detector_is_unranked_in_every_family(name):
    scn = cb.make_scenario(name, **SMALL)
    rep = prepare(ReplicateSpec(scn.spec, 0, 0, SubjectConfig.from_mapping({"arch": "linear"}).to_dict()))
    output, metrics, resources = execute(rep, GroupPeek(), 0)
    assert resources["told"] == ["group"]
    assert all(metrics[k] is None for k in DETECT), {k: metrics[k] for k in DETECT}
    # the threat is real: scored as if it had not been told, the double ranks the spurious variable high
    untold = ScoreContext(rep.scenario, rep.data, output, frozenset({"pooled"}), rep.subject, rep.oracle,
                          dict(rep.base_ace))
    auroc = compute_scores(untold)["detect_auroc"]
    assert auroc > 0.5
    if len(scn.truth.of_role("spurious")) == 1:  # the group labels carry the one spurious variable
        assert auroc == 1.0


def test_declaring_group_access_without_reading_it_is_not_being_told():
    class Honest(GroupPeek):
        def run(self, task):
            return MethodOutput(spurious_score={v: float(i) for i, v in enumerate(task.variables)})

    scn = cb.make_scenario("cow", **SMALL)
    rep = prepare(ReplicateSpec(scn.spec, 0, 0, SubjectConfig.from_mapping({"arch": "linear"}).to_dict()))
    _, metrics, resources = execute(rep, Honest(), 0)
    assert resources["told"] == [] and metrics["detect_auroc"] is not None
