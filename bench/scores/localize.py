"""Localization: did the method find *where* the edit target lives inside a planted subject network?

Scored only where the replicate has unit- and direction-level truth (planted subjects, `cowbench.planted`)
and the method reports ``MethodOutput.localized`` (``{"point", "unit_scores", "subspace"}``). Edit success
and localization are scored apart, so "right place, wrong edit" and the reverse can be told apart.

Definitions, at the method's hook point ``P`` of width ``w`` and for the edit target ``T``:

- the units that *carry* ``T``: those whose loading on a variable of ``T`` is nonzero;
- ``T``'s true subspace: the span of ``T``'s loading columns (orthonormal basis ``Q_t``, ``k_t`` columns; one
  per target variable at a linear point);
- the found subspace: the span of ``localized["subspace"]`` (orthonormal basis ``Q_f``, ``k_f`` its rank).

Where a method reports ``localized`` but the replicate has no such truth (a trained subject), or its point
has none, the scores are `Missing` with the reason.

Which points are scored: only those where finding the target is not given by the input layout. At
``input`` each unit *is* an observed variable's column, and the task names its edit target, so "the target's
column" localizes it with AUROC 1 without looking at the model (issue 15 section 5: such a method scored
``loc_auroc`` 1.000 on ``planted_superposed``, where no hidden unit ranking can be scored). Localization is
therefore scored at hidden points only (``hidden.i``, ``hidden.i.pre``); a method that localizes at ``input``
gets `Missing` with that reason, whatever it returns. (On a planted network the first layer's weight column
of a named target still shows which units read it: that is reading the model, allowed, and a told route
wherever the target's name was read.)
"""

from __future__ import annotations

import numpy as np
from scipy.stats import rankdata

from cowbench.scores import Missing, score


def _localized(ctx, key: str) -> tuple[str, np.ndarray] | Missing | None:
    loc = ctx.output.localized
    if not loc or loc.get(key) is None:
        return None
    truth = ctx.unit_truth
    point = loc.get("point")
    if truth is None:
        return Missing("no unit-level truth: the subject is trained, not planted")
    if point not in truth.loadings:
        return Missing(f"no unit truth at hook point {point!r}; known: {', '.join(truth.loadings)}")
    if point not in scored_points(truth):
        return Missing(f"localization is not scored at {point!r}: there the units are the input columns and the "
                       f"target's is given by the input layout; scored at {', '.join(scored_points(truth))}")
    value = np.asarray(loc[key], dtype=np.float64)
    width = truth.loadings[point].shape[0]
    if value.shape[0] != width or not np.isfinite(value).all():
        return Missing(f"localized[{key!r}] has shape {value.shape} or non-finite values; point {point!r} has "
                       f"width {width}")
    return point, value


def scored_points(truth) -> list[str]:
    """The hook points of ``truth`` where localization is scored: every point but ``input`` (see the module)."""
    return [p for p in truth.loadings if p != "input"]


def auroc(scores: np.ndarray, positive: np.ndarray) -> float:
    """Mann-Whitney AUROC of ``scores`` with ``positive`` units as positives; ties count 1/2."""
    ranks = rankdata(scores)  # average ranks: a tie between a positive and a negative counts 1/2
    n_pos, n_neg = int(positive.sum()), int((~positive).sum())
    return float((ranks[positive].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def subspace_overlap(true: np.ndarray, found: np.ndarray) -> float:
    """``||Q_t' Q_f||_F^2 / max(k_t, k_f)``: the mean squared cosine of the principal angles, angles that one
    subspace lacks counted as 90 degrees, so a found subspace larger than the truth pays for its size."""
    from cowbench.surgery import orthonormal_basis  # surgery imports torch: not at scorer import

    qt, qf = orthonormal_basis(true), orthonormal_basis(found)
    k = max(qt.shape[1], qf.shape[1])
    return 0.0 if k == 0 or qf.shape[1] == 0 or qt.shape[1] == 0 else float(np.sum((qt.T @ qf) ** 2) / k)


@score("loc_auroc", track="edit", higher_is_better=True, bounds=(0, 1), chance=0.5)
def loc_auroc(ctx) -> float | Missing | None:
    """AUROC of ``localized["unit_scores"]`` at ``localized["point"]``: the units that carry the edit target
    (nonzero loading in the planted truth) positive, the others negative, ties 1/2 (Mann-Whitney).

    Random scores get 0.5 in expectation; missing where every unit or no unit carries the target (AUROC is
    undefined), and where the subject has no unit truth.
    """
    got = _localized(ctx, "unit_scores")
    if got is None or isinstance(got, Missing):
        return got
    point, scores = got
    if scores.ndim != 1:
        return Missing(f"localized['unit_scores'] must be one score per unit, got shape {scores.shape}")
    carriers = ctx.unit_truth.carriers(point)
    if carriers.all() or not carriers.any():
        return Missing(f"{int(carriers.sum())} of {carriers.size} units at {point!r} carry the target: "
                       "no unit ranking can be scored")
    return auroc(scores, carriers)


@score("loc_overlap", track="edit", higher_is_better=True, bounds=(0, 1))
def loc_overlap(ctx) -> float | Missing | None:
    """``||Q_t' Q_f||_F^2 / max(k_t, k_f)`` between the edit target's true subspace at ``localized["point"]``
    (span of its loading columns, ``k_t`` = its dimension, 1 per target variable) and the found
    ``localized["subspace"]`` (``k_f`` = its rank): the mean squared cosine of the principal angles.

    1 for the true subspace, 0 for one orthogonal to it; a random ``k``-subspace of a ``w``-dimensional point
    gets ``min(k, k_t) / w`` in expectation (no fixed chance level: it depends on ``w``).
    """
    got = _localized(ctx, "subspace")
    if got is None or isinstance(got, Missing):
        return got
    point, found = got
    truth = ctx.unit_truth.subspace(point)
    if truth.shape[1] == 0:
        return Missing(f"the target has no direction at {point!r} (its loadings are zero)")
    return subspace_overlap(truth, found)
