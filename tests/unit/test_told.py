"""A detector told the answer through group labels is not ranked on detection, in every scenario family.

The test double reads only how much more of each variable the group labels explain than the label does, on
the labelled subset (group ids are relabelled per replicate, so it treats them as categories): before routes
were tracked a double of this kind scored AUROC 1.0 wherever the group labels carry the spurious variable
(every single-spurious family, cow_separable included). Through the harness's ``execute`` its detection
metrics are now missing and the route is returned for the job record (``told``).
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


def _explained(v: np.ndarray, codes: np.ndarray) -> float:
    """Share of the variance of ``v`` explained by the categories ``codes`` (the correlation ratio)."""
    means = {c: v[codes == c].mean() for c in np.unique(codes)}
    fitted = np.array([means[c] for c in codes])
    return float(np.var(fitted) / max(np.var(v), 1e-12))


class GroupPeek(Method):
    """Test double: ranks each variable by how much more of it the group labels explain than the label does.

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
        rows = task.concept_index
        concepts, group, y = task.concepts, task.train.group[rows], task.train.y[rows]
        return MethodOutput(spurious_score={
            v: _explained(concepts[v].to_numpy(float), group) - _explained(concepts[v].to_numpy(float), y)
            for v in task.variables})


@pytest.mark.parametrize("name", cb.list_scenarios())
def test_group_peeking_detector_is_unranked_in_every_family(name):
    scn = cb.make_scenario(name, **SMALL)
    rep = prepare(ReplicateSpec(scn.spec, 0, 0, SubjectConfig.from_mapping({"arch": "linear"}).to_dict()))
    output, metrics, resources = execute(rep, GroupPeek(), 0)
    assert resources["told"] == ["group"]
    assert all(metrics[k] is None for k in DETECT), {k: metrics[k] for k in DETECT}
    # the threat is real: where the training groups are not the label alone (all four present), the double
    # ranks a spurious variable first (where several share one hidden cause, any of them), and scored as if
    # it had not been told it would gain
    if len(np.unique(rep.data.train.group)) == 4:
        top = max(output.spurious_score, key=output.spurious_score.get)
        assert top in scn.truth.of_role("spurious"), output.spurious_score
        untold = ScoreContext(rep.scenario, rep.data, output, frozenset({"pooled"}), rep.subject, rep.oracle,
                              dict(rep.base_ace))
        auroc = compute_scores(untold)["detect_auroc"]
        if len(scn.truth.of_role("spurious")) == 1:  # the group labels carry the one spurious variable
            assert auroc == 1.0
