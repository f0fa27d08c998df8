"""Rank-one editing (ROME-style) of the weight layer that reads a hook point."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from cowbench import surgery
from cowbench.access import Task
from cowbench.method import LogUniform, Method, MethodOutput, register_method
from cowbench.methods._common import concept_directions
from cowbench.methods._internals import concept_activations, localized, resolve_layer


def rome_projection(keys: np.ndarray, cov: np.ndarray, *, ridge: float) -> np.ndarray:
    """``K U'`` (w, w) with ``U' = (K' C^-1 K)^-1 K' C^-1``: the weight change ``W -> W (I - K U')`` sends every
    key to 0 (``W' K = 0``) with the least change ``||(W' - W) K_other||`` weighted by the key covariance ``C``.

    ``keys`` is (w, m); ``C`` gets a ridge of ``ridge * trace(C) / w`` (dead units make it singular).
    """
    w = cov.shape[0]
    c = cov + ridge * max(float(np.trace(cov)), 1e-300) / w * np.eye(w)
    cinv_k = np.linalg.solve(c, keys)  # C^-1 K, (w, m)
    u_t = np.linalg.solve(keys.T @ cinv_k, cinv_k.T)  # (m, w)
    return keys @ u_t


@register_method
class RankOneEdit(Method):
    """Update the weight layer reading a hook point so that the edit target's direction there maps to nothing.

    The key ``k`` is the target's direction at ``layer``: the row of the joint least-squares decoder
    ``h - mean(h) ~ (c - mean(c)) B`` over every observed concept (how the activations move per unit of the
    target with the other concepts held). The value is 0: the reading layer's output must no longer move
    along ``k``. ROME's closed form (Meng et al. 2022, eq. 2) with value ``v* = 0`` and the key covariance
    ``C`` of the training activations (centred: the mean is moved into the bias, so the edit does not change
    the output at the mean activation) gives ``W' = W - W k (C^-1 k)' / (k' C^-1 k)`` and
    ``b' = b + W k (C^-1 k)' mu / (k' C^-1 k)``; several targets use the multi-key form of MEMIT. It is the
    same as inserting ``h -> h - k u'(h - mu)`` before the layer; when the key is ``Sigma_hz`` instead of the
    decoder row it is exactly LEACE. Written into the reading ``nn.Linear`` where it reads ``layer``
    directly; otherwise (convolutions, pre-activation points) inserted as that affine hook.
    Known behaviour (measured): preserving the outputs on the other keys in the covariance metric moves the
    target's predictive weight onto the keys correlated with it (the causes), as omitting a regressor does:
    grass's reliance goes (``residual_spurious`` 0.05 on the default cow) while the causes' reliance grows
    (``causal_kept`` about 0.6 on cow and ``planted_mono``).

    Localized: ``subspace`` = the key(s); ``unit_scores`` = ``sum_t |k_t|`` per unit.

    Parameters
    ----------
    ridge : float
        Ridge added to the key covariance, relative to its mean eigenvalue.
    layer : str, optional
        Hook point (`cowbench.surgery`); default ``hidden.0`` where the subject has it, else ``input``.
    random_state : int, optional
        Unused (closed form); kept for the common interface.

    References
    ----------
    Meng, K., Bau, D., Andonian, A. & Belinkov, Y. (2022). Locating and editing factual associations in GPT.
    NeurIPS, arXiv:2202.05262.
    Meng, K., Sen Sharma, A., Andonian, A., Belinkov, Y. & Bau, D. (2023). Mass-editing memory in a
    transformer. ICLR, arXiv:2210.07229 (several keys at once).
    """

    name = "rank_one_edit"
    version = "1"
    family = "editing"
    access = frozenset({"pooled", "concept", "internals"})
    outputs = frozenset({"edit"})
    search_space = {"ridge": LogUniform(1e-6, 1e-1)}

    def __init__(self, *, ridge: float = 1e-4, layer: str | None = None, random_state: int | None = None):
        self.ridge = ridge
        self.layer = layer
        self.random_state = random_state

    def run(self, task: Task) -> MethodOutput:
        model = task.model
        point = resolve_layer(model, self.layer)
        h, c, cols = concept_activations(task, model, point)
        keys = concept_directions(c, h)[cols].T  # (w, m)
        h_train = surgery.activations(model, point, np.array(task.train.x))
        mu = h_train.mean(0)
        cov = np.cov(h_train, rowvar=False, bias=True).reshape(h.shape[1], h.shape[1])
        remove = rome_projection(keys, cov, ridge=float(self.ridge))  # K U'
        layer = surgery.reader(model, point)
        # the reader's weights take the edit only if it reads the point itself (no nonlinearity in between)
        # and has a bias for the mean term
        direct = (isinstance(layer, nn.Linear) and layer.bias is not None and layer.in_features == h.shape[1]
                  and list(model).index(layer) == surgery.hook_points(model)[point] + 1)
        if direct:
            with torch.no_grad():
                w = layer.weight.double()
                r = torch.from_numpy(remove)
                layer.bias.copy_((layer.bias.double() + w @ r @ torch.from_numpy(mu)).to(layer.bias.dtype))
                layer.weight.copy_((w - w @ r).to(layer.weight.dtype))
            edited = model
        else:
            edited = surgery.with_hook(model, point, surgery.AffineHook(np.eye(h.shape[1]) - remove, remove @ mu))
        return MethodOutput(edited=edited, localized=localized(point, unit_scores=np.abs(keys).sum(1), subspace=keys),
                            details={"layer": point, "in_weights": bool(direct)})
