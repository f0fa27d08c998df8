"""The one table every report format renders: job records -> a tidy frame -> aggregated tables.

Job records become a tidy frame (one row per job and metric); per (scenario, access, method,
hyperparameter setting, selection rule, metric) the mean over replicates with a 95% interval that cannot
leave the metric's range; per (scenario, track) ranks that share ties and are withheld where no method
beats chance or the method was told the answer; P(best) from a paired bootstrap over replicates;
pairwise win rates across scenarios on the scenarios both methods of a pair share (ties half), ranked
within each access level; the minimum resolvable difference of each track's primary metric; and the
provenance every format prints. Formats (`cowbench.reports`) only render `Tables`; none computes a number.
"""

from __future__ import annotations

import json
import math
import re
from collections import defaultdict
from dataclasses import dataclass, field
from functools import cache
from itertools import combinations
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from cowbench.access import ACCESS_LEVELS, TELLING_ROUTES
from cowbench.errors import InputError
from cowbench.store import iter_records, read_json, run_path, select_manifest

TRACK_TITLES = {"world": "World recovery", "model": "Model recovery", "detect": "Detection", "edit": "Edit"}
ACCESS_ORDER = ACCESS_LEVELS

#: Two means closer than this (relative to the larger magnitude) are a tie: they differ by float noise only.
TIE_RTOL = 1e-9
_TIE_ATOL = 1e-12  # so that two values at (or next to) zero tie as well
#: Half a unit of the printed precision (3 decimals): a mean closer to chance than this prints as chance.
CHANCE_MARGIN = 5e-4
N_BOOT = 2000  # percentile bootstrap resamples per cell
N_BOOT_RANK = 1000  # paired bootstrap resamples per table for P(best)

#: How a route by which a method was told the spurious variable is named in the report (one table, in access).
TOLD_ROUTES = TELLING_ROUTES

#: The selection rule of a job that names none: each method with the hyperparameters the suite set.
DEFAULT_SELECTION = "defaults"

FRAME_COLUMNS = ["job_id", "scenario", "method", "hparams", "entry", "access", "told", "replicate", "metric",
                 "value", "selection"]
SUMMARY_COLUMNS = ["scenario", "access", "method", "hparams", "entry", "told", "metric", "mean", "lo", "hi", "n",
                   "interval", "selection"]
RANK_COLUMNS = ["scenario", "track", "entry", "method", "access", "rank", "win_rate", "unranked", "selection"]


# ----------------------------------------------------------------------------------------------------------
# Metric metadata
# ----------------------------------------------------------------------------------------------------------

def score_table() -> pd.DataFrame:
    """One row per registered metric: track, direction, primary, range (``lower``, ``upper``), ``chance``
    (NaN where the metric declares none) and ``binary`` (None where the metric does not declare it)."""
    from cowbench.scores import all_scores

    rows = []
    for s in all_scores():
        # bounds and chance are declared by newer Score objects; older ones are treated as unbounded, no chance
        lower, upper = getattr(s, "bounds", None) or (-math.inf, math.inf)
        chance = getattr(s, "chance", None)
        rows.append({"metric": s.name, "track": s.track, "higher_is_better": s.higher_is_better,
                     "primary": s.primary, "lower": float(lower), "upper": float(upper),
                     "chance": math.nan if chance is None else float(chance),
                     "binary": getattr(s, "binary", None)})
    return pd.DataFrame(rows).set_index("metric")


def primary_scores(scores: pd.DataFrame) -> pd.DataFrame:
    """The rows of ``scores`` that rank a track; `ValueError` if a track has more than one (ranks would clash)."""
    primary = scores[scores.primary.astype(bool)]
    counts = primary.groupby("track").size()
    if (counts > 1).any():
        track = counts[counts > 1].index[0]
        names = ", ".join(primary[primary.track == track].index)
        raise ValueError(f"track {track!r} has several primary metrics ({names}); exactly one ranks a track")
    return primary


def _metric_info(scores: pd.DataFrame, metric: str) -> dict[str, Any]:
    if metric in scores.index:
        return scores.loc[metric].to_dict()
    return {"track": None, "higher_is_better": True, "primary": False, "lower": -math.inf, "upper": math.inf,
            "chance": math.nan, "binary": None}


# ----------------------------------------------------------------------------------------------------------
# Loading: job records -> tidy frame
# ----------------------------------------------------------------------------------------------------------

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


def scenario_family(label: str) -> str:
    """The generator of a scenario label: ``cow`` for ``cow(agreement_test=0.5)``."""
    return label.split("(", 1)[0]


def access_label(access: list[str]) -> str:
    return "+".join(a for a in ACCESS_ORDER if a in access)


def hparams_label(hparams: dict[str, Any] | None) -> str:
    """``lr=0.1, penalty=10`` (sorted keys); empty for the defaults."""
    return ", ".join(f"{k}={json.dumps(v, sort_keys=True)}" for k, v in sorted((hparams or {}).items()))


