"""Model surgery: named hook points, activations at a hook point, and edited copies with a function inserted.

One interface over every subject architecture (linear, mlp, cnn, planted), in the spirit of
TransformerLens' hook points, so that an edit method is one screen that never touches another's code.
Every subject model is an ``nn.Sequential`` from inputs ``(n, d)`` to outputs ``(n,)``; its hook points are

- ``"input"``: the model's input, ``(n, d)``;
- ``"hidden.K.pre"``: the output of the K-th weight layer (``nn.Linear`` / ``nn.Conv2d``) that feeds a
  nonlinearity, before it;
- ``"hidden.K"``: the output of the K-th nonlinearity (what the next weight layer reads);
- ``"logit"``: the model's output, ``(n,)``.

Activations are always handed out flattened to ``(n, width)`` (a convolutional map ``(n, C, H, W)`` becomes
``(n, C*H*W)``, unit ``c*H*W + i*W + j``), and a function inserted at a hook point receives and returns that
flattened tensor, so methods are written once for every architecture. Inserted functions are modules
(`AffineHook` with buffers, or `LambdaHook`), placed after any hook already at that point, so edits compose.
"""

from __future__ import annotations

import copy
from collections.abc import Callable

import numpy as np
import torch
from torch import nn

_WEIGHT_LAYERS = (nn.Linear, nn.Conv2d)
_NONLINEAR = (nn.ReLU, nn.GELU, nn.Tanh, nn.Sigmoid, nn.LeakyReLU, nn.SiLU)


class Hook(nn.Module):
    """Base of inserted functions: flattens to ``(n, width)``, applies `edit`, restores the shape."""

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        flat = h.reshape(h.shape[0], -1) if h.dim() > 1 else h.reshape(-1, 1)
        out = self.edit(flat)
        return out.reshape(h.shape)

    def edit(self, h: torch.Tensor) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError


class AffineHook(Hook):
    """``h -> h @ weight.T + bias`` (weight ``(w, w)``, bias ``(w,)``): projections, erasures, ablations."""

    def __init__(self, weight: np.ndarray | torch.Tensor, bias: np.ndarray | torch.Tensor | None = None):
        super().__init__()
        w = torch.as_tensor(np.asarray(weight, dtype=np.float64)).float()
        if w.dim() != 2 or w.shape[0] != w.shape[1]:
            raise ValueError(f"AffineHook weight must be square (width, width), got shape {tuple(w.shape)}")
        b = torch.zeros(w.shape[0]) if bias is None else torch.as_tensor(np.asarray(bias, dtype=np.float64)).float()
        if b.shape != (w.shape[0],):
            raise ValueError(f"AffineHook bias must have shape ({w.shape[0]},), got {tuple(b.shape)}")
        self.register_buffer("weight", w)
        self.register_buffer("bias", b)

    def edit(self, h: torch.Tensor) -> torch.Tensor:
        if h.shape[1] != self.weight.shape[0]:
            raise ValueError(f"hook expects width {self.weight.shape[0]}, the activation has width {h.shape[1]}")
        return h @ self.weight.T + self.bias


class LambdaHook(Hook):
    """Any function ``(n, width) tensor -> (n, width) tensor`` (not serialisable: prefer `AffineHook`)."""

    def __init__(self, fn: Callable[[torch.Tensor], torch.Tensor]):
        super().__init__()
        self.fn = fn

    def edit(self, h: torch.Tensor) -> torch.Tensor:
        return self.fn(h)


def _check_sequential(model: nn.Module) -> nn.Sequential:
    if not isinstance(model, nn.Sequential):
        raise TypeError(f"model surgery needs an nn.Sequential subject model, got {type(model).__name__}")
    return model


def hook_points(model: nn.Module) -> dict[str, int]:
    """Hook point name -> index of the module whose output it is (``-1``: the input).

    Inserted `Hook` modules are transparent: a point's index is that of the last hook placed after it.
    """
    seq = _check_sequential(model)
    points: dict[str, int] = {"input": -1}
    modules = list(seq)
    k = 0
    for i, module in enumerate(modules):
        if isinstance(module, Hook):  # the point just before it now reads after the hook
            points = {name: (i if idx == i - 1 else idx) for name, idx in points.items()}
            continue
        if isinstance(module, _WEIGHT_LAYERS):
            following = next((m for m in modules[i + 1:] if not isinstance(m, Hook)), None)
            if isinstance(following, _NONLINEAR):
                points[f"hidden.{k}.pre"] = i
        elif isinstance(module, _NONLINEAR):
            points[f"hidden.{k}"] = i
            k += 1
    points["logit"] = len(modules) - 1
    return points


def _index(model: nn.Module, point: str) -> int:
    points = hook_points(model)
    if point not in points:
        raise ValueError(f"unknown hook point {point!r}; this model has: {', '.join(points)}")
    return points[point]


def hidden_points(model: nn.Module) -> list[str]:
    """The post-nonlinearity hook points, first to last (``hidden.0``, ``hidden.1``, ...)."""
    return [p for p in hook_points(model) if p.startswith("hidden.") and not p.endswith(".pre")]


