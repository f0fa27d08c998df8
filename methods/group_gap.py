"""Group-balanced versus pooled fits: a variable whose weight vanishes once groups are balanced is spurious."""

from __future__ import annotations

import numpy as np

from cowbench.access import Task
from cowbench.method import LogUniform, Method, MethodOutput, register_method
from cowbench.methods._common import per_variable


@register_method
class GroupGap(Method):
    """Logistic regression pooled and with groups balanced (``w_i = 1/(G n_g(i))``); the gap is the score.

    ``spurious_score[v] = (|w_pooled,v| - |w_balanced,v|) / (|w_pooled,v| + |w_balanced,v|)``, in [-1, 1]:
    near 1 when balancing the (label x spurious attribute) groups removes the variable's weight. In the
    balanced population the label is independent of the attribute, so the population weight of a variable
    that only carries the attribute is 0 while a cause keeps its weight (catalog O14: balanced weight on the
    spurious feature 0). The balanced fit is also reported as a world estimate. Fails where balancing does
    not decorrelate the variable from a cause, e.g. a proxy of a noisily observed cause (catalog §4.2
    (f)(iii)), and where a minority group is empty (nothing to balance: it abstains).

    Parameters
    ----------
    C : float
        Inverse L2 penalty of both fits.
    max_iter : int
    random_state : int, optional
        Unused (deterministic); kept for the common interface.

    References
    ----------
    Idrissi, B. Y., Arjovsky, M., Pezeshki, M. & Lopez-Paz, D. (2022). Simple data balancing achieves
    competitive worst-group-accuracy. CLeaR, arXiv:2110.14503.
    Sagawa, S., Koh, P. W., Hashimoto, T. B. & Liang, P. (2020). Distributionally robust neural networks for
    group shifts. ICLR, arXiv:1911.08731.
    """

    name = "group_gap"
    version = "1"
    family = "estimation"
    access = frozenset({"pooled", "group"})
    outputs = frozenset({"world", "detect"})
    needs_input_map = True
    label_kinds = frozenset({"binary"})
    search_space = {"C": LogUniform(1e-2, 1e4)}

    def __init__(self, *, C: float = 1e4, max_iter: int = 1000, random_state: int | None = None):
        self.C = C
        self.max_iter = max_iter
        self.random_state = random_state

    def run(self, task: Task) -> MethodOutput:
        from sklearn.linear_model import LogisticRegression

        x, y, group = task.train.x, task.train.y, np.asarray(task.train.group)
        labels, inverse, counts = np.unique(group, return_inverse=True, return_counts=True)
        if len(labels) < 4:
            return MethodOutput(abstain=True, details={"reason": "a (label x attribute) group is empty",
                                                       "groups": labels.tolist()})
        weights = len(group) / (len(labels) * counts[inverse])  # mean weight 1
        pooled = LogisticRegression(C=self.C, max_iter=self.max_iter).fit(x, y).coef_.ravel()
        balanced = LogisticRegression(C=self.C, max_iter=self.max_iter).fit(x, y, sample_weight=weights).coef_.ravel()
        a, b = np.abs(pooled), np.abs(balanced)
        gap = (a - b) / np.maximum(a + b, 1e-12)
        return MethodOutput(world_coef=per_variable(task, balanced), spurious_score=per_variable(task, gap),
                            details={"pooled": per_variable(task, pooled)})
