"""Discovery: did the method find the directions the subject computes with, without being told any variable?

Scored only on planted subjects (`cowbench.planted`), where every feature's direction at every hidden hook
point is known exactly, and only where the method reports ``MethodOutput.discovered`` (``{"point",
"directions"}``). A method of this track reads the subject's internals and pooled inputs: no concepts, no
names.

At the method's point ``P`` let ``F`` be the ``n`` true feature directions (rows, unit norm) and ``D`` the
``k`` found ones (rows, unit norm), ``C = |F D'|`` the ``n x k`` absolute cosines. Then

- ``R = mean_i max_j C_ij``: the mean max cosine similarity (MMCS) of Sharkey, Braun & Millidge (2022), the
  recall side: each true feature's best match;
- ``P = mean_j max_i C_ij``: the same from the found side: each found direction's best true feature. It is
  the precision term: returning many directions (a random dictionary of any size, dead or duplicated
  latents) raises ``R`` towards 1 in a low-dimensional space but pulls ``P`` to what a random direction gets;
- ``disc_f = 2 P R / (P + R)`` (primary), and ``disc_recall90``, the share of true features with a found
  direction at ``|cos| >= 0.9``.

Never at ``input``: there the features are the input layout (one column per variable) and unit axes would
find them by construction. A zero found direction counts as cosine 0 with everything.

References
----------
Sharkey, L., Braun, D. & Millidge, B. (2022). Taking features out of superposition with sparse
autoencoders. AI Alignment Forum (interim research report).
"""

from __future__ import annotations

import numpy as np

from cowbench.scores import Missing, score

#: A found direction matches a true feature at this absolute cosine or above (Sharkey et al.'s recovery rule).
MATCH_COSINE = 0.9
#: Points where discovery is not scored: the input layout gives the features away.
UNSCORED_POINTS = ("input",)


def true_directions(truth, point: str) -> np.ndarray | Missing:
    """The planted feature directions at ``point``, shape ``(n, width)``, rows of unit norm.

    Read from ``truth.feature_directions(point)`` where the planted construction provides it; otherwise the
    loading columns of the variables over the units of linear pathways (their fixed directions).
    """
    if point in UNSCORED_POINTS:
        return Missing(f"discovery is not scored at {point!r}: the input layout gives the features away")
    if point not in truth.loadings:
        return Missing(f"no direction truth at hook point {point!r}; known: "
                       f"{', '.join(p for p in truth.loadings if p not in UNSCORED_POINTS)}")
    getter = getattr(truth, "feature_directions", None)
    if callable(getter):
        got = getter(point)
        f = np.asarray(got[1] if isinstance(got, tuple) else got, dtype=np.float64)
    else:
        cols = np.array(truth.loadings[point], dtype=np.float64)
        linear = truth.linear.get(point)
        if linear is not None:
            cols[~np.asarray(linear, dtype=bool)] = 0.0
        f = cols.T
    norms = np.linalg.norm(f, axis=1)
    f = f[norms > 1e-12] / norms[norms > 1e-12, None]
    if f.shape[0] == 0:
        return Missing(f"no feature has a direction at {point!r}")
    return f


def _cosines(ctx) -> np.ndarray | Missing | None:
    found = ctx.output.discovered
    if not found or found.get("directions") is None:
        return None
    if ctx.unit_truth is None:
        return Missing("no direction-level truth: the subject is trained, not planted")
    point = found.get("point")
    f = true_directions(ctx.unit_truth, point)
    if isinstance(f, Missing):
        return f
    d = np.asarray(found["directions"], dtype=np.float64)
    if d.ndim != 2 or d.shape[1] != f.shape[1] or d.shape[0] == 0 or not np.isfinite(d).all():
        return Missing(f"discovered['directions'] must be a finite (k >= 1, {f.shape[1]}) array at {point!r}, "
                       f"got shape {d.shape}")
    norms = np.linalg.norm(d, axis=1, keepdims=True)
    d = np.divide(d, norms, out=np.zeros_like(d), where=norms > 1e-12)
    return np.abs(f @ d.T)  # (n true, k found)


def mmcs(true: np.ndarray, found: np.ndarray) -> float:
    """Mean over the rows of ``true`` of the max absolute cosine with a row of ``found`` (rows need not be unit)."""
    t = true / np.linalg.norm(true, axis=1, keepdims=True)
    n = np.linalg.norm(found, axis=1, keepdims=True)
    f = np.divide(found, n, out=np.zeros_like(found, dtype=np.float64), where=n > 1e-12)
    return float(np.abs(t @ f.T).max(axis=1).mean())


