"""Control: spurious scores drawn at random."""

from __future__ import annotations

from cowbench.access import Task
from cowbench.method import Method, MethodOutput, register_method
from cowbench.methods._controls import DETECT_CONTROL_ACCESS, read_identifying_levels, rng_of


@register_method
class RandomDetect(Method):
    """Control: ``spurious_score[v] ~ U(0, 1)`` independently, seeded by ``random_state``; never abstains.

    It reads (and ignores) every identifying access level (environment labels, concept labels, one
    intervention), so its ``detect_score`` is defined wherever any detector's is: AUROC 1/2 in expectation.
    It never reads group labels or the edit target. Its ``abstain_right`` is the share of its jobs where a
    verdict was supportable.

    Parameters
    ----------
    random_state : int, optional
        Seed of the draw.

    References
    ----------
    Peters, J., Buhlmann, P. & Meinshausen, N. (2016). Causal inference by using invariant prediction:
    identification and confidence intervals. JRSS-B 78(5), arXiv:1501.01332 (a detector is read against what
    it claims when nothing can be identified).
    """

    name = "random_detect"
    version = "1"
    family = "causal"
    access = DETECT_CONTROL_ACCESS
    outputs = frozenset({"detect"})
    control = True

    def __init__(self, *, random_state: int | None = None):
        self.random_state = random_state

    def run(self, task: Task) -> MethodOutput:
        read_identifying_levels(task)
        draw = rng_of(self.random_state).random(len(task.variables))
        return MethodOutput(spurious_score={v: float(s) for v, s in zip(task.variables, draw, strict=True)})
