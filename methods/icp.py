"""Invariant Causal Prediction (linear, continuous label) from per-environment sufficient statistics."""

from __future__ import annotations

from itertools import combinations
from typing import Any

import numpy as np
from scipy import stats

from cowbench.access import Task
from cowbench.method import Choice, Method, MethodOutput, Real, register_method
from cowbench.methods._common import per_variable


class EnvMoments:
    """Per-environment sufficient statistics of a linear regression with intercept.

    With ``Z = [1, x]`` (x centred by its pooled mean, y by its pooled mean, for numerical stability) each
    environment keeps ``n_e``, ``M_e = Z_e'Z_e``, ``m_e = Z_e'y_e`` and ``q_e = y_e'y_e``. For any subset
    S and coefficients ``b`` on ``Z_S = [1, x_S]`` the residuals ``r = y - Z_S b`` of environment e have
    ``sum r = m_e[0] - M_e[0, S] b`` and ``sum r^2 = q_e - 2 b'm_e[S] + b'M_e[S, S] b`` (the first column
    of Z is the constant), which is all a Welch t-test of means and an F-test of variances need. So after
    one pass over the data each subset costs O(|E| |S|^2 + |S|^3), independent of n.
    """

    def __init__(self, x: np.ndarray, y: np.ndarray, env: np.ndarray):
        x = np.asarray(x, dtype=np.float64)
        y = np.asarray(y, dtype=np.float64)
        x = x - x.mean(0)
        y = y - y.mean()
        z = np.column_stack([np.ones(len(x)), x])
        self.envs = np.unique(env)
        self.n = np.array([(env == e).sum() for e in self.envs], dtype=np.float64)
        self.M = np.stack([z[env == e].T @ z[env == e] for e in self.envs])  # (E, d+1, d+1)
        self.m = np.stack([z[env == e].T @ y[env == e] for e in self.envs])  # (E, d+1)
        self.q = np.array([y[env == e] @ y[env == e] for e in self.envs])  # (E,)
        self.d = x.shape[1]

    def fit(self, subset: tuple[int, ...]) -> np.ndarray:
        """Pooled least-squares coefficients on ``[1, x_S]`` (intercept first, centred coordinates)."""
        cols = [0, *(j + 1 for j in subset)]
        gram = self.M.sum(0)[np.ix_(cols, cols)]
        return np.linalg.lstsq(gram, self.m.sum(0)[cols], rcond=None)[0]

    def residual_sums(self, subset: tuple[int, ...], b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(sum of residuals, sum of squared residuals) per environment, each shape (E,)."""
        cols = [0, *(j + 1 for j in subset)]
        s1 = self.m[:, 0] - self.M[:, 0, cols] @ b
        mc = self.M[:, cols][:, :, cols]
        s2 = self.q - 2 * self.m[:, cols] @ b + np.einsum("i,eij,j->e", b, mc, b)
        return s1, np.maximum(s2, 0.0)


def _welch_f_pvalues(n1, s1, ss1, n2, s2, ss2) -> tuple[np.ndarray, np.ndarray]:
    """Two-sided Welch t-test of means and F-test of variances from counts, sums and sums of squares."""
    m1, m2 = s1 / n1, s2 / n2
    v1 = np.maximum((ss1 - n1 * m1**2) / (n1 - 1), 1e-300)
    v2 = np.maximum((ss2 - n2 * m2**2) / (n2 - 1), 1e-300)
    a1, a2 = v1 / n1, v2 / n2
    t = (m1 - m2) / np.sqrt(a1 + a2)
    df = (a1 + a2) ** 2 / (a1**2 / (n1 - 1) + a2**2 / (n2 - 1))
    p_mean = 2 * stats.t.sf(np.abs(t), df)
    ratio = v1 / v2
    cdf = stats.f.cdf(ratio, n1 - 1, n2 - 1)
    p_var = 2 * np.minimum(cdf, 1 - cdf)
    return p_mean, np.minimum(p_var, 1.0)


def icp_search(x: np.ndarray, y: np.ndarray, env: np.ndarray, *, alpha: float = 0.05,
               max_inputs: int = 16) -> dict[str, Any]:
    """Test every subset of the input columns; return accepted sets, p-values, the selection and its fit.

    Keys: ``pvalues`` (subset -> p), ``accepted`` (list of subsets), ``selected`` (intersection, tuple, or
    None when nothing is accepted), ``coef`` (pooled OLS on the selection in input units, zeros elsewhere;
    None if nothing is accepted), ``var_pvalues`` (``p_j = max_{S not containing j} p_S``; Peters et al.
    2016, eq. 11).
    """
    env = np.asarray(env)
    mom = EnvMoments(x, y, env)
    d, n_env = mom.d, len(mom.envs)
    if d > max_inputs:
        raise ValueError(f"ICP searches all 2^d subsets; d = {d} exceeds max_inputs = {max_inputs}")
    n_tot = mom.n.sum()
    pvalues: dict[tuple[int, ...], float] = {}
    for size in range(d + 1):
        for subset in combinations(range(d), size):
            b = mom.fit(subset)
            s1, s2 = mom.residual_sums(subset, b)
            p_mean, p_var = _welch_f_pvalues(mom.n, s1, s2, n_tot - mom.n, s1.sum() - s1, s2.sum() - s2)
            p_min = min(p_mean.min(), p_var.min())
            pvalues[subset] = float(min(1.0, 2 * n_env * p_min))  # Bonferroni over the 2|E| tests
    accepted = [s for s, p in pvalues.items() if p > alpha]
    var_p = np.array([max((p for s, p in pvalues.items() if j not in s), default=0.0) for j in range(d)])
    out: dict[str, Any] = {"pvalues": pvalues, "accepted": accepted, "var_pvalues": var_p,
                           "selected": None, "coef": None}
    if accepted:
        selected = tuple(sorted(set.intersection(*(set(s) for s in accepted))))
        coef = np.zeros(d)
        if selected:
            b = mom.fit(selected)
            coef[list(selected)] = b[1:]
        out["selected"], out["coef"] = selected, coef
    return out


@register_method
class ICP(Method):
    """Invariant Causal Prediction for a continuous label with linear tests (Peters et al. 2016).

    For every subset S of the inputs (the empty set included): pooled least squares of y on ``[1, x_S]``;
    for each environment a Welch two-sample t-test of the residual means and a two-sided F-test of the
    residual variances, environment against the rest; Bonferroni over the ``2|E|`` tests
    (``p_S = min(1, 2|E| min p)``), S accepted when ``p_S > alpha``. Output ``S_hat`` = intersection of the
    accepted sets. Computed from per-environment sufficient statistics (counts, ``Z'Z``, ``Z'y``, ``y'y``):
    residual sums and sums of squares per environment follow from them exactly, so the search costs one
    pass over the data plus O(2^d |E| d^2), not a pass per subset (see `EnvMoments`).

    Outputs: ``world_coef`` = pooled OLS coefficients on ``S_hat`` (0 elsewhere); ``spurious_score`` =
    the variable-level p-value ``p_j = max_{S not containing j} p_S`` (<= alpha exactly for the selected
    variables, > alpha for the others: excluded variables score higher). **Abstains** (no coefficients,
    no scores) when no set is accepted (the invariance model is rejected: hidden confounding of y,
    interventions on y, non-linearity) and when the intersection is empty (e.g. the empty set is
    accepted: no claim). ``details`` keeps the accepted sets, every subset's p-value and ``p_j``.

    Known failures (catalog §3.2, O12): shifts only on the spurious mechanism -> empty set accepted,
    abstains; label noise that changes across environments -> nothing accepted; a hidden confounder of
    a cause and y -> at moderate n the spurious child is returned (false positive, O12 D). Binary labels
    are not supported (the Gaussian residual tests are misspecified; nonlinear ICP is the remedy).

    Parameters
    ----------
    alpha : float
        Level of the test of each subset.
    max_inputs : int
        Refuse (raise) beyond this many inputs: the search is exhaustive over 2^d subsets.
    random_state : int, optional
        Unused (deterministic).

    References
    ----------
    Peters, J., Bühlmann, P. & Meinshausen, N. (2016). Causal inference by using invariant prediction:
    identification and confidence intervals. JRSS B 78(5), 947-1012. arXiv:1501.01332.
    """

    name = "icp"
    version = "1"
    family = "causal"
    access = frozenset({"pooled", "env"})
    outputs = frozenset({"world", "detect"})
    needs_input_map = True
    label_kinds = frozenset({"continuous"})
    min_environments = 2
    search_space = {"alpha": Choice((0.01, 0.05, 0.1))}
    param_constraints = {"alpha": Real(0.0, 1.0, open_low=True)}  # a test level

    def __init__(self, *, alpha: float = 0.05, max_inputs: int = 16, random_state: int | None = None):
        self.alpha = alpha
        self.max_inputs = max_inputs
        self.random_state = random_state

    def fit_inputs(self, x: np.ndarray, y: np.ndarray, env: np.ndarray) -> dict[str, Any]:
        """Input-space mode: `icp_search` over the input columns."""
        return icp_search(x, y, env, alpha=float(self.alpha), max_inputs=int(self.max_inputs))

    def run(self, task: Task) -> MethodOutput:
        x, y, env = task.train.x, task.train.y, task.train.env
        if len(np.unique(env)) < 2:
            return MethodOutput(abstain=True, details={"reason": "fewer than two training environments"})
        res = self.fit_inputs(x, y, env)
        names = [None] * len(task.variables)
        for v, j in task.input_map.items():
            names[j] = v
        details = {"accepted": [[names[j] for j in s] for s in res["accepted"]],
                   "pvalues": {"{" + ",".join(names[j] for j in s) + "}": p for s, p in res["pvalues"].items()},
                   "var_pvalues": per_variable(task, res["var_pvalues"])}
        if res["selected"] is None:
            return MethodOutput(abstain=True, details={**details, "reason": "no set accepted (invariance rejected)"})
        details["selected"] = [names[j] for j in res["selected"]]
        if not res["selected"]:
            return MethodOutput(abstain=True, details={**details, "reason": "empty intersection of accepted sets"})
        return MethodOutput(world_coef=per_variable(task, res["coef"]),
                            spurious_score=per_variable(task, res["var_pvalues"]), details=details)
