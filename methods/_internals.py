"""Helpers of the internals edit methods (not a method: the registry skips modules starting with "_").

Every edit method picks a hook point (`resolve_layer`), reads activations there through `cowbench.surgery`,
and returns an edited copy built with a surgery hook; these helpers hold the parts they all repeat.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from torch import nn

from cowbench import surgery
from cowbench.method import MethodOutput
from cowbench.methods._common import concept_directions


def resolve_layer(model: nn.Module, layer: str | None) -> str:
    """The hook point an edit goes to: ``layer``, or (``None``) ``hidden.0`` where it exists, else ``input``.

    Raises ValueError on a point the model does not have, and on ``logit`` (read-only).
    """
    points = surgery.hook_points(model)
    if layer is None:
        return "hidden.0" if "hidden.0" in points else "input"
    if not isinstance(layer, str) or layer not in points or layer == "logit":
        allowed = ", ".join(p for p in points if p != "logit")
        raise ValueError(f"layer must be a hook point of the subject model other than 'logit' ({allowed}), "
                         f"got {layer!r}")
    return layer


def concept_activations(task: Any, model: nn.Module, point: str) -> tuple[np.ndarray, np.ndarray, list[int]]:
    """Activations at ``point`` of the labelled units, every observed concept, and the edit target's columns.

    Returns ``h`` (n_c, width), ``c`` (n_c, k) float64 over ``task.concepts``' columns, and the column indices
    of ``task.edit_target`` in ``c`` (reading the target marks the job as told).
    """
    concepts = task.concepts
    targets = task.edit_target
    names = list(concepts.columns)
    missing = [t for t in targets if t not in names]
    if missing:
        raise ValueError(f"edit target {missing} is not among the observed concepts {names}")
    h = surgery.activations(model, point, np.array(task.concept_x))  # a writable copy for torch
    return h, concepts.to_numpy(dtype=np.float64), [names.index(t) for t in targets]


def train_mean(task: Any, model: nn.Module, point: str) -> np.ndarray:
    """Mean activation at ``point`` over the training inputs: the value mean-ablation writes."""
    return surgery.activations(model, point, np.array(task.train.x)).mean(0)


def standardized_partial(h: np.ndarray, c: np.ndarray, cols: list[int], *, ridge: float = 1e-8) -> np.ndarray:
    """Per-unit association with the target concepts, holding the other concepts fixed: (width,).

    Joint least squares ``h - mean(h) ~ (c - mean(c)) B`` and, per unit ``j``, ``sum_t |B_tj| sd(c_t) / sd(h_j)``
    (a standardized partial coefficient; 0 for a unit that never moves). Holding the other concepts matters:
    the spurious concept correlates with the label and so with the causes, and a marginal correlation would
    rank pure cause units high too.
    """
    b = concept_directions(c, h, ridge=ridge)  # (k, width)
    sd_h = h.std(0)
    sd_c = c.std(0)
    raw = np.abs(b[cols]) * sd_c[cols, None]
    return np.divide(raw.sum(0), sd_h, out=np.zeros(h.shape[1]), where=sd_h > 1e-12)


def localized(point: str, *, unit_scores: np.ndarray | None = None,
              subspace: np.ndarray | None = None) -> dict[str, Any]:
    """The `MethodOutput.localized` record (arrays as float64 numpy)."""
    out: dict[str, Any] = {"point": point}
    if unit_scores is not None:
        out["unit_scores"] = np.asarray(unit_scores, dtype=np.float64)
    if subspace is not None:
        s = np.asarray(subspace, dtype=np.float64)
        out["subspace"] = s[:, None] if s.ndim == 1 else s
    return out


def clip_count(k: int, width: int) -> int:
    """``k`` units or directions at a point of ``width`` (at most all of them: one k serves every architecture)."""
    return int(min(int(k), int(width)))


def ablate_top_units(task: Any, model: nn.Module, point: str, scores: np.ndarray, k: int, mode: str,
                     mean: np.ndarray | None = None) -> MethodOutput:
    """Zero- or mean-ablate the ``k`` highest-scoring units at ``point``; they are what the method localized.

    ``mean``: the training mean at ``point`` when the caller has it already (computed here otherwise).
    """
    width = scores.size
    units = np.argsort(-scores, kind="stable")[:clip_count(k, width)]
    if mode == "mean":
        values = (train_mean(task, model, point) if mean is None else mean)[units]
    else:
        values = 0.0
    edited = surgery.with_hook(model, point, surgery.unit_hook(width, units, values))
    return MethodOutput(edited=edited, localized=localized(point, unit_scores=scores,
                                                            subspace=np.eye(width)[:, units]),
                        details={"layer": point, "units": units.tolist(), "mode": mode})
