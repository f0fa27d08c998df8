"""Plots of a run: a CI dot plot per track and a dose-response curve per knob a suite sweeps (PNG and SVG).

Both draw the cells of the shared summary table (mean and interval over replicates), so a plot shows the
numbers every other format prints:

* dot plot -- one figure per track, one panel per scenario, the track's primary metric of every method
  setting as a dot with its interval as a bar;
* dose-response -- one figure per swept knob (per ``[[scenarios]]`` entry with a ``grid``, and per value of
  its other swept knobs), one panel per track's primary metric, the knob's values on the x axis, one line per
  method setting and its interval as a band.

Which scenarios a grid made is read from the manifest (``sweeps``, written by `cowbench.runner`): the
scenario labels alone cannot tell a sweep from a list of unrelated settings.
"""

from __future__ import annotations

import math
import numbers
import re
import textwrap
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from cowbench.errors import InputError
from cowbench.registries import SCENARIOS
from cowbench.reports.table import TRACK_TITLES, RunResults, primary_scores, scenario_label, score_table, summarize

if TYPE_CHECKING:
    from matplotlib.figure import Figure

FORMATS = ("png", "svg")
_DPI = 120
#: Scenario panels per dot-plot figure (two rows of four): more go to ``dots-<track>-2``, ``-3``, ...
MAX_PANELS = 8


def _pyplot() -> Any:
    """pyplot on the Agg backend (files only: no display, the same output with or without one), imported when
    a plot is drawn: `sweeps` serves the Markdown report, which must not pay for matplotlib."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


@dataclass(frozen=True)
class Sweep:
    """The scenarios one ``[[scenarios]]`` entry made by sweeping ``knob`` (the other swept knobs held at
    ``fixed``): ``points`` maps each scenario's report label to its knob value, in the order of the values."""

    generator: str
    knob: str
    entry: int
    points: tuple[tuple[str, Any], ...]
    fixed: tuple[tuple[str, Any], ...] = field(default=())

    @property
    def scenarios(self) -> list[str]:
        """The report labels of the swept scenarios (the tables a dose-response curve replaces)."""
        return [label for label, _ in self.points]

    @property
    def numeric(self) -> bool:
        """Whether every value is a real number (a numeric x axis); else the values are categories."""
        return all(isinstance(v, numbers.Real) and not isinstance(v, bool) for _, v in self.points)

    @property
    def title(self) -> str:
        held = ", ".join(f"{k}={_value_text(v)}" for k, v in self.fixed)
        return f"{self.generator}: {self.knob}" + (f" ({held})" if held else "")

    @property
    def stem(self) -> str:
        """The file name (without suffix) of the curve: ``dose-<entry>-<generator>-<knob>[-<fixed>]``."""
        held = "-".join(f"{k}={_value_text(v)}" for k, v in self.fixed)
        text = f"dose-{self.entry + 1}-{self.generator}-{self.knob}" + (f"-{held}" if held else "")
        return re.sub(r"[^A-Za-z0-9_.=-]+", "_", text)


def _value_text(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, list | tuple):
        return "(" + ", ".join(_value_text(v) for v in value) + ")"
    return str(value)


def _scalar(value: Any) -> Any:
    # a one-element list knob (agreement_train = 0.7 is one training environment, stored as [0.7]) is its value
    if isinstance(value, list | tuple) and len(value) == 1:
        return value[0]
    return value


