"""Edit success: the method's edited model against the subject (``base``) and the ``oracle`` model.

Two deployment splits serve two questions. ``test_bal`` (every spurious variable independent of the
label, causes unchanged) is where the oracle is optimal, so ``edit_score`` is computed there: removing
the shortcut pays, reversing it does not. ``test_ood`` (the spurious association flipped) stays the stress
test for ``acc_ood`` and ``wga``; an edit that reverses the shortcut looks good there, which is why it is
not the edit score's split.

Every ratio has a guard derived from the data, stated in its docstring; where it fails the score is
`Missing` with the reason (stored in the job record's ``missing`` field).
"""

from __future__ import annotations

import math

import numpy as np

from cowbench.scores import Missing, score
from cowbench.scores._guards import (
    GUARD_SE,
    combination_units,
    mean_se,
    paired_gap,
    se_guard,
    training_resolution,
)


@score("acc_id", track="edit", higher_is_better=True, bounds=(0, 1))
def acc_id(ctx) -> float | None:
    """Accuracy of the edited model on test_id."""
    return None if ctx.output.edited is None or not ctx.classification else ctx.accuracy("edited", "test_id")


@score("acc_ood", track="edit", higher_is_better=True, bounds=(0, 1))
def acc_ood(ctx) -> float | None:
    """Accuracy of the edited model on test_ood (spurious association flipped: the stress test)."""
    return None if ctx.output.edited is None or not ctx.classification else ctx.accuracy("edited", "test_ood")


@score("acc_bal", track="edit", higher_is_better=True, bounds=(0, 1))
def acc_bal(ctx) -> float | None:
    """Accuracy of the edited model on test_bal (spurious variables independent of the label)."""
    return None if ctx.output.edited is None or not ctx.classification else ctx.accuracy("edited", "test_bal")


@score("wga", track="edit", higher_is_better=True, bounds=(0, 1))
def wga(ctx) -> float | None:
    """Worst-group accuracy of the edited model on test_ood (min over label x spurious groups)."""
    if ctx.output.edited is None or not ctx.classification:
        return None
    return ctx.worst_group_accuracy("edited", "test_ood")


#: The least oracle-over-base gain in balanced accuracy for which `edit_score` is defined (see its docstring).
MIN_RECOVERABLE = 0.01


@score("edit_score", track="edit", higher_is_better=True, primary=True, version="3", chance=0.0)
def edit_score(ctx) -> float | Missing | None:
    """``(acc_bal(edited) - acc_bal(base)) / (acc_bal(oracle) - acc_bal(base))`` on test_bal.

    On test_bal the oracle is optimal in expectation, so 1 is the most an edit can recover (up to noise);
    an edit that keeps or reverses the shortcut scores about 0, the oracle itself 1.
    Guard: the denominator must exceed 3 standard errors of the paired accuracy difference oracle - base on
    the same test_bal units, ``sd(c_oracle - c_base) / sqrt(n)`` with ``c`` the per-unit 0/1 correctness;
    otherwise missing (the oracle does not measurably beat the subject: nothing to recover).
    A second guard: the denominator must also be at least `MIN_RECOVERABLE` (one point of balanced accuracy).
    Pairing makes a tiny gap significant when base and oracle disagree on a handful of units, but an edit's own
    accuracy change is not bounded by that gap, so the ratio explodes: on ``iut_example2`` (separable data, a
    subject at 0.997 that nearly ignores the background) a gap of 0.003 passed the paired guard and a broken
    edit scored -165. A binomial-SE floor does not help there (at 0.997 it is 0.0009); the floor is one of scale:
    below a point of accuracy there is nothing worth recovering, whatever the noise.
    """
    if ctx.output.edited is None or not ctx.classification:
        return None
    base = ctx.correct("base", "test_bal")
    denom, se = paired_gap(ctx.correct("oracle", "test_bal"), base)
    refused = se_guard("acc_bal(oracle) - acc_bal(base)", denom, se, base.size)
    if refused is not None:
        return refused
    if denom < MIN_RECOVERABLE:
        return Missing(f"acc_bal(oracle) - acc_bal(base) = {denom:.4g} is below {MIN_RECOVERABLE:g}: the subject "
                       "is already within a point of the oracle on test_bal, nothing to recover")
    return (ctx.accuracy("edited", "test_bal") - float(base.mean())) / denom


