"""CSV: the tidy cells, one row per (scenario, method, hyperparameters, selection rule, metric).

Columns are `cowbench.reports.table.TIDY_COLUMNS`: mean, interval [lo, hi], n, the interval's method, the
setting's rank and P(best) in its (scenario, track) table and why it has none. Numbers are written with
``repr`` precision (17 significant digits): a CSV is for analysis, the rounding belongs to the reader.
A missing number is an empty field. Provenance does not fit a flat table; it is in the JSON. A text cell that
begins with ``= + - @`` (a hostile method name) is written with a leading ``'`` so no spreadsheet runs it.
"""

from __future__ import annotations

import io

import pandas as pd

from cowbench.reports.table import Tables, tidy_cells
from cowbench.reports.text import csv_safe

NAME = "csv"
FILENAME = "report.csv"


def render(tables: Tables) -> str:
    """The tidy cells of ``tables`` as CSV text (header row first, ``\\n`` line ends)."""
    cells = tidy_cells(tables)
    for column in cells.columns:  # names cannot inject formulas into a spreadsheet; numbers stay numbers
        if not pd.api.types.is_numeric_dtype(cells[column]):
            cells[column] = cells[column].map(csv_safe)
    buffer = io.StringIO()
    cells.to_csv(buffer, index=False, lineterminator="\n", float_format=None)
    return buffer.getvalue()
