"""Anchor ``sae_toy_recovery``: an L1 sparse autoencoder recovers features out of superposition (Sharkey et al.).

Sharkey, Braun & Millidge (2022, "Taking features out of superposition with sparse autoencoders") embed
sparse ground-truth features in a lower-dimensional space and train a one-layer ReLU autoencoder with an
L1 penalty on its code; the mean max cosine similarity (MMCS) between the learned dictionary and the true
features is near 1 when the dictionary has at least as many elements as there are features and the L1
coefficient lies in a middle range, and falls outside it (too little L1: dense, mixed elements; too much:
dead ones); recovery degrades as the features become less sparse. Independent re-implementations on the
same kind of data report MMCS around 0.96.

Ours: the activations are a planted toy layer, ``h = x E'`` for ``n`` features active with probability
``p`` (value U(0, 1) when active) along unit directions ``E`` that are pairwise separated (``|cos| < 0.55``),
in a layer of width ``w < n``; the autoencoder is the discovery method `sae_l1` (`cowbench.methods.sae_l1`,
its own training loop and defaults but ``l1`` and the dictionary size), and MMCS is
`cowbench.scores.discover.mmcs`. Two curves: MMCS over the L1 coefficient for several dictionary ratios
(dictionary size / number of features) at one sparsity, and MMCS over the sparsity at the ratio and L1
that Sharkey et al. recommend (ratio >= 1, mid L1).
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pandas as pd

from cowbench.anchors._common import cached, fmt, mean_se, rep_seeds, runtime_note, write
from cowbench.scores.discover import mmcs
from cowbench.version import __version__

NAME = "sae_toy_recovery"
COMMAND = f"cowbench anchor {NAME}"
DEFAULT_REPS = 3
N_FEATURES, WIDTH, ROWS = 12, 6, 2000
L1_GRID = (0.003, 0.01, 0.03, 0.1, 0.3, 1.0, 3.0)
RATIO_GRID = (0.5, 1.0, 2.0)
SPARSITY = 0.05
DENSITY_GRID = (0.02, 0.05, 0.1, 0.2, 0.4)
DENSITY_L1 = 0.3
DENSITY_RATIO = 1.0
PUBLISHED_MMCS = 0.96  # independent re-implementations on the same kind of toy data (anchor-results.md)


def toy_layer(n: int, width: int, p: float, rows: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Activations ``(rows, width)`` of ``n`` sparse features and the true directions ``(n, width)``."""
    rng = np.random.default_rng(seed)
    dirs: list[np.ndarray] = []
    while len(dirs) < n:  # rejection sampling keeps the features distinguishable (|cos| < 0.55)
        v = rng.standard_normal(width)
        v /= np.linalg.norm(v)
        if all(abs(v @ u) < 0.55 for u in dirs):
            dirs.append(v)
    emb = np.array(dirs)  # (n, width)
    x = (rng.random((rows, n)) < p) * rng.random((rows, n))
    return x @ emb, emb


def _mmcs(h: np.ndarray, true: np.ndarray, *, ratio: float, l1: float, seed: int) -> tuple[float, float]:
    from cowbench.methods.sae_l1 import SAEL1

    sae = SAEL1(ratio=ratio * true.shape[0] / h.shape[1], l1=l1, random_state=seed)
    found, details = sae.directions(h)
    return mmcs(true, found), float(details["alive_share"])


def reproduce(n_reps: int = DEFAULT_REPS, seed: int = 0, *, l1_grid=L1_GRID, ratio_grid=RATIO_GRID,
              density_grid=DENSITY_GRID, rows: int = ROWS) -> pd.DataFrame:
    """One row per (curve, replicate, ratio, l1, sparsity): MMCS and the share of live latents."""
    out = []
    for r in range(n_reps):
        data_seed, fit_seed = rep_seeds(seed, r)
        h, true = toy_layer(N_FEATURES, WIDTH, SPARSITY, rows, data_seed)
        for ratio in ratio_grid:
            for l1 in l1_grid:
                m, alive = _mmcs(h, true, ratio=ratio, l1=l1, seed=fit_seed)
                out.append({"curve": "l1", "replicate": r, "ratio": ratio, "l1": l1, "p": SPARSITY, "mmcs": m,
                            "alive": alive})
        for p in density_grid:
            h, true = toy_layer(N_FEATURES, WIDTH, p, rows, data_seed)
            m, alive = _mmcs(h, true, ratio=DENSITY_RATIO, l1=DENSITY_L1, seed=fit_seed)
            out.append({"curve": "density", "replicate": r, "ratio": DENSITY_RATIO, "l1": DENSITY_L1, "p": p,
                        "mmcs": m, "alive": alive})
    return pd.DataFrame(out)


