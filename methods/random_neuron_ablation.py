"""Control: zero- or mean-ablate k random units at a hook point."""

from __future__ import annotations

import numpy as np

from cowbench.access import Task
from cowbench.method import Choice, Method, MethodOutput, register_method
from cowbench.methods._internals import ablate_top_units, resolve_layer, train_mean


@register_method
class RandomNeuronAblation(Method):
    """Control: ablate ``k`` units drawn uniformly at random at a hook point, as `neuron_ablation` does its top k.

    Each unit gets a uniform random score and the ``k`` highest are set to 0 (``mode="zero"``) or to their
    training mean (``mode="mean"``). It reads no concept and no edit target: its edit_score should be about
    0, and `neuron_ablation` that does not beat it at the same ``k`` has not located anything (random-location
    controls, Wang & Veitch 2025).

    Localized: ``unit_scores`` = the random scores (the localization score's chance level); ``subspace`` =
    the axes of the ablated units.

    Parameters
    ----------
    k : int
        Number of units ablated (at most the width of the layer); the default matches `neuron_ablation`.
    mode : {"zero", "mean"}
        The value written into the ablated units.
    layer : str, optional
        Hook point (`cowbench.surgery`); default ``hidden.0`` where the subject has it, else ``input``.
    random_state : int, optional
        Seed of the random units.

    References
    ----------
    Wang, Z. & Veitch, V. (2025). Does editing provide evidence for localization? arXiv:2502.11447.
    """

    name = "random_neuron_ablation"
    version = "1"
    family = "editing"
    access = frozenset({"pooled", "internals"})
    outputs = frozenset({"edit"})
    control = True
    search_space = {"k": Choice((1, 2, 4, 8, 16)), "mode": Choice(("zero", "mean"))}

    def __init__(self, *, k: int = 2, mode: str = "mean", layer: str | None = None,
                 random_state: int | None = None):
        self.k = k
        self.mode = mode
        self.layer = layer
        self.random_state = random_state

    def run(self, task: Task) -> MethodOutput:
        model = task.model
        point = resolve_layer(model, self.layer)
        mu = train_mean(task, model, point)
        rng = np.random.default_rng(0 if self.random_state is None else int(self.random_state))
        return ablate_top_units(task, model, point, rng.random(mu.size), self.k, self.mode, mean=mu)
