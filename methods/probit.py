"""Pooled probit regression: the maximum-likelihood fit of the cow label's own link."""

from __future__ import annotations

import numpy as np

from cowbench.access import Task
from cowbench.method import Method, MethodOutput, register_method
from cowbench.methods._common import per_variable


def probit_fit(x: np.ndarray, y: np.ndarray, *, max_iter: int = 100, tol: float = 1e-10
               ) -> tuple[np.ndarray, np.ndarray, bool]:
    """Probit MLE with an intercept by Fisher scoring with step halving.

    Returns the slopes (d,), their standard errors from the inverse Fisher information (d,), and whether
    the iteration converged (it does not under complete separation, where the MLE does not exist; the
    coefficients are then those after ``max_iter`` steps, finite but growing).
    """
    from scipy.special import log_ndtr, ndtr

    x1 = np.column_stack([np.ones(len(x)), np.asarray(x, dtype=np.float64)])
    sign = 2.0 * np.asarray(y, dtype=np.float64) - 1.0

    def loglik(b: np.ndarray) -> float:
        return float(log_ndtr(sign * (x1 @ b)).sum())

    beta = np.zeros(x1.shape[1])
    ll = loglik(beta)
    converged = False
    info = np.eye(x1.shape[1])
    for _ in range(max_iter):
        eta = x1 @ beta
        p = np.clip(ndtr(eta), 1e-300, None)
        q = np.clip(ndtr(-eta), 1e-300, None)
        dens = np.exp(-0.5 * eta**2) / np.sqrt(2 * np.pi)
        weight = dens**2 / (p * q)
        info = x1.T @ (x1 * weight[:, None])
        score = x1.T @ (dens * (np.where(sign > 0, 1.0 / p, -1.0 / q)))
        step = np.linalg.lstsq(info, score, rcond=None)[0]
        for _ in range(30):  # step halving keeps the log-likelihood non-decreasing
            new = beta + step
            new_ll = loglik(new)
            if new_ll >= ll - 1e-12:
                break
            step = step / 2
        beta, ll = new, new_ll
        if np.max(np.abs(step)) < tol:
            converged = True
            break
    cov = np.linalg.pinv(info)
    return beta[1:], np.sqrt(np.clip(np.diag(cov)[1:], 0, None)), converged


@register_method
class Probit(Method):
    """Probit regression of a binary label on the inputs (with an intercept), pooled over environments.

    Maximises ``sum_i log Phi(s_i (b0 + x_i'b))``, ``s_i = 2 y_i - 1``, by Fisher scoring; the slopes serve
    as world and model estimates and ``details`` carries their standard errors (inverse Fisher
    information). When the label is a probit index of the inputs the slopes are the index coefficients
    divided by the index noise sd; a scorer comparing them to the world coefficients is scale-free.

    Known to succeed when the label's index is a linear function of the inputs themselves: a proxy of an
    exactly observed cause gets 0 (catalog §2.4, §7 O3 with tau = 0). Known to fail (§2.4 (f)): with the
    causes measured with noise the proxy gets the O3 weight ``beta b_S / sqrt(1 + beta^2 v)``;
    an anti-causal variable gets its Bayes weight; omitted independent causes attenuate every coefficient
    (non-collapsibility, O5); under complete separation the MLE does not exist (``details["converged"]``).

    Parameters
    ----------
    max_iter : int
        Fisher-scoring iterations.
    tol : float
        Convergence threshold on the largest coefficient step.
    random_state : int, optional
        Unused (the fit is deterministic); kept for the common interface.

    References
    ----------
    Bliss, C. I. (1934). The method of probits. Science 79(2037), 38-39.
    Finney, D. J. (1947). Probit Analysis. Cambridge University Press.
    """

    name = "probit"
    version = "1"
    family = "estimation"
    access = frozenset({"pooled"})
    outputs = frozenset({"world", "model"})
    needs_input_map = True
    label_kinds = frozenset({"binary"})

    def __init__(self, *, max_iter: int = 100, tol: float = 1e-10, random_state: int | None = None):
        self.max_iter = max_iter
        self.tol = tol
        self.random_state = random_state

    def run(self, task: Task) -> MethodOutput:
        coef, se, converged = probit_fit(task.train.x, task.train.y, max_iter=self.max_iter, tol=self.tol)
        estimate = per_variable(task, coef)
        return MethodOutput(world_coef=estimate, model_coef=dict(estimate),
                            details={"se": per_variable(task, se), "converged": bool(converged)})
