"""What the hyperparameter-selection rules read (`cowbench.selection`), stored per job, never ranked.

The rules compare the settings of one method on one replicate: ``train_val`` by ``val_acc``,
``worst_group_val`` by ``val_wga``, ``loeo`` by ``loeo_acc`` and the test-domain ``oracle`` by ``acc_bal``
(the edit track's accuracy on test_bal, the split of the primary ``edit_score``: the oracle picks what is best
on the quantity the table ranks, so its row is an upper bound). They are computed here, from the harness's
copy of the data, so a rule never depends on what a method chose to report (DomainBed, Gulrajani &
Lopez-Paz 2021, section 3).
"""

from __future__ import annotations

from cowbench.scores import Missing, score


@score("val_acc", track="selection", higher_is_better=True, bounds=(0, 1))
def val_acc(ctx) -> float | None:
    """Accuracy of the edited model on val (the training distribution): ``mean_i 1[f(x_i) > 0 == y_i]``."""
    return None if ctx.output.edited is None or not ctx.classification else ctx.accuracy("edited", "val")


@score("val_wga", track="selection", higher_is_better=True, bounds=(0, 1))
def val_wga(ctx) -> float | None:
    """Worst-group accuracy of the edited model on val: ``min_g`` accuracy over the label x spurious groups of val.

    It reads val's group labels, which name the spurious variable: a setting chosen by it counts as
    ``group_val`` access (`cowbench.selection`).
    """
    if ctx.output.edited is None or not ctx.classification:
        return None
    return ctx.worst_group_accuracy("edited", "val")


@score("loeo_acc", track="selection", higher_is_better=True, bounds=(0, 1))
def loeo_acc(ctx) -> float | Missing | None:
    """Leave-one-environment-out accuracy: ``mean_e acc(f_{-e}, train_e)``, with ``f_{-e}`` the method refit on
    the training and validation units outside environment ``e`` (subject retrained on them too) and scored on
    the training units of ``e``. Computed by the job runner (`cowbench.loeo.loeo_accuracy`) for suites
    that select by ``loeo``, where train has at least 3 environments; None elsewhere; missing, with the reason,
    where a fold's refit raised."""
    return getattr(ctx, "loeo_acc", None)
