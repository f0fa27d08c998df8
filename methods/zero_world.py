"""Control: every world coefficient 0."""

from __future__ import annotations

from cowbench.access import Task
from cowbench.method import Method, MethodOutput, register_method


@register_method
class ZeroWorld(Method):
    """Control: estimate every world (structural) coefficient as 0.

    ``world_err`` is 1 by construction (the error of estimating nothing), ``world_mse_*`` is the mean squared
    true coefficient and ``world_cos`` is missing (a zero vector has no direction). A world estimate is worth
    reading only where it beats this and `random_world`.

    Parameters
    ----------
    random_state : int, optional
        Unused; kept for the common interface.

    References
    ----------
    Gulrajani, I. & Lopez-Paz, D. (2021). In search of lost domain generalization. ICLR, arXiv:2007.01434
    (baselines as the reference every method is read against).
    """

    name = "zero_world"
    version = "1"
    family = "estimation"
    access = frozenset({"pooled"})
    outputs = frozenset({"world"})
    control = True

    def __init__(self, *, random_state: int | None = None):
        self.random_state = random_state

    def run(self, task: Task) -> MethodOutput:
        return MethodOutput(world_coef={v: 0.0 for v in task.variables})
