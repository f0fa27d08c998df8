"""V-REx on the subject's architecture: ERM plus the variance of the training environments' risks."""

from __future__ import annotations

from cowbench.method import Choice, Integer, LogUniform, Options, Real, register_method
from cowbench.methods._robust import EnvPenaltyMethod


@register_method
class VRExMLP(EnvPenaltyMethod):
    """Risk extrapolation, variance form (V-REx, Krueger et al. 2021), on the subject's architecture.

    Penalty: ``mean_e (R_e - mean_e' R_e')^2``, the variance of the per-environment risks; equal risks
    across environments whose spurious association differs leave no use for the spurious variable.
    Annealed like IRMv1 (`EnvPenaltyMethod`; Krueger et al. used the IRM Colored MNIST code and
    schedule). With one environment the variance is 0 and it is ERM exactly. It cannot see a shortcut
    equally strong in every training environment, and equal risks can also be reached by fitting the
    easier environment worse.

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
    Krueger, D., Caballero, E., Jacobsen, J.-H., Zhang, A., Binas, J., Zhang, D., Le Priol, R. & Courville, A.
    (2021). Out-of-distribution generalization via risk extrapolation (REx). ICML, arXiv:2003.00688.
    """

    name = "vrex_mlp"
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
        return ((losses - losses.mean()) ** 2).mean()
