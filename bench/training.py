"""Empirical-risk training: the one loop the subject, the oracle and retraining methods use."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

LOSSES = ("logistic", "squared")


def fit_logit_model(model: nn.Module, x: np.ndarray, y: np.ndarray, *, weights: np.ndarray | None = None,
                    epochs: int = 300, lr: float = 0.02, weight_decay: float = 0.0,
                    loss: str = "logistic") -> nn.Module:
    """Full-batch Adam on the (weighted) mean loss; deterministic on CPU, in place.

    ``loss`` is ``logistic`` for a binary label (the output is a logit) or ``squared`` for a
    continuous one (the output is the prediction).

    Full batches keep training independent of any data-order randomness, so the result depends only on
    the model's initialisation and the data.
    """
    xt = torch.tensor(np.asarray(x, dtype=np.float32))  # (n, d); a copy: inputs may be read-only
    yt = torch.tensor(np.asarray(y, dtype=np.float32))  # (n,)
    if weights is None:
        wt = torch.full_like(yt, 1.0 / len(yt))
    else:
        w = np.asarray(weights, dtype=np.float64)
        if w.shape != yt.shape or np.any(w < 0) or not np.isfinite(w).all() or w.sum() <= 0:
            raise ValueError("weights must be finite, non-negative, of shape (n,), with a positive sum")
        wt = torch.as_tensor((w / w.sum()).astype(np.float32))
    opt = torch.optim.Adam(model.parameters(), lr=lr, weight_decay=weight_decay)
    if loss not in LOSSES:
        raise ValueError(f"unknown loss {loss!r}; allowed: {', '.join(LOSSES)}")
    loss_fn = nn.BCEWithLogitsLoss(reduction="none") if loss == "logistic" else nn.MSELoss(reduction="none")
    model.train()
    for _ in range(epochs):
        opt.zero_grad()
        objective = (loss_fn(model(xt), yt) * wt).sum()
        objective.backward()
        opt.step()
    model.eval()
    return model
