"""cowbench: a benchmark of causal versus spurious features with planted ground truth.

The public API (DESIGN.md) is re-exported here lazily, so ``import cowbench`` stays light (no torch).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from cowbench.determinism import apply_numeric_defaults
from cowbench.errors import AccessError, InputError

apply_numeric_defaults()  # MKL and ATen read their kernel settings at their first call: set them first

__version__ = "0.2.0"

if TYPE_CHECKING:
    from cowbench.generators.scm import Scenario
    from cowbench.method import Method


def list_scenarios() -> list[str]:
    """Names of every registered scenario family."""
    from cowbench.registries import SCENARIOS

    return SCENARIOS.names()


def list_methods() -> list[str]:
    """Names of every registered method."""
    from cowbench.registries import METHODS

    return METHODS.names()


def make_scenario(name: str, **knobs: Any) -> Scenario:
    """A validated `Scenario`; an unknown name or a bad knob raises `ValueError` naming it."""
    from cowbench.registries import SCENARIOS

    return SCENARIOS.get(name)(**knobs)


def get_method(name: str) -> type[Method]:
    """The method class registered as ``name`` (instantiate it with keyword hyperparameters)."""
    from cowbench.registries import METHODS

    return METHODS.get(name)


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