@score("disc_mmcs", track="discover", higher_is_better=True, bounds=(0, 1))
def disc_mmcs(ctx) -> float | Missing | None:
    """``R = mean_i max_j |cos(F_i, D_j)|`` over the true feature directions ``F_i`` at the method's point
    (Sharkey et al.'s MMCS): 1 when every feature has an exact match among the found directions ``D_j``."""
    c = _cosines(ctx)
    return c if c is None or isinstance(c, Missing) else float(c.max(axis=1).mean())


@score("disc_precision", track="discover", higher_is_better=True, bounds=(0, 1))
def disc_precision(ctx) -> float | Missing | None:
    """``P = mean_j max_i |cos(F_i, D_j)|``: each found direction's best true feature, averaged over the found
    directions; directions beyond the true features (random, dead or duplicated ones) lower it."""
    c = _cosines(ctx)
    return c if c is None or isinstance(c, Missing) else float(c.max(axis=0).mean())


@score("disc_f", track="discover", higher_is_better=True, primary=True, bounds=(0, 1))
def disc_f(ctx) -> float | Missing | None:
    """``2 P R / (P + R)`` with ``R`` = MMCS (true -> found) and ``P`` = its mirror (found -> true): high only
    when every feature is found and the found set holds little else."""
    c = _cosines(ctx)
    if c is None or isinstance(c, Missing):
        return c
    r, p = float(c.max(axis=1).mean()), float(c.max(axis=0).mean())
    return 0.0 if r + p == 0 else 2 * p * r / (p + r)


@score("disc_recall90", track="discover", higher_is_better=True, bounds=(0, 1))
def disc_recall90(ctx) -> float | Missing | None:
    """``mean_i 1[max_j |cos(F_i, D_j)| >= 0.9]``: the share of true features recovered (Sharkey et al.'s rule)."""
    c = _cosines(ctx)
    return c if c is None or isinstance(c, Missing) else float(np.mean(c.max(axis=1) >= MATCH_COSINE))


@score("disc_hidden_match", track="discover", higher_is_better=True, bounds=(0, 1))
def disc_hidden_match(ctx) -> float | Missing | None:
    """``max_j |corr(<h, D_j>, z)|`` over test_id, ``h`` the activations at the method's point and
    ``z = max(|x_moo + x_sky|, tau)`` (the inputs, as the network reads them), the hidden feature of a planted
    subject that has one (``planted_hidden``): whether a found direction reads the feature no variable names.
    It is even in moo and sky, so a direction that reads moo or sky alone is uncorrelated with it; an algorithm
    over a matching direction closes the completeness gap (``alg_gap``). Absent without a hidden feature."""
    found = ctx.output.discovered
    if not found or found.get("directions") is None:
        return None
    truth = ctx.unit_truth
    tau = float(getattr(truth, "hidden_floor", 0.0) or 0.0) if truth is not None else 0.0
    if tau <= 0.0:
        return None  # no hidden feature in this subject: nothing to match
    from cowbench import surgery  # torch: not at scorer import

    split = ctx.data.test_id
    point = found.get("point")
    try:
        h = surgery.activations(ctx.base, point, split.x)
    except ValueError as exc:
        return Missing(f"cannot read the discovered directions' point: {exc}")
    d = np.asarray(found["directions"], dtype=np.float64)
    if d.ndim != 2 or d.shape[1] != h.shape[1] or not np.isfinite(d).all():
        return Missing(f"discovered['directions'] must be a finite (k, {h.shape[1]}) array, got shape {d.shape}")
    # moo and sky as the model receives them (their input columns: planted subjects read the identity rendering)
    cols = ctx.scenario.input_map
    z = np.maximum(np.abs(split.x[:, cols["moo"]].astype(np.float64) + split.x[:, cols["sky"]]), tau)
    proj = h @ d.T  # (n, k)
    proj = proj - proj.mean(0)
    zc = z - z.mean()
    denom = np.sqrt((proj ** 2).sum(0) * (zc ** 2).sum())
    corr = np.divide(np.abs(zc @ proj), denom, out=np.zeros(d.shape[0]), where=denom > 1e-12)
    return float(corr.max())
