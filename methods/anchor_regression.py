"""Anchor regression: least squares on data transformed by ``W = I + (sqrt(gamma) - 1) P_A``."""

from __future__ import annotations

import numpy as np

from cowbench.access import Task
from cowbench.method import LogUniform, Method, MethodOutput, Real, register_method


def anchor_fit(x: np.ndarray, y: np.ndarray, anchors: np.ndarray, gamma: float) -> np.ndarray:
    """Anchor-regression coefficients on ``x`` (intercept dropped from the result).

    ``anchors`` (n, q) spans the anchor space (a constant column is added: the intercept is itself
    anchored). ``P_A v = A (A'A)^+ A'v`` is applied column by column without forming the n x n matrix;
    then ordinary least squares of ``W y`` on ``W [1, x]`` with ``W v = v + (sqrt(gamma) - 1) P_A v``.
    """
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    a = np.column_stack([np.ones(len(x)), np.asarray(anchors, dtype=np.float64)])
    proj_coef = np.linalg.pinv(a.T @ a) @ a.T  # (q+1, n)
    xy = np.column_stack([np.ones(len(x)), x, y])
    transformed = xy + (np.sqrt(gamma) - 1.0) * (a @ (proj_coef @ xy))
    return np.linalg.lstsq(transformed[:, :-1], transformed[:, -1], rcond=None)[0][1:]


@register_method
class AnchorRegression(Method):
    """Anchor regression (Rothenhäusler, Meinshausen, Bühlmann & Peters 2021).

    ``b_gamma = argmin_b ||(I - P_A)(y - Xb)||^2 + gamma ||P_A(y - Xb)||^2``, i.e. least squares on data
    transformed by ``W = I + (sqrt(gamma) - 1) P_A``. Anchors ``A``: the scenario's instruments
    (``task.instruments``, which are then not regressors; their world coefficient is reported as 0) if it
    has any, else the one-hot training environment. ``gamma = 1`` is OLS, ``gamma -> inf`` IV/2SLS with A
    as instruments, ``gamma = 0`` partials A out (catalog §3.4, O11: 3, 2 and 3.5 in the O11 design). It
    minimises the worst-case risk over shift interventions on A up to strength ``gamma``: a prediction
    method whose coefficients move from the pooled regression towards the causal one as ``gamma`` grows.
    Outputs the coefficients as the world and the model estimate.

    Known failures: not a causal estimator at finite ``gamma`` (it trades risk under bounded shifts);
    with environment anchors that do not shift the spurious variable nothing changes; an anti-causal
    variable shifted only through the label keeps weight; continuous labels only (squared loss).

    Parameters
    ----------
    gamma : float
        Anchor strength (>= 0).
    random_state : int, optional
        Unused (deterministic).

    References
    ----------
    Rothenhäusler, D., Meinshausen, N., Bühlmann, P. & Peters, J. (2021). Anchor regression:
    heterogeneous data meet causality. JRSS B 83(2), 215-246. arXiv:1801.06229.
    """

    name = "anchor_regression"
    version = "1"
    family = "causal"
    access = frozenset({"pooled", "env"})
    outputs = frozenset({"world", "model"})
    needs_input_map = True
    label_kinds = frozenset({"continuous"})
    search_space = {"gamma": LogUniform(0.1, 1e4)}
    param_constraints = {"gamma": Real(0.0)}  # gamma = 0 partials the anchors out, 1 is OLS

    def __init__(self, *, gamma: float = 10.0, random_state: int | None = None):
        self.gamma = gamma
        self.random_state = random_state

    def run(self, task: Task) -> MethodOutput:
        if not self.gamma >= 0:
            raise ValueError(f"gamma must be >= 0, got {self.gamma!r}")
        imap = task.input_map
        x = task.train.x
        instruments = list(task.instruments)
        if instruments:
            regressors = [v for v in task.variables if v not in instruments]
            anchors = x[:, [imap[v] for v in instruments]]
            kind = "instruments"
        else:
            regressors = list(task.variables)
            env = task.train.env
            anchors = (np.asarray(env)[:, None] == np.unique(env)[None, :]).astype(np.float64)
            kind = "environment one-hot"
        b = anchor_fit(x[:, [imap[v] for v in regressors]], task.train.y, anchors, float(self.gamma))
        coef = {v: 0.0 for v in task.variables}
        coef.update({v: float(c) for v, c in zip(regressors, b, strict=True)})
        return MethodOutput(world_coef=coef, model_coef=dict(coef),
                            details={"anchors": instruments or "environment", "anchor_kind": kind})
