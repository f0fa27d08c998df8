"""Discovery: independent components of the activations (FastICA)."""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np

from cowbench.method import Choice, register_method
from cowbench.methods._directions import DiscoveryMethod, activation_rank


@register_method
class ICADirections(DiscoveryMethod):
    """FastICA on the activations at a hook point: the found directions are the columns of the estimated
    mixing matrix (how each independent source moves the activations).

    As many components as the activations' rank by default. ICA identifies non-Gaussian independent sources
    mixed linearly when there are no more sources than dimensions; known failure: under superposition
    (more features than the layer's rank) the model is not identifiable and the components are mixtures.

    Parameters
    ----------
    n_directions : int, optional
        Number of components; default the activations' rank.
    max_iter : int
        FastICA iterations.
    layer : str, optional
        Hook point; default ``hidden.0.pre`` where it exists.
    n_fit : int
        Training units the decomposition is fitted on.
    random_state : int, optional
        Seed of FastICA's initial unmixing matrix.

    References
    ----------
    Hyvärinen, A. & Oja, E. (2000). Independent component analysis: algorithms and applications. Neural
    Networks 13(4-5), 411-430.
    """

    name = "ica_directions"
    version = "1"
    search_space = {"max_iter": Choice((200, 400, 800))}

    def __init__(self, *, n_directions: int | None = None, max_iter: int = 400, layer: str | None = None,
                 n_fit: int = 2000, random_state: int | None = None):
        self.n_directions = n_directions
        self.max_iter = max_iter
        self.layer = layer
        self.n_fit = n_fit
        self.random_state = random_state

    def directions(self, h: np.ndarray) -> tuple[np.ndarray, dict[str, Any]]:
        from sklearn.decomposition import FastICA

        rank = activation_rank(h)
        k = min(rank if self.n_directions is None else int(self.n_directions), rank)
        ica = FastICA(n_components=k, whiten="unit-variance", max_iter=int(self.max_iter),
                      random_state=self.seed)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            ica.fit(h)
        converged = not any("did not converge" in str(w.message) for w in caught)
        return ica.mixing_.T, {"rank": rank, "converged": converged, "n_iter": int(ica.n_iter_)}
