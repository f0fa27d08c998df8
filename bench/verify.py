"""``cowbench verify``: rerun stored jobs and check that each cell and every confident rank reproduces.

A stored job is rerun from its spec (same seeds, same versions) in a temporary directory, with a fresh
cache, so the subject and oracle models are retrained too; the stored directory is never written. Each
(scenario, method setting, metric) cell passes when every rerun replicate lies within the metric's
tolerance of the stored value; the tables pass when no rank whose P(best) was at least
`CONFIDENT_P_BEST` changes once the rerun values replace the stored ones.

Tolerances (measured on the smoke suite's 87 job-metric values, see ``docs/reproducibility.md``): on one machine
reruns are bit-identical. With float64 training, ``MKL_CBWR`` and ATen's baseline kernels, emulating
another CPU (MKL's AVX2 or SSE4.2 paths, OpenBLAS's Haswell or Sandybridge kernels) changed no
accuracy-type metric and moved continuous metrics by at most 1e-16 (AVX2) and 5e-5 (Sandybridge: an
iterative solver, sklearn's L-BFGS in ``logistic``, stops at another iterate). Continuous metrics
therefore get an absolute tolerance of `DEFAULT_ABS` (1e-4: a printed 3-decimal value moves by at most
one in its last digit). Metrics that count thresholded predictions (accuracies, worst-group accuracy,
``id_drop``, ``edit_score``) jump by one unit's weight when a logit within float noise of 0 flips, so
they get `DEFAULT_UNITS` such jumps: ``units / n`` for an accuracy on ``n`` units, ``units /
n_smallest_group`` for worst-group accuracy, and ``units / n_bal`` divided by the job's oracle-minus-base
accuracy gap for ``edit_score``. 0/1 verdicts (``detect_top1``,
``abstained``, ``abstain_correct``) must match exactly.
"""

from __future__ import annotations

import math
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from cowbench.errors import InputError
from cowbench.jobs import JobSpec, ReplicateSpec, load_plugins_once, prepare, run_job
from cowbench.progress import job_label
from cowbench.registries import METHODS, SCENARIOS
from cowbench.reports.table import load_results, rank_methods, rank_stability, summarize
from cowbench.scores import scorer_version
from cowbench.store import iter_records, job_path, read_json

DEFAULT_ABS = 1e-4
DEFAULT_UNITS = 3.0
CONFIDENT_P_BEST = 0.9
DEFAULT_SAMPLE = 20

# metric -> what one flipped prediction moves it by (resolved per job from the rerun replicate, see `_scales`)
COUNT_METRICS = {"acc_id": "test_id", "acc_ood": "test_ood", "acc_bal": "test_bal", "id_drop": "test_id",
                 "wga": "smallest_group", "edit_score": "edit"}
EXACT_METRICS = frozenset({"detect_top1", "abstained", "abstain_correct"})


@dataclass(frozen=True)
class Tolerance:
    """How far a rerun value may lie from the stored one.

    Attributes
    ----------
    abs : float
        Absolute tolerance of continuous metrics.
    units : float
        For metrics that count thresholded predictions (`COUNT_METRICS`): how many single-unit flips are
        allowed; the absolute tolerance is ``units`` times the metric's change for one flip.
    """

    abs: float = DEFAULT_ABS
    units: float = DEFAULT_UNITS

    def __post_init__(self) -> None:
        for name in ("abs", "units"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float) or not (0 <= value < math.inf):
                raise InputError(f"tolerance {name} must be a finite non-negative number, got {value!r}")

    def for_metric(self, metric: str, scale: float | None) -> float:
        """The absolute tolerance of ``metric`` for a job whose one-flip change is ``scale`` (count metrics)."""
        if metric in EXACT_METRICS:
            return 0.0
        if metric in COUNT_METRICS:
            return self.abs + self.units * (scale if scale is not None and math.isfinite(scale) else math.inf)
        return self.abs

    def describe(self) -> str:
        return (f"tolerance: continuous metrics |fresh - stored| <= {self.abs:g}; "
                f"{', '.join(sorted(COUNT_METRICS))}: {self.units:g} flipped unit(s) "
                "(units/n of the split, /smallest group for wga, /(n_bal * oracle-base gap) for edit_score); "
                f"{', '.join(sorted(EXACT_METRICS))}: exact; ranks with P(best) >= {CONFIDENT_P_BEST} must not change")


