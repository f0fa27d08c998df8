"""Worked example, edit track: remove the edit target from the subject model by fixing its input at its mean.

Run it: ``cowbench check example_edit_mean --plugins docs/examples/edit_zero_input.py``.
"""

from __future__ import annotations

import numpy as np

from cowbench import surgery
from cowbench.methods import Method, MethodOutput, register_method


@register_method
class ExampleEditMeanInput(Method):
    """Replace the edit target's input column by its training mean, as a hook at the model's ``input`` point.

    Needs ``concept`` (for ``task.edit_target``, the variable(s) to remove, and ``task.concept_x``, inputs of
    the labelled units, shape (n_concept, d)) and ``internals`` (for ``task.model``, a private copy of the
    subject model). `cowbench.surgery.with_hook` returns an edited copy that computes
    ``model(P x + b)``; the scorer measures what the edit removed and what it kept. Reading the edit target
    names the spurious variable, so such a method is never ranked on detection.

    References
    ----------
    Meng, K., Bau, D., Andonian, A. & Belinkov, Y. (2022). Locating and editing factual associations in GPT.
    NeurIPS (editing a model's computation at a located point).
    """

    name = "example_edit_mean"
    family = "editing"
    access = frozenset({"pooled", "concept", "internals"})
    outputs = frozenset({"edit"})
    needs_input_map = True

    def __init__(self, *, random_state: int | None = None):
        self.random_state = random_state

    def run(self, task) -> MethodOutput:
        x = np.asarray(task.concept_x, dtype=np.float64)  # (n_concept, d)
        d = x.shape[1]
        keep = np.eye(d)
        for target in task.edit_target:
            keep[task.input_map[target], task.input_map[target]] = 0.0  # drop the target's column ...
        shift = (np.eye(d) - keep) @ x.mean(0)  # ... and put its mean back in
        edited = surgery.with_hook(task.model, "input", surgery.AffineHook(keep, shift))
        return MethodOutput(edited=edited, details={"targets": task.edit_target})
