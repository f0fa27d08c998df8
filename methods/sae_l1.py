"""Discovery: an L1 sparse autoencoder's decoder directions."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from cowbench.method import Choice, LogUniform, register_method
from cowbench.methods._directions import DiscoveryMethod, dictionary_size
from cowbench.methods._sae import fit_sae


@register_method
class SAEL1(DiscoveryMethod):
    """A sparse autoencoder (ReLU encoder, unit-norm decoder rows, L1 penalty on the codes) fitted on the
    activations at a hook point; its decoder rows are the found directions (Sharkey et al. 2022).

    Expected (their toy result): the true features are recovered (MMCS near 1) when the dictionary is at
    least as large as the number of features and the L1 weight is in a middle range; too little L1 gives
    dense mixed latents, too much dead ones; recovery degrades as features get dense. Dead latents (never
    active on the fit data) are still returned: their random directions cost precision, which is the
    price of an oversized dictionary.

    Parameters
    ----------
    ratio : float
        Dictionary size as a multiple of the layer's width.
    l1 : float
        Sparsity weight (activations scaled to unit root mean squared norm).
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
    Sharkey, L., Braun, D. & Millidge, B. (2022). Taking features out of superposition with sparse
    autoencoders. AI Alignment Forum.
    Bricken, T., Templeton, A., Batson, J. et al. (2023). Towards monosemanticity: decomposing language
    models with dictionary learning. Transformer Circuits Thread.
    """

    name = "sae_l1"
    version = "1"
    search_space = {"ratio": Choice((1.0, 2.0, 4.0)), "l1": LogUniform(1e-3, 1.0)}

    def __init__(self, *, ratio: float = 2.0, l1: float = 0.3, steps: int = 1000, lr: float = 0.01,
                 layer: str | None = None, n_fit: int = 2000, random_state: int | None = None):
        self.ratio = ratio
        self.l1 = l1
        self.steps = steps
        self.lr = lr
        self.layer = layer
        self.n_fit = n_fit
        self.random_state = random_state

    def directions(self, h: np.ndarray) -> tuple[np.ndarray, dict[str, Any]]:
        sae = fit_sae(h, expansion=1, n_latents=dictionary_size(self.ratio, h.shape[1]), l1=float(self.l1),
                      steps=int(self.steps), lr=float(self.lr), seed=self.seed)
        with torch.no_grad():
            z = sae.encode(torch.as_tensor(h, dtype=torch.float32)).double().numpy()
        return sae.w_dec.detach().double().numpy(), {"l0": float((z > 0).sum(1).mean()),
                                                     "alive_share": float((z > 0).any(0).mean())}
