"""Control: attributions drawn at random."""

from __future__ import annotations

from cowbench.access import Task
from cowbench.method import Method, MethodOutput, register_method
from cowbench.methods._controls import rng_of


@register_method
class RandomAttribution(Method):
    """Control: ``model_coef[v] ~ N(0, 1)`` independently, seeded by ``random_state``; it reads nothing.

    Expected ``model_rank`` 0, ``model_sign`` 1/2 and ``model_cos`` 0; its ``model_err`` is the scale-free
    error a random direction reaches after the best non-negative rescaling (below 1).

    Parameters
    ----------
    random_state : int, optional
        Seed of the draw.

    References
    ----------
    Adebayo, J., Gilmer, J., Muelly, M., Goodfellow, I., Hardt, M. & Kim, B. (2018). Sanity checks for
    saliency maps. NeurIPS, arXiv:1810.03292 (attributions read against model- and data-independent ones).
    """

    name = "random_attribution"
    version = "1"
    family = "attribution"
    access = frozenset({"pooled"})
    outputs = frozenset({"model"})
    control = True

    def __init__(self, *, random_state: int | None = None):
        self.random_state = random_state

    def run(self, task: Task) -> MethodOutput:
        draw = rng_of(self.random_state).standard_normal(len(task.variables))
        return MethodOutput(model_coef={v: float(c) for v, c in zip(task.variables, draw, strict=True)})
