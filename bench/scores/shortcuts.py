"""Other shortcuts: after an edit of one spurious variable, what happened to the reliance on the others?

Removing one shortcut can raise the reliance on another (Whac-A-Mole: Li et al. 2023, "A Whac-A-Mole
dilemma: shortcuts come in multiples where mitigating one amplifies others", CVPR, arXiv:2212.04825). In a
scenario whose edit target names some spurious variables (``Truth.edit_target``), the others ``O`` are
watched here.
"""

from __future__ import annotations

import numpy as np

from cowbench.scores import Missing, score
from cowbench.scores._guards import combination_units, mean_se, se_guard
from cowbench.scores.edit import share_ratio, total_reliance_guard


@score("other_spurious_ratio", track="edit", higher_is_better=False, version="2", bounds=(0, float("inf")),
       chance=1.0)
def other_spurious_ratio(ctx) -> float | Missing | None:
    """``(sum_O |ace_edited| / sum_W |ace_edited|) / (sum_O |ace_base| / sum_W |ace_base|)`` on test_id, over the
    spurious variables O that are not the edit target, with W every observed variable but the edit target: O's
    share of the model's total reliance on what the edit should not remove, edited against the subject
    (1: untouched; above 1: the edit amplified another shortcut; below 1: it removed it too).

    A share, as ``residual_spurious``: shrinking the model does not remove a shortcut, and a constant prediction
    is missing rather than best. The target is left out of W so that removing it, and only it, leaves 1.
    None where every spurious variable is a target. Guards (else missing): ``sum_O |ace_base|`` exceeds 3
    standard errors of itself, from the per-unit contributions ``g_i = sum_O sign(ace_base[v]) * slope_i[v]``;
    and the edited model's total reliance ``sum_W |ace_edited|`` exceeds 3 standard errors of itself
    (`cowbench.scores.edit.total_reliance_guard`).
    """
    if ctx.output.edited is None:
        return None
    targets = set(ctx.truth.edit_targets)
    others = [v for v in ctx.truth.of_role("spurious") if v not in targets]
    if not others:
        return None
    denom = sum(abs(ctx.base_ace[v]) for v in others)
    units = combination_units(ctx.base_ace_units, {v: np.sign(ctx.base_ace[v]) for v in others})
    refused = se_guard("sum_O |ace_base|", denom, mean_se(units), units.size)
    if refused is not None:
        return refused
    kept = [v for v in ctx.variables if v not in targets]
    refused = total_reliance_guard(ctx, kept)
    if refused is not None:
        return refused
    return share_ratio(ctx, others, kept)
