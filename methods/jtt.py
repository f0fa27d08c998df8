"""Just Train Twice: upweight the training units an ERM model gets wrong, retrain; no group labels."""

from __future__ import annotations

import numpy as np

from cowbench.access import Task
from cowbench.method import Choice, Integer, LogUniform, MethodOutput, OrNone, Real, register_method
from cowbench.methods._robust import RetrainMethod
from cowbench.models import logits
from cowbench.subject import fit_fresh


@register_method
class JTT(RetrainMethod):
    """Just Train Twice (Liu et al. 2021): an error set from an identification model, upweighted by ``lambda_up``.

    Stage 1, identification: the units of ``train`` an ERM model misclassifies form the error set. By
    default the ERM model is the subject itself, queried as a black box (the subject is ERM on the same
    ``train``, so this is the paper's identification model, shared by every method of the replicate);
    ``id_epochs`` instead trains a short ERM of the subject's architecture (the paper's early-stopped
    identification model) from the method's seed. Stage 2: ERM from a fresh initialisation with the error
    set's units weighted ``lambda_up`` and the others 1. Training group labels are never read: the
    minority groups are found as the units a shortcut model gets wrong. The paper selects ``lambda_up`` and
    the identification epochs with validation group labels; that selection is a harness rule
    (worst-group validation), not part of the method. It fails where the identification model's errors are
    not the minority groups (e.g. label noise dominates the errors, or the subject fits train perfectly).

    Defaults (measured, 2 replicates each): on ``cow`` (errors partly label noise) the subject as identifier
    with ``lambda_up = 6`` raises worst-group accuracy from 0.21 to 0.46-0.60, while a 20-epoch identifier
    or ``lambda_up = 20`` collapses to chance on the balanced split; on ``four_groups`` with a clean core
    feature the subject fits the minority groups too well to find them, and the paper's early-stopped
    identifier (``id_epochs = 20, lambda_up = 20``) is what works, modestly (measured: worst-group accuracy
    0.42 -> 0.47 over 2 replicates, root seed 0, the default subject; other seeds gave up to 0.51, and SpuCo's
    reimplementation gives 0.50). The defaults follow the standard suite's main scenario; the search space
    covers both. The first two figures are re-measured by ``tests/unit/test_prose_numbers.py`` (slow).

    Parameters
    ----------
    lambda_up : float
        Weight of the error set's units relative to the others.
    id_epochs : int, optional
        Epochs of a short ERM identification model; None: the subject model is the identification model.
    epochs : int, optional
        Epochs of the final model; default: the subject model's.
    random_state : int, optional
        Seed of the models' initialisation.

    References
    ----------
    Liu, E. Z., Haghgoo, B., Chen, A. S., Raghunathan, A., Koh, P. W., Sagawa, S., Liang, P. & Finn, C.
    (2021). Just train twice: improving group robustness without training group information. ICML,
    arXiv:2107.09044.
    """

    name = "jtt"
    version = "1"
    access = frozenset({"pooled"})
    label_kinds = frozenset({"binary"})
    search_space = {"lambda_up": LogUniform(2.0, 100.0), "id_epochs": Choice((None, 10, 20, 50))}
    param_constraints = {"lambda_up": Real(1.0, None), "id_epochs": OrNone(Integer(1))}

    def __init__(self, *, lambda_up: float = 6.0, id_epochs: int | None = None, epochs: int | None = None,
                 random_state: int | None = None):
        self.lambda_up = lambda_up
        self.id_epochs = id_epochs
        self.epochs = epochs
        self.random_state = random_state

    def run(self, task: Task) -> MethodOutput:
        x, y = task.train.x, task.train.y
        loss = self._loss(task)
        if self.id_epochs is None:
            scores = task.predict_logit(x)
        else:
            identifier = fit_fresh(self._config(task, epochs=self.id_epochs), x, y, self._seed(), loss=loss)
            scores = logits(identifier, x)
        errors = (scores > 0) != (np.asarray(y) == 1)
        weights = np.where(errors, float(self.lambda_up), 1.0)
        model = fit_fresh(self._config(task, epochs=self.epochs), x, y, self._seed(), weights, loss)
        return MethodOutput(edited=model, details={"error_set": int(errors.sum()), "n_train": len(y)})