def told_routes(record: dict[str, Any]) -> list[str]:
    """The routes through which the job's method was told which variable is spurious.

    Records that predate the ``told`` field are judged by declared access: group labels name the spurious
    variable, so a method that declares ``group`` access was told (DESIGN: access levels).
    """
    told = record.get("told")
    if told is None:
        told = ["group"] if "group" in (record.get("method_info") or {}).get("access", []) else []
    return sorted(set(told))


#: What a control's row label carries, in every format: it is shown to read the others against, not ranked.
CONTROL_MARK = " (control)"


@cache
def is_control(method: str) -> bool:
    """Whether the registered method ``method`` is a control (class attribute ``control``: no edit, random
    ablations): scored and shown, not ranked, no P(best), not in the across-scenario win rates. A name no
    registry knows (a method of a plugin not loaded now, a test's made-up name) is not a control."""
    from cowbench.registries import METHODS

    try:
        return bool(getattr(METHODS.get(method), "control", False))
    except InputError:
        return False


def add_entries(frame: pd.DataFrame) -> pd.DataFrame:
    """Fill in ``hparams``, ``told``, ``selection`` and ``entry`` where a frame lacks them.

    ``entry`` is the row identity: the method's name, followed by its hyperparameters where the frame holds
    more than one setting of it, and by its selection rule in brackets where it holds more than one rule
    for it. Each setting is its own row: settings are never pooled as if they were replicates.
    """
    frame = frame.copy()
    for column, default in (("hparams", ""), ("told", ""), ("selection", DEFAULT_SELECTION)):
        if column not in frame:
            frame[column] = default
        frame[column] = frame[column].fillna(default)
    settings = frame.groupby("method")["hparams"].nunique()
    several = set(settings[settings > 1].index)
    rules = frame.groupby("method")["selection"].nunique()
    several_rules = set(rules[rules > 1].index)
    frame["entry"] = [(f"{m}({h})" if m in several else m) + (f" [{s}]" if m in several_rules else "")
                      + (CONTROL_MARK if is_control(m) else "")
                      for m, h, s in zip(frame["method"], frame["hparams"], frame["selection"], strict=True)]
    return frame


@dataclass
class RunResults:
    """What a results directory holds, in tidy tables.

    ``frame``: one row per (ok job, metric with a value), columns `FRAME_COLUMNS`; ``jobs``: one row per
    ok job; ``missing``: one row per (ok job, metric) stored as missing with a reason; ``failed``: the
    failed records; ``manifest``: the suite's manifest, if any; ``runs``: the per-job run records
    (provenance), where present.
    """

    frame: pd.DataFrame
    jobs: pd.DataFrame
    missing: pd.DataFrame
    failed: list[dict[str, Any]] = field(default_factory=list)
    manifest: dict[str, Any] | None = None
    runs: list[dict[str, Any]] = field(default_factory=list)


def _manifest(out: Path, suite: str | None) -> dict[str, Any] | None:
    # validated; one per suite (manifests/<name>.json) or an old single manifest.json; InputError if ambiguous
    return select_manifest(out, suite)


def load_results(out: Path, suite: str | None = None, *, select: bool = True) -> RunResults:
    """Read the records of one suite's planned jobs under ``out`` (``suite``: which, if there are several).

    ``select``: apply the manifest's selection rules (`cowbench.selection.apply_selection`); False gives every
    ok job once, as stored (what ``cowbench verify`` reruns).
    """
    out = Path(out)
    if not out.is_dir():
        raise InputError(f"results directory {str(out)!r} does not exist")
    manifest = _manifest(out, suite)
    wanted = set(manifest["jobs"]) if manifest else None
    jobs, rows, missing, failed, runs = [], [], [], [], []
    for rec in iter_records(out):
        if wanted is not None and rec["job_id"] not in wanted:
            continue
        if rec["status"] != "ok":
            failed.append(rec)
            continue
        spec, info = rec["spec"], rec.get("method_info") or {}
        versions = spec.get("versions") or {}
        job = {"job_id": rec["job_id"], "scenario": scenario_label(spec["scenario"]), "method": spec["method"],
               "hparams": hparams_label(spec.get("hparams")), "access": access_label(info.get("access", [])),
               "told": ",".join(told_routes(rec)), "replicate": spec["replicate"],
               "detects": "detect" in info.get("outputs", ["detect"]),
               "scorer": versions.get("scorer"),
               # a record names its selection rule once rules exist (issue 11); older ones used the defaults
               "selection": str(rec.get("selection") or spec.get("selection") or DEFAULT_SELECTION),
               "generator": spec["scenario"].get("generator"),
               "generator_version": spec["scenario"].get("version"), "method_version": versions.get("method")}
        jobs.append(job)
        rows.extend({**job, "metric": m, "value": v} for m, v in rec["metrics"].items() if v is not None)
        missing.extend({**job, "metric": m, "reason": str(reason)} for m, reason in (rec.get("missing") or {}).items())
        if run_path(out, rec["job_id"]).is_file():
            try:
                runs.append(read_json(run_path(out, rec["job_id"])))
            except (OSError, ValueError):  # ValueError: undecodable or non-JSON constants
                pass  # run records are provenance only; a broken one must not hide the results
    job_columns = ["job_id", "scenario", "method", "hparams", "access", "told", "replicate", "detects", "scorer",
                   "selection", "generator", "generator_version", "method_version"]
    jobs_frame = pd.DataFrame(jobs, columns=job_columns)
    # entries are decided over every job, so a method's label does not depend on which metric is looked at
    jobs_frame = add_entries(jobs_frame)
    entry = jobs_frame.set_index("job_id")["entry"]
    frame = pd.DataFrame(rows, columns=[c for c in FRAME_COLUMNS if c != "entry"])
    frame.insert(4, "entry", frame["job_id"].map(entry).astype(object))
    missing_frame = pd.DataFrame(missing, columns=[*job_columns, "metric", "reason"])
    missing_frame["entry"] = missing_frame["job_id"].map(entry).astype(object)
    from cowbench.selection import apply_selection  # the manifest's selection rules (unchanged for defaults only)

    res = RunResults(frame, jobs_frame, missing_frame, failed, manifest, runs)
    return apply_selection(res) if select else res


