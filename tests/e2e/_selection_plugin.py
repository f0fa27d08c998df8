"""A cheap edit method with a search space, for the selection tests (loaded with ``--plugins``)."""

from __future__ import annotations

import numpy as np

from cowbench.method import LogUniform, Method, MethodOutput, register_method


@register_method
class RidgeLogitEdit(Method):
    """Replace the subject by an L2-logistic regression on the training inputs: ``C`` sets how much it fits.

    References
    ----------
    Test fixture, no paper: Hastie, Tibshirani & Friedman (2009), The Elements of Statistical Learning, 4.4.
    """

    name = "test_ridge_logit_edit"
    family = "robust_training"
    access = frozenset({"pooled"})
    outputs = frozenset({"edit"})
    search_space = {"C": LogUniform(1e-4, 1e2)}

    def __init__(self, *, C: float = 1.0, random_state: int | None = None):
        self.C = C
        self.random_state = random_state

    def run(self, task) -> MethodOutput:
        import torch
        from sklearn.linear_model import LogisticRegression

        fit = LogisticRegression(C=self.C, max_iter=500).fit(np.asarray(task.train.x), np.asarray(task.train.y))
        layer = torch.nn.Linear(fit.coef_.shape[1], 1)
        with torch.no_grad():
            layer.weight.copy_(torch.tensor(fit.coef_, dtype=torch.float32))
            layer.bias.copy_(torch.tensor(fit.intercept_, dtype=torch.float32))
        return MethodOutput(edited=torch.nn.Sequential(layer, torch.nn.Flatten(0)))
