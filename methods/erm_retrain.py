"""ERM retrained with the method's own seed: the reference row of the robust-training family."""

from __future__ import annotations

from cowbench.access import Task
from cowbench.method import MethodOutput, register_method
from cowbench.methods._robust import RetrainMethod
from cowbench.subject import fit_fresh


@register_method
class ERMRetrain(RetrainMethod):
    """Empirical risk minimisation on ``train``, the subject's architecture and training, a new seed.

    The row every robust-training method is compared with: it differs from the subject model only by its
    initialisation (``random_state``), so its edit scores measure seed-to-seed variation, and a method that
    does not beat it has not removed anything ERM would not. It keeps whatever shortcut the data offer.

    Parameters
    ----------
    epochs : int, optional
        Training epochs; default: the subject model's.
    random_state : int, optional
        Seed of the new model's initialisation.

    References
    ----------
    Vapnik, V. (1992). Principles of risk minimization for learning theory. NeurIPS.
    Gulrajani, I. & Lopez-Paz, D. (2021). In search of lost domain generalization. ICLR, arXiv:2007.01434
    (ERM as the baseline every robust method must beat under the same protocol).
    """

    name = "erm_retrain"
    version = "1"
    access = frozenset({"pooled"})

    def __init__(self, *, epochs: int | None = None, random_state: int | None = None):
        self.epochs = epochs
        self.random_state = random_state

    def run(self, task: Task) -> MethodOutput:
        config = self._config(task, epochs=self.epochs)
        model = fit_fresh(config, task.train.x, task.train.y, self._seed(), loss=self._loss(task))
        return MethodOutput(edited=model)
