"""Shared machinery of the causal-discovery detectors: the label as a node, and a verdict read off its edges.

Every discovery method here (PC, FCI, GES, DirectLiNGAM, NOTEARS) learns a graph over the input columns plus
the label (the last node) and turns the label's edges into per-variable spurious scores with one rule,
`label_verdict`, so the methods differ only in the graph they learn. Graphs are handed over as an endpoint
matrix in causal-learn's convention: ``marks[a, b]`` is the mark at ``a``'s end of the edge between ``a``
and ``b`` (`TAIL`, `ARROW`, `CIRCLE`; 0 when ``a`` and ``b`` are not adjacent), so ``a -> b`` is
``marks[a, b] = TAIL, marks[b, a] = ARROW``. A DAG with weights ``W[i, j]`` (edge ``i -> j``) converts with
`dag_marks`.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy import stats

from cowbench.method import MethodOutput
from cowbench.methods._common import logistic_fit, per_variable

TAIL, ARROW, CIRCLE = -1, 1, 2

#: the scores of `label_verdict`
PARENT, UNDETERMINED, NON_PARENT, UNRELATED = 0.0, 0.5, 1.0, 0.0


def label_data(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """The nodes' data: the input columns, then the label as the last column (float64, a new array)."""
    return np.column_stack([np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)])


def degenerate(data: np.ndarray) -> str | None:
    """Why the nodes' data admit no Fisher-z test or Gaussian score, or None.

    A constant node, or a node that is an exact linear function of others (e.g. a spurious variable equal to
    the label), makes the correlation matrix singular: partial correlations are undefined there.
    """
    sd = data.std(0)
    if np.any(sd == 0):
        return "a node is constant"
    corr = np.corrcoef(data, rowvar=False)
    if not np.all(np.isfinite(corr)) or np.linalg.cond(corr) > 1e10:
        return "the nodes' correlation matrix is singular (a node is a linear function of others)"
    return None


def fisher_z_pvalue(a: np.ndarray, b: np.ndarray) -> float:
    """Two-sided p-value of zero correlation between ``a`` and ``b`` (Fisher's z, empty conditioning set)."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    if a.std() == 0 or b.std() == 0:
        return 1.0
    r = float(np.clip(np.corrcoef(a, b)[0, 1], -1 + 1e-12, 1 - 1e-12))
    z = np.sqrt(len(a) - 3) * np.arctanh(r)
    return float(2 * stats.norm.sf(abs(z)))


def dag_marks(weights: np.ndarray) -> np.ndarray:
    """Endpoint matrix of the graph with ``weights[i, j] != 0`` meaning ``i -> j``.

    A pair with weights both ways (a 2-cycle a thresholded continuous optimiser can leave) becomes an
    undirected edge (tails at both ends): its orientation is not identified.
    """
    w = np.asarray(weights) != 0
    np.fill_diagonal(w, False)
    marks = np.zeros(w.shape, dtype=np.int64)
    marks[w] = TAIL  # the tail sits at i's end of i -> j
    marks[w.T] = ARROW  # and the arrowhead at j's end
    marks[w & w.T] = TAIL
    return marks


def label_verdict(marks: np.ndarray, data: np.ndarray, *, alpha: float, pag: bool = False) -> dict[str, Any]:
    """Per-input spurious scores from the label's edges (the label is the last node of ``marks``).

    For each input ``v`` with the label ``L``:

    - adjacent, directed into ``L`` (tail at ``v``, arrowhead at ``L``): a parent, score 0;
    - adjacent with an arrowhead at ``v`` (``L -> v``; in a PAG also ``L <-> v`` and ``L o-> v``, all of
      which say ``v`` is not an ancestor of ``L``): a non-parent associated with ``L``, score 1. In a CPDAG
      (``pag=False``) a bidirected edge is PC's orientation conflict, not a confounder: score 0.5;
    - adjacent otherwise (undirected ``v - L``, a circle at ``v``): not identified, score 0.5;
    - not adjacent: a non-parent; score 1 if it is marginally associated with ``L`` (Fisher-z test of zero
      correlation at level ``alpha``: e.g. a child of a cause of ``L``, a proxy), else 0 (unrelated).

    Returns ``scores`` (array over the inputs), ``relation`` (a word per input) and ``abstain``: True
    when no input scores 1 (no non-parent associated with the label is identified, e.g. every neighbour of
    the label is undirected), so the graph gives no verdict.
    """
    label = marks.shape[0] - 1
    scores = np.empty(label)
    relation = []
    for v in range(label):
        at_v, at_label = marks[v, label], marks[label, v]
        if at_v == 0:
            associated = fisher_z_pvalue(data[:, v], data[:, label]) < alpha
            scores[v], word = (NON_PARENT, "associated non-neighbour") if associated else (UNRELATED, "unrelated")
        elif at_v == TAIL and at_label == ARROW:
            scores[v], word = PARENT, "parent"
        elif at_v == ARROW and (pag or at_label != ARROW):
            scores[v], word = NON_PARENT, "child" if at_label == TAIL else "not an ancestor"
        else:
            scores[v], word = UNDETERMINED, "undetermined"
        relation.append(word)
    return {"scores": scores, "relation": relation, "abstain": not np.any(scores == NON_PARENT)}


def parent_coefficients(data: np.ndarray, relation: list[str], label_kind: str) -> np.ndarray:
    """World coefficients that follow from the graph: the label regressed on its (possible) parents.

    The inputs marked ``parent`` or ``undetermined`` are regressed on (least squares for a continuous label,
    logistic regression for a binary one, with intercept); every other input gets 0. All zeros when there
    is none.
    """
    cols = [v for v, word in enumerate(relation) if word in ("parent", "undetermined")]
    coef = np.zeros(len(relation))
    if not cols:
        return coef
    x, y = data[:, cols], data[:, -1]
    if label_kind == "binary":
        coef[cols] = logistic_fit(x, y, C=1e6, max_iter=1000)[0]
    else:
        z = np.column_stack([np.ones(len(x)), x])
        coef[cols] = np.linalg.lstsq(z, y, rcond=None)[0][1:]
    return coef


def verdict_output(task: Any, marks: np.ndarray | None, data: np.ndarray, *, alpha: float, pag: bool = False,
                   details: dict[str, Any] | None = None) -> MethodOutput:
    """The `MethodOutput` of a discovery method: scores and world coefficients per variable, or an abstention.

    ``marks=None`` means the data are `degenerate`: the method abstains with that reason.
    """
    if marks is None:  # the caller found the data degenerate before learning a graph
        return MethodOutput(abstain=True, details={**(details or {}), "reason": degenerate(data)})
    verdict = label_verdict(marks, data, alpha=alpha, pag=pag)
    info = {"relation": {v: verdict["relation"][j] for v, j in task.input_map.items()}, **(details or {})}
    if verdict["abstain"]:
        return MethodOutput(abstain=True, details={**info, "reason": "no non-parent associated with the label "
                                                                     "is identified"})
    coef = parent_coefficients(data, verdict["relation"], task.label_kind)
    return MethodOutput(world_coef=per_variable(task, coef), spurious_score=per_variable(task, verdict["scores"]),
                        details=info)
