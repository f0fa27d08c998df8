"""Counterfactual logit pairing: fine-tune with a penalty on the logit gap between counterfactual twins."""

from __future__ import annotations

import numpy as np
import torch

from cowbench.access import Task
from cowbench.method import Choice, LogUniform, Method, MethodOutput, register_method
from cowbench.methods._edits import as_double, counterfactual_do, factual_targets, finetune


@register_method
class CFLogitPairing(Method):
    """Fine-tune a copy of the subject on ``loss(f(x), y) + lam * mean_i |f(x_i) - f(x_i')|``.

    ``x_i'`` is training unit ``i`` under an intervention that changes only the edit targets (``1 - v`` for
    a binary target, a permutation of its values for a continuous one), drawn once from
    ``task.intervene`` with the same exogenous noise, so the pair differs in the target and nothing else.
    The penalty is zero exactly when the logit does not depend on the target on the training units, so the
    target's reliance (``ace``) is driven towards 0 while the task loss keeps the causes. Unlike
    counterfactual augmentation it does not need the twins' labels. Known limits: the penalty sees only the
    training units' pairs (reliance elsewhere in input space is unconstrained), its L1 form has a constant
    gradient that fights the task loss until the gap is exactly 0, and a small ``lam`` or a short schedule
    leaves part of the shortcut.

    Parameters
    ----------
    lam : float
        Weight of the pairing penalty (Garg et al.'s lambda).
    epochs : int
        Full-batch Adam steps of the fine-tuning.
    lr : float
        Adam's learning rate. Adam moves each weight by at most about ``lr`` per step, so ``lr x epochs`` must
        exceed the shortcut's weight (about 3 on a linear ``cow`` subject): 0.01 x 100 left 70% of it.
    random_state : int, optional
        Seed of the permutation that changes a continuous target.

    References
    ----------
    Garg, S., Perot, V., Limtiaco, N., Taly, A., Chi, E. H. & Beutel, A. (2019). Counterfactual fairness in
    text classification through robustness. AIES, arXiv:1809.10610.
    Kannan, H., Kurakin, A. & Goodfellow, I. (2018). Adversarial logit pairing. arXiv:1803.06373.
    """

    name = "cf_logit_pairing"
    version = "1"
    family = "editing"
    access = frozenset({"pooled", "concept", "counterfactual", "internals"})
    outputs = frozenset({"edit"})
    search_space = {"lam": LogUniform(0.1, 10.0), "epochs": Choice((50, 100, 200)), "lr": LogUniform(3e-3, 1e-1)}

    def __init__(self, *, lam: float = 1.0, epochs: int = 100, lr: float = 0.05, random_state: int | None = None):
        self.lam = lam
        self.epochs = epochs
        self.lr = lr
        self.random_state = random_state

    def run(self, task: Task) -> MethodOutput:
        targets = task.edit_target
        rng = np.random.default_rng(0 if self.random_state is None else int(self.random_state))
        twins = task.intervene(counterfactual_do(task, factual_targets(task, targets), rng), "train")
        x, x_twin = as_double(task.train.x), as_double(twins.x)
        lam = float(self.lam)

        def pairing(model: torch.nn.Module) -> torch.Tensor:
            return lam * (model(x) - model(x_twin)).abs().mean()

        model = finetune(task.model, np.asarray(task.train.x), np.asarray(task.train.y), label_kind=task.label_kind,
                         epochs=self.epochs, lr=self.lr, penalty=pairing)
        return MethodOutput(edited=model, details={"targets": targets})
