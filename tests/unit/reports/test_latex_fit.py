"""The default LaTeX tables fit a paper column: compiled with pdflatex and their boxes measured.

The check is the typeset width (``\\wd`` of each tabular in a box, read from the log) against ``\\columnwidth`` of a
two-column A4 article, not the estimate `cowbench.reports.latex` splits by. Skipped where pdflatex is absent
(the structure tests stand in).
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from cowbench.reports import latex
from cowbench.reports.table import build_tables, results_from_frame

pdflatex = pytest.mark.skipif(shutil.which("pdflatex") is None,
                              reason="no pdflatex (apt-get install texlive-latex-base)")

LONG = ("linear_sem(beta=2.0, hidden_to_x1=1.0, hidden_to_y=3.0, instrument=1.0, x1_sd_train=(1.0,), "
        "x2_coef_train=(1.0,))")


def wide_frame(n_scenarios: int = 24, n_methods: int = 20) -> pd.DataFrame:
    """A run shaped like the standard suite's edit track: many scenarios (one with a 100+ character label), long
    method names, negative and two-digit means."""
    rng = np.random.default_rng(0)
    scenarios = [f"planted_scenario_{i}" for i in range(n_scenarios - 1)] + [LONG]
    methods = [f"random_direction_ablation_{i}" for i in range(n_methods)]
    rows = []
    for s in scenarios:
        for j, m in enumerate(methods):
            for r in range(3):
                for metric in ("edit_score", "wga"):
                    value = float(rng.normal(-11.5 if j == 0 else 0.5, 1)) if metric == "edit_score" else 0.5
                    rows.append({"job_id": f"{s}-{m}-{r}", "scenario": s, "method": m, "hparams": "",
                                 "access": "pooled+concept+internals+counterfactual", "told": "", "replicate": r,
                                 "metric": metric, "value": value})
    return pd.DataFrame(rows)


@pytest.fixture(scope="module")
def wide_tables():
    manifest = {"suite": {"name": "wide", "root_seed": 0, "replicates": 3}, "suite_hash": "f" * 12, "jobs": []}
    return build_tables(results_from_frame(wide_frame(), manifest=manifest))


def measure(tex: str, tmp_path: Path) -> tuple[float, list[float]]:
    """(column width, width of each tabular) in pt, typeset by pdflatex."""
    tables = re.findall(r"\\begin\{table\}\[t\]\n\\centering\n(.*?\\end\{tabular\})", tex, flags=re.S)
    assert tables, "no table in the LaTeX output"
    parts = []
    for t in tables:
        settings, tabular = t.split("\\begin{tabular}", 1)
        parts.append("{" + settings + "\\sbox\\tb{\\begin{tabular}" + tabular + "}\\typeout{WIDTH=\\the\\wd\\tb}}")
    body = "\n".join(parts)
    doc = ("\\documentclass[twocolumn,a4paper]{article}\n\\usepackage{booktabs}\n\\newsavebox\\tb\n\\begin{document}\n"
           "\\typeout{COLUMN=\\the\\columnwidth}\n" + body + "\n\\end{document}\n")
    (tmp_path / "measure.tex").write_text(doc)
    run = subprocess.run(["pdflatex", "-interaction=nonstopmode", "-halt-on-error", "measure.tex"], cwd=tmp_path,
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stdout[-2000:]
    log = (tmp_path / "measure.log").read_text(errors="replace")
    column = float(re.search(r"COLUMN=([\d.]+)pt", log).group(1))
    return column, [float(w) for w in re.findall(r"WIDTH=([\d.]+)pt", log)]


def test_the_default_is_one_metric_per_table_primary_first_and_metrics_chooses(wide_tables):
    tex = latex.render(wide_tables)
    assert re.findall(r"% track: (\w+), metric: (\w+)", tex) == [("edit", "edit_score")]
    chosen = latex.render(wide_tables, ["wga", "edit_score"])
    assert re.findall(r"% track: (\w+), metric: (\w+)", chosen) == [("edit", "edit_score"), ("edit", "wga")]
    with pytest.raises(Exception, match=r"unknown metric.*'nope'"):
        latex.render(wide_tables, ["nope"])


def test_every_scenario_is_in_exactly_one_table_with_its_full_label_in_a_caption(wide_tables):
    tex = latex.render(wide_tables)
    captions = re.findall(r"\\caption\{(.*)\}", tex)
    assert len(captions) > 1  # 24 scenarios do not fit one column: split
    keys = [k for c in captions for k in re.findall(r"\((\d+)\) ", c.split("Scenarios: ")[1])]
    assert sorted(map(int, keys)) == list(range(1, 25))
    assert latex.escape(LONG) in tex


def test_a_mean_is_the_cell_at_two_decimals_and_the_best_is_bold(wide_tables):
    tex = latex.render(wide_tables)
    row = next(line for line in tex.splitlines() if " & random\\_direction\\_ablation\\_0 & " in line)
    cells = wide_tables.summary[wide_tables.summary.metric == "edit_score"]
    mean = cells[(cells.scenario == LONG) & (cells.method == "random_direction_ablation_0")]  # column (1)
    expected = np.mean([v for v in wide_frame().query("metric == 'edit_score' and method == "
                                                       "'random_direction_ablation_0' and scenario == @LONG")["value"]])
    assert float(mean["mean"].iloc[0]) == pytest.approx(expected)
    assert row.split(" & ")[2] == f"{expected:.2f}"  # the worst method: not bold, negative, two decimals
    assert r"\textbf{" in tex


@pdflatex
def test_every_default_table_fits_a_two_column_a4_column(wide_tables, synthetic_tables, tmp_path):
    column, widths = measure(latex.render(wide_tables), tmp_path)
    assert 200 < column < 260 and len(widths) > 1
    assert max(widths) <= column, (max(widths), column)
    column, widths = measure(latex.render(synthetic_tables), tmp_path)
    assert max(widths) <= column


@pdflatex
def test_the_long_layout_is_wider_than_a_column_so_the_measure_can_fail(wide_tables, tmp_path):
    tex = latex.render_by_scenario(wide_tables)
    tex = tex.replace(r"\begin{table}[t]" + "\n" + r"\centering" + "\n" + r"\footnotesize",
                      r"\begin{table}[t]" + "\n" + r"\centering" + "\n" + r"\scriptsize")
    column, widths = measure(tex, tmp_path)
    assert max(widths) > column
