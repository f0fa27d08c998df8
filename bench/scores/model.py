"""Model recovery: the method's ``model_coef`` against the subject model's reliance ``r`` (``ace`` on test_id)."""

from __future__ import annotations

import numpy as np

from cowbench.scores import Missing, score
from cowbench.scores._guards import training_resolution
from cowbench.scores._vectors import cosine, scale_free_error, somers_d


@score("model_cos", track="model", higher_is_better=True, bounds=(-1, 1), chance=0.0)
def model_cos(ctx) -> float | None:
    """``cos(r_hat, r)`` over the observed variables."""
    if ctx.output.model_coef is None:
        return None
    return cosine(ctx.vector(ctx.output.model_coef), ctx.model_truth)


@score("model_err", track="model", higher_is_better=False, primary=True, bounds=(0, 1), chance=1.0)
def model_err(ctx) -> float | None:
    """``min_{s>=0} ||s*r_hat - r|| / ||r||``."""
    if ctx.output.model_coef is None:
        return None
    return scale_free_error(ctx.vector(ctx.output.model_coef), ctx.model_truth)


@score("model_rank", track="model", higher_is_better=True, version="2", bounds=(-1, 1), chance=0.0)
def model_rank(ctx) -> float | Missing | None:
    """Somers' D of ``|r_hat|`` given ``|r|``: ``(concordant - discordant) / (pairs |r| orders)``, tie-aware.

    Truth ties: two true reliances closer than ``3 * sum_V |r| / sqrt(n_train)`` (the resolution with which
    n_train units pin down a reliance; the same scale as ``residual_spurious``'s second guard) are not an
    ordered pair: on cow, moo and tail have equal coefficients, and which one a trained model happens to
    use more is a coin flip of its training seed. Estimate ties: entries within ``1e-6 * max|r_hat| +
    1e-12`` (float noise such as -6.9e-17 vs 5.9e-17). Pairs tied in the truth do not count; an estimate tie
    on an ordered pair counts 0, so a constant estimate scores 0 and a reversed one -1. Chosen over
    Kendall's tau-b because the truth is the reference: ties in the estimate must cost, ties in the truth
    must not. Missing when the truth orders fewer than 2 pairs. Sign-blind by design (it ranks how much, not
    which way): read it with ``model_sign``, which gives a sign-reversed attribution 0.
    """
    if ctx.output.model_coef is None:
        return None
    truth = np.abs(ctx.model_truth)
    resolution = training_resolution(truth, len(ctx.data.train))
    d, pairs = somers_d(np.abs(ctx.vector(ctx.output.model_coef)), truth, truth_tol=resolution)
    if pairs < 2:
        return Missing(f"|r| orders {pairs} pair(s) of variables (the rest are ties within "
                       f"{resolution:.3g} = 3 sum_V |r| / sqrt(n_train)): fewer than 2 to rank")
    return d


@score("model_sign", track="model", higher_is_better=True, bounds=(0, 1))
def model_sign(ctx) -> float | Missing | None:
    """Sign agreement, weighted by reliance: ``sum_R |r_v| 1[sign(r_hat_v) = sign(r_v)] / sum_R |r_v|`` over the
    variables R whose true reliance is resolved, ``|r_v| > 3 sum_V |r| / sqrt(n_train)`` (the resolution of
    ``model_rank``); an estimate of exactly 0 agrees with no sign.

    Beside ``model_rank``, which ranks magnitudes and so gives a sign-reversed attribution 1: that one scores 0
    here. A random attribution gets 1/2 in expectation; a constant positive one gets the share of positive
    reliance (no fixed chance level: the model controls measure it). Missing when no reliance is resolved.
    """
    if ctx.output.model_coef is None:
        return None
    truth = ctx.model_truth
    resolution = training_resolution(np.abs(truth), len(ctx.data.train))
    resolved = np.abs(truth) > resolution
    if not resolved.any():
        return Missing(f"no reliance exceeds {resolution:.3g} = 3 sum_V |r| / sqrt(n_train): no sign to agree with")
    est = ctx.vector(ctx.output.model_coef)
    weight = np.abs(truth[resolved])
    agree = np.sign(est[resolved]) == np.sign(truth[resolved])
    return float(np.sum(weight * agree) / np.sum(weight))
