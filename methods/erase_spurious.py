"""Remove the spurious variable's input direction from the subject model's first layer."""

from __future__ import annotations

import numpy as np
import torch

from cowbench.access import Task
from cowbench.method import Method, MethodOutput, register_method
from cowbench.models import first_linear


@register_method
class EraseSpurious(Method):
    """Mean-ablate the edit target's input direction, found with a linear probe on concept labels.

    On the labelled subset, a multi-output least-squares probe ``x - mean(x) ~ (c - mean(c)) B``
    (c = every observed variable) gives each variable's input direction ``d_v`` (a row of ``B``, shape
    (d,)); the rows of ``pinv(B)`` give read-out directions ``u_v`` with ``u_v . d_w = 1[v = w]``. The
    edit replaces the target's coordinate by its mean, ``x -> x - d_s u_s'(x - mu)``, folded into the
    first layer: ``W' = W P``, ``b' = b + W (I - P) mu`` with ``P = I - d_s u_s'``. On an identity
    rendering this is "zero out C" with the mean moved into the bias; the other variables' directions
    are kept exactly (``P d_v = d_v``). The model is not retrained, so weights co-adapted with the
    spurious input stay as they are (catalog §5.15 (f)).

    Parameters
    ----------
    ridge : float
        Ridge added to the probe's normal equations, relative to their trace (numerical safety).
    random_state : int, optional
        Unused (deterministic); kept for the common interface.

    References
    ----------
    Belrose, N., Schneider-Joseph, D., Ravfogel, S., Cotterell, R., Raff, E. & Biderman, S. (2023).
    LEACE: perfect linear concept erasure in closed form. NeurIPS, arXiv:2306.03819 (affine erasure
    folded into the next layer).
    Ravfogel, S., Elazar, Y., Gonen, H., Twiton, M. & Goldberg, Y. (2020). Null it out: guarding
    protected attributes by iterative nullspace projection. ACL, arXiv:2004.07667.
    """

    name = "erase_spurious"
    version = "1"
    family = "editing"
    access = frozenset({"pooled", "concept", "internals"})
    outputs = frozenset({"edit"})

    def __init__(self, *, ridge: float = 1e-8, random_state: int | None = None):
        self.ridge = ridge
        self.random_state = random_state

    def run(self, task: Task) -> MethodOutput:
        concepts = task.concepts  # (n_c, k) DataFrame over observed variables
        targets = task.edit_target
        c = concepts.to_numpy(dtype=np.float64)
        x = np.asarray(task.concept_x, dtype=np.float64)  # (n_c, d)
        mu = x.mean(0)
        cc, xc = c - c.mean(0), x - mu
        gram = cc.T @ cc
        gram += self.ridge * np.trace(gram) / len(gram) * np.eye(len(gram))
        directions = np.linalg.solve(gram, cc.T @ xc)  # B, (k, d): row v = input direction of v
        readout = np.linalg.pinv(directions)  # (d, k): column v reads v's coordinate
        cols = [list(concepts.columns).index(t) for t in targets]
        removal = directions[cols].T @ readout[:, cols].T  # (d, d) = sum_s d_s u_s'
        keep = np.eye(x.shape[1]) - removal  # P

        model = task.model  # a private copy
        layer = first_linear(model)
        with torch.no_grad():
            w = layer.weight.double()  # (h, d)
            new_bias = layer.bias.double() + w @ torch.from_numpy(removal @ mu)
            layer.weight.copy_((w @ torch.from_numpy(keep)).to(layer.weight.dtype))
            layer.bias.copy_(new_bias.to(layer.bias.dtype))
        return MethodOutput(edited=model, details={"targets": targets,
                                                   "directions": {t: directions[i].tolist()
                                                                  for t, i in zip(targets, cols, strict=True)}})
