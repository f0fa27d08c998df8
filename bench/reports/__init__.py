"""Reports: one table (`cowbench.reports.table`) rendered by one module per format.

A format is a module with ``NAME`` (its ``--format`` name), ``FILENAME`` (what ``--out-dir`` receives) and
``render(tables) -> str``; registering it is one line in `FORMATS` (or `register_format` from outside), so
the CLI looks a format up instead of branching on it. Formats are imported when asked for: a report in
Markdown does not import the HTML or plotting code.
"""

from __future__ import annotations

import importlib
from types import ModuleType

from cowbench.errors import InputError

#: format name -> module that renders it (imported lazily)
FORMATS: dict[str, str] = {
    "md": "cowbench.reports.markdown",
    "leaderboard": "cowbench.reports.leaderboard",
    "csv": "cowbench.reports.tabular",
    "json": "cowbench.reports.json",
    "latex": "cowbench.reports.latex",
    "html": "cowbench.reports.html",
}


def register_format(name: str, module: str) -> None:
    """Make ``module`` (with ``NAME``, ``FILENAME``, ``render``) the renderer of ``--format name``."""
    if not name or not name.isidentifier():
        raise ValueError(f"a format name must be a non-empty identifier, got {name!r}")
    FORMATS[name] = module


def get_format(name: str) -> ModuleType:
    """The module rendering format ``name``; `InputError` naming the known formats for an unknown one."""
    if name not in FORMATS:
        raise InputError(f"unknown report format {name!r}; known: {', '.join(FORMATS)}")
    module = importlib.import_module(FORMATS[name])
    for attribute in ("NAME", "FILENAME", "render"):
        if not hasattr(module, attribute):
            raise TypeError(f"report format module {module.__name__} lacks {attribute}")
    return module


__all__ = ["FORMATS", "get_format", "register_format"]
