"""The front page of a run: per track, methods (rows) against scenarios (columns) on the primary metric.

One table per track: a row per method setting, grouped by league (where the tables hold one, else by access
level), controls last in their group and marked; a column per scenario, ordered by scenario family, holding
the mean of the track's primary metric (bold where the tables mark the cell: ``bold`` when present, else
``best``); then the across-scenario rank and win rate. Scenario labels longer than `MAX_LABEL` characters get
a short name (``linear_sem·2``) with the full specification in a legend (Markdown) or on hover (HTML). A
heatmap of the same matrix is drawn by `heatmap` (``plots/leaderboard-<track>.png|svg``).

Everything is read from `cowbench.reports.table.tidy_cells` and ``Tables.across``; columns that newer tables
add (``rank_label``, ``bold``, ``league``, ``control``) are used when present and not needed otherwise, so
the page follows the tables as the ranking rules change. No number is computed here.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pandas as pd

from cowbench.reports.plots import _pyplot, _save
from cowbench.reports.table import CONTROL_MARK, TRACK_TITLES, Tables, access_key, scenario_family, tidy_cells
from cowbench.reports.text import fmt

if TYPE_CHECKING:
    from matplotlib.figure import Figure

NAME = "leaderboard"
FILENAME = "leaderboard.md"

#: A scenario label longer than this is shown by its short name (``family·k``), the full label in the legend.
MAX_LABEL = 24


def short_labels(scenarios: list[str]) -> dict[str, str]:
    """Scenario label -> the name a narrow column shows.

    A label of at most `MAX_LABEL` characters is its own name; a longer one becomes ``family·k``, ``k``
    numbering the long labels of that family in sorted order (so the names are stable for a given run and
    distinct from every short label, which never holds ``·``).
    """
    out: dict[str, str] = {}
    counts: dict[str, int] = {}
    for label in sorted(set(scenarios)):
        if len(label) <= MAX_LABEL:
            out[label] = label
            continue
        family = scenario_family(label)
        counts[family] = counts.get(family, 0) + 1
        out[label] = f"{family}·{counts[family]}"
    return out


@dataclass
class Board:
    """One track's front-page table: ``rows`` (one per method setting, in display order, with the group,
    ``control``, across ``rank`` text and ``win_rate``), ``columns`` (scenario labels, by family),
    ``short`` (label -> shown name), ``cells`` ((entry, scenario) -> the tidy cell row)."""

    track: str
    metric: str
    higher_is_better: bool
    rows: list[dict[str, Any]]
    columns: list[str]
    short: dict[str, str]
    cells: dict[tuple[str, str], pd.Series]

    def value(self, entry: str, scenario: str) -> float:
        cell = self.cells.get((entry, scenario))
        return math.nan if cell is None else float(cell["mean"])

    def bold(self, entry: str, scenario: str) -> bool:
        cell = self.cells.get((entry, scenario))
        if cell is None:
            return False
        flag = cell["bold"] if "bold" in cell.index else cell.get("best", False)
        return bool(flag) if not pd.isna(flag) else False

    def scenario_rank(self, entry: str, scenario: str) -> str:
        """The setting's rank in the scenario's table as the tables print it (``rank_label`` if present)."""
        cell = self.cells.get((entry, scenario))
        if cell is None:
            return ""
        if "rank_label" in cell.index and isinstance(cell["rank_label"], str):
            return cell["rank_label"]
        return "" if pd.isna(cell["rank"]) else str(int(cell["rank"]))


def _is_control(row: pd.Series) -> bool:
    if "control" in row.index and not pd.isna(row["control"]):
        return bool(row["control"])
    return str(row["entry"]).endswith(CONTROL_MARK) or row.get("unranked", "") == "control"


def _rank_text(row: Any, columns: Any) -> str:
    if "rank_label" in columns and isinstance(row.get("rank_label"), str) and row.get("rank_label"):
        return str(row["rank_label"])
    rank = row.get("rank")
    if rank is None or pd.isna(rank):
        return "—"
    return str(int(rank))


def boards(tables: Tables, metrics: list[str] | None = None) -> list[Board]:
    """One `Board` per track that has a value of its primary metric, in track order; with ``metrics``, one per
    metric named (in track order, each track's primary metric first) instead."""
    cells = tidy_cells(tables)
    if cells.empty:
        return []
    out = []
    tracks = [*TRACK_TITLES, *sorted(set(cells["track"].dropna()) - set(TRACK_TITLES))]
    for track in tracks:
        part = cells[cells["track"] == track]
        names = list(dict.fromkeys(part.loc[part["primary"].astype(bool), "metric"]))
        if metrics is not None:
            names = [m for m in [*names, *sorted(set(part["metric"]))] if m in metrics]
            names = list(dict.fromkeys(names))
        for metric in names:
            out.append(board(tables, part[part["metric"] == metric]))
    return out


def board(tables: Tables, part: pd.DataFrame) -> Board:
    """The `Board` of one (track, metric) from its tidy cells ``part``."""
    across = tables.across
    track, metric = str(part["track"].iloc[0]), str(part["metric"].iloc[0])
    higher = bool(part["higher_is_better"].iloc[0])
    columns = sorted(set(part["scenario"]), key=lambda s: (scenario_family(s), s != scenario_family(s), s))
    group_by = "league" if "league" in part else "access"
    agg = across[across["track"] == track].set_index("entry") if not across.empty else pd.DataFrame()
    rows = []
    for entry, block in part.groupby("entry", sort=False):
        first = block.iloc[0]
        info = agg.loc[entry] if entry in agg.index else pd.Series(dtype=object)
        group = first[group_by] if group_by in first.index and not pd.isna(first[group_by]) else first["access"]
        if "league" in info.index and not pd.isna(info["league"]):
            group = info["league"]
        rank = info.get("rank", math.nan)
        rows.append({"entry": str(entry), "group": str(group), "access": str(first["access"]),
                     "control": _is_control(first), "rank": _rank_text(info, info.index),
                     "rank_value": math.inf if pd.isna(rank) else float(rank),
                     "win_rate": float(info.get("win_rate", math.nan)) if len(info) else math.nan,
                     "unranked": str(info.get("unranked", "")) if len(info) else "",
                     "scenarios": int((part["entry"] == entry).sum())})
    groups = sorted({r["group"] for r in rows}, key=access_key)
    rows.sort(key=lambda r: (groups.index(r["group"]), r["control"], r["rank_value"], -r["scenarios"], r["entry"]))
    return Board(track, metric, higher, rows, columns, short_labels(columns),
                 {(str(r.entry), str(r.scenario)): r for _, r in part.iterrows()})


def legend(boards_: list[Board]) -> dict[str, str]:
    """Short name -> full scenario label, for every shortened column of ``boards_``."""
    found: dict[str, str] = {}
    for board in boards_:
        for label, name in board.short.items():
            if name != label:
                found[name] = label
    return dict(sorted(found.items()))


def _md_table(board: Board) -> list[str]:
    arrow = "↑" if board.higher_is_better else "↓"
    head = ["rank", "method", *(board.short[c] for c in board.columns), "win rate"]
    lines = [f"## {TRACK_TITLES.get(board.track, board.track)}: {board.metric} {arrow}", "",
             "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    group = None
    for row in board.rows:
        if row["group"] != group:
            group = row["group"]
            lines.append(f"| | *{group}* |" + " |" * (len(board.columns) + 1))
        texts = []
        for scenario in board.columns:
            value = board.value(row["entry"], scenario)
            text = "—" if math.isnan(value) else fmt(value)
            texts.append(f"**{text}**" if board.bold(row["entry"], scenario) else text)
        marked = row["control"] and not row["entry"].endswith(CONTROL_MARK)
        name = row["entry"] + CONTROL_MARK if marked else row["entry"]
        rate = "—" if math.isnan(row["win_rate"]) else f"{row['win_rate']:.2f}"
        lines.append(f"| {row['rank']} | {name} | " + " | ".join(texts) + f" | {rate} |")
    return [*lines, ""]


def render_leaderboard(tables: Tables, *, image_dir: str | None = None, image_format: str = "png") -> str:
    """The front page as Markdown: a header, one table (and, with ``image_dir``, its heatmap) per track,
    the legend of shortened scenario names. ``image_dir``: where ``leaderboard-<track>`` images are, relative
    to the Markdown file."""
    prov = tables.provenance
    found = boards(tables)
    lines = [f"# cowbench leaderboard: {prov.get('suite') or '?'}", "",
             f"Suite hash `{prov.get('suite_hash') or 'unknown'}` · {prov.get('replicates', '?')} replicates · "
             f"cells: mean of the track's primary metric over replicates, bold as in the full report · rank: across "
             f"scenarios ({prov.get('aggregation') or 'pairwise win rate'}) · rows grouped by "
             f"{'league' if 'league' in tidy_cells(tables) else 'access level'}, "
             "controls last and marked (not ranked). Intervals, per-scenario ranks and P(best): report.md.", ""]
    if not found:
        lines.append("No finished jobs.")
    for board in found:
        lines += _md_table(board)
        if image_dir is not None:
            lines += [f"![{board.track} heatmap]({image_dir.rstrip('/')}/leaderboard-{board.track}.{image_format})",
                      ""]
    names = legend(found)
    if names:
        lines += ["## Scenario names", ""]
        lines += [f"- `{name}`: `{label}`" for name, label in names.items()]
        lines.append("")
    return "\n".join(lines).rstrip("\n")


def render(tables: Tables) -> str:
    """The registry's entry point: `render_leaderboard` without images."""
    return render_leaderboard(tables)


def standing(board: Board) -> pd.DataFrame:
    """The board's matrix scaled per column to [0, 1], 1 the best mean of the column (NaN where missing): the
    heatmap's colours, so that scenarios on different scales share one colour bar."""
    matrix = pd.DataFrame([[board.value(r["entry"], s) for s in board.columns] for r in board.rows],
                          index=[r["entry"] for r in board.rows], columns=board.columns, dtype=float)
    low, high = matrix.min(axis=0), matrix.max(axis=0)
    span = (high - low).where(high > low)
    scaled = (matrix - low) / span
    scaled = scaled if board.higher_is_better else 1 - scaled
    # a column where every method has the same mean ranks no one: the middle shade, not "best" for all
    return scaled.where(span.notna().to_numpy()[None, :] | matrix.isna(), 0.5).where(matrix.notna())


def heatmap(board: Board) -> Figure:
    """The board as a heatmap: colour = the mean's standing within its scenario (best bright), text = the mean."""

    plt = _pyplot()
    scaled = standing(board)
    n_rows, n_cols = scaled.shape
    fig, ax = plt.subplots(figsize=(2.6 + 0.62 * n_cols, 1.4 + 0.27 * n_rows), layout="constrained")
    image = ax.imshow(scaled.to_numpy(dtype=float), cmap="viridis", vmin=0, vmax=1, aspect="auto")
    for i, row in enumerate(board.rows):
        for j, scenario in enumerate(board.columns):
            value = board.value(row["entry"], scenario)
            if not math.isnan(value):
                dark = scaled.iat[i, j] < 0.6
                ax.text(j, i, f"{value:.2f}", ha="center", va="center", fontsize=5.5,
                        color="white" if dark else "black",
                        fontweight="bold" if board.bold(row["entry"], scenario) else "normal")
    ax.set_xticks(range(n_cols), [board.short[c] for c in board.columns], rotation=60, ha="right", fontsize=7)
    names = [f"{r['rank']:>3}  {r['entry']}" for r in board.rows]
    ax.set_yticks(range(n_rows), names, fontsize=7)
    # groups (league or access level): a line between them and their names on the right
    starts = [i for i, r in enumerate(board.rows) if i == 0 or r["group"] != board.rows[i - 1]["group"]]
    for i in starts[1:]:
        ax.axhline(i - 0.5, color="white", linewidth=2)
    ends = [*starts[1:], n_rows]
    right = ax.secondary_yaxis("right")
    right.set_yticks([(a + b - 1) / 2 for a, b in zip(starts, ends, strict=True)],
                     [board.rows[a]["group"] for a in starts], fontsize=7)
    arrow = "↑" if board.higher_is_better else "↓"
    ax.set_title(f"{TRACK_TITLES.get(board.track, board.track)}: {board.metric} {arrow} (mean over replicates; "
                 "colour: standing within the scenario; row label: rank across scenarios)", fontsize=8)
    fig.colorbar(image, ax=ax, shrink=0.6, pad=0.08, label="worst → best in the scenario")
    return fig


def html_section(tables: Tables) -> str:
    """The front page as the top of the HTML report: one table per track, short scenario names with the full
    label on hover (``title``), cells shaded by their standing within the scenario."""
    from html import escape

    parts = ['<section id="leaderboard"><h2>Leaderboard</h2>'
             '<p class="note">Mean of each track\'s primary metric per scenario (hover a column for its full '
             "scenario); rank and win rate across scenarios; shade: standing within the scenario; rows grouped by "
             "league or access level, controls last. The tables per scenario follow below.</p>"]
    for board in boards(tables):
        scaled = standing(board)
        arrow = "↑" if board.higher_is_better else "↓"
        parts.append(f'<h3>{escape(TRACK_TITLES.get(board.track, board.track))}: {escape(board.metric)} {arrow}</h3>'
                     f'<div class="scroll"><table class="front" id="front-{escape(board.track)}"><thead><tr>'
                     '<th class="text">group</th><th>rank</th><th class="text">method</th>'
                     + "".join(f'<th title="{escape(c)}">{escape(board.short[c])}</th>' for c in board.columns)
                     + "<th>win rate</th></tr></thead><tbody>")
        for i, row in enumerate(board.rows):
            tds = []
            for j, scenario in enumerate(board.columns):
                value = board.value(row["entry"], scenario)
                if math.isnan(value):
                    tds.append('<td class="na">—</td>')
                    continue
                shade = scaled.iat[i, j]
                style = "" if math.isnan(shade) else f' style="background:rgba(46,125,50,{0.08 + 0.5 * shade:.2f})"'
                cls = ' class="best"' if board.bold(row["entry"], scenario) else ""
                tds.append(f'<td{cls}{style} title="{escape(scenario)}"><span class="mean">{fmt(value)}</span></td>')
            rate = "—" if math.isnan(row["win_rate"]) else f"{row['win_rate']:.2f}"
            mark = " (control)" if row["control"] and not row["entry"].endswith(CONTROL_MARK) else ""
            parts.append(f'<tr data-group="{escape(row["group"])}"><td class="text acc">{escape(row["group"])}</td>'
                         f'<td>{escape(row["rank"])}</td><td class="text">{escape(row["entry"] + mark)}</td>'
                         + "".join(tds) + f"<td>{rate}</td></tr>")
        parts.append("</tbody></table></div>")
    parts.append("</section>")
    return "\n".join(parts)


def write_heatmaps(tables: Tables, out_dir: Any, formats: list[str] | tuple[str, ...]) -> list[Any]:
    """Write ``leaderboard-<track>`` heatmaps under ``out_dir`` in each of ``formats``; the files written."""
    from pathlib import Path


    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for board in boards(tables):
        paths += _save(heatmap(board), out_dir, f"leaderboard-{board.track}", formats)
    return paths
