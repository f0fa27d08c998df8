"""Subject-model architectures and small torch helpers shared by the harness and the methods.

Every model maps float32 inputs of shape (n, d) to logits of shape (n,) and is a plain
``nn.Sequential`` whose first module is an ``nn.Linear``, so input-level edits fold into it.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import numpy as np
import torch
from torch import nn

ARCHS = ("linear", "mlp")


def build_model(arch: str, d_in: int, *, hidden: int = 32, seed: int = 0) -> nn.Sequential:
    """A freshly initialised model; the initialisation depends only on ``seed``."""
    if arch not in ARCHS:
        raise ValueError(f"unknown architecture {arch!r}; allowed: {', '.join(ARCHS)}")
    if hidden < 1:
        raise ValueError(f"hidden must be a positive integer, got {hidden}")
    with torch.random.fork_rng(devices=[]):  # keep the caller's global torch RNG untouched
        torch.manual_seed(seed)
        if arch == "linear":
            return nn.Sequential(nn.Linear(d_in, 1), nn.Flatten(0))
        return nn.Sequential(nn.Linear(d_in, hidden), nn.ReLU(), nn.Linear(hidden, 1), nn.Flatten(0))


def first_linear(model: nn.Module) -> nn.Linear:
    """The first ``nn.Linear`` of a model: where input-level edits go."""
    for module in model.modules():
        if isinstance(module, nn.Linear):
            return module
    raise ValueError("the model has no nn.Linear layer")


def logits(model: nn.Module, x: np.ndarray) -> np.ndarray:
    """Logits of ``model`` on numpy inputs, float64, shape (n,)."""
    was_training = model.training
    model.eval()
    with torch.no_grad():
        out = model(torch.tensor(np.asarray(x, dtype=np.float32)))
    model.train(was_training)
    return out.reshape(-1).double().numpy()


def accuracy(model: nn.Module, x: np.ndarray, y: np.ndarray) -> float:
    return float(np.mean((logits(model, x) > 0) == (np.asarray(y) == 1)))


@contextlib.contextmanager
def torch_threads(n: int = 1) -> Iterator[None]:
    """Run torch with ``n`` intra-op threads, restoring the previous setting afterwards."""
    previous = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(previous)
