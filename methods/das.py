"""Distributed alignment search: learn the subspace whose interchange moves the target, then mean-ablate it."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn
from torch.nn.utils import parametrizations

from cowbench import surgery
from cowbench.access import Task
from cowbench.method import Choice, Integer, LogUniform, Method, MethodOutput, register_method
from cowbench.methods._edits import factual_targets
from cowbench.methods._internals import clip_count, localized, resolve_layer, train_mean
from cowbench.models import torch_threads


def fit_rotation(model: nn.Module, point: str, h_base: np.ndarray, h_source: np.ndarray, target: np.ndarray, *,
                 k: int, steps: int, lr: float, seed: int, n_init: int = 1,
                 shape: tuple[int, ...] | None = None) -> tuple[np.ndarray, float]:
    """An orthonormal basis ``Q`` (width, k) minimising ``mean (f(h_b + (h_s - h_b) Q Q') - target)^2``, and
    that loss.

    ``f`` runs the rest of ``model`` from ``point`` (frozen, float64); ``Q`` is the first ``k`` rows of an
    orthogonal matrix kept orthogonal by ``torch.nn.utils.parametrizations.orthogonal`` (Cayley map), started from a
    uniformly random rotation. The objective is not convex (a mixture of causes that cancels on average is
    a local minimum), so ``n_init`` starts are run and the one with the lowest final loss is kept. ``shape``:
    the per-example shape of a convolutional activation (`cowbench.surgery.activation_shape`).
    """
    width = h_base.shape[1]
    frozen = _frozen_double(model)
    generator = torch.Generator().manual_seed(int(seed))
    hb, hs = torch.as_tensor(h_base), torch.as_tensor(h_source)
    tt = torch.as_tensor(target)

    def loss_of(rows: torch.Tensor) -> torch.Tensor:
        swapped = hb + ((hs - hb) @ rows.T) @ rows  # interchange of the k rotated coordinates
        return ((surgery.forward_from(frozen, point, swapped, shape).reshape(-1) - tt) ** 2).mean()

    best: tuple[np.ndarray, float] | None = None
    for _ in range(max(1, int(n_init))):
        rotation = nn.Linear(width, width, bias=False).double()
        with torch.no_grad():
            q, r = torch.linalg.qr(torch.randn(width, width, generator=generator, dtype=torch.float64))
            rotation.weight.copy_(q * torch.sign(torch.diagonal(r)))  # signs fixed: a uniform (Haar) rotation
        parametrizations.orthogonal(rotation, orthogonal_map="cayley")
        with torch_threads(1):
            opt = torch.optim.Adam(rotation.parameters(), lr=lr)
            for _ in range(steps):
                opt.zero_grad()
                loss_of(rotation.weight[:k]).backward()
                opt.step()
            with torch.no_grad():
                rows = rotation.weight[:k]
                found = (rows.T.double().numpy().copy(), float(loss_of(rows)))
        if best is None or found[1] < best[1]:
            best = found
    return best


def _frozen_double(model: nn.Module) -> nn.Module:
    import copy

    frozen = copy.deepcopy(model).double().eval()
    for p in frozen.parameters():
        p.requires_grad_(False)
    return frozen


@register_method
class DAS(Method):
    """Find a ``k``-dimensional subspace at ``layer`` that carries the edit target by interchange interventions,
    then mean-ablate it.

    Base units are the training units; each base ``i`` is paired with a source unit ``j = pi(i)`` (a random
    permutation). The counterfactual target is the subject's own logit on unit ``i`` with the edit targets
    set to unit ``j``'s values, ``f(x_i | do(target = target_j))``, obtained from ``task.intervene`` (same
    exogenous noise). An orthogonal rotation ``R`` is learnt so that overwriting the first ``k`` rotated
    coordinates of the base's activation with the source's reproduces that output: where the pair agrees on
    the target the swap must change nothing (so the subspace may not carry the causes), where it differs the
    swap must carry the change. The edit replaces the found subspace by its training mean
    (`cowbench.surgery.projection_hook`); ``localized`` reports the subspace and, per unit, the norm of its
    loading on it. Under superposition this finds a direction no single unit holds (neuron ablation cannot).
    Fit cost: ``n_init x steps`` full-batch Adam steps on ``n_fit`` pairs through the rest of the network, with
    the orthogonal parametrisation's Cayley map of a ``(width, width)`` matrix per step: about 0.5 s CPU per job
    on ``cow`` (width 32, k = 1, 1000 pairs, 3 x 200 steps, one thread), the whole run included.
    Known failures: a target used nonlinearly (through an interaction) needs more than a linear subspace;
    ``k`` too small misses part of a multi-dimensional representation, too large swallows causes; the
    objective is non-convex (``n_init`` random starts, the lowest loss kept; one start can stall in a mixture of
    causes, as on a linear subject).

    Parameters
    ----------
    layer : str, optional
        Hook point (see `cowbench.surgery`); default ``hidden.0`` where it exists, else ``input``.
    k : int
        Dimension of the aligned subspace (per edit target).
    steps : int
        Full-batch Adam steps (0 keeps the random initial rotation: a random-subspace ablation).
    lr : float
        Adam's learning rate.
    n_fit : int
        Base-source pairs used for the fit (a random subset of the training units).
    n_init : int
        Random starts of the rotation; the one with the lowest interchange loss is kept.
    random_state : int, optional
        Seed of the pairing and of the rotation's initialisation.

    References
    ----------
    Geiger, A., Wu, Z., Potts, C., Icard, T. & Goodman, N. D. (2024). Finding alignments between interpretable
    causal variables and distributed neural representations. CLeaR, arXiv:2303.02536.
    Wu, Z., Geiger, A., Icard, T., Potts, C. & Goodman, N. D. (2023). Interpretability at scale: identifying
    causal mechanisms in Alpaca. NeurIPS, arXiv:2305.08809.
    """

    name = "das"
    version = "1"
    family = "editing"
    access = frozenset({"pooled", "concept", "counterfactual", "internals"})
    outputs = frozenset({"edit"})
    search_space = {"k": Choice((1, 2, 4)), "lr": LogUniform(3e-3, 3e-2), "steps": Choice((100, 200, 400))}
    param_constraints = {"steps": Integer(0)}  # 0 keeps the random initial rotation: a random-subspace control

    def __init__(self, *, layer: str | None = None, k: int = 1, steps: int = 200, lr: float = 0.01,
                 n_fit: int = 1000, n_init: int = 3, random_state: int | None = None):
        self.layer = layer
        self.k = k
        self.steps = steps
        self.lr = lr
        self.n_fit = n_fit
        self.n_init = n_init
        self.random_state = random_state

    def run(self, task: Task) -> MethodOutput:
        targets = task.edit_target
        model = task.model
        point = resolve_layer(model, self.layer)
        seed = 0 if self.random_state is None else int(self.random_state)
        rng = np.random.default_rng(seed)
        x = np.array(task.train.x)
        pairing = rng.permutation(len(x))
        factual = factual_targets(task, targets)
        counterfactual = task.intervene({t: v[pairing] for t, v in factual.items()}, "train")
        rows = np.sort(rng.permutation(len(x))[: min(int(self.n_fit), len(x))])
        h = surgery.activations(model, point, x)
        shape = surgery.activation_shape(model, point, x)  # convolutional maps are handed out flattened
        with torch.no_grad():
            target = surgery.forward_from(_frozen_double(model), point, torch.as_tensor(
                surgery.activations(model, point, np.array(counterfactual.x))), shape).reshape(-1).numpy()
        k = clip_count(self.k * len(targets), h.shape[1])
        basis, loss = fit_rotation(model, point, h[rows], h[pairing[rows]], target[rows], k=k, steps=self.steps,
                                   lr=self.lr, seed=seed, n_init=self.n_init, shape=shape)
        edited = surgery.with_hook(model, point, surgery.projection_hook(basis, mean=train_mean(task, model, point)))
        return MethodOutput(edited=edited,
                            localized=localized(point, unit_scores=np.linalg.norm(basis, axis=1), subspace=basis),
                            details={"point": point, "k": k, "interchange_mse": loss,
                                     "target_var": float(np.var(target[rows]))})
