"""Every report format renders the same tidy table: parse each back and find the same numbers."""

from __future__ import annotations

import io
import json
import math
import re
import shutil
import subprocess
from html.parser import HTMLParser

import pandas as pd
import pytest

from cowbench.errors import InputError
from cowbench.reports import FORMATS, get_format
from cowbench.reports.latex import render_by_scenario
from cowbench.reports.text import fmt


def test_the_registry_names_each_format_and_refuses_an_unknown_one():
    assert set(FORMATS) >= {"md", "csv", "json", "latex", "html"}
    filenames = {get_format(f).FILENAME for f in FORMATS}
    assert len(filenames) == len(FORMATS)  # --out-dir never writes two formats into one file
    with pytest.raises(InputError, match=r"unknown report format 'xls'.*md"):
        get_format("xls")


# ---- CSV and JSON: one row per (scenario, method, hyperparameters, selection, metric) ----------------------

def test_csv_and_json_hold_the_same_rows_with_the_independent_means(synthetic_tables, expected_means):
    csv = pd.read_csv(io.StringIO(get_format("csv").render(synthetic_tables)), keep_default_na=False,
                      na_values=[""])
    data = json.loads(get_format("json").render(synthetic_tables),
                      parse_constant=lambda c: pytest.fail(f"{c} in JSON"))
    cells = pd.DataFrame(data["cells"])
    expected = expected_means
    for frame in (csv, cells):
        assert len(frame) == len(expected)  # one row per cell, no duplicates, nothing merged
        got = {(r.scenario, r.method, r.metric): r.mean for r in frame.itertuples()}
        assert got.keys() == expected.keys()
        for key, mean in expected.items():
            assert got[key] == pytest.approx(mean, abs=1e-12)
        assert (frame["n"] == 3).all() and (frame["selection"] == "defaults").all()
        assert (frame["lo"] <= frame["mean"]).all() and (frame["mean"] <= frame["hi"]).all()
    ranks = {(r.scenario, r.method): r.rank for r in csv[csv.metric == "world_err"].itertuples()}
    assert ranks == {("cow", "a_method"): 1, ("cow", "b"): 2, ("cow", "c"): 3,
                     ("four_groups", "b"): 1, ("four_groups", "c"): 1, ("four_groups", "a_method"): 1}
    p_best = csv[(csv.metric == "world_err") & (csv.scenario == "cow")].set_index("method")["p_best"]
    assert p_best["a_method"] == pytest.approx(1.0) and p_best["c"] == 0.0
    tied = csv[(csv.metric == "world_err") & (csv.scenario == "four_groups")].set_index("method")["p_best"]
    assert tied["b"] == pytest.approx(0.5) and tied["c"] == pytest.approx(0.5)  # an exact tie splits the win
    merged = csv.merge(cells, on=["scenario", "method", "metric"], suffixes=("", "_json"))
    for column in ("mean", "lo", "hi", "rank", "p_best"):
        assert (merged[column] - merged[f"{column}_json"]).abs().max() < 1e-12


def test_json_carries_provenance_and_skipped_pairs(synthetic_tables, synthetic_manifest):
    data = json.loads(get_format("json").render(synthetic_tables))
    prov = data["provenance"]
    assert prov["suite"] == "synthetic" and prov["suite_hash"] == synthetic_manifest["suite_hash"]
    assert prov["root_seed"] == 7 and prov["selection"] == ["defaults"]
    assert prov["package"]["name"] == "cowbench" and prov["package"]["installed"]
    assert prov["scorer"]["installed"] and "win rate" in prov["aggregation"]
    assert data["skipped"] == [{"method": "iv_2sls", "scenario": "cow", "reason": "needs an instrument"}]
    assert {r["entry"] for r in data["across"]} == {"a_method", "b", "c"}


# ---- Markdown ---------------------------------------------------------------------------------------------

def test_markdown_prints_the_same_cells(synthetic_tables):
    text = get_format("md").render(synthetic_tables)
    tidy = pd.read_csv(io.StringIO(get_format("csv").render(synthetic_tables)))
    for r in tidy.itertuples():
        cell = f"{fmt(r.mean)} [{fmt(r.lo)}, {fmt(r.hi)}] ({r.n})"
        row = next(line for line in text.splitlines() if f"| {r.method} | {r.access} |" in line
                   and line in _section(text, f"## World recovery — {r.scenario}"))
        assert cell in row
    assert "selection rule: defaults" in text and "abc123def456" in text


