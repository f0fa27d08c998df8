"""The sentences and numbers every report format prints the same way: cells, versions, selection, notes."""

from __future__ import annotations

import math
from collections import defaultdict

import pandas as pd

from cowbench.reports.table import DEFAULT_SELECTION, TOLD_ROUTES, RunResults, selection_rules


def fmt(x: float) -> str:
    text = f"{x:.3f}"
    return "0.000" if text == "-0.000" else text  # a tiny negative value is zero at this precision


def md_cell(text: object) -> str:
    """``text`` safe inside a Markdown table cell: ``|`` escaped (it would end the cell), line breaks as spaces."""
    return " ".join(str(text).splitlines()).replace("\\", "\\\\").replace("|", "\\|")


# a spreadsheet runs a cell that begins with one of these as a formula (CSV injection, OWASP); tab and carriage
# return too, as some spreadsheets strip them and then read the next character
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def csv_safe(value: object) -> object:
    """A text cell that a spreadsheet would run as a formula, prefixed with ``'`` so it is shown as text;
    numbers (a negative mean is a number, not text) and other text are returned unchanged."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


def cell_text(mean: float, lo: float, hi: float, n: int) -> str:
    """``0.600 [0.200, 1.000] (5)``: mean, interval, replicates; ``0.600 (1)`` without an interval."""
    if math.isnan(lo) or math.isnan(hi):
        return f"{fmt(mean)} ({n})"
    return f"{fmt(mean)} [{fmt(lo)}, {fmt(hi)}] ({n})"


def told_line(told: dict[str, str]) -> str | None:
    """``not ranked on detection: told the spurious variable through group labels: a, b``."""
    by_route: dict[str, list[str]] = defaultdict(list)  # one group per set of routes, each method listed once
    for entry, routes in sorted(told.items()):
        by_route[" and ".join(sorted(TOLD_ROUTES.get(r, r) for r in routes.split(",") if r))].append(entry)
    by_route.pop("", None)
    if not by_route:
        return None
    parts = "; ".join(f"through {route}: {', '.join(entries)}" for route, entries in sorted(by_route.items()))
    return f"not ranked on detection: told the spurious variable {parts}"


def missing_lines(counts: pd.DataFrame) -> list[str]:
    """One line per metric and kind of reason (settings with the same count share it), numbers of the first."""
    lines = []
    for (metric, _, count, of), block in counts.groupby(["metric", "kind", "count", "of"], sort=True):
        example = "" if block["alike"].all() and block["reason"].nunique() == 1 else "e.g. "
        lines.append(f"{metric} missing in {count}/{of} replicates of {', '.join(sorted(block.entry))}: "
                     f"{example}{block['reason'].iloc[0]}")
    return lines


def versions_text(res: RunResults, installed: str, scorer: str) -> str:
    """The package and scorer versions the results were made with (from the records), and the installed ones
    where they differ: a report of old results must not claim the current code made them."""
    made = sorted({str(v) for r in res.runs if (v := (r.get("versions") or {}).get("cowbench"))})
    scorers = sorted(set(res.jobs["scorer"].dropna())) if "scorer" in res.jobs else []
    text = f"cowbench {', '.join(made) or installed}"
    if made and installed not in made:
        text += f" (installed: {installed})"
    text += f" · scorer `{', '.join(scorers) or scorer}`"
    if scorers and scorer not in scorers:
        text += f" (installed scorer `{scorer}`: these results predate it)"
    return text


def mrd_text(mrd: float, dof: int, n: int | None = None) -> str:
    """The minimum resolvable difference as the header prints it; without degrees of freedom, the reason: a
    single replicate (``n == 1``: no paired difference has a spread) or no table with two methods."""
    if dof == 0:
        if n is not None and int(n) < 2:
            return "— (one replicate: a paired difference needs two)"
        return "— (no table with two methods)"
    if mrd == 0:
        return "0 (no paired variation: the metric is constant within every pair)"
    return fmt(mrd)


def hparams_text(jobs: pd.DataFrame) -> str:
    """How hyperparameters were set: the selection rule(s), and whether a method has several settings (rows)."""
    rules = selection_rules(jobs)
    if rules != [DEFAULT_SELECTION]:
        return (f"selection rule{'s' if len(rules) > 1 else ''} {', '.join(rules)} (each rule its own row, "
                "named in brackets where a method has several)")
    if jobs.empty or not (jobs["hparams"] != "").any():
        return "defaults (selection rule: defaults)"
    if (jobs.groupby("method")["hparams"].nunique() > 1).any():
        return "each setting its own row, named where a method has several (selection rule: defaults)"
    return "as set in the suite (selection rule: defaults)"


