"""Control of the discovery track: random directions."""

from __future__ import annotations

from typing import Any

import numpy as np

from cowbench.method import register_method
from cowbench.methods._directions import DiscoveryMethod, dictionary_size


@register_method
class RandomDirections(DiscoveryMethod):
    """Control: ``ratio x width`` directions drawn uniformly on the sphere at the hook point (Gaussian rows).

    What a discovery method must beat: in a low-dimensional layer a random direction already has a sizeable
    best cosine with some feature, and many of them push MMCS up; the precision term and this control's
    measured level show how much of a method's MMCS is that.

    Parameters
    ----------
    ratio : float
        Number of directions as a multiple of the layer's width.
    layer : str, optional
        Hook point; default ``hidden.0.pre`` where it exists.
    n_fit : int
        Units read (only the width is used).
    random_state : int, optional
        Seed of the directions.

    References
    ----------
    Sharkey, L., Braun, D. & Millidge, B. (2022). Taking features out of superposition with sparse
    autoencoders. AI Alignment Forum. (MMCS of a random dictionary as the floor.)
    """

    name = "random_directions"
    version = "1"
    control = True

    def __init__(self, *, ratio: float = 1.0, layer: str | None = None, n_fit: int = 16,
                 random_state: int | None = None):
        self.ratio = ratio
        self.layer = layer
        self.n_fit = n_fit
        self.random_state = random_state

    def directions(self, h: np.ndarray) -> tuple[np.ndarray, dict[str, Any]]:
        rng = np.random.default_rng(self.seed)
        return rng.standard_normal((dictionary_size(self.ratio, h.shape[1]), h.shape[1])), {}
