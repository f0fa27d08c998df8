"""Mean-ablate the edit target's probe direction at the subject model's input (through `cowbench.surgery`)."""

from __future__ import annotations

import numpy as np

from cowbench import surgery
from cowbench.access import Task
from cowbench.method import Method, MethodOutput, register_method
from cowbench.methods._common import concept_directions


@register_method
class EraseSpurious(Method):
    """Mean-ablate the edit target's input direction, found with a linear probe on concept labels.

    On the labelled subset, a multi-output least-squares probe ``x - mean(x) ~ (c - mean(c)) B``
    (c = every observed variable) gives each variable's input direction ``d_v`` (a row of ``B``, shape
    (d,)); the rows of ``pinv(B)`` give read-out directions ``u_v`` with ``u_v . d_w = 1[v = w]``. The
    edit replaces the target's coordinate by its mean, ``x -> P x + (I - P) mu`` with ``P = I - d_s u_s'``,
    inserted at the hook point ``input`` (`cowbench.surgery.AffineHook`), so it works for every subject
    architecture. On an identity rendering this is "set grass to its mean"; the other variables'
    directions are kept exactly (``P d_v = d_v``). The model is not retrained, so weights co-adapted with
    the spurious input stay as they are (catalog §5.15 (f)).

    This is an oblique mean-ablation of one probe direction, not LEACE: LEACE whitens by the covariance and
    removes every linearly decodable trace of the concept with the least change (``leace`` implements it);
    here the read-out ``u_s`` comes from the joint probe, so what correlates with the target through the
    other variables is kept. Reports where it acted: ``localized = {"point": "input", "unit_scores":
    |d_s|, "subspace": d_s}`` (summed over targets for the scores, one column per target for the subspace).

    Parameters
    ----------
    ridge : float
        Ridge added to the probe's normal equations, relative to their trace (numerical safety).
    random_state : int, optional
        Unused (deterministic); kept for the common interface.

    References
    ----------
    Ravfogel, S., Elazar, Y., Gonen, H., Twiton, M. & Goldberg, Y. (2020). Null it out: guarding
    protected attributes by iterative nullspace projection. ACL, arXiv:2004.07667 (removing a probe's
    direction).
    Belrose, N., Schneider-Joseph, D., Ravfogel, S., Cotterell, R., Raff, E. & Biderman, S. (2023).
    LEACE: perfect linear concept erasure in closed form. NeurIPS, arXiv:2306.03819 (the optimal erasure this
    simpler edit is compared with).
    """

    name = "erase_spurious"
    version = "2"  # 2: the edit is an input hook instead of folded weights (same function), and it localizes
    family = "editing"
    access = frozenset({"pooled", "concept", "internals"})
    outputs = frozenset({"edit"})

    def __init__(self, *, ridge: float = 1e-8, random_state: int | None = None):
        self.ridge = ridge
        self.random_state = random_state

    def run(self, task: Task) -> MethodOutput:
        concepts = task.concepts  # (n_c, k) DataFrame over observed variables
        targets = task.edit_target
        x = np.asarray(task.concept_x, dtype=np.float64)  # (n_c, d)
        directions = concept_directions(concepts.to_numpy(dtype=np.float64), x, ridge=self.ridge)  # B, (k, d)
        readout = np.linalg.pinv(directions)  # (d, k): column v reads v's coordinate
        cols = [list(concepts.columns).index(t) for t in targets]
        removal = directions[cols].T @ readout[:, cols].T  # (d, d) = sum_s d_s u_s'
        hook = surgery.AffineHook(np.eye(x.shape[1]) - removal, removal @ x.mean(0))
        edited = surgery.with_hook(task.model, "input", hook)
        found = directions[cols].T  # (d, n_targets)
        return MethodOutput(edited=edited,
                            localized={"point": "input", "unit_scores": np.abs(found).sum(1), "subspace": found},
                            details={"targets": targets,
                                     "directions": {t: directions[i].tolist() for t, i in zip(targets, cols,
                                                                                              strict=True)}})
