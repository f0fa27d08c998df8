"""World recovery: the method's ``world_coef`` against the structural coefficients ``theta``.

Where the scenario's world truth is undefined (``Truth.world_undefined`` says why), every world score is missing.
"""

from __future__ import annotations

import math

import numpy as np

from cowbench.scores import score
from cowbench.scores._vectors import cosine, scale_free_error


@score("world_cos", track="world", higher_is_better=True, bounds=(-1, 1), chance=0.0)
def world_cos(ctx) -> float | None:
    """``cos(theta_hat, theta)`` over the observed variables."""
    if ctx.output.world_coef is None or not ctx.truth.world_defined:  # undefined truth: track not scored
        return None
    return cosine(ctx.vector(ctx.output.world_coef), ctx.world_truth)


@score("world_err", track="world", higher_is_better=False, primary=True, bounds=(0, 1), chance=1.0)
def world_err(ctx) -> float | None:
    """``min_{s>=0} ||s*theta_hat - theta|| / ||theta||`` (scale-free: probit, logit and gradient scales differ)."""
    if ctx.output.world_coef is None or not ctx.truth.world_defined:  # undefined truth: track not scored
        return None
    return scale_free_error(ctx.vector(ctx.output.world_coef), ctx.world_truth)


@score("world_spurious_mass", track="world", higher_is_better=False, bounds=(0, 1))
def world_spurious_mass(ctx) -> float | None:
    """``sum_S |theta_hat| / sum_V |theta_hat|``: the share of the estimate put on spurious variables."""
    if ctx.output.world_coef is None or not ctx.truth.world_defined:  # undefined truth: track not scored
        return None
    est = np.abs(ctx.vector(ctx.output.world_coef))
    total = est.sum()
    if total == 0:
        return None
    spurious = set(ctx.truth.of_role("spurious"))
    return float(sum(e for v, e in zip(ctx.variables, est, strict=True) if v in spurious) / total)


def _mse(ctx, keep: bool) -> float | None:
    """Mean squared error of ``theta_hat`` against ``theta`` over the causal (``keep``) or other coordinates."""
    if ctx.output.world_coef is None or ctx.truth.link != "identity":
        return None
    causal = set(ctx.truth.keep)
    rows = [i for i, v in enumerate(ctx.variables) if (v in causal) == keep]
    if not rows:
        return None
    err = ctx.vector(ctx.output.world_coef)[rows] - ctx.world_truth[rows]
    return float(np.mean(err**2))


@score("world_mse_causal", track="world", higher_is_better=False, bounds=(0, math.inf))
def world_mse_causal(ctx) -> float | None:
    """``mean_C (theta_hat - theta)^2`` over the causal (and core) variables C; only where the scale is identified.

    The scale is identified for a continuous label (``truth.link == "identity"``): there an estimate of
    3.5 against a true 2 is wrong, which the scale-free ``world_err`` cannot see. As in the IRM paper
    (Arjovsky et al. 2019, arXiv:1907.02893), causal and non-causal errors are reported apart.
    Missing (plain None) for other links, where the index has no fixed scale.
    """
    return _mse(ctx, keep=True)


@score("world_mse_noncausal", track="world", higher_is_better=False, bounds=(0, math.inf))
def world_mse_noncausal(ctx) -> float | None:
    """``mean_{V \\ C} (theta_hat - theta)^2`` over the other observed variables (true coefficient 0 unless instrument).

    Only where the scale is identified (``truth.link == "identity"``); see ``world_mse_causal``.
    """
    return _mse(ctx, keep=False)
