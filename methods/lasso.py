"""Pooled lasso: sparse regression whose selection fails the irrepresentable condition."""

from __future__ import annotations

import numpy as np

from cowbench.access import Task
from cowbench.method import LogUniform, Method, MethodOutput, register_method
from cowbench.methods._common import per_variable


@register_method
class Lasso(Method):
    """L1-penalised least squares of the label on the raw inputs (with an unpenalised intercept).

    scikit-learn's objective ``(1/2n) ||y - X b - b0||^2 + alpha ||b||_1`` (coordinate descent). On the
    active set ``A`` with signs ``s_A`` the population solution is ``b_A = Sigma_AA^-1 (Sigma_Ay - alpha s_A)``.
    The inputs are not standardised. For a binary label this is a penalised linear probability model. The
    slopes serve as world and model estimates; ``details["selected"]`` lists the variables with a non-zero
    coefficient (the lasso's selection verdict; not turned into a spurious score, since "not selected"
    means irrelevant given the others, not spurious).

    Known to fail (catalog §2.3 (f), §7 O10): sign consistency needs the irrepresentable condition
    ``||Sigma_{A^c A} Sigma_AA^-1 sign(beta_A)||_inf < 1``. With two independent causes and
    ``s = r (c1 + c2) + sqrt(1 - 2 r^2) e`` the left side is ``2r``: for ``r > 1/2`` the lasso selects ``s``
    first and keeps it for every alpha, ``b_s(alpha) = alpha (2r - 1) / (1 - 2 r^2)`` below the point where
    the causes enter; for ``r < 1/2`` ``s`` never enters. With a single correlated cause it is correct.

    Parameters
    ----------
    alpha : float
        L1 penalty in scikit-learn's convention.
    max_iter : int
        Coordinate-descent sweeps.
    random_state : int, optional
        Unused (cyclic coordinate descent is deterministic); kept for the common interface.

    References
    ----------
    Tibshirani, R. (1996). Regression shrinkage and selection via the lasso. JRSS B 58(1), 267-288.
    Zhao, P. & Yu, B. (2006). On model selection consistency of Lasso. JMLR 7, 2541-2563.
    """

    name = "lasso"
    version = "1"
    family = "estimation"
    access = frozenset({"pooled"})
    outputs = frozenset({"world", "model"})
    needs_input_map = True
    search_space = {"alpha": LogUniform(1e-4, 1.0)}

    def __init__(self, *, alpha: float = 0.01, max_iter: int = 10_000, random_state: int | None = None):
        self.alpha = alpha
        self.max_iter = max_iter
        self.random_state = random_state

    def run(self, task: Task) -> MethodOutput:
        from sklearn.linear_model import Lasso as SkLasso

        x = np.asarray(task.train.x, dtype=np.float64)
        y = np.asarray(task.train.y, dtype=np.float64)
        coef = SkLasso(alpha=self.alpha, max_iter=self.max_iter, tol=1e-8).fit(x, y).coef_.ravel()
        estimate = per_variable(task, coef)
        return MethodOutput(world_coef=estimate, model_coef=dict(estimate),
                            details={"selected": [v for v in task.variables if estimate[v] != 0.0]})
