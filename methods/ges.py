"""Greedy Equivalence Search with the label as a node: a spurious variable is a non-parent associated with it."""

from __future__ import annotations

import contextlib
import io

import numpy as np

from cowbench.access import Task
from cowbench.method import Choice, Method, MethodOutput, Real, register_method
from cowbench.methods._discovery import degenerate, label_data, verdict_output


def ges_marks(data: np.ndarray, *, lambda_value: float = 0.5) -> np.ndarray:
    """Endpoint matrix of the CPDAG that causal-learn's GES (linear-Gaussian BIC) learns from ``data``."""
    from causallearn.search.ScoreBased.GES import ges

    with contextlib.redirect_stdout(io.StringIO()):  # causal-learn prints its search steps
        record = ges(np.asarray(data, dtype=np.float64), score_func="local_score_BIC",
                     parameters={"lambda_value": lambda_value})
    return np.asarray(record["G"].graph, dtype=np.int64)


@register_method
class GES(Method):
    """Greedy Equivalence Search (Chickering 2002), label as a node, linear-Gaussian BIC score.

    Algorithm: a greedy search over Markov equivalence classes (CPDAGs), starting from the empty graph: the
    forward phase adds the single edge that most improves the score until none does, the backward phase
    removes edges likewise. With a consistent, decomposable score the result is the true equivalence class
    in the large-sample limit. causal-learn 0.1.4's ``ges`` with ``local_score_BIC``: the Gaussian
    log-likelihood of each node's linear regression on its parents minus ``lambda_value * log(n) * (#parents)``
    (``lambda_value = 0.5`` is Schwarz's BIC).

    Mixed binary and continuous nodes: the score treats every node, the binary label included, as linear
    Gaussian given its parents (a linear-probability model for a binary node). That is an approximation;
    its conditional independences are the vanishing partial correlations of PC's Fisher-z test (see
    `cowbench.methods.pc.PC`), so the two usually agree.

    Outputs (rule in `cowbench.methods._discovery.label_verdict`): ``spurious_score`` 1 for a child of the
    label and a non-neighbour marginally associated with it (Fisher-z at level ``alpha``), 0.5 for an
    undirected neighbour, 0 for a parent and an unrelated non-neighbour; ``world_coef`` the label regressed
    on its parents and undirected neighbours. **Abstains** when no variable scores 1.
    It also abstains on degenerate data (a singular correlation matrix of the nodes).

    Known failures: as PC (no collider at the label leaves its edges undirected; environment confounding
    of the pooled data; hidden confounders); a score that misspecifies a binary node's mechanism (the label
    is a threshold of its causes) can add edges at large n, since every extra parent improves the fit of a
    non-linear conditional mean.

    Parameters
    ----------
    lambda_value : float
        Penalty per parameter in units of ``log(n)`` (0.5: BIC).
    alpha : float
        Level of the marginal association test of a non-neighbour of the label.
    random_state : int, optional
        Unused (deterministic).

    References
    ----------
    Chickering, D. M. (2002). Optimal structure identification with greedy search. JMLR 3, 507-554.
    Zheng, Y., Huang, B., Chen, W. et al. (2024). Causal-learn: causal discovery in Python. JMLR 25(60).
    """

    name = "ges"
    version = "1"
    preload = ("causallearn.search.ScoreBased.GES",)
    family = "causal"
    access = frozenset({"pooled"})
    outputs = frozenset({"world", "detect"})
    needs_input_map = True
    search_space = {"lambda_value": Choice((0.5, 1.0, 2.0))}
    param_constraints = {"alpha": Real(0.0, 1.0, open_low=True), "lambda_value": Real(0.0, None, open_low=True)}

    def __init__(self, *, lambda_value: float = 0.5, alpha: float = 0.01, random_state: int | None = None):
        self.lambda_value = lambda_value
        self.alpha = alpha
        self.random_state = random_state

    def run(self, task: Task) -> MethodOutput:
        data = label_data(task.train.x, task.train.y)
        marks = None if degenerate(data) else ges_marks(data, lambda_value=float(self.lambda_value))
        return verdict_output(task, marks, data, alpha=float(self.alpha))
