"""Scenario generators: one module per scenario family, on the SCM machinery of `scm` and `knobs`.

A family registers itself with ``@scenario_family(name, version=..., knobs=...)``; the registry finds it
by module name on first use, so adding a family is adding one file here.
"""

from cowbench.generators.knobs import Knob, ScenarioFamily, scenario_family
from cowbench.generators.scm import SCM, Environment, IdentityRendering, Rendering, Scenario, Variable

__all__ = ["SCM", "Environment", "IdentityRendering", "Knob", "Rendering", "Scenario", "ScenarioFamily",
           "Variable", "scenario_family"]
