"""Markdown: the console report (one table per track and scenario, then the aggregation across scenarios)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd

from cowbench.reports.table import (
    AGGREGATION,
    MIN_COVERAGE,
    N_BOOT,
    N_BOOT_RANK,
    TIE_RTOL,
    TRACK_TITLES,
    RunResults,
    Tables,
    access_key,
    build_tables,
    load_results,
    machine_line,
    scenario_label,
    tie_tolerance,
)
from cowbench.reports.text import cell_text, hparams_text, missing_lines, mrd_text, told_line, versions_text

NAME = "md"
FILENAME = "report.md"


def render(tables: Tables) -> str:
    """The registry's entry point: `render_markdown` with the suite's name as title."""
    return render_markdown(tables)


def _header(res: RunResults, level: float, mrd: pd.DataFrame) -> list[str]:
    from cowbench import __version__
    from cowbench.scores import scorer_version

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
        f"hyperparameters: {hp} · rows grouped by access level",
        f"- cells: mean [{pct} interval] (n replicates). Intervals stay inside each metric's range: Wilson score "
        f"for 0/1 metrics, percentile bootstrap of the mean over replicates ({N_BOOT} resamples, seeded) for "
        "bounded metrics, t for unbounded ones; none with one replicate",
        f"- rank: on the track's primary metric; means within {TIE_RTOL:g} (relative) share a rank; no rank in a "
        "table where no method's interval clears the metric's chance level (with a mean that differs from it at "
        "the printed precision), nor on detection for a method told the spurious variable. "
        f"P(best): {N_BOOT_RANK} bootstrap resamples of the paired replicates, ties split",
    ]
    if not mrd.empty:
        parts = " · ".join(f"{r.metric} {mrd_text(r.mrd, r.dof, r.n)}" for r in mrd.itertuples())
        reps = sorted(set(mrd["n"]))
        lines.append(
            f"- min. resolvable difference at {'/'.join(map(str, reps))} replicates (paired t-test, α = 0.05, "
            "power 0.8; s.d. of per-replicate differences between two methods, pooled over every pair of methods "
            f"in every table of the track): {parts}")
    lines.append(f"- across scenarios: {AGGREGATION}")
    fingerprint = machine_line(res.runs)
    if fingerprint:
        lines.append(f"- machine: {fingerprint}")
    return [*lines, ""]



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
    from cowbench.reports.plots import sweeps

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
        from cowbench.reports.plots import dose_image_lines

        for sweep in drawn_sweeps(tables):
            lines += dose_image_lines(sweep, image_dir, image_format)
            swept |= set(sweep.scenarios)
    for track, title_ in TRACK_TITLES.items():
        metrics = [m for m in scores.index if scores.loc[m, "track"] == track]
        part = summary[summary.metric.isin(metrics)]
        scenarios = set(part.scenario) | (set(told.scenario) if track == "detect" else set())
        for scenario in sorted(scenarios - swept):
            rk = ranks[(ranks.track == track) & (ranks.scenario == scenario)]
            block = part[part.scenario == scenario]
            unranked = set(rk.loc[rk.unranked == "told", "entry"])
            told_here = {e: r for e, r in zip(block.entry, block.told, strict=True) if e in unranked}
            if track == "detect":  # told detectors whose detection metrics are all missing have no row, only a line
                t = told[told.scenario == scenario]
                told_here.update({e: r for e, r in zip(t.entry, t.told, strict=True) if e not in told_here})
            lines += _table(track, title_, scenario, block, metrics, scores, rk,
                            stability[(stability.track == track) & (stability.scenario == scenario)],
                            missing[(missing.scenario == scenario) & missing.metric.isin(metrics)], told_here)
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


def _table(track: str, title: str, scenario: str, block: pd.DataFrame, metrics: list[str], scores: pd.DataFrame,
           ranks: pd.DataFrame, stability: pd.DataFrame, missing: pd.DataFrame, told: dict[str, str]) -> list[str]:
    present = [m for m in metrics if m in set(block.metric)]
    arrows = {m: "↑" if scores.loc[m, "higher_is_better"] else "↓" for m in present}
    header = ["rank", "P(best)", "method", "access", *[f"{m} {arrows[m]}" for m in present]]
    lines = [f"## {title} — {scenario}", ""]
    if present:
        lines += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    rk = ranks.set_index("entry")["rank"]
    pb = stability.set_index("entry")["p_best"]
    has_rank = bool(rk.notna().any())
    contenders = set(rk[rk.notna()].index)  # only ranked settings are bolded: told ones are not compared
    cells = {(r.access, r.entry, r.metric): r for r in block.itertuples()}
    best: dict[str, float] = {}
    for m in present:
        means = np.array([c.mean for (_, e, metric), c in cells.items() if metric == m and e in contenders])
        if has_rank and means.size:
            best[m] = means.max() if scores.loc[m, "higher_is_better"] else means.min()
    rows = sorted({(a, e) for a, e, _ in cells},
                  # grouped by access level (fewer levels first), then by rank
                  # an unranked setting's NaN rank would compare false both ways and leave rows in set
                  # (hash-salted) order: unranked settings go last, by name
                  key=lambda ae: (*access_key(ae[0]), _rank_key(rk.get(ae[1], np.inf)), ae[1]))
    for access, entry in rows:
        texts = []
        for m in present:
            c = cells.get((access, entry, m))
            if c is None:
                texts.append("—")
                continue
            text = cell_text(c.mean, c.lo, c.hi, int(c.n))
            bold = m in best and entry in contenders and abs(c.mean - best[m]) <= tie_tolerance(c.mean, best[m])
            texts.append(f"**{text}**" if bold else text)
        rank, p_best = rk.get(entry, np.nan), pb.get(entry, np.nan)
        lines.append(f"| {'—' if pd.isna(rank) else int(rank)} | {'—' if pd.isna(p_best) else f'{p_best:.2f}'} "
                     f"| {entry} | {access} | " + " | ".join(texts) + " |")
    if present:
        lines.append("")
    notes = []
    primary = scores[(scores.track == track) & scores.primary].index
    if (ranks["unranked"] == "chance").any():
        notes.append(f"no method beats chance ({scores.loc[primary[0], 'chance']:g}) on {primary[0]}: no rank")
    elif present and len(primary) and primary[0] not in present:
        notes.append(f"no rank: no method has a value of the track's primary metric {primary[0]}")
    line = told_line(told)
    if line:
        notes.append(line)
    controls = sorted(ranks.loc[ranks["unranked"] == "control", "entry"])
    if controls:
        notes.append(f"not ranked, controls (what the others are read against): {', '.join(controls)}")
    partial = ranks[ranks["unranked"] == "incomplete"]
    if not partial.empty and primary[0] in present:
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
             "Win rate: share of pairwise contests won, each contest one scenario both methods were ranked in "
             "(ties count half), so no method is compared on a scenario its opponent lacks; scenarios: where "
             "the method was ranked, out of the track's tables with a rank. Rank: by win rate within each "
             f"access level, only for settings ranked in at least {MIN_COVERAGE:.0%} of the track's tables "
             "(a high rate from a few scenarios says little about the track). Rows grouped by access level, "
             "ordered by rank within it.", "",
             "| track | rank | method | access | win rate | contests | scenarios |", "|---|---|---|---|---|---|---|"]
    for r in agg.itertuples():  # already ordered: track, access level, rank
        rate = "—" if math.isnan(r.win_rate) else f"{r.win_rate:.2f}"
        rank = "—" if math.isnan(r.rank) else str(int(r.rank))
        lines.append(f"| {r.track} | {rank} | {r.entry} | {r.access} | {rate} | {r.contests} | "
                     f"{r.scenarios}/{r.tables} |")
    return [*lines, ""]
