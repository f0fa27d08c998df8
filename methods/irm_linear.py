"""IRMv1 with a linear predictor: invariant risk minimisation as a coefficient estimator.

The optimiser here (`fit_penalised`) is shared with ``vrex_linear``: both minimise the sum of the
per-environment risks plus a penalty, over an affine predictor, full batch, in torch, deterministically.
"""

from __future__ import annotations

import numpy as np
import torch

from cowbench.access import Task
from cowbench.method import Integer, LogUniform, Method, MethodOutput, Options, register_method
from cowbench.methods._common import logistic_fit, per_variable


class _EnvRisks:
    """Per-environment risks ``R_e(f)`` and IRMv1 terms ``D_e = d/ds R_e(s f) at s = 1``, in torch (float64).

    For a continuous label the squared loss is a quadratic form in ``theta`` (intercept first), so each
    environment is summarised exactly by its second moments ``G = Z'Z/n, c = Z'y/n, v = y'y/n``
    (Z = [1, x]): ``R_e(s f) = s^2 theta'G theta - 2 s theta'c + v`` and ``D_e = 2 (theta'G theta -
    theta'c)``. This is the full-batch loss itself, computed without a pass over the rows. For a binary
    label (logistic loss) the rows are used. Either way ``D_e = d/ds R_e(s f)|_{s=1} = theta . grad R_e(theta)``
    exactly (checked against autograd in the unit tests); with per-input dummies ``v`` (``f = b + sum_j v_j
    w_j x_j``) ``D_e = (w_j dR_e/dw_j)_j``, the form the IRM repository's synthetic experiment penalises.
    """

    def __init__(self, xs: np.ndarray, ys: np.ndarray, env: np.ndarray, kind: str):
        self.kind = kind
        envs = np.unique(env)
        if kind == "continuous":
            g, c, v = [], [], []
            for e in envs:
                z = np.column_stack([np.ones(int((env == e).sum())), xs[env == e]])
                ye = ys[env == e]
                g.append(z.T @ z / len(z))
                c.append(z.T @ ye / len(z))
                v.append(ye @ ye / len(z))
            self.g, self.c, self.v = (torch.tensor(np.array(a)) for a in (g, c, v))
        else:
            self.rows = [(torch.tensor(np.column_stack([np.ones(int((env == e).sum())), xs[env == e]])),
                          torch.tensor(ys[env == e])) for e in envs]

    def risk_grad(self, theta: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(risks (E,), their gradients with respect to theta (E, p))."""
        if self.kind == "continuous":
            gt = self.g @ theta  # (E, p)
            quad = gt @ theta
            lin = self.c @ theta
            return quad - 2 * lin + self.v, 2 * (gt - self.c)
        rs, gs = [], []
        for z, y in self.rows:
            f = z @ theta
            rs.append(torch.nn.functional.binary_cross_entropy_with_logits(f, y))
            gs.append(((torch.sigmoid(f) - y)[:, None] * z).mean(0))
        return torch.stack(rs), torch.stack(gs)

    def __call__(self, theta: torch.Tensor, dummy: str = "scalar") -> tuple[torch.Tensor, torch.Tensor]:
        """(risks (E,), D) with D of shape (E,) for the scalar dummy, (E, d) for the per-input dummies."""
        risks, grad = self.risk_grad(theta)
        if dummy == "scalar":  # d/ds R_e(s f) at s = 1 = theta . dR_e/dtheta
            return risks, grad @ theta
        return risks, grad[:, 1:] * theta[1:]  # d/dv_j R_e(b + sum_j v_j w_j x_j) at v = 1


def fit_penalised(x: np.ndarray, y: np.ndarray, env: np.ndarray, *, kind: str, penalty: str, lam: float,
                  steps: int, lr: float, anneal_steps: int, optimizer: str = "lbfgs",
                  dummy: str = "scalar") -> tuple[np.ndarray, float]:
    """Minimise ``sum_e R_e(f) + lam * P(f)`` over affine ``f(x) = b + x.w``; returns ``(w, b)`` in input units.

    ``penalty`` is ``"irm"`` (``P = sum_e ||d/ds R_e(s f) at s = 1||^2``, IRMv1; ``dummy="scalar"`` one
    scalar ``s``, ``dummy="vector"`` one dummy per input, see `_EnvRisks`; ``dummy="matrix"``
    ``w = Phi 1`` with ``P = sum_e ||Phi' grad_w R_e||^2``, the IRM repository's synthetic form) or ``"vrex"``
    (``P = Var_e R_e(f)``, the population variance over environments). Inputs are standardised (pooled
    mean and sd) and, for a continuous label, so is the label: the function class is unchanged, the
    optimisation is better conditioned, and ``lam`` is scale-free (it acts on the standardised label).
    Schedule as in the IRM paper's code: from ``theta = 0``, penalty weight 1 for a warm-up, then
    ``lam`` with the whole loss divided by ``lam`` when ``lam > 1``. ``optimizer="adam"``: ``steps``
    full-batch Adam steps at ``lr``, the first ``anneal_steps`` of them the warm-up (the paper's
    schedule). ``optimizer="lbfgs"`` (default): the warm-up and then penalty weights rising
    geometrically from 1 to ``lam`` (one rung per factor of 10, a continuation that keeps the non-convex
    problem in the basin of the warm start) are each solved by full-batch L-BFGS (scipy's L-BFGS-B driving the torch
    objective and its autograd gradient; at most ``steps`` iterations per rung; ``lr`` and
    ``anneal_steps`` unused) - the same objective, to convergence, in milliseconds.
    """
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    mu, sd = x.mean(0), x.std(0)
    sd = np.where(sd > 0, sd, 1.0)
    xs = (x - mu) / sd
    if kind == "continuous":
        ym, ysd = float(y.mean()), float(y.std()) or 1.0
        ys = (y - ym) / ysd
    else:
        ym, ysd, ys = 0.0, 1.0, y
    risks = _EnvRisks(xs, ys, np.asarray(env), kind)

    d_in = x.shape[1]

    def objective(theta: torch.Tensor, weight: float) -> torch.Tensor:
        if dummy == "matrix":  # theta = [b, vec(Phi)], w = Phi 1, D_e = Phi' grad_w R_e (the repository's form)
            phi = theta[1:].reshape(d_in, d_in)
            r, grad = risks.risk_grad(torch.cat([theta[:1], phi.sum(1)]))
            d = grad[:, 1:] @ phi
        else:
            r, d = risks(theta, dummy)
        pen = (d**2).sum() if penalty == "irm" else r.var(unbiased=False)
        loss = r.sum() + weight * pen
        return loss / weight if weight > 1.0 else loss

    n_par = 1 + d_in * d_in if dummy == "matrix" else 1 + d_in
    if optimizer == "adam":
        theta = torch.zeros(n_par, dtype=torch.float64, requires_grad=True)
        opt = torch.optim.Adam([theta], lr=lr)
        for step in range(int(steps)):
            loss = objective(theta, lam if step >= anneal_steps else 1.0)
            opt.zero_grad()
            loss.backward()
            opt.step()
        t = theta.detach().numpy()
    elif optimizer == "lbfgs":
        from scipy.optimize import minimize

        def value_and_grad(t_np: np.ndarray, weight: float) -> tuple[float, np.ndarray]:
            theta = torch.tensor(t_np, dtype=torch.float64, requires_grad=True)
            loss = objective(theta, weight)
            loss.backward()
            return float(loss.detach()), theta.grad.numpy().copy()

        # warm-up at weight 1, then a geometric ladder to lam (one rung per factor of 10): continuation
        # keeps the non-convex penalised problems in the basin reached from the ERM-like warm start
        rungs = max(1, int(np.ceil(abs(np.log10(lam))))) if lam > 0 else 1
        t = np.zeros(n_par)
        for weight in [1.0, *np.geomspace(1.0, lam, rungs + 1)[1:].tolist()]:
            t = minimize(value_and_grad, t, args=(weight,), jac=True, method="L-BFGS-B",
                         options={"maxiter": int(steps), "ftol": 1e-13, "gtol": 1e-9, "maxcor": 20}).x
    else:
        raise ValueError(f"optimizer must be 'lbfgs' or 'adam', got {optimizer!r}")
    if dummy == "matrix":
        t = np.concatenate([t[:1], t[1:].reshape(d_in, d_in).sum(1)])
    w_std, b_std = t[1:], t[0]
    w = w_std / sd * ysd
    b = ym + ysd * (b_std - (w_std * mu / sd).sum())
    return w, float(b)


def erm_fit(x: np.ndarray, y: np.ndarray, kind: str) -> np.ndarray:
    """Pooled ERM coefficients (least squares or near-unpenalised logistic), the reference for the score."""
    if kind == "continuous":
        z = np.column_stack([np.ones(len(x)), np.asarray(x, dtype=np.float64)])
        return np.linalg.lstsq(z, np.asarray(y, dtype=np.float64), rcond=None)[0][1:]

    return logistic_fit(x, y, C=1e4, max_iter=1000)[0]


def shrinkage_score(w_erm: np.ndarray, w_inv: np.ndarray) -> np.ndarray:
    """``(|w_ERM| - |w_inv|) / (|w_ERM| + |w_inv|)`` in [-1, 1]: how much of its weight the penalty removes.

    Scale-free per variable (both coefficients are in the same units). +1: the invariant fit drops a
    variable ERM uses; negative: it relies on it more than ERM does.
    """
    a, b = np.abs(w_erm), np.abs(w_inv)
    return (a - b) / np.maximum(a + b, 1e-12)


def invariance_output(task: Task, fit_inputs) -> MethodOutput:
    """The run() of the linear invariance penalties (IRMv1, V-REx): fit, report, and score the shrinkage from ERM.

    With one training environment there is nothing to be invariant across: the fit is reported and the
    detection verdict abstains.
    """
    x, y, env = task.train.x, task.train.y, task.train.env
    w, b = fit_inputs(x, y, env, task.label_kind)
    coef = per_variable(task, w)
    details = {"intercept": b}
    if len(np.unique(env)) < 2:
        return MethodOutput(world_coef=coef, model_coef=dict(coef), abstain=True,
                            details={**details, "reason": "fewer than two training environments"})
    w_erm = erm_fit(x, y, task.label_kind)
    details["erm_coef"] = per_variable(task, w_erm)
    return MethodOutput(world_coef=coef, model_coef=dict(coef),
                        spurious_score=per_variable(task, shrinkage_score(w_erm, w)), details=details)


@register_method
class IRMLinear(Method):
    """IRMv1 over linear predictors (squared loss for a continuous label, logistic for a binary one).

    Minimises ``sum_e R_e(w) + lambda * sum_e ||d/ds R_e(s w) at s = 1||^2`` over an affine predictor
    ``x -> b + x.w`` (Arjovsky et al. 2019, eq. IRMv1, with the fixed scalar classifier ``s = 1.0``), full
    batch from zero: a warm-up at penalty weight 1, then the penalty at ``lambda`` with the loss divided by
    ``lambda`` (the schedule of the paper's Colored-MNIST code; see ``optimizer``).
    Inputs (and a continuous label) are standardised inside, so ``lambda`` is scale-free; coefficients are
    reported in input units. For a continuous label each environment's risk is computed exactly from its
    second moments, so a step costs O(d^2) whatever n. The fitted ``w`` is the world estimate and the model
    estimate. ``spurious_score = (|w_ERM| - |w_IRM|) / (|w_ERM| + |w_IRM|)``: the share of a variable's
    pooled-ERM weight that the invariance penalty removes (anti-causal variables lose theirs, causes
    gain). Abstains (and returns only coefficients) with a single environment.

    Known failures (catalog §4.6): the penalty is zero at ``w = 0`` too (a small ``lambda`` or a short
    warm-up can land there); in linear classification the invariant predictor is found only with more
    environments than spurious dimensions (Rosenfeld, Ravikumar & Risteski 2021); fragile to sampling and
    to environments that differ only slightly (Kamath et al. 2021); with environment-dependent label
    noise the risks' gradients point in environment-specific directions (Jin et al. 2024); with a hidden
    confounder of cause and label the invariant regression is not the structural one.

    Parameters
    ----------
    lam : float
        Penalty weight after the warm-up (on the standardised problem). Large values reach the invariant
        solution on the paper's example (catalog O13) but, on finite samples, also chase the sampling
        noise of the penalty (Kamath et al. 2021); 1e4 is the default, tune per suite.
    dummy : {"scalar", "vector", "matrix"}
        ``scalar``: IRMv1 as written in the paper, one dummy scale ``s`` on the whole predictor
        (``D_e = w . grad R_e(w)``, one constraint per environment). ``vector``: one dummy per input
        (``D_e = w * grad R_e(w)`` elementwise; zero iff each used input's risk gradient vanishes in every
        environment), much stronger with few environments, more local minima, not rotation-equivariant.
        ``matrix``: the parametrisation of the paper's synthetic-experiment code, ``w = Phi 1`` with a
        learned d x d ``Phi`` and the penalty ``sum_e ||Phi' grad_w R_e(w)||^2`` (the gradient with
        respect to the fixed all-ones classifier): strong and rotation-equivariant, d^2 parameters.
    optimizer : {"lbfgs", "adam"}
        ``lbfgs`` (default): warm-up, then a geometric continuation of the penalty weight to ``lam``, each
        rung solved by full-batch L-BFGS. ``adam``: the paper's schedule (``steps`` Adam steps at ``lr``,
        penalty weight 1 for the first ``anneal_steps``, the loss divided by ``lam`` afterwards).
    steps : int
        L-BFGS iterations per rung, or Adam steps in total.
    lr : float
        Adam learning rate (unused by L-BFGS).
    anneal_steps : int
        Adam warm-up steps with penalty weight 1 (unused by L-BFGS).
    random_state : int, optional
        Unused: the fit starts from zero and is deterministic.

    References
    ----------
    Arjovsky, M., Bottou, L., Gulrajani, I. & Lopez-Paz, D. (2019). Invariant Risk Minimization.
    arXiv:1907.02893.
    """

    name = "irm_linear"
    version = "1"
    family = "robust_training"
    access = frozenset({"pooled", "env"})
    outputs = frozenset({"world", "model", "detect"})
    needs_input_map = True
    min_environments = 2
    search_space = {"lam": LogUniform(1.0, 1e5)}
    # any other dummy silently ran the per-input variant
    param_constraints = {"dummy": Options(("scalar", "vector", "matrix")), "optimizer": Options(("lbfgs", "adam")),
                         "anneal_steps": Integer(0)}

    def __init__(self, *, lam: float = 1e4, dummy: str = "scalar", optimizer: str = "lbfgs", steps: int = 500,
                 lr: float = 0.01, anneal_steps: int = 500, random_state: int | None = None):
        self.lam = lam
        self.dummy = dummy
        self.optimizer = optimizer
        self.steps = steps
        self.lr = lr
        self.anneal_steps = anneal_steps
        self.random_state = random_state

    _penalty = "irm"

    def fit_inputs(self, x: np.ndarray, y: np.ndarray, env: np.ndarray, kind: str) -> tuple[np.ndarray, float]:
        """Input-space mode: ``(w, b)`` over the input columns (for renderings without ``input_map``)."""
        return fit_penalised(x, y, env, kind=kind, penalty=self._penalty, lam=float(self.lam),
                             steps=int(self.steps), lr=float(self.lr), anneal_steps=int(self.anneal_steps),
                             optimizer=self.optimizer, dummy=self.dummy)

    def run(self, task: Task) -> MethodOutput:
        return invariance_output(task, self.fit_inputs)
