"""Discovery: sparse dictionary learning on the activations (scikit-learn's mini-batch version)."""

from __future__ import annotations

from typing import Any

import numpy as np

from cowbench.method import Choice, LogUniform, register_method
from cowbench.methods._directions import DiscoveryMethod, dictionary_size


@register_method
class DictionaryDirections(DiscoveryMethod):
    """Sparse dictionary learning: ``min ||H - Z D||^2 / 2 + alpha ||Z||_1`` with unit-norm atoms (rows of
    ``D``), by scikit-learn's mini-batch dictionary learning on the centred activations; the atoms are the
    found directions.

    The activations are divided by their root mean squared norm first, so one ``alpha`` serves every layer.
    Like a sparse autoencoder it can find more features than dimensions when they are sparse (the codes
    are solved per example by lasso rather than by an encoder). Known failures: dense features; too large
    an ``alpha`` leaves atoms unused, too small gives mixtures.

    Parameters
    ----------
    ratio : float
        Dictionary size as a multiple of the layer's width.
    alpha : float
        Sparsity weight of the codes.
    max_iter : int
        Passes over the data.
    layer : str, optional
        Hook point; default ``hidden.0.pre`` where it exists.
    n_fit : int
        Training units the dictionary is fitted on.
    random_state : int, optional
        Seed of the initialisation and the mini-batches.

    References
    ----------
    Mairal, J., Bach, F., Ponce, J. & Sapiro, G. (2009). Online dictionary learning for sparse coding.
    ICML 2009, 689-696.
    Olshausen, B. A. & Field, D. J. (1997). Sparse coding with an overcomplete basis set: a strategy employed
    by V1? Vision Research 37(23), 3311-3325.
    """

    name = "dictionary_directions"
    version = "1"
    search_space = {"ratio": Choice((1.0, 2.0, 4.0)), "alpha": LogUniform(0.01, 1.0)}

    def __init__(self, *, ratio: float = 2.0, alpha: float = 0.1, max_iter: int = 20, layer: str | None = None,
                 n_fit: int = 2000, random_state: int | None = None):
        self.ratio = ratio
        self.alpha = alpha
        self.max_iter = max_iter
        self.layer = layer
        self.n_fit = n_fit
        self.random_state = random_state

    def directions(self, h: np.ndarray) -> tuple[np.ndarray, dict[str, Any]]:
        from sklearn.decomposition import MiniBatchDictionaryLearning

        hc = h - h.mean(0)
        scale = float(np.sqrt((hc ** 2).sum(1).mean())) or 1.0
        k = dictionary_size(self.ratio, h.shape[1])
        learner = MiniBatchDictionaryLearning(n_components=k, alpha=float(self.alpha), max_iter=int(self.max_iter),
                                              batch_size=256, random_state=self.seed)
        codes = learner.fit_transform(hc / scale)
        return learner.components_, {"l0": float((np.abs(codes) > 1e-12).sum(1).mean())}
