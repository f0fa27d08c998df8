"""cowbench: a benchmark of causal versus spurious features with planted ground truth.

The public API (DESIGN.md) is re-exported here lazily, so ``import cowbench`` stays light (no torch).

Layers point one way (STYLE.md, "Layers that point one way"). From the bottom:

1. data, seeds, errors, version, registries, the results store (`record_files`, `ledger`, `store`);
2. generators, truth, subjects, surgery, access (the `Task`), blinding;
3. methods and scores;
4. the job: `job_spec`, `replicate`, `loeo`, `job_run`, `job_record`, `sandbox`, `audit` (and `jobs`, which
   re-exports them);
5. planning: `suite`, `trials`, the selection rules (`selection`); running them: `isolation`, `launchers`,
   `runner`;
6. outputs: `reports`, `verify`, `reliability`, `compare`, `anchors`;
7. the CLI, and this module, the public API on top of everything.

A module imports only from below it, and from the module that defines a name (``from cowbench.ledger import
...``), never from the package ``cowbench``. A function-local import defers a heavy optional dependency (torch,
so that ``import cowbench`` and the CLI's start-up stay light; dask, matplotlib, causal-learn, scipy, sklearn)
or is the registries' lazy loading of generators and methods; it never dodges a circle: a circle means a
function lives on the wrong floor (the leave-one-environment-out refit every job needs lives with the job, in
`cowbench.loeo`, not with the report-time selection rules). ``tests/unit/test_layers.py`` reads the source and
fails on any import cycle, function-local imports included, and on a function-local import it cannot explain.
"""

from __future__ import annotations

from typing import Any

from cowbench.determinism import apply_numeric_defaults
from cowbench.errors import AccessError, InputError
from cowbench.registries import get_method, list_methods, list_scenarios, make_scenario
from cowbench.version import __version__

apply_numeric_defaults()  # MKL and ATen read their kernel settings at their first call: set them first

def __getattr__(name: str) -> Any:
    # heavier entry points (torch) load on first use
    if name == "train_subject":
        from cowbench.subject import train_subject

        return train_subject
    if name == "train_oracle":
        from cowbench.subject import train_oracle

        return train_oracle
    if name == "reliance":
        from cowbench.model_truth import reliance

        return reliance
    if name == "evaluate":
        from cowbench.jobs import evaluate

        return evaluate
    raise AttributeError(f"module 'cowbench' has no attribute {name!r}")


__all__ = ["AccessError", "InputError", "__version__", "evaluate", "get_method", "list_methods",
           "list_scenarios", "make_scenario", "reliance", "train_oracle", "train_subject"]
