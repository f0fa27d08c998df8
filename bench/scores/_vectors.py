"""Vector comparisons shared by the world and model tracks."""

from __future__ import annotations

import numpy as np


def cosine(estimate: np.ndarray, truth: np.ndarray) -> float | None:
    """``cos(a, b)``; missing when either vector is zero."""
    na, nb = np.linalg.norm(estimate), np.linalg.norm(truth)
    if na == 0 or nb == 0:
        return None
    return float(estimate @ truth / (na * nb))


def scale_free_error(estimate: np.ndarray, truth: np.ndarray) -> float | None:
    """``min_{s>=0} ||s*a - b|| / ||b||``: the error after the best non-negative rescaling of ``a``.

    The minimiser is ``s* = max(0, a.b / a.a)``; with ``s* = 0`` the error is 1 (no better than zero).
    """
    nb = np.linalg.norm(truth)
    if nb == 0:
        return None
    aa = float(estimate @ estimate)
    s = max(0.0, float(estimate @ truth) / aa) if aa > 0 else 0.0
    return float(np.linalg.norm(s * estimate - truth) / nb)


def tie_tolerance(values: np.ndarray, rel: float = 1e-6, floor: float = 1e-12) -> float:
    """Two entries of ``values`` closer than this are tied: ``rel * max|values| + floor``.

    Relative to the vector's own scale so that units do not matter; the floor absorbs float noise such as
    ``-6.9e-17`` against ``5.9e-17`` in a vector that is otherwise zero.
    """
    return rel * float(np.max(np.abs(values), initial=0.0)) + floor


def pair_signs(values: np.ndarray, tol: float = 0.0) -> np.ndarray:
    """``sign(values[i] - values[j])`` for ``i < j``; differences within ``max(tol, tie_tolerance)`` are 0."""
    values = np.asarray(values, dtype=np.float64)
    i, j = np.triu_indices(values.size, k=1)
    diff = values[i] - values[j]
    return np.where(np.abs(diff) <= max(float(tol), tie_tolerance(values)), 0.0, np.sign(diff))


def somers_d(estimate: np.ndarray, truth: np.ndarray, truth_tol: float = 0.0) -> tuple[float | None, int]:
    """Somers' D of ``estimate`` given ``truth``, and the number of pairs the truth orders.

    ``(concordant - discordant) / (pairs the truth orders)``: pairs tied in the truth (within
    ``truth_tol`` or float noise) are left out (their order is a coin flip, not a fact to recover); an
    estimate tie on an ordered pair counts 0. So a constant estimate scores 0, a reversed one -1. None
    when the truth orders no pair.
    """
    t, e = pair_signs(truth, truth_tol), pair_signs(estimate)
    ordered = t != 0
    n = int(ordered.sum())
    if n == 0:
        return None, 0
    return float(np.sum(t[ordered] * e[ordered]) / n), n
