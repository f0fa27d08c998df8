"""Hostile method names in the reports: a CSV cell never starts a spreadsheet formula, a Markdown row never
breaks on a ``|``."""

from __future__ import annotations

import csv
import importlib.util
import io
from pathlib import Path

import pytest

from cowbench.reports.text import csv_safe, md_cell

# the reports' synthetic run (tests are imported with --import-mode=importlib: conftest is not a module here)
_spec = importlib.util.spec_from_file_location("reports_conftest", Path(__file__).with_name("conftest.py"))
_synthetic = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_synthetic)
MANIFEST, synthetic_frame = _synthetic.MANIFEST, _synthetic.synthetic_frame

HOSTILE = {"a_method": '=HYPERLINK("http://evil","x")', "b": "a|b", "c": "@SUM(1+1)"}


@pytest.fixture(scope="module")
def hostile_tables():
    from cowbench.reports.table import build_tables, results_from_frame

    frame = synthetic_frame()
    frame["method"] = frame["method"].map(lambda m: HOSTILE.get(m, m))
    return build_tables(results_from_frame(frame, manifest=MANIFEST))


def test_csv_cells_that_would_run_as_formulas_are_prefixed(hostile_tables):
    from cowbench.reports import tabular

    rows = list(csv.DictReader(io.StringIO(tabular.render(hostile_tables))))
    texts = [v for row in rows for v in row.values() if v]
    assert not [t for t in texts if t[0] in "=+@" or (t[0] == "-" and not _number(t))], texts
    methods = {row[k] for row in rows for k in row if k in ("entry", "method")}
    assert "'" + HOSTILE["a_method"] in methods and "'" + HOSTILE["c"] in methods


def _number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def test_markdown_rows_keep_their_columns_with_a_pipe_in_a_name(hostile_tables):
    from cowbench.reports.markdown import render_markdown

    text = render_markdown(hostile_tables)
    checked, columns = 0, None
    for line in text.splitlines():
        if line.startswith("|---"):
            columns = line.count("|")  # the table's separator row: one more "|" than columns
        elif line.startswith("| ") and "a\\|b" in line:
            assert line.replace("\\|", "").count("|") == columns, line  # the escaped pipe splits no cell
            checked += 1
    assert checked >= 3, text  # two scenario tables and the across-scenarios table


@pytest.mark.parametrize("value,safe", [("=1+1", "'=1+1"), ("+1", "'+1"), ("-x", "'-x"), ("@a", "'@a"),
                                        ("\tx", "'\tx"), ("plain", "plain"), (-1.5, -1.5), (None, None)])
def test_csv_safe(value, safe):
    assert csv_safe(value) == safe


def test_md_cell_escapes_pipes_backslashes_and_line_breaks():
    assert md_cell("a|b") == "a\\|b" and md_cell("a\\|b") == "a\\\\\\|b" and md_cell("a\nb") == "a b"