def _section(text: str, title: str) -> str:
    start = text.index(title)
    end = text.find("\n## ", start + 1)
    return text[start:end if end > 0 else None]


# ---- LaTeX ------------------------------------------------------------------------------------------------

_ROW = re.compile(r"^(?P<rank>\d+|--) & (?P<entry>[^&]+) & (?P<access>[^&]+) & (?P<cells>.*) \\\\$")


def _latex_rows(tex: str) -> list[dict]:
    return [m.groupdict() for line in tex.splitlines() if (m := _ROW.match(line))]


def test_latex_cells_are_mean_plus_minus_half_the_interval_and_the_best_is_bold(synthetic_tables):
    tex = render_by_scenario(synthetic_tables)  # the long layout (the default: test_latex_fit)
    tidy = pd.read_csv(io.StringIO(get_format("csv").render(synthetic_tables)))
    rows = _latex_rows(tex)
    assert len(rows) == 6  # 2 scenarios x 3 methods
    # columns follow the registered metric order: world_cos, then world_err
    by_scenario_entry = {}
    scenario = None
    for line in tex.splitlines():
        if line.startswith(r"\multicolumn"):
            scenario = re.search(r"\\emph\{(.*?)\}", line).group(1).replace(r"\_", "_")
        elif m := _ROW.match(line):
            by_scenario_entry[(scenario, m["entry"].replace(r"\_", "_"))] = m["cells"].split(" & ")
    for r in tidy.itertuples():
        cells = by_scenario_entry[(r.scenario, r.method)]
        cell = cells[0 if r.metric == "world_cos" else 1]
        mean = rf"\textbf{{{fmt(r.mean)}}}" if r.best else fmt(r.mean)
        assert cell == rf"{mean} {{\scriptsize $\pm$ {fmt((r.hi - r.lo) / 2)}}}"
    bold = {k for k, cells in by_scenario_entry.items() if r"\textbf" in cells[1]}
    assert bold == {("cow", "a_method")}  # four_groups: a tie, nothing separated, nothing bold


def test_latex_structure_escaping_and_caption(synthetic_tables):
    tex = render_by_scenario(synthetic_tables)  # the long layout (the default: test_latex_fit)
    body = "\n".join(line for line in tex.splitlines() if not line.startswith("%"))
    depth = 0
    for ch in body.replace(r"\{", "").replace(r"\}", ""):
        depth += {"{": 1, "}": -1}.get(ch, 0)
        assert depth >= 0
    assert depth == 0
    assert body.index(r"\toprule") < body.index(r"\midrule") < body.index(r"\bottomrule")
    spec = re.search(r"\\begin\{tabular\}\{([a-z]+)\}", body).group(1)
    for line in body.splitlines():
        if line.endswith(r"\\") and not line.startswith(r"\multicolumn"):
            assert line.count(" & ") == len(spec) - 1, line
    assert "a\\_method" in body and "a_method" not in body.replace("a\\_method", "")
    caption = re.search(r"\\caption\{(.*)\}", body).group(1)
    assert "abc123def456" in caption and "selection: defaults" in caption and "n = 3" in caption


def test_latex_escape_covers_every_special_character():
    from cowbench.reports.latex import escape

    assert escape("a_b&c%d$e#f{g}h~i^j\\k") == (r"a\_b\&c\%d\$e\#f\{g\}h\textasciitilde{}i\textasciicircum{}j"
                                                 r"\textbackslash{}k")


