"""Control: localize by a weight statistic alone (norm) and ablate the top k units."""

from __future__ import annotations

from cowbench.method import register_method
from cowbench.methods._weight_controls import WeightStatisticControl


@register_method
class NormLocalizer(WeightStatisticControl):
    """Control: score each unit at a hidden point by ``||w_in||``, its weight row's norm; ablate the top ``k``.

    It reads the subject's weights only: no data, no concept, no edit target. On planted networks (version 2,
    `cowbench.planted`) offsets, norms, readouts and unit order are drawn so that no weight statistic points
    at the target's units: its ``loc_auroc`` is at chance (0.5 in expectation) and its edit_score about 0. A
    localization method that does not beat it has found nothing the weights' shape did not already show
    (issue 15 section 5: in planted version 1 ``|bias|`` alone localized grass with AUROC 1).

    Localized: ``unit_scores`` = the statistic; ``subspace`` = the axes of the ablated units.

    Parameters
    ----------
    k : int
        Number of units ablated (at most the width of the layer); the default matches `neuron_ablation`.
    mode : {"zero", "mean"}
        The value written into the ablated units.
    layer : str, optional
        Hidden hook point (`cowbench.surgery`); default ``hidden.0``.
    random_state : int, optional
        Unused (deterministic; ties broken by unit index); kept for the common interface.

    References
    ----------
    Wang, Z. & Veitch, V. (2025). Does editing provide evidence for localization? arXiv:2502.11447.
    Bau, D., Zhu, J.-Y., Strobelt, H., Lapedriza, A., Zhou, B. & Torralba, A. (2020). Understanding the role
    of individual units in a deep neural network. PNAS 117(48), arXiv:2009.05041.
    """

    name = "norm_localizer"
    statistic = "norm"
