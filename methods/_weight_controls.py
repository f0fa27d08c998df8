"""Shared part of the weight-statistic localization controls (not a method: the registry skips "_" modules).

Each control scores every unit at a hidden hook point from the subject's weights alone (no data, no concept,
no edit target) and ablates its top ``k`` units as `neuron_ablation` does. On a planted network (version 2,
`cowbench.planted`) no such statistic points at the target's units, so their ``loc_auroc`` is at chance; a
method that beats them used something other than the weights' shape.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from torch import nn

from cowbench import surgery
from cowbench.method import Choice, Method, MethodOutput
from cowbench.methods._internals import ablate_top_units, resolve_layer, train_mean


def unit_weights(model: nn.Module, point: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The incoming weight rows ``(width, d_in)``, incoming biases ``(width,)`` and outgoing weight columns
    ``(d_out, width)`` of the units at the hidden point ``point`` (float64).

    Raises ValueError where no linear layer writes ``point`` (``input``) or reads it, or the layers are not
    ``nn.Linear`` (a convolution's units share weights: no per-unit row).
    """
    seq = surgery._check_sequential(model)
    idx = surgery.hook_points(model)[point]
    before = [m for m in list(seq)[: idx + 1] if isinstance(m, nn.Linear | nn.Conv2d)]
    if not before:
        raise ValueError(f"hook point {point!r} has no incoming weight layer: pick a hidden point "
                         f"({', '.join(surgery.hidden_points(model))})")
    incoming, outgoing = before[-1], surgery.reader(model, point)
    if not isinstance(incoming, nn.Linear) or not isinstance(outgoing, nn.Linear):
        raise ValueError(f"weight-statistic controls need linear layers around {point!r}, got "
                         f"{type(incoming).__name__} and {type(outgoing).__name__}")
    w_in = incoming.weight.detach().double().numpy()
    b_in = (incoming.bias.detach().double().numpy() if incoming.bias is not None else np.zeros(w_in.shape[0]))
    return w_in, b_in, outgoing.weight.detach().double().numpy()


def weight_statistic_ablation(task: Any, layer: str | None, k: int, mode: str, statistic: str) -> MethodOutput:
    """Score the units at ``layer`` by ``statistic`` of their weights and ablate the top ``k``.

    ``statistic``: ``bias`` (``|b_in|``), ``norm`` (``||w_in||``) or ``gain`` (``||w_in|| ||w_out||``, the largest
    logit movement per unit of input along the unit's direction).
    """
    model = task.model
    point = resolve_layer(model, layer)
    if point == "input":
        raise ValueError("weight-statistic controls score hidden units; the subject has no hidden point")
    w_in, b_in, w_out = unit_weights(model, point)
    if statistic == "bias":
        scores = np.abs(b_in)
    elif statistic == "norm":
        scores = np.linalg.norm(w_in, axis=1)
    elif statistic == "gain":
        scores = np.linalg.norm(w_in, axis=1) * np.linalg.norm(w_out, axis=0)
    else:
        raise ValueError(f"statistic must be one of bias, norm, gain; got {statistic!r}")
    mean = train_mean(task, model, point) if mode == "mean" else None
    return ablate_top_units(task, model, point, scores, k, mode, mean=mean)


class WeightStatisticControl(Method):
    """The shared body of the weight-statistic localization controls: each subclass names only its
    ``statistic`` (a key of `weight_statistic_ablation`), its ``name`` and its docstring."""

    version = "1"
    family = "editing"
    access = frozenset({"pooled", "internals"})
    outputs = frozenset({"edit"})
    control = True
    search_space = {"k": Choice((1, 2, 4, 8, 16)), "mode": Choice(("zero", "mean"))}
    statistic: str

    def __init__(self, *, k: int = 2, mode: str = "mean", layer: str | None = None,
                 random_state: int | None = None):
        self.k = k
        self.mode = mode
        self.layer = layer
        self.random_state = random_state

    def run(self, task: Any) -> MethodOutput:
        return weight_statistic_ablation(task, self.layer, self.k, self.mode, self.statistic)
