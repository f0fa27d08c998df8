"""Worked example, detect track: score each variable by how much its relation to the label moves across
training environments (a spurious variable's does; a causal one's is invariant).

Run it: ``cowbench check example_detect_shift --plugins docs/examples/detect_env_shift.py``.
"""

from __future__ import annotations

import numpy as np

from cowbench.methods import Method, MethodOutput, register_method


@register_method
class ExampleDetectEnvShift(Method):
    """Per environment, least squares of the label on the inputs; a variable's score is the spread (s.d.) of its
    coefficient across environments. Higher means more likely spurious.

    Declares ``env`` access to read ``task.train.env`` (environment labels, shape (n,)); it abstains when the
    scenario has one training environment (nothing to compare).

    References
    ----------
    Peters, J., Bühlmann, P. & Meinshausen, N. (2016). Causal inference by using invariant prediction. JRSS-B.
    """

    name = "example_detect_shift"
    family = "causal"
    access = frozenset({"pooled", "env"})
    outputs = frozenset({"detect"})
    needs_input_map = True
    label_kinds = frozenset({"binary", "continuous"})

    def __init__(self, *, random_state: int | None = None):
        self.random_state = random_state

    def run(self, task) -> MethodOutput:
        x = np.asarray(task.train.x, dtype=np.float64)
        y = np.asarray(task.train.y, dtype=np.float64)
        env = np.asarray(task.train.env)
        if len(np.unique(env)) < 2:
            return MethodOutput(abstain=True, details={"why": "one training environment"})
        per_env = []
        for e in np.unique(env):
            rows = env == e
            design = np.column_stack([x[rows], np.ones(rows.sum())])
            per_env.append(np.linalg.lstsq(design, y[rows], rcond=None)[0][:-1])
        spread = np.std(np.array(per_env), axis=0)  # (d,)
        return MethodOutput(spurious_score={v: float(spread[c]) for v, c in task.input_map.items()})
