"""Worked example, world track: estimate each variable's structural coefficient from pooled data.

Run it: ``cowbench check example_world_ls --plugins docs/examples/world_least_squares.py``.
"""

from __future__ import annotations

import numpy as np

from cowbench.methods import Method, MethodOutput, register_method


@register_method
class ExampleWorldLeastSquares(Method):
    """Least squares of the label on the inputs, read per variable through ``task.input_map``.

    Uses only ``pooled`` access (training inputs and labels). ``needs_input_map``: the harness skips scenarios
    whose rendering mixes variables into the inputs (an image), with that reason.

    References
    ----------
    Legendre, A.-M. (1805). Nouvelles méthodes pour la détermination des orbites des comètes.
    """

    name = "example_world_ls"
    family = "estimation"
    access = frozenset({"pooled"})
    outputs = frozenset({"world"})
    needs_input_map = True
    label_kinds = frozenset({"binary", "continuous"})

    def __init__(self, *, random_state: int | None = None):
        self.random_state = random_state

    def run(self, task) -> MethodOutput:
        x = np.asarray(task.train.x, dtype=np.float64)  # (n, d)
        y = np.asarray(task.train.y, dtype=np.float64)  # (n,)
        design = np.column_stack([x, np.ones(len(x))])
        coef, *_ = np.linalg.lstsq(design, y, rcond=None)
        columns = task.input_map  # variable -> input column
        return MethodOutput(world_coef={v: float(coef[columns[v]]) for v in task.variables})