@dataclass
class Rerun:
    """A rerun job: its status, metrics (None where missing), error, and one-flip scales of count metrics."""

    job_id: str
    status: str
    metrics: dict[str, float | None] = field(default_factory=dict)
    error: str | None = None
    scales: dict[str, float] = field(default_factory=dict)


@dataclass
class VerifyResult:
    """Per-cell comparison, confident-rank comparison and rerun failures of one verification."""

    cells: pd.DataFrame
    ranks: pd.DataFrame
    failed: list[Rerun]
    n_jobs: int
    n_stored: int
    tolerance: Tolerance
    n_rerun_ok: int = 0

    @property
    def ok(self) -> bool:
        # every chosen job must have come back ok: an empty comparison proves nothing
        return (self.n_rerun_ok == self.n_jobs > 0 and bool(self.cells["ok"].all())
                and not bool(self.ranks["changed"].any()) and not self.failed)


# -- selecting and rebuilding jobs ---------------------------------------------------------------------------


def job_spec_from_record(record: dict[str, Any]) -> Any:
    """The `JobSpec` of a stored record; `InputError` if it does not hash to the record's id or the installed
    cowbench has other generator, subject, method or scorer versions (the rerun would measure something else)."""
    from cowbench.subject import SUBJECT_VERSION

    spec = record["spec"]
    versions = spec.get("versions") or {}
    rspec = ReplicateSpec(spec["scenario"], spec["replicate"], spec["root_seed"], spec["subject"])
    job = JobSpec(rspec, spec["method"], spec.get("hparams") or {}, versions.get("method"), versions.get("scorer"),
                  loeo=bool(spec.get("loeo", False)),  # jobs of a suite that selects by loeo carry the flag
                  plugins=tuple(spec.get("plugins", ())))  # a run with plugins: their hashes are in the id
    if job.id != record["job_id"]:
        raise InputError(f"job {record['job_id'][:12]}: its spec does not hash to its id (another record format)")
    installed = {
        "generator " + spec["scenario"]["generator"]: (SCENARIOS.get(spec["scenario"]["generator"]).version,
                                                       spec["scenario"].get("version")),
        "subject": (SUBJECT_VERSION, spec["subject"].get("version")),
        "method " + spec["method"]: (METHODS.get(spec["method"]).version, versions.get("method")),
        "scorer": (scorer_version(), versions.get("scorer")),
    }
    stale = [f"{what} {stored} (installed {now})" for what, (now, stored) in installed.items() if now != stored]
    if stale:
        raise InputError(f"the results were made by other versions ({'; '.join(stale)}): verify with the cowbench "
                         "that made them, or rerun the suite")
    return job


def select_jobs(job_ids: Sequence[str], sample: int | None, seed: int) -> list[str]:
    """All ``job_ids`` (``sample`` None) or a seeded sample of ``sample`` of them, in sorted order."""
    ids = sorted(job_ids)
    if sample is None or sample >= len(ids):
        return ids
    if sample < 1:
        raise InputError(f"--sample must be a positive integer, got {sample}")
    rng = np.random.default_rng(seed)
    return sorted(rng.choice(ids, size=sample, replace=False).tolist())


# -- rerunning ------------------------------------------------------------------------------------------------


