"""Occlusion (feature ablation) of the subject model's inputs, summarised per variable as a slope."""

from __future__ import annotations

import numpy as np

from cowbench.access import Task
from cowbench.method import Choice, Method, MethodOutput, register_method
from cowbench.methods._common import origin_slope, per_variable

BASELINES = ("mean", "zero")


@register_method
class Occlusion(Method):
    """Replace one input column by a reference value and regress the logit change on the displacement.

    Per unit ``x`` and variable ``j`` (its input column): ``Delta_j(x) = f(x) - f(x with x_j <- b_j)`` with
    ``b_j`` the mean of column ``j`` over the training inputs (or zero). The per-variable answer is the
    least-squares slope through the origin of ``Delta_j`` on ``x_j - b_j``: ``sum_i Delta_ij d_ij / sum_i
    d_ij^2``. For a linear logit ``Delta_j = w_j (x_j - b_j)`` exactly, so the slope is ``w_j``, the model's
    reliance ``ace`` on identity rendering (catalog O16); for a nonlinear model it is the average secant
    slope between each input and the reference. With the mean reference the answer is invariant to a
    constant shift of the inputs that leaves the model's function unchanged (unlike gradient x input).
    Black-box: only ``task.predict_logit`` (pooled access); per-variable answers are read off the input
    columns (``needs_input_map``). The mean ``Delta_j`` and mean ``|Delta_j|`` are kept in ``details``.

    Known failures (catalog §5.5): redundant use (two proxies of one variable, OR-structures) is
    underestimated by single-feature ablation; a reference outside the support (zero for a binary or
    shifted input) evaluates the model off the data manifold; correlated inputs make the ablated points
    off-manifold too (Hooker, Mentch & Zhou 2021).

    Parameters
    ----------
    baseline : {"mean", "zero"}
        The reference value ``b_j``: the training mean of the column, or zero.
    max_units : int
        Number of training units explained (the first ones; training units are in random order).
    random_state : int, optional
        Unused (deterministic); kept for the common interface.

    References
    ----------
    Zeiler, M. D. & Fergus, R. (2014). Visualizing and understanding convolutional networks. ECCV 2014,
    arXiv:1311.2901.
    """

    name = "occlusion"
    version = "1"
    family = "attribution"
    access = frozenset({"pooled"})
    outputs = frozenset({"model"})
    needs_input_map = True
    search_space = {"baseline": Choice(BASELINES)}

    def __init__(self, *, baseline: str = "mean", max_units: int = 4000, random_state: int | None = None):
        self.baseline = baseline
        self.max_units = max_units
        self.random_state = random_state

    def run(self, task: Task) -> MethodOutput:
        if self.baseline not in BASELINES:
            raise ValueError(f"baseline must be one of {BASELINES}, got {self.baseline!r}")
        train_x = np.asarray(task.train.x, dtype=np.float64)
        ref = train_x.mean(0) if self.baseline == "mean" else np.zeros(train_x.shape[1])
        x = np.asarray(task.train.spread(self.max_units).x, dtype=np.float64)
        n, d = x.shape
        base = task.predict_logit(x)
        delta = np.empty((n, d))
        for j in range(d):
            occluded = x.copy()
            occluded[:, j] = ref[j]
            delta[:, j] = base - task.predict_logit(occluded)
        return MethodOutput(
            model_coef=per_variable(task, origin_slope(delta, x - ref)),
            details={"mean_delta": per_variable(task, delta.mean(0)),
                     "mean_abs_delta": per_variable(task, np.abs(delta).mean(0)), "n_units": int(n)},
        )
