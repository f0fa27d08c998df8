"""Guards for ratio scores: is a denominator distinguishable from the noise of what it estimates?

A ratio score divides by an estimated quantity (an accuracy gap, a sum of reliances). Where that
quantity is within a few standard errors of zero, the ratio is noise and can take any value, so the
score returns `Missing` with the numbers instead. Standard errors come from per-unit contributions on
the evaluation split, so they follow from its size ``n`` (about ``sd / sqrt(n)``).
"""

from __future__ import annotations

import numpy as np

from cowbench.scores import Missing

GUARD_SE = 3.0  # a denominator must exceed this many standard errors of what it estimates


def mean_se(units: np.ndarray) -> float:
    """Standard error of the mean of per-unit contributions: ``sd(units, ddof=1) / sqrt(n)`` (0 for n < 2)."""
    units = np.asarray(units, dtype=np.float64)
    if units.size < 2:
        return 0.0
    return float(np.std(units, ddof=1) / np.sqrt(units.size))


def paired_gap(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    """``mean(a - b)`` and its standard error, for per-unit values of two models on the same units.

    Pairing matters: two models that agree on most units have a much smaller SE for their accuracy
    difference than two independent accuracies would.
    """
    d = np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64)
    return float(d.mean()), mean_se(d)


def combination_units(units: dict[str, np.ndarray], weights: dict[str, float]) -> np.ndarray:
    """Per-unit ``sum_v w_v * u_v``: the per-unit contributions of a linear summary of reliances.

    With ``w_v = sign(ace_v)`` the mean is ``sum_v |ace_v|``; with ``w_v = ace_v / ||ace||`` it is the
    first-order (delta-method) expansion of ``||ace||``. Either way its `mean_se` is the summary's SE,
    covariances between variables included.
    """
    out = np.zeros_like(next(iter(units.values())), dtype=np.float64)
    for v, w in weights.items():
        out = out + float(w) * np.asarray(units[v], dtype=np.float64)
    return out


def training_resolution(ace: np.ndarray, n_train: int) -> float:
    """``GUARD_SE * sum_V |ace| / sqrt(n_train)``: how finely n_train training units pin down a reliance.

    A reliance estimated from n units is uncertain to about its scale over ``sqrt(n)``; the model's total
    reliance is that scale. Used where the per-unit SE on the evaluation batch cannot see training noise
    (a linear model's slopes are the same on every unit).
    """
    return GUARD_SE * float(np.sum(np.abs(ace))) / float(np.sqrt(n_train))


def se_guard(what: str, value: float, se: float, n: int) -> Missing | None:
    """`Missing` unless ``value > GUARD_SE * se`` (a zero value always fails)."""
    if value > GUARD_SE * se and value > 0:
        return None
    return Missing(f"{what} = {value:.4g} does not exceed {GUARD_SE:g} standard errors "
                   f"({GUARD_SE:g} x {se:.3g}, n = {n}): the ratio would be noise")
