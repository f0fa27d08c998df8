"""Per-environment fits: a variable whose coefficient changes across environments is flagged spurious."""

from __future__ import annotations

import numpy as np

from cowbench.access import Task
from cowbench.method import LogUniform, Method, MethodOutput, register_method
from cowbench.methods._common import logistic_fit, per_variable


@register_method
class EnvInstability(Method):
    """Heterogeneity of per-environment logistic coefficients (Cochran's Q) as the spurious score.

    Fits a logistic regression in each training environment and scores each variable by
    ``Q_v = sum_e (c_ev - c_v)^2 / se_ev^2`` with ``c_v`` the inverse-variance mean: large when the
    variable's association with the label changes across environments beyond sampling error. A causal
    parent's coefficient is invariant (its mechanism does not change), an anti-causal or confounded
    variable's is not. The inverse-variance mean is also reported as a world estimate, which inherits
    the pooled fit's bias. Fails when the environments do not differ in the spurious mechanism (then
    nothing is identifiable from environments; the method abstains with fewer than two environments),
    and when label noise or link scale differ across environments (every coefficient rescales).

    Parameters
    ----------
    C : float
        Inverse L2 penalty of each per-environment fit.
    max_iter : int
    random_state : int, optional
        Unused (deterministic); kept for the common interface.

    References
    ----------
    Peters, J., Bühlmann, P. & Meinshausen, N. (2016). Causal inference by using invariant prediction:
    identification and confidence intervals. JRSS B 78(5), 947-1012.
    Cochran, W. G. (1954). The combination of estimates from different experiments. Biometrics 10, 101-129.
    """

    name = "env_instability"
    version = "1"
    family = "causal"
    access = frozenset({"pooled", "env"})
    outputs = frozenset({"detect"})
    needs_input_map = True
    label_kinds = frozenset({"binary"})
    search_space = {"C": LogUniform(1e-2, 1e4)}

    def __init__(self, *, C: float = 1e4, max_iter: int = 1000, random_state: int | None = None):
        self.C = C
        self.max_iter = max_iter
        self.random_state = random_state

    def run(self, task: Task) -> MethodOutput:
        x, y, env = task.train.x, task.train.y, task.train.env
        envs = np.unique(env)
        if len(envs) < 2:
            return MethodOutput(abstain=True, details={"reason": "fewer than two training environments"})
        coefs, ses = [], []
        for e in envs:
            c, s = logistic_fit(x[env == e], y[env == e], C=self.C, max_iter=self.max_iter)
            coefs.append(c)
            ses.append(s)
        coef = np.array(coefs)  # (n_env, d)
        weight = 1.0 / np.maximum(np.array(ses), 1e-12) ** 2
        pooled = (weight * coef).sum(0) / weight.sum(0)
        q = (weight * (coef - pooled) ** 2).sum(0)
        return MethodOutput(spurious_score=per_variable(task, q),
                            details={"per_env_coef": [per_variable(task, c) for c in coef]})
