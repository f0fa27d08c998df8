"""FCI with the label as a node: the child on cow, and a hidden confounder read as "not an ancestor"."""

import numpy as np

import cowbench as cb
from cowbench.methods._discovery import ARROW, label_verdict
from cowbench.methods.fci import FCI, fci_marks


def test_fci_scores_grass_as_a_non_ancestor_of_cow(pooled_task, detect_auroc):
    # measured (alpha 0.01, n = 4000): 6 of 6 seeds give moo o-> cow <-o tail, cow -> grass
    scn = cb.make_scenario("cow", n_train=4000)
    for seed in range(3):
        out = FCI().run(pooled_task(scn, seed))
        assert not out.abstain
        assert out.details["relation"]["grass"] in ("child", "not an ancestor")
        assert out.details["relation"]["moo"] == out.details["relation"]["tail"] == "undetermined"
        assert detect_auroc(scn, out.spurious_score) == 1.0


def test_fci_reads_a_hidden_common_cause_as_a_bidirected_edge():
    # a -> v <-> y <- b with v and y sharing a hidden cause h: the PAG has arrowheads at v and at y on v - y
    # (Zhang 2008), which PC cannot express; the verdict scores v as a non-ancestor of y (spurious)
    rng = np.random.default_rng(0)
    n = 4000
    a, b, h = rng.standard_normal((3, n))
    v = a + h + rng.standard_normal(n)
    y = b + h + rng.standard_normal(n)
    data = np.column_stack([a, b, v, y])
    marks = fci_marks(data, alpha=0.01)
    assert marks[2, 3] == ARROW and marks[3, 2] == ARROW
    verdict = label_verdict(marks, data, alpha=0.01, pag=True)
    assert verdict["relation"][2] == "not an ancestor" and verdict["scores"][2] == 1.0


def test_fci_abstains_where_the_label_is_a_root(pooled_task):
    out = FCI().run(pooled_task(cb.make_scenario("four_groups"), 0))
    assert out.abstain