def sweeps(results: RunResults) -> list[Sweep]:
    """The knob sweeps of a run, from its manifest (none without one, or for suites that declare no grid).

    A grid over one knob gives one `Sweep`; a grid over several gives one per knob and per combination of
    the others' values in which that knob takes at least two values.
    """
    records = (results.manifest or {}).get("sweeps") or []
    by_entry: dict[int, list[Mapping[str, Any]]] = {}
    for rec in records:
        by_entry.setdefault(int(rec["entry"]), []).append(rec)
    out = []
    for entry, recs in sorted(by_entry.items()):
        knobs = list(recs[0]["knobs"])
        for knob in knobs:
            others = [k for k in knobs if k != knob]
            groups: dict[str, list[Mapping[str, Any]]] = {}
            for rec in recs:
                groups.setdefault(repr([rec["values"][k] for k in others]), []).append(rec)
            for group in groups.values():
                points = [(scenario_label(rec["scenario"]), _scalar(rec["values"][knob])) for rec in group]
                if len({repr(v) for _, v in points}) < 2:
                    continue
                fixed = tuple((k, _scalar(group[0]["values"][k])) for k in others)
                sweep = Sweep(recs[0]["generator"], knob, entry, tuple(points), fixed)
                if sweep.numeric:
                    sweep = Sweep(sweep.generator, knob, entry, tuple(sorted(points, key=lambda p: p[1])), fixed)
                out.append(sweep)
    return out


def _primary(scores: pd.DataFrame) -> list[tuple[str, str, bool]]:
    """(track, metric, higher is better) of each track's primary metric, in track order."""
    primary = primary_scores(scores)
    rows = [(info.track, metric, bool(info.higher_is_better)) for metric, info in primary.iterrows()]
    order = list(TRACK_TITLES)
    return sorted(rows, key=lambda r: order.index(r[0]) if r[0] in order else len(order))


def dot_plot(summary: pd.DataFrame, track: str, metric: str, *, higher_is_better: bool = True,
             scenarios: Sequence[str] | None = None) -> Figure | None:
    """One panel per scenario: each method setting's mean of ``metric`` as a dot, its interval as a bar.

    Settings are rows (the same order in every panel); a cell without an interval (one replicate) is a dot
    alone. None when no cell has a value. Each panel's dots are its first line (``ax.lines[0]``, x = means,
    y = row positions) and its bars its first `LineCollection`, both labelled with the scenario.
    """
    part = summary[summary.metric == metric]
    if scenarios is not None:
        part = part[part.scenario.isin(scenarios)]
    if part.empty:
        return None
    plt = _pyplot()
    entries = sorted(part["entry"].unique())
    row = {e: i for i, e in enumerate(entries)}
    panels = sorted(part["scenario"].unique())
    ncols = min(4, len(panels))
    nrows = math.ceil(len(panels) / ncols)
    fig, axes = plt.subplots(nrows, ncols, squeeze=False, sharey=True, layout="constrained",
                             figsize=(3.2 * ncols + 1.8, 0.28 * len(entries) * nrows + 1.2 * nrows + 0.6))
    for ax, scenario in zip(axes.flat, panels, strict=False):
        cells = part[part.scenario == scenario].sort_values("entry")
        y = cells["entry"].map(row).to_numpy(dtype=float)
        mean = cells["mean"].to_numpy(dtype=float)
        ax.plot(mean, y, "o", color="C0", markersize=4, label=scenario, zorder=3)
        has = cells["lo"].notna() & cells["hi"].notna()
        segments = [[(lo, yy), (hi, yy)] for lo, hi, yy in zip(cells["lo"][has], cells["hi"][has], y[has.to_numpy()],
                                                                strict=True)]
        from matplotlib.collections import LineCollection

        ax.add_collection(LineCollection(segments, colors="C0", linewidths=1.5, label=scenario))
        ax.set_title("\n".join(textwrap.wrap(scenario, 48)), fontsize=8)  # long knob lists: wrapped, not clipped
        ax.grid(axis="x", alpha=0.3)
        ax.tick_params(labelsize=7)
        ax.set_yticks(range(len(entries)), entries)
        ax.set_ylim(len(entries) - 0.5, -0.5)  # first row on top
        ax.autoscale_view(scalex=True, scaley=False)
    for ax in list(axes.flat)[len(panels):]:
        ax.set_visible(False)
    arrow = "↑" if higher_is_better else "↓"
    fig.suptitle(f"{TRACK_TITLES.get(track, track)}: {metric} {arrow} (mean, 95% interval over replicates)",
                 fontsize=10)
    fig.supxlabel(metric, fontsize=8)
    return fig


