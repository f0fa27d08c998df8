"""Mean input gradient of the subject model's logit, per variable."""

from __future__ import annotations

import numpy as np
import torch

from cowbench.access import Task
from cowbench.method import Method, MethodOutput, register_method
from cowbench.methods._common import per_variable


@register_method
class InputGradient(Method):
    """The average gradient of the logit with respect to each variable's input, over training inputs.

    For a linear model it is exactly the weight vector, hence exactly the model's reliance on an
    identity rendering (catalog O16). For a nonlinear model it averages the local slope over the
    training distribution, which can differ from the interventional effect off that distribution.

    Parameters
    ----------
    max_units : int
        Number of training units averaged over (the first ones).
    random_state : int, optional
        Unused (deterministic); kept for the common interface.

    References
    ----------
    Simonyan, K., Vedaldi, A. & Zisserman, A. (2014). Deep inside convolutional networks: visualising
    image classification models and saliency maps. ICLR workshop, arXiv:1312.6034.
    """

    name = "input_gradient"
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
        x = torch.tensor(np.asarray(task.train.spread(self.max_units).x), requires_grad=True)  # (n, d)
        model(x).sum().backward()
        grad = x.grad.mean(0).double().numpy()  # (d,)
        return MethodOutput(model_coef=per_variable(task, grad))
