"""Reproductions of published tables ("anchors"), each written beside the numbers it reproduces.

One module per anchor; each has ``COMMAND`` (the command line that writes its file), ``DEFAULT_REPS``, a
pure ``reproduce(...) -> DataFrame`` that the tests run on small settings, and ``main(n_reps, seed, out)``
that runs it at full size and writes ``results/anchors/<name>.md`` (atomically, with the command, the
selection rule, the runtime and an explanation of every difference). ``cowbench anchor NAME`` calls
`run_anchor`.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from types import ModuleType

# name -> module; imported on use, so listing anchors costs nothing
ANCHORS = {
    "irm_synthetic": "cowbench.anchors.irm_synthetic",
    "invariance_unit_tests": "cowbench.anchors.invariance_unit_tests",
    "colored_mnist_irm": "cowbench.anchors.colored_mnist",
    "domainbed_gap": "cowbench.anchors.domainbed_gap",
    "four_groups_wga": "cowbench.anchors.four_groups_wga",
    "sae_toy_recovery": "cowbench.anchors.sae_toy_recovery",
}


def anchor_module(name: str) -> ModuleType:
    """The module of anchor ``name``; ValueError naming the known anchors otherwise."""
    if name not in ANCHORS:
        raise ValueError(f"unknown anchor {name!r}; allowed: {', '.join(ANCHORS)}")
    return importlib.import_module(ANCHORS[name])


def default_path(name: str) -> Path:
    """``results/anchors/<name>.md`` under the working directory (like ``run``'s results)."""
    return Path("results/anchors") / f"{name}.md"


def main(n_reps: int = 20, seed: int = 0, out: str | Path | None = None):
    """The historical entry point: anchor ``irm_synthetic`` (see `cowbench.anchors.irm_synthetic.main`)."""
    return anchor_module("irm_synthetic").main(n_reps=n_reps, seed=seed, out=out)


def run_anchor(name: str, *, reps: int | None = None, seed: int = 0, out: str | Path | None = None) -> Path:
    """Run anchor ``name`` (``reps`` repetitions, its default when None) and write its Markdown file."""
    module = anchor_module(name)
    n_reps = module.DEFAULT_REPS if reps is None else int(reps)
    if n_reps < 2:
        raise ValueError(f"reps must be an integer >= 2 (standard errors need two), got {n_reps}")
    path = Path(out) if out is not None else default_path(name)
    module.main(n_reps=n_reps, seed=seed, out=path)
    return path
