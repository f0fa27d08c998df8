"""Shared machinery of the robust-training methods: one training loop, per-group losses, the last layer.

Every robust-training method retrains the subject's architecture (``task.subject_config``) and returns the
trained model as its edit; they differ only in the objective they minimise. `train_objective` is that one
loop: full-batch Adam in float64, one torch thread, handed back in float32 and eval mode, exactly like
`cowbench.training.fit_logit_model` (the subject's own loop), so a method whose objective is the mean loss
reproduces ERM and every difference between rows comes from the objective, not from the optimiser. Full
batches make the result a function of the initialisation and the data alone (no data-order randomness).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import torch
from torch import nn

from cowbench.method import Method, MethodOutput
from cowbench.models import build_model, torch_threads
from cowbench.subject import SubjectConfig, trainable_arch
from cowbench.training import mask_relu_grad

#: ``objective(model, step) -> scalar tensor``; it closes over its own data (float64 tensors).
Objective = Callable[[nn.Module, int], torch.Tensor]


def unit_loss(out: torch.Tensor, y: torch.Tensor, loss: str) -> torch.Tensor:
    """Per-unit loss: binary cross-entropy on logits (``logistic``) or squared error (``squared``)."""
    if loss == "logistic":
        return nn.functional.binary_cross_entropy_with_logits(out, y, reduction="none")
    return (out - y) ** 2


def group_means(values: torch.Tensor, index: torch.Tensor, n_groups: int) -> torch.Tensor:
    """Mean of ``values`` within each group ``0..n_groups-1`` (``index`` holds each unit's group)."""
    sums = torch.zeros(n_groups, dtype=values.dtype).index_add(0, index, values)
    counts = torch.bincount(index, minlength=n_groups).to(values.dtype)
    return sums / counts


def codes(labels: np.ndarray) -> tuple[torch.Tensor, int]:
    """Labels as consecutive integer codes (a tensor) and their number."""
    _, inverse = np.unique(np.asarray(labels), return_inverse=True)
    return torch.as_tensor(inverse.astype(np.int64)), int(inverse.max()) + 1


def as_float64(a: np.ndarray) -> torch.Tensor:
    """A float64 tensor that owns a copy of ``a`` (Task arrays are read-only)."""
    return torch.tensor(np.asarray(a, dtype=np.float64))


def train_objective(model: nn.Module, objective: Objective, *, epochs: int, lr: float,
                    weight_decay: float = 0.0, restart_at: int | None = None,
                    params: Callable[[nn.Module], Any] | None = None) -> nn.Module:
    """Minimise ``objective`` with full-batch Adam in float64; deterministic on CPU, in place.

    Parameters
    ----------
    model : nn.Module
        The model to train (float32, as `cowbench.models.build_model` makes it); trained in float64 and
        converted back to float32 once, at the end.
    objective : callable
        ``objective(model, step)`` returns the scalar to minimise at step ``step`` (0-based).
    epochs, lr, weight_decay : int, float, float
        Adam's settings (one step per epoch: full batches).
    restart_at : int, optional
        A step at which Adam's moment estimates are reset, as DomainBed's IRM and V-REx do when the penalty
        weight jumps at the end of its annealing (the old moments were scaled for another objective; IRM's
        own Colored MNIST code keeps them).
    params : callable, optional
        ``params(model)``: the parameters to train (default: all of them).

    Returns
    -------
    nn.Module
        ``model`` itself, trained, in eval mode, with float32 parameters.
    """
    model.double()

    def new_optimizer() -> torch.optim.Optimizer:
        chosen = model.parameters() if params is None else params(model)
        return torch.optim.Adam(chosen, lr=lr, weight_decay=weight_decay)

    try:
        # one thread, as the harness's workers: a reduction split across threads rounds differently
        with torch_threads(1), mask_relu_grad(model):
            opt = new_optimizer()
            model.train()
            for step in range(epochs):
                if restart_at is not None and step == restart_at and step > 0:
                    opt = new_optimizer()
                opt.zero_grad()
                objective(model, step).backward()
                opt.step()
    finally:  # callers feed float32 inputs, whatever happened here
        model.float()
        model.eval()
    return model


def split_last_layer(model: nn.Sequential) -> tuple[nn.Sequential, int]:
    """The layers before the model's last ``nn.Linear`` (its feature map) and that layer's index.

    For the ``linear`` architecture the feature map is empty (the features are the inputs).
    """
    last = max((i for i, m in enumerate(model) if isinstance(m, nn.Linear)), default=None)
    if last is None:
        raise ValueError("the model has no nn.Linear layer to retrain")
    return model[:last], last


def penultimate(model: nn.Sequential, x: np.ndarray) -> np.ndarray:
    """The features the model's last linear layer reads, float64, shape (n, width)."""
    head, _ = split_last_layer(model)
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad(), torch_threads(1):
            return head(torch.tensor(np.asarray(x, dtype=np.float32))).reshape(len(x), -1).double().numpy()
    finally:
        model.train(was_training)


def with_last_layer(model: nn.Sequential, coef: np.ndarray, intercept: float) -> nn.Sequential:
    """``model`` (modified in place and returned) with its last linear layer set to ``coef, intercept``."""
    _, last = split_last_layer(model)
    layer = model[last]
    with torch.no_grad():
        layer.weight.copy_(torch.as_tensor(np.asarray(coef, dtype=np.float32).reshape(layer.weight.shape)))
        layer.bias.fill_(float(intercept))
    return model


class RetrainMethod(Method):
    """Base of the methods that retrain the subject architecture: config, seed, loss, a fresh model.

    Subclasses declare the usual class attributes and implement ``run``; this base only answers the
    questions every one of them asks of the task. Not registered itself.
    """

    family = "robust_training"
    outputs = frozenset({"edit"})

    def _config(self, task: Any, **overrides: Any) -> SubjectConfig:
        """The subject's config, with the non-None ``overrides`` (e.g. a method's own ``epochs``)."""
        config = {k: v for k, v in dict(task.subject_config).items() if k != "version"}
        config.update({k: v for k, v in overrides.items() if v is not None})
        return SubjectConfig.from_mapping(config)

    def _seed(self) -> int:
        return 0 if self.random_state is None else int(self.random_state)

    @staticmethod
    def _loss(task: Any) -> str:
        return "logistic" if task.label_kind == "binary" else "squared"

    def _fresh(self, task: Any, config: SubjectConfig) -> nn.Module:
        """A new model of the subject's architecture, initialised from the method's own seed."""
        return build_model(trainable_arch(config.arch), task.train.x.shape[1], hidden=config.hidden, seed=self._seed())


def details_of(counts: Mapping[Any, int]) -> dict[str, int]:
    """JSON-friendly ``{label: count}``."""
    return {str(k): int(v) for k, v in counts.items()}


class EnvPenaltyMethod(RetrainMethod):
    """Base of the environment-penalty methods (IRMv1, V-REx, CORAL): ERM plus a penalty across environments.

    Each step computes the per-environment mean losses ``R_e`` and the method's ``penalty`` over the
    environments; the objective is ``mean_e R_e + l2_weight * sum ||theta||^2 + lambda_t penalty``, divided
    by ``lambda_t`` when it exceeds 1 (so the penalty dominates without blowing up the step size), with
    ``lambda_t = 1`` for the first ``penalty_anneal_iters`` steps and ``penalty_weight`` after, as in the IRM
    reference code for Colored MNIST. ``restart_adam`` resets Adam's moments at the switch, as DomainBed
    does; the Colored MNIST code does not, and there it matters: kept, the second moments estimated on the
    ERM phase's gradients (about ``penalty_weight`` times larger than those of the divided objective) damp
    the first post-switch steps for a few hundred steps, which keeps the features learnt in the ERM phase
    while the penalty removes the spurious one; reset, full ``lr``-sized steps on the penalty drive a small
    MLP to the penalty's trivial zero (a near-constant output). The coupled L2 term (also divided) does the
    same job from the other side: it makes large weights that only serve the penalty costly. With one
    training environment
    every penalty here is that of the pooled data: 0 for V-REx and CORAL, and for IRMv1 the squared
    gradient of the pooled risk with respect to the output scale, which is 0 at the ERM solution; so the
    methods run and return (nearly) ERM. Subclasses implement ``penalty`` only.
    """

    label_kinds = frozenset({"binary", "continuous"})

    def __init__(self, *, penalty_weight: float = 1000.0, penalty_anneal_iters: int = 100,
                 l2_weight: float = 0.0, restart_adam: bool = True, epochs: int | None = None,
                 random_state: int | None = None):
        self.penalty_weight = penalty_weight
        self.penalty_anneal_iters = penalty_anneal_iters
        self.l2_weight = l2_weight
        self.restart_adam = restart_adam
        self.epochs = epochs
        self.random_state = random_state

    def penalty(self, outs: list[torch.Tensor], ys: list[torch.Tensor], feats: list[torch.Tensor],
                losses: torch.Tensor, loss: str) -> torch.Tensor:
        """The penalty across environments.

        ``outs``, ``ys``, ``feats``: per environment, the model's outputs, the labels and the features its
        last linear layer reads (computed once, with the outputs); ``losses``: the risks ``R_e``.
        """
        raise NotImplementedError

    def run(self, task: Any) -> MethodOutput:
        x, y = as_float64(task.train.x), as_float64(task.train.y)
        env, n_envs = codes(task.train.env)
        xs = [x[env == e] for e in range(n_envs)]
        ys = [y[env == e] for e in range(n_envs)]
        loss = self._loss(task)
        anneal = int(self.penalty_anneal_iters)
        final = float(self.penalty_weight)
        l2 = float(self.l2_weight)
        trace: dict[str, float] = {}

        config = self._config(task, epochs=self.epochs)
        model = self._fresh(task, config)
        head, last = split_last_layer(model)  # slices share the model's modules; made once, not per step
        tail = model[last:]

        def objective(model, step):
            feats = [head(xe) for xe in xs]
            outs = [tail(f) for f in feats]
            losses = torch.stack([unit_loss(o, ye, loss).mean() for o, ye in zip(outs, ys, strict=True)])
            pen = self.penalty(outs, ys, feats, losses, loss)
            weight = final if step >= anneal else 1.0
            total = losses.mean() + weight * pen
            if l2 > 0.0:  # coupled L2 on every parameter, in the objective (divided with it), as the IRM code
                total = total + l2 * sum(p.pow(2).sum() for p in model.parameters())
            trace["penalty"] = float(pen.detach())
            return total / weight if weight > 1.0 else total

        model = train_objective(model, objective, epochs=config.epochs, lr=config.lr,
                                weight_decay=config.weight_decay,
                                restart_at=anneal if self.restart_adam else None)
        return MethodOutput(edited=model, details={"environments": n_envs,
                                                   "final_penalty": trace.get("penalty", 0.0)})
