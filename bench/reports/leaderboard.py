"""The front page of a run: per track and selection rule, methods (rows) against scenarios (columns) on the
primary metric.

One table per (track, selection rule) (issue 16: one rule per table; the oracle rule's table is labelled an
upper bound). Rows: one per method setting, grouped by the unit the across-scenario rank is computed in
(league and access level: ``not told · pooled``; on the edit track, where the leagues are the access levels,
the access level alone), ordered by that rank; controls in a group of their own at the bottom, marked
"(control)" and never given a rank or a win rate, whatever a table holds for them (they are what the others
are read against, not competitors). Columns: one per scenario, ordered by scenario family, holding the mean of
the track's metric. A cell is bold where the tables mark it (``bold``: a league leader the paired test
separates from every other ranked setting of its league; ``best`` in older tables) and italic where the setting
was not ranked in that scenario (not better than the best control by the paired test, incomplete, flagged by
the audit hook). Then the across-scenario rank (``1=`` where settings of a group share it), the win rate (only
beside a rank) and the coverage ``ranked in k/n`` (a setting ranked in few scenarios cannot lead by its absence
from the others: the win rates count only scenarios both settings of a contest were ranked in, and a setting
ranked in less than half of the track's tables gets no rank). Scenario labels longer than `MAX_LABEL`
characters get a short name (``linear_sem·2``) with the full specification in a legend (Markdown) or on hover
(HTML). A heatmap of the same matrix is drawn by `heatmap` (``plots/leaderboard-<track>[-<rule>].png|svg``).

Everything is read from `cowbench.reports.table.tidy_cells` and ``Tables.across``; no number is computed here,
so the page follows the tables as the ranking rules change.
"""

from __future__ import annotations

import math
import textwrap
from dataclasses import dataclass, field
from html import escape
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from cowbench.reports.plots import _pyplot, _save
from cowbench.reports.table import (
    CONTROL_MARK,
    DEFAULT_SELECTION,
    TOLD_LEAGUE,
    TRACK_TITLES,
    UNTOLD_LEAGUE,
    Tables,
    scenario_family,
    tidy_cells,
)
from cowbench.reports.text import fmt, md_cell
from cowbench.selection import RULE_LABELS, RULES
from cowbench.stats import ALPHA

if TYPE_CHECKING:
    from matplotlib.figure import Figure

NAME = "leaderboard"
FILENAME = "leaderboard.md"

#: A scenario label longer than this is shown by its short name (``family·k``), the full label in the legend.
MAX_LABEL = 24

#: The group controls are shown in: below every league, never ranked (they gate every league of a table).
CONTROLS_GROUP = "controls (not ranked)"


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
    """One (track, metric, selection rule)'s front-page table.

    ``rows``: one dict per method setting, in display order: ``entry`` (the tables' row identity), ``name``
    (as shown), ``group``, ``control``, ``rank`` (text: ``1``, ``1=``, ``—``), ``rank_value`` (inf without a
    rank), ``win_rate`` (NaN without a rank), ``ranked_in`` and ``tables`` (coverage), ``unranked`` (why no
    rank across scenarios: ``control``, ``coverage``, ``no contest``, ``never ranked``; empty when ranked).
    ``columns``: scenario labels by family; ``short``: label -> shown name; ``cells``: (entry, scenario) ->
    the tidy cell row; ``selection``: the rule; ``slug``: the name of its heatmap file
    (``leaderboard-<slug>``); ``show_rule``: whether headings name the rule (the run has several, or not the
    defaults); ``unranked_scenarios``: scenarios of the table where no setting was ranked, with the gate.
    """

    track: str
    metric: str
    higher_is_better: bool
    rows: list[dict[str, Any]]
    columns: list[str]
    short: dict[str, str]
    cells: dict[tuple[str, str], pd.Series]
    selection: str = DEFAULT_SELECTION
    slug: str = ""
    show_rule: bool = False
    unranked_scenarios: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.slug = self.slug or self.track
        self._control = {r["entry"]: bool(r["control"]) for r in self.rows}

    def value(self, entry: str, scenario: str) -> float:
        cell = self.cells.get((entry, scenario))
        return math.nan if cell is None else float(cell["mean"])

    def bold(self, entry: str, scenario: str) -> bool:
        """Whether the tables mark the cell (a separated leader); never a control's cell."""
        cell = self.cells.get((entry, scenario))
        if cell is None or self._control.get(entry, False):
            return False
        flag = cell["bold"] if "bold" in cell.index else cell.get("best", False)
        return bool(flag) if not pd.isna(flag) else False

    def unranked(self, entry: str, scenario: str) -> bool:
        """Whether a competitor's cell holds a mean the setting was not ranked with in that scenario (below
        the best control, incomplete, audited); False for a control's row and for a missing cell."""
        cell = self.cells.get((entry, scenario))
        if cell is None or self._control.get(entry, False):
            return False
        return "rank" in cell.index and pd.isna(cell["rank"])

    def scenario_rank(self, entry: str, scenario: str) -> str:
        """The setting's rank in the scenario's table as the tables print it (``rank_label`` if present)."""
        cell = self.cells.get((entry, scenario))
        if cell is None or self._control.get(entry, False):
            return ""
        if "rank_label" in cell.index and isinstance(cell["rank_label"], str) and cell["rank_label"]:
            return cell["rank_label"]
        return "" if pd.isna(cell["rank"]) else str(int(cell["rank"]))

    @property
    def title(self) -> str:
        arrow = "↑" if self.higher_is_better else "↓"
        rule = f" — selection: {RULE_LABELS.get(self.selection, self.selection)}" if self.show_rule else ""
        return f"{TRACK_TITLES.get(self.track, self.track)}: {self.metric} {arrow}{rule}"


