"""Pooled logistic regression: the naive baseline that absorbs the spurious variable."""

from __future__ import annotations

from cowbench.access import Task
from cowbench.method import LogUniform, Method, MethodOutput, register_method
from cowbench.methods._common import logistic_fit, per_variable


@register_method
class Logistic(Method):
    """Logistic regression of the label on the inputs, pooled over environments.

    Its coefficients serve as the estimate of both the world coefficients and the subject model's
    reliance. On anti-causal data it gives the spurious variable the Bayes-optimal, non-zero weight
    (catalog §2.4 (f)(iii)): right for prediction, wrong for the world.

    Parameters
    ----------
    C : float
        Inverse L2 penalty (large = unpenalised).
    max_iter : int
        L-BFGS iterations.
    random_state : int, optional
        Unused (the fit is deterministic); kept for the common interface.

    References
    ----------
    Cox, D. R. (1958). The regression analysis of binary sequences. JRSS B 20(2), 215-242.
    """

    name = "logistic"
    version = "1"
    family = "estimation"
    access = frozenset({"pooled"})
    outputs = frozenset({"world", "model"})
    needs_input_map = True
    label_kinds = frozenset({"binary"})
    search_space = {"C": LogUniform(1e-3, 1e4)}

    def __init__(self, *, C: float = 1e4, max_iter: int = 1000, random_state: int | None = None):
        self.C = C
        self.max_iter = max_iter
        self.random_state = random_state

    def run(self, task: Task) -> MethodOutput:
        coef, se = logistic_fit(task.train.x, task.train.y, C=self.C, max_iter=self.max_iter)
        estimate = per_variable(task, coef)
        return MethodOutput(world_coef=estimate, model_coef=dict(estimate),
                            details={"se": per_variable(task, se)})
