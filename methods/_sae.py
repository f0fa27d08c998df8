"""Sparse autoencoders on activations (not a method: the registry skips modules starting with "_").

Shared by `sae_ablation` (an edit through the latents tied to the target) and the discovery methods
`sae_l1` and `sae_topk` (the decoder rows as the found feature directions).

References
----------
Bricken, T., Templeton, A., Batson, J. et al. (2023). Towards monosemanticity: decomposing language models
with dictionary learning. Transformer Circuits Thread.
Gao, L., Dupré la Tour, T., Tillman, H., Goh, G., Troll, R., Radford, A., Sutskever, I., Leike, J. & Wu, J.
(2024). Scaling and evaluating sparse autoencoders. arXiv:2406.04093.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from cowbench.models import torch_threads


class SparseAutoencoder(nn.Module):
    """``z = relu((h - b_dec) W_enc + b_enc)``, ``h_hat = z W_dec + b_dec``; decoder rows of unit norm.

    Inputs are divided by ``scale`` first (a scalar: the root mean squared norm of the centred activations),
    so one sparsity weight serves every layer; ``decoder_directions`` are in the activations' own units.
    """

    def __init__(self, width: int, n_latents: int, mean: np.ndarray, scale: float, generator: torch.Generator):
        super().__init__()
        w_dec = torch.randn(n_latents, width, generator=generator, dtype=torch.float32)
        w_dec /= w_dec.norm(dim=1, keepdim=True)
        self.w_dec = nn.Parameter(w_dec)
        self.w_enc = nn.Parameter(w_dec.T.clone())  # the usual initialisation: encoder = decoder transposed
        self.b_enc = nn.Parameter(torch.zeros(n_latents, dtype=torch.float32))
        self.b_dec = nn.Parameter(torch.as_tensor(mean / scale, dtype=torch.float32))
        self.scale = float(scale)

    def encode(self, h: torch.Tensor) -> torch.Tensor:
        return torch.relu((h / self.scale - self.b_dec) @ self.w_enc + self.b_enc)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return (z @ self.w_dec + self.b_dec) * self.scale

    def normalize_decoder(self) -> None:
        with torch.no_grad():
            self.w_dec /= self.w_dec.norm(dim=1, keepdim=True).clamp_min(1e-12)


def fit_sae(h: np.ndarray, *, expansion: int, l1: float, steps: int, lr: float, seed: int,
            n_latents: int | None = None) -> SparseAutoencoder:
    """Full-batch Adam on ``mean ||h - h_hat||^2 / scale^2 + l1 * mean ||z||_1``, decoder rows renormalised.

    ``n_latents`` (default ``expansion * width``) sets the dictionary size directly.
    """
    hd = torch.as_tensor(np.asarray(h, dtype=np.float32))
    mean = h.mean(0)
    scale = float(np.sqrt(((h - mean) ** 2).sum(1).mean())) or 1.0
    generator = torch.Generator().manual_seed(int(seed))
    sae = SparseAutoencoder(h.shape[1], int(n_latents or expansion * h.shape[1]), mean, scale, generator)
    with torch_threads(1):
        opt = torch.optim.Adam(sae.parameters(), lr=lr)
        for _ in range(steps):
            opt.zero_grad()
            z = sae.encode(hd)
            objective = (((sae.decode(z) - hd) / scale) ** 2).sum(1).mean() + l1 * z.abs().sum(1).mean()
            objective.backward()
            opt.step()
            sae.normalize_decoder()
    return sae.eval()




class TopKAutoencoder(SparseAutoencoder):
    """``z = TopK_k(relu((h - b_dec) W_enc + b_enc))``: only the ``k`` largest latents of each row stay (Gao et
    al. 2024), so sparsity is set directly and no L1 penalty shrinks the codes."""

    def __init__(self, width: int, n_latents: int, mean: np.ndarray, scale: float, generator: torch.Generator,
                 k: int):
        super().__init__(width, n_latents, mean, scale, generator)
        self.k = int(min(k, n_latents))

    def encode(self, h: torch.Tensor) -> torch.Tensor:
        pre = torch.relu((h / self.scale - self.b_dec) @ self.w_enc + self.b_enc)  # (n, n_latents)
        top = torch.topk(pre, self.k, dim=1)
        return torch.zeros_like(pre).scatter(1, top.indices, top.values)


def fit_topk_sae(h: np.ndarray, *, n_latents: int, k: int, steps: int, lr: float, seed: int) -> TopKAutoencoder:
    """Full-batch Adam on ``mean ||h - h_hat||^2 / scale^2`` of a TopK autoencoder, decoder rows renormalised."""
    hd = torch.as_tensor(np.asarray(h, dtype=np.float32))
    mean = h.mean(0)
    scale = float(np.sqrt(((h - mean) ** 2).sum(1).mean())) or 1.0
    generator = torch.Generator().manual_seed(int(seed))
    sae = TopKAutoencoder(h.shape[1], int(n_latents), mean, scale, generator, k)
    with torch_threads(1):
        opt = torch.optim.Adam(sae.parameters(), lr=lr)
        for _ in range(steps):
            opt.zero_grad()
            objective = (((sae.decode(sae.encode(hd)) - hd) / scale) ** 2).sum(1).mean()
            objective.backward()
            opt.step()
            sae.normalize_decoder()
    return sae.eval()
