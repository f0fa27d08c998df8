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


def _batch_reading_model(width: int):
    import torch

    class BatchReading(torch.nn.Module):
        """Centres its input on the batch's own mean: a row's output depends on the rest of its batch."""

        def forward(self, x):
            return 10.0 * (x[:, 0] - x[:, 0].mean())

    return BatchReading()


@register_method
class FoldBatchReader(Method):
    """Row-independent edit on the job's own Task, a batch-reading one on a loeo fold's (fewer environments).

    A model that reads its batch only where the harness evaluates loeo refits: the refits' held-out rows must go
    through the same row-independence checks as the scored batches, so the job gets no ``loeo_acc``.

    References
    ----------
    Test fixture, no paper: cowbench issue 15, 'Methods run blind' (a model that reads its batch).
    """

    name = "test_fold_batch_reader"
    family = "robust_training"
    access = frozenset({"pooled", "env"})
    outputs = frozenset({"edit"})

    def __init__(self, *, n_envs: int = 3, random_state: int | None = None):
        self.n_envs = n_envs
        self.random_state = random_state

    def run(self, task) -> MethodOutput:
        import torch

        width = np.asarray(task.train.x).shape[1]
        if len(np.unique(np.asarray(task.train.env))) < self.n_envs:  # a loeo fold: one environment held out
            return MethodOutput(edited=_batch_reading_model(width))
        layer = torch.nn.Linear(width, 1)
        with torch.no_grad():
            layer.weight.zero_()
            layer.weight[0, 0] = 1.0
            layer.bias.zero_()
        return MethodOutput(edited=torch.nn.Sequential(layer, torch.nn.Flatten(0)))
