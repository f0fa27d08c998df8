"""Control: the subject model, unchanged."""

from __future__ import annotations

from cowbench.access import Task
from cowbench.method import Method, MethodOutput, register_method


@register_method
class NoEdit(Method):
    """Control: return the subject model unchanged (edit_score 0 and residual_spurious 1 by definition).

    A control, not a competitor: what every edit score is read against. It localizes nothing.

    Parameters
    ----------
    random_state : int, optional
        Unused; kept for the common interface.

    References
    ----------
    Wang, Z. & Veitch, V. (2025). Does editing provide evidence for localization? arXiv:2502.11447
    (controls for editing claims).
    """

    name = "no_edit"
    version = "1"
    family = "editing"
    access = frozenset({"pooled", "internals"})
    outputs = frozenset({"edit"})
    control = True

    def __init__(self, *, random_state: int | None = None):
        self.random_state = random_state

    def run(self, task: Task) -> MethodOutput:
        return MethodOutput(edited=task.model)
