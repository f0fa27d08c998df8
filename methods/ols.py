"""Pooled ordinary least squares: the textbook baseline that absorbs anti-causal and proxy variables."""

from __future__ import annotations

import numpy as np

from cowbench.access import Task
from cowbench.method import Method, MethodOutput, register_method
from cowbench.methods._common import per_variable


def ols_fit(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Least squares with an intercept: (slopes (d,), HC1 heteroskedasticity-robust standard errors (d,)).

    The sandwich ``(X1'X1)^-1 X1' diag(e^2) X1 (X1'X1)^-1 * n / (n - p)`` (White 1980 with the HC1
    small-sample factor, MacKinnon & White 1985), X1 = [1, x]; valid for a linear probability model too.
    """
    x1 = np.column_stack([np.ones(len(x)), np.asarray(x, dtype=np.float64)])
    yy = np.asarray(y, dtype=np.float64)
    coef, *_ = np.linalg.lstsq(x1, yy, rcond=None)
    resid = yy - x1 @ coef
    n, p = x1.shape
    bread = np.linalg.pinv(x1.T @ x1)
    meat = x1.T @ (x1 * (resid**2)[:, None])
    cov = bread @ meat @ bread * (n / max(n - p, 1))
    return coef[1:], np.sqrt(np.clip(np.diag(cov)[1:], 0, None))


@register_method
class OLS(Method):
    """Least squares of the label on the inputs (with an intercept), pooled over environments.

    ``b = (X1'X1)^-1 X1'y`` with ``X1 = [1, x]``; for a binary label this is the linear probability model.
    The slopes serve as the estimate of both the world coefficients and the subject model's reliance
    (the scores are scale-free, so the probability scale of a binary label does not matter for
    ``world_cos``/``world_err``). ``details`` carries HC1 heteroskedasticity-robust standard errors and the
    two-sided normal p-values of ``b_v = 0``.

    Known to succeed when the inputs are a valid adjustment set and none is a descendant of the label
    (a proxy of an exactly observed cause gets 0: catalog §7 O3 with tau = 0). Known to fail (catalog §2.1
    (f)) when the spurious variable is a child of the label (O2, O13: ``b_S = g s_Y^2/(g^2 s_Y^2 + s_S^2)``),
    when an omitted confounder drives it (O1), and when the cause is measured with noise (O3:
    ``b_S = beta rho tau^2 / (1 + tau^2 - rho^2)``).

    Parameters
    ----------
    random_state : int, optional
        Unused (the fit is deterministic); kept for the common interface.

    References
    ----------
    Legendre, A.-M. (1805). Nouvelles méthodes pour la détermination des orbites des comètes. Paris: Courcier.
    White, H. (1980). A heteroskedasticity-consistent covariance matrix estimator and a direct test for
    heteroskedasticity. Econometrica 48(4), 817-838.
    MacKinnon, J. G. & White, H. (1985). Some heteroskedasticity-consistent covariance matrix estimators with
    improved finite sample properties. Journal of Econometrics 29(3), 305-325.
    """

    name = "ols"
    version = "1"
    family = "estimation"
    access = frozenset({"pooled"})
    outputs = frozenset({"world", "model"})
    needs_input_map = True

    def __init__(self, *, random_state: int | None = None):
        self.random_state = random_state

    def run(self, task: Task) -> MethodOutput:
        from scipy.stats import norm

        coef, se = ols_fit(task.train.x, task.train.y)
        z = np.divide(coef, se, out=np.zeros_like(coef), where=se > 0)
        pvalue = 2 * norm.sf(np.abs(z))
        estimate = per_variable(task, coef)
        return MethodOutput(world_coef=estimate, model_coef=dict(estimate),
                            details={"se_hc1": per_variable(task, se), "pvalue": per_variable(task, pvalue)})
