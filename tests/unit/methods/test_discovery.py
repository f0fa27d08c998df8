"""The verdict rule shared by the causal-discovery detectors, on hand-built graphs (exact expectations)."""

import numpy as np
import pytest

from cowbench.methods._discovery import (
    ARROW,
    CIRCLE,
    TAIL,
    dag_marks,
    degenerate,
    fisher_z_pvalue,
    label_verdict,
)


def _data(n=2000, seed=0):
    """Columns: a cause, a child of the label, an unrelated variable, a proxy (child of the cause), the label."""
    rng = np.random.default_rng(seed)
    cause = rng.standard_normal(n)
    y = cause + rng.standard_normal(n)
    return np.column_stack([cause, y + rng.standard_normal(n), rng.standard_normal(n),
                            cause + rng.standard_normal(n), y])


def test_dag_marks_follow_causal_learns_endpoint_convention():
    w = np.zeros((3, 3))
    w[0, 2] = 0.7  # 0 -> 2
    marks = dag_marks(w)
    assert marks[0, 2] == TAIL and marks[2, 0] == ARROW
    assert not marks[0, 1] and not marks[1, 2]
    w[2, 0] = 0.4  # a 2-cycle is not oriented
    assert dag_marks(w)[0, 2] == dag_marks(w)[2, 0] == TAIL


def test_verdict_reads_parent_child_proxy_and_unrelated():
    data = _data()
    marks = dag_marks(np.array([[0, 0, 0, 0, 1], [0, 0, 0, 0, 0], [0, 0, 0, 0, 0], [0, 0, 0, 0, 0],
                                [0, 1, 0, 0, 0]]))  # cause -> y -> child; the proxy and the unrelated not adjacent
    out = label_verdict(marks, data, alpha=0.01)
    assert out["relation"] == ["parent", "child", "unrelated", "associated non-neighbour"]
    assert out["scores"].tolist() == [0.0, 1.0, 0.0, 1.0]
    assert not out["abstain"]


def test_undirected_edges_give_no_verdict_and_abstain():
    data = _data()
    marks = np.zeros((5, 5), dtype=int)
    marks[0, 4] = marks[4, 0] = TAIL  # cause - y
    marks[1, 4] = marks[4, 1] = TAIL  # child - y: PC without a collider at the label
    out = label_verdict(marks, data, alpha=0.01)
    assert out["scores"][:2].tolist() == [0.5, 0.5]
    # the proxy is a non-neighbour associated with y: it alone still gives a verdict
    assert out["scores"][3] == 1.0 and not out["abstain"]
    out = label_verdict(marks[[0, 1, 2, 4]][:, [0, 1, 2, 4]], data[:, [0, 1, 2, 4]], alpha=0.01)
    assert out["abstain"]  # without the proxy nothing is identified


@pytest.mark.parametrize(("at_v", "at_label", "pag", "expected"), [
    (ARROW, ARROW, True, 1.0),    # v <-> y in a PAG: a hidden common cause, v is not an ancestor
    (ARROW, ARROW, False, 0.5),   # in PC's CPDAG a bidirected edge is an orientation conflict
    (ARROW, CIRCLE, True, 1.0),   # y o-> v: v is not an ancestor of y
    (CIRCLE, ARROW, True, 0.5),   # v o-> y: v may be an ancestor or share a hidden cause
    (TAIL, ARROW, True, 0.0),     # v -> y: an ancestor, adjacent: a parent
])
def test_pag_marks(at_v, at_label, pag, expected):
    data = _data()[:, [0, 4]]
    marks = np.array([[0, at_v], [at_label, 0]])
    assert label_verdict(marks, data, alpha=0.01, pag=pag)["scores"][0] == expected


def test_fisher_z_matches_the_normal_approximation_of_the_correlation():
    rng = np.random.default_rng(1)
    a = rng.standard_normal(1000)
    assert fisher_z_pvalue(a, a + 3 * rng.standard_normal(1000)) < 1e-3  # rho = 0.32
    # under independence the p-value is uniform: over 200 pairs about 5% fall below 0.05 (binomial sd 1.5%)
    ps = [fisher_z_pvalue(rng.standard_normal(300), rng.standard_normal(300)) for _ in range(200)]
    assert abs(np.mean(np.array(ps) < 0.05) - 0.05) < 4 * np.sqrt(0.05 * 0.95 / 200)
    assert fisher_z_pvalue(np.ones(10), a[:10]) == 1.0


def test_degenerate_data_are_named():
    data = _data()
    assert degenerate(data) is None
    assert "constant" in degenerate(np.column_stack([data, np.ones(len(data))]))
    assert "singular" in degenerate(np.column_stack([data, data[:, -1]]))  # a copy of the label