@score("logloss_bal", track="edit", higher_is_better=False, bounds=(0, math.inf))
def logloss_bal(ctx) -> float | None:
    """Log loss of the edited model on test_bal, in nats: ``mean_i log(1 + exp(-(2 y_i - 1) z_i))`` with ``z_i``
    its logit (computed stably as a softplus).

    Calibration beside ``edit_score``, which reads only the sign of the logit: an edit that destroys the
    logit's scale keeps its accuracy but not its log loss (multiplying the logits by 0.01 pushes every
    probability to 1/2, about log 2 = 0.693; a constant prediction gets at least the label's entropy). Log loss
    rather than ECE because it is a proper scoring rule: ECE gives a constant prediction at the base rate a
    perfect 0, and depends on a binning. Missing (None) for a continuous label. No chance level: it depends on
    the label's balance on test_bal.
    """
    if ctx.output.edited is None or not ctx.classification:
        return None
    z = ctx.logits("edited", "test_bal")
    sign = 2.0 * (np.asarray(ctx.data.test_bal.y, dtype=np.float64) == 1) - 1.0
    return float(np.mean(np.logaddexp(0.0, -sign * z)))


def total_reliance_guard(ctx, over: list[str] | None = None) -> Missing | None:
    """`Missing` unless the edited model's total reliance ``T_e = sum_W |ace_edited|`` over ``over`` (W, default
    every observed variable V) exceeds 3 standard errors of itself (per-unit contributions
    ``g_i = sum_W sign(ace_edited[v]) * slope_i[v]`` on test_id).

    A model that relies on nothing (a constant prediction: every slope 0) has no shares to compare; the guard is
    scale-free, so multiplying a model by 0.01 neither passes nor fails it.
    """
    over = list(ctx.variables) if over is None else over
    edited = {v: ctx.edited_ace[v] for v in over}
    total = sum(abs(a) for a in edited.values())
    units = combination_units({v: ctx.edited_ace_units[v] for v in over}, {v: np.sign(a) for v, a in edited.items()})
    return se_guard(f"sum_{{{','.join(over)}}} |ace_edited| (the edited model's total reliance)", total,
                    mean_se(units), units.size)


def share_ratio(ctx, variables: list[str], over: list[str] | None = None) -> float:
    """``(sum_O |ace_edited| / sum_W |ace_edited|) / (sum_O |ace_base| / sum_W |ace_base|)``: the share of
    ``variables`` O in the total reliance over ``over`` W (default every observed variable), edited against base."""
    over = list(ctx.variables) if over is None else over
    base_total = sum(abs(ctx.base_ace[v]) for v in over)
    edited_total = sum(abs(ctx.edited_ace[v]) for v in over)
    base_share = sum(abs(ctx.base_ace[v]) for v in variables) / base_total
    return sum(abs(ctx.edited_ace[v]) for v in variables) / edited_total / base_share


