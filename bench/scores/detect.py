"""Detection: does the method's ``spurious_score`` put the spurious variables above the causal ones?

A method that was told which variable is spurious (it read group labels or the edit target: ``ctx.told``)
is not ranked against methods that were not: every detection metric of its job is missing, and the job
record names the route (``told``).

Two questions, two metrics, never averaged:

- *Is the verdict right?* The primary ``detect_score`` is defined only where the scenario is identifiable at
  the access the method **read** (``ctx.read_access``: pooled plus the identifying levels in ``ctx.used``).
  Elsewhere no ranking is supported by the data the method saw, so there is nothing to grade (a pooled
  detector on a scenario that needs environments has no ``detect_score``, whatever it outputs).
- *Does it know when to abstain?* ``abstain_right`` grades the decision to give a verdict or to abstain.

So a blanket abstainer cannot win the primary (it scores chance wherever the primary is defined), and a
correct abstention is rewarded only on ``abstain_right``.
"""

from __future__ import annotations

import numpy as np

from cowbench.scores import score


def _told(ctx) -> bool:
    return bool(ctx.told)


def _scores(ctx) -> dict[str, float] | None:
    out = ctx.output
    if out.abstain or out.spurious_score is None or _told(ctx):
        return None
    return out.spurious_score


def _gives_verdict(ctx) -> bool:
    return ctx.output.abstain or ctx.output.spurious_score is not None


def _auroc(ctx, s: dict[str, float]) -> float | None:
    pos = np.array([s.get(v, np.nan) for v in ctx.truth.of_role("spurious") if v in ctx.variables])
    neg = np.array([s.get(v, np.nan) for v in ctx.truth.keep if v in ctx.variables])
    if pos.size == 0 or neg.size == 0 or not (np.isfinite(pos).all() and np.isfinite(neg).all()):
        return None
    diff = pos[:, None] - neg[None, :]
    return float(np.mean((diff > 0) + 0.5 * (diff == 0)))


@score("detect_score", track="detect", higher_is_better=True, primary=True, bounds=(0, 1), chance=0.5,
       version="2")
def detect_score(ctx) -> float | None:
    """Detection where the data the method read can answer it; with ``I_read`` = the scenario is identifiable
    at the access the method read (pooled plus the identifying levels it read, ``ctx.read_access``):

    ``detect_score = AUROC`` for a verdict where ``I_read``; ``0.5`` (chance) for an abstention where
    ``I_read`` (declining a question the data it read can answer is worth no more than guessing); not defined
    (None) where not ``I_read``: no verdict can be supported there, and an abstention there is graded by
    ``abstain_right``, not here. Missing if the method gives no verdict, or was told the answer (``ctx.told``:
    group labels, the edit target). A random ranking and a blanket abstainer both get 0.5 in expectation;
    only a correct ranking scores above it.
    """
    if _told(ctx) or not _gives_verdict(ctx) or not ctx.identifiable_read:
        return None
    if ctx.output.abstain:
        return 0.5
    return _auroc(ctx, ctx.output.spurious_score)


@score("abstain_right", track="detect", higher_is_better=True, bounds=(0, 1))
def abstain_right(ctx) -> float | None:
    """Knowing when to abstain: 1 if the decision to give a verdict or abstain was right, else 0.

    A verdict is right iff the scenario is identifiable at the access the method **read** (``ctx.read_access``):
    only then can the data behind it support a ranking. An abstention is right iff the scenario is not
    identifiable at the access the method **declared** (``ctx.access``): data it could have read and did not is
    no excuse. Identifiability counts only levels that do not reveal the answer (`cowbench.access.identifiable`).
    Missing if the method gives no verdict, or was told. No fixed chance level: a blanket abstainer gets the
    share of non-identifiable jobs, a blanket guesser the rest; the detection controls measure both.
    """
    if _told(ctx) or not _gives_verdict(ctx):
        return None
    if ctx.output.abstain:
        return float(not ctx.identifiable)
    return float(ctx.identifiable_read)


@score("detect_auroc", track="detect", higher_is_better=True, bounds=(0, 1), chance=0.5)
def detect_auroc(ctx) -> float | None:
    """AUROC of ``spurious_score``: spurious positive, causal and core negative, nuisance excluded, ties 1/2.

    Missing for an abstention and for a method that was told the answer (group labels, the edit target).
    """
    s = _scores(ctx)
    return None if s is None else _auroc(ctx, s)


@score("detect_top1", track="detect", higher_is_better=True, bounds=(0, 1))
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


@score("abstained", track="detect", higher_is_better=False, bounds=(0, 1))
def abstained(ctx) -> float | None:
    """1 if the method abstained from a detection verdict, 0 if it gave one (missing if it gives none or was told)."""
    if not _gives_verdict(ctx) or _told(ctx):
        return None
    return float(ctx.output.abstain)


@score("abstain_correct", track="detect", higher_is_better=True, bounds=(0, 1))
def abstain_correct(ctx) -> float | None:
    """For an abstention: 1 if the scenario is not identifiable at the method's access level, else 0.

    Identifiability counts only levels that do not reveal the answer (`cowbench.access.IDENTIFICATION_ORDER`:
    pooled, env, concept, counterfactual; group labels are not among them). Missing if the method was told.
    """
    if not ctx.output.abstain or _told(ctx):
        return None
    return float(not ctx.identifiable)
