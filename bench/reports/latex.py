"""LaTeX: booktabs tables that fit a paper column, to paste into a paper (needs ``\\usepackage{booktabs}``).

The default (`render`): per track, one table per metric (the track's primary metric unless ``metrics`` names
others), methods (rows, grouped by league or access level, ordered by rank across scenarios) against scenarios
(columns, numbered, the key in the caption), cells the mean at two decimals, bold as in every format. The
scenarios are split over as many tables as it takes for each to fit `COLUMN_WIDTH_PT` (a two-column A4
paper's column; a test compiles them and measures the box). `render_by_scenario` keeps the long layout below.

`render_by_scenario`: one fragment per track, each a ``table`` float: one block of rows per scenario (a
``\\midrule`` between blocks), rows grouped by access level and ordered by rank within it, one column per metric
of the track. A cell is ``0.710 {\\scriptsize $\\pm$ 0.020}``: the mean over replicates and half the width of its
95% interval (the interval itself may be asymmetric: the CSV and JSON hold its ends); the best ranked cell of a
scenario is bold. The caption names the suite, its hash, the selection rule(s) and the replicates per cell. The
numbers are `cowbench.reports.table.tidy_cells`, printed at the Markdown report's precision.
"""

from __future__ import annotations

import math
import re
from typing import Any

import pandas as pd

from cowbench.errors import InputError
from cowbench.reports.leaderboard import boards
from cowbench.reports.table import CONTROL_MARK, TRACK_TITLES, Tables, access_key, tidy_cells
from cowbench.reports.text import fmt
from cowbench.selection import RULE_LABELS

NAME = "latex"
FILENAME = "report.tex"

_ESCAPES = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
            "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}"}


def escape(text: str) -> str:
    """``text`` with every LaTeX special character escaped (method names hold underscores)."""
    return "".join(_ESCAPES.get(ch, ch) for ch in str(text))


def cell_tex(mean: float, lo: float, hi: float, bold: bool = False) -> str:
    """``0.710 {\\scriptsize $\\pm$ 0.020}``; the mean alone without an interval (one replicate)."""
    text = fmt(mean)
    if bold:
        text = rf"\textbf{{{text}}}"
    if math.isnan(lo) or math.isnan(hi):
        return text
    return rf"{text} {{\scriptsize $\pm$ {fmt((hi - lo) / 2)}}}"


def _n_text(ns: pd.Series) -> str:
    values = sorted({int(n) for n in ns})
    return f"n = {values[0]}" if len(values) == 1 else f"n = {values[0]}--{values[-1]}"


def _caption(tables: Tables, track: str, cells: pd.DataFrame) -> str:
    prov = tables.provenance
    suite, suite_hash = prov.get("suite") or "?", prov.get("suite_hash") or "unknown"
    rules = ", ".join(prov.get("selection") or ["defaults"])
    primary = cells.loc[cells["primary"], "metric"]
    rank_on = f"ranked on {escape(primary.iloc[0])}" if not primary.empty else "no rank"
    return (f"{TRACK_TITLES.get(track, track)}. Suite {escape(suite)} (hash \\texttt{{{escape(suite_hash)}}}), "
            f"hyperparameter selection: {escape(rules)}; {_n_text(cells['n'])} replicates per cell. "
            f"Mean {{\\scriptsize $\\pm$ half the {tables.level * 100:g}\\% interval}}; rows grouped by access "
            f"level, {rank_on}; bold: best ranked setting.{_ledger_text(prov)}")


def _ledger_text(prov: dict) -> str:
    """`` Ledger head <hash>.`` from the provenance's ledger line (`cowbench.ledger.head_line`), or nothing."""
    import re

    found = re.search(r"`([0-9a-f]{8,})`", str(prov.get("ledger") or ""))
    return f" Ledger head \\texttt{{{found.group(1)}}}." if found else ""


#: Rows (scenario headers included) per float: a track of a large suite is split between whole scenarios into
#: several floats, so that none is taller than a page.
MAX_ROWS = 40


def track_fragment(tables: Tables, track: str, cells: pd.DataFrame) -> str:
    """The booktabs ``table`` float(s) of one track from its tidy cells (split every `MAX_ROWS` rows)."""
    chunks: list[list[tuple[str, pd.DataFrame]]] = [[]]
    size = 0
    for scenario, block in cells.groupby("scenario", sort=True):
        rows = 1 + block["entry"].nunique()
        if chunks[-1] and size + rows > MAX_ROWS:
            chunks.append([])
            size = 0
        chunks[-1].append((scenario, block))
        size += rows
    return "\n\n".join(_float(tables, track, cells, chunk, part=i, parts=len(chunks))
                        for i, chunk in enumerate(chunks))


