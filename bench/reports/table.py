"""The one table every report format renders: job records -> a tidy frame -> aggregated tables.

Job records become a tidy frame (one row per job and metric); per (scenario, access, method,
hyperparameter setting, selection rule, metric) the mean over replicates with a 95% interval that cannot
leave the metric's range; per (scenario, track, selection rule) and league ranks that a paired test backs
(`cowbench.stats`: a method is ranked only where it beats the best control, and shares the leader's rank
"1=" where the test cannot separate it from the leader); P(best) from a paired bootstrap over replicates;
pairwise win rates across scenarios on the scenarios both methods of a pair share (ties half), ranked
within each league and access level; the minimum resolvable difference between the two leading methods of
each league; and the provenance every format prints. Formats (`cowbench.reports`) only render `Tables`;
none computes a number.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import math
import re
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache
from itertools import combinations
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from cowbench import ledger
from cowbench.access import ACCESS_LEVELS, TELLING_ROUTES
from cowbench.errors import InputError
from cowbench.registries import METHODS, SCENARIOS
from cowbench.scores import all_scores, scorer_version
from cowbench.selection import RULES, apply_rules, check_rules, selections
from cowbench.stats import ALPHA, RANK_RULE, holm, min_resolvable_difference, paired_t_test
from cowbench.store import iter_records, read_json, run_path, select_manifest
from cowbench.version import __version__

TRACK_TITLES = {"world": "World recovery", "model": "Model recovery", "detect": "Detection", "edit": "Edit",
                "discover": "Discovery"}
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
RANK_COLUMNS = ["scenario", "track", "entry", "method", "access", "rank", "win_rate", "unranked", "selection",
                "league", "rank_label", "bold", "control", "gate", "p_control", "p_leader"]

#: The league of a method told nothing about which variable is spurious, and of one told it (world, model and
#: detection tracks; on the edit track, where every method is told the target, the leagues are access levels).
UNTOLD_LEAGUE = "not told"
TOLD_LEAGUE = "told"
#: Routes the audit hook records in ``told`` (``audit:open``, ...): such a job is unranked in every track.
AUDIT_PREFIX = "audit:"


# ----------------------------------------------------------------------------------------------------------
# Metric metadata
# ----------------------------------------------------------------------------------------------------------

def score_table() -> pd.DataFrame:
    """One row per registered metric: track, direction, primary, range (``lower``, ``upper``), ``chance``
    (NaN where the metric declares none) and ``binary`` (None where the metric does not declare it)."""
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


#: The selection rule that picks hyperparameters on test data: its rows are an upper bound, labelled so.
ORACLE_RULE = "oracle"
UPPER_BOUND_MARK = " (upper bound)"

#: What a control's row label carries, in every format: it is shown to read the others against, not ranked.
CONTROL_MARK = " (control)"


@cache
def is_control(method: str) -> bool:
    """Whether the registered method ``method`` is a control (class attribute ``control``: no edit, random
    ablations): scored and shown, not ranked, no P(best), not in the across-scenario win rates. A name no
    registry knows (a method of a plugin not loaded now, a test's made-up name) is not a control."""
    try:
        return bool(getattr(METHODS.get(method), "control", False))
    except InputError:
        return False


def add_entries(frame: pd.DataFrame) -> pd.DataFrame:
    """Fill in ``hparams``, ``told``, ``selection`` and ``entry`` where a frame lacks them.

    ``entry`` is the row identity: the method's name, followed by its hyperparameters where the frame holds
    more than one setting of it, and by its selection rule in brackets where it holds more than one rule
    for it; the oracle rule's rows (chosen on test data) are marked `UPPER_BOUND_MARK`, a control's
    `CONTROL_MARK` (a registered control, or a true ``control`` column). Each setting is its own row:
    settings are never pooled as if they were replicates.
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
    control = (frame["control"].fillna(False).astype(bool) if "control" in frame
               else pd.Series(False, index=frame.index))
    frame["entry"] = [(f"{m}({h})" if m in several else m) + (f" [{s}]" if m in several_rules else "")
                      + (UPPER_BOUND_MARK if s == ORACLE_RULE else "") + (CONTROL_MARK if c or is_control(m) else "")
                      for m, h, s, c in zip(frame["method"], frame["hparams"], frame["selection"], control,
                                            strict=True)]
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
    # one line on the folder's ledger (`cowbench.ledger.head_line`): its head hash identifies the stored history
    ledger: str | None = None


def _manifest(out: Path, suite: str | None) -> dict[str, Any] | None:
    # validated; one per suite (manifests/<name>.json) or an old single manifest.json; InputError if ambiguous
    return select_manifest(out, suite)


def load_results(out: Path, suite: str | None = None, *, select: bool = True) -> RunResults:
    """Read the records of one suite's planned jobs under ``out`` (``suite``: which, if there are several).

    ``select``: apply the manifest's selection rules (`apply_selection`); False gives every
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
        job["run_mode"] = str(rec.get("run_mode") or "blind")
        # every plugin file or module the job's run loaded, with its source hash (issue 17): the header lists them
        job["plugins"] = ",".join(sorted(f"{p.get('plugin')} ({str(p.get('sha256'))[:12]})"
                                         for p in rec.get("plugins") or [] if isinstance(p, dict)))
        if run_path(out, rec["job_id"]).is_file():
            try:
                runs.append(read_json(run_path(out, rec["job_id"])))
            except (OSError, ValueError):  # ValueError: undecodable or non-JSON constants
                pass  # run records are provenance only; a broken one must not hide the results
        elif isinstance(rec.get("provenance"), dict):  # a clone has no runs/: the job keeps its own provenance
            runs.append(rec["provenance"])
    job_columns = ["job_id", "scenario", "method", "hparams", "access", "told", "replicate", "detects", "scorer",
                   "selection", "generator", "generator_version", "method_version", "run_mode", "plugins"]
    jobs_frame = pd.DataFrame(jobs, columns=job_columns)
    # entries are decided over every job, so a method's label does not depend on which metric is looked at
    jobs_frame = add_entries(jobs_frame)
    entry = jobs_frame.set_index("job_id")["entry"]
    frame = pd.DataFrame(rows, columns=[c for c in FRAME_COLUMNS if c != "entry"])
    frame.insert(4, "entry", frame["job_id"].map(entry).astype(object))
    missing_frame = pd.DataFrame(missing, columns=[*job_columns, "metric", "reason"])
    missing_frame["entry"] = missing_frame["job_id"].map(entry).astype(object)
    res = RunResults(frame, jobs_frame, missing_frame, failed, manifest, runs, ledger.head_line(out))
    return apply_selection(res) if select else res


def _job_level(res: Any, trials: Mapping[str, int]) -> pd.DataFrame:
    """One row per ok job of ``res`` (`RunResults`) with the selection metrics as columns and the draw index."""
    metrics = [m for m in RULES.values() if m is not None]
    part = res.frame[res.frame["metric"].isin(metrics)]
    wide = part.pivot_table(index="job_id", columns="metric", values="value", aggfunc="first")
    jobs = res.jobs.drop(columns=[c for c in ("selection", "entry") if c in res.jobs])
    out = jobs.set_index("job_id").join(wide.reindex(columns=metrics)).reset_index()
    out["trial"] = out["job_id"].map(lambda j: int(trials.get(j, 0)))
    return out


def apply_selection(res: Any) -> Any:
    """A `RunResults` whose rows are the jobs each of the manifest's rules selected, once per rule.

    The manifest's ``selection`` (default ``["defaults"]``) and ``trials`` (job id -> draw index) say what to
    do; a run with neither is returned unchanged. Each selected job's rows carry ``selection`` (the rule) and
    ``selected_hparams`` (its setting); ``hparams`` is emptied for every rule but ``defaults``, so one row
    gathers a rule's choices over replicates whatever setting each replicate chose; ``access`` and ``told``
    are as the rule set them; ``entry`` is recomputed (`add_entries`) and the oracle's is marked as an upper
    bound. The manifest copy gains ``selections`` (`cowbench.selection.selections`: the setting each rule chose
    per replicate, computed here at report time from the stored jobs, so it is never out of date) and
    ``selection_skipped`` (why a rule gave no row), which are also added to its ``skipped`` list.
    """
    manifest = copy.deepcopy(res.manifest) if res.manifest else {}
    rules = check_rules(manifest.get("selection") or ["defaults"])
    trials = manifest.get("trials") or {}
    if rules == ["defaults"] and not trials:
        return res
    skipped: list[dict[str, Any]] = []
    chosen = apply_rules(_job_level(res, trials), rules, skipped=skipped)
    chosen.loc[chosen["selection"] != "defaults", "hparams"] = ""
    keyed = chosen[["job_id", "selection", "selected_hparams", "hparams", "access", "told"]]
    jobs = res.jobs.drop(columns=[c for c in ("selection", "entry", "hparams", "access", "told") if c in res.jobs])
    jobs = add_entries(jobs.merge(keyed, on="job_id", how="inner"))  # marks the oracle's rows as an upper bound
    entries = jobs[["job_id", "selection", "entry"]]
    columns = ["selection", "entry", "hparams", "access", "told"]

    def expand(table: pd.DataFrame) -> pd.DataFrame:
        base = table.drop(columns=[c for c in columns if c in table])
        return base.merge(keyed, on="job_id", how="inner").merge(entries, on=["job_id", "selection"], how="left")

    manifest["selections"] = selections(chosen)
    manifest["selection_skipped"] = skipped
    # the report lists them with the pairs the suite skipped (by scenario spec), once per (scenario, method, rule)
    specs = {scenario_label(spec): spec for spec in (manifest.get("suite") or {}).get("scenarios", [])}
    listed = {(scenario_label(s["scenario"]), s["method"]) for s in manifest.get("skipped", [])
              if str(s.get("reason", "")).startswith("no loeo selection")}
    manifest["skipped"] = list(manifest.get("skipped", [])) + [
        {"scenario": specs[s["scenario"]], "method": s["method"], "reason": f"no {s['selection']} row: {s['reason']}"}
        for s in skipped if s["scenario"] in specs and (s["selection"] != "loeo" or (s["scenario"], s["method"])
                                                        not in listed)]
    return dataclasses.replace(res, frame=expand(res.frame), jobs=jobs, missing=expand(res.missing),
                               manifest=manifest)


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


def _flags(block: pd.DataFrame) -> tuple[pd.Series, pd.Series]:
    """(control, audit) per row of a summary or frame block: a control by its ``control`` column where the
    frame has one (constructed tables) or else by its registered class; audited where ``told`` names an
    ``audit:`` route."""
    control = block["method"].map(is_control).astype(bool)
    if "control" in block:
        control = control | block["control"].fillna(False).astype(bool)
    audit = block["told"].fillna("").map(lambda t: bool(audit_routes(t))).astype(bool)
    return control, audit


def audit_routes(told: str) -> list[str]:
    """The ``audit:`` routes of a ``told`` string: the audit hook saw the method reach outside its task."""
    return sorted(r for r in str(told).split(",") if r.startswith(AUDIT_PREFIX))


def telling_routes(told: str) -> list[str]:
    """The routes of a ``told`` string that name the spurious variable (every route but the audit hook's)."""
    return sorted(r for r in str(told).split(",") if r and not r.startswith(AUDIT_PREFIX))


def league_of(track: str, access: str, told: str) -> str:
    """The league a setting is ranked in: on the edit track, where every method is told the target, its access
    level; elsewhere `TOLD_LEAGUE` for a method told the spurious variable, `UNTOLD_LEAGUE` otherwise."""
    if track == "edit":
        return access
    return TOLD_LEAGUE if telling_routes(told) else UNTOLD_LEAGUE


def _better(diff: float, higher_is_better: bool) -> bool:
    return diff > 0 if higher_is_better else diff < 0


def _with_defaults(df: pd.DataFrame) -> pd.DataFrame:
    """``told`` and ``selection`` filled in where a constructed frame lacks them."""
    for column, default in (("told", ""), ("selection", DEFAULT_SELECTION)):
        df = df if column in df else df.assign(**{column: default})
    return df


def _pivot(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.pivot_table(index="replicate", columns="entry", values="value", aggfunc="first")


def rank_methods(summary: pd.DataFrame, frame: pd.DataFrame | None = None, *, scores: pd.DataFrame | None = None,
                 rtol: float = TIE_RTOL, alpha: float = ALPHA) -> pd.DataFrame:
    """Per (scenario, track, selection rule): each method setting's rank on the track's primary metric, by the
    paired test of `cowbench.stats` (`RANK_RULE`).

    ``frame``: the per-replicate values the summary was made from (the test pairs replicates); a tidy frame
    passed as ``summary`` is summarised here. A control (`is_control`, or a ``control`` column) is never
    ranked (``unranked = "control"``), nor a job the audit hook flagged (``"audit"``), nor a setting with a
    value in fewer replicates than another competitor of the table (``"incomplete"``: a mean over the
    replicates a method chose to answer is not paired with the others). The others are ranked only where
    their mean is better than the best control's by the paired t-test, Holm over the table's competitors
    (``"below control"`` otherwise; ``"chance"`` where the table has no control and the gate is the metric's
    declared chance level), and a difference visible at the printed precision. Each league (`league_of`) is
    ranked on its own: the leader (best mean) and every setting whose paired difference from it is not
    significant (Holm over the league's comparisons) get rank 1 (``rank_label`` ``1=`` when shared); the
    rest get competition ranks by mean. ``bold``: the leader of a league where nobody shares its rank.
    ``p_control``, ``p_leader``: the Holm-adjusted p-values. ``win_rate``: share of the league's other ranked
    settings it beats, ties counting half.
    """
    scores = score_table() if scores is None else scores
    if frame is None:
        if "value" not in summary:
            raise ValueError("rank_methods needs the per-replicate frame: the paired test pairs replicates")
        frame = add_entries(summary) if "entry" not in summary else summary
        summary = summarize(frame, scores=scores)
    frame = add_entries(frame) if "entry" not in frame else frame
    summary, frame = _with_defaults(summary), _with_defaults(frame)
    if "control" in frame and "control" not in summary:
        flags = frame.groupby("entry")["control"].agg(lambda s: bool(s.fillna(False).astype(bool).any()))
        summary = summary.assign(control=summary["entry"].map(flags).fillna(False))
    rows = []
    for metric, info in primary_scores(scores).iterrows():
        hib = bool(info.higher_is_better)
        part = frame[frame.metric == metric]
        for (scenario, selection), block in summary[summary.metric == metric].groupby(["scenario", "selection"],
                                                                                      sort=True):
            block = block.reset_index(drop=True)
            values = _pivot(part[(part.scenario == scenario) & (part.selection == selection)])
            control, audit = _flags(block)
            league = pd.Series([league_of(info.track, a, t) for a, t in zip(block["access"], block["told"],
                                                                            strict=True)], index=block.index)
            open_ = ~control & ~audit
            incomplete = open_ & (block["n"] < block.loc[open_, "n"].max())
            competing = open_ & ~incomplete
            # the gate: the best control's per-replicate values, or the declared chance level as a constant
            gate_name, gate = None, None
            controls = block[control]
            if not controls.empty:
                best = controls["mean"].idxmax() if hib else controls["mean"].idxmin()
                gate_name = str(block.loc[best, "entry"])
                gate = values[gate_name] if gate_name in values else None
            elif not math.isnan(info.chance):
                gate_name = "chance"
                gate = pd.Series(float(info.chance), index=values.index)
            p_control = pd.Series(np.nan, index=block.index)
            passed = competing.copy()
            if gate is not None and competing.any():
                idx = block.index[competing]
                raw, diffs = [], []
                for i in idx:
                    mine = values[block.loc[i, "entry"]] if block.loc[i, "entry"] in values else None
                    if mine is None:
                        raw.append(1.0)
                        diffs.append(math.nan)
                        continue
                    diff, p, _ = paired_t_test(mine.to_numpy(), gate.reindex(mine.index).to_numpy())
                    raw.append(p)
                    diffs.append(diff)
                adjusted = holm(raw)
                p_control[idx] = adjusted
                for i, d, p in zip(idx, diffs, adjusted, strict=True):
                    passed[i] = bool(p < alpha and not math.isnan(d) and _better(d, hib)
                                     and abs(d) >= CHANCE_MARGIN)
            ranks = pd.Series(np.nan, index=block.index)
            wins = pd.Series(np.nan, index=block.index)
            labels = pd.Series("", index=block.index, dtype=object)
            bold = pd.Series(False, index=block.index)
            p_leader = pd.Series(np.nan, index=block.index)
            for _, members in block[passed].groupby(league[passed], sort=True):
                means = members["mean"].to_numpy(dtype=float)
                lead = members.index[int(np.argmax(means) if hib else np.argmin(means))]
                lead_values = values[block.loc[lead, "entry"]]
                others = [i for i in members.index if i != lead]
                shares = {lead}
                if others:
                    raw = []
                    for i in others:
                        _, p, _ = paired_t_test(values[block.loc[i, "entry"]].to_numpy(), lead_values.to_numpy())
                        raw.append(p)
                    adjusted = holm(raw)
                    for i, p in zip(others, adjusted, strict=True):
                        p_leader[i] = p
                        tie = abs(block.loc[i, "mean"] - block.loc[lead, "mean"]) <= tie_tolerance(
                            block.loc[i, "mean"], block.loc[lead, "mean"], rtol)
                        if tie or not p < alpha:
                            shares.add(i)
                by_mean = tied_ranks(means, hib, rtol)
                r = pd.Series(by_mean, index=members.index).astype(float)
                r[list(shares)] = 1.0
                ranks[members.index] = r
                counts = r.value_counts()
                for i in members.index:
                    labels[i] = f"{int(r[i])}" + ("=" if counts[r[i]] > 1 else "")
                bold[lead] = len(shares) == 1
                k = len(r)
                rv = r.to_numpy()
                beaten = (rv[None, :] > rv[:, None]).sum(axis=1)
                tied = (rv[None, :] == rv[:, None]).sum(axis=1) - 1
                wins[members.index] = (beaten + 0.5 * tied) / max(k - 1, 1)
            below = "chance" if gate_name == "chance" else "below control"
            for i, row in block.iterrows():
                reason = ("control" if control[i] else "audit" if audit[i] else "incomplete" if incomplete[i]
                          else below if not passed[i] else "")
                rows.append({"scenario": scenario, "track": info.track, "entry": row["entry"],
                             "method": row["method"], "access": row["access"], "rank": ranks[i],
                             "win_rate": wins[i], "unranked": reason, "selection": selection,
                             "league": league[i], "rank_label": labels[i], "bold": bool(bold[i]),
                             "control": bool(control[i]), "gate": gate_name or "", "p_control": p_control[i],
                             "p_leader": p_leader[i]})
    return pd.DataFrame(rows, columns=RANK_COLUMNS)


def rank_stability(frame: pd.DataFrame, ranks: pd.DataFrame | None = None, *, n_boot: int = N_BOOT_RANK,
                   seed: int = 0, scores: pd.DataFrame | None = None, rtol: float = TIE_RTOL) -> pd.DataFrame:
    """P(best) per (scenario, track, ranked method setting), within its league.

    How often the setting is best of its league on the track's primary metric when replicates are resampled
    with replacement, jointly for all settings (replicates are paired: every method sees the same data in a
    replicate); a tie within ``rtol`` splits the win. Only settings with a rank in ``ranks`` (computed from
    ``frame`` if not given) take part; tables without ranks get no P(best). Not a test: a bold cell needs the
    paired test's separation (`rank_methods`), whatever P(best) says.
    """
    scores = score_table() if scores is None else scores
    frame = add_entries(frame) if "entry" not in frame else frame
    if ranks is None:
        ranks = rank_methods(summarize(frame, scores=scores), frame, scores=scores, rtol=rtol)
    ranked = ranks[ranks["rank"].notna()]
    ranked = ranked if "selection" in ranked else ranked.assign(selection=DEFAULT_SELECTION)
    ranked = ranked if "league" in ranked else ranked.assign(league="")
    frame = frame if "selection" in frame else frame.assign(selection=DEFAULT_SELECTION)
    rows = []
    for metric, info in primary_scores(scores).iterrows():
        part = frame[frame.metric == metric]
        for (scenario, selection), block in part.groupby(["scenario", "selection"], sort=True):
            mine = ranked[(ranked.scenario == scenario) & (ranked.track == info.track)
                          & (ranked.selection == selection)]
            for _, league in mine.groupby("league", sort=True):
                sub = block[block.entry.isin(set(league["entry"]))]
                if sub.empty:
                    continue
                table = _pivot(sub)
                values = table.to_numpy(dtype=float)  # (replicates, settings), NaN where a job is missing
                rng = np.random.default_rng(seed)  # per league: its P(best) does not depend on the others
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


ACROSS_COLUMNS = ["track", "entry", "method", "access", "league", "win_rate", "contests", "scenarios", "tables", "rank",
                  "unranked", "selection"]

#: A setting is ranked across scenarios only if it was ranked in at least this share of the track's tables: a
#: win rate from the one scenario only an instrumental-variable method can run says little about the track.
MIN_COVERAGE = 0.5


def across_scenarios(ranks: pd.DataFrame) -> pd.DataFrame:
    """Per (track, method setting): pairwise win rate over the scenarios both methods of a pair were ranked in.

    Each pair of settings ranked in the same league of one (scenario, track) table is one contest: the better rank wins,
    an equal rank is a tie and counts half. A method is never compared on a scenario its opponent lacks,
    so differing scenario sets do not bias the rate (a mean rank would: a method ranked first in the one
    scenario only it can run would head a table of methods ranked over fifteen); ``scenarios`` (ranked in)
    against ``tables`` (the track's tables of its selection rule with a rank) states each method's coverage. ``rank``:
    by win rate within the track, selection rule, league and access level (one rule per table: a setting chosen on
    test data never outranks one chosen on validation data), equal rates sharing a rank, only for settings ranked in
    at least
    `MIN_COVERAGE` of the track's tables (``unranked = "coverage"`` otherwise, ``"no contest"`` without an
    opponent); rows are ordered by track, league, access level (fewer levels first), rank, then wider coverage.
    """
    ranked = ranks[ranks["rank"].notna()]
    ranked = ranked if "selection" in ranked else ranked.assign(selection=DEFAULT_SELECTION)
    ranked = ranked if "league" in ranked else ranked.assign(league="")
    score: dict[tuple[str, str], float] = defaultdict(float)
    contests: dict[tuple[str, str], int] = defaultdict(int)
    # contests only within one league of one (scenario, track, selection rule) table, as ranked
    for (_, track, _, _), block in ranked.groupby(["scenario", "track", "selection", "league"], sort=True):
        r = dict(zip(block["entry"], block["rank"], strict=True))
        for a, b in combinations(sorted(r), 2):
            for x, y in ((a, b), (b, a)):
                contests[(track, x)] += 1
                score[(track, x)] += 1.0 if r[x] < r[y] else 0.5 if r[x] == r[y] else 0.0
    if ranked.empty:
        return pd.DataFrame(columns=ACROSS_COLUMNS)
    tables = ranked.groupby(["track", "selection"])["scenario"].nunique()
    meta = ranked.groupby(["track", "entry"]).agg(method=("method", "first"), access=("access", "first"),
                                                  league=("league", "first"), selection=("selection", "first"),
                                                  scenarios=("scenario", "nunique")).reset_index()
    rows = []
    for r in meta.itertuples():
        n = contests.get((r.track, r.entry), 0)
        rows.append({"track": r.track, "entry": r.entry, "method": r.method, "access": r.access,
                     "league": r.league, "win_rate": score[(r.track, r.entry)] / n if n else math.nan, "contests": n,
                     "scenarios": int(r.scenarios), "tables": int(tables[(r.track, r.selection)]),
                     "selection": r.selection})
    agg = pd.DataFrame(rows, columns=ACROSS_COLUMNS)
    covered = agg["scenarios"] >= MIN_COVERAGE * agg["tables"]
    agg["unranked"] = np.where(agg["win_rate"].isna(), "no contest", np.where(covered, "", "coverage"))
    for _, block in agg.groupby(["track", "selection", "league", "access"]):
        rated = block[block["unranked"] == ""]
        if not rated.empty:
            agg.loc[rated.index, "rank"] = tied_ranks(rated["win_rate"].to_numpy(), higher_is_better=True)
    agg["rank"] = agg["rank"].astype(float)
    order = {t: i for i, t in enumerate(TRACK_TITLES)}
    keys = pd.DataFrame({"t": agg["track"].map(lambda t: order.get(t, len(order))), "s": agg["selection"],
                         "l": agg["league"], "a1": agg["access"].str.count(r"\+"), "a2": agg["access"],
                         "r": agg["rank"].fillna(math.inf), "c": -agg["scenarios"], "e": agg["entry"]})
    return agg.loc[keys.sort_values(["t", "s", "l", "a1", "a2", "r", "c", "e"]).index].reset_index(drop=True)


LEADING_COLUMNS = ["track", "metric", "scenario", "selection", "league", "a", "b", "n_pairs", "mean_diff", "sd_diff",
                   "n", "mrd"]


def leading_pairs(frame: pd.DataFrame, ranks: pd.DataFrame | None = None, *, n: int | None = None,
                  scores: pd.DataFrame | None = None, ranked_only: bool = True) -> pd.DataFrame:
    """Per (scenario, track, selection rule, league): the two leading settings (best means among the league's
    ranked settings; with ``ranked_only`` False among its competitors, ranked or not: no control, no audited
    job, no incomplete setting) and the paired differences
    of their primary metric over the replicates they share: mean, s.d. (ddof 1) and the smallest difference
    ``n`` replicates resolve (`cowbench.stats.min_resolvable_difference`; default ``n``: the pairs' count).

    These are the differences a paper reports; a pooled figure over every pair of a table is dominated by
    broken methods and says little about them.
    """
    scores = score_table() if scores is None else scores
    frame = _with_defaults(add_entries(frame) if "entry" not in frame else frame)
    if ranks is None:
        ranks = rank_methods(summarize(frame, scores=scores), frame, scores=scores)
    summary_means = frame.groupby(["scenario", "selection", "entry", "metric"])["value"].mean()
    # a claim "A beats B" is made about ranked methods: those that beat the control (unranked == "")
    open_ = ranks[ranks["unranked"].isin([""] if ranked_only else ["", "below control", "chance"])]
    rows = []
    for metric, info in primary_scores(scores).iterrows():
        part = frame[frame.metric == metric]
        mine = open_[open_.track == info.track]
        for (scenario, selection, league), block in mine.groupby(["scenario", "selection", "league"], sort=True):
            if len(block) < 2:
                continue
            means = {e: float(summary_means.get((scenario, selection, e, metric), math.nan)) for e in block.entry}
            order = sorted(means, key=lambda e: (-means[e] if info.higher_is_better else means[e], e))
            a, b = order[:2]
            table = _pivot(part[(part.scenario == scenario) & (part.selection == selection)
                                & part.entry.isin([a, b])])
            if a not in table or b not in table:
                continue
            d = (table[a] - table[b]).dropna().to_numpy(dtype=float)
            sd = float(np.std(d, ddof=1)) if len(d) >= 2 else math.nan
            reps = len(d) if n is None else n
            rows.append({"track": info.track, "metric": metric, "scenario": scenario, "selection": selection,
                         "league": league, "a": a, "b": b, "n_pairs": len(d),
                         "mean_diff": float(np.mean(d)) if len(d) else math.nan, "sd_diff": sd, "n": reps,
                         "mrd": min_resolvable_difference(sd, reps) if not math.isnan(sd) else math.nan})
    return pd.DataFrame(rows, columns=LEADING_COLUMNS)


def resolvable_differences(frame: pd.DataFrame, ranks: pd.DataFrame | None = None, *, n: int | None = None,
                           scores: pd.DataFrame | None = None) -> pd.DataFrame:
    """Per track: the minimum difference of its primary metric that ``n`` paired replicates resolve between
    the two leading settings of a league (`leading_pairs`), as ``cowbench reliability`` computes it.

    ``sd_diff``: the s.d. of the per-replicate difference, pooled over the track's leading pairs (variances
    weighted by their degrees of freedom); ``mrd``: `cowbench.stats.min_resolvable_difference` of it at ``n``
    replicates (default: the most common replicate count of the track's cells); ``mrd_max``: the largest
    pair's own figure (the pair hardest to resolve); ``pairs``: how many leading pairs.
    """
    scores = score_table() if scores is None else scores
    frame = add_entries(frame) if "entry" not in frame else frame
    pairs = leading_pairs(frame, ranks, scores=scores)
    rows = []
    for metric, info in primary_scores(scores).iterrows():
        part = frame[frame.metric == metric]
        if part.empty:
            continue
        counts = part.groupby(["scenario", "entry"]).size()
        reps = int(counts.mode().max()) if n is None else n
        mine = pairs[(pairs.metric == metric) & (pairs.n_pairs >= 2)]
        dof = int((mine["n_pairs"] - 1).sum())
        sum_sq = float(((mine["sd_diff"] ** 2) * (mine["n_pairs"] - 1)).sum())
        sd = math.sqrt(sum_sq / dof) if dof else math.nan
        mrd = min_resolvable_difference(sd, reps) if dof else math.nan
        worst = max((min_resolvable_difference(s, reps) for s in mine["sd_diff"]), default=math.nan)
        rows.append({"track": info.track, "metric": metric, "sd_diff": sd, "dof": dof, "n": reps, "mrd": mrd,
                     "mrd_max": worst, "pairs": len(mine)})
    return pd.DataFrame(rows, columns=["track", "metric", "sd_diff", "dof", "n", "mrd", "mrd_max", "pairs"])


def told_detectors(jobs: pd.DataFrame) -> pd.DataFrame:
    """Per (scenario, setting) of a detection method that was told the spurious variable: the routes.

    Their detection metrics are missing (or, in records without ``told``, present but unranked); the report
    names them under the scenario's detection table so their absence from the ranking is explained.
    """
    columns = ["scenario", "entry", "told"]
    if jobs.empty:
        return pd.DataFrame(columns=columns)
    detects = jobs["detects"] if "detects" in jobs else pd.Series(True, index=jobs.index)
    telling = jobs["told"].fillna("").map(lambda t: bool(telling_routes(t))).astype(bool)  # not audit: routes
    told = jobs[telling & detects.astype(bool)]
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
        "aggregation": AGGREGATION, "rank_rule": RANK_RULE,
        "machine": machine_line(results.runs), "fingerprints": fingerprints,
        "ledger": results.ledger,  # the folder's ledger head (`cowbench.ledger.head_line`)
        "plugins": sorted({p for cell in jobs.get("plugins", []) for p in str(cell).split(",") if p}),
    }


#: How the across-scenario table aggregates (every format states it).
AGGREGATION = ("pairwise win rate over the scenarios both methods of a pair were ranked in, within their "
               "league (ties count half), ranked within each selection rule, league and access level among settings "
               f"ranked in at least {MIN_COVERAGE:.0%} of the track's tables; coverage stated per setting")


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
    #: the per-pair figures behind ``resolvable`` (`leading_pairs`)
    leading: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=LEADING_COLUMNS))
    #: how ranks are decided, as every format's header states it (`cowbench.stats.RANK_RULE`)
    rank_rule: str = RANK_RULE


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
    ranks = rank_methods(summary, results.frame, scores=scores)
    return Tables(results=results, scores=scores, level=level, summary=summary, ranks=ranks,
                  stability=rank_stability(results.frame, ranks, scores=scores), across=across_scenarios(ranks),
                  resolvable=resolvable_differences(results.frame, ranks, scores=scores),
                  missing=missing_counts(results.missing, results.jobs), told=told_detectors(results.jobs),
                  provenance=provenance(results, level),
                  leading=leading_pairs(results.frame, ranks, scores=scores))



