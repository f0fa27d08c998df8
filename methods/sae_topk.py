"""Discovery: a TopK sparse autoencoder's decoder directions."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from cowbench.method import Choice, register_method
from cowbench.methods._directions import DiscoveryMethod, dictionary_size
from cowbench.methods._sae import fit_topk_sae


@register_method
class SAETopK(DiscoveryMethod):
    """A TopK sparse autoencoder (Gao et al. 2024): only the ``k`` largest latents of each example stay active,
    so sparsity is chosen directly instead of through an L1 weight that also shrinks the codes; decoder rows
    (unit norm) are the found directions.

    Known failures: ``k`` below the number of features active per example forces latents to mix features;
    latents that never win the top-k stay at their random initial directions (dead) and cost precision.

    Parameters
    ----------
    ratio : float
        Dictionary size as a multiple of the layer's width.
    k : int
        Active latents per example.
    steps : int
        Full-batch Adam steps.
    lr : float
        Adam's learning rate.
    layer : str, optional
        Hook point; default ``hidden.0.pre`` where it exists.
    n_fit : int
        Training units the autoencoder is fitted on.
    random_state : int, optional
        Seed of the initialisation.

    References
    ----------
    Gao, L., Dupré la Tour, T., Tillman, H., Goh, G., Troll, R., Radford, A., Sutskever, I., Leike, J. & Wu,
    J. (2024). Scaling and evaluating sparse autoencoders. arXiv:2406.04093.
    Makhzani, A. & Frey, B. (2013). k-sparse autoencoders. arXiv:1312.5663.
    """

    name = "sae_topk"
    version = "1"
    search_space = {"ratio": Choice((1.0, 2.0, 4.0)), "k": Choice((1, 2, 3, 4))}

    def __init__(self, *, ratio: float = 2.0, k: int = 2, steps: int = 1000, lr: float = 0.01,
                 layer: str | None = None, n_fit: int = 2000, random_state: int | None = None):
        self.ratio = ratio
        self.k = k
        self.steps = steps
        self.lr = lr
        self.layer = layer
        self.n_fit = n_fit
        self.random_state = random_state

    def directions(self, h: np.ndarray) -> tuple[np.ndarray, dict[str, Any]]:
        sae = fit_topk_sae(h, n_latents=dictionary_size(self.ratio, h.shape[1]), k=int(self.k),
                           steps=int(self.steps), lr=float(self.lr), seed=self.seed)
        with torch.no_grad():
            z = sae.encode(torch.as_tensor(h, dtype=torch.float32)).double().numpy()
        return sae.w_dec.detach().double().numpy(), {"alive_share": float((z > 0).any(0).mean())}