def _float(tables: Tables, track: str, cells: pd.DataFrame, chunk: list[tuple[str, pd.DataFrame]], part: int,
           parts: int) -> str:
    metrics = list(dict.fromkeys(m for m in tables.scores.index if m in set(cells["metric"])))
    arrows = {m: r"$\uparrow$" if tables.scores.loc[m, "higher_is_better"] else r"$\downarrow$" for m in metrics}
    lines = [r"\begin{table}[t]", r"\centering", r"\footnotesize", r"\setlength{\tabcolsep}{4pt}",
             r"\begin{tabular}{rll" + "r" * len(metrics) + "}", r"\toprule",
             " & ".join(["rank", "method", "access", *(f"{escape(m)} {arrows[m]}" for m in metrics)]) + r" \\",
             r"\midrule"]
    for i, (scenario, block) in enumerate(chunk):
        if i:
            lines.append(r"\midrule")
        lines.append(rf"\multicolumn{{{3 + len(metrics)}}}{{l}}{{\emph{{{escape(scenario)}}}}} \\")
        by_entry = {e: b.set_index("metric") for e, b in block.groupby("entry", sort=False)}
        order = sorted(by_entry, key=lambda e: (*access_key(by_entry[e]["access"].iloc[0]),
                                                _rank(by_entry[e]["rank"].iloc[0]), e))
        for entry in order:
            rows = by_entry[entry]
            rank = rows["rank"].iloc[0]
            texts = []
            for m in metrics:
                if m not in rows.index:
                    texts.append("--")
                    continue
                r = rows.loc[m]
                texts.append(cell_tex(float(r["mean"]), float(r["lo"]), float(r["hi"]), bool(r["best"])))
            lines.append(" & ".join(["--" if pd.isna(rank) else str(int(rank)), escape(entry),
                                     escape(rows["access"].iloc[0]), *texts]) + r" \\")
    caption = _caption(tables, track, cells)
    if parts > 1:
        caption = f"{caption} Part {part + 1} of {parts}."
    label = f"tab:cowbench-{escape(tables.provenance.get('suite') or 'run')}-{track}" + (f"-{part + 1}" if part else "")
    lines += [r"\bottomrule", r"\end{tabular}", rf"\caption{{{caption}}}", rf"\label{{{label}}}", r"\end{table}"]
    return "\n".join(lines)


def _rank(rank: float) -> float:
    return math.inf if pd.isna(rank) else float(rank)


def render_by_scenario(tables: Tables) -> str:
    """Every track's fragment in the long layout (a block of rows per scenario, every metric of the track as a
    column), each preceded by a ``% track: NAME`` comment line. Wider than a paper column for most suites."""
    cells = tidy_cells(tables)
    prov = tables.provenance
    parts = [f"% cowbench report: suite {prov.get('suite')} (hash {prov.get('suite_hash')}); "
             "booktabs fragments, one per track; needs \\usepackage{booktabs}"]
    for track in TRACK_TITLES:
        part = cells[cells["track"] == track]
        if part.empty:
            continue
        parts += [f"% track: {track}", track_fragment(tables, track, part)]
    return "\n\n".join(parts) + "\n"


# ----------------------------------------------------------------------------------------------------------
# The default: method x scenario, one metric per table, split to fit a column
# ----------------------------------------------------------------------------------------------------------

#: The width every default table must fit: the column of a two-column A4 article at 10 pt (221 pt, as pdflatex
#: reports ``\\columnwidth``), less a margin for the estimate below (the standard suite's widest table measured
#: 224 pt at a 225 pt target).
COLUMN_WIDTH_PT = 210.0
#: Estimated widths at ``\scriptsize`` (7 pt Computer Modern): per character of a number or a name, and the
#: padding of a column (2 x ``\tabcolsep`` of 2.5 pt). Conservative: the compile test measures the real box.
_CHAR_PT, _NAME_CHAR_PT, _PAD_PT = 3.7, 3.9, 5.0


def cell_short(value: float, bold: bool) -> str:
    """A mean at two decimals (``--`` when missing), bold when the tables mark the cell."""
    if math.isnan(value):
        return "--"
    text = f"{value:.2f}"
    text = "0.00" if text == "-0.00" else text
    return rf"\textbf{{{text}}}" if bold else text


def _width(texts: list[str], per_char: float) -> float:
    plain = [t.replace(r"\textbf{", "").replace("}", "").replace("\\", "") for t in texts]
    return max((len(t) for t in plain), default=0) * per_char * 1.08 + _PAD_PT  # bold digits are ~8% wider


def column_chunks(board: Any, width: float = COLUMN_WIDTH_PT) -> list[list[str]]:
    """The board's scenarios split, in order, into runs whose estimated table width fits ``width``."""
    names = [_row_name(r) for r in board.rows]
    fixed = _width([escape(n) for n in names], _NAME_CHAR_PT) + _width([r["rank"] for r in board.rows], _CHAR_PT)
    chunks: list[list[str]] = [[]]
    used = fixed
    for scenario in board.columns:
        texts = [cell_short(board.value(r["entry"], scenario), board.bold(r["entry"], scenario)) for r in board.rows]
        w = max(_width(texts, _CHAR_PT), _width([f"({len(board.columns)})"], _CHAR_PT))
        if chunks[-1] and used + w > width:
            chunks.append([])
            used = fixed
        chunks[-1].append(scenario)
        used += w
    return chunks