def _scales(rep: Any) -> dict[str, float]:
    """What one flipped prediction moves each count metric by, on this replicate's test splits."""
    from cowbench.models import accuracy

    data = rep.data
    scales = {name: 1.0 / len(getattr(data, name).y) for name in ("test_id", "test_ood", "test_bal")
              if getattr(data, name, None) is not None and len(getattr(data, name).y)}
    groups = np.asarray(data.test_ood.group)
    counts = np.unique(groups, return_counts=True)[1] if len(groups) else np.array([])
    if counts.size:
        scales["smallest_group"] = 1.0 / float(counts.min())
    if "test_bal" in scales:
        try:
            gap = accuracy(rep.oracle, data.test_bal.x, data.test_bal.y) - accuracy(rep.subject, data.test_bal.x,
                                                                                    data.test_bal.y)
            scales["edit"] = scales["test_bal"] / abs(gap) if gap else math.inf
        except Exception:  # a regression subject has no accuracy; edit_score is then missing anyway
            scales["edit"] = math.inf
    return {metric: scales[src] for metric, src in COUNT_METRICS.items() if src in scales}


def _rerun_group(args: tuple[list[Any], str, tuple[str, ...]]) -> list[Rerun]:
    """Rerun the jobs of one replicate (in a worker process) and read back their records."""
    specs, out, plugins = args
    load_plugins_once(plugins)
    cache = Path(out) / "cache"
    results = []
    for spec in specs:
        run_job(spec, Path(out), cache, plugins, wait=True)
        record = read_json(job_path(Path(out), spec.id))
        rerun = Rerun(spec.id, record["status"], dict(record.get("metrics") or {}), record.get("error"))
        if rerun.status == "ok":
            rerun.scales = _scales(prepare(spec.replicate, cache))  # the replicate is cached: no retraining
        results.append(rerun)
    return results


def rerun_jobs(specs: Sequence[Any], n_jobs: int = 1, plugins: Sequence[str] = (),
               workdir: Path | None = None, progress: Callable[[int, int], None] | None = None,
               on_failure: Callable[[str], None] | None = None) -> list[Rerun]:
    """Rerun ``specs`` in a temporary directory (``workdir`` if given), grouped by replicate, on ``n_jobs``
    processes; returns one `Rerun` per spec. ``progress(done, total)`` after each replicate's batch;
    ``on_failure(name)`` for each rerun that failed, when its batch comes back."""

    by_id = {spec.id: spec for spec in specs}
    groups: dict[str, list[Any]] = {}
    for spec in specs:
        groups.setdefault(spec.replicate.id, []).append(spec)
    with tempfile.TemporaryDirectory(prefix="cowbench-verify-", dir=workdir) as tmp:
        items = [(g, tmp, tuple(plugins)) for g in groups.values()]
        if n_jobs == 1 or len(items) == 1:
            batches = map(_rerun_group, items)
        else:
            from joblib import Parallel, delayed

            batches = Parallel(n_jobs=n_jobs, return_as="generator_unordered")(delayed(_rerun_group)(i) for i in items)
        results: list[Rerun] = []
        for batch in batches:
            results.extend(batch)
            if on_failure is not None:
                for rerun in batch:
                    if rerun.status != "ok":
                        on_failure(f"{job_label(by_id.get(rerun.job_id))}: {(rerun.error or '?').splitlines()[-1]}"
                                   if rerun.job_id in by_id else rerun.job_id)
            if progress is not None:
                progress(len(results), len(specs))
    return results


# -- comparing ------------------------------------------------------------------------------------------------

CELL_COLUMNS = ["scenario", "entry", "metric", "n", "max_diff", "tolerance", "worst_replicate", "ok", "problem"]


