"""Control: a detector that always abstains."""

from __future__ import annotations

from cowbench.access import Task
from cowbench.method import Method, MethodOutput, register_method
from cowbench.methods._controls import DETECT_CONTROL_ACCESS, read_identifying_levels


@register_method
class AlwaysAbstain(Method):
    """Control: abstain from every detection verdict, after reading (and ignoring) every identifying level.

    ``detect_score`` gives an abstention where the scenario is identifiable at the access read chance (1/2),
    so this control sits at chance wherever the primary is defined; ``abstain_right`` is 1 only where no
    access level identifies the spurious role. A detector whose abstentions are worth something beats it on
    ``abstain_right`` without losing ``detect_score``.

    Parameters
    ----------
    random_state : int, optional
        Unused; kept for the common interface.

    References
    ----------
    Peters, J., Buhlmann, P. & Meinshausen, N. (2016). Causal inference by using invariant prediction:
    identification and confidence intervals. JRSS-B 78(5), arXiv:1501.01332 (ICP's empty set: abstention as a
    verdict).
    """

    name = "always_abstain"
    version = "1"
    family = "causal"
    access = DETECT_CONTROL_ACCESS
    outputs = frozenset({"detect"})
    control = True

    def __init__(self, *, random_state: int | None = None):
        self.random_state = random_state

    def run(self, task: Task) -> MethodOutput:
        read_identifying_levels(task)
        return MethodOutput(abstain=True)
