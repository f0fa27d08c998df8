"""Control: mean-ablate a random subspace at a hook point."""

from __future__ import annotations

import numpy as np

from cowbench import surgery
from cowbench.access import Task
from cowbench.method import Choice, Method, MethodOutput, register_method
from cowbench.methods._internals import clip_count, localized, resolve_layer, train_mean
from cowbench.surgery import orthonormal_basis


@register_method
class RandomDirectionAblation(Method):
    """Control: mean-ablate a uniformly random ``k``-dimensional subspace of the activations at a hook point.

    The subspace is the span of ``k`` standard Gaussian vectors (uniform on the Grassmannian); its
    coordinates are set to their training mean, ``h -> h - Q Q'(h - mu)``, as the direction-level edits
    (`mean_diff_ablation`, `inlp`) do with the directions they find. It reads no concept and no edit
    target, so it removes grass only by chance: its edit_score should be about 0, and a direction-level
    edit that does not beat it has not located anything (random-location controls, Wang & Veitch 2025).

    Localized: ``subspace`` = the random span; ``unit_scores`` = its row norms (the localization score's
    chance level).

    Parameters
    ----------
    k : int
        Dimension of the ablated subspace (at most the width of the layer); 1 matches one target direction.
    layer : str, optional
        Hook point (`cowbench.surgery`); default ``hidden.0`` where the subject has it, else ``input``.
    random_state : int, optional
        Seed of the random subspace.

    References
    ----------
    Wang, Z. & Veitch, V. (2025). Does editing provide evidence for localization? arXiv:2502.11447.
    """

    name = "random_direction_ablation"
    version = "1"
    family = "editing"
    access = frozenset({"pooled", "internals"})
    outputs = frozenset({"edit"})
    control = True
    search_space = {"k": Choice((1, 2, 4, 8))}

    def __init__(self, *, k: int = 1, layer: str | None = None, random_state: int | None = None):
        self.k = k
        self.layer = layer
        self.random_state = random_state

    def run(self, task: Task) -> MethodOutput:
        model = task.model
        point = resolve_layer(model, self.layer)
        mu = train_mean(task, model, point)
        rng = np.random.default_rng(0 if self.random_state is None else int(self.random_state))
        basis = orthonormal_basis(rng.standard_normal((mu.size, clip_count(self.k, mu.size))))
        edited = surgery.with_hook(model, point, surgery.projection_hook(basis, mean=mu))
        return MethodOutput(edited=edited,
                            localized=localized(point, unit_scores=np.linalg.norm(basis, axis=1), subspace=basis),
                            details={"layer": point, "k": int(basis.shape[1])})