# ----------------------------------------------------------------------------------------------------------
# Intervals
# ----------------------------------------------------------------------------------------------------------

def t_interval(values: np.ndarray, level: float = 0.95) -> tuple[float, float]:
    """The t confidence interval of the mean (NaN for fewer than 2 values). Unbounded: for unbounded metrics."""
    from scipy.stats import t

    values = np.asarray(values, dtype=float)
    n = len(values)
    if n < 2:
        return math.nan, math.nan
    mean = float(np.mean(values))
    half = float(t.ppf(0.5 + level / 2, n - 1) * np.std(values, ddof=1) / np.sqrt(n))
    return mean - half, mean + half


def wilson_interval(successes: int, n: int, level: float = 0.95) -> tuple[float, float]:
    """Wilson score interval of a binomial proportion (Wilson 1927); always inside [0, 1]. NaN for n = 0."""
    from scipy.stats import norm

    if n <= 0:
        return math.nan, math.nan
    if not 0 <= successes <= n:
        raise ValueError(f"successes must lie in [0, n] = [0, {n}], got {successes}")
    z = float(norm.ppf(0.5 + level / 2))
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    # algebraically inside [0, 1]; max/min only absorb rounding at p = 0 or 1, never move a real bound
    return max(0.0, centre - half), min(1.0, centre + half)


def bootstrap_interval(values: np.ndarray, level: float = 0.95, n_boot: int = N_BOOT,
                       seed: int = 0) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean (Efron 1979), seeded.

    Every resampled mean lies between the smallest and the largest value, so the interval cannot leave a
    range that holds the values. It under-covers at very small n (with n = 2 it is the two values).
    """
    values = np.asarray(values, dtype=float)
    n = len(values)
    if n < 2:
        return math.nan, math.nan
    rng = np.random.default_rng(seed)
    means = values[rng.integers(0, n, size=(n_boot, n))].mean(axis=1)
    lo, hi = np.quantile(means, [0.5 - level / 2, 0.5 + level / 2])
    return float(lo), float(hi)


def interval_kind(info: dict[str, Any], observed: np.ndarray) -> str:
    """``wilson`` for a 0/1 metric, ``bootstrap`` for a metric with a finite bound, ``t`` for an unbounded one.

    A metric is 0/1 if it says so (``binary``) or, when it does not, if every value it took in the run is 0
    or 1 and its range is [0, 1] or undeclared. For a [0, 1] metric whose values happen to be all 0 or 1
    (an AUROC of 1 in every replicate) Wilson is the conservative choice: no [0, 1] variable with that
    mean varies more than a 0/1 one, and a bootstrap of identical values would claim zero width.
    """
    binary = info.get("binary")
    if binary is None:
        span = (info["lower"], info["upper"])
        binary = (span in ((0.0, 1.0), (-math.inf, math.inf)) and observed.size > 0
                  and bool(np.isin(observed, (0.0, 1.0)).all()))
    if binary:
        return "wilson"
    if math.isfinite(info["lower"]) or math.isfinite(info["upper"]):
        return "bootstrap"
    return "t"


def cell_interval(values: np.ndarray, kind: str, level: float = 0.95, n_boot: int = N_BOOT,
                  seed: int = 0) -> tuple[float, float]:
    """The interval of one cell's mean by method ``kind``; none (NaN) for fewer than 2 replicates."""
    values = np.asarray(values, dtype=float)
    if len(values) < 2:
        return math.nan, math.nan
    if kind == "wilson":
        return wilson_interval(round(float(values.sum())), len(values), level)
    if kind == "bootstrap":
        return bootstrap_interval(values, level, n_boot, seed)
    if kind == "t":
        return t_interval(values, level)
    raise ValueError(f"interval kind must be one of wilson, bootstrap, t; got {kind!r}")