def _flag(value: Any) -> bool:
    return False if value is None or (not isinstance(value, str) and pd.isna(value)) else bool(value)


def _is_control(block: pd.DataFrame) -> bool:
    """A control by any sign the tables give: the ``control`` column, the row label's mark, or ``unranked``."""
    if "control" in block and block["control"].map(_flag).any():
        return True
    return bool(str(block["entry"].iloc[0]).endswith(CONTROL_MARK)
                or ("unranked" in block and (block["unranked"] == "control").any()))


def _rules(cells: pd.DataFrame) -> list[str]:
    """The selection rules of the cells, in `cowbench.selection.RULES` order (the oracle, an upper bound, last)."""
    found = set(cells["selection"].fillna(DEFAULT_SELECTION)) if "selection" in cells else {DEFAULT_SELECTION}
    order = list(RULES)
    return sorted(found, key=lambda r: (order.index(r) if r in order else len(order), r))


def _group(league: str, access: str) -> tuple[str, tuple[Any, ...]]:
    """The group label of a competitor and its sort key: untold league first, then told, then others; within
    a league fewer access levels first. On the edit track (league = access level) the access level alone."""
    if not league or league == access:
        return access, (0, "", access.count("+"), access)
    order = 0 if league == UNTOLD_LEAGUE else 1 if league == TOLD_LEAGUE else 2
    return f"{league} · {access}", (order, league, access.count("+"), access)


def boards(tables: Tables, metrics: list[str] | None = None) -> list[Board]:
    """One `Board` per (track, selection rule) that has a value of the track's primary metric, in track order;
    with ``metrics``, one per (metric named, rule) instead (in track order, each track's primary metric first)."""
    cells = tidy_cells(tables)
    if cells.empty:
        return []
    cells = cells if "selection" in cells else cells.assign(selection=DEFAULT_SELECTION)
    cells = cells.assign(selection=cells["selection"].fillna(DEFAULT_SELECTION))
    rules = _rules(cells)
    show_rule = rules != [DEFAULT_SELECTION]
    out = []
    tracks = [*TRACK_TITLES, *sorted(set(cells["track"].dropna()) - set(TRACK_TITLES))]
    for track in tracks:
        part = cells[cells["track"] == track]
        names = list(dict.fromkeys(part.loc[part["primary"].astype(bool), "metric"]))
        if metrics is not None:
            names = list(dict.fromkeys(m for m in [*names, *sorted(set(part["metric"]))] if m in metrics))
        for metric in names:
            for rule in rules:
                mine = part[(part["metric"] == metric) & (part["selection"] == rule)]
                if mine.empty:
                    continue
                slug = track if len(rules) == 1 else f"{track}-{rule}"
                out.append(board(tables, mine, selection=rule, slug=slug, show_rule=show_rule))
    return out


