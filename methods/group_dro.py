"""Online GroupDRO: minimise the worst group's loss, with the group weights updated by exponentiated gradient."""

from __future__ import annotations

import numpy as np
import torch

from cowbench.access import Task
from cowbench.method import LogUniform, MethodOutput, register_method
from cowbench.methods._robust import RetrainMethod, as_float64, codes, group_means, train_objective, unit_loss


@register_method
class GroupDRO(RetrainMethod):
    """Online group distributionally robust optimisation (Sagawa et al. 2020, Algorithm 1), full batch.

    Each step computes every group's mean loss ``L_g``, moves the group weights by exponentiated gradient,
    ``q_g <- q_g exp(eta L_g)`` normalised, and takes an Adam step on ``sum_g q_g L_g``; ``q`` starts
    uniform. So the objective tends to ``max_g L_g``. Sagawa et al.'s point is that this only helps with
    strong regularisation: an unregularised network that can fit the training groups drives every group's
    training loss to 0 and ends where ERM ends. Hence a default ``weight_decay`` (their strong l2) and
    the subject's epoch budget (their early stopping); both are in the search space. On the linear
    architecture the problem is convex and the solution is the worst-group-optimal linear rule.

    Parameters
    ----------
    eta : float
        Step size of the group weights (the paper's ``eta_q``).
    weight_decay : float
        l2 penalty (Adam's coupled weight decay) on every parameter.
    epochs : int, optional
        Training epochs; default: the subject model's.
    random_state : int, optional
        Seed of the new model's initialisation.

    References
    ----------
    Sagawa, S., Koh, P. W., Hashimoto, T. B. & Liang, P. (2020). Distributionally robust neural networks for
    group shifts: on the importance of regularization for worst-case generalization. ICLR, arXiv:1911.08731.
    """

    name = "group_dro"
    version = "1"
    access = frozenset({"pooled", "group"})
    label_kinds = frozenset({"binary"})
    search_space = {"eta": LogUniform(1e-3, 1.0), "weight_decay": LogUniform(1e-4, 1e-1)}

    def __init__(self, *, eta: float = 0.1, weight_decay: float = 1e-3, epochs: int | None = None,
                 random_state: int | None = None):
        self.eta = eta
        self.weight_decay = weight_decay
        self.epochs = epochs
        self.random_state = random_state

    def run(self, task: Task) -> MethodOutput:
        model, q = train_group_dro(self, task, task.train.group, eta=self.eta, weight_decay=self.weight_decay,
                                   epochs=self.epochs)
        return MethodOutput(edited=model, details={"group_weights": np.round(q, 6).tolist()})


def train_group_dro(method: RetrainMethod, task: Task, groups: np.ndarray, *, eta: float, weight_decay: float,
                    epochs: int | None = None) -> tuple[torch.nn.Module, np.ndarray]:
    """GroupDRO's training on ``groups`` (one label per training unit): the model and the final group weights.

    The core of `GroupDRO`, shared with the methods that infer the groups instead of reading them (EIIL,
    GEORGE): ``method`` supplies the subject's config, loss and the seeded fresh model.
    """
    x, y = as_float64(task.train.x), as_float64(task.train.y)
    group, n_groups = codes(groups)
    loss = method._loss(task)
    q = torch.full((n_groups,), 1.0 / n_groups, dtype=torch.float64)

    def objective(model, step):
        nonlocal q
        losses = group_means(unit_loss(model(x), y, loss), group, n_groups)
        with torch.no_grad():  # the weights follow the losses; no gradient flows through them
            q = q * torch.exp(eta * losses.detach())
            q = q / q.sum()
        return (q * losses).sum()

    config = method._config(task, epochs=epochs)
    model = train_objective(method._fresh(task, config), objective, epochs=config.epochs, lr=config.lr,
                            weight_decay=weight_decay)
    return model, q.numpy()
