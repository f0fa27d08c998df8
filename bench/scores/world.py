"""World recovery: the method's ``world_coef`` against the structural coefficients ``theta``.

Where the scenario's world truth is undefined (``Truth.world_undefined`` says why), every world score is missing.
"""

from __future__ import annotations

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
