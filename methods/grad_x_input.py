"""Gradient times input of the subject model's logit, averaged over training inputs, per variable."""

from __future__ import annotations

import numpy as np
import torch

from cowbench.access import Task
from cowbench.method import Method, MethodOutput, register_method
from cowbench.methods._common import per_variable


@register_method
class GradXInput(Method):
    """Mean gradient-times-input attribution ``E_x[x_j * df(x)/dx_j]`` over training inputs, per variable.

    For a linear logit ``f(x) = w.x + b`` the attribution of unit ``x`` is ``w_j x_j``, so the output is
    ``w_j * mean(x_j)`` (catalog §5.2, O16): the weight scaled by where the input happens to sit, not the
    model's reliance ``ace = w_j``. Per-variable answers are read off the input columns (identity
    rendering, ``needs_input_map``).

    Known failures (catalog §5.2): not invariant to a constant input shift that leaves the model's function
    unchanged — with inputs ``x + c`` and a model ``f(x - c)`` every variable, an unused nuisance included,
    gains ``w_j * c`` (Kindermans et al. 2019); for centred inputs the answer is near zero whatever the
    weight; zero gradient in saturated regions (Shrikumar et al. 2017); attributions can indicate a spurious
    signal the model does not use (Adebayo et al. 2022).

    Parameters
    ----------
    max_units : int
        Number of training units averaged over (the first ones; training units are in random order).
    random_state : int, optional
        Unused (deterministic); kept for the common interface.

    References
    ----------
    Shrikumar, A., Greenside, P., Shcherbina, A. & Kundaje, A. (2016). Not just a black box: learning
    important features through propagating activation differences. arXiv:1605.01713.

    Kindermans, P.-J., Hooker, S., Adebayo, J., Alber, M., Schütt, K. T., Dähne, S., Erhan, D. & Kim, B.
    (2019). The (un)reliability of saliency methods. In Explainable AI, LNCS 11700, Springer;
    arXiv:1711.00867.
    """

    name = "grad_x_input"
    version = "1"
    family = "attribution"
    access = frozenset({"pooled", "internals"})
    outputs = frozenset({"model"})
    needs_input_map = True

    def __init__(self, *, max_units: int = 4000, random_state: int | None = None):
        self.max_units = max_units
        self.random_state = random_state

    def run(self, task: Task) -> MethodOutput:
        model = task.model
        model.eval()
        x = torch.tensor(np.asarray(task.train.spread(self.max_units).x), requires_grad=True)  # (n, d)
        model(x).sum().backward()
        attribution = (x.grad * x).detach().double().numpy()  # (n, d): x_j df/dx_j per unit
        return MethodOutput(model_coef=per_variable(task, attribution.mean(0)),
                            details={"n_units": len(attribution)})
