"""The paired statistics every claim of the benchmark rests on: one test, one correction, one resolution formula.

Replicates are paired: in a replicate every method sees the same data, subject and oracle, so two methods are
compared on the per-replicate *difference* of their scores. One test decides everything a report claims
about two methods of a table:

- a method is ranked at all only where it beats the best control of its track (`paired_t_test`, Holm over the
  table's comparisons against the control, `holm`);
- a method shares the leader's rank (``1=``) where its difference from the leader is not significant by the
  same test (Holm over the league's comparisons against its leader);
- "resolves d" (`min_resolvable_difference`): the same two-sided paired t-test at level 0.05 detects a true
  difference d with power 0.8 from n replicates. The report header and ``cowbench reliability`` both use it.

Nothing here imports the rest of the package, so the report tables, the reliability study and the job code
can all import it without a cycle.

References
----------
Student (1908). The probable error of a mean. *Biometrika* 6(1), 1-25.
Holm, S. (1979). A simple sequentially rejective multiple test procedure. *Scandinavian Journal of
Statistics* 6(2), 65-70.
"""

from __future__ import annotations

import math

import numpy as np

#: Level of every test the report states (two-sided).
ALPHA = 0.05
#: Power at which a difference counts as resolvable.
POWER = 0.8

#: The ranking rule, as every report format states it in its header.
RANK_RULE = (
    f"paired two-sided t-test over the replicates both methods share (α = {ALPHA:g}), Holm-corrected over the "
    "table's comparisons of each kind. Ranked at all: a method whose mean is better than the best control of "
    "the table (the control with the best mean; the metric's declared chance level where the table has no "
    "control, no gate where it declares none) by that test, Holm over every method of the table; a table "
    "where none does ranks nobody. "
    "Shares the leader's rank (\"1=\"): a ranked method whose difference from its league's leader (best "
    "mean) is not significant by that test, Holm over the league's comparisons with its leader; other "
    "methods are ranked by mean below them. Bold: the league's leader, only where every other ranked method "
    "of its league is separated from it. Controls are shown, never ranked; a method the audit hook flagged is "
    "never ranked. P(best): paired bootstrap of the replicates within a league, ties split (not a test)"
)

#: Float noise: two differences closer than this (relative to the values' magnitude) are equal.
_EQUAL_RTOL = 1e-9
_EQUAL_ATOL = 1e-12


def paired_t_test(a: np.ndarray, b: np.ndarray) -> tuple[float, float, int]:
    """Two-sided paired t-test of mean(a - b) = 0 over the pairs where both values are present.

    Returns ``(mean difference, p-value, pairs)``. With fewer than 2 pairs the test cannot be made (p = 1).
    Differences that do not vary: p = 0 when they are all the same non-zero value (beyond float noise; every
    replicate says the same thing, which no t-test can doubt), p = 1 when they are all zero.
    """
    from scipy.stats import t

    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if a.shape != b.shape:
        raise ValueError(f"paired samples must have the same shape, got {a.shape} and {b.shape}")
    keep = ~(np.isnan(a) | np.isnan(b))
    a, b = a[keep], b[keep]
    n = len(a)
    if n == 0:
        return math.nan, 1.0, 0
    d = a - b
    mean = float(np.mean(d))
    if n < 2:
        return mean, 1.0, n
    scale = float(np.max(np.maximum(np.abs(a), np.abs(b))))
    noise = _EQUAL_RTOL * scale + _EQUAL_ATOL
    sd = float(np.std(d, ddof=1))
    if sd <= noise:
        return mean, (0.0 if abs(mean) > noise else 1.0), n
    stat = mean / (sd / math.sqrt(n))
    return mean, float(2 * t.sf(abs(stat), n - 1)), n


def holm(pvalues: np.ndarray | list[float]) -> np.ndarray:
    """Holm's step-down adjusted p-values (Holm 1979): reject where the adjusted p is below the level.

    Controls the family-wise error rate over the given comparisons without assuming their independence.
    """
    p = np.asarray(pvalues, dtype=float)
    m = len(p)
    if m == 0:
        return p
    order = np.argsort(p, kind="stable")
    adjusted = np.minimum(1.0, np.maximum.accumulate(p[order] * (m - np.arange(m))))
    out = np.empty(m)
    out[order] = adjusted
    return out


def min_resolvable_difference(sd_diff: float, n: int, *, alpha: float = ALPHA, power: float = POWER) -> float:
    """Smallest true mean difference a paired two-sided t-test at level ``alpha`` detects with ``power``.

    ``(t_{1-alpha/2, n-1} + t_{power, n-1}) * sd_diff / sqrt(n)``; infinite for fewer than 2 replicates.
    """
    from scipy.stats import t

    if n < 2:
        return math.inf
    if not sd_diff >= 0:
        raise ValueError(f"sd_diff must be a non-negative number, got {sd_diff!r}")
    return float((t.ppf(1 - alpha / 2, n - 1) + t.ppf(power, n - 1)) * sd_diff / math.sqrt(n))


def replicates_needed(sd_diff: float, target: float, *, alpha: float = ALPHA, power: float = POWER,
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


def sign_test_floor(n: int) -> float:
    """The smallest p-value an exact two-sided sign test can reach with ``n`` differing pairs: 2 * 0.5**n.

    Below 6 pairs it is above 0.05: such a sign test cannot be significant whatever the data.
    """
    if n < 1:
        return 1.0
    return min(1.0, 2.0 * 0.5 ** n)
