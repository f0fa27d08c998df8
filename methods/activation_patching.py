"""Activation patching on counterfactual pairs: total effect per variable and the share each unit mediates."""

from __future__ import annotations

import numpy as np

from cowbench.access import Task
from cowbench.method import LogUniform, Method, MethodOutput, register_method
from cowbench.methods._algorithm import over_variables
from cowbench.methods._common import (
    concept_directions,
    layer_activations,
    layer_names,
    linear_layers,
    patched_logits,
)


def _slope(effect: np.ndarray, dv: np.ndarray) -> float:
    """Least-squares slope through the origin of per-pair effects on the change of the variable."""
    den = float(dv @ dv)
    return float(effect @ dv) / den if den > 0 else 0.0


def _share(part: float, total: float) -> float:
    return part / total if abs(total) > 1e-12 else 0.0


@register_method
class ActivationPatching(Method):
    """Interchange interventions on the last hidden layer, with counterfactual pairs from the generator.

    For each observed variable ``v`` and each unit ``i`` of the concept subset, a base input is the unit
    with every observed variable held at its value, and a source input the same unit (same exogenous
    noise) with ``v`` replaced by ``v'_i``, a random permutation of ``v`` over the subset, the other
    observed variables still held (as the model truth does: effects through the model's own inputs, not
    through ``v``'s descendants in the world). With ``h`` the activation entering the model's last
    ``nn.Linear`` (the ReLU outputs of the subject MLP; the inputs for the linear subject):

    * total effect: ``TE_i = f(base | h <- h(source)) - f(base)`` (the whole layer patched);
    * unit ``u``: ``IE_ui = f(base | h_u <- h_u(source)) - f(base)``;
    * probe direction: ``IE_dir,i = f(base | h <- h + ((h(source) - h) . d) d) - f(base)`` with ``d`` the
      unit-norm least-squares probe direction of ``v`` (as in ``probe_readout``).

    Each effect is summarised by its least-squares slope on ``dv_i = v'_i - v_i`` (through the origin),
    so it is per unit change of ``v``, on the scale of the reliance ``ace``: ``model_coef[v]`` is the slope
    of ``TE``, and ``details`` hold the slopes and mediated shares (slope / TE slope) of every unit and
    of the probe direction. For a linear two-layer network ``f = v'(Wx)`` the share of unit ``u`` is
    ``v_u W_uS / (v' W_:S)`` exactly (catalog O16), and ``TE`` of a linear subject equals its reliance.

    Known failures (catalog §5.6, §5.7): with nonlinear units the effect of a large interchange differs
    from the local slope (the slope here averages over the permutation's jumps, not ``+-delta``), and
    ``TE != NDE + NIE`` for unit subsets in deeper layers; per-unit shares are small and uninformative when
    ``v`` is spread over a rotated basis (a direction or DAS is needed); redundant pathways make
    single-unit patching underestimate a unit's role; results depend on the corruption (here:
    resampling ``v`` by permutation) and the metric (here: the logit).

    Parameters
    ----------
    max_units : int
        Pairs are made of the first ``max_units`` units of the concept subset.
    ridge : float
        Ridge of the joint probe regression that gives the directions, relative to its trace.
    random_state : int, optional
        Seeds the permutations that pick the source values.

    References
    ----------
    Vig, J., Gehrmann, S., Belinkov, Y., Qian, S., Nevo, D., Singer, Y. & Shieber, S. (2020). Causal
    mediation analysis for interpreting neural NLP: the case of gender bias. arXiv:2004.12265.
    Geiger, A., Lu, H., Icard, T. & Potts, C. (2021). Causal abstractions of neural networks. NeurIPS,
    arXiv:2106.02997.
    Heimersheim, S. & Nanda, N. (2024). How to use and interpret activation patching. arXiv:2404.15255.
    """

    name = "activation_patching"
    version = "2"
    family = "attribution"
    access = frozenset({"pooled", "concept", "internals", "counterfactual"})
    outputs = frozenset({"model"})
    search_space = {"ridge": LogUniform(1e-10, 1e-2)}

    def __init__(self, *, max_units: int = 2000, ridge: float = 1e-8, random_state: int | None = None):
        self.max_units = max_units
        self.ridge = ridge
        self.random_state = random_state

    def _inputs(self, task: Task, held: dict[str, np.ndarray], n: int) -> np.ndarray:
        """Inputs of the first ``n`` labelled units under ``do(held)`` (values only matter for those units)."""
        n_train = len(task.train)
        rows = task.concept_index[:n]
        do = {}
        for v, values in held.items():
            full = np.full(n_train, values[0], dtype=np.float64)  # other units are computed, never used
            full[rows] = values
            do[v] = full
        return np.asarray(task.intervene(do, split="train").x[rows])

    def run(self, task: Task) -> MethodOutput:
        n = min(int(self.max_units), task.n_concept)
        concepts = task.concepts.iloc[:n]
        variables = task.variables
        held = {v: concepts[v].to_numpy(dtype=np.float64) for v in variables}
        model = task.model
        layer = len(linear_layers(model)) - 1  # the activation entering the readout
        rng = np.random.default_rng(self.random_state)

        x_base = self._inputs(task, held, n)
        h_base = layer_activations(model, x_base)[layer]
        f_base = patched_logits(model, x_base, layer, lambda h: h)
        c = np.column_stack([held[v] for v in variables])
        directions = concept_directions(c, h_base, ridge=self.ridge)  # (k, width)

        model_coef: dict[str, float] = {}
        per_variable: dict[str, dict] = {}
        for i, v in enumerate(variables):
            moved = dict(held)
            moved[v] = held[v][rng.permutation(n)]
            dv = moved[v] - held[v]
            h_src = layer_activations(model, self._inputs(task, moved, n))[layer]
            delta = h_src - h_base
            te = patched_logits(model, x_base, layer, lambda h, s=h_src: s) - f_base
            total = _slope(te, dv)
            units = []
            for u in range(h_base.shape[1]):
                def one(h, u=u, s=h_src):
                    out = h.copy()
                    out[:, u] = s[:, u]
                    return out
                units.append(_slope(patched_logits(model, x_base, layer, one) - f_base, dv))
            norm = float(np.linalg.norm(directions[i]))
            d = directions[i] / norm if norm > 0 else np.zeros_like(directions[i])
            along = patched_logits(model, x_base, layer, lambda h, d=d, dl=delta: h + np.outer(dl @ d, d)) - f_base
            direction = _slope(along, dv)
            model_coef[v] = total
            per_variable[v] = {
                "total_effect": total,
                "mean_abs_effect": float(np.mean(np.abs(te))),
                "unit_effects": units,
                "unit_shares": [_share(e, total) for e in units],
                "direction_effect": direction,
                "direction_share": _share(direction, total),
            }
        return MethodOutput(model_coef=model_coef, algorithm=over_variables(task, model_coef),
                            details={"layer": layer_names(model)[layer], "arch": task.subject_config.get("arch"),
                                     "n_pairs": n, "variables": per_variable})