def main(n_reps: int = DEFAULT_REPS, seed: int = 0, out: str | Path | None = None) -> pd.DataFrame:
    """Write ``results/anchors/sae_toy_recovery.md``; return the rows."""
    start = time.perf_counter()
    settings = {"n_reps": n_reps, "seed": seed, "l1": L1_GRID, "ratio": RATIO_GRID, "density": DENSITY_GRID,
                "shape": (N_FEATURES, WIDTH, ROWS)}
    frame = cached(NAME, settings, lambda: reproduce(n_reps, seed))
    elapsed = time.perf_counter() - start
    l1_rows = frame[frame.curve == "l1"]
    head = "| dictionary ratio | " + " | ".join(f"L1 {v:g}" for v in L1_GRID) + " |"
    lines = [head, "|---|" + "---|" * len(L1_GRID)]
    best = (-1.0, None)
    for ratio in RATIO_GRID:
        cells = []
        for l1 in L1_GRID:
            m, se = mean_se(l1_rows[(l1_rows.ratio == ratio) & (l1_rows.l1 == l1)].mmcs)
            cells.append(fmt(m, se))
            if m > best[0]:
                best = (m, (ratio, l1))
        lines.append(f"| {ratio:g} | " + " | ".join(cells) + " |")
    dens = frame[frame.curve == "density"]
    dlines = ["| feature probability p | MMCS | live latents |", "|---|---|---|"]
    for p in DENSITY_GRID:
        g = dens[dens.p == p]
        dlines.append(f"| {p:g} | {fmt(*mean_se(g.mmcs))} | {fmt(*mean_se(g.alive))} |")
    text = f"""# Features out of superposition: an L1 sparse autoencoder on a planted toy layer

Generated by `{COMMAND}` (function `cowbench.anchors.sae_toy_recovery.main(n_reps={n_reps}, seed={seed})`),
cowbench {__version__}; {runtime_note(frame, elapsed)}. Do not edit by hand.

Published (Sharkey, Braun & Millidge 2022, AI Alignment Forum; shape, not a table): MMCS near 1 when the
dictionary is at least as large as the number of true features and the L1 coefficient is in a middle
range; too little L1 gives dense mixed elements, too much dead ones; recovery degrades as features get
denser. Independent re-implementations on the same kind of toy data: MMCS about {PUBLISHED_MMCS}.

Ours: {N_FEATURES} features in a layer of width {WIDTH} (superposition x{N_FEATURES // WIDTH}), {ROWS} units,
the `sae_l1` discovery method with its own training loop ({n_reps} replicates: new directions, data and
initialisation each; root seed {seed}); MMCS mean ± standard error over replicates. Their toy used far more
data and longer training (and 256-dimensional layers); ours is sized for a unit test's budget, so our best
MMCS sits below theirs.

## MMCS over the L1 coefficient (feature probability p = {SPARSITY})

{chr(10).join(lines)}

Best cell: ratio {best[1][0]:g}, L1 {best[1][1]:g}, MMCS {best[0]:.3f}.

## MMCS over feature density (ratio {DENSITY_RATIO:g}, L1 {DENSITY_L1:g})

{chr(10).join(dlines)}

Reading: the shape holds where the rows above show it (recovery peaks at a middle L1 and at a ratio of 1 or
more, and falls as p grows); the test `tests/unit/test_anchors_sae.py` checks that shape on a small grid.
"""
    write(Path(out) if out is not None else Path(f"results/anchors/{NAME}.md"), text)
    return frame
