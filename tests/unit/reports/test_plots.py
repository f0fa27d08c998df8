"""Plots read back from the figures: a dose-response curve and a CI dot plot draw exactly the summary's cells.

The run is constructed: two methods on cow with ``agreement_train`` swept over five values (declared as a
sweep in the manifest, as `cowbench.runner` writes it), plus one scenario outside the sweep. Expected means
and t intervals are computed here from the constructed values (closed form), not taken from the summary.
"""

import math

import numpy as np
import pandas as pd
import pytest
from matplotlib.collections import LineCollection, PolyCollection
from scipy.stats import t as student_t

import cowbench as cb
from cowbench.reports.plots import dose_plot, dot_plot, sweeps, write_plots
from cowbench.reports.table import results_from_frame, scenario_label, summarize

VALUES = [0.5, 0.7, 0.8, 0.9, 0.99]
N = 4
SPREAD = np.array([-0.03, -0.01, 0.01, 0.03])  # per replicate: mean 0, s.d. known


def value(method: str, v: float) -> float:
    return 2 * v if method == "rises" else 1 - v  # edit_score (unbounded: t interval)


@pytest.fixture(scope="module")
def run():
    specs = [cb.make_scenario("cow", agreement_train=v).spec for v in VALUES]
    other = cb.make_scenario("cow", agreement_test=0.5).spec
    rows = []
    for spec, v in [*zip(specs, VALUES, strict=True), (other, 0.6)]:
        for method in ("rises", "falls"):
            for r in range(N):
                job = f"{scenario_label(spec)}/{method}/{r}"
                for metric, x in (("edit_score", value(method, v) + SPREAD[r]),
                                  ("world_err", min(1.0, 0.1 + 0.5 * v + SPREAD[r] / 10))):
                    rows.append({"job_id": job, "scenario": scenario_label(spec), "method": method, "hparams": "",
                                 "access": "pooled", "told": "", "replicate": r, "metric": metric, "value": x})
    manifest = {"suite": {"name": "t"}, "suite_hash": "x", "jobs": [], "skipped": [],
                "sweeps": [{"entry": 0, "generator": "cow", "knobs": ["agreement_train"],
                            "values": {"agreement_train": v}, "scenario": s} for s, v in zip(specs, VALUES,
                                                                                            strict=True)]}
    return results_from_frame(pd.DataFrame(rows), manifest=manifest), specs, other


def half_width(values: np.ndarray) -> float:
    return float(student_t.ppf(0.975, len(values) - 1) * np.std(values, ddof=1) / math.sqrt(len(values)))


def test_sweeps_come_from_the_manifest_in_knob_order(run):
    results, specs, other = run
    (sweep,) = sweeps(results)
    assert sweep.knob == "agreement_train" and sweep.generator == "cow" and sweep.numeric
    assert [v for _, v in sweep.points] == VALUES  # one-element lists are their value
    assert sweep.scenarios == [scenario_label(s) for s in specs] and scenario_label(other) not in sweep.scenarios
    no_manifest = results_from_frame(results.frame)
    assert sweeps(no_manifest) == []


def test_dose_curve_draws_each_methods_means_and_t_band(run):
    results, _, _ = run
    (sweep,) = sweeps(results)
    fig = dose_plot(summarize(results.frame), sweep, [("edit", "edit_score", True)])
    (ax,) = fig.axes[:1]
    lines = {ln.get_label(): ln for ln in ax.lines}
    assert set(lines) == {"rises", "falls"}
    bands = {pc.get_label(): pc for pc in ax.collections if isinstance(pc, PolyCollection)}
    assert set(bands) == {"rises", "falls"}
    for method in ("rises", "falls"):
        np.testing.assert_allclose(lines[method].get_xdata(), VALUES)
        np.testing.assert_allclose(lines[method].get_ydata(), [value(method, v) for v in VALUES], atol=1e-12)
        vertices = bands[method].get_paths()[0].vertices
        for v in VALUES:
            at = vertices[np.isclose(vertices[:, 0], v), 1]
            h = half_width(value(method, v) + SPREAD)
            assert at.min() == pytest.approx(value(method, v) - h, abs=1e-9)
            assert at.max() == pytest.approx(value(method, v) + h, abs=1e-9)
    # a reversed method would show the other line: the curves are not interchangeable
    assert not np.allclose(lines["rises"].get_ydata(), lines["falls"].get_ydata())


