"""Integrated gradients of the subject model's logit, summarised per variable as a slope."""

from __future__ import annotations

import numpy as np
import torch

from cowbench.access import Task
from cowbench.method import Choice, Method, MethodOutput, Options, register_method
from cowbench.methods._common import origin_slope, per_variable

RULES = ("trapezoid", "midpoint", "gausslegendre")
BASELINES = ("zero", "mean")


def quadrature(n_steps: int, rule: str) -> tuple[np.ndarray, np.ndarray]:
    """Nodes ``alpha`` in [0, 1] and weights (summing to 1) of an ``n_steps``-point rule on [0, 1].

    ``trapezoid``: ``alpha = linspace(0, 1, n)`` with half weights at the ends (needs n >= 2);
    ``midpoint``: ``alpha = (i + 1/2) / n``, weights ``1/n``; ``gausslegendre``: Gauss-Legendre nodes
    mapped from [-1, 1]. ``midpoint`` and ``gausslegendre`` are captum's ``riemann_middle`` and
    ``gausslegendre``. captum 0.9's ``riemann_trapezoid`` uses the same nodes but weights ``1/n`` with halved
    ends, which sum to ``(n - 1)/n``: its attributions are ours times ``(n - 1)/n`` and miss completeness by
    that factor; ours is the composite trapezoid rule (weights ``1/(n - 1)``, halved ends).
    """
    if isinstance(n_steps, bool) or not isinstance(n_steps, int | np.integer) or n_steps < 1:
        raise ValueError(f"n_steps must be a positive integer, got {n_steps!r}")
    n = int(n_steps)
    if rule == "trapezoid":
        if n < 2:
            raise ValueError(f"the trapezoid rule needs n_steps >= 2, got {n}")
        weights = np.full(n, 1.0 / (n - 1))
        weights[[0, -1]] /= 2
        return np.linspace(0.0, 1.0, n), weights
    if rule == "midpoint":
        return (np.arange(n) + 0.5) / n, np.full(n, 1.0 / n)
    if rule == "gausslegendre":
        nodes, weights = np.polynomial.legendre.leggauss(n)
        return (nodes + 1) / 2, weights / 2
    raise ValueError(f"unknown quadrature rule {rule!r}; allowed: {', '.join(RULES)}")


