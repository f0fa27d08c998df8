"""Instrumental variables: two-stage least squares with the scenario's designated instruments."""

from __future__ import annotations

from typing import Any

import numpy as np

from cowbench.access import Task
from cowbench.method import Choice, Method, MethodOutput, register_method


def _ols(z: np.ndarray, y: np.ndarray) -> np.ndarray:
    return np.linalg.lstsq(z, y, rcond=None)[0]


def two_stage_least_squares(x_endog: np.ndarray, y: np.ndarray, instruments: np.ndarray,
                            controls: np.ndarray | None = None) -> np.ndarray:
    """2SLS coefficients on ``x_endog`` (then on ``controls``), intercept excluded from the result.

    First stage: each endogenous column on ``[1, instruments, controls]``; second stage: ``y`` on
    ``[1, fitted endogenous, controls]``. Equals ``(X'P_Z X)^-1 X'P_Z y`` with ``Z = [1, instruments,
    controls]`` and ``X = [1, x_endog, controls]``.
    """
    n = len(y)
    ctrl = np.empty((n, 0)) if controls is None else controls
    z = np.column_stack([np.ones(n), instruments, ctrl])
    fitted = z @ _ols(z, x_endog)
    return _ols(np.column_stack([np.ones(n), fitted, ctrl]), y)[1:]


def first_stage_f(x_col: np.ndarray, instruments: np.ndarray) -> float:
    """First-stage F statistic of the excluded instruments for one endogenous column."""
    n, k = instruments.shape
    z = np.column_stack([np.ones(n), instruments])
    resid = x_col - z @ _ols(z, x_col)
    ss_res = float(resid @ resid)
    ss_tot = float(((x_col - x_col.mean()) ** 2).sum())
    return ((ss_tot - ss_res) / k) / max(ss_res / (n - k - 1), 1e-300)


@register_method
class IV2SLS(Method):
    """Two-stage least squares with the instruments the scenario designates (``task.instruments``).

    Endogenous regressors: every non-instrument input. The instruments are excluded from the outcome
    equation (the exclusion restriction is assumed, so their world coefficient is reported as 0). First
    stage: each instrumented input on ``[1, instruments]``; second stage: the label on ``[1, fitted
    values]``; ``beta = (X'P_Z X)^-1 X'P_Z y`` (Angrist & Pischke 2009, ch. 4).

    Under-identification (more endogenous inputs than instruments, e.g. ``linear_sem`` with one
    instrument and inputs x1, x2): the ``k`` inputs with the largest first-stage F statistic (k = number
    of instruments) are instrumented; the others are, by ``unidentified``, either ``"omit"`` (default:
    left out of both stages and reported as 0 - not identified; including them is no safer, since an
    input may be a child of the label, and controlling for it biases the instrumented coefficient) or
    ``"control"`` (entered as exogenous controls in both stages, valid only if they are exogenous).
    ``details`` lists which inputs were instrumented, the first-stage F statistics and the choice.

    Known failures (catalog §3.3): weak instruments (F < 10) bias 2SLS towards OLS; an exclusion
    violation ``y = ... + delta a`` gives ``beta + delta/pi``; a binary label makes this a linear
    probability model whose coefficients are not the probit index.

    Parameters
    ----------
    unidentified : {"omit", "control"}
        What to do with endogenous inputs beyond the number of instruments.
    random_state : int, optional
        Unused (deterministic).

    References
    ----------
    Angrist, J. D. & Pischke, J.-S. (2009). Mostly Harmless Econometrics, ch. 4. Princeton University
    Press. Wright, P. G. (1928). The Tariff on Animal and Vegetable Oils, appendix B. Macmillan.
    """

    name = "iv_2sls"
    version = "1"
    family = "causal"
    access = frozenset({"pooled"})
    outputs = frozenset({"world"})
    needs_input_map = True
    label_kinds = frozenset({"continuous"})
    search_space = {"unidentified": Choice(("omit", "control"))}

    def __init__(self, *, unidentified: str = "omit", random_state: int | None = None):
        self.unidentified = unidentified
        self.random_state = random_state

    @classmethod
    def applicable(cls, scenario: Any) -> str | None:
        if not scenario.truth.of_role("instrument"):
            return "needs an instrument (a variable with role 'instrument'); this scenario has none"
        return super().applicable(scenario)

    def run(self, task: Task) -> MethodOutput:
        if self.unidentified not in ("omit", "control"):
            raise ValueError(f"unidentified must be 'omit' or 'control', got {self.unidentified!r}")
        instruments = list(task.instruments)
        if not instruments:
            raise ValueError("iv_2sls needs an instrument; the scenario designates none")
        imap = task.input_map
        x = np.asarray(task.train.x, dtype=np.float64)
        y = np.asarray(task.train.y, dtype=np.float64)
        endog = [v for v in task.variables if v not in instruments]
        zcols = x[:, [imap[v] for v in instruments]]
        f_stats = {v: first_stage_f(x[:, imap[v]], zcols) for v in endog}
        ranked = sorted(endog, key=lambda v: -f_stats[v])
        chosen, rest = ranked[: len(instruments)], ranked[len(instruments):]
        controls = x[:, [imap[v] for v in rest]] if (rest and self.unidentified == "control") else None
        beta = two_stage_least_squares(x[:, [imap[v] for v in chosen]], y, zcols, controls)
        coef = {v: 0.0 for v in task.variables}
        coef.update({v: float(b) for v, b in zip(chosen, beta[: len(chosen)], strict=True)})
        if controls is not None:
            coef.update({v: float(b) for v, b in zip(rest, beta[len(chosen):], strict=True)})
        return MethodOutput(world_coef=coef, details={"instrumented": chosen, "not_instrumented": rest,
                                                      "unidentified": self.unidentified,
                                                      "first_stage_F": f_stats, "instruments": instruments})
