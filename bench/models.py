"""Subject-model architectures and small torch helpers shared by the harness and the methods.

Every model maps float32 inputs of shape (n, d) to logits of shape (n,) and is a plain
``nn.Sequential`` (``cowbench.surgery`` names its hook points). ``linear`` and ``mlp`` start with an
``nn.Linear``, so input-level edits fold into it; ``cnn`` (for the image rendering) starts by unflattening
the input to a square picture; ``planted`` networks are not initialised here but built, weights set by
construction, from their scenario (`cowbench.planted`).
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator

import numpy as np
import torch
from torch import nn

ARCHS = ("linear", "mlp", "cnn", "planted")
CNN_CHANNELS = 4  # few channels and one pooling step: a cow_image subject trains in seconds on one core


def _cnn(d_in: int, hidden: int) -> nn.Sequential:
    """``Unflatten -> Conv2d(1, 4, 4, stride 4) -> ReLU -> MaxPool2d(2, stride 1) -> Flatten -> Linear -> ReLU ->
    Linear -> Flatten(0)``.

    The input is a flattened square greyscale picture (the image rendering: 16 x 16); hook points are
    ``hidden.0`` (the convolution's feature maps, 4 x 4 x 4 on 16 x 16 pictures, flattened channel-major) and
    ``hidden.1`` (the dense layer). Non-overlapping 4 x 4 patches keep training cheap: on cow_image (300
    epochs, one core) it took 0.4 times the MLP's time, where a stride-2 convolution took 2 times and a
    stride-1 one 9 times, at the same accuracy (test_id 0.87 vs the MLP's 0.85).
    """
    side = math.isqrt(d_in)
    if side * side != d_in or side < 8:
        raise ValueError(f"arch 'cnn' needs square pictures of side >= 8 flattened to side*side inputs (the image "
                         f"rendering), got {d_in} inputs")
    pooled = CNN_CHANNELS * (side // 4 - 1) ** 2
    return nn.Sequential(nn.Unflatten(1, (1, side, side)), nn.Conv2d(1, CNN_CHANNELS, 4, stride=4), nn.ReLU(),
                         nn.MaxPool2d(2, stride=1), nn.Flatten(), nn.Linear(pooled, hidden), nn.ReLU(),
                         nn.Linear(hidden, 1), nn.Flatten(0))


def build_model(arch: str, d_in: int, *, hidden: int = 32, seed: int = 0) -> nn.Sequential:
    """A freshly initialised model; the initialisation depends only on ``seed``."""
    if arch not in ARCHS:
        raise ValueError(f"unknown architecture {arch!r}; allowed: {', '.join(ARCHS)}")
    if arch == "planted":
        raise ValueError("arch 'planted' is not initialised: its weights are set from its scenario "
                         "(cowbench.planted.build_planted)")
    if hidden < 1:
        raise ValueError(f"hidden must be a positive integer, got {hidden}")
    with torch.random.fork_rng(devices=[]):  # keep the caller's global torch RNG untouched
        torch.manual_seed(seed)
        if arch == "linear":
            return nn.Sequential(nn.Linear(d_in, 1), nn.Flatten(0))
        if arch == "cnn":
            return _cnn(d_in, hidden)
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


class ColumnOrder(nn.Module):
    """``forward(x) = inner(x[:, index])``: ``inner`` fed its input columns from another order.

    The unblinder wraps an edited model with it (the method worked in shown columns; the scorer passes real
    ones). Row-independent by construction: it only reorders columns.
    """

    def __init__(self, inner: nn.Module, index: np.ndarray):
        super().__init__()
        self.inner = inner
        self.register_buffer("index", torch.as_tensor(np.asarray(index, dtype=np.int64)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.inner(x[:, self.index])
