"""Empirical-risk training: the one loop the subject, the oracle and retraining methods use.

Training runs in float64 and the model is handed back in float32. Why: full-batch Adam on an MLP is
chaotic in its rounding errors (a one-ulp change of a float32 input moves trained MLP weights by up to
0.015), and float32 matrix products and reductions round differently on CPUs with different vector
widths (MKL and ATen pick AVX512, AVX2 or SSE kernels at run time). In float64 the same kernel
differences are ~1e-16 and stay far below float32 resolution after the same amplification, so the
float32 weights returned agree across x86 CPUs (see ``docs/reproducibility.md``).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import numpy as np
import torch
from torch import nn

from cowbench.models import torch_threads

LOSSES = ("logistic", "squared")


def fit_logit_model(model: nn.Module, x: np.ndarray, y: np.ndarray, *, weights: np.ndarray | None = None,
                    epochs: int = 300, lr: float = 0.02, weight_decay: float = 0.0,
                    loss: str = "logistic") -> nn.Module:
    """Full-batch Adam on the (weighted) mean loss, in float64; deterministic on CPU, in place.

    Parameters
    ----------
    model : nn.Module
        The model to train (float32 parameters, as `cowbench.models.build_model` makes them). It is
        trained in float64 and converted back to float32 once, at the end.
    x, y : np.ndarray
        Inputs (n, d) and labels (n,).
    weights : np.ndarray, optional
        Non-negative per-unit weights (normalised to sum 1); uniform when absent.
    epochs, lr, weight_decay : int, float, float
        Adam's settings.
    loss : str
        ``logistic`` for a binary label (the output is a logit) or ``squared`` for a continuous one
        (the output is the prediction).

    Returns
    -------
    nn.Module
        ``model`` itself, trained, in eval mode, with float32 parameters.

    Notes
    -----
    Full batches keep training independent of any data-order randomness, so the result depends only on
    the model's initialisation and the data.
    """
    if loss not in LOSSES:
        raise ValueError(f"unknown loss {loss!r}; allowed: {', '.join(LOSSES)}")
    xt = torch.tensor(np.asarray(x, dtype=np.float64))  # (n, d); a copy: inputs may be read-only
    yt = torch.tensor(np.asarray(y, dtype=np.float64))  # (n,)
    if weights is None:
        wt = torch.full_like(yt, 1.0 / len(yt))
    else:
        w = np.asarray(weights, dtype=np.float64)
        if w.shape != yt.shape or np.any(w < 0) or not np.isfinite(w).all() or w.sum() <= 0:
            raise ValueError("weights must be finite, non-negative, of shape (n,), with a positive sum")
        wt = torch.as_tensor(w / w.sum())
    loss_fn = nn.BCEWithLogitsLoss(reduction="none") if loss == "logistic" else nn.MSELoss(reduction="none")
    model.double()
    # one thread, as in the harness's workers: the split of a reduction across threads changes its rounding
    # (so the weights would depend on the caller's thread count), and these small problems run fastest so
    try:
        with torch_threads(1), mask_relu_grad(model):
            opt = torch.optim.Adam(model.parameters(), lr=lr, weight_decay=weight_decay)
            model.train()
            for _ in range(epochs):
                opt.zero_grad()
                objective = (loss_fn(model(xt), yt) * wt).sum()
                objective.backward()
                opt.step()
    finally:  # callers feed float32 inputs, whatever happened here
        model.float()
        model.eval()
    return model


class _MaskReLU(torch.autograd.Function):
    """ReLU whose backward multiplies the incoming gradient by a 0/1 mask saved in the forward pass.

    The gradient is ATen's own, bit for bit: ``threshold_backward`` passes ``grad`` where the output is positive
    and writes 0 elsewhere, and ``grad * 1`` is ``grad`` exactly (``grad * 0`` can be ``-0.0``, which adds like
    ``0.0`` in every later sum and Adam step). Why: with the x86-64 baseline kernels the harness pins
    (`cowbench.determinism`), ``threshold_backward`` is a scalar loop, about 10 times a vectorised multiply;
    on the default 4 -> 32 -> 1 MLP it was a third of a full-batch step. Differentiable again (IRMv1's penalty
    differentiates a gradient): the backward is made of tensor operations.
    """

    @staticmethod
    def forward(ctx, x: torch.Tensor) -> torch.Tensor:
        mask = (x > 0).to(x.dtype)
        ctx.save_for_backward(mask)
        return torch.relu(x)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        (mask,) = ctx.saved_tensors
        return grad * mask


def masked_relu(x: torch.Tensor) -> torch.Tensor:
    """``torch.relu(x)``, back-propagated through `_MaskReLU` when autograd records (the same gradient, bit for bit)."""
    return _MaskReLU.apply(x) if torch.is_grad_enabled() else torch.relu(x)


class _MaskReLUModule(nn.ReLU):
    """``nn.ReLU`` with `_MaskReLU`'s backward; only ever a training loop's temporary class (`mask_relu_grad`)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return masked_relu(x)


@contextlib.contextmanager
def mask_relu_grad(model: nn.Module) -> Iterator[nn.Module]:
    """Within the block, every (not in-place) ``nn.ReLU`` of ``model`` back-propagates through `_MaskReLU`.

    The modules keep their identity, hooks and ``isinstance(m, nn.ReLU)`` (a subclass stands in for the class for
    the block's duration), so hook points and surgery see the same model; the class is put back on exit, so the
    trained model that leaves the loop is a plain ``nn.ReLU`` model (its pickle names no cowbench class).
    """
    swapped = [m for m in model.modules() if type(m) is nn.ReLU and not m.inplace]
    for module in swapped:
        module.__class__ = _MaskReLUModule
    try:
        yield model
    finally:
        for module in swapped:
            module.__class__ = nn.ReLU
