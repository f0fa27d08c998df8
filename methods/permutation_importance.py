"""Permutation importance (model reliance) of the subject model, from black-box queries."""

from __future__ import annotations

import numpy as np

from cowbench.access import Task
from cowbench.method import Choice, Method, MethodOutput, register_method
from cowbench.methods._common import per_variable


def _loss(pred: np.ndarray, y: np.ndarray, label_kind: str) -> np.ndarray:
    """Per-unit loss: log-loss of a logit for a binary label, squared error for a continuous one."""
    if label_kind == "binary":
        return np.logaddexp(0.0, pred) - y * pred
    return (y - pred) ** 2


@register_method
class PermutationImportance(Method):
    """Increase in the subject model's loss when one variable's input column is permuted.

    ``MR_v = mean_i L(f(x_i with column v permuted), y_i) - mean_i L(f(x_i), y_i)``, averaged over
    ``n_repeats`` permutations, on the first ``max_units`` training units; ``L`` is the log-loss of the logit
    for a binary label and the squared error for a continuous one. Only black-box queries of the model
    (``task.predict_logit``) are used, so the access level is ``pooled``.

    Output convention (the catalog is silent; our choice): importance is unsigned, but the model truth it
    is scored against (``ace``) is signed, so ``model_coef[v] = sign(g_v) * max(MR_v, 0)`` where ``g_v`` is the
    least-squares slope of the logit change on the input change over the same permutations,
    ``g_v = sum_i df_i dx_i / sum_i dx_i^2`` (no gradients needed; for a linear model it is the weight). The
    magnitude stays on the loss scale: for a linear model and squared error ``E[MR_v] = 2 w_v^2 Var(x_v) +
    2 w_v Cov(resid, x_v)``, i.e. quadratic in the weight and proportional to the input's variance, so
    ``model_rank`` (Spearman of magnitudes) is the meaningful model score and ``model_err`` measures how well
    loss-scale magnitudes line up with per-unit effects. ``details`` has the raw ``importance``, its
    standard deviation over repeats, and the slopes.

    Known to fail (catalog §2.6 (f)): redundant proxies (permuting one copy leaves the other, so reliance
    on the concept is underestimated); correlated inputs (permutation evaluates the model off the data
    manifold; Hooker, Mentch & Zhou 2021). Derived here (the catalog is silent): a variable the model uses
    but that is independent of the label and of the other inputs gets ``E[MR] = 0``, since permuting it
    leaves the joint law of ``(f(X), Y)`` unchanged (for a linear regressor the two terms above cancel), so
    loss-based importance misses reliance that does not help the loss; and as a per-unit reliance
    estimate it favours inputs with a large variance.

    Parameters
    ----------
    n_repeats : int
        Permutations per variable.
    max_units : int
        Number of training units used (the first ones).
    random_state : int, optional
        Seeds the permutations.

    References
    ----------
    Breiman, L. (2001). Random forests. Machine Learning 45(1), 5-32.
    Fisher, A., Rudin, C. & Dominici, F. (2019). All models are wrong, but many are useful: learning a
    variable's importance by studying an entire class of prediction models simultaneously. JMLR 20(177), 1-81.
    """

    name = "permutation_importance"
    version = "1"
    family = "estimation"  # catalog §2 ("estimation on a model")
    access = frozenset({"pooled"})
    outputs = frozenset({"model"})
    needs_input_map = True
    search_space = {"n_repeats": Choice((5, 10, 20))}

    def __init__(self, *, n_repeats: int = 5, max_units: int = 4000, random_state: int | None = None):
        self.n_repeats = n_repeats
        self.max_units = max_units
        self.random_state = random_state

    def run(self, task: Task) -> MethodOutput:
        rng = np.random.default_rng(self.random_state)
        units = task.train.spread(self.max_units)
        x = np.asarray(units.x, dtype=np.float32)
        y = np.asarray(units.y, dtype=np.float64)
        n, d = x.shape
        f0 = task.predict_logit(x)
        base = _loss(f0, y, task.label_kind).mean()
        increase = np.zeros((self.n_repeats, d))
        num, den = np.zeros(d), np.zeros(d)
        for r in range(self.n_repeats):
            for j in range(d):
                xp = x.copy()
                xp[:, j] = x[rng.permutation(n), j]
                f = task.predict_logit(xp)
                increase[r, j] = _loss(f, y, task.label_kind).mean() - base
                dx = xp[:, j].astype(np.float64) - x[:, j]
                num[j] += np.dot(f - f0, dx)
                den[j] += np.dot(dx, dx)
        importance = increase.mean(0)
        slope = np.divide(num, den, out=np.zeros(d), where=den > 0)
        signed = np.sign(slope) * np.clip(importance, 0.0, None)
        return MethodOutput(model_coef=per_variable(task, signed),
                            details={"importance": per_variable(task, importance),
                                     "importance_sd": per_variable(task, increase.std(0)),
                                     "slope": per_variable(task, slope), "base_loss": float(base)})
