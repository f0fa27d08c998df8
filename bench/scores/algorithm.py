"""The extracted algorithm: does the method's formula reproduce the subject's logit, and what does it leave out?

A method may return ``MethodOutput.algorithm``: the subject's logit as an affine function of the named
variables (``{"coef": {variable: float}, "intercept": float}``) and/or of its own discovered directions
(``{"direction_coef": (k,), "intercept": float}``, the feature ``j`` being the activation at
``discovered["point"]`` projected on the unit direction ``discovered["directions"][j]``). A variable enters as
the model receives it: its input column where the rendering has one per variable (measurement noise
included), else its value. With ``f`` the subject's logit and ``g`` the algorithm's prediction on a split's
units:

- **faithfulness** ``alg_r2_id``, ``alg_r2_bal``: ``1 - sum (f - g)^2 / sum (f - mean f)^2`` on ``test_id``
  and on ``test_bal`` (where the shortcut is broken: an algorithm that matches the logit only through the
  training correlation of grass and cow loses there);
- **completeness gap** ``alg_gap``: ``1 - R^2`` of the least-squares refit of ``f`` on the algorithm's own
  features (its variables and directions, plus a constant) on ``test_id``: the share of the logit's variance
  that no coefficients over those features explain. A hidden feature the model uses (``planted_hidden``'s
  ``|moo + sky|``) shows here for any algorithm over the named variables; adding a discovered direction
  that carries it closes the gap.

All in the ``model`` track, beside the reliance scores; none is its primary. Missing where the logit is
constant on the split (R^2 undefined) and, for direction features, where the method discovered none.
"""

from __future__ import annotations

import numpy as np

from cowbench.scores import Missing, score


def _features(ctx, split_name: str) -> tuple[np.ndarray, np.ndarray, float] | Missing | None:
    """``(features (n, p), coefficients (p,), intercept)`` of the algorithm on ``split_name``'s units."""
    alg = ctx.output.algorithm
    if not alg:
        return None
    split = ctx.data.split(split_name)
    cols, coefs = [], []
    named = alg.get("coef")
    if named:
        unknown = set(named) - set(ctx.variables)
        if unknown:
            return Missing(f"algorithm['coef'] names unknown variables {sorted(unknown)}")
        # a variable as the model receives it: its input column where the rendering has one (the measured value,
        # measurement noise included), else its value
        input_map = ctx.scenario.input_map
        for v, c in sorted(named.items()):
            cols.append(np.asarray(split.x[:, input_map[v]], dtype=np.float64) if input_map
                        else split.concepts[v].to_numpy(dtype=np.float64))
            coefs.append(float(c))
    if alg.get("direction_coef") is not None:
        found = ctx.output.discovered
        if not found or found.get("directions") is None:
            return Missing("algorithm['direction_coef'] needs discovered directions to project on")
        from cowbench import surgery  # torch: not at scorer import

        d = np.asarray(found["directions"], dtype=np.float64)
        w = np.asarray(alg["direction_coef"], dtype=np.float64).reshape(-1)
        if w.shape[0] != d.shape[0]:
            return Missing(f"algorithm['direction_coef'] has {w.shape[0]} entries for {d.shape[0]} directions")
        norms = np.linalg.norm(d, axis=1, keepdims=True)
        d = np.divide(d, norms, out=np.zeros_like(d), where=norms > 1e-12)
        try:
            h = surgery.activations(ctx.base, found.get("point"), split.x)
        except ValueError as exc:
            return Missing(f"cannot read the discovered directions' point: {exc}")
        if h.shape[1] != d.shape[1]:
            return Missing(f"discovered directions have width {d.shape[1]}, the point has {h.shape[1]}")
        proj = h @ d.T
        cols += list(proj.T)
        coefs += list(w)
    if not cols:
        return Missing("the algorithm has neither variable nor direction coefficients")
    x = np.column_stack(cols)
    c = np.asarray(coefs)
    if not (np.isfinite(x).all() and np.isfinite(c).all() and np.isfinite(float(alg.get("intercept", 0.0)))):
        return Missing("the algorithm's coefficients or features are not finite")
    return x, c, float(alg.get("intercept", 0.0))


def _logit(ctx, split_name: str) -> np.ndarray:
    from cowbench.models import logits

    return np.asarray(logits(ctx.base, ctx.data.split(split_name).x), dtype=np.float64)


def _r2(ctx, split_name: str) -> float | Missing | None:
    got = _features(ctx, split_name)
    if got is None or isinstance(got, Missing):
        return got
    x, c, b = got
    f = _logit(ctx, split_name)
    sst = float(np.sum((f - f.mean()) ** 2))
    if sst <= 1e-12 * max(1.0, float(np.sum(f ** 2))):
        return Missing(f"the subject's logit is constant on {split_name}: R^2 is undefined")
    return 1.0 - float(np.sum((f - (x @ c + b)) ** 2)) / sst


def completeness_gap(f: np.ndarray, x: np.ndarray) -> tuple[float, float]:
    """``(gap, se)``: ``1 - R^2`` of the least-squares fit of ``f`` on ``[1, x]``, and its standard error
    ``sd(r^2) / (sqrt(n) var(f))`` (the mean of the squared residuals over the units, denominator held fixed)."""
    design = np.column_stack([np.ones(len(f)), x])
    beta, *_ = np.linalg.lstsq(design, f, rcond=None)
    r2 = (f - design @ beta) ** 2
    var = float(np.var(f))
    return float(r2.mean() / var), float(r2.std(ddof=1) / np.sqrt(len(f)) / var)


@score("alg_r2_id", track="model", higher_is_better=True, bounds=(-np.inf, 1))
def alg_r2_id(ctx) -> float | Missing | None:
    """``1 - sum (f - g)^2 / sum (f - mean f)^2`` on test_id, ``f`` the subject's logit and ``g`` the extracted
    algorithm's prediction (faithfulness on the training distribution)."""
    return _r2(ctx, "test_id")


@score("alg_r2_bal", track="model", higher_is_better=True, bounds=(-np.inf, 1))
def alg_r2_bal(ctx) -> float | Missing | None:
    """``1 - sum (f - g)^2 / sum (f - mean f)^2`` on test_bal (spurious variables independent of the label):
    faithfulness where the shortcut's correlation with the causes is broken."""
    return _r2(ctx, "test_bal")


@score("alg_gap", track="model", higher_is_better=False, bounds=(0, 1))
def alg_gap(ctx) -> float | Missing | None:
    """``1 - R^2`` of the least-squares refit of the subject's logit on ``[1, features]`` on test_id, the
    features being the algorithm's variables and direction projections: the logit's variance share that no
    coefficients over them explain (a hidden feature shows here)."""
    got = _features(ctx, "test_id")
    if got is None or isinstance(got, Missing):
        return got
    f = _logit(ctx, "test_id")
    if np.var(f) <= 1e-12 * max(1.0, float(np.mean(f ** 2))):
        return Missing("the subject's logit is constant on test_id: the gap is undefined")
    return completeness_gap(f, got[0])[0]
