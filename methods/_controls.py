"""Shared pieces of the world, model and detection controls (`zero_world`, `random_world`, `constant_attribution`,
`random_attribution`, `random_detect`, `always_abstain`).

A control is what a track's numbers are read against (``Method.control``): it is scored, shown marked and never
ranked. Its value is the track's measured chance level on each scenario, replacing a declared one.
"""

from __future__ import annotations

import numpy as np

from cowbench.access import Task

#: The access levels a detection control reads (and ignores): every level at which a spurious role can become
#: identifiable (`cowbench.access.IDENTIFICATION_ORDER`), so that detect_score, which is defined only where the
#: scenario is identifiable at the access a method read, is defined for the controls wherever it is for any method.
DETECT_CONTROL_ACCESS = frozenset({"pooled", "env", "concept", "counterfactual"})


def rng_of(random_state: int | None) -> np.random.Generator:
    """The control's generator: seeded by ``random_state`` (0 when unset), so a job's draw is reproducible."""
    return np.random.default_rng(0 if random_state is None else int(random_state))


def read_identifying_levels(task: Task) -> None:
    """Read every identifying level the task allows, ignoring what is read: a detection control has then seen
    what the strongest detector could see (env labels, concept labels, one intervention on the validation units).
    """
    if "env" in task.access:
        _ = task.train.env
    if "concept" in task.access:
        _ = task.concept_index
    if "counterfactual" in task.access:
        task.intervene({}, "val")