@pytest.mark.skipif(shutil.which("pdflatex") is None, reason="no pdflatex: the structure test stands in")
def test_latex_fragment_compiles_in_a_minimal_document(synthetic_tables, tmp_path):
    (tmp_path / "frag.tex").write_text(get_format("latex").render(synthetic_tables))
    (tmp_path / "doc.tex").write_text("\\documentclass{article}\n\\usepackage{booktabs}\n\\begin{document}\n"
                                      "\\input{frag.tex}\n\\end{document}\n")
    run = subprocess.run(["pdflatex", "-interaction=nonstopmode", "-halt-on-error", "doc.tex"], cwd=tmp_path,
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stdout[-2000:]
    assert (tmp_path / "doc.pdf").stat().st_size > 0


# ---- HTML -------------------------------------------------------------------------------------------------

class Board(HTMLParser):
    """The leaderboard rows of an HTML page: per row its attributes, whether hidden, and its cells' data."""

    def __init__(self):
        super().__init__()
        self.rows: list[dict] = []
        self.in_board = False
        self.attrs_seen: list[tuple[str, str, str | None]] = []
        self.tags: set[str] = set()

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        self.tags.add(tag)
        self.attrs_seen += [(tag, k, v) for k, v in attrs]
        if tag == "table":
            self.in_board = "board" in (a.get("class") or "").split()
        elif tag == "tr" and self.in_board and "data-entry" in a:
            self.rows.append({"attrs": a, "hidden": "hidden" in a, "cells": []})
        elif tag == "td" and self.in_board and self.rows:
            self.rows[-1]["cells"].append(a)

    def handle_endtag(self, tag):
        if tag == "table":
            self.in_board = False


def parse_board(text: str) -> Board:
    board = Board()
    board.feed(text)
    return board


def test_html_holds_the_same_numbers_and_is_self_contained(synthetic_tables):
    text = get_format("html").render(synthetic_tables)
    board = parse_board(text)
    tidy = pd.read_csv(io.StringIO(get_format("csv").render(synthetic_tables)))
    got = {}
    for row in board.rows:
        for cell in row["cells"]:
            if "data-metric" in cell:
                got[(row["attrs"]["data-scenario"], row["attrs"]["data-entry"], cell["data-metric"])] = (
                    float(cell["data-value"]), float(cell["data-lo"]), float(cell["data-hi"]), int(cell["data-n"]))
    assert len(got) == len(tidy)
    for r in tidy.itertuples():
        assert got[(r.scenario, r.method, r.metric)] == pytest.approx((r.mean, r.lo, r.hi, r.n), abs=1e-12)
    # no network: nothing fetched, no URL of any kind
    assert not re.search(r"https?:|//[a-z]|url\(", text, re.IGNORECASE)
    assert not {"link", "img", "iframe", "object", "embed"} & board.tags
    assert not [a for a in board.attrs_seen if a[1] in ("src", "href")]
    assert "iv_2sls on cow: needs an instrument" in text and 'id="provenance"' in text


def _chromium() -> str | None:
    return next((p for p in map(shutil.which, ("chromium", "chromium-browser", "google-chrome")) if p), None)


def _dump_dom(path, query: str) -> str:
    run = subprocess.run([_chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--virtual-time-budget=5000",
                          "--dump-dom", f"file://{path}{query}"], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr[-2000:]
    return run.stdout


@pytest.mark.skipif(_chromium() is None, reason="no chromium binary (apt-get install chromium)")
def test_html_filters_and_sorts_in_headless_chromium(synthetic_tables, tmp_path):
    page = tmp_path / "report.html"
    page.write_text(get_format("html").render(synthetic_tables))
    # filter by scenario family and access level, sort by world_err descending: all done by the page's script
    dom = _dump_dom(page, "?family=four_groups&sort=world-world_err&dir=desc")
    assert 'data-ready="1"' in dom  # the script ran to the end
    board = parse_board(dom)
    shown = [r["attrs"] for r in board.rows if not r["hidden"]]
    assert {r["data-scenario"] for r in shown} == {"four_groups"} and len(shown) == 3
    assert shown[0]["data-entry"] == "a_method"  # worst world_err (0.42) first when descending
    assert "3 rows shown" in dom
    dom = _dump_dom(page, "?access=pooled%2Benv")
    shown = [r["attrs"] for r in parse_board(dom).rows if not r["hidden"]]
    assert {r["data-entry"] for r in shown} == {"b"} and len(shown) == 2
    # unfiltered and sorted ascending by rank: the rank column reads in order, missing last
    dom = _dump_dom(page, "?sort=world-rank")
    ranks = [r["cells"][2]["data-value"] for r in parse_board(dom).rows]
    values = [float(v) if v else math.inf for v in ranks]
    assert values == sorted(values) and len(values) == 6
