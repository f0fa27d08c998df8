"""Exact Shapley values over the generator variables, interventional or observational value function."""

from __future__ import annotations

import math

import numpy as np

from cowbench.access import Task
from cowbench.method import Choice, Method, MethodOutput, register_method
from cowbench.methods._algorithm import over_variables
from cowbench.methods._common import origin_slope

VALUE_FUNCTIONS = ("interventional", "observational")
MAX_VARIABLES = 12  # 2^12 coalitions, each a pass over n_explain x n_background rendered units


def _conditional_fill(x_e: np.ndarray, x_b: np.ndarray, pool: np.ndarray, mask: int) -> np.ndarray:
    """Values of the variables outside coalition ``mask`` for every (explained, background) pair (m, B, k).

    Linear-Gaussian conditional (catalog O4): ``E[X_n | X_s] = m_n + (X_s - m_s) Sigma_ss^+ Sigma_sn`` with the
    slopes estimated on ``pool`` and the intercept anchored at the background means ``m``; a pair (i, b)
    gets the conditional mean at unit i's coalition values plus background unit b's residual, so the draws
    keep the background's empirical residual distribution and average exactly to the conditional mean.
    """
    k = x_e.shape[1]
    s = np.array([j for j in range(k) if mask >> j & 1], dtype=int)
    n = np.array([j for j in range(k) if not mask >> j & 1], dtype=int)
    mean_b = x_b.mean(0)
    out = np.broadcast_to(x_e[:, None, :], (len(x_e), len(x_b), k)).copy()
    if len(n) == 0:
        return out
    if len(s) == 0:
        out[:, :, :] = x_b[None, :, :]
        return out
    cov = np.cov(pool, rowvar=False)
    slopes = np.linalg.pinv(cov[np.ix_(s, s)]) @ cov[np.ix_(s, n)]  # (|s|, |n|)
    cond_e = mean_b[n] + (x_e[:, s] - mean_b[s]) @ slopes  # (m, |n|)
    resid_b = x_b[:, n] - (mean_b[n] + (x_b[:, s] - mean_b[s]) @ slopes)  # (B, |n|), mean zero
    out[:, :, n] = cond_e[:, None, :] + resid_b[None, :, :]
    return out


def shapley_values(task: Task, x_e: np.ndarray, x_b: np.ndarray, *, value_function: str = "interventional",
                   pool: np.ndarray | None = None, seed: int | None = 0) -> tuple[np.ndarray, np.ndarray]:
    """Exact Shapley values ``phi`` (m, k) of the explained variable values ``x_e`` (m, k) and the coalition values.

    ``v(S)(i) = mean_b f(render(X_S = x_e[i, S], X_notS = z_b))`` over background units ``b`` (rows of ``x_b``)
    with ``z_b = x_b[b, notS]`` (interventional) or a linear-Gaussian conditional draw given ``x_e[i, S]``
    (observational, `_conditional_fill`, slopes fitted on ``pool``). Every observed variable is set by
    ``task.intervene`` on the training units and the logits are read with ``task.predict_logit``: each
    (i, b) pair is carried by one training unit (a random one, the same for every coalition), whose
    exogenous rendering noise (e.g. measurement noise) it uses, so marginal contributions are paired.
    Returns ``(phi, values)`` with ``values`` (2^k, m) the coalition values (bit j of the index = variable j).
    """
    if value_function not in VALUE_FUNCTIONS:
        raise ValueError(f"value_function must be one of {VALUE_FUNCTIONS}, got {value_function!r}")
    variables = task.variables
    k = len(variables)
    if k > MAX_VARIABLES:
        raise ValueError(f"exact Shapley enumerates 2^k coalitions; k = {k} > {MAX_VARIABLES}")
    m, n_b = len(x_e), len(x_b)
    pool = x_b if pool is None else pool
    n_units = len(task.train)
    rng = np.random.default_rng(seed)
    n_pairs = m * n_b
    carriers = [rng.permutation(n_units)[: min(n_units, n_pairs - start)] for start in range(0, n_pairs, n_units)]
    values = np.empty((1 << k, m))
    for mask in range(1 << k):
        if value_function == "interventional":
            fill = np.broadcast_to(x_b[None, :, :], (m, n_b, k)).copy()
            cols = [j for j in range(k) if mask >> j & 1]
            fill[:, :, cols] = x_e[:, None, cols]
        else:
            fill = _conditional_fill(x_e, x_b, pool, mask)
        fill = fill.reshape(n_pairs, k)
        logit = np.empty(n_pairs)
        for c, start in zip(carriers, range(0, n_pairs, n_units), strict=True):
            do_values = np.repeat(fill[start:start + 1], n_units, axis=0)  # filler for units not carrying a pair
            do_values[c] = fill[start:start + len(c)]
            split = task.intervene({v: do_values[:, j] for j, v in enumerate(variables)}, "train")
            logit[start:start + len(c)] = task.predict_logit(split.x[c])
        values[mask] = logit.reshape(m, n_b).mean(1)
    phi = np.zeros((m, k))
    masks = np.arange(1 << k)
    sizes = np.array([bin(int(s)).count("1") for s in masks])
    weight = np.array([math.factorial(s) * math.factorial(k - s - 1) / math.factorial(k) if s < k else 0.0
                       for s in range(k + 1)])
    for j in range(k):
        without = masks[(masks >> j & 1) == 0]
        phi[:, j] = (weight[sizes[without], None] * (values[without | (1 << j)] - values[without])).sum(0)
    return phi, values


