"""Counterfactual data augmentation: fine-tune the subject on train plus copies with the edit target changed."""

from __future__ import annotations

import numpy as np

from cowbench.access import Task
from cowbench.method import Choice, LogUniform, Method, MethodOutput, register_method
from cowbench.methods._edits import counterfactual_do, factual_targets, finetune


@register_method
class CFAugment(Method):
    """Fine-tune a copy of the subject on the training units and their counterfactual twins.

    Each training unit gets a twin from ``task.intervene``: the same unit (same exogenous noise) with every
    edit target changed, ``1 - v`` for a binary target (so every unit is seen with both values and the
    target is exactly independent of everything else in the augmented set), a permutation of its values for
    a continuous one. The twin's label is the intervened unit's label (unchanged when the target is not an
    ancestor of the label, as for an anti-causal shortcut). The subject is then fine-tuned, full batch, on
    the union; a model that fits the union cannot profit from the target, so its reliance shrinks, while the
    causes keep their signal. Kaushik et al. revise texts by hand; here the generator is the annotator.
    What remains: the fine-tuning starts from the subject, so a short schedule removes only part of the
    shortcut (``epochs`` trades edit strength against cost), and a target with descendants other than the
    input (none in the cow family) would be changed together with them.

    Parameters
    ----------
    epochs : int
        Full-batch Adam steps of the fine-tuning.
    lr : float
        Adam's learning rate. Adam moves each weight by at most about ``lr`` per step, so ``lr x epochs`` must
        exceed the shortcut's weight (about 3 on a linear ``cow`` subject): 0.01 x 100 left 70% of it.
    include_original : bool
        Fine-tune on train plus twins (True, as Kaushik et al.) or on the twins alone.
    random_state : int, optional
        Seed of the permutation that changes a continuous target.

    References
    ----------
    Kaushik, D., Hovy, E. & Lipton, Z. C. (2020). Learning the difference that makes a difference with
    counterfactually-augmented data. ICLR, arXiv:1909.12434.
    """

    name = "cf_augment"
    version = "1"
    family = "editing"
    access = frozenset({"pooled", "concept", "counterfactual", "internals"})
    outputs = frozenset({"edit"})
    search_space = {"epochs": Choice((50, 100, 200)), "lr": LogUniform(3e-3, 1e-1),
                    "include_original": Choice((True, False))}

    def __init__(self, *, epochs: int = 100, lr: float = 0.05, include_original: bool = True,
                 random_state: int | None = None):
        self.epochs = epochs
        self.lr = lr
        self.include_original = include_original
        self.random_state = random_state

    def run(self, task: Task) -> MethodOutput:
        targets = task.edit_target
        rng = np.random.default_rng(0 if self.random_state is None else int(self.random_state))
        twins = task.intervene(counterfactual_do(task, factual_targets(task, targets), rng), "train")
        x, y = np.asarray(twins.x), np.asarray(twins.y)
        if self.include_original:
            x = np.concatenate([np.asarray(task.train.x), x])
            y = np.concatenate([np.asarray(task.train.y), y])
        model = finetune(task.model, x, y, label_kind=task.label_kind, epochs=self.epochs, lr=self.lr)
        return MethodOutput(edited=model, details={"targets": targets, "n_finetune": len(y)})