# ----------------------------------------------------------------------------------------------------------
# Summary, ranks, P(best), aggregation across scenarios, resolvable differences
# ----------------------------------------------------------------------------------------------------------

def _union(routes: pd.Series) -> str:
    """The routes of several jobs as one comma-separated string (a setting is told if any job was)."""
    return ",".join(sorted({r for text in routes for r in text.split(",") if r}))


def summarize(frame: pd.DataFrame, level: float = 0.95, *, scores: pd.DataFrame | None = None,
              n_boot: int = N_BOOT, seed: int = 0) -> pd.DataFrame:
    """One row per (scenario, access, method setting, metric): mean, interval [lo, hi], n and the interval's
    method (`interval_kind`; ``none`` with one replicate). ``scores`` defaults to `score_table`."""
    if frame.empty:
        return pd.DataFrame(columns=SUMMARY_COLUMNS)
    scores = score_table() if scores is None else scores
    frame = add_entries(frame) if "entry" not in frame else frame
    frame = frame if "selection" in frame else frame.assign(selection=DEFAULT_SELECTION)
    kinds = {m: interval_kind(_metric_info(scores, m), part["value"].to_numpy(dtype=float))
             for m, part in frame.groupby("metric")}
    told = frame.groupby(["scenario", "entry"])["told"].agg(_union)
    rows = []
    for (scenario, access, method, hparams, selection, entry, metric), part in frame.groupby(
            ["scenario", "access", "method", "hparams", "selection", "entry", "metric"], sort=True):
        values = part["value"].to_numpy(dtype=float)
        kind = kinds[metric] if len(values) > 1 else "none"
        lo, hi = cell_interval(values, kind, level, n_boot, seed) if kind != "none" else (math.nan, math.nan)
        rows.append({"scenario": scenario, "access": access, "method": method, "hparams": hparams, "entry": entry,
                     "told": told[(scenario, entry)], "metric": metric, "mean": float(np.mean(values)),
                     "lo": lo, "hi": hi, "n": len(values), "interval": kind, "selection": selection})
    return pd.DataFrame(rows, columns=SUMMARY_COLUMNS)


def tie_tolerance(a: np.ndarray | float, b: np.ndarray | float, rtol: float = TIE_RTOL) -> np.ndarray:
    """How far apart two means may be and still tie: ``rtol`` of the larger magnitude (plus a tiny floor)."""
    return rtol * np.maximum(np.abs(a), np.abs(b)) + _TIE_ATOL


def tied_ranks(values: np.ndarray, higher_is_better: bool, rtol: float = TIE_RTOL) -> np.ndarray:
    """Competition ranks (1 = best): one plus the number of values better by more than the tie tolerance."""
    v = np.asarray(values, dtype=float)
    v = v if higher_is_better else -v
    better = v[None, :] - v[:, None] > tie_tolerance(v[None, :], v[:, None], rtol)  # [i, j]: j beats i
    return 1 + better.sum(axis=1)


def _beats_chance(block: pd.DataFrame, chance: float, higher_is_better: bool) -> bool:
    """Whether some method's interval clears the chance level in the metric's direction (no interval: no) and
    its mean differs from chance at the printed precision: a cell printed ``1.000`` never beats a chance of 1,
    however tight its interval (an estimate with cosine 0.02 is significantly, but not usefully, informed)."""
    margin = np.abs(block["mean"] - chance) >= CHANCE_MARGIN
    if higher_is_better:
        return bool(((block["lo"] > chance) & margin).any())
    return bool(((block["hi"] < chance) & margin).any())


def rank_methods(summary: pd.DataFrame, *, scores: pd.DataFrame | None = None,
                 rtol: float = TIE_RTOL) -> pd.DataFrame:
    """Per (scenario, track, selection rule): each method setting's rank on the track's primary metric.

    Equal means (within ``rtol``) share a rank and count as half a win. Detection does not rank a method
    that was told the spurious variable (``unranked = "told"``). A control (`is_control`) is never ranked
    (``unranked = "control"``): it is what the others are read against, not a competitor. A method with a
    value in fewer replicates than another of the table is not ranked (``unranked = "incomplete"``): a mean
    over the replicates a method chose to answer is not paired with the others, and answering only when sure
    would win. A table
    where no ranked method's interval clears the metric's chance level in the right direction ranks nobody
    (``unranked = "chance"``).
    ``win_rate``: share of the other ranked methods of the table it beats, ties counting half.
    """
    scores = score_table() if scores is None else scores
    summary = summary if "told" in summary else summary.assign(told="")
    summary = summary if "entry" in summary else summary.assign(entry=summary["method"])
    summary = summary if "selection" in summary else summary.assign(selection=DEFAULT_SELECTION)
    rows = []
    for metric, info in primary_scores(scores).iterrows():
        # one table per selection rule: a setting picked on test data is not a competitor of one picked on val
        for (scenario, selection), block in summary[summary.metric == metric].groupby(["scenario", "selection"],
                                                                                      sort=True):
            block = block.reset_index(drop=True)
            told = (block["told"] != "") if info.track == "detect" else pd.Series(False, index=block.index)
            control = block["method"].map(is_control).astype(bool)
            incomplete = ~told & ~control & (block["n"] < block.loc[~told & ~control, "n"].max())
            eligible = block[~told & ~control & ~incomplete]
            at_chance = (not math.isnan(info.chance) and not eligible.empty
                         and not _beats_chance(eligible, info.chance, info.higher_is_better))
            ranks = pd.Series(np.nan, index=block.index)
            wins = pd.Series(np.nan, index=block.index)
            if not at_chance and not eligible.empty:
                r = tied_ranks(eligible["mean"].to_numpy(), info.higher_is_better, rtol)
                ranks[eligible.index] = r
                k = len(r)
                # beaten: ranked below; tied: same rank (ties are exactly the pairs within the tolerance)
                beaten = (r[None, :] > r[:, None]).sum(axis=1)
                tied = (r[None, :] == r[:, None]).sum(axis=1) - 1
                wins[eligible.index] = (beaten + 0.5 * tied) / max(k - 1, 1)
            for i, row in block.iterrows():
                reason = ("control" if control[i] else "told" if told[i] else "incomplete" if incomplete[i]
                          else "chance" if at_chance else "")
                rows.append({"scenario": scenario, "track": info.track, "entry": row["entry"],
                             "method": row["method"], "access": row["access"], "rank": ranks[i],
                             "win_rate": wins[i], "unranked": reason, "selection": selection})
    return pd.DataFrame(rows, columns=RANK_COLUMNS)