def compare_cells(stored: pd.DataFrame, reruns: Sequence[Rerun], tolerance: Tolerance) -> pd.DataFrame:
    """Per (scenario, method setting, metric): whether every rerun job's value is within tolerance of the stored.

    ``stored`` has one row per (job, metric with a stored value) and columns ``job_id, scenario, entry,
    metric, value`` (`cowbench.reports.table.load_results`'s frame). A metric present in one run and missing in the
    other fails its cell.
    """
    by_id = {r.job_id: r for r in reruns if r.status == "ok"}
    jobs = stored.drop_duplicates("job_id").set_index("job_id")[["scenario", "entry", "replicate"]]
    values = {(j, m): v for j, m, v in zip(stored["job_id"], stored["metric"], stored["value"], strict=True)}
    rows = []
    for job_id, rerun in by_id.items():
        if job_id not in jobs.index:
            continue
        scenario, entry, replicate = jobs.loc[job_id]
        metrics = {m for (j, m) in values if j == job_id} | {m for m, v in rerun.metrics.items() if v is not None}
        for metric in sorted(metrics):
            old, new = values.get((job_id, metric)), rerun.metrics.get(metric)
            tol = tolerance.for_metric(metric, rerun.scales.get(metric))
            if old is None or new is None:
                diff, problem = math.inf, f"{'stored' if old is None else 'rerun'} value missing"
            else:
                diff, problem = abs(float(new) - float(old)), ""
            rows.append({"scenario": scenario, "entry": entry, "metric": metric, "replicate": replicate,
                         "diff": diff, "tolerance": tol, "problem": problem})
    if not rows:
        return pd.DataFrame(columns=CELL_COLUMNS)
    frame = pd.DataFrame(rows)
    frame["excess"] = frame["diff"] - frame["tolerance"]
    out = []
    for (scenario, entry, metric), block in frame.groupby(["scenario", "entry", "metric"], sort=True):
        worst = block.loc[block["excess"].idxmax()]
        problems = sorted({p for p in block["problem"] if p})
        out.append({"scenario": scenario, "entry": entry, "metric": metric, "n": len(block),
                    "max_diff": float(block["diff"].max()), "tolerance": float(worst["tolerance"]),
                    "worst_replicate": int(worst["replicate"]), "ok": bool((block["diff"] <= block["tolerance"]).all()),
                    "problem": "; ".join(problems)})
    return pd.DataFrame(out, columns=CELL_COLUMNS)


def substitute(stored: pd.DataFrame, reruns: Sequence[Rerun]) -> pd.DataFrame:
    """``stored`` with every rerun job's metrics replaced by the rerun's (missing ones dropped)."""
    fresh = {r.job_id: r for r in reruns if r.status == "ok"}
    keep = stored[~stored["job_id"].isin(fresh)]
    rows = []
    for job_id, block in stored[stored["job_id"].isin(fresh)].groupby("job_id", sort=False):
        base = block.iloc[0].drop(["metric", "value"]).to_dict()
        rows += [{**base, "metric": m, "value": float(v)} for m, v in fresh[job_id].metrics.items() if v is not None]
    return pd.concat([keep, pd.DataFrame(rows, columns=stored.columns)], ignore_index=True) if rows else keep


RANK_COLUMNS = ["scenario", "track", "entry", "p_best", "rank", "fresh_rank", "fresh_p_best", "changed"]


def confident_rank_changes(stored: pd.DataFrame, fresh: pd.DataFrame,
                           threshold: float = CONFIDENT_P_BEST) -> pd.DataFrame:
    """Every stored rank whose P(best) is at least ``threshold``, beside its rank on ``fresh``.

    Ranks and P(best) come from `cowbench.reports.table` (``summarize``, ``rank_methods``, ``rank_stability``) on
    both frames, so verify judges exactly what the report prints.
    """
    def tables(frame: pd.DataFrame) -> pd.DataFrame:
        ranks = rank_methods(summarize(frame), frame)
        stability = rank_stability(frame, ranks)
        return ranks.merge(stability, on=["scenario", "track", "entry"], how="left")

    old, new = tables(stored), tables(fresh)
    confident = old[old["p_best"] >= threshold]
    merged = confident.merge(new[["scenario", "track", "entry", "rank", "p_best"]], how="left",
                             on=["scenario", "track", "entry"], suffixes=("", "_fresh"))
    rows = []
    for r in merged.itertuples():
        fresh_rank = r.rank_fresh
        changed = not (fresh_rank == r.rank)  # NaN (no longer ranked) counts as a change
        rows.append({"scenario": r.scenario, "track": r.track, "entry": r.entry, "p_best": r.p_best,
                     "rank": r.rank, "fresh_rank": fresh_rank, "fresh_p_best": r.p_best_fresh, "changed": changed})
    return pd.DataFrame(rows, columns=RANK_COLUMNS)