def test_dot_plot_draws_means_as_dots_and_intervals_as_bars(run):
    results, specs, _ = run
    summary = summarize(results.frame)
    label = scenario_label(specs[1])
    fig = dot_plot(summary, "edit", "edit_score", scenarios=[label])
    ax = fig.axes[0]
    assert ax.get_title() == label
    entries = [t.get_text() for t in ax.get_yticklabels()]
    assert entries == ["falls", "rises"]
    np.testing.assert_allclose(ax.lines[0].get_xdata(), [value(e, VALUES[1]) for e in entries], atol=1e-12)
    np.testing.assert_allclose(ax.lines[0].get_ydata(), [0, 1])
    (bars,) = [c for c in ax.collections if isinstance(c, LineCollection)]
    for seg, entry in zip(bars.get_segments(), entries, strict=True):
        h = half_width(value(entry, VALUES[1]) + SPREAD)
        np.testing.assert_allclose(seg[:, 0], [value(entry, VALUES[1]) - h, value(entry, VALUES[1]) + h], atol=1e-9)
        assert seg[0, 1] == seg[1, 1] == entries.index(entry)


def test_write_plots_writes_png_and_svg_and_keeps_swept_scenarios_off_the_dot_plots(run, tmp_path):
    results, _, other = run
    paths = write_plots(results, tmp_path)
    names = sorted(p.name for p in paths)
    assert names == sorted(f"{stem}.{fmt}" for stem in ("dots-world", "dots-edit", "dose-1-cow-agreement_train")
                           for fmt in ("png", "svg"))
    for p in paths:
        head = p.read_bytes()[:8]
        assert head.startswith(b"\x89PNG") if p.suffix == ".png" else b"<svg" in p.read_bytes()[:400] or \
            head.startswith(b"<?xml")
    svg = (tmp_path / "dots-edit.svg").read_text()
    assert scenario_label(other) in svg and "agreement_train=(0.7" not in svg
    # the same results give the same SVG bytes (no date in the file)
    again = write_plots(results, tmp_path / "again", formats=["svg"])
    assert {p.name: p.read_bytes() for p in again} == {p.name: p.read_bytes() for p in paths if p.suffix == ".svg"}


def test_a_bad_format_is_refused_with_the_allowed_ones(run, tmp_path):
    with pytest.raises(ValueError, match="not one of png, svg"):
        write_plots(run[0], tmp_path, formats=["pdf"])


def test_the_sweeps_of_a_run_need_no_matplotlib():
    # the Markdown report asks for the sweeps; only drawing imports matplotlib
    import subprocess
    import sys

    code = "import sys, cowbench.reports.plots as p; assert 'matplotlib' not in sys.modules, 'imported'"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True).returncode == 0


def test_markdown_with_images_shows_the_curve_in_place_of_the_swept_tables_only(run, tmp_path):
    from cowbench.reports.markdown import render_markdown
    from cowbench.reports.table import build_tables

    results, specs, other = run
    tables = build_tables(results)
    swept = {scenario_label(s) for s in specs}
    paths = write_plots(results, tmp_path / "plots", ["png"], summary=tables.summary, scores=tables.scores)
    with_images = render_markdown(tables, image_dir="plots")
    links = [line[line.index("](") + 2:-1] for line in with_images.splitlines() if line.startswith("![")]
    assert links == ["plots/dose-1-cow-agreement_train.png"]
    assert (tmp_path / links[0]) in paths  # the link names a file write_plots wrote
    headings = [line for line in with_images.splitlines() if line.startswith("## ") and " — " in line]
    assert not any(label in h for h in headings for label in swept)
    assert any(h.endswith(f" — {scenario_label(other)}") for h in headings)  # the unswept scenario keeps its table
    # without images (a terminal) every knob value keeps its table, and nothing links an image
    plain = render_markdown(tables)
    assert "![" not in plain
    assert all(f" — {label}" in plain for label in swept)
