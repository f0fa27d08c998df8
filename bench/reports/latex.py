"""LaTeX: one booktabs table fragment per track, to paste into a paper (needs ``\\usepackage{booktabs}``).

Each fragment is a ``table`` float: one block of rows per scenario (a ``\\midrule`` between blocks), rows
grouped by access level and ordered by rank within it, one column per metric of the track. A cell is
``0.710 {\\scriptsize $\\pm$ 0.020}``: the mean over replicates and half the width of its 95% interval (the
interval itself may be asymmetric: the CSV and JSON hold its ends); the best ranked cell of a scenario is
bold. The caption names the suite, its hash, the selection rule(s) and the replicates per cell. The
numbers are `cowbench.reports.table.tidy_cells`, printed at the Markdown report's precision.
"""

from __future__ import annotations

import math

import pandas as pd

from cowbench.reports.table import TRACK_TITLES, Tables, access_key, tidy_cells
from cowbench.reports.text import fmt

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
            f"level, {rank_on}; bold: best ranked setting.")


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


def render(tables: Tables) -> str:
    """Every track's fragment, each preceded by a ``% track: NAME`` comment line."""
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