def _across(tables: Tables, track: str, selection: str) -> pd.DataFrame:
    """The across-scenario rows of one (track, selection rule), indexed by entry (older tables: by track)."""
    across = tables.across
    if across.empty:
        return pd.DataFrame(columns=["rank", "win_rate", "scenarios", "tables", "unranked"])
    mine = across[across["track"] == track]
    if "selection" in mine:
        mine = mine[mine["selection"].fillna(DEFAULT_SELECTION) == selection]
    return mine.drop_duplicates("entry").set_index("entry")


def board(tables: Tables, part: pd.DataFrame, *, selection: str | None = None, slug: str = "",
          show_rule: bool = False) -> Board:
    """The `Board` of one (track, metric, selection rule) from its tidy cells ``part``."""
    track, metric = str(part["track"].iloc[0]), str(part["metric"].iloc[0])
    if selection is None:
        selection = str(part["selection"].iloc[0]) if "selection" in part else DEFAULT_SELECTION
    higher = bool(part["higher_is_better"].iloc[0])
    columns = sorted(set(part["scenario"]), key=lambda s: (scenario_family(s), s != scenario_family(s), s))
    agg = _across(tables, track, selection)
    ranked_somewhere = part.loc[part["rank"].notna(), "scenario"] if "rank" in part else pd.Series(dtype=object)
    n_tables = int(agg["tables"].max()) if len(agg) and agg["tables"].notna().any() else ranked_somewhere.nunique()
    rows = []
    for entry, block in part.groupby("entry", sort=False):
        entry = str(entry)
        first = block.iloc[0]
        control = _is_control(block)
        info = agg.loc[entry] if entry in agg.index else None
        name = entry.replace(f" [{selection}]", "")
        name = name if not control or name.endswith(CONTROL_MARK) else name + CONTROL_MARK
        row = {"entry": entry, "name": name, "control": control, "access": str(first["access"]),
               "rank": "—", "rank_value": math.inf, "win_rate": math.nan, "tables": n_tables,
               "ranked_in": 0 if info is None else int(info["scenarios"]),
               "scenarios": int(block["mean"].notna().sum())}
        if control:  # whatever a table holds for it: a control is read against, never ranked
            rows.append({**row, "group": CONTROLS_GROUP, "key": (9,), "unranked": "control"})
            continue
        league = str(info["league"]) if info is not None and "league" in info.index else str(first.get("league", ""))
        access = str(info["access"]) if info is not None and "access" in info.index else row["access"]
        league = "" if league == "nan" else league
        group, key = _group(league, access)
        row.update(group=group, key=key, unranked="never ranked")
        if info is not None:
            row["unranked"] = str(info["unranked"]) if "unranked" in info.index and _flag(info["unranked"]) else ""
            if not pd.isna(info["rank"]):
                row.update(rank_value=float(info["rank"]), win_rate=float(info["win_rate"]), unranked="")
            elif not row["unranked"]:
                row["unranked"] = "no rank"
        rows.append(row)
    # a rank shared within its group (the unit the across-scenario rank is computed in) is a tie: "1="
    for row in rows:
        if math.isfinite(row["rank_value"]):
            shared = sum(r["group"] == row["group"] and r["rank_value"] == row["rank_value"] for r in rows) > 1
            row["rank"] = f"{int(row['rank_value'])}" + ("=" if shared else "")
    rows.sort(key=lambda r: (r["key"], r["rank_value"], -r["ranked_in"], -r["scenarios"], r["entry"]))
    cells = {(str(r.entry), str(r.scenario)): r for _, r in part.iterrows()}
    competitors = part[~part["entry"].isin({r["entry"] for r in rows if r["control"]})]
    nobody = {}
    for scenario in columns:
        here = competitors[competitors["scenario"] == scenario]
        if not here.empty and "rank" in here and here["rank"].isna().all():
            gates = [g for g in here.get("gate", pd.Series(dtype=object)) if isinstance(g, str) and g]
            nobody[scenario] = gates[0] if gates else ""
    return Board(track, metric, higher, rows, columns, short_labels(columns), cells, selection=selection,
                 slug=slug or track, show_rule=show_rule, unranked_scenarios=nobody)


def legend(boards_: list[Board]) -> dict[str, str]:
    """Short name -> full scenario label, for every shortened column of ``boards_``."""
    found: dict[str, str] = {}
    for board in boards_:
        for label, name in board.short.items():
            if name != label:
                found[name] = label
    return dict(sorted(found.items()))


