"""Right for the right reasons: fine-tune with a penalty on the input gradient along the target's direction."""

from __future__ import annotations

import numpy as np
import torch

from cowbench.access import Task
from cowbench.method import Choice, LogUniform, Method, MethodOutput, register_method
from cowbench.methods._common import concept_directions
from cowbench.methods._edits import as_double, finetune


@register_method
class RRR(Method):
    """Fine-tune a copy of the subject on ``loss(f(x), y) + lam * mean_i sum_s (grad_x f(x_i) . d_s)^2``.

    Ross et al. penalise the input gradient on annotated input features (a mask ``A``:
    ``sum (A * d log p / dx)^2``). Here the annotation is a direction, not a mask, so the method also works
    when a variable is spread over every input coordinate (rotated, superposed renderings): ``d_s`` is the
    edit target's input direction, the row of the joint least-squares decoder ``x - mean(x) ~ (c - mean(c)) B``
    fitted on the concept-labelled subset (as ``erase_spurious`` finds it; on identity rendering it is the
    target's column). ``grad_x f . d_s`` is the logit's slope when the target moves by one unit with the rest of
    the input held, i.e. the model's local reliance on it; the penalty is averaged over all training units.
    Known limits: a gradient penalty is local (a ReLU network can keep a step in the target between the
    points where the gradient is read), the direction is only as good as the probe (a target rendered
    nonlinearly has no single input direction), and the penalty weight trades edit strength against fit.

    Parameters
    ----------
    lam : float
        Weight of the gradient penalty.
    epochs : int
        Full-batch Adam steps of the fine-tuning.
    lr : float
        Adam's learning rate. Adam moves each weight by at most about ``lr`` per step, so ``lr x epochs`` must
        exceed the shortcut's weight (about 3 on a linear ``cow`` subject): 0.01 x 100 left 70% of it.
    random_state : int, optional
        Unused (deterministic); kept for the common interface.

    References
    ----------
    Ross, A. S., Hughes, M. C. & Doshi-Velez, F. (2017). Right for the right reasons: training differentiable
    models by constraining their explanations. IJCAI, arXiv:1703.03717.
    """

    name = "rrr"
    version = "1"
    family = "editing"
    access = frozenset({"pooled", "concept", "internals"})
    outputs = frozenset({"edit"})
    search_space = {"lam": LogUniform(0.1, 100.0), "epochs": Choice((50, 100, 200)), "lr": LogUniform(3e-3, 1e-1)}

    def __init__(self, *, lam: float = 1.0, epochs: int = 100, lr: float = 0.05, random_state: int | None = None):
        self.lam = lam
        self.epochs = epochs
        self.lr = lr
        self.random_state = random_state

    def run(self, task: Task) -> MethodOutput:
        concepts = task.concepts
        targets = task.edit_target
        directions = concept_directions(concepts.to_numpy(dtype=np.float64), task.concept_x)  # (k, d)
        cols = [list(concepts.columns).index(t) for t in targets]
        d_s = as_double(directions[cols].T)  # (d, s): one input direction per target
        x = as_double(task.train.x).requires_grad_(True)
        lam = float(self.lam)

        def gradient_penalty(model: torch.nn.Module) -> torch.Tensor:
            (grad,) = torch.autograd.grad(model(x).sum(), x, create_graph=True)  # (n, d): rows are independent
            return lam * ((grad @ d_s) ** 2).sum(1).mean()

        model = finetune(task.model, np.asarray(task.train.x), np.asarray(task.train.y), label_kind=task.label_kind,
                         epochs=self.epochs, lr=self.lr, penalty=gradient_penalty)
        return MethodOutput(edited=model, details={"targets": targets,
                                                   "directions": {t: directions[c].tolist()
                                                                  for t, c in zip(targets, cols, strict=True)}})