def rank_stability(frame: pd.DataFrame, ranks: pd.DataFrame | None = None, *, n_boot: int = N_BOOT_RANK,
                   seed: int = 0, scores: pd.DataFrame | None = None, rtol: float = TIE_RTOL) -> pd.DataFrame:
    """P(best) per (scenario, track, ranked method setting).

    How often the setting is best on the track's primary metric when replicates are resampled with
    replacement, jointly for all settings (replicates are paired: every method sees the same data in a
    replicate); a tie within ``rtol`` splits the win. Only settings with a rank in ``ranks`` (computed
    from ``frame`` if not given) take part; tables without ranks get no P(best).
    """
    scores = score_table() if scores is None else scores
    frame = add_entries(frame) if "entry" not in frame else frame
    if ranks is None:
        ranks = rank_methods(summarize(frame, scores=scores), scores=scores, rtol=rtol)
    ranked = ranks[ranks["rank"].notna()]
    ranked = ranked if "selection" in ranked else ranked.assign(selection=DEFAULT_SELECTION)
    frame = frame if "selection" in frame else frame.assign(selection=DEFAULT_SELECTION)
    rows = []
    for metric, info in primary_scores(scores).iterrows():
        part = frame[frame.metric == metric]
        for (scenario, selection), block in part.groupby(["scenario", "selection"], sort=True):
            entries = set(ranked[(ranked.scenario == scenario) & (ranked.track == info.track)
                                 & (ranked.selection == selection)]["entry"])
            block = block[block.entry.isin(entries)]
            if block.empty:
                continue
            table = block.pivot_table(index="replicate", columns="entry", values="value", aggfunc="first")
            values = table.to_numpy(dtype=float)  # (replicates, settings), NaN where a job is missing
            rng = np.random.default_rng(seed)  # per table: a table's P(best) does not depend on the others
            draws = rng.integers(0, values.shape[0], size=(n_boot, values.shape[0]))
            picked = values[draws]  # (n_boot, replicates, settings)
            counts = np.sum(~np.isnan(picked), axis=1)
            means = np.where(counts > 0, np.nansum(picked, axis=1) / np.maximum(counts, 1), np.nan)
            means = means if info.higher_is_better else -means
            means = np.where(np.isnan(means), -np.inf, means)
            top = means.max(axis=1, keepdims=True)
            best = means >= top - tie_tolerance(top, means, rtol)
            share = (best / best.sum(axis=1, keepdims=True)).mean(axis=0)
            rows += [{"scenario": scenario, "track": info.track, "entry": e, "p_best": float(p)}
                     for e, p in zip(table.columns, share, strict=True)]
    return pd.DataFrame(rows, columns=["scenario", "track", "entry", "p_best"])


def access_key(access: str) -> tuple[int, str]:
    """Sort key of an access label: fewer levels first (a method that sees less heads the leaderboard)."""
    return access.count("+"), access


ACROSS_COLUMNS = ["track", "entry", "method", "access", "win_rate", "contests", "scenarios", "tables", "rank",
                  "unranked"]

#: A setting is ranked across scenarios only if it was ranked in at least this share of the track's tables: a
#: win rate from the one scenario only an instrumental-variable method can run says little about the track.
MIN_COVERAGE = 0.5