def knob_meaning(generator: str, knob: str) -> str:
    """The knob's one-line meaning from the scenario family's declaration (empty if the family is unknown)."""

    try:
        found = SCENARIOS.get(generator).knobs.get(knob)
    except (InputError, AttributeError):
        return ""
    return " ".join(str(getattr(found, "doc", "") or "").split())


def missing_reasons(missing: pd.DataFrame | None, scenarios: Sequence[str], metric: str) -> dict[str, str]:
    """Scenario -> why ``metric`` has no value there (the first stored reason), for the scenarios named."""
    if missing is None or missing.empty:
        return {}
    part = missing[(missing["metric"] == metric) & missing["scenario"].isin(scenarios)]
    return {str(k): str(v) for k, v in part.groupby("scenario")["reason"].first().items()}


def dose_plot(summary: pd.DataFrame, sweep: Sweep, metrics: Sequence[tuple[str, str, bool]], *,
              missing: pd.DataFrame | None = None) -> Figure | None:
    """Metric against the swept knob: one panel per (track, metric), one line per method setting, its interval
    as a band (where it has one). None when no swept scenario has a value of any of ``metrics``.

    In each panel every setting is a line labelled with its name (x = knob values, or category positions
    for non-numeric values; y = means) and a band (a `PolyCollection` from ``fill_between``) with the same
    label; a setting missing at some values has a line over the values it has.
    """
    x_of = dict(sweep.points)
    positions = {label: (v if sweep.numeric else i) for i, (label, v) in enumerate(sweep.points)}
    part = summary[summary.scenario.isin(x_of)]
    panels = [(t, m, h) for t, m, h in metrics if (part.metric == m).any()]
    if not panels:
        return None
    plt = _pyplot()
    # one colour per method setting in every panel (a method missing from a panel keeps its colour elsewhere)
    colors = {e: f"C{i % 10}" for i, e in enumerate(sorted(part["entry"].unique()))}
    fig, axes = plt.subplots(1, len(panels), squeeze=False, figsize=(4.2 * len(panels) + 1.5, 3.6),
                             layout="constrained")
    for ax, (track, metric, higher) in zip(axes[0], panels, strict=True):
        cells = part[part.metric == metric]
        for entry, line in sorted(cells.groupby("entry"), key=lambda kv: kv[0]):
            line = line.assign(x=line["scenario"].map(positions)).sort_values("x")
            color = colors[entry]
            ax.plot(line["x"], line["mean"], "o-", color=color, markersize=3, label=entry)
            band = line[line["lo"].notna() & line["hi"].notna()]
            if len(band):
                ax.fill_between(band["x"].to_numpy(dtype=float), band["lo"].to_numpy(dtype=float),
                                band["hi"].to_numpy(dtype=float), color=color, alpha=0.15, linewidth=0, label=entry)
        ax.set_title(f"{TRACK_TITLES.get(track, track)}: {metric} {'↑' if higher else '↓'}", fontsize=9)
        meaning = knob_meaning(sweep.generator, sweep.knob)
        ax.set_xlabel("\n".join(textwrap.wrap(f"{sweep.knob}: {meaning}" if meaning else sweep.knob, 60)), fontsize=7)
        # a knob value with no value of the metric is said on the figure, with the stored reason
        have = set(cells["scenario"])
        reasons = missing_reasons(missing, [s for s in sweep.scenarios if s not in have], metric)
        for label, reason in reasons.items():
            ax.axvline(positions[label], color="0.6", linestyle=":", linewidth=1, label=f"missing: {label}")
            ax.annotate("\n".join(textwrap.wrap(f"no value: {reason}", 28)), (positions[label], 0.5),
                        xycoords=("data", "axes fraction"), fontsize=6, color="0.3", ha="center", va="center",
                        rotation=90)
        if not sweep.numeric:
            ax.set_xticks(range(len(sweep.points)), [_value_text(v) for _, v in sweep.points], rotation=30)
        ax.grid(alpha=0.3)
        ax.tick_params(labelsize=7)
    from matplotlib.lines import Line2D

    fig.legend([Line2D([], [], color=c, marker="o", markersize=3) for c in colors.values()], list(colors),
               loc="outside right center", fontsize=7, frameon=False)
    fig.suptitle(f"{sweep.title} (mean, 95% interval over replicates)", fontsize=10)
    return fig