def _coverage(row: dict[str, Any]) -> str:
    """``k/n``: ranked in k of the n tables that rank anyone; ``—`` for a control or where no table ranks anyone."""
    return "—" if row["control"] or not row["tables"] else f"{row['ranked_in']}/{row['tables']}"


def _nobody_note(board: Board) -> str | None:
    """The scenarios of the table where nobody was ranked, and against what (a control or chance)."""
    def against(gate: str) -> str:
        return "chance" if gate == "chance" else f"the best control {gate}" if gate else "the gate"

    found = board.unranked_scenarios
    if not found:
        return None
    if len(found) == len(board.columns) and len(set(found.values())) == 1:
        return (f"No setting ranked on any scenario (none beats {against(next(iter(found.values())))} by the "
                "paired test).")
    parts = [f"{board.short[scenario]} (against {against(gate)})" for scenario, gate in found.items()]
    return "No setting ranked (none beats its gate by the paired test) on: " + "; ".join(parts) + "."


def _md_table(board: Board) -> list[str]:
    head = ["rank", "method", *(board.short[c] for c in board.columns), "win rate", "ranked in"]
    lines = [f"## {board.title}", "", "| " + " | ".join(md_cell(h) for h in head) + " |", "|" + "---|" * len(head)]
    group = None
    for row in board.rows:
        if row["group"] != group:
            group = row["group"]
            lines.append(f"| | *{md_cell(group)}* |" + " |" * (len(board.columns) + 2))
        texts = []
        for scenario in board.columns:
            value = board.value(row["entry"], scenario)
            text = "—" if math.isnan(value) else fmt(value)
            if board.bold(row["entry"], scenario):
                text = f"**{text}**"
            elif board.unranked(row["entry"], scenario):
                text = f"*{text}*"
            texts.append(text)
        rate = "—" if math.isnan(row["win_rate"]) else f"{row['win_rate']:.2f}"
        lines.append(f"| {row['rank']} | {md_cell(row['name'])} | " + " | ".join(texts)
                     + f" | {rate} | {_coverage(row)} |")
    note = _nobody_note(board)
    return [*lines, "", *([note, ""] if note else [])]


def header(tables: Tables) -> list[str]:
    """The front page's header: what the suite is and how to read a table (the same for every track)."""
    prov = tables.provenance
    return [f"# cowbench leaderboard: {prov.get('suite') or '?'}", "",
            f"Suite hash `{prov.get('suite_hash') or 'unknown'}` · {prov.get('replicates', '?')} replicates · one "
            "table per track and selection rule. Cells: the mean of the track's primary metric over replicates; "
            f"**bold**: the league's leader, separated from every other ranked setting of its league by a paired "
            f"t-test over replicates (α = {ALPHA:g}, Holm-corrected); *italic*: not ranked in that scenario (not "
            "better than the best control by the same test, or incomplete). Rows grouped by league and access "
            "level, the unit the rank is computed in; controls in their own group, never ranked. Rank: across "
            f"scenarios ({prov.get('aggregation') or 'pairwise win rate'}); `1=`: shared. Ranked in: scenarios "
            "where the setting was ranked, of the tables that rank anyone. Intervals, per-scenario ranks, "
            "P(best) and the full rule: report.md.", ""]


def render_leaderboard(tables: Tables, *, image_dir: str | None = None, image_format: str = "png") -> str:
    """The front page as Markdown: a header, one table (and, with ``image_dir``, its heatmap) per track and
    selection rule, the legend of shortened scenario names. ``image_dir``: where ``leaderboard-<slug>`` images
    are, relative to the Markdown file."""
    found = boards(tables)
    lines = header(tables)
    if not found:
        lines.append("No finished jobs.")
    for board in found:
        lines += _md_table(board)
        if image_dir is not None:
            lines += [f"![{board.slug} heatmap]({image_dir.rstrip('/')}/leaderboard-{board.slug}.{image_format})",
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
    """The board as a heatmap: colour = the mean's standing within its scenario (best bright), text = the mean
    (bold as in the tables, italic where not ranked in that scenario)."""

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
                        fontweight="bold" if board.bold(row["entry"], scenario) else "normal",
                        fontstyle="italic" if board.unranked(row["entry"], scenario) else "normal")
    ax.set_xticks(range(n_cols), [board.short[c] for c in board.columns], rotation=60, ha="right", fontsize=7)
    names = [f"{r['rank']:>3}  {r['name']}" for r in board.rows]
    ax.set_yticks(range(n_rows), names, fontsize=7)
    # groups (league and access level, controls): a line between them and their names on the right
    starts = [i for i, r in enumerate(board.rows) if i == 0 or r["group"] != board.rows[i - 1]["group"]]
    for i in starts[1:]:
        ax.axhline(i - 0.5, color="white", linewidth=2)
    ends = [*starts[1:], n_rows]
    right = ax.secondary_yaxis("right")
    right.set_yticks([(a + b - 1) / 2 for a, b in zip(starts, ends, strict=True)],
                     [board.rows[a]["group"] for a in starts], fontsize=7)
    # wrapped to the figure's width (about 0.6 of the font size per character): a long title was cut off
    key = ("mean over replicates; colour: standing within the scenario; bold: separated leader; italic: not "
           "ranked there; row label: rank across scenarios")
    chars = max(40, int(fig.get_figwidth() * 72 / (7 * 0.6)))
    ax.set_title(textwrap.fill(f"{board.title} ({key})", chars), fontsize=7)
    fig.colorbar(image, ax=ax, shrink=0.6, pad=0.08, label="worst → best in the scenario")
    return fig


