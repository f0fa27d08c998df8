"""IRMv1 on the subject's architecture: ERM plus the squared gradient of each environment's risk w.r.t. a scale."""

from __future__ import annotations

import torch

from cowbench.method import Choice, Integer, LogUniform, Options, Real, register_method
from cowbench.methods._robust import EnvPenaltyMethod, unit_loss


@register_method
class IRMMLP(EnvPenaltyMethod):
    """IRMv1 (Arjovsky et al. 2019) trained on the subject's architecture, penalty annealed.

    Penalty: ``mean_e (d R_e(w * f) / d w |_{w=1})^2``, the squared gradient of environment ``e``'s risk
    with respect to a dummy scale on the output; it is 0 when the same output scale is optimal in every
    environment, i.e. when ``f`` is an invariant predictor. Annealing as in the reference Colored MNIST
    code: penalty weight 1 for ``penalty_anneal_iters`` steps, then ``penalty_weight`` with the objective
    divided by it, a coupled L2 term, and Adam kept at the switch (`EnvPenaltyMethod`). It removes
    reliance on a variable whose
    association with the label differs across training environments; it cannot see a shortcut that is
    equally strong in all of them, and with one environment it is (nearly) ERM. Known failures: it is
    sensitive to the penalty weight and the anneal point (Gulrajani & Lopez-Paz 2021 find it no better
    than ERM under training-domain selection), and on nonlinear models it can reach a small penalty
    without invariance (Rosenfeld et al. 2021).

    Parameters
    ----------
    penalty_weight : float
        Penalty weight after annealing.
    penalty_anneal_iters : int
        Steps trained with penalty weight 1 before the switch.
    l2_weight : float
        Weight of the squared norm of all parameters added to the objective (divided with it after the
        switch), as the reference code's ``l2_regularizer_weight``.
    restart_adam : bool
        Reset Adam's moments at the switch (DomainBed) rather than keep them (the Colored MNIST code, whose
        regime needs them kept; see `EnvPenaltyMethod`).
    epochs : int, optional
        Training steps (full batches); default: the subject model's.
    random_state : int, optional
        Seed of the new model's initialisation.

    References
    ----------
    Arjovsky, M., Bottou, L., Gulrajani, I. & Lopez-Paz, D. (2019). Invariant risk minimization.
    arXiv:1907.02893 (and its Colored MNIST reference code, facebookresearch/InvariantRiskMinimization).
    """

    name = "irm_mlp"
    version = "2"
    access = frozenset({"pooled", "env"})
    search_space = {"penalty_weight": LogUniform(1.0, 1e5), "penalty_anneal_iters": Choice((0, 50, 100, 200))}
    param_constraints = {"penalty_anneal_iters": Integer(0, None), "l2_weight": Real(0.0, None),
                         "restart_adam": Options((False, True))}

    # version 2: the Colored MNIST code's regime (weight 1e4, coupled L2 1e-3, Adam kept at the switch);
    # version 1 (weight 1e3, no L2, Adam reset) ended near a constant output on colored_digits
    def __init__(self, *, penalty_weight: float = 10000.0, penalty_anneal_iters: int = 100,
                 l2_weight: float = 1e-3, restart_adam: bool = False, epochs: int | None = None,
                 random_state: int | None = None):
        super().__init__(penalty_weight=penalty_weight, penalty_anneal_iters=penalty_anneal_iters,
                         l2_weight=l2_weight, restart_adam=restart_adam, epochs=epochs,
                         random_state=random_state)

    def penalty(self, outs, ys, feats, losses, loss):
        total = 0.0
        for out, y in zip(outs, ys, strict=True):
            scale = torch.ones((), dtype=out.dtype, requires_grad=True)
            risk = unit_loss(out * scale, y, loss).mean()
            (grad,) = torch.autograd.grad(risk, [scale], create_graph=True)
            total = total + grad**2
        return total / len(outs)