def across_scenarios(ranks: pd.DataFrame) -> pd.DataFrame:
    """Per (track, method setting): pairwise win rate over the scenarios both methods of a pair were ranked in.

    Each pair of settings ranked in the same (scenario, track) table is one contest: the better rank wins,
    an equal rank is a tie and counts half. A method is never compared on a scenario its opponent lacks,
    so differing scenario sets do not bias the rate (a mean rank would: a method ranked first in the one
    scenario only it can run would head a table of methods ranked over fifteen); ``scenarios`` (ranked in)
    against ``tables`` (the track's tables with a rank) states each method's coverage. ``rank``: by win
    rate within the track and access level, equal rates sharing a rank, only for settings ranked in at least
    `MIN_COVERAGE` of the track's tables (``unranked = "coverage"`` otherwise, ``"no contest"`` without an
    opponent); rows are ordered by track, access level (fewer levels first), rank, then wider coverage.
    """
    ranked = ranks[ranks["rank"].notna()]
    ranked = ranked if "selection" in ranked else ranked.assign(selection=DEFAULT_SELECTION)
    score: dict[tuple[str, str], float] = defaultdict(float)
    contests: dict[tuple[str, str], int] = defaultdict(int)
    # contests only within one (scenario, track, selection rule) table, as ranked
    for (_, track, _), block in ranked.groupby(["scenario", "track", "selection"], sort=True):
        r = dict(zip(block["entry"], block["rank"], strict=True))
        for a, b in combinations(sorted(r), 2):
            for x, y in ((a, b), (b, a)):
                contests[(track, x)] += 1
                score[(track, x)] += 1.0 if r[x] < r[y] else 0.5 if r[x] == r[y] else 0.0
    if ranked.empty:
        return pd.DataFrame(columns=ACROSS_COLUMNS)
    tables = ranked.groupby("track")["scenario"].nunique()
    meta = ranked.groupby(["track", "entry"]).agg(method=("method", "first"), access=("access", "first"),
                                                  scenarios=("scenario", "nunique")).reset_index()
    rows = []
    for r in meta.itertuples():
        n = contests.get((r.track, r.entry), 0)
        rows.append({"track": r.track, "entry": r.entry, "method": r.method, "access": r.access,
                     "win_rate": score[(r.track, r.entry)] / n if n else math.nan, "contests": n,
                     "scenarios": int(r.scenarios), "tables": int(tables[r.track])})
    agg = pd.DataFrame(rows, columns=ACROSS_COLUMNS)
    covered = agg["scenarios"] >= MIN_COVERAGE * agg["tables"]
    agg["unranked"] = np.where(agg["win_rate"].isna(), "no contest", np.where(covered, "", "coverage"))
    for _, block in agg.groupby(["track", "access"]):
        rated = block[block["unranked"] == ""]
        if not rated.empty:
            agg.loc[rated.index, "rank"] = tied_ranks(rated["win_rate"].to_numpy(), higher_is_better=True)
    agg["rank"] = agg["rank"].astype(float)
    order = {t: i for i, t in enumerate(TRACK_TITLES)}
    keys = pd.DataFrame({"t": agg["track"].map(lambda t: order.get(t, len(order))),
                         "a1": agg["access"].str.count(r"\+"), "a2": agg["access"],
                         "r": agg["rank"].fillna(math.inf), "c": -agg["scenarios"], "e": agg["entry"]})
    return agg.loc[keys.sort_values(["t", "a1", "a2", "r", "c", "e"]).index].reset_index(drop=True)


def resolvable_differences(frame: pd.DataFrame, *, n: int | None = None,
                           scores: pd.DataFrame | None = None) -> pd.DataFrame:
    """Per track: the minimum difference of its primary metric that ``n`` paired replicates resolve.

    The noise is the s.d. of the per-replicate difference between two method settings, pooled over every
    pair of settings in every (scenario) table of the track (variances weighted by their degrees of
    freedom); `cowbench.reliability.min_resolvable_difference` turns it into a difference at ``n``
    replicates (default: the most common replicate count of the track's cells).
    """
    from cowbench.reliability import min_resolvable_difference

    scores = score_table() if scores is None else scores
    frame = add_entries(frame) if "entry" not in frame else frame
    rows = []
    for metric, info in primary_scores(scores).iterrows():
        part = frame[frame.metric == metric]
        if part.empty:
            continue
        sum_sq, dof = 0.0, 0
        for _, block in part.groupby("scenario"):
            table = block.pivot_table(index="replicate", columns="entry", values="value", aggfunc="first")
            for a, b in combinations(table.columns, 2):
                d = (table[a] - table[b]).dropna().to_numpy()
                if len(d) >= 2:
                    sum_sq += float(np.var(d, ddof=1)) * (len(d) - 1)
                    dof += len(d) - 1
        counts = part.groupby(["scenario", "entry"]).size()
        reps = int(counts.mode().max()) if n is None else n
        sd = math.sqrt(sum_sq / dof) if dof else math.nan
        mrd = min_resolvable_difference(sd, reps) if dof else math.nan
        rows.append({"track": info.track, "metric": metric, "sd_diff": sd, "dof": dof, "n": reps, "mrd": mrd})
    return pd.DataFrame(rows, columns=["track", "metric", "sd_diff", "dof", "n", "mrd"])


