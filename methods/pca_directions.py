"""Discovery: the principal axes of the activations."""

from __future__ import annotations

from typing import Any

import numpy as np

from cowbench.method import Choice, register_method
from cowbench.methods._directions import DiscoveryMethod, activation_rank


@register_method
class PCADirections(DiscoveryMethod):
    """Principal component analysis of the activations at a hook point: the found directions are the top
    right singular vectors of the centred activations.

    By default as many as the activations' rank (singular values above ``1e-6`` of the largest), so nothing
    beyond the occupied subspace is returned. Known failure: the directions are orthogonal and at most the
    layer's width, so features in superposition (more features than dimensions) cannot all be found, and
    even without superposition non-orthogonal or equal-variance features come out as mixtures.

    Parameters
    ----------
    n_directions : int, optional
        Number of principal axes; default the activations' rank.
    layer : str, optional
        Hook point; default ``hidden.0.pre`` where it exists.
    n_fit : int
        Training units the decomposition is fitted on (evenly spaced over the split).
    random_state : int, optional
        Unused (the decomposition is deterministic); kept for the method contract.

    References
    ----------
    Pearson, K. (1901). On lines and planes of closest fit to systems of points in space. Philosophical
    Magazine 2(11), 559-572.
    Sharkey, L., Braun, D. & Millidge, B. (2022). Taking features out of superposition with sparse
    autoencoders. AI Alignment Forum. (PCA as the baseline dictionary.)
    """

    name = "pca_directions"
    version = "1"
    search_space = {"n_fit": Choice((1000, 2000, 4000))}

    def __init__(self, *, n_directions: int | None = None, layer: str | None = None, n_fit: int = 2000,
                 random_state: int | None = None):
        self.n_directions = n_directions
        self.layer = layer
        self.n_fit = n_fit
        self.random_state = random_state

    def directions(self, h: np.ndarray) -> tuple[np.ndarray, dict[str, Any]]:
        rank = activation_rank(h)
        k = min(rank if self.n_directions is None else int(self.n_directions), h.shape[1])
        _, s, vt = np.linalg.svd(h - h.mean(0), full_matrices=False)
        explained = float((s[:k] ** 2).sum() / max((s ** 2).sum(), 1e-300))
        return vt[:k], {"rank": rank, "explained_variance": explained}
