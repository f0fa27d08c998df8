"""Helpers shared by the fine-tuning and counterfactual edit methods (not a method: the registry skips it).

- `factual_targets` and `counterfactual_do`: the edit target's values on the training units and a
  counterfactual assignment of them (flipped if binary, permuted if continuous), for counterfactual access.
- `finetune`: full-batch Adam on a private copy of the subject, in float64 as `cowbench.training` trains
  it (so the edited weights do not depend on the CPU's vector width), with an optional penalty term.

The hook-point helpers of internals edits (``resolve_layer``, ...) live in ``methods/_internals.py``.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
from torch import nn

from cowbench.models import torch_threads
from cowbench.training import mask_relu_grad


def factual_targets(task, targets: list[str], split: str = "train") -> dict[str, np.ndarray]:
    """The targets' factual values on ``split``'s units (an empty intervention returns them), float64."""
    concepts = task.intervene({}, split).concepts
    return {t: concepts[t].to_numpy(dtype=np.float64) for t in targets}


def counterfactual_do(task, factual: dict[str, np.ndarray], rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Per unit, another value of each target: ``1 - v`` for a binary one (the minimal edit: every unit is then
    seen with both values), a random permutation of its own values for a continuous one (same marginal, no
    association with anything)."""
    kinds = task.variable_kinds
    return {t: (1.0 - v) if kinds[t] == "binary" else rng.permutation(v) for t, v in factual.items()}


def loss_function(label_kind: str) -> nn.Module:
    """Per-unit loss matching the subject's training: logistic for a binary label, squared otherwise."""
    return nn.BCEWithLogitsLoss(reduction="none") if label_kind == "binary" else nn.MSELoss(reduction="none")


def finetune(model: nn.Module, x: np.ndarray, y: np.ndarray, *, label_kind: str, epochs: int, lr: float,
             penalty: Callable[[nn.Module], torch.Tensor] | None = None) -> nn.Module:
    """Fine-tune ``model`` in place: full-batch Adam on the mean loss plus ``penalty(model)``.

    Runs in float64 on one thread (as the subject was trained) and hands the model back in float32, eval
    mode. ``penalty`` is called once per step on the float64 model and may close over float64 tensors made
    with `as_double`.
    """
    xt, yt = as_double(x), as_double(y)
    loss_fn = loss_function(label_kind)
    model.double()
    try:
        with torch_threads(1), mask_relu_grad(model):
            opt = torch.optim.Adam(model.parameters(), lr=lr)
            model.train()
            for _ in range(epochs):
                opt.zero_grad()
                objective = loss_fn(model(xt), yt).mean()
                if penalty is not None:
                    objective = objective + penalty(model)
                objective.backward()
                opt.step()
    finally:  # callers feed float32 inputs, whatever happened here
        model.float()
        model.eval()
    return model


def as_double(a: np.ndarray) -> torch.Tensor:
    """A float64 torch copy of a (possibly read-only) array."""
    return torch.tensor(np.asarray(a, dtype=np.float64))
