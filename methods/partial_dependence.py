"""Partial-dependence slope of the subject model, from black-box queries."""

from __future__ import annotations

import numpy as np

from cowbench.access import Task
from cowbench.method import Choice, Method, MethodOutput, register_method
from cowbench.methods._common import per_variable


@register_method
class PartialDependence(Method):
    """Slope of the least-squares line through each variable's partial-dependence curve.

    ``PD_v(t) = (1/n) sum_i f(x_i with input v set to t)`` on the first ``max_units`` training units, for
    ``t`` on the distinct values of ``n_grid`` quantiles (5 % to 95 %) of that input (its minimum and maximum
    when the quantiles coincide, e.g. a rare binary value); the reported ``model_coef[v]`` is the slope of
    the least-squares line through ``(t, PD_v(t))``. For a linear logit it equals the weight exactly (catalog
    §7 O16); for a binary input it is ``PD(1) - PD(0)``, the interventional effect on the model. PD of the
    model is the back-door adjustment formula applied to the model (Zhao & Hastie 2021), so on an identity
    rendering it estimates the model's ``ace``. Only black-box queries (``task.predict_logit``): ``pooled``.

    Known to fail (catalog §2.5 (f)): reliance through interactions averages out (a model using ``s`` only
    through ``s * c`` with symmetric ``c`` has a flat PD for ``s`` while its ICE curves fan out), and with
    strongly correlated inputs the curve is evaluated off the data manifold (Apley & Zhu 2020). A curved PD
    is summarised by one slope.

    Parameters
    ----------
    n_grid : int
        Number of quantiles in the grid.
    max_units : int
        Number of training units averaged over (the first ones).
    random_state : int, optional
        Unused (deterministic); kept for the common interface.

    References
    ----------
    Friedman, J. H. (2001). Greedy function approximation: a gradient boosting machine. Annals of
    Statistics 29(5), 1189-1232.
    Zhao, Q. & Hastie, T. (2021). Causal interpretations of black-box models. Journal of Business &
    Economic Statistics 39(1), 272-281.
    """

    name = "partial_dependence"
    version = "1"
    family = "estimation"  # catalog §2 ("estimation on a model")
    access = frozenset({"pooled"})
    outputs = frozenset({"model"})
    needs_input_map = True
    search_space = {"n_grid": Choice((5, 10, 20))}

    def __init__(self, *, n_grid: int = 10, max_units: int = 2000, random_state: int | None = None):
        self.n_grid = n_grid
        self.max_units = max_units
        self.random_state = random_state

    def run(self, task: Task) -> MethodOutput:
        x = np.asarray(task.train.spread(self.max_units).x, dtype=np.float32)
        n, d = x.shape
        slopes = np.zeros(d)
        curves = {}
        for j in range(d):
            col = x[:, j].astype(np.float64)
            grid = np.unique(np.quantile(col, np.linspace(0.05, 0.95, self.n_grid)))
            if grid.size < 2:
                grid = np.unique([col.min(), col.max()])
            if grid.size < 2:
                continue  # a constant input: no curve, slope 0
            batch = np.repeat(x[None], grid.size, axis=0)  # (g, n, d)
            batch[:, :, j] = grid.astype(np.float32)[:, None]
            pd_curve = task.predict_logit(batch.reshape(-1, d)).reshape(grid.size, n).mean(1)
            centred = grid - grid.mean()
            slopes[j] = float(np.dot(centred, pd_curve - pd_curve.mean()) / np.dot(centred, centred))
            curves[j] = {"grid": grid.tolist(), "pd": pd_curve.tolist()}
        inverse = {j: v for v, j in (task.input_map or {}).items()}
        return MethodOutput(model_coef=per_variable(task, slopes),
                            details={"curves": {inverse[j]: c for j, c in curves.items() if j in inverse}})
