"""Back-door adjustment for the environment: regression with environment fixed effects."""

from __future__ import annotations

import numpy as np

from cowbench.access import Task
from cowbench.method import LogUniform, Method, MethodOutput, register_method
from cowbench.methods._common import per_variable


def env_dummies(env: np.ndarray) -> np.ndarray:
    """One-hot environment indicators without the first level (the intercept carries it), float64 (n, E-1)."""
    levels = np.unique(env)
    return (np.asarray(env)[:, None] == levels[None, 1:]).astype(np.float64)


@register_method
class BackdoorEnv(Method):
    """Regression of the label on the inputs plus environment fixed effects (back-door adjustment for E).

    Fits ``y ~ b0 + x.b + sum_e a_e 1[E = e]`` - least squares for a continuous label, logistic regression
    (near-unpenalised, L-BFGS) for a binary one - and reports ``b`` as the world and the model estimate.
    The within-environment coefficient is the adjusted effect ``E[Y | do(S = s)] = sum_e P(e) E[Y | S = s,
    E = e]`` (Pearl 2009, back-door criterion) when the environment blocks every back-door path from the
    spurious variable to the label (catalog §3.1): an environment that shifts both the prevalence of the
    label and of the spurious variable (``cow_confounded``) is adjusted away. With one environment it
    reduces to the pooled regression.

    Known failures (catalog §3.1 (f)): an anti-causal spurious variable (y -> s) keeps its non-zero
    within-environment coefficient (no adjustment set exists); a hidden confounder that is not the
    environment remains; positivity: when s is nearly constant within environments the estimate's
    variance explodes. For a binary label the coefficients are logistic ones (non-collapsible, catalog O5),
    so they match the probit structural index only up to scale.

    Parameters
    ----------
    C : float
        Inverse L2 penalty of the logistic fit (binary label only; large = unpenalised).
    max_iter : int
        L-BFGS iterations of the logistic fit.
    random_state : int, optional
        Unused (deterministic).

    References
    ----------
    Pearl, J. (2009). Causality: Models, Reasoning, and Inference (2nd ed.), §3.3 (the back-door
    criterion). Cambridge University Press.
    """

    name = "backdoor_env"
    version = "1"
    family = "causal"
    access = frozenset({"pooled", "env"})
    outputs = frozenset({"world", "model"})
    needs_input_map = True
    search_space = {"C": LogUniform(1e-2, 1e4)}

    def __init__(self, *, C: float = 1e4, max_iter: int = 1000, random_state: int | None = None):
        self.C = C
        self.max_iter = max_iter
        self.random_state = random_state

    def fit_inputs(self, x: np.ndarray, y: np.ndarray, env: np.ndarray, kind: str) -> np.ndarray:
        """Input-space mode: coefficients on the input columns, environment effects partialled out."""
        x = np.asarray(x, dtype=np.float64)
        d = x.shape[1]
        design = np.column_stack([x, env_dummies(env)])
        if kind == "continuous":
            z = np.column_stack([np.ones(len(x)), design])
            return np.linalg.lstsq(z, np.asarray(y, dtype=np.float64), rcond=None)[0][1 : d + 1]
        from sklearn.linear_model import LogisticRegression

        fit = LogisticRegression(C=self.C, max_iter=self.max_iter, tol=1e-8).fit(design, y)
        return fit.coef_.ravel()[:d].astype(np.float64)

    def run(self, task: Task) -> MethodOutput:
        coef = self.fit_inputs(task.train.x, task.train.y, task.train.env, task.label_kind)
        estimate = per_variable(task, coef)
        return MethodOutput(world_coef=estimate, model_coef=dict(estimate),
                            details={"n_environments": len(np.unique(task.train.env))})