def html_section(tables: Tables) -> str:
    """The front page as the top of the HTML report: one table per track and selection rule, short scenario
    names with the full label on hover (``title``), cells shaded by their standing within the scenario."""
    parts = ['<section id="leaderboard"><h2>Leaderboard</h2>'
             '<p class="note">Mean of each track\'s primary metric per scenario (hover a column for its full '
             "scenario); bold: the league's leader, separated by the paired test; italic: not ranked in that "
             "scenario (not better than the best control, or incomplete); rank (<code>1=</code>: shared) and win "
             "rate across scenarios, ranked in: scenarios where ranked, of the tables that rank anyone; shade: "
             "standing within the scenario; rows grouped by league and access level, controls in their own group, "
             "never ranked; one table per selection rule. The tables per scenario follow below.</p>"]
    for board in boards(tables):
        scaled = standing(board)
        parts.append(f'<h3>{escape(board.title)}</h3>'
                     f'<div class="scroll"><table class="front" id="front-{escape(board.slug)}"><thead><tr>'
                     '<th class="text">group</th><th>rank</th><th class="text">method</th>'
                     + "".join(f'<th title="{escape(c)}">{escape(board.short[c])}</th>' for c in board.columns)
                     + "<th>win rate</th><th>ranked in</th></tr></thead><tbody>")
        for i, row in enumerate(board.rows):
            tds = []
            for j, scenario in enumerate(board.columns):
                value = board.value(row["entry"], scenario)
                if math.isnan(value):
                    tds.append('<td class="na">—</td>')
                    continue
                shade = scaled.iat[i, j]
                style = "" if math.isnan(shade) else f"background:rgba(46,125,50,{0.08 + 0.5 * shade:.2f})"
                cls = ""
                if board.bold(row["entry"], scenario):
                    cls = ' class="best"'
                elif board.unranked(row["entry"], scenario):
                    cls, style = ' class="unranked"', style + ";font-style:italic"
                style = f' style="{style.lstrip(";")}"' if style else ""
                tds.append(f'<td{cls}{style} title="{escape(scenario)}"><span class="mean">{fmt(value)}</span></td>')
            rate = "—" if math.isnan(row["win_rate"]) else f"{row['win_rate']:.2f}"
            parts.append(f'<tr data-group="{escape(row["group"])}"><td class="text acc">{escape(row["group"])}</td>'
                         f'<td>{escape(row["rank"])}</td><td class="text">{escape(row["name"])}</td>'
                         + "".join(tds) + f"<td>{rate}</td><td>{escape(_coverage(row))}</td></tr>")
        parts.append("</tbody></table></div>")
        note = _nobody_note(board)
        if note:
            parts.append(f'<p class="note">{escape(note)}</p>')
    parts.append("</section>")
    return "\n".join(parts)


def write_heatmaps(tables: Tables, out_dir: Any, formats: list[str] | tuple[str, ...]) -> list[Any]:
    """Write ``leaderboard-<slug>`` heatmaps (``<track>``, or ``<track>-<rule>`` when the run has several
    selection rules) under ``out_dir`` in each of ``formats``; the files written."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for board in boards(tables):
        paths += _save(heatmap(board), out_dir, f"leaderboard-{board.slug}", formats)
    return paths
