"""FCI with the label as a node: non-ancestors of the label (children, confounded neighbours) are spurious."""

from __future__ import annotations

import contextlib
import io

import numpy as np

from cowbench.access import Task
from cowbench.method import Choice, Method, MethodOutput, Real, register_method
from cowbench.methods._discovery import degenerate, label_data, verdict_output


def fci_marks(data: np.ndarray, *, alpha: float) -> np.ndarray:
    """Endpoint matrix of the PAG that causal-learn's FCI (Fisher-z) learns from ``data``."""
    from causallearn.search.ConstraintBased.FCI import fci

    with contextlib.redirect_stdout(io.StringIO()):  # causal-learn prints the edges its rules orient
        graph, _ = fci(np.asarray(data, dtype=np.float64), independence_test_method="fisherz", alpha=alpha,
                       show_progress=False, verbose=False)
    return np.asarray(graph.graph, dtype=np.int64)


@register_method
class FCI(Method):
    """Fast Causal Inference (Spirtes, Meek & Richardson 1995; Zhang 2008), the label as a node.

    Algorithm: PC's adjacency search (removing ``a - b`` when a separating set is found among ``a``'s
    neighbours), then a second pass over separating sets from Possible-D-SEP, collider orientation and
    Zhang's (2008) complete orientation rules; hidden common causes are allowed, so the output is a partial
    ancestral graph (PAG) whose edge marks are tails (ancestor), arrowheads (not an ancestor) or circles
    (either). causal-learn 0.1.4's ``fci``.

    Conditional-independence test: Fisher's z of the partial correlation for every node, the binary label
    included (a Gaussian approximation; exact in the sense that conditional independence implies zero
    partial correlation when the conditioning set is the binary label alone; see `cowbench.methods.pc.PC`).

    Outputs (rule in `cowbench.methods._discovery.label_verdict`, ``pag=True``): ``spurious_score`` 1 when
    the mark at the variable's end of its edge with the label is an arrowhead (``cow -> grass``,
    ``cow <-> grass``, ``cow o-> grass``: grass is not an ancestor of the label, whether it is a child or
    shares a hidden cause with it) and for a non-neighbour marginally associated with the label; 0.5 for a
    circle; 0 for a tail (an ancestor) and an unrelated non-neighbour. ``world_coef``: the label regressed
    on the variables with a tail or circle at their end (logistic for a binary label), 0 elsewhere.
    **Abstains** when no variable scores 1 (e.g. every edge at the label keeps a circle at the variable's
    end, as happens without a collider at the label).
    It also abstains on degenerate data (a singular correlation matrix of the nodes).

    Known failures: those of PC (faithfulness, environment confounding of the pooled data, false tests at
    level ``alpha``); FCI's extra tests cost power, so at small n more marks stay circles than PC leaves
    edges undirected.

    Parameters
    ----------
    alpha : float
        Level of each conditional-independence test (and of the marginal association test of a
        non-neighbour).
    random_state : int, optional
        Unused (deterministic).

    References
    ----------
    Spirtes, P., Meek, C. & Richardson, T. (1995). Causal inference in the presence of latent variables and
    selection bias. UAI, 499-506.
    Zhang, J. (2008). On the completeness of orientation rules for causal discovery in the presence of latent
    confounders and selection bias. Artificial Intelligence 172(16-17), 1873-1896.
    Zheng, Y., Huang, B., Chen, W. et al. (2024). Causal-learn: causal discovery in Python. JMLR 25(60).
    """

    name = "fci"
    version = "1"
    preload = ("causallearn.search.ConstraintBased.FCI",)
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
        marks = None if degenerate(data) else fci_marks(data, alpha=float(self.alpha))
        return verdict_output(task, marks, data, alpha=float(self.alpha), pag=True)
