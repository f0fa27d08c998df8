"""Extracted algorithms (`MethodOutput.algorithm`) from what a method already estimates (not a method).

``over_variables``: a method that estimates the logit's coefficient on each variable (its ``model_coef``)
states the algorithm ``logit ~ intercept + sum_v coef_v v``; the intercept is the one that centres it on the
labelled units it saw. ``over_directions``: a discovery method states ``logit ~ intercept + sum_j w_j <h, d_j>``
by least squares on its own fit units (black-box logits, activations at its point).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np


def over_variables(task: Any, coef: Mapping[str, float]) -> dict[str, Any]:
    """``{"coef", "intercept"}`` with ``intercept = mean(f - c . coef)`` over the concept-labelled units."""
    concepts = task.concepts
    names = [v for v in coef if v in concepts.columns]
    input_map = task.input_map
    # as the scorer reads a variable: its input column where the rendering has one, else its value
    c = (np.array(task.concept_x)[:, [input_map[v] for v in names]].astype(np.float64) if input_map
         else concepts[names].to_numpy(dtype=np.float64))
    f = np.asarray(task.predict_logit(np.array(task.concept_x)), dtype=np.float64)
    w = np.array([float(coef[v]) for v in names])
    return {"coef": {v: float(coef[v]) for v in names}, "intercept": float(np.mean(f - c @ w))}


def over_directions(h: np.ndarray, directions: np.ndarray, logit: np.ndarray) -> dict[str, Any]:
    """``{"direction_coef", "intercept"}``: least squares of ``logit`` on ``[1, h d_j / |d_j|]``."""
    d = np.asarray(directions, dtype=np.float64)
    norms = np.linalg.norm(d, axis=1, keepdims=True)
    d = np.divide(d, norms, out=np.zeros_like(d), where=norms > 1e-12)
    design = np.column_stack([np.ones(len(h)), h @ d.T])
    beta, *_ = np.linalg.lstsq(design, np.asarray(logit, dtype=np.float64), rcond=None)
    return {"direction_coef": beta[1:], "intercept": float(beta[0])}