def _row_name(row: dict) -> str:
    if "name" in row:  # the front page's name: the selection rule left to the caption, a control marked
        return str(row["name"])
    return row["entry"] + (CONTROL_MARK if row["control"] and not row["entry"].endswith(CONTROL_MARK) else "")


def board_tables(tables: Tables, board: Any, width: float = COLUMN_WIDTH_PT) -> list[str]:
    """The ``table`` floats of one board (a track's metric), split between scenarios to fit ``width``."""
    prov = tables.provenance
    suite, suite_hash = prov.get("suite") or "?", prov.get("suite_hash") or "unknown"
    arrow = r"$\uparrow$" if board.higher_is_better else r"$\downarrow$"
    number = {s: i + 1 for i, s in enumerate(board.columns)}
    chunks = column_chunks(board, width)
    ns = [int(c["n"]) for c in board.cells.values()]
    n_text = _n_text(pd.Series(ns)) if ns else "n = ?"
    out = []
    for part, chunk in enumerate(chunks):
        lines = [r"\begin{table}[t]", r"\centering", r"\scriptsize", r"\setlength{\tabcolsep}{2.5pt}",
                 r"\begin{tabular}{rl" + "r" * len(chunk) + "}", r"\toprule",
                 " & ".join(["rank", "method", *(f"({number[s]})" for s in chunk)]) + r" \\"]
        group = None
        for row in board.rows:
            if all(math.isnan(board.value(row["entry"], s)) for s in chunk):
                continue  # a method with no value on these scenarios: its row is in the other part(s)
            if row["group"] != group:
                group = row["group"]
                lines += [r"\midrule", rf"\multicolumn{{{2 + len(chunk)}}}{{l}}{{\emph{{{escape(group)}}}}} \\"]
            cells = [cell_short(board.value(row["entry"], s), board.bold(row["entry"], s)) for s in chunk]
            lines.append(" & ".join([escape(row["rank"]).replace("—", "--"), escape(_row_name(row)), *cells])
                         + r" \\")
        key = "; ".join(f"({number[s]}) {escape(s)}" for s in chunk)
        caption = (f"{TRACK_TITLES.get(board.track, board.track)}: {escape(board.metric)} {arrow}, mean over "
                   f"replicates ({n_text}); suite {escape(suite)} (hash \\texttt{{{escape(suite_hash)}}}); rank: "
                   f"across scenarios; bold: best ranked setting of the scenario. Scenarios: {key}."
                   f"{_ledger_text(prov)}")
        if board.show_rule:  # one table per selection rule: say which
            caption += f" Selection: {escape(RULE_LABELS.get(board.selection, board.selection))}."
        if len(chunks) > 1:
            caption += f" Part {part + 1} of {len(chunks)}."
        # a label is not typeset: no escapes (an escaped underscore breaks \\ref), only safe characters
        label = re.sub(r"[^A-Za-z0-9:.-]+", "-", f"tab:cowbench-{suite}-{board.slug}-{board.metric}"
                       + (f"-{part + 1}" if part else ""))
        lines += [r"\bottomrule", r"\end{tabular}", rf"\caption{{{caption}}}", rf"\label{{{label}}}",
                  r"\end{table}"]
        out.append("\n".join(lines))
    return out


def check_metrics(tables: Tables, metrics: list[str]) -> list[str]:
    """``metrics`` validated against the registered ones (`InputError` naming the unknown and the allowed)."""

    known = list(tables.scores.index)
    bad = [m for m in metrics if m not in known]
    if bad:
        raise InputError(f"--metrics: unknown metric(s) {', '.join(map(repr, bad))}; allowed: {', '.join(known)}")
    return metrics


def render(tables: Tables, metrics: list[str] | None = None, *, width: float = COLUMN_WIDTH_PT) -> str:
    """The default LaTeX report: per track and metric (the primary ones unless ``metrics`` names others), the
    method x scenario tables that fit ``width`` points, each preceded by a ``% track: NAME, metric: M`` line."""

    if metrics is not None:
        check_metrics(tables, metrics)
    prov = tables.provenance
    parts = [f"% cowbench report: suite {prov.get('suite')} (hash {prov.get('suite_hash')}); booktabs tables, "
             f"method x scenario, one metric each, each at most {width:g} pt wide; needs \\usepackage{{booktabs}}"]
    for b in boards(tables, metrics):
        parts += [f"% track: {b.track}, metric: {b.metric}", *board_tables(tables, b, width)]
    return "\n\n".join(parts) + "\n"
