"""LEACE: least-squares concept erasure in closed form, inserted at a hook point of the subject model."""

from __future__ import annotations

import numpy as np

from cowbench import surgery
from cowbench.access import Task
from cowbench.method import Method, MethodOutput, register_method
from cowbench.methods._internals import concept_activations, localized, resolve_layer
from cowbench.surgery import orthonormal_basis


def leace_eraser(h: np.ndarray, z: np.ndarray, *, tol: float = 1e-10) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The LEACE eraser fitted on activations ``h`` (n, w) and concepts ``z`` (n, k).

    Returns ``(weight, bias, removed)`` with ``r(h) = h @ weight.T + bias = h - E (h - mean(h))``,
    ``E = W^+ P W``: ``W = Sigma_hh^{-1/2}`` (pseudo-inverse square root on the span of the activations),
    ``P`` the orthogonal projection onto the columns of ``W Sigma_hz``, and ``removed`` (w, r) an orthonormal
    basis of the range of ``E`` (what is erased). Then ``Cov(r(h), z) = 0`` exactly on the fitting data
    (``W^+ W Sigma_hz = Sigma_hz`` because ``Sigma_hz`` lies in the span of ``Sigma_hh``), so no linear
    predictor of ``z`` from ``r(h)`` beats a constant in squared error.
    """
    h = np.asarray(h, dtype=np.float64)
    z = np.asarray(z, dtype=np.float64).reshape(len(h), -1)
    mu = h.mean(0)
    hc, zc = h - mu, z - z.mean(0)
    n = len(h)
    sigma_hh = hc.T @ hc / n
    sigma_hz = hc.T @ zc / n
    evals, evecs = np.linalg.eigh(sigma_hh)
    keep = evals > tol * max(float(evals.max(initial=0.0)), 1e-300)  # dead units: no variance to whiten
    v, lam = evecs[:, keep], evals[keep]
    whiten = v @ np.diag(lam ** -0.5) @ v.T  # W
    unwhiten = v @ np.diag(lam ** 0.5) @ v.T  # W^+
    u = orthonormal_basis(whiten @ sigma_hz)
    eraser = unwhiten @ u @ u.T @ whiten  # E (oblique projection)
    width = h.shape[1]
    return np.eye(width) - eraser, eraser @ mu, orthonormal_basis(unwhiten @ u)


@register_method
class Leace(Method):
    """Erase the edit target from the activations at a hook point with LEACE, the least-squares-optimal eraser.

    On the labelled units, the activations ``h`` at ``layer`` and the target concept(s) ``z`` give
    ``Sigma_hh`` and ``Sigma_hz``; the affine eraser ``r(h) = h - W^+ P_{W Sigma_hz} W (h - mu)`` with
    ``W = Sigma_hh^{-1/2}`` (see `leace_eraser`) makes the cross-covariance of ``r(h)`` with ``z`` zero,
    hence no linear classifier on ``r(h)`` predicts ``z`` better than a constant (Belrose et al. 2023,
    Theorem 3.1), while moving ``h`` as little as possible in the whitened metric. The eraser is inserted
    at ``layer`` as an affine hook (mean term included). Only the cross-covariance is removed: a model that
    reads the target through a nonlinearity (an interaction with a cause, or a nonlinear function of it)
    keeps that reliance, and a concept correlated with the causes takes part of their directions with it.
    Unlike `erase_spurious` (mean-ablation of a joint-probe direction), the erased direction is the whitened
    covariance direction, which also removes what the causes say about the target through their correlation.
    Known failure (measured): where units carry the target exactly (planted networks) the eraser subtracts
    ``Sigma_hz (z - mean z) / var z`` from every unit, so units of causes correlated with grass come to carry
    minus grass: on ``planted_interaction`` grass's mean effect on the logit goes from +5.1 to -1.7 (reversed,
    not removed), and ``residual_spurious`` is 0.32 on ``planted_mono`` though no linear probe finds grass.

    Localized: ``unit_scores`` = ``|corr(h_j, z)|`` summed over targets; ``subspace`` = the range of the
    eraser.

    Parameters
    ----------
    layer : str, optional
        Hook point (`cowbench.surgery`), e.g. ``"input"``, ``"hidden.0"``; default ``hidden.0`` where the
        subject has it, else ``input``.
    random_state : int, optional
        Unused (closed form); kept for the common interface.

    References
    ----------
    Belrose, N., Schneider-Joseph, D., Ravfogel, S., Cotterell, R., Raff, E. & Biderman, S. (2023).
    LEACE: perfect linear concept erasure in closed form. NeurIPS, arXiv:2306.03819.
    """

    name = "leace"
    version = "1"
    family = "editing"
    access = frozenset({"pooled", "concept", "internals"})
    outputs = frozenset({"edit"})

    def __init__(self, *, layer: str | None = None, random_state: int | None = None):
        self.layer = layer
        self.random_state = random_state

    def run(self, task: Task) -> MethodOutput:
        model = task.model
        point = resolve_layer(model, self.layer)
        h, c, cols = concept_activations(task, model, point)
        z = c[:, cols]
        weight, bias, removed = leace_eraser(h, z)
        edited = surgery.with_hook(model, point, surgery.AffineHook(weight, bias))
        sd_h, sd_z = h.std(0), z.std(0)
        cov = (h - h.mean(0)).T @ (z - z.mean(0)) / len(h)
        denom = np.outer(sd_h, sd_z)
        corr = np.divide(np.abs(cov), denom, out=np.zeros_like(cov), where=denom > 1e-12)
        return MethodOutput(edited=edited, localized=localized(point, unit_scores=corr.sum(1), subspace=removed),
                            details={"layer": point, "rank": int(removed.shape[1])})
