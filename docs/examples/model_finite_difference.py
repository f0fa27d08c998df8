"""Worked example, model track: how much the subject model relies on each variable, by black-box queries.

Run it: ``cowbench check example_model_fd --plugins docs/examples/model_finite_difference.py``.
"""

from __future__ import annotations

import numpy as np

from cowbench.methods import Method, MethodOutput, register_method


@register_method
class ExampleModelFiniteDifference(Method):
    """The mean change of the subject model's logit when one variable's input moves by ``step``, divided by it.

    ``task.predict_logit(x)`` is a black-box query (``pooled`` access): logits of shape (n,). For a model
    that is linear in its inputs this is exactly each input's weight.

    References
    ----------
    Baehrens, D. et al. (2010). How to explain individual classification decisions. JMLR 11.
    """

    name = "example_model_fd"
    family = "attribution"
    access = frozenset({"pooled"})
    outputs = frozenset({"model"})
    needs_input_map = True
    label_kinds = frozenset({"binary", "continuous"})

    def __init__(self, *, step: float = 0.5, random_state: int | None = None):
        self.step = step
        self.random_state = random_state

    def run(self, task) -> MethodOutput:
        x = np.array(task.train.spread(500).x, dtype=np.float32)  # a writable copy of 500 spread units
        base = task.predict_logit(x)
        coef = {}
        for variable, column in task.input_map.items():
            moved = x.copy()
            moved[:, column] += self.step
            coef[variable] = float(np.mean(task.predict_logit(moved) - base) / self.step)
        return MethodOutput(model_coef={v: coef[v] for v in task.variables})
