"""Linear NOTEARS, written against numpy/scipy: a DAG by continuous optimisation, then the label's parents."""

from __future__ import annotations

import numpy as np
from scipy import linalg, optimize
from threadpoolctl import threadpool_limits

from cowbench.access import Task
from cowbench.method import Choice, LogUniform, Method, MethodOutput, Real, register_method
from cowbench.methods._discovery import dag_marks, degenerate, label_data, verdict_output


def notears_linear(x: np.ndarray, *, lambda1: float = 0.1, w_threshold: float = 0.3, max_iter: int = 100,
                   h_tol: float = 1e-8, rho_max: float = 1e16) -> np.ndarray:
    """Weighted adjacency ``W`` (``W[i, j]``: edge ``i -> j``) by linear NOTEARS with the least-squares loss.

    Minimises ``(1 / 2n) ||X - XW||_F^2 + lambda1 |W|_1`` subject to ``h(W) = tr(exp(W o W)) - d = 0`` by
    the augmented Lagrangian (``rho`` times 10 until ``h`` falls by a factor 4, then the multiplier step),
    each subproblem by L-BFGS-B on ``W = W+ - W-`` with ``W+, W- >= 0`` (so the l1 term is smooth), as
    Zheng et al.'s reference code; entries below ``w_threshold`` in magnitude are set to 0. ``x`` is centred.
    """
    x = np.asarray(x, dtype=np.float64)
    x = x - x.mean(0)
    n, d = x.shape
    rho, alpha, h = 1.0, 0.0, np.inf

    def adj(w: np.ndarray) -> np.ndarray:
        return (w[: d * d] - w[d * d:]).reshape(d, d)

    def acyclicity(w: np.ndarray) -> tuple[float, np.ndarray]:
        e = linalg.expm(w * w)
        return float(np.trace(e) - d), e.T * w * 2

    def objective(wvec: np.ndarray) -> tuple[float, np.ndarray]:
        w = adj(wvec)
        resid = x - x @ w
        loss, g_loss = 0.5 / n * (resid**2).sum(), -1.0 / n * x.T @ resid
        hw, g_h = acyclicity(w)
        obj = loss + 0.5 * rho * hw * hw + alpha * hw + lambda1 * wvec.sum()
        g_smooth = g_loss + (rho * hw + alpha) * g_h
        return obj, np.concatenate([(g_smooth + lambda1).ravel(), (-g_smooth + lambda1).ravel()])

    bounds = [(0, 0) if i == j else (0, None) for _ in range(2) for i in range(d) for j in range(d)]
    wvec = np.zeros(2 * d * d)
    with threadpool_limits(1):  # BLAS threads on these small products cost 30x on a shared machine
        for _ in range(max_iter):
            while rho < rho_max:
                new = optimize.minimize(objective, wvec, method="L-BFGS-B", jac=True, bounds=bounds).x
                h_new, _ = acyclicity(adj(new))
                if h_new > 0.25 * h:
                    rho *= 10
                else:
                    break
            wvec, h = new, h_new
            alpha += rho * h
            if h <= h_tol or rho >= rho_max:
                break
    w = adj(wvec)
    w[np.abs(w) < w_threshold] = 0.0
    return w


@register_method
class NOTEARS(Method):
    """Linear NOTEARS (Zheng et al. 2018) with the label as a node, written against numpy and scipy.

    Algorithm: structure learning as one continuous optimisation: least squares of every node on all the
    others, with an l1 penalty, under the smooth acyclicity constraint ``tr(exp(W o W)) = d`` (zero exactly
    for DAGs), solved by the augmented Lagrangian with L-BFGS-B subproblems; small weights are thresholded
    away (`notears_linear`). The label's parents and children are read off the thresholded DAG.

    Mixed nodes: the loss treats every node, the binary label included, as a linear function of its parents
    with equal-variance noise (the least-squares loss is the likelihood of an equal-variance Gaussian SEM);
    a binary label is used as its 0/1 values.

    Outputs (rule in `cowbench.methods._discovery.label_verdict`): ``spurious_score`` 1 for a child of the
    label and a non-neighbour marginally associated with it (Fisher-z at level ``alpha``), 0.5 for a pair
    left with weights both ways, 0 for a parent and an unrelated non-neighbour; ``world_coef`` the label
    regressed on its parents. **Abstains** when no variable scores 1.
    It also abstains on degenerate data (a singular correlation matrix of the nodes).

    Known failures: the least-squares score identifies the DAG only under equal noise variances; with
    unequal ones its orientations follow the marginal variances (varsortability; Reisach et al. 2021), so
    rescaling the inputs (e.g. measurement in other units) changes the verdict. The threshold and the l1
    weight decide which edges survive.

    Parameters
    ----------
    lambda1 : float
        l1 weight.
    w_threshold : float
        Edges with ``|W_ij|`` below this are dropped.
    alpha : float
        Level of the marginal association test of a non-neighbour of the label.
    random_state : int, optional
        Unused (deterministic: the optimisation starts at W = 0).

    References
    ----------
    Zheng, X., Aragam, B., Ravikumar, P. & Xing, E. P. (2018). DAGs with NO TEARS: continuous optimization for
    structure learning. NeurIPS, arXiv:1803.01422.
    Reisach, A. G., Seiler, C. & Weichwald, S. (2021). Beware of the Simulated DAG! Causal Discovery Benchmarks
    May Be Easy To Game. NeurIPS, arXiv:2102.13647.
    """

    name = "notears"
    version = "1"
    family = "causal"
    access = frozenset({"pooled"})
    outputs = frozenset({"world", "detect"})
    needs_input_map = True
    search_space = {"lambda1": LogUniform(0.01, 0.3), "w_threshold": Choice((0.1, 0.2, 0.3))}
    param_constraints = {"alpha": Real(0.0, 1.0, open_low=True), "lambda1": Real(0.0, None),
                         "w_threshold": Real(0.0, None)}

    def __init__(self, *, lambda1: float = 0.1, w_threshold: float = 0.3, alpha: float = 0.01,
                 random_state: int | None = None):
        self.lambda1 = lambda1
        self.w_threshold = w_threshold
        self.alpha = alpha
        self.random_state = random_state

    def run(self, task: Task) -> MethodOutput:
        data = label_data(task.train.x, task.train.y)
        if degenerate(data):
            return verdict_output(task, None, data, alpha=float(self.alpha))
        weights = notears_linear(data, lambda1=float(self.lambda1), w_threshold=float(self.w_threshold))
        return verdict_output(task, dag_marks(weights), data, alpha=float(self.alpha))
