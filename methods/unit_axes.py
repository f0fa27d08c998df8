"""Control of the discovery track: the units' own axes."""

from __future__ import annotations

from typing import Any

import numpy as np

from cowbench.method import register_method
from cowbench.methods._directions import DiscoveryMethod


@register_method
class UnitAxes(DiscoveryMethod):
    """Control: one direction per unit, the standard basis of the hook point ("each neuron is a feature").

    It finds a feature exactly when that feature has a unit of its own (a monosemantic neuron); under
    polysemantic units and superposition it should fail. A method that does not beat it has found nothing
    the unit basis did not already show.

    Parameters
    ----------
    layer : str, optional
        Hook point; default ``hidden.0.pre`` where it exists.
    n_fit : int
        Units read (only the width is used).
    random_state : int, optional
        Unused; kept for the method contract.

    References
    ----------
    Olah, C., Cammarata, N., Schubert, L., Goh, G., Petrov, M. & Carter, S. (2020). Zoom in: an introduction
    to circuits. Distill. (neurons as the unit of analysis, and polysemantic ones.)
    """

    name = "unit_axes"
    version = "1"
    control = True

    def __init__(self, *, layer: str | None = None, n_fit: int = 16, random_state: int | None = None):
        self.layer = layer
        self.n_fit = n_fit
        self.random_state = random_state

    def directions(self, h: np.ndarray) -> tuple[np.ndarray, dict[str, Any]]:
        return np.eye(h.shape[1]), {}
