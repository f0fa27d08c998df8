"""Resampling ablation: the mean absolute change of the logit when one input column is permuted."""

from __future__ import annotations

import numpy as np

from cowbench.access import Task
from cowbench.method import Choice, Method, MethodOutput, register_method
from cowbench.methods._common import origin_slope, per_variable


@register_method
class ResampleAblation(Method):
    """Permute one input column across units and record the mean absolute change of the logit.

    Per variable ``j`` (its input column) and repeat ``r``: ``x'`` is ``x`` with column ``j`` replaced by a
    random permutation of itself over the explained units (so it keeps its marginal and loses its
    association with everything else), and the answer is ``E|f(x') - f(x)|`` averaged over repeats: a
    magnitude like the model truth's ``cr`` (direct counterfactual reliance with an independent
    resample), without labels or losses. For a linear logit it is ``|w_j| E|x_pi,j - x_j|``, e.g.
    ``|w_j| 2 sd_j / sqrt(pi)`` for a Gaussian column and ``|w_j| 2 p (1 - p)`` for a Bernoulli(p) one.
    The output is unsigned (compare it with ``|ace|``, as ``model_rank`` does); the signed least-squares
    slope of ``f(x') - f(x)`` on ``x'_j - x_j`` is kept in ``details["slope"]``. Black-box: only
    ``task.predict_logit`` (pooled); per-variable answers read off the input columns (``needs_input_map``).

    Known failures (catalog §2.6): redundant proxies (a copy of a variable in another column) leave the
    prediction intact when one is permuted, so reliance on the concept is underestimated; correlated inputs
    make the permuted points off-manifold (Hooker, Mentch & Zhou 2021); the magnitude scales with the
    column's spread, not only with the model's slope.

    Parameters
    ----------
    n_repeats : int
        Independent permutations per variable.
    max_units : int
        Number of training units used (the first ones; training units are in random order).
    random_state : int, optional
        Seed of the permutations.

    References
    ----------
    Chan, L., Garriga-Alonso, A., Goldowsky-Dill, N., Greenblatt, R., Nitishinskaya, J., Radhakrishnan, A.,
    Shlegeris, B. & Thomas, N. (2022). Causal scrubbing: a method for rigorously testing interpretability
    hypotheses. AI Alignment Forum (Redwood Research).

    Fisher, A., Rudin, C. & Dominici, F. (2019). All models are wrong, but many are useful: learning a
    variable's importance by studying an entire class of prediction models simultaneously. JMLR 20(177);
    arXiv:1801.01489.
    """

    name = "resample_ablation"
    version = "1"
    family = "attribution"
    access = frozenset({"pooled"})
    outputs = frozenset({"model"})
    needs_input_map = True
    search_space = {"n_repeats": Choice((1, 3, 10))}

    def __init__(self, *, n_repeats: int = 3, max_units: int = 4000, random_state: int | None = None):
        self.n_repeats = n_repeats
        self.max_units = max_units
        self.random_state = random_state

    def run(self, task: Task) -> MethodOutput:
        if isinstance(self.n_repeats, bool) or not isinstance(self.n_repeats, int) or self.n_repeats < 1:
            raise ValueError(f"n_repeats must be a positive integer, got {self.n_repeats!r}")
        rng = np.random.default_rng(self.random_state)
        x = np.asarray(task.train.spread(self.max_units).x, dtype=np.float64)
        n, d = x.shape
        base = task.predict_logit(x)
        change = np.empty((self.n_repeats, n, d))  # f(x') - f(x)
        disp = np.empty((self.n_repeats, n, d))  # x'_j - x_j
        for r in range(self.n_repeats):
            for j in range(d):
                moved = x.copy()
                moved[:, j] = x[rng.permutation(n), j]
                change[r, :, j] = task.predict_logit(moved) - base
                disp[r, :, j] = moved[:, j] - x[:, j]
        slope = origin_slope(change.reshape(-1, d), disp.reshape(-1, d))
        return MethodOutput(
            model_coef=per_variable(task, np.abs(change).mean(axis=(0, 1))),
            details={"slope": per_variable(task, slope), "n_units": int(n), "n_repeats": int(self.n_repeats)},
        )
