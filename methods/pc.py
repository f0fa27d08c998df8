"""The PC algorithm with the label as a node: a spurious variable is a non-parent of the label associated with it."""

from __future__ import annotations

import numpy as np

from cowbench.access import Task
from cowbench.method import Choice, Method, MethodOutput, Real, register_method
from cowbench.methods._discovery import degenerate, label_data, verdict_output


def pc_marks(data: np.ndarray, *, alpha: float) -> np.ndarray:
    """Endpoint matrix of the CPDAG that causal-learn's PC (stable, Fisher-z) learns from ``data``."""
    from causallearn.search.ConstraintBased.PC import pc

    cg = pc(np.asarray(data, dtype=np.float64), alpha=alpha, indep_test="fisherz", stable=True, uc_rule=0,
            uc_priority=2, show_progress=False)
    return np.asarray(cg.G.graph, dtype=np.int64)


@register_method
class PC(Method):
    """PC (Spirtes, Glymour & Scheines 2000), order-independent ("stable"; Colombo & Maathuis 2014), label as a node.

    Algorithm: the nodes are the input columns and the label. Starting from the complete graph, PC removes
    the edge ``a - b`` as soon as ``a`` and ``b`` are independent given some subset of ``a``'s neighbours
    (subsets of growing size), orients each unshielded triple ``a - c - b`` as a collider ``a -> c <- b``
    when ``c`` is not in the set that separated ``a`` and ``b``, then applies Meek's rules. The output is a
    CPDAG (causal-learn 0.1.4's ``pc``, ``uc_rule=0, uc_priority=2``). On ``cow`` the two independent causes
    make the label a collider (``moo -> cow <- tail``), and ``grass``, independent of the causes given the
    label, is then oriented ``cow -> grass`` by Meek's first rule.

    Conditional-independence test: Fisher's z of the partial correlation, for every node, binary ones (the
    label, a binary spurious variable) included. That is the test PC's consistency results use for
    Gaussian data (Kalisch & Bühlmann 2007); PC itself accepts any consistent test. With binary nodes it is
    a Gaussian approximation: when the conditioning set is the binary label alone the conditional mean is
    exactly linear in it, so conditional independence implies zero partial correlation (the tests that
    orient ``cow -> grass`` are of this kind); given continuous nodes a binary node's conditional mean is
    non-linear, and the test can report dependence that is not there at large n (a false edge). A kernel
    test (KCI) would be exact and costs O(n^3); it is not offered.

    Outputs (rule in `cowbench.methods._discovery.label_verdict`): ``spurious_score`` 1 for a child of the
    label and for a non-neighbour marginally associated with it (e.g. a proxy: a child of the label's
    causes), 0.5 for an undirected neighbour, 0 for a parent and for an unrelated non-neighbour;
    ``world_coef`` the label regressed (logistic for a binary label, OLS otherwise) on its parents and
    undirected neighbours, 0 elsewhere. **Abstains** when no variable scores 1: no non-parent associated
    with the label is identified (e.g. the label has a single cause, so there is no collider and every
    edge at the label stays undirected), and when the nodes' correlation matrix is singular (a constant
    node, or one that is a linear function of others, e.g. a spurious variable equal to the label).

    Measured (12 samples of ``cow`` each, seeds 0-11): at ``alpha = 0.01`` the label's edges are exactly
    ``moo -> cow <- tail, cow -> grass`` in 12 of 12 at n = 2000 and at n = 4000; at ``alpha = 0.05`` in 8 of
    12 at n = 2000 and 11 of 12 at n = 4000, each miss caused by one false-positive test (an edge such as
    ``moo - sky`` that makes a false collider or breaks the true one), hence the default 0.01. Over the
    identity-rendered presets (seeds 0-2, defaults): detection AUROC 1 on every one identifiable from pooled
    data (``cow``, ``cow_planted``, ``cow_selection``, ``cow_single_env``, ``cow_two_shortcuts``, the
    ``planted_*`` family, ``proxy_sem``) except ``cow_xor``, where each cause is marginally independent of
    the label (an unfaithful distribution for a linear test) and PC abstains; it abstains on ``cow_confounded``,
    ``cow_hidden``, ``cow_proxy``, ``four_groups``, ``linear_sem`` and ``iut_example2`` (identifiable only
    with environments) and on ``cow_separable`` (singular), but gives a verdict without identifiability on
    ``irm_synthetic``, ``iut_example1`` and ``iut_example3``. FCI behaves the same on these presets.

    Known failures: environment confounding (the spurious variable's association with the label differs
    across pooled environments) breaks faithfulness of the pooled distribution; a hidden confounder of the
    label and a variable makes a bidirected PAG edge that PC cannot represent (use FCI); measurement noise
    on a cause leaves a residual dependence of its descendants given the label and may add a false edge at
    large n; a false-positive test (at level ``alpha``, several per graph) can reverse an orientation.

    Parameters
    ----------
    alpha : float
        Level of each conditional-independence test (and of the marginal association test of a
        non-neighbour).
    random_state : int, optional
        Unused (deterministic).

    References
    ----------
    Spirtes, P., Glymour, C. & Scheines, R. (2000). Causation, Prediction, and Search (2nd ed.). MIT Press.
    Colombo, D. & Maathuis, M. H. (2014). Order-independent constraint-based causal structure learning. JMLR
    15, 3741-3782.
    Kalisch, M. & Bühlmann, P. (2007). Estimating high-dimensional directed acyclic graphs with the
    PC-algorithm. JMLR 8, 613-636.
    Zheng, Y., Huang, B., Chen, W. et al. (2024). Causal-learn: causal discovery in Python. JMLR 25(60).
    """

    name = "pc"
    version = "1"
    preload = ("causallearn.search.ConstraintBased.PC",)
    family = "causal"
    access = frozenset({"pooled"})
    outputs = frozenset({"world", "detect"})
    needs_input_map = True
    search_space = {"alpha": Choice((0.001, 0.01, 0.05))}
    param_constraints = {"alpha": Real(0.0, 1.0, open_low=True)}

    def __init__(self, *, alpha: float = 0.01, random_state: int | None = None):
        self.alpha = alpha
        self.random_state = random_state

    def run(self, task: Task) -> MethodOutput:
        data = label_data(task.train.x, task.train.y)
        marks = None if degenerate(data) else pc_marks(data, alpha=float(self.alpha))
        return verdict_output(task, marks, data, alpha=float(self.alpha))
