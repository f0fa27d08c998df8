"""An edit method that cheats if it can, for the loeo blinding test (loaded with ``--plugins``).

It looks for the harness's objects through the garbage collector: a `cowbench.replicate.Replicate` (the unblinded
data, the truth). Where it finds one (its refit ran in the harness's process) its edited model says "positive"
for every row; where it finds none (a sandbox process, where no replicate ever is) it says "negative". So a
job's ``loeo_acc`` tells where its refits ran.
"""

from __future__ import annotations

import gc

import numpy as np

from cowbench.method import Method, MethodOutput, register_method


def _harness_visible() -> bool:
    return any(type(obj).__name__ == "Replicate" and hasattr(obj, "unit_truth") for obj in gc.get_objects())


@register_method
class GcCheatEdit(Method):
    """Constant edit whose sign says whether the harness's replicate was reachable through ``gc``.

    References
    ----------
    Test fixture, no paper: cowbench issue 15, 'Methods run blind' (the garbage collector's door).
    """

    name = "test_gc_cheat_edit"
    family = "robust_training"
    access = frozenset({"pooled", "env"})
    outputs = frozenset({"edit"})

    def __init__(self, *, random_state: int | None = None):
        self.random_state = random_state

    def run(self, task) -> MethodOutput:
        import torch

        layer = torch.nn.Linear(np.asarray(task.train.x).shape[1], 1)
        with torch.no_grad():
            layer.weight.zero_()
            layer.bias.fill_(50.0 if _harness_visible() else -50.0)
        return MethodOutput(edited=torch.nn.Sequential(layer, torch.nn.Flatten(0)))


class _GcLookingModel:
    """An edited model whose ``forward`` walks the garbage collector (and answers like a constant)."""

    def __new__(cls, width: int):
        import torch

        class Looking(torch.nn.Module):
            def forward(self, x):
                gc.get_objects()
                return torch.zeros(len(x))

        return Looking()


@register_method
class GcForwardEdit(Method):
    """Constant edit whose model's ``forward`` walks ``gc`` in the evaluation process: the job must record it.

    References
    ----------
    Test fixture, no paper: cowbench issue 15, 'Methods run blind' (a model's forward is method code too).
    """

    name = "test_gc_forward_edit"
    family = "robust_training"
    access = frozenset({"pooled"})
    outputs = frozenset({"edit"})

    def __init__(self, *, random_state: int | None = None):
        self.random_state = random_state

    def run(self, task) -> MethodOutput:
        return MethodOutput(edited=_GcLookingModel(np.asarray(task.train.x).shape[1]))
