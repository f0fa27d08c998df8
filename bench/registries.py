"""The registries of scenarios, methods and scores (see `cowbench.registry.Registry`)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from cowbench.registry import Registry

if TYPE_CHECKING:
    from cowbench.generators.scm import Scenario
    from cowbench.method import Method

SCENARIOS: Registry[Any] = Registry("scenario", "cowbench.generators", "cowbench.generators")
METHODS: Registry[Any] = Registry("method", "cowbench.methods", "cowbench.methods", module_per_entry=True)
SCORES: Registry[Any] = Registry("score", "cowbench.scores", "cowbench.scores")


def list_scenarios() -> list[str]:
    """Names of every registered scenario family."""
    return SCENARIOS.names()


def list_methods() -> list[str]:
    """Names of every registered method."""
    return METHODS.names()


def make_scenario(name: str, **knobs: Any) -> Scenario:
    """A validated `Scenario`; an unknown name or a bad knob raises `ValueError` naming it."""
    return SCENARIOS.get(name)(**knobs)


def get_method(name: str) -> type[Method]:
    """The method class registered as ``name`` (instantiate it with keyword hyperparameters)."""
    return METHODS.get(name)
