"""Aggregation and reports: per (scenario, method, metric) the mean over replicates with a 95% CI and n,
per scenario and track the rank of each method on the track's primary metric, and across scenarios
the mean rank and win rate.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from cowbench.errors import InputError
from cowbench.store import iter_records, read_json

TRACK_TITLES = {"world": "World recovery", "model": "Model recovery", "detect": "Detection", "edit": "Edit"}
ACCESS_ORDER = ("pooled", "env", "group", "concept", "internals", "counterfactual")


def _score_table() -> pd.DataFrame:
    from cowbench.scores import all_scores

    return pd.DataFrame([{"metric": s.name, "track": s.track, "higher_is_better": s.higher_is_better,
                          "primary": s.primary} for s in all_scores()]).set_index("metric")


def scenario_label(spec: dict[str, Any]) -> str:
    """``cow`` for the defaults, ``cow(agreement_test=0.5)`` for knobs that differ from them."""
    from cowbench.registries import SCENARIOS

    knobs = spec["knobs"]
    try:
        family = SCENARIOS.get(spec["generator"])
        defaults = family.resolve({})
        knobs = family.resolve(knobs)  # JSON turned tuples into lists: normalise before comparing
    except (InputError, ValueError):
        defaults = {}
    changed = {k: v for k, v in knobs.items() if defaults.get(k) != v}
    if not changed:
        return spec["generator"]
    inner = ", ".join(f"{k}={v}" for k, v in sorted(changed.items()))
    return f"{spec['generator']}({inner})"


def access_label(access: list[str]) -> str:
    return "+".join(a for a in ACCESS_ORDER if a in access)


def load_results(out: Path) -> tuple[pd.DataFrame, list[dict[str, Any]], dict[str, Any] | None]:
    """(long table of ok jobs' metrics, failed records, manifest) for the jobs of the last planned suite."""
    out = Path(out)
    if not out.is_dir():
        raise InputError(f"results directory {str(out)!r} does not exist")
    manifest = read_json(out / "manifest.json") if (out / "manifest.json").is_file() else None
    wanted = set(manifest["jobs"]) if manifest else None
    rows, failed = [], []
    for rec in iter_records(out):
        if wanted is not None and rec["job_id"] not in wanted:
            continue
        if rec["status"] != "ok":
            failed.append(rec)
            continue
        spec, info = rec["spec"], rec.get("method_info") or {}
        base = {"job_id": rec["job_id"], "scenario": scenario_label(spec["scenario"]),
                "method": spec["method"], "access": access_label(info.get("access", [])),
                "replicate": spec["replicate"]}
        rows.extend({**base, "metric": m, "value": v} for m, v in rec["metrics"].items() if v is not None)
    frame = pd.DataFrame(rows, columns=["job_id", "scenario", "method", "access", "replicate", "metric", "value"])
    return frame, failed, manifest


def t_half_width(values: np.ndarray, level: float = 0.95) -> float:
    """Half-width of the t confidence interval of the mean (NaN for fewer than 2 values)."""
    from scipy.stats import t

    n = len(values)
    if n < 2:
        return float("nan")
    return float(t.ppf(0.5 + level / 2, n - 1) * np.std(values, ddof=1) / np.sqrt(n))


def summarize(frame: pd.DataFrame, level: float = 0.95) -> pd.DataFrame:
    """One row per (scenario, access, method, metric): mean, ci (half-width), n."""
    if frame.empty:
        return pd.DataFrame(columns=["scenario", "access", "method", "metric", "mean", "ci", "n"])
    grouped = frame.groupby(["scenario", "access", "method", "metric"], sort=True)["value"]
    return grouped.agg(mean="mean", ci=lambda v: t_half_width(v.to_numpy(), level), n="count").reset_index()


def rank_methods(summary: pd.DataFrame) -> pd.DataFrame:
    """Per (scenario, track): each method's rank on the track's primary metric (1 = best, ties share)."""
    scores = _score_table()
    primary = scores[scores.primary]
    rows = []
    for metric, info in primary.iterrows():
        part = summary[summary.metric == metric]
        for scenario, block in part.groupby("scenario"):
            ranks = block["mean"].rank(ascending=not info.higher_is_better, method="min")
            for (_, row), rank in zip(block.iterrows(), ranks, strict=True):
                beaten = (block["mean"] < row["mean"]) if info.higher_is_better else (block["mean"] > row["mean"])
                rows.append({"scenario": scenario, "track": info.track, "method": row["method"],
                             "access": row["access"], "rank": rank,
                             "win_rate": float(beaten.sum()) / max(len(block) - 1, 1)})
    return pd.DataFrame(rows, columns=["scenario", "track", "method", "access", "rank", "win_rate"])


def rank_stability(frame: pd.DataFrame, n_boot: int = 1000, seed: int = 0) -> pd.DataFrame:
    """P(best) per (scenario, track, method): how often the method ranks first on the track's primary
    metric when replicates are resampled with replacement (jointly for all methods: replicates are paired,
    every method sees the same data in a replicate). Ties count as a share."""
    scores = _score_table()
    rows = []
    rng = np.random.default_rng(seed)
    for metric, info in scores[scores.primary].iterrows():
        part = frame[frame.metric == metric]
        for scenario, block in part.groupby("scenario"):
            table = block.pivot_table(index="replicate", columns="method", values="value", aggfunc="first")
            values = table.to_numpy(dtype=float)  # (replicates, methods), NaN where a job is missing
            if values.shape[1] == 0:
                continue
            draws = rng.integers(0, values.shape[0], size=(n_boot, values.shape[0]))
            picked = values[draws]  # (n_boot, replicates, methods)
            counts = np.sum(~np.isnan(picked), axis=1)
            means = np.where(counts > 0, np.nansum(picked, axis=1) / np.maximum(counts, 1), np.nan)
            means = means if info.higher_is_better else -means
            means = np.where(np.isnan(means), -np.inf, means)
            best = means == means.max(axis=1, keepdims=True)
            share = (best / best.sum(axis=1, keepdims=True)).mean(axis=0)
            rows += [{"scenario": scenario, "track": info.track, "method": m, "p_best": float(p)}
                     for m, p in zip(table.columns, share, strict=True)]
    return pd.DataFrame(rows, columns=["scenario", "track", "method", "p_best"])


def _cell(mean: float, ci: float, n: int) -> str:
    if np.isnan(ci):
        return f"{mean:.3f} ({n})"
    return f"{mean:.3f} ± {ci:.3f} ({n})"


def markdown_report(out: Path, level: float = 0.95) -> str:
    """The Markdown report of a results directory: header, one table per track and scenario, failures."""
    from cowbench import __version__
    from cowbench.scores import scorer_version

    frame, failed, manifest = load_results(out)
    summary = summarize(frame, level)
    ranks = rank_methods(summary)
    stability = rank_stability(frame)
    scores = _score_table()
    suite = manifest["suite"] if manifest else {}
    lines = [
        f"# cowbench report: {suite.get('name', Path(out).name)}",
        "",
        f"suite hash `{manifest['suite_hash'] if manifest else 'unknown'}` · cowbench {__version__} · "
        f"scorer `{scorer_version()}` · root seed {suite.get('root_seed', '?')} · "
        f"{suite.get('replicates', '?')} replicates · subject `{(suite.get('subject') or {}).get('arch', '?')}` · "
        "hyperparameters: defaults (no selection) · "
        f"cells: mean ± {int(level * 100)}% t-interval half-width (n replicates) · rank on the track's primary "
        "metric, P(best) from 1000 bootstrap resamples of the paired replicates · rows grouped by access level",
        "",
    ]
    if summary.empty:
        lines.append("No finished jobs.")
    for track, title in TRACK_TITLES.items():
        metrics = [m for m in scores.index if scores.loc[m, "track"] == track]
        part = summary[summary.metric.isin(metrics)]
        if part.empty:
            continue
        for scenario, block in part.groupby("scenario"):
            present = [m for m in metrics if m in set(block.metric)]
            arrows = {m: "↑" if scores.loc[m, "higher_is_better"] else "↓" for m in present}
            header = ["rank", "P(best)", "method", "access", *[f"{m} {arrows[m]}" for m in present]]
            lines += [f"## {title} — {scenario}", "", "| " + " | ".join(header) + " |",
                      "|" + "---|" * len(header)]
            rk = ranks[(ranks.track == track) & (ranks.scenario == scenario)].set_index("method")["rank"]
            pb = stability[(stability.track == track) & (stability.scenario == scenario)].set_index("method")["p_best"]
            cells = {(r.access, r.method, r.metric): r for r in block.itertuples()}
            best = {}
            for m in present:
                means = [c.mean for key, c in cells.items() if key[2] == m]
                best[m] = max(means) if scores.loc[m, "higher_is_better"] else min(means)
            rows = sorted({(a, meth) for a, meth, _ in cells},
                          # grouped by access level (fewer levels first), then by rank
                          key=lambda am: (am[0].count("+"), am[0], rk.get(am[1], np.inf), am[1]))
            for access, method in rows:
                texts = []
                for m in present:
                    c = cells.get((access, method, m))
                    if c is None:
                        texts.append("—")
                        continue
                    text = _cell(c.mean, c.ci, int(c.n))
                    texts.append(f"**{text}**" if np.isclose(c.mean, best[m]) else text)
                rank = rk.get(method, np.nan)
                p_best = pb.get(method, np.nan)
                lines.append(f"| {'—' if pd.isna(rank) else int(rank)} | {'—' if pd.isna(p_best) else f'{p_best:.2f}'} "
                             f"| {method} | {access} | "
                             + " | ".join(texts) + " |")
            lines.append("")
    if not ranks.empty and ranks.scenario.nunique() > 1:
        lines += ["## Across scenarios: mean rank and mean win rate per track", "",
                  "| track | method | access | mean rank | win rate | scenarios |", "|---|---|---|---|---|---|"]
        agg = ranks.groupby(["track", "method", "access"]).agg(rank=("rank", "mean"), win=("win_rate", "mean"),
                                                              n=("scenario", "nunique")).reset_index()
        for _, r in agg.sort_values(["track", "rank"]).iterrows():
            lines.append(f"| {r.track} | {r.method} | {r.access} | {r['rank']:.2f} | {r.win:.2f} | {r.n} |")
        lines.append("")
    skipped = (manifest or {}).get("skipped", [])
    if skipped:
        lines += [f"## Skipped pairs ({len(skipped)}): the method cannot run on the scenario", ""]
        for item in skipped:
            lines.append(f"- {item['method']} on {scenario_label(item['scenario'])}: {item['reason']}")
        lines.append("")
    if failed:
        lines += [f"## Failed jobs ({len(failed)})", ""]
        for rec in failed:
            lines.append(f"- `{rec['job_id'][:12]}` {rec['spec']['method']} on "
                         f"{scenario_label(rec['spec']['scenario'])} replicate {rec['spec']['replicate']}: "
                         f"{rec.get('error', '?')}")
        lines.append("")
    return "\n".join(lines)


def summary_json(out: Path, level: float = 0.95) -> str:
    frame, _, _ = load_results(out)
    return json.dumps(summarize(frame, level).to_dict(orient="records"), indent=1, allow_nan=True)
