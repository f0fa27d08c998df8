"""Group-balanced subsampling: ERM on a subset with every (label x spurious value) group equally large."""

from __future__ import annotations

import numpy as np

from cowbench.access import Task
from cowbench.method import MethodOutput, register_method
from cowbench.methods._robust import RetrainMethod, details_of
from cowbench.subject import fit_fresh


@register_method
class GroupSubsample(RetrainMethod):
    """ERM on a random subset of ``train`` holding ``min_g n_g`` units of every group (SUBG).

    In the subsample the label is independent of the spurious attribute, so the Bayes classifier of the
    subsample ignores it (as with group reweighting, catalog O14), at the price of discarding most of the
    majority groups: the variance grows as the smallest group shrinks, and with an empty group there is
    nothing to train on (``ValueError``). Idrissi et al. find it as good as GroupDRO in worst-group accuracy.

    Parameters
    ----------
    epochs : int, optional
        Training epochs; default: the subject model's (full batches, so the subsample gets as many steps).
    random_state : int, optional
        Seed of the subsample and of the new model's initialisation.

    References
    ----------
    Idrissi, B. Y., Arjovsky, M., Pezeshki, M. & Lopez-Paz, D. (2022). Simple data balancing achieves
    competitive worst-group-accuracy. CLeaR, arXiv:2110.14503.
    """

    name = "group_subsample"
    version = "1"
    access = frozenset({"pooled", "group"})
    needs_every_group = True  # the balanced subsample of an empty group is empty: skipped at plan time
    label_kinds = frozenset({"binary"})

    def __init__(self, *, epochs: int | None = None, random_state: int | None = None):
        self.epochs = epochs
        self.random_state = random_state

    def run(self, task: Task) -> MethodOutput:
        group = np.asarray(task.train.group)
        labels, counts = np.unique(group, return_counts=True)
        if len(labels) < 4:
            raise ValueError(f"group_subsample needs every (label x spurious value) group in train; found "
                             f"{len(labels)} group(s), so the balanced subsample would be empty for the others")
        size = int(counts.min())
        rng = np.random.default_rng(self._seed())
        rows = np.sort(np.concatenate([rng.choice(np.flatnonzero(group == g), size, replace=False)
                                       for g in labels]))
        config = self._config(task, epochs=self.epochs)
        model = fit_fresh(config, task.train.x[rows], task.train.y[rows], self._seed(), loss=self._loss(task))
        return MethodOutput(edited=model, details={"per_group": size,
                                                   "group_counts": details_of(dict(zip(labels, counts,
                                                                                       strict=True)))})
