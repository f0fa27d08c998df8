"""How reliable a metric is: the smallest difference between two methods a given replicate count resolves.

The formula is shared by the report header (``min. resolvable difference`` next to P(best)) and by
``cowbench reliability``. Replicates are paired (every method sees the same data in a replicate), so the
relevant noise is the standard deviation of the per-replicate *difference* between two methods.
"""

from __future__ import annotations

import math


def min_resolvable_difference(sd_diff: float, n: int, *, alpha: float = 0.05, power: float = 0.8) -> float:
    """Smallest true mean difference a paired two-sided t-test at level ``alpha`` detects with ``power``.

    ``(t_{1-alpha/2, n-1} + t_{power, n-1}) * sd_diff / sqrt(n)``; infinite for fewer than 2 replicates.
    """
    from scipy.stats import t

    if n < 2:
        return math.inf
    if not sd_diff >= 0:
        raise ValueError(f"sd_diff must be a non-negative number, got {sd_diff!r}")
    return float((t.ppf(1 - alpha / 2, n - 1) + t.ppf(power, n - 1)) * sd_diff / math.sqrt(n))


def replicates_needed(sd_diff: float, target: float, *, alpha: float = 0.05, power: float = 0.8,
                      n_max: int = 100_000) -> int | None:
    """The least replicate count whose `min_resolvable_difference` is at most ``target`` (None past ``n_max``)."""
    if not target > 0:
        raise ValueError(f"target must be positive, got {target!r}")
    if sd_diff == 0:
        return 2
    lo, hi = 2, 2
    while min_resolvable_difference(sd_diff, hi, alpha=alpha, power=power) > target:
        if hi >= n_max:
            return None
        lo, hi = hi, min(2 * hi, n_max)
    while lo < hi:  # the difference shrinks monotonically in n
        mid = (lo + hi) // 2
        if min_resolvable_difference(sd_diff, mid, alpha=alpha, power=power) <= target:
            hi = mid
        else:
            lo = mid + 1
    return hi
