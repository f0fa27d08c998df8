"""Retrain the subject architecture with groups balanced by importance weights."""

from __future__ import annotations

import numpy as np

from cowbench.access import Task
from cowbench.method import Method, MethodOutput, register_method
from cowbench.subject import SubjectConfig, fit_fresh


@register_method
class GroupReweight(Method):
    """ERM with each (label x spurious value) group weighted to the same total: ``w_i = 1/(G n_g(i))``.

    In the reweighted population the label is independent of the spurious attribute, so the Bayes
    classifier ignores it when it carries no information about a cause (catalog O14: population weight
    on the spurious input is 0). It fails when the spurious variable is also a proxy of a noisily
    observed cause, and when the minority group is tiny (variance).

    Parameters
    ----------
    epochs : int, optional
        Training epochs; default: the subject model's.
    random_state : int, optional
        Seed of the new model's initialisation.

    References
    ----------
    Idrissi, B. Y., Arjovsky, M., Pezeshki, M. & Lopez-Paz, D. (2022). Simple data balancing achieves
    competitive worst-group-accuracy. CLeaR, arXiv:2110.14503.
    Sagawa, S., Raghunathan, A., Koh, P. W. & Liang, P. (2020). An investigation of why
    overparameterization exacerbates spurious correlations. ICML, arXiv:2005.04345.
    """

    name = "group_reweight"
    version = "1"
    family = "robust_training"
    access = frozenset({"pooled", "group"})
    outputs = frozenset({"edit"})

    def __init__(self, *, epochs: int | None = None, random_state: int | None = None):
        self.epochs = epochs
        self.random_state = random_state

    def run(self, task: Task) -> MethodOutput:
        group = np.asarray(task.train.group)
        labels, inverse, counts = np.unique(group, return_inverse=True, return_counts=True)
        weights = 1.0 / (len(labels) * counts[inverse])
        config = {k: v for k, v in task.subject_config.items() if k != "version"}
        if self.epochs is not None:
            config["epochs"] = self.epochs
        seed = 0 if self.random_state is None else int(self.random_state)
        loss = "logistic" if task.label_kind == "binary" else "squared"
        model = fit_fresh(SubjectConfig.from_mapping(config), task.train.x, task.train.y, seed, weights, loss)
        return MethodOutput(edited=model, details={"group_counts": dict(zip(labels.tolist(), counts.tolist(),
                                                                              strict=True))})
