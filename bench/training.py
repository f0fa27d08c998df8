"""Empirical-risk training: the one loop the subject, the oracle and retraining methods use.

Training runs in float64 and the model is handed back in float32. Why: full-batch Adam on an MLP is
chaotic in its rounding errors (a one-ulp change of a float32 input moves trained MLP weights by up to
0.015), and float32 matrix products and reductions round differently on CPUs with different vector
widths (MKL and ATen pick AVX512, AVX2 or SSE kernels at run time). In float64 the same kernel
differences are ~1e-16 and stay far below float32 resolution after the same amplification, so the
float32 weights returned agree across x86 CPUs (see ``docs/reproducibility.md``).
"""

from __future__ import annotations

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
        with torch_threads(1):
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
