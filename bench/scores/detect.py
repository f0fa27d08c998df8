"""Detection: does the method's ``spurious_score`` put the spurious variables above the causal ones?

Scores of a method that read the edit target (which names the spurious variable) are not comparable
and are left missing. Abstentions are counted; an abstention is correct where the scenario is not
identifiable at the method's access level.
"""

from __future__ import annotations

import numpy as np

from cowbench.scores import score


def _scores(ctx) -> dict[str, float] | None:
    out = ctx.output
    if out.abstain or out.spurious_score is None or "edit_target" in ctx.used:
        return None
    return out.spurious_score


def _gives_verdict(ctx) -> bool:
    return ctx.output.abstain or ctx.output.spurious_score is not None


@score("detect_auroc", track="detect", higher_is_better=True, primary=True)
def detect_auroc(ctx) -> float | None:
    """AUROC of ``spurious_score``: spurious positive, causal and core negative, nuisance excluded, ties 1/2."""
    s = _scores(ctx)
    if s is None:
        return None
    pos = np.array([s.get(v, np.nan) for v in ctx.truth.of_role("spurious") if v in ctx.variables])
    neg = np.array([s.get(v, np.nan) for v in ctx.truth.keep if v in ctx.variables])
    if pos.size == 0 or neg.size == 0 or not (np.isfinite(pos).all() and np.isfinite(neg).all()):
        return None
    diff = pos[:, None] - neg[None, :]
    return float(np.mean((diff > 0) + 0.5 * (diff == 0)))


@score("detect_top1", track="detect", higher_is_better=True)
def detect_top1(ctx) -> float | None:
    """1 if the observed variable with the highest ``spurious_score`` is spurious (a tie counts as a miss), else 0."""
    s = _scores(ctx)
    if s is None:
        return None
    values = np.array([s.get(v, -np.inf) for v in ctx.variables], dtype=float)
    top = np.flatnonzero(values == values.max())
    if len(top) != 1:
        return 0.0
    return float(ctx.truth.roles[ctx.variables[top[0]]] == "spurious")


@score("abstained", track="detect", higher_is_better=False)
def abstained(ctx) -> float | None:
    """1 if the method abstained from a detection verdict, 0 if it gave one (missing if it gives none)."""
    if not _gives_verdict(ctx):
        return None
    return float(ctx.output.abstain)


@score("abstain_correct", track="detect", higher_is_better=True)
def abstain_correct(ctx) -> float | None:
    """For an abstention: 1 if the scenario is not identifiable at the method's access level, else 0."""
    if not ctx.output.abstain:
        return None
    return float(not ctx.identifiable)