TIDY_COLUMNS = ["scenario", "family", "track", "access", "method", "hparams", "selection", "entry", "told", "metric",
                "primary", "higher_is_better", "mean", "lo", "hi", "n", "interval", "rank", "rank_label", "p_best",
                "unranked", "league", "control", "upper_bound", "bold", "best", "gate"]


def tidy_cells(tables: Tables) -> pd.DataFrame:
    """One row per (scenario, method, hyperparameters, selection rule, metric): the summary cell with its track,
    the setting's rank and P(best) in that (scenario, track, selection rule) table and why it has none.

    The rank belongs to the setting in the table, so every metric row of a track repeats it; ``primary``
    marks the metric it was ranked on. Columns a format needs beside the numbers:

    - ``rank_label``: the rank as printed: ``"1"`` (alone at the top of its league), ``"1="`` (shares the
      leader's rank: the paired test does not separate them), ``"3"``, ``"3="``; ``""`` for no rank;
    - ``unranked``: why not: ``control``, ``audit`` (the audit hook flagged the job), ``incomplete``, ``below
      control`` (not better than the best control by the paired test), ``chance`` (same, against the declared
      chance level of a table without control); ``""`` when ranked;
    - ``league``: the league the setting is ranked in (`league_of`); ``control``: a control (shown, never
      ranked); ``upper_bound``: chosen by the oracle selection rule (on test data: an upper bound, not a
      competitor of the other rules' rows);
    - ``bold``: the primary metric's cell of a league leader the paired test separates from every other
      ranked setting of its league (the one cell a format prints in bold); ``best``: the same (kept for
      formats written before ``bold``);
    - ``gate``: what a setting of the table had to beat to be ranked: the best control's entry, ``chance``
      (the declared chance level of a table without control) or ``""`` (no gate). A table whose competitors
      are all ``unranked`` ``below control`` or ``chance`` ranks nobody: a format says so.

    The rule's text for headers is `Tables.rank_rule`. CSV, JSON, LaTeX and HTML print exactly these rows.
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
    ranks = tables.ranks
    for column, default in (("rank_label", ""), ("league", ""), ("bold", False), ("control", False), ("gate", "")):
        ranks = ranks if column in ranks else ranks.assign(**{column: default})
    cells = cells.merge(ranks[[*keys, "rank", "rank_label", "unranked", "league", "bold", "control", "gate"]],
                        on=keys, how="left")
    cells = cells.merge(tables.stability[[*keys, "p_best"]], on=keys, how="left")
    cells["unranked"] = cells["unranked"].fillna("")
    cells["rank_label"] = cells["rank_label"].fillna("")
    cells["gate"] = cells["gate"].fillna("")
    no_league = cells["league"].isna()
    cells.loc[no_league, "league"] = [league_of(str(t), a, told) for t, a, told in zip(
        cells.loc[no_league, "track"], cells.loc[no_league, "access"], cells.loc[no_league, "told"], strict=True)]
    control = cells["control"].astype("boolean").fillna(False).astype(bool)
    cells["control"] = control | cells["method"].map(is_control).astype(bool)
    cells["upper_bound"] = cells["selection"] == ORACLE_RULE
    cells["bold"] = cells["bold"].astype("boolean").fillna(False).astype(bool) & cells["primary"].astype(bool)
    cells["best"] = cells["bold"]
    order = {t: i for i, t in enumerate(TRACK_TITLES)}
    keys_frame = pd.DataFrame({"s": cells["scenario"], "t": cells["track"].map(lambda t: order.get(t, len(order))),
                               "sel": cells["selection"], "l": cells["league"],
                               "a1": cells["access"].str.count(r"\+"), "a2": cells["access"],
                               "r": cells["rank"].fillna(math.inf), "e": cells["entry"], "m": cells["metric"]})
    index = keys_frame.sort_values(["s", "t", "sel", "l", "a1", "a2", "r", "e", "m"]).index
    return cells.loc[index, TIDY_COLUMNS].reset_index(drop=True)
