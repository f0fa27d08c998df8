"""Edit success: the method's edited model against the subject (``base``) and the ``oracle`` model."""

from __future__ import annotations

import math

import numpy as np

from cowbench.scores import score
from cowbench.scores._vectors import cosine


@score("acc_id", track="edit", higher_is_better=True, bounds=(0, 1))
def acc_id(ctx) -> float | None:
    """Accuracy of the edited model on test_id."""
    return None if ctx.output.edited is None or not ctx.classification else ctx.accuracy("edited", "test_id")


@score("acc_ood", track="edit", higher_is_better=True, bounds=(0, 1))
def acc_ood(ctx) -> float | None:
    """Accuracy of the edited model on test_ood."""
    return None if ctx.output.edited is None or not ctx.classification else ctx.accuracy("edited", "test_ood")


@score("wga", track="edit", higher_is_better=True, bounds=(0, 1))
def wga(ctx) -> float | None:
    """Worst-group accuracy of the edited model on test_ood (min over label x spurious groups)."""
    if ctx.output.edited is None or not ctx.classification:
        return None
    return ctx.worst_group_accuracy("edited", "test_ood")


@score("edit_score", track="edit", higher_is_better=True, primary=True, chance=0.0)
def edit_score(ctx) -> float | None:
    """``(acc_ood(edited) - acc_ood(base)) / (acc_ood(oracle) - acc_ood(base))``; missing if the denominator < 0.01."""
    if ctx.output.edited is None or not ctx.classification:
        return None
    base = ctx.accuracy("base", "test_ood")
    denom = ctx.accuracy("oracle", "test_ood") - base
    if denom < 0.01:
        return None
    return (ctx.accuracy("edited", "test_ood") - base) / denom


@score("residual_spurious", track="edit", higher_is_better=False, bounds=(0, math.inf), chance=1.0)
def residual_spurious(ctx) -> float | None:
    """``sum_S |ace_edited| / sum_S |ace_base|`` on test_id (0 is a clean edit)."""
    if ctx.output.edited is None:
        return None
    spurious = ctx.truth.of_role("spurious")
    base = sum(abs(ctx.base_ace[v]) for v in spurious)
    if base == 0:
        return None
    return sum(abs(ctx.edited_ace[v]) for v in spurious) / base


@score("causal_kept", track="edit", higher_is_better=True, bounds=(-1, 1))
def causal_kept(ctx) -> float | None:
    """``cos(ace_edited[C], ace_base[C])`` over the causal (and core) variables C."""
    if ctx.output.edited is None:
        return None
    causal = ctx.truth.keep
    return cosine(np.array([ctx.edited_ace[v] for v in causal]), np.array([ctx.base_ace[v] for v in causal]))


@score("id_drop", track="edit", higher_is_better=False, bounds=(-1, 1))
def id_drop(ctx) -> float | None:
    """``acc_id(base) - acc_id(edited)``."""
    if ctx.output.edited is None or not ctx.classification:
        return None
    return ctx.accuracy("base", "test_id") - ctx.accuracy("edited", "test_id")
