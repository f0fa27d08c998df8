"""Helpers shared by several methods (not a method: the registry skips modules starting with '_')."""

from __future__ import annotations

import numpy as np


def per_variable(task, values: np.ndarray) -> dict[str, float]:
    """Map one value per input column to one value per observed variable.

    Only possible where the rendering has one input per variable (``task.input_map``); methods that
    need per-variable answers on other renderings must map through concepts themselves.
    """
    input_map = task.input_map
    if input_map is None:
        raise ValueError("this method reads per-variable answers off input columns, so it needs a rendering "
                         "with one input per variable (identity)")
    return {v: float(values[input_map[v]]) for v in task.variables}


def logistic_fit(x: np.ndarray, y: np.ndarray, *, C: float, max_iter: int) -> tuple[np.ndarray, np.ndarray]:
    """Logistic regression with an intercept: (coefficients (d,), their standard errors (d,)).

    Standard errors come from the inverse observed Fisher information ``(X1' W X1)^-1`` of the
    unpenalised likelihood at the fitted point (X1 = [1, x], W = diag(p(1 - p))).
    """
    from sklearn.linear_model import LogisticRegression

    fit = LogisticRegression(C=C, max_iter=max_iter, tol=1e-8).fit(x, y)
    coef = fit.coef_.ravel().astype(np.float64)
    x1 = np.column_stack([np.ones(len(x)), np.asarray(x, dtype=np.float64)])
    p = fit.predict_proba(x)[:, 1]
    info = x1.T @ (x1 * (p * (1 - p))[:, None])
    cov = np.linalg.pinv(info)
    return coef, np.sqrt(np.clip(np.diag(cov)[1:], 0, None))