@score("residual_spurious", track="edit", higher_is_better=False, version="3", bounds=(0, math.inf), chance=1.0)
def residual_spurious(ctx) -> float | Missing | None:
    """``(sum_S |ace_edited| / sum_V |ace_edited|) / (sum_S |ace_base| / sum_V |ace_base|)`` on test_id: the
    spurious variables' share of the edited model's total reliance, relative to their share in the subject
    (0 is a clean edit, 1 is no change in the mix).

    Relative to the model's total reliance so that scale is not an edit: multiplying any model by 0.01 leaves
    its value unchanged (an erase-then-shrink scores what the erase alone scores; the shrink shows in
    ``causal_kept`` and ``logloss_bal``), and a constant prediction, which relies on nothing, is missing
    instead of a perfect 0.

    Guards (all must hold, else missing):

    1. ``sum_S |ace_base|`` exceeds 3 standard errors of itself, from the per-unit contributions
       ``g_i = sum_S sign(ace_base[v]) * slope_i[v]`` on test_id (``SE = sd(g) / sqrt(n)``).
    2. ``sum_S |ace_base|`` exceeds ``3 * sum_V |ace_base| / sqrt(n_train)``: a reliance that n_train units
       can pin down is of the order of the model's total reliance over ``sqrt(n_train)``, so a spurious
       reliance below a few of those is indistinguishable from a model that does not use the variable.
       Guard 1 cannot see this: a linear model's per-unit slopes are all equal (SE 0), so a base that
       barely uses the spurious variable (``proxy_sem``: 0.001 to 0.01 against 1.0 for each cause) passes
       it and gives ratios of 7 to 95. (Comparing with the oracle's spurious reliance, one draw of the
       same training noise, was tried and rejected: it lets about 1 in 5 such bases through.)
    3. ``sum_V |ace_edited|`` exceeds 3 standard errors of itself (`total_reliance_guard`): the edited model
       relies on something.
    """
    if ctx.output.edited is None:
        return None
    spurious = ctx.truth.of_role("spurious")
    if not spurious:
        return None
    denom = sum(abs(ctx.base_ace[v]) for v in spurious)
    units = combination_units(ctx.base_ace_units, {v: np.sign(ctx.base_ace[v]) for v in spurious})
    refused = se_guard("sum_S |ace_base|", denom, mean_se(units), units.size)
    if refused is not None:
        return refused
    n_train = len(ctx.data.train)
    floor = training_resolution(ctx.model_truth, n_train)
    if not denom > floor:
        return Missing(f"sum_S |ace_base| = {denom:.4g} does not exceed {GUARD_SE:g} x sum_V |ace_base| / "
                       f"sqrt(n_train) = {floor:.4g} (n_train = {n_train}): no measurable shortcut to remove")
    refused = total_reliance_guard(ctx)
    if refused is not None:
        return refused
    return share_ratio(ctx, spurious)


@score("causal_kept", track="edit", higher_is_better=True, version="2", bounds=(0, 1))
def causal_kept(ctx) -> float | Missing | None:
    """``max(0, 1 - ||ace_edited[C] - ace_base[C]|| / ||ace_base[C]||)`` over the causal (and core) variables C.

    Sees magnitude: shrinking every causal reliance by a factor ``k`` scores ``k``, deleting it 0, keeping
    it 1, and one cause is enough. Clipped below at 0: a change at least as large as the causal reliance
    itself (deleted, reversed or blown up) keeps nothing, and how much worse is not ranked (unbounded
    values would let one wild edit dominate a mean). No chance level: doing nothing keeps everything, so
    read it with ``residual_spurious``.
    Guard: ``||ace_base[C]||`` exceeds 3 standard errors of itself, from the per-unit contributions
    ``g_i = sum_C (ace_base[v] / ||ace_base[C]||) * slope_i[v]`` on test_id (delta method); else missing.
    """
    if ctx.output.edited is None:
        return None
    causal = ctx.truth.keep
    if not causal:
        return None
    base = np.array([ctx.base_ace[v] for v in causal])
    norm = float(np.linalg.norm(base))
    weights = {v: (b / norm if norm > 0 else 0.0) for v, b in zip(causal, base, strict=True)}
    units = combination_units(ctx.base_ace_units, weights)
    refused = se_guard("||ace_base[C]||", norm, mean_se(units), units.size)
    if refused is not None:
        return refused
    edited = np.array([ctx.edited_ace[v] for v in causal])
    return max(0.0, 1.0 - float(np.linalg.norm(edited - base)) / norm)


@score("id_drop", track="edit", higher_is_better=False, bounds=(-1, 1))
def id_drop(ctx) -> float | None:
    """``acc_id(base) - acc_id(edited)``."""
    if ctx.output.edited is None or not ctx.classification:
        return None
    return ctx.accuracy("base", "test_id") - ctx.accuracy("edited", "test_id")

