"""Probe direction of each variable in the last hidden layer, read out through the model's readout weights."""

from __future__ import annotations

import numpy as np

from cowbench.access import Task
from cowbench.method import LogUniform, Method, MethodOutput, register_method
from cowbench.methods._algorithm import over_variables
from cowbench.methods._common import concept_directions, layer_activations, layer_names, linear_layers


@register_method
class ProbeReadout(Method):
    """Linearised effect of each variable on the logit through the last hidden layer: ``d_v . w``.

    On the concept subset, the activations ``h`` entering the model's last ``nn.Linear`` (the ReLU
    outputs of the subject MLP; the inputs ``x`` for the linear subject) are regressed on all observed
    variables jointly, ``h - mean(h) ~ (c - mean(c)) B``; row ``d_v`` of ``B`` is how the layer moves per
    unit change of ``v`` with the other variables held (the least-squares probe direction of ``v``). With
    ``w`` the readout weights, ``model_coef[v] = d_v . w``. Because the readout is linear this equals the
    coefficient of ``v`` in the least-squares regression of the logit on the variables, an
    observational, first-order estimate of the average effect of ``v`` (per unit; 0 -> 1 for a binary
    variable). For a linear subject on the identity rendering ``B`` is the identity up to estimation
    noise and the estimate is the weight vector, i.e. the reliance (catalog O16). Unlike decodability it
    is zero for a direction the readout ignores (catalog §5.1 (f)).

    Known failures: it is a regression, so a nonlinear dependence on ``v`` (an interaction, an xor) is
    summarised by its best linear fit on the concept distribution, which can differ from the
    interventional effect off that distribution; a used variable missing from the concept set is
    attributed to correlated observed ones (omitted-variable bias, catalog O1). Works on every rendering.

    Parameters
    ----------
    ridge : float
        Ridge added to the normal equations of the joint regression, relative to their trace.
    random_state : int, optional
        Unused (deterministic); kept for the common interface.

    References
    ----------
    Alain, G. & Bengio, Y. (2016). Understanding intermediate layers using linear classifier probes.
    arXiv:1610.01644.
    Belinkov, Y. (2022). Probing classifiers: promises, shortcomings, and advances. Computational
    Linguistics 48(1), arXiv:2102.12452.
    Kim, B., Wattenberg, M., Gilmer, J., Cai, C., Wexler, J., Viegas, F. & Sayres, R. (2018).
    Interpretability beyond feature attribution: testing with concept activation vectors (TCAV). ICML,
    arXiv:1711.11279 (a concept direction combined with the model's sensitivity along it).
    """

    name = "probe_readout"
    version = "2"
    family = "attribution"
    access = frozenset({"pooled", "concept", "internals"})
    outputs = frozenset({"model"})
    search_space = {"ridge": LogUniform(1e-10, 1e-2)}

    def __init__(self, *, ridge: float = 1e-8, random_state: int | None = None):
        self.ridge = ridge
        self.random_state = random_state

    def run(self, task: Task) -> MethodOutput:
        concepts = task.concepts
        model = task.model
        readout = linear_layers(model)[-1]
        layer = len(linear_layers(model)) - 1
        h = layer_activations(model, task.concept_x)[layer]  # (n_c, width)
        c = concepts[task.variables].to_numpy(dtype=np.float64)
        directions = concept_directions(c, h, ridge=self.ridge)  # (k, width)
        w = readout.weight.detach().double().numpy()  # (n_out, width)
        effect = directions @ w.sum(0)  # (k,): the logit is the (single) output
        model_coef = {v: float(effect[i]) for i, v in enumerate(task.variables)}
        return MethodOutput(model_coef=model_coef, algorithm=over_variables(task, model_coef),
                            details={"layer": layer_names(model)[layer], "arch": task.subject_config.get("arch"),
                                     "direction_norm": {v: float(np.linalg.norm(directions[i]))
                                                        for i, v in enumerate(task.variables)}})