@register_method
class Shapley(Method):
    """Exact Shapley values of the logit over the generator variables, summarised per variable as a slope.

    ``phi_j(x) = sum_{S not containing j} |S|! (k - |S| - 1)! / k! [v(S + j) - v(S)]`` by enumeration of the
    ``2^k`` coalitions of the ``k`` observed variables (refused above k = 12). The value function is

    * ``interventional`` (marginal): ``v(S)(x) = E_b f(do(X_S = x_S, X_notS = b_notS))`` over background
      units ``b``, each input re-rendered through ``task.intervene`` with *every* observed variable set
      (as in the model truth), so only the model's direct use of a variable counts. For a linear logit on
      identity rendering ``phi_j = w_j (x_j - E_b x_j)`` exactly (catalog O8, O16);
    * ``observational`` (conditional): ``v(S)(x) = E[f(X) | X_S = x_S]`` with ``X_notS | X_S`` from a
      linear-Gaussian conditional (catalog O4) whose slopes are fitted on the concept-labelled training
      units: the conditional mean at ``x_S`` plus the residuals of the background units (so the draws
      average exactly to the conditional mean). Exact for jointly Gaussian variables; for binary ones it is
      the best linear predictor, and the filled-in values need not be 0/1 (the rendering accepts them).
      For ``f = w_C x_C`` and standard bivariate-normal (x_C, x_S) with correlation rho it gives
      ``phi_S = w_C rho x_S / 2`` for the unused S (catalog O8).

    ``n_explain`` units are explained against ``n_background`` background units, both drawn at random from
    the concept-labelled training units (their variable values are what coalitions set). Each (unit,
    background) pair is rendered on one training unit (the same for every coalition) and scored with
    ``task.predict_logit``. The per-variable answer (``model_coef``) is the least-squares slope through the
    origin of ``phi_j`` on ``x_j - mean_b x_bj`` over the explained units; interventionally it is exactly
    the weight (the model's ``ace``) for a linear logit on identity rendering. ``details`` keeps the mean
    ``|phi_j|`` and the completeness check ``sum_j phi_j = v(all) - v(empty)``.

    Known failures (catalog §5.4): observational Shapley credits an unused variable whenever it is
    correlated with used ones (O8; "true to the data", Chen et al. 2020); interventional Shapley evaluates
    off-manifold combinations; for non-additive models the credit split depends on the background;
    the cost grows as ``2^k``.

    Parameters
    ----------
    value_function : {"interventional", "observational"}
    n_explain : int
        Units explained (at most the number of concept-labelled units).
    n_background : int
        Background units (at most the number of concept-labelled units).
    random_state : int, optional
        Seed of the unit draws and of the rendering units.

    References
    ----------
    Lundberg, S. M. & Lee, S.-I. (2017). A unified approach to interpreting model predictions. NeurIPS 2017,
    arXiv:1705.07874.

    Janzing, D., Minorics, L. & Blöbaum, P. (2020). Feature relevance quantification in explainable AI: a
    causal problem. AISTATS 2020, arXiv:1910.13413.
    """

    name = "shapley"
    version = "2"
    family = "attribution"
    access = frozenset({"pooled", "concept", "counterfactual"})
    outputs = frozenset({"model"})
    search_space = {"value_function": Choice(VALUE_FUNCTIONS)}

    def __init__(self, *, value_function: str = "interventional", n_explain: int = 200, n_background: int = 100,
                 random_state: int | None = None):
        self.value_function = value_function
        self.n_explain = n_explain
        self.n_background = n_background
        self.random_state = random_state

    @classmethod
    def applicable(cls, scenario) -> str | None:
        reason = super().applicable(scenario)
        if reason is not None:
            return reason
        k = len(scenario.variables)
        if k > MAX_VARIABLES:
            return (f"exact Shapley enumerates 2^k coalitions of the observed variables; k = {k} exceeds "
                    f"{MAX_VARIABLES} (2^{k} coalitions x n_explain x n_background forward passes)")
        return None

    def run(self, task: Task) -> MethodOutput:
        if self.value_function not in VALUE_FUNCTIONS:
            raise ValueError(f"value_function must be one of {VALUE_FUNCTIONS}, got {self.value_function!r}")
        for name in ("n_explain", "n_background"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        rng = np.random.default_rng(self.random_state)
        pool = task.concepts.to_numpy(dtype=np.float64)  # (n_concept, k), columns = task.variables
        x_e = pool[rng.choice(len(pool), min(self.n_explain, len(pool)), replace=False)]
        x_b = pool[rng.choice(len(pool), min(self.n_background, len(pool)), replace=False)]
        phi, values = shapley_values(task, x_e, x_b, value_function=self.value_function, pool=pool,
                                     seed=int(rng.integers(2**32)))
        slope = origin_slope(phi, x_e - x_b.mean(0))
        gap = phi.sum(1) - (values[-1] - values[0])
        variables = task.variables
        model_coef = {v: float(slope[j]) for j, v in enumerate(variables)}
        return MethodOutput(
            model_coef=model_coef, algorithm=over_variables(task, model_coef),
            details={"mean_abs_phi": {v: float(np.mean(np.abs(phi[:, j]))) for j, v in enumerate(variables)},
                     "completeness_gap": float(np.max(np.abs(gap))), "n_explain": len(x_e),
                     "n_background": len(x_b)},
        )
