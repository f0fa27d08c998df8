"""Var-sort-and-regress: the sanity baseline that exposes generators whose scales leak the causal order."""

from __future__ import annotations

import numpy as np

from cowbench.access import Task
from cowbench.method import Method, MethodOutput, register_method
from cowbench.methods._common import per_variable


@register_method
class SortRegress(Method):
    """Order the inputs and the label by marginal variance; regress the label on what comes before it.

    Var-sortnregress (Reisach, Seiler & Weichwald 2021; catalog §3.8): in many simulated linear SEMs the
    marginal variance grows along the causal order (*varsortability*), so sorting by variance recovers
    the order. Here: pooled training variances of every input column and of the label; inputs with a
    smaller variance than the label are its candidate causes, and the world estimate is the pooled least
    squares of the label on them (with intercept; Reisach et al. use a sparse regression over *all*
    nodes' predecessors, we need only the label's parents, and plain OLS keeps the baseline trivial).
    Inputs after the label get 0. ``spurious_score = log(Var(x_j) / Var(y))``: positive for inputs placed
    after the label (candidate descendants), more so the later.

    It is a diagnostic, not a method to recommend: if it matches the causal methods on a scenario, that
    scenario leaks the causal order through scale (e.g. ``linear_sem`` with unit noises: Var(x1) < Var(y)
    < Var(x2)), and it fails as soon as the variables are standardised or scaled arbitrarily (a cause with
    a larger variance than the label is dropped; a child with a smaller one is regressed on).

    Parameters
    ----------
    random_state : int, optional
        Unused (deterministic).

    References
    ----------
    Reisach, A. G., Seiler, C. & Weichwald, S. (2021). Beware of the Simulated DAG! Causal Discovery
    Benchmarks May Be Easy To Game. NeurIPS 2021, arXiv:2102.13647.
    """

    name = "sort_regress"
    version = "1"
    family = "causal"
    access = frozenset({"pooled"})
    outputs = frozenset({"world", "detect"})
    needs_input_map = True
    label_kinds = frozenset({"continuous"})

    def __init__(self, *, random_state: int | None = None):
        self.random_state = random_state

    def fit_inputs(self, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Input-space mode: (coefficients, log variance ratios) over the input columns."""
        x = np.asarray(x, dtype=np.float64)
        y = np.asarray(y, dtype=np.float64)
        var_x, var_y = x.var(0), y.var()
        log_ratio = np.log(np.maximum(var_x, 1e-300) / max(var_y, 1e-300))
        before = np.flatnonzero(var_x < var_y)
        coef = np.zeros(x.shape[1])
        if len(before):
            z = np.column_stack([np.ones(len(x)), x[:, before]])
            coef[before] = np.linalg.lstsq(z, y, rcond=None)[0][1:]
        return coef, log_ratio

    def run(self, task: Task) -> MethodOutput:
        coef, log_ratio = self.fit_inputs(task.train.x, task.train.y)
        return MethodOutput(world_coef=per_variable(task, coef), spurious_score=per_variable(task, log_ratio),
                            details={"order": sorted(task.variables, key=lambda v: log_ratio[task.input_map[v]]),
                                     "log_var_ratio": per_variable(task, log_ratio)})