def _save(fig: Figure, out_dir: Path, stem: str, formats: Sequence[str]) -> list[Path]:
    plt = _pyplot()
    paths = []
    engine = fig.get_layout_engine()
    if engine is not None:  # lay out once and freeze: every format (and every run) gets the same positions
        engine.execute(fig)
        fig.set_layout_engine("none")
    for fmt in formats:
        path = out_dir / f"{stem}.{fmt}"
        # SVG: no date in the file, so the same results give the same bytes
        metadata = {"Date": None} if fmt == "svg" else {"Software": None}
        with plt.rc_context({"svg.hashsalt": "cowbench"}):  # fixed element ids: same bytes run after run
            fig.savefig(path, format=fmt, dpi=_DPI, metadata=metadata)
        paths.append(path)
    plt.close(fig)
    return paths


def check_formats(formats: Sequence[str]) -> list[str]:
    """The plot formats asked for, validated (`ValueError` naming the bad one and the allowed ones)."""
    formats = list(formats)
    if not formats:
        raise ValueError(f"no plot format given; allowed: {', '.join(FORMATS)}")
    for fmt in formats:
        if fmt not in FORMATS:
            raise ValueError(f"plot format {fmt!r} is not one of {', '.join(FORMATS)}")
    return formats


def write_plots(results: RunResults, out_dir: Path, formats: Sequence[str] = FORMATS, *,
                summary: pd.DataFrame | None = None, scores: pd.DataFrame | None = None) -> list[Path]:
    """Write the dot plot of every track (``dots-<track>``) and the dose-response curve of every sweep
    (`Sweep.stem`) under ``out_dir`` in each of ``formats``; returns the files written.

    Scenarios that a sweep covers are drawn on its curve and left out of the dot plots. A track with more than
    `MAX_PANELS` scenarios gets several dot plots (``dots-<track>``, ``dots-<track>-2``, ...).
    """
    formats = check_formats(formats)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    scores = score_table() if scores is None else scores
    summary = summarize(results.frame, scores=scores) if summary is None else summary
    found = sweeps(results)
    swept = {label for s in found for label in s.scenarios}
    others = sorted(set(summary["scenario"]) - swept)
    metrics = _primary(scores)
    paths: list[Path] = []
    for track, metric, higher in metrics:
        drawn = sorted(set(summary.loc[summary.metric == metric, "scenario"]) & set(others))
        # at most MAX_PANELS panels a figure: a track over 21 scenarios is several pages, not one 5774 px image
        for page, start in enumerate(range(0, len(drawn), MAX_PANELS)):
            fig = dot_plot(summary, track, metric, higher_is_better=higher, scenarios=drawn[start:start + MAX_PANELS])
            if fig is not None:
                paths += _save(fig, out_dir, f"dots-{track}" + (f"-{page + 1}" if page else ""), formats)
    for sweep in found:
        fig = dose_plot(summary, sweep, metrics, missing=results.missing)
        if fig is not None:
            paths += _save(fig, out_dir, sweep.stem, formats)
    return paths


def dose_image_lines(sweep: Sweep, image_dir: str = ".", fmt: str = "png") -> list[str]:
    """The Markdown lines that show a sweep's curve (a heading and ``![title](image_dir/stem.fmt)``): what a
    Markdown report prints in place of the tables of ``sweep.scenarios``."""
    return [f"## Dose-response — {sweep.title}", "",
            f"![{sweep.title}]({image_dir.rstrip('/')}/{sweep.stem}.{fmt})", ""]


def figure_series(fig: Figure) -> list[dict[str, Any]]:
    """What a figure draws, per panel: its title and each labelled line's data (for tests and checks)."""
    out = []
    for ax in fig.axes:
        lines = {ln.get_label(): (np.asarray(ln.get_xdata(), dtype=float), np.asarray(ln.get_ydata(), dtype=float))
                 for ln in ax.lines}
        out.append({"title": ax.get_title(), "lines": lines})
    return out
