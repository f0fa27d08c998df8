"""Model recovery: the method's ``model_coef`` against the subject model's reliance ``r`` (``ace`` on test_id)."""

from __future__ import annotations

import numpy as np

from cowbench.scores import score
from cowbench.scores._vectors import cosine, scale_free_error


@score("model_cos", track="model", higher_is_better=True, bounds=(-1, 1), chance=0.0)
def model_cos(ctx) -> float | None:
    """``cos(r_hat, r)`` over the observed variables."""
    if ctx.output.model_coef is None:
        return None
    return cosine(ctx.vector(ctx.output.model_coef), ctx.model_truth)


@score("model_err", track="model", higher_is_better=False, primary=True, bounds=(0, 1), chance=1.0)
def model_err(ctx) -> float | None:
    """``min_{s>=0} ||s*r_hat - r|| / ||r||``."""
    if ctx.output.model_coef is None:
        return None
    return scale_free_error(ctx.vector(ctx.output.model_coef), ctx.model_truth)


@score("model_rank", track="model", higher_is_better=True, bounds=(-1, 1), chance=0.0)
def model_rank(ctx) -> float | None:
    """Spearman correlation between ``|r_hat|`` and ``|r|`` (missing when either is constant)."""
    if ctx.output.model_coef is None:
        return None
    from scipy.stats import spearmanr

    a = np.abs(ctx.vector(ctx.output.model_coef))
    b = np.abs(ctx.model_truth)
    if np.ptp(a) == 0 or np.ptp(b) == 0:
        return None
    return float(spearmanr(a, b).statistic)
