"""Markdown: the console report (one table per track, scenario and selection rule, then the aggregation across
scenarios)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd

from cowbench.reports.plots import dose_image_lines, sweeps
from cowbench.reports.table import (
    AGGREGATION,
    DEFAULT_SELECTION,
    MIN_COVERAGE,
    N_BOOT,
    N_BOOT_RANK,
    TIE_RTOL,
    TOLD_LEAGUE,
    TOLD_ROUTES,
    TRACK_TITLES,
    UNTOLD_LEAGUE,
    RunResults,
    Tables,
    access_key,
    audit_routes,
    build_tables,
    load_results,
    machine_line,
    scenario_label,
    telling_routes,
)
from cowbench.reports.text import cell_text, fmt, hparams_text, md_cell, missing_lines, mrd_text, versions_text
from cowbench.scores import scorer_version
from cowbench.selection import RULE_LABELS
from cowbench.stats import RANK_RULE
from cowbench.version import __version__

NAME = "md"
FILENAME = "report.md"


def render(tables: Tables) -> str:
    """The registry's entry point: `render_markdown` with the suite's name as title."""
    return render_markdown(tables)


def _header(res: RunResults, level: float, mrd: pd.DataFrame) -> list[str]:
    manifest = res.manifest
    suite = manifest["suite"] if manifest else {}
    pct = f"{level * 100:g}%"
    hp = hparams_text(res.jobs)
    lines = [
        f"# cowbench report: {suite.get('name', '?')}",
        "",
        f"- suite hash `{manifest['suite_hash'] if manifest else 'unknown'}` · "
        f"{versions_text(res, __version__, scorer_version())} · root seed {suite.get('root_seed', '?')} · "
        f"{suite.get('replicates', '?')} replicates · subject `{(suite.get('subject') or {}).get('arch', '?')}` · "
        f"hyperparameters: {hp} · rows grouped by league and access level",
        f"- cells: mean [{pct} interval] (n replicates). Intervals stay inside each metric's range: Wilson score "
        f"for 0/1 metrics, percentile bootstrap of the mean over replicates ({N_BOOT} resamples, seeded) for "
        "bounded metrics, t for unbounded ones; none with one replicate",
        f"- rank, on the track's primary metric, per table (scenario, track, selection rule) and league: {RANK_RULE} "
        f"({N_BOOT_RANK} resamples). Means within {TIE_RTOL:g} (relative) are equal. Leagues: a method told the "
        "spurious variable (group labels, validation group labels, the edit target) is ranked apart from the "
        "others (`told`); on the edit track, where every method is told the target, the leagues are the access "
        "levels. One table per selection rule; the oracle rule's rows are an upper bound (chosen on test data)",
    ]
    if not mrd.empty:
        parts = " · ".join(f"{r.metric} {mrd_text(r.mrd, r.dof, r.n)}" + _worst(r) for r in mrd.itertuples())
        reps = sorted(set(mrd["n"]))
        lines.append(
            f"- min. resolvable difference at {'/'.join(map(str, reps))} replicates between the two leading methods "
            "of each league (paired t-test, α = 0.05, power 0.8, as `cowbench reliability` computes it; s.d. of "
            f"the per-replicate difference pooled over the track's leading pairs; the hardest pair in brackets): "
            f"{parts}")
    lines.append(f"- across scenarios: {AGGREGATION}")
    fingerprint = machine_line(res.runs)
    if fingerprint:
        lines.append(f"- machine: {fingerprint}")
    if res.ledger:
        lines.append(f"- {res.ledger}")
    plugins = sorted({p for cell in res.jobs.get("plugins", []) for p in str(cell).split(",") if p})
    lines.append(f"- plugins loaded: {', '.join(plugins) if plugins else 'none (built-in methods only)'}")
    unsafe = int((res.jobs["run_mode"] != "blind").sum()) if "run_mode" in res.jobs else 0
    if unsafe:
        lines.append(f"- **{unsafe} job(s) ran in-process (the debugger launcher): their methods shared a process "
                     "with the harness's truth; not for published results**")
    return [*lines, ""]



def _worst(r: object) -> str:
    worst, pairs = getattr(r, "mrd_max", math.nan), getattr(r, "pairs", 0)
    if not pairs or pd.isna(worst):
        return ""
    return f" (hardest {fmt(worst) if math.isfinite(worst) else '∞'}, {pairs} pair{'s' if pairs != 1 else ''})"


def markdown_report(out: Path, level: float = 0.95, suite: str | None = None, *,
                    image_dir: str | None = None, image_format: str = "png") -> str:
    """The Markdown report of a results directory (of ``suite``, if it holds several): header, one table per
    track and scenario, aggregation across scenarios, skipped pairs, failures (``image_dir``: see
    `render_markdown`)."""
    results = load_results(out, suite)
    title = None if results.manifest else Path(out).name
    return render_markdown(build_tables(results, level), title=title, image_dir=image_dir,
                           image_format=image_format)


def drawn_sweeps(tables: Tables) -> list:
    """The knob sweeps of a run whose dose-response curve `cowbench.reports.plots.write_plots` draws (a sweep
    with a value of some track's primary metric): the sweeps a report with images shows as curves."""
    primary = set(tables.scores.index[tables.scores["primary"].astype(bool)])
    drawn = tables.summary[tables.summary.metric.isin(primary)]
    return [s for s in sweeps(tables.results) if drawn.scenario.isin(s.scenarios).any()]


def render_markdown(tables: Tables, title: str | None = None, *, image_dir: str | None = None,
                    image_format: str = "png") -> str:
    """Render `Tables` as Markdown (``title``: the suite's name from the manifest if None).

    ``image_dir``: where the report's plots are, relative to the Markdown file (as `write_plots` names them).
    With it, the scenarios of a swept knob are shown as the sweep's dose-response image instead of one table
    per knob value (the per-value numbers stay in the CSV, JSON, LaTeX and HTML formats); without it (a
    report printed to a terminal) every scenario gets its tables.
    """
    res, scores, summary, ranks = tables.results, tables.scores, tables.summary, tables.ranks
    lines = _header(res, tables.level, tables.resolvable)
    if title is not None:
        lines[0] = f"# cowbench report: {title}"
    if summary.empty:
        lines.append("No finished jobs.")
    stability, missing, told = tables.stability, tables.missing, tables.told
    swept: set[str] = set()
    if image_dir is not None:
        for sweep in drawn_sweeps(tables):
            lines += dose_image_lines(sweep, image_dir, image_format)
            swept |= set(sweep.scenarios)
    rules = sorted(set(summary["selection"])) if "selection" in summary and not summary.empty else []
    for track, title_ in TRACK_TITLES.items():
        metrics = [m for m in scores.index if scores.loc[m, "track"] == track]
        part = summary[summary.metric.isin(metrics)]
        scenarios = set(part.scenario) | (set(told.scenario) if track == "detect" else set())
        for scenario in sorted(scenarios - swept):
            here = part[part.scenario == scenario]
            selections = sorted(set(here["selection"])) if "selection" in here and not here.empty else [None]
            for i, selection in enumerate(selections):
                rk = ranks[(ranks.track == track) & (ranks.scenario == scenario)]
                block = here
                if selection is not None:
                    rk = rk[rk.selection == selection] if "selection" in rk else rk
                    block = here[here.selection == selection]
                entries = set(block.entry)
                told_missing: dict[str, str] = {}
                if track == "detect" and i == 0:  # told detectors without a detection value: a line, once
                    t = told[told.scenario == scenario]
                    told_missing = {e: r for e, r in zip(t.entry, t.told, strict=True) if e not in entries}
                heading = f"## {title_} — {scenario}"
                if selection is not None and (len(rules) > 1 or selection != DEFAULT_SELECTION):
                    heading += f" — selection: {_rule_label(selection)}"
                lines += _table(track, heading, block, metrics, scores, rk,
                                stability[(stability.track == track) & (stability.scenario == scenario)
                                          & stability.entry.isin(entries)],
                                missing[(missing.scenario == scenario) & missing.metric.isin(metrics)
                                        & missing.entry.isin(entries)], told_missing)
    lines += _across_table(tables.across)
    skipped = (res.manifest or {}).get("skipped", [])
    if skipped:
        lines += [f"## Skipped pairs ({len(skipped)}): the method cannot run on the scenario", ""]
        for item in skipped:
            lines.append(f"- {item['method']} on {scenario_label(item['scenario'])}: {item['reason']}")
        lines.append("")
    if res.failed:
        lines += [f"## Failed jobs ({len(res.failed)})", ""]
        for rec in res.failed:
            lines.append(f"- `{rec['job_id'][:12]}` {rec['spec']['method']} on "
                         f"{scenario_label(rec['spec']['scenario'])} replicate {rec['spec']['replicate']}: "
                         f"{rec.get('error', '?')}")
        lines.append("")
    return "\n".join(lines)


def _rule_label(rule: str) -> str:
    return RULE_LABELS.get(rule, rule)


def _routes_text(told: str) -> str:
    return " and ".join(TOLD_ROUTES.get(r, r) for r in telling_routes(told)) or "?"


def _table(track: str, heading: str, block: pd.DataFrame, metrics: list[str], scores: pd.DataFrame,
           ranks: pd.DataFrame, stability: pd.DataFrame, missing: pd.DataFrame,
           told_missing: dict[str, str]) -> list[str]:
    """One (scenario, track, selection rule) table: rows by league, access level, rank; notes below it."""
    present = [m for m in metrics if m in set(block.metric)]
    arrows = {m: "↑" if scores.loc[m, "higher_is_better"] else "↓" for m in present}
    by_entry = ranks.set_index("entry")
    leagues = by_entry["league"] if "league" in by_entry else pd.Series(dtype=object)
    show_league = track != "edit" and leagues.nunique() > 1
    header = ["rank", "P(best)", "method", *(["league"] if show_league else []), "access",
              *[f"{m} {arrows[m]}" for m in present]]
    lines = [heading, ""]
    if present:
        lines += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    rk = by_entry["rank"]
    label = by_entry["rank_label"] if "rank_label" in by_entry else rk.map(lambda r: "" if pd.isna(r) else int(r))
    bold = by_entry["bold"] if "bold" in by_entry else pd.Series(False, index=by_entry.index)
    pb = stability.set_index("entry")["p_best"]
    primary = scores[(scores.track == track) & scores.primary].index
    cells = {(r.access, r.entry, r.metric): r for r in block.itertuples()}

    def league_key(entry: str) -> tuple[int, str]:
        league = str(leagues.get(entry, ""))
        if track == "edit":
            return access_key(league)
        return (0 if league == UNTOLD_LEAGUE else 1 if league == TOLD_LEAGUE else 2), league

    # grouped by league, then access level (fewer levels first), then rank; an unranked setting's NaN rank
    # would compare false both ways and leave rows in set (hash-salted) order: unranked settings go last, by name
    rows = sorted({(a, e) for a, e, _ in cells},
                  key=lambda ae: (league_key(ae[1]), *access_key(ae[0]), _rank_key(rk.get(ae[1], np.inf)), ae[1]))
    for access, entry in rows:
        texts = []
        for m in present:
            c = cells.get((access, entry, m))
            if c is None:
                texts.append("—")
                continue
            text = cell_text(c.mean, c.lo, c.hi, int(c.n))
            strong = len(primary) and m == primary[0] and bool(bold.get(entry, False))
            texts.append(f"**{text}**" if strong else text)
        shown, p_best = label.get(entry, ""), pb.get(entry, np.nan)
        league_cell = [str(leagues.get(entry, ""))] if show_league else []
        lines.append(f"| {shown or '—'} | {'—' if pd.isna(p_best) else f'{p_best:.2f}'} "
                     f"| {md_cell(entry)} | " + " | ".join([*league_cell, access, *texts]) + " |")
    if present:
        lines.append("")
    notes = []
    reasons = ranks["unranked"] if "unranked" in ranks else pd.Series(dtype=object)
    gate = str(ranks["gate"].iloc[0]) if "gate" in ranks and not ranks.empty else ""
    chance = scores.loc[primary[0], "chance"] if len(primary) else math.nan
    competitors = reasons.isin(["", "below control", "chance"])
    below = sorted(ranks.loc[reasons.isin(["below control", "chance"]), "entry"])
    if competitors.any() and not ranks["rank"].notna().any():
        if gate == "chance":
            notes.append(f"no method beats chance ({chance:g}) on {primary[0]}: no rank")
        else:
            level = block[(block.entry == gate) & (block.metric == primary[0])]["mean"]
            at = f", {fmt(float(level.iloc[0]))}" if not level.empty else ""
            notes.append(f"no method beats the best control ({gate}{at}) on {primary[0]} by the paired t-test "
                         "(Holm): no rank")
    elif below:
        against = f"chance ({chance:g})" if gate == "chance" else f"the best control ({gate})"
        notes.append(f"not ranked, not better than {against} on {primary[0]} by the paired t-test (Holm): "
                     f"{', '.join(below)}")
    elif present and len(primary) and primary[0] not in present:
        notes.append(f"no rank: no method has a value of the track's primary metric {primary[0]}")
    if track != "edit":
        told_here = {e: t for e, t in zip(block.entry, block.told, strict=True) if telling_routes(t)}
        if told_here:
            listed = "; ".join(f"{e} ({_routes_text(t)})" for e, t in sorted(told_here.items()))
            notes.append(f"league `{TOLD_LEAGUE}`, ranked among themselves: told the spurious variable: {listed}")
    if told_missing:
        listed = "; ".join(f"{e} ({_routes_text(t)})" for e, t in sorted(told_missing.items()))
        notes.append(f"no detection value: told the spurious variable: {listed}")
    audited = {e: t for e, t in zip(block.entry, block.told, strict=True) if audit_routes(t)}
    if audited:
        listed = "; ".join(f"{e} ({', '.join(audit_routes(t))})" for e, t in sorted(audited.items()))
        notes.append(f"not ranked in any track: the audit hook saw the method reach outside its task: {listed}")
    controls = sorted(ranks.loc[reasons == "control", "entry"])
    if controls:
        notes.append(f"not ranked, controls (what the others are read against): {', '.join(controls)}")
    partial = ranks[reasons == "incomplete"]
    if not partial.empty and len(primary) and primary[0] in present:
        n = block[block.metric == primary[0]].set_index("entry")["n"]
        listed = ", ".join(f"{e} {int(n[e])}/{int(n.max())}" for e in sorted(partial.entry))
        notes.append(f"not ranked: {primary[0]} in fewer replicates than the others (a mean over the replicates "
                     f"a method chose to answer is not comparable): {listed}")
    notes += missing_lines(missing)
    if notes:
        lines += [*(f"- {n}" for n in notes), ""]
    return lines


def _rank_key(rank: float) -> float:
    return math.inf if pd.isna(rank) else float(rank)


def _across_table(agg: pd.DataFrame) -> list[str]:
    if agg.empty or agg["tables"].max() < 2:
        return []
    lines = ["## Across scenarios: pairwise win rate per track", "",
             "Win rate: share of pairwise contests won, each contest one scenario both methods were ranked in, "
             "within their league (ties count half), so no method is compared on a scenario its opponent lacks "
             "or with a method of another league; scenarios: where the method was ranked, out of the track's "
             "tables with a rank. Rank: by win rate within each selection rule, league and access level, only for "
             f"settings ranked in at least {MIN_COVERAGE:.0%} of the track's tables (a high rate from a few scenarios "
             "says little about the track). Rows grouped by league and access level, ordered by rank within it.",
             "",
             "| track | league | rank | method | access | win rate | contests | scenarios |",
             "|---|---|---|---|---|---|---|---|"]
    for r in agg.itertuples():  # already ordered: track, league, access level, rank
        rate = "—" if math.isnan(r.win_rate) else f"{r.win_rate:.2f}"
        rank = "—" if math.isnan(r.rank) else str(int(r.rank))
        league = getattr(r, "league", "")
        lines.append(f"| {r.track} | {league} | {rank} | {md_cell(r.entry)} | {r.access} | {rate} | {r.contests} | "
                     f"{r.scenarios}/{r.tables} |")
    return [*lines, ""]
