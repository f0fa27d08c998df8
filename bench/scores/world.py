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


def scale_identified(ctx) -> bool:
    """Whether the label's scale is identified: a continuous label with an identity link (``y = theta'x + noise``),
    where a coefficient of 3.5 against a true 2 is simply wrong. A binary label's index has no fixed scale
    (probit, logit and gradient scales differ)."""
    return not ctx.classification and ctx.truth.link == "identity"


@score("world_err", track="world", higher_is_better=False, primary=True, version="2", bounds=(0, math.inf),
       chance=1.0)
def world_err(ctx) -> float | None:
    """Where the label's scale is identified (continuous label, identity link: `scale_identified`), the
    absolute error ``||theta_hat - theta|| / ||theta||``; elsewhere the scale-free
    ``min_{s>=0} ||s*theta_hat - theta|| / ||theta||`` (probit, logit and gradient scales differ).

    Both are 0 for the truth and 1 for a zero estimate. Where the scale is identified, rescaling is an error:
    the truth x1000 scores 999, not 0. The absolute form is ``sqrt(sum_V (theta_hat - theta)^2) / ||theta||``,
    the root of the total of ``world_mse_causal`` and ``world_mse_noncausal`` (times their variable counts)
    over ``||theta||``, so it ranks as the squared errors do and keeps the zero estimate at 1.
    """
    if ctx.output.world_coef is None or not ctx.truth.world_defined:  # undefined truth: track not scored
        return None
    est, truth = ctx.vector(ctx.output.world_coef), ctx.world_truth
    if scale_identified(ctx):
        norm = float(np.linalg.norm(truth))
        return None if norm == 0 else float(np.linalg.norm(est - truth) / norm)
    return scale_free_error(est, truth)


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
