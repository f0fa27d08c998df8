"""The registries of scenarios, methods and scores (see `cowbench.registry.Registry`)."""

from __future__ import annotations

from typing import Any

from cowbench.registry import Registry

SCENARIOS: Registry[Any] = Registry("scenario", "cowbench.generators", "cowbench.generators")
METHODS: Registry[Any] = Registry("method", "cowbench.methods", "cowbench.methods", module_per_entry=True)
SCORES: Registry[Any] = Registry("score", "cowbench.scores", "cowbench.scores")
