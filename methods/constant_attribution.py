"""Control: the same attribution for every variable."""

from __future__ import annotations

from cowbench.access import Task
from cowbench.method import Method, MethodOutput, register_method


@register_method
class ConstantAttribution(Method):
    """Control: attribute 1 to every variable (``model_coef[v] = 1``), reading nothing.

    Reliances are mostly positive, so under the scale-free ``model_err`` a constant vector is far from the
    declared chance of 1 (0.02 on linear_sem, where the reliances are nearly equal): it is the level an
    attribution must beat. It ranks nothing (``model_rank`` 0) and agrees in sign exactly where the reliance
    is positive (``model_sign``: the share of positive reliance).

    Parameters
    ----------
    random_state : int, optional
        Unused; kept for the common interface.

    References
    ----------
    Adebayo, J., Gilmer, J., Muelly, M., Goodfellow, I., Hardt, M. & Kim, B. (2018). Sanity checks for
    saliency maps. NeurIPS, arXiv:1810.03292 (attributions read against model- and data-independent ones).
    """

    name = "constant_attribution"
    version = "1"
    family = "attribution"
    access = frozenset({"pooled"})
    outputs = frozenset({"model"})
    control = True

    def __init__(self, *, random_state: int | None = None):
        self.random_state = random_state

    def run(self, task: Task) -> MethodOutput:
        return MethodOutput(model_coef={v: 1.0 for v in task.variables})