def told_detectors(jobs: pd.DataFrame) -> pd.DataFrame:
    """Per (scenario, setting) of a detection method that was told the spurious variable: the routes.

    Their detection metrics are missing (or, in records without ``told``, present but unranked); the report
    names them under the scenario's detection table so their absence from the ranking is explained.
    """
    columns = ["scenario", "entry", "told"]
    if jobs.empty:
        return pd.DataFrame(columns=columns)
    detects = jobs["detects"] if "detects" in jobs else pd.Series(True, index=jobs.index)
    told = jobs[(jobs["told"] != "") & detects.astype(bool)]
    if told.empty:
        return pd.DataFrame(columns=columns)
    return told.groupby(["scenario", "entry"])["told"].agg(_union).reset_index()[columns]


_NUMBER = re.compile(r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?")


def missing_counts(missing: pd.DataFrame, jobs: pd.DataFrame) -> pd.DataFrame:
    """Per (scenario, setting, metric, kind of reason): in how many of the setting's replicates the metric is
    missing (``count`` of ``of``), one example reason (the lowest replicate's) and whether the replicates'
    reasons differ in their numbers (``alike`` False). Reasons of one kind differ only in their numbers."""
    columns = ["scenario", "entry", "metric", "kind", "reason", "alike", "count", "of"]
    if missing.empty:
        return pd.DataFrame(columns=columns)
    total = jobs.groupby(["scenario", "entry"]).size()
    missing = missing.assign(kind=missing["reason"].map(lambda r: _NUMBER.sub("#", r))).sort_values("replicate")
    counts = missing.groupby(["scenario", "entry", "metric", "kind"], sort=True).agg(
        reason=("reason", "first"), distinct=("reason", "nunique"), count=("job_id", "nunique")).reset_index()
    counts["alike"] = counts.pop("distinct") == 1
    counts["of"] = [int(total.get((s, e), 0)) for s, e in zip(counts["scenario"], counts["entry"], strict=True)]
    return counts[columns]


def machine_line(runs: list[dict[str, Any]]) -> str | None:
    """The machine(s) the run's jobs ran on, one summary each, from the run records' provenance."""
    try:
        from cowbench.fingerprint import fingerprint_summary
    except ImportError:  # a package without machine fingerprints: name the machine type at least
        fingerprint_summary = None
    seen: dict[str, None] = {}  # insertion-ordered set
    for run in runs:
        fp = run.get("fingerprint")
        if isinstance(fp, dict) and fingerprint_summary is not None:
            seen.setdefault(fingerprint_summary(fp), None)
    if seen:
        return " | ".join(seen) if len(seen) == 1 else f"{len(seen)} machines: " + " | ".join(seen)
    machines = sorted({f"{r.get('machine', '?')} host {r.get('host', '?')}" for r in runs
                       if "machine" in r or "host" in r})
    return f"no machine fingerprint in the run records (only {'; '.join(machines)})" if machines else None



def selection_rules(jobs: pd.DataFrame) -> list[str]:
    """The selection rules of a run's jobs (``defaults`` where a record names none), sorted."""
    if jobs.empty or "selection" not in jobs:
        return [DEFAULT_SELECTION]
    return sorted(set(jobs["selection"].fillna(DEFAULT_SELECTION)))


def _versions_by(jobs: pd.DataFrame, key: str, value: str) -> dict[str, list[str]]:
    if jobs.empty or key not in jobs or value not in jobs:
        return {}
    part = jobs[[key, value]].dropna()
    return {str(k): sorted({str(v) for v in g[value]}) for k, g in part.groupby(key, sort=True)}


def provenance(results: RunResults, level: float = 0.95) -> dict[str, Any]:
    """Where a run's numbers come from, as data: the suite (name, hash, root seed, replicates, subject), the
    package, scorer, generator and method versions the records were made with (and the installed ones), the
    selection rules, the interval level, the aggregation and the machine fingerprint(s) of the run records."""
    from cowbench import __version__
    from cowbench.scores import scorer_version

    manifest = results.manifest or {}
    suite = manifest.get("suite") or {}
    jobs = results.jobs
    made = sorted({str(v) for r in results.runs if (v := (r.get("versions") or {}).get("cowbench"))})
    fingerprints: list[Any] = []
    for run in results.runs:
        fp = run.get("fingerprint")
        if isinstance(fp, dict) and fp not in fingerprints:
            fingerprints.append(fp)
    return {
        "suite": suite.get("name"), "suite_hash": manifest.get("suite_hash"),
        "root_seed": suite.get("root_seed"), "replicates": suite.get("replicates"),
        "subject": suite.get("subject"),
        "package": {"name": "cowbench", "versions": made, "installed": __version__},
        "scorer": {"versions": sorted(set(jobs["scorer"].dropna())) if "scorer" in jobs else [],
                   "installed": scorer_version()},
        "generators": _versions_by(jobs, "generator", "generator_version"),
        "methods": _versions_by(jobs, "method", "method_version"),
        "selection": selection_rules(jobs), "level": level,
        "aggregation": AGGREGATION,
        "machine": machine_line(results.runs), "fingerprints": fingerprints,
    }


#: How the across-scenario table aggregates (every format states it).
AGGREGATION = ("pairwise win rate over the scenarios both methods of a pair were ranked in (ties count half), "
               f"ranked within each access level among settings ranked in at least {MIN_COVERAGE:.0%} of the "
               "track's tables; coverage stated per setting")


@dataclass
class Tables:
    """Everything a report shows, built once from a run's records; every format renders from this."""

    results: RunResults
    scores: pd.DataFrame
    level: float
    summary: pd.DataFrame
    ranks: pd.DataFrame
    stability: pd.DataFrame
    across: pd.DataFrame
    resolvable: pd.DataFrame
    missing: pd.DataFrame
    told: pd.DataFrame
    provenance: dict[str, Any] = field(default_factory=dict)


def results_from_frame(frame: pd.DataFrame, missing: pd.DataFrame | None = None,
                       manifest: dict[str, Any] | None = None) -> RunResults:
    """A `RunResults` from a tidy frame alone (its jobs are the frame's jobs): for tables built outside a run."""
    frame = add_entries(frame) if "entry" not in frame else frame
    jobs = frame.drop(columns=["metric", "value"]).drop_duplicates("job_id").reset_index(drop=True)
    if missing is None:
        missing = pd.DataFrame(columns=[*jobs.columns, "metric", "reason"])
    elif "entry" not in missing:
        missing = missing.assign(entry=missing["job_id"].map(jobs.set_index("job_id")["entry"]))
    return RunResults(frame, jobs, missing, [], manifest, [])


def build_tables(results: RunResults, level: float = 0.95, *, scores: pd.DataFrame | None = None) -> Tables:
    """Summary, ranks, P(best), across-scenario win rates, resolvable differences and missing counts."""
    scores = score_table() if scores is None else scores
    summary = summarize(results.frame, level, scores=scores)
    ranks = rank_methods(summary, scores=scores)
    return Tables(results=results, scores=scores, level=level, summary=summary, ranks=ranks,
                  stability=rank_stability(results.frame, ranks, scores=scores), across=across_scenarios(ranks),
                  resolvable=resolvable_differences(results.frame, scores=scores),
                  missing=missing_counts(results.missing, results.jobs), told=told_detectors(results.jobs),
                  provenance=provenance(results, level))



TIDY_COLUMNS = ["scenario", "family", "track", "access", "method", "hparams", "selection", "entry", "told", "metric",
                "primary", "higher_is_better", "mean", "lo", "hi", "n", "interval", "rank", "p_best", "unranked",
                "best"]


def tidy_cells(tables: Tables) -> pd.DataFrame:
    """One row per (scenario, method, hyperparameters, selection rule, metric): the summary cell with its track,
    the setting's rank and P(best) in that (scenario, track) table and why it has none (``unranked``).

    The rank belongs to the setting in the table, so every metric row of a track repeats it; ``primary``
    marks the metric it was ranked on. ``best``: the cell's mean ties the best mean of the metric among the
    ranked settings of its (scenario, track) table (what every format prints in bold; a table without ranks,
    and a told setting, has no best). CSV, JSON, LaTeX and HTML print exactly these rows.
    """
    summary, scores = tables.summary, tables.scores
    if summary.empty:
        return pd.DataFrame(columns=TIDY_COLUMNS)
    cells = summary.assign(
        family=summary["scenario"].map(scenario_family),
        track=summary["metric"].map(lambda m: _metric_info(scores, m)["track"]),
        primary=summary["metric"].map(lambda m: bool(_metric_info(scores, m)["primary"])),
        higher_is_better=summary["metric"].map(lambda m: bool(_metric_info(scores, m)["higher_is_better"])))
    keys = ["scenario", "track", "entry"]
    cells = cells.merge(tables.ranks[[*keys, "rank", "unranked"]], on=keys, how="left")
    cells = cells.merge(tables.stability[[*keys, "p_best"]], on=keys, how="left")
    cells["unranked"] = cells["unranked"].fillna("")
    cells["best"] = False
    for _, block in cells[cells["rank"].notna()].groupby(["scenario", "metric"]):
        hib = bool(block["higher_is_better"].iloc[0])
        top = block["mean"].max() if hib else block["mean"].min()
        cells.loc[block.index, "best"] = np.abs(block["mean"] - top) <= tie_tolerance(block["mean"], top)
    order = {t: i for i, t in enumerate(TRACK_TITLES)}
    keys_frame = pd.DataFrame({"s": cells["scenario"], "t": cells["track"].map(lambda t: order.get(t, len(order))),
                               "a1": cells["access"].str.count(r"\+"), "a2": cells["access"],
                               "r": cells["rank"].fillna(math.inf), "e": cells["entry"], "m": cells["metric"]})
    index = keys_frame.sort_values(["s", "t", "a1", "a2", "r", "e", "m"]).index
    return cells.loc[index, TIDY_COLUMNS].reset_index(drop=True)
