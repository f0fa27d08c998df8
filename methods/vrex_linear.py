"""V-REx with a linear predictor: risk extrapolation as a coefficient estimator."""

from __future__ import annotations

import numpy as np

from cowbench.access import Task
from cowbench.method import Integer, LogUniform, Method, MethodOutput, Options, register_method
from cowbench.methods.irm_linear import fit_penalised, invariance_output


@register_method
class VRExLinear(Method):
    """V-REx over linear predictors: ``min_w sum_e R_e(w) + beta * Var_e(R_e(w))``.

    ``R_e`` is the squared loss (continuous label) or the logistic loss (binary label) of an affine
    predictor in environment ``e``; ``Var_e`` is the population variance of the per-environment risks
    (Krueger et al. 2021, eq. V-REx). Optimised exactly like ``irm_linear`` (same code: standardised
    inputs and label, warm-up at weight 1, then a continuation of the weight to ``beta`` with full-batch
    L-BFGS, or the Adam schedule of the IRM code); for a continuous label the risks come exactly from
    per-environment second moments, so a step costs O(d^2) whatever n. Outputs the coefficients as world
    and model estimates and ``spurious_score = (|w_ERM| - |w_VREx|) / (|w_ERM| + |w_VREx|)``.

    Known failures (catalog §4.7): the penalty is zero only when every environment has the same risk, so
    when the label's noise level differs across environments the *causal* predictor is penalised and
    V-REx moves away from it (Arjovsky et al.'s example, catalog O13; Jin et al. 2024); on finite
    samples a large ``beta`` equalises the sampled risks, which pins the coefficients to sampling noise
    and, when another near-equal-risk point has lower total risk, to a wrong solution; needs more
    environments than spurious dimensions (Rosenfeld et al. 2021's analysis extends to REx).

    Parameters
    ----------
    beta : float
        Weight of the risk variance after the warm-up (standardised problem).
    optimizer : {"lbfgs", "adam"}
    steps : int
        L-BFGS iterations per rung, or Adam steps in total.
    lr : float
        Adam learning rate (unused by L-BFGS).
    anneal_steps : int
        Adam warm-up steps at weight 1 (unused by L-BFGS).
    random_state : int, optional
        Unused: the fit starts from zero and is deterministic.

    References
    ----------
    Krueger, D., Caballero, E., Jacobsen, J.-H., Zhang, A., Binas, J., Zhang, D., Le Priol, R. &
    Courville, A. (2021). Out-of-Distribution Generalization via Risk Extrapolation (REx). ICML 2021,
    arXiv:2003.00688.
    """

    name = "vrex_linear"
    version = "1"
    family = "robust_training"
    access = frozenset({"pooled", "env"})
    outputs = frozenset({"world", "model", "detect"})
    needs_input_map = True
    min_environments = 2
    search_space = {"beta": LogUniform(1.0, 1e5)}
    param_constraints = {"optimizer": Options(("lbfgs", "adam")), "anneal_steps": Integer(0)}

    def __init__(self, *, beta: float = 1e3, optimizer: str = "lbfgs", steps: int = 500, lr: float = 0.01,
                 anneal_steps: int = 500, random_state: int | None = None):
        self.beta = beta
        self.optimizer = optimizer
        self.steps = steps
        self.lr = lr
        self.anneal_steps = anneal_steps
        self.random_state = random_state

    def fit_inputs(self, x: np.ndarray, y: np.ndarray, env: np.ndarray, kind: str) -> tuple[np.ndarray, float]:
        """Input-space mode: ``(w, b)`` over the input columns (for renderings without ``input_map``)."""
        return fit_penalised(x, y, env, kind=kind, penalty="vrex", lam=float(self.beta), steps=int(self.steps),
                             lr=float(self.lr), anneal_steps=int(self.anneal_steps), optimizer=self.optimizer)

    def run(self, task: Task) -> MethodOutput:
        return invariance_output(task, self.fit_inputs)
