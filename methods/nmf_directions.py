"""Discovery: non-negative matrix factorization of the (post-ReLU) activations."""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np

from cowbench.method import Choice, register_method
from cowbench.methods._directions import DiscoveryMethod, dictionary_size


@register_method
class NMFDirections(DiscoveryMethod):
    """Non-negative matrix factorization ``H ~ W D`` (``W, D >= 0``) of the activations after the ReLU: the
    found directions are the rows of ``D`` (the parts).

    NMF needs non-negative data, so it reads ``hidden.0`` by default; at a point with negative values the
    activations are shifted by their column minima first (recorded). Known failure: a feature whose
    direction has entries of both signs (a unit pair ``z, -z`` reads ``+f`` and ``-f``) cannot be a part;
    NMF then returns its positive and negative halves separately.

    Parameters
    ----------
    ratio : float
        Dictionary size as a multiple of the layer's width.
    max_iter : int
        Coordinate-descent iterations.
    layer : str, optional
        Hook point; default ``hidden.0``.
    n_fit : int
        Training units the factorization is fitted on.
    random_state : int, optional
        Seed of the initialisation.

    References
    ----------
    Lee, D. D. & Seung, H. S. (1999). Learning the parts of objects by non-negative matrix factorization.
    Nature 401, 788-791.
    """

    name = "nmf_directions"
    version = "1"
    preferred_point = "hidden.0"
    search_space = {"ratio": Choice((0.5, 1.0, 2.0))}

    def __init__(self, *, ratio: float = 1.0, max_iter: int = 400, layer: str | None = None, n_fit: int = 2000,
                 random_state: int | None = None):
        self.ratio = ratio
        self.max_iter = max_iter
        self.layer = layer
        self.n_fit = n_fit
        self.random_state = random_state

    def directions(self, h: np.ndarray) -> tuple[np.ndarray, dict[str, Any]]:
        from sklearn.decomposition import NMF

        shift = np.minimum(h.min(0), 0.0)
        k = dictionary_size(self.ratio, h.shape[1])
        nmf = NMF(n_components=k, init="nndsvda", max_iter=int(self.max_iter), random_state=self.seed)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # a convergence warning is recorded below, not printed
            nmf.fit(h - shift)
        return nmf.components_, {"shifted": bool(np.any(shift < 0)), "n_iter": int(nmf.n_iter_)}