# -- the whole check ------------------------------------------------------------------------------------------


def verify(results: Path, *, sample: int | None = DEFAULT_SAMPLE, seed: int = 0,
           tolerance: Tolerance | None = None, suite: str | None = None, n_jobs: int = 1,
           plugins: Sequence[str] = (), progress: Callable[[int, int], None] | None = None,
           on_failure: Callable[[str], None] | None = None) -> VerifyResult:
    """Rerun ``sample`` seeded-random stored jobs of ``results`` (all if None) and compare; see the module doc.

    Raises `InputError` for a directory with no finished jobs or results made by other versions.
    """
    tolerance = tolerance or Tolerance()
    results = Path(results)
    if not results.is_dir():
        raise InputError(f"results directory {str(results)!r} does not exist")
    load_plugins_once(tuple(plugins))
    res = load_results(results, suite, select=False)  # every stored job once, whichever rule chose it
    stored = res.frame
    if res.jobs.empty:
        planned = len(res.manifest["jobs"]) if res.manifest else 0
        raise InputError(f"{str(results)!r} holds no finished (ok) job records to verify"
                         + (f" (its manifest plans {planned} jobs, but jobs/*/*.json are absent: verify needs the "
                            "stored job files)" if planned else ""))
    chosen = set(select_jobs(res.jobs["job_id"].tolist(), sample, seed))
    records = {r["job_id"]: r for r in iter_records(results) if r["job_id"] in chosen}
    specs = [job_spec_from_record(records[j]) for j in sorted(chosen)]
    reruns = rerun_jobs(specs, n_jobs=n_jobs, plugins=plugins, progress=progress, on_failure=on_failure)
    cells = compare_cells(stored, reruns, tolerance)
    ranks = confident_rank_changes(stored, substitute(stored, reruns))
    failed = [r for r in reruns if r.status != "ok"]
    n_ok = sum(r.status == "ok" for r in reruns)
    return VerifyResult(cells, ranks, failed, len(specs), len(res.jobs), tolerance, n_ok)


def render(result: VerifyResult, show_all: bool = False) -> str:
    """The verification as text: tolerances, cells out of tolerance (all cells with ``show_all``), rank changes."""
    cells, ranks = result.cells, result.ranks
    bad = cells[~cells["ok"]]
    lines = [f"reran {result.n_jobs} of {result.n_stored} stored job(s)", result.tolerance.describe(), ""]
    shown = cells if show_all else bad
    if not shown.empty:
        lines += ["| scenario | method | metric | n | max |fresh - stored| | tolerance | ok |",
                  "|---|---|---|---|---|---|---|"]
        for r in shown.itertuples():
            note = f" ({r.problem})" if r.problem else (f" (replicate {r.worst_replicate})" if not r.ok else "")
            lines.append(f"| {r.scenario} | {r.entry} | {r.metric} | {r.n} | {r.max_diff:.3g} | {r.tolerance:.3g} "
                         f"| {'yes' if r.ok else 'NO' + note} |")
        lines.append("")
    changed = ranks[ranks["changed"]]
    for r in changed.itertuples():
        lines.append(f"rank changed: {r.track} on {r.scenario}: {r.entry} was rank {r.rank:g} with P(best) "
                     f"{r.p_best:.2f}, now {'unranked' if pd.isna(r.fresh_rank) else f'{r.fresh_rank:g}'}")
    for r in result.failed:
        lines.append(f"rerun failed: job {r.job_id[:12]}: {r.error}")
    lines.append(f"{len(cells) - len(bad)} of {len(cells)} cell(s) within tolerance; "
                 f"{len(ranks) - len(changed)} of {len(ranks)} confident rank(s) unchanged; "
                 f"{len(result.failed)} rerun failure(s): {'PASS' if result.ok else 'FAIL'}")
    return "\n".join(lines)
