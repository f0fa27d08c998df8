"""Control: world coefficients drawn at random."""

from __future__ import annotations

from cowbench.access import Task
from cowbench.method import Method, MethodOutput, register_method
from cowbench.methods._controls import rng_of


@register_method
class RandomWorld(Method):
    """Control: world coefficients drawn independently from ``N(0, scale^2)``, seeded by ``random_state``.

    It reads nothing but the variable names. Under the scale-free ``world_err`` its expected error is below 1
    (the best non-negative rescaling of a random vector beats zero about half the time), so it, not the
    declared 1, is the level a world estimate must beat.

    Parameters
    ----------
    scale : float
        Standard deviation of each coefficient (the truth's scale is unknown to the method; 1 is the unit of
        a standardized coefficient).
    random_state : int, optional
        Seed of the draw.

    References
    ----------
    Gulrajani, I. & Lopez-Paz, D. (2021). In search of lost domain generalization. ICLR, arXiv:2007.01434
    (baselines as the reference every method is read against).
    """

    name = "random_world"
    version = "1"
    family = "estimation"
    access = frozenset({"pooled"})
    outputs = frozenset({"world"})
    control = True

    def __init__(self, *, scale: float = 1.0, random_state: int | None = None):
        self.scale = scale
        self.random_state = random_state

    def run(self, task: Task) -> MethodOutput:
        draw = rng_of(self.random_state).normal(0.0, self.scale, len(task.variables))
        return MethodOutput(world_coef={v: float(c) for v, c in zip(task.variables, draw, strict=True)})