def integrated_gradients(model: torch.nn.Module, x: np.ndarray, baseline: np.ndarray, *, n_steps: int = 64,
                         rule: str = "trapezoid", chunk_rows: int = 1 << 16) -> np.ndarray:
    """``IG_j(x) = (x_j - x'_j) * sum_s w_s df(x' + a_s (x - x'))/dx_j`` for every row of ``x``, float64 (n, d).

    ``baseline`` is one point (d,) or one per row (n, d). All rows and steps go through the model as one
    batch, in chunks of at most ``chunk_rows`` interpolated points to bound memory. The model is evaluated
    in eval mode and its parameters' gradients are not touched.
    """
    alphas, weights = quadrature(n_steps, rule)
    xt = torch.as_tensor(np.asarray(x, dtype=np.float32))
    n, d = xt.shape
    bt = torch.as_tensor(np.broadcast_to(np.asarray(baseline, dtype=np.float32), (n, d)).copy())
    a = torch.tensor(alphas, dtype=torch.float32).view(-1, 1, 1)
    w = torch.tensor(weights, dtype=torch.float32).view(-1, 1, 1)
    per_chunk = max(1, int(chunk_rows) // len(alphas))
    out = np.empty((n, d), dtype=np.float64)
    was_training = model.training
    model.eval()
    try:
        for start in range(0, n, per_chunk):
            xb, bb = xt[start:start + per_chunk], bt[start:start + per_chunk]
            diff = xb - bb
            points = (bb.unsqueeze(0) + a * diff.unsqueeze(0)).reshape(-1, d).requires_grad_(True)
            (grad,) = torch.autograd.grad(model(points).sum(), points)
            avg = (w * grad.view(len(alphas), len(xb), d)).sum(0)
            out[start:start + len(xb)] = (diff * avg).double().numpy()
    finally:
        model.train(was_training)
    return out


@register_method
class IntegratedGradients(Method):
    """Integrated gradients of the logit from a baseline, summarised per variable as a slope.

    Per unit ``x`` and input ``j``: ``IG_j(x) = (x_j - x'_j) * int_0^1 df(x' + a (x - x'))/dx_j da`` with the
    integral by an ``n_steps``-point quadrature (trapezoid, midpoint or Gauss-Legendre) and the baseline
    ``x'`` either the zero vector or the mean of the training inputs. Completeness: ``sum_j IG_j(x) =
    f(x) - f(x')`` up to quadrature error (the gap is reported in ``details``).

    The per-variable answer (``model_coef``) is the least-squares slope through the origin of ``IG_j`` on
    ``x_j - x'_j`` over the explained training units, ``sum_i IG_ij d_ij / sum_i d_ij^2``. For a linear logit
    ``IG_j = w_j (x_j - x'_j)`` exactly (catalog O16), so the slope is ``w_j``, the model's reliance ``ace``
    on identity rendering, for either baseline (the ratio of means would divide by zero for the mean
    baseline). The plain mean attribution ``E[IG_j]`` is kept in ``details["mean_attribution"]``.
    Per-variable answers are read off the input columns (``needs_input_map``).

    Known failures (catalog §5.3): the answer depends on the baseline (Sturmfels, Lundberg & Lee 2020); the
    straight-line path leaves the data manifold when variables are correlated; with the zero baseline it
    inherits the input-shift sensitivity of gradient x input (Kindermans et al. 2019) and credits signals
    the model does not use (Adebayo et al. 2022).

    Parameters
    ----------
    baseline : {"zero", "mean"}
        The reference point ``x'``: the origin or the mean of all training inputs.
    n_steps : int
        Quadrature points along the path.
    rule : {"trapezoid", "midpoint", "gausslegendre"}
        Quadrature rule: the composite trapezoid rule, captum's ``riemann_middle`` or ``gausslegendre``
        (see `quadrature` for how captum's ``riemann_trapezoid`` differs).
    max_units : int
        Number of training units explained (the first ones; training units are in random order).
    chunk_rows : int
        At most this many interpolated points per forward/backward pass (memory bound).
    random_state : int, optional
        Unused (deterministic); kept for the common interface.

    References
    ----------
    Sundararajan, M., Taly, A. & Yan, Q. (2017). Axiomatic attribution for deep networks. ICML 2017,
    arXiv:1703.01365.
    """

    name = "integrated_gradients"
    version = "1"
    family = "attribution"
    access = frozenset({"pooled", "internals"})
    outputs = frozenset({"model"})
    needs_input_map = True
    search_space = {"baseline": Choice(BASELINES), "n_steps": Choice((16, 32, 64, 128))}
    param_constraints = {"rule": Options(RULES)}

    def __init__(self, *, baseline: str = "mean", n_steps: int = 64, rule: str = "trapezoid",
                 max_units: int = 2000, chunk_rows: int = 1 << 16, random_state: int | None = None):
        self.baseline = baseline
        self.n_steps = n_steps
        self.rule = rule
        self.max_units = max_units
        self.chunk_rows = chunk_rows
        self.random_state = random_state

    def run(self, task: Task) -> MethodOutput:
        if self.baseline not in BASELINES:
            raise ValueError(f"baseline must be one of {BASELINES}, got {self.baseline!r}")
        train_x = np.asarray(task.train.x, dtype=np.float64)
        ref = np.zeros(train_x.shape[1]) if self.baseline == "zero" else train_x.mean(0)
        x = np.asarray(task.train.spread(self.max_units).x, dtype=np.float64)
        model = task.model
        ig = integrated_gradients(model, x, ref, n_steps=self.n_steps, rule=self.rule, chunk_rows=self.chunk_rows)
        gap = ig.sum(1) - (task.predict_logit(x) - task.predict_logit(ref[None, :])[0])
        spread = float(np.std(task.predict_logit(x))) or 1.0
        return MethodOutput(
            model_coef=per_variable(task, origin_slope(ig, x - ref)),
            details={"mean_attribution": per_variable(task, ig.mean(0)),
                     "completeness_gap": float(np.mean(np.abs(gap)) / spread), "n_units": len(x)},
        )
