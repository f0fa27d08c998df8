"""Pooled ridge regression: shrinkage that moves weight onto a correlated spurious variable."""

from __future__ import annotations

import numpy as np

from cowbench.access import Task
from cowbench.method import LogUniform, Method, MethodOutput, register_method
from cowbench.methods._common import per_variable


@register_method
class Ridge(Method):
    """L2-penalised least squares of the label on the raw inputs (with an unpenalised intercept).

    scikit-learn's objective ``||y - X b - b0||^2 + alpha ||b||^2``, so ``b = (X_c'X_c + alpha I)^-1 X_c'y``
    with centred inputs; its population analogue is ``(Sigma_XX + lambda I)^-1 Sigma_Xy`` with
    ``lambda = alpha / n`` (n the number of training units). The inputs are not standardised (the penalty
    acts on the rendered scale). For a binary label this is a penalised linear probability model. The
    slopes serve as world and model estimates.

    Known to fail (catalog §2.2 (f), §7 O9): with ``y = beta c + eps`` and ``s = rho c + sqrt(1 - rho^2) e``
    (unit variances) ridge gives the spurious variable ``b_s = beta rho lambda / ((1 + lambda)^2 - rho^2)``
    even though OLS gives 0; at ``lambda -> 0`` it inherits every failure of OLS.

    Parameters
    ----------
    alpha : float
        Penalty in scikit-learn's convention (``alpha = n * lambda``).
    random_state : int, optional
        Unused (the fit is deterministic); kept for the common interface.

    References
    ----------
    Hoerl, A. E. & Kennard, R. W. (1970). Ridge regression: biased estimation for nonorthogonal problems.
    Technometrics 12(1), 55-67.
    """

    name = "ridge"
    version = "1"
    family = "estimation"
    access = frozenset({"pooled"})
    outputs = frozenset({"world", "model"})
    needs_input_map = True
    search_space = {"alpha": LogUniform(1e-2, 1e5)}

    def __init__(self, *, alpha: float = 1.0, random_state: int | None = None):
        self.alpha = alpha
        self.random_state = random_state

    def run(self, task: Task) -> MethodOutput:
        from sklearn.linear_model import Ridge as SkRidge

        x = np.asarray(task.train.x, dtype=np.float64)
        y = np.asarray(task.train.y, dtype=np.float64)
        coef = SkRidge(alpha=self.alpha).fit(x, y).coef_.ravel()
        estimate = per_variable(task, coef)
        return MethodOutput(world_coef=estimate, model_coef=dict(estimate),
                            details={"lambda": float(self.alpha) / len(y)})
