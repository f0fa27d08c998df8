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