def activations(model: nn.Module, point: str, x: np.ndarray) -> np.ndarray:
    """Activations at ``point`` for inputs ``x`` ``(n, d)``, flattened to ``(n, width)``, float64."""
    seq = _check_sequential(model)
    idx = _index(seq, point)
    h = torch.tensor(np.asarray(x, dtype=np.float32))  # a copy: x may be read-only
    was_training = seq.training
    seq.eval()
    with torch.no_grad():
        for module in list(seq)[: idx + 1]:
            h = module(h)
    seq.train(was_training)
    return h.reshape(h.shape[0], -1).double().numpy() if h.dim() > 1 else h.reshape(-1, 1).double().numpy()


def forward_from(model: nn.Module, point: str, h: torch.Tensor, shape: tuple[int, ...] | None = None) -> torch.Tensor:
    """Run the rest of the model from activations ``h`` ``(n, width)`` at ``point`` (with gradients).

    ``shape`` is the per-example shape of the activation when it is not flat (convolutional maps);
    `activation_shape` gives it.
    """
    seq = _check_sequential(model)
    idx = _index(seq, point)
    if shape is not None:
        h = h.reshape((h.shape[0], *shape))
    for module in list(seq)[idx + 1:]:
        h = module(h)
    return h


def forward_to(model: nn.Module, point: str, x: torch.Tensor) -> torch.Tensor:
    """Activations at ``point`` for a torch batch, flattened to ``(n, width)``, with gradients."""
    seq = _check_sequential(model)
    idx = _index(seq, point)
    h = x
    for module in list(seq)[: idx + 1]:
        h = module(h)
    return h.reshape(h.shape[0], -1) if h.dim() > 1 else h.reshape(-1, 1)


def activation_shape(model: nn.Module, point: str, x: np.ndarray) -> tuple[int, ...]:
    """Per-example shape of the (unflattened) activation at ``point``."""
    seq = _check_sequential(model)
    idx = _index(seq, point)
    h = torch.tensor(np.asarray(x[:1], dtype=np.float32))
    with torch.no_grad():
        for module in list(seq)[: idx + 1]:
            h = module(h)
    return tuple(h.shape[1:])


def with_hook(model: nn.Module, point: str, hook: Hook | Callable[[torch.Tensor], torch.Tensor]) -> nn.Sequential:
    """A deep copy of ``model`` with ``hook`` applied at ``point`` (the original is untouched)."""
    seq = _check_sequential(model)
    idx = _index(seq, point)
    if not isinstance(hook, Hook):
        hook = LambdaHook(hook)
    modules = [copy.deepcopy(m) for m in seq]
    if point == "logit":
        raise ValueError("hook point 'logit' is read-only: edit an earlier point")
    edited = nn.Sequential(*modules[: idx + 1], hook, *modules[idx + 1:])
    edited.train(seq.training)
    return edited


def reader(model: nn.Module, point: str) -> nn.Module:
    """The weight layer that reads ``point`` (the next ``nn.Linear``/``nn.Conv2d``): where rank-one edits go."""
    seq = _check_sequential(model)
    idx = _index(seq, point)
    for module in list(seq)[idx + 1:]:
        if isinstance(module, _WEIGHT_LAYERS):
            return module
    raise ValueError(f"no weight layer reads hook point {point!r}")


def orthonormal_basis(basis: np.ndarray, *, tol: float = 1e-10) -> np.ndarray:
    """An orthonormal basis ``(width, r)`` of the column span of ``basis`` ``(width, k)``, numerical rank kept (SVD)."""
    b = np.asarray(basis, dtype=np.float64)
    if b.ndim == 1:
        b = b[:, None]
    u, s, _ = np.linalg.svd(b, full_matrices=False)
    return u[:, s > tol * max(1.0, float(s.max(initial=0.0)))]


def projection_hook(basis: np.ndarray, mean: np.ndarray | None = None) -> AffineHook:
    """Remove the span of ``basis`` ``(width, k)``: ``h -> h - Q Q'(h - mean)`` (``mean=None``: zero-ablation).

    With ``mean`` the removed coordinates are set to their mean (mean-ablation); ``Q`` is an orthonormal basis
    of ``basis``'s columns.
    """
    q = orthonormal_basis(basis)
    width = q.shape[0]
    remove = q @ q.T
    bias = np.zeros(width) if mean is None else remove @ np.asarray(mean, dtype=np.float64)
    return AffineHook(np.eye(width) - remove, bias)


def unit_hook(width: int, units: list[int] | np.ndarray, values: np.ndarray | float = 0.0) -> AffineHook:
    """Set ``units`` to fixed ``values`` (0: zero-ablation; their mean: mean-ablation)."""
    units = np.asarray(units, dtype=int)
    if units.size and (units.min() < 0 or units.max() >= width):
        raise ValueError(f"unit indices must lie in [0, {width}), got {units.tolist()}")
    w = np.eye(width)
    w[units, units] = 0.0
    bias = np.zeros(width)
    bias[units] = np.broadcast_to(np.asarray(values, dtype=np.float64), units.shape)
    return AffineHook(w, bias)
