"""How reliable a metric is: where its reseed noise comes from, and the smallest difference between two methods
a given replicate count resolves.

The formula (`cowbench.stats.min_resolvable_difference`) is shared by the report header and by
``cowbench reliability``. Replicates are paired (every method sees the same data in a replicate), so the
relevant noise is the standard deviation of the per-replicate *difference* between two methods. The study
varies one noise source at a time (training data, test data, subject seed, fit seed) for a few pairs; the
suite's own replicates (`from_results`) give the resolution between the two leading methods of every league
and the replicate count a target needs (`suite_replicates`), without running anything.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from cowbench.determinism import deterministic
from cowbench.errors import InputError
from cowbench.jobs import ReplicateSpec, build_replicate, execute, make_job
from cowbench.registries import METHODS, SCENARIOS, get_method, make_scenario
from cowbench.reports.table import leading_pairs, load_results, score_table
from cowbench.stats import min_resolvable_difference, replicates_needed
from cowbench.store import write_text_atomic

# -- the reliability study: reseed noise per seed, and the power to tell two methods apart ------------------

#: The noise sources a replicate's score depends on, varied one at a time: the training sample (training and
#: validation splits), the test sample (test_id, test_ood, test_bal), the subject seed, the method's fit seed.
SEED_KINDS = ("train_data", "test_data", "subject", "fit")
KIND_TEXT = {"train_data": "training data", "test_data": "test data", "subject": "subject seed", "fit": "fit seed"}


def _standard_replicates() -> int:
    """The standard suite's replicate count, read from its file (``[suite] replicates``): the n every resolution
    of the study is stated at, so it follows the suite instead of a copy of its number."""
    import tomllib

    return int(tomllib.loads((Path(__file__).parent / "suites" / "standard.toml").read_text())["suite"]["replicates"])


STANDARD_REPLICATES = _standard_replicates()
#: The difference the standard suite must resolve between the two leading methods of each league, per track it
#: is chosen for (issue 16: 0.05 on the edit and model tracks); the others state the resolution they reach.
TRACK_TARGETS: dict[str, float] = {"edit": 0.05, "model": 0.05}
TARGET_DIFFERENCE = 0.05
DEFAULT_REPLICATES = 10
# two methods per track on the default cow scenario: the pair whose gap a paper would report (world: ERM
# against an invariance penalty; logistic and backdoor_env agree to 1e-4 on cow, a pair with nothing to resolve)
DEFAULT_PAIRS: dict[str, tuple[tuple[str, str], ...]] = {
    "world": (("cow", "logistic"), ("cow", "irm_linear")),
    "model": (("cow", "input_gradient"), ("cow", "grad_x_input")),
    "detect": (("cow", "env_instability"), ("cow", "icp")),
    "edit": (("cow", "erase_spurious"), ("cow", "group_reweight")),
}


@dataclass(frozen=True)
class _Unit:
    """One training replicate to build (scenario, data seed, subject seed) and, per test seed, the method runs
    to score on it: the subject and oracle are trained once and reused for every test sample."""

    scenario: str
    spec: dict[str, Any]
    subject: dict[str, Any]
    data_seed: int
    subject_seed: int
    runs: tuple[tuple[int, str, int], ...]  # (test seed, method, fit seed)


def _run_unit(unit: _Unit) -> list[dict[str, Any]]:
    """Build the unit's replicate once per test seed (one thread per pool, deterministic torch; subject and
    oracle cached in a temporary folder so they are trained once) and score each method on it."""
    import tempfile

    rows = []
    with tempfile.TemporaryDirectory(prefix="cowbench-reliability-") as folder:
        for test_seed in sorted({r[0] for r in unit.runs}):
            with deterministic(1):
                rep = build_replicate(unit.spec, unit.subject, unit.data_seed, unit.subject_seed, Path(folder),
                                      test_seed=test_seed)
            for seed, method, fit_seed in unit.runs:
                if seed != test_seed:
                    continue
                _, metrics, _ = execute(rep, METHODS.get(method)(), fit_seed)
                rows.append({"scenario": unit.scenario, "method": method, "data_seed": unit.data_seed,
                             "test_seed": test_seed, "subject_seed": unit.subject_seed, "fit_seed": fit_seed,
                             "metrics": dict(metrics)})
    return rows


def check_pairs(pairs: Mapping[str, Sequence[tuple[str, str]]]) -> dict[str, list[tuple[str, str]]]:
    """Validate ``{track: [(scenario, method), ...]}``: known tracks, scenarios and methods, each method
    declaring the track's output; `InputError` naming the first problem."""
    checked: dict[str, list[tuple[str, str]]] = {}
    for track, items in pairs.items():
        if track not in DEFAULT_PAIRS:
            raise InputError(f"unknown track {track!r}; allowed: {', '.join(DEFAULT_PAIRS)}")
        for scenario, method in items:
            if scenario not in SCENARIOS.names():
                raise InputError(f"unknown scenario {scenario!r} for track {track}; allowed: "
                                 f"{', '.join(SCENARIOS.names())}")
            if method not in METHODS.names():
                raise InputError(f"unknown method {method!r} for track {track}; see 'cowbench list methods'")
            if track not in METHODS.get(method).outputs:
                raise InputError(f"method {method!r} does not output the {track} track "
                                 f"(its outputs: {', '.join(sorted(METHODS.get(method).outputs))})")
            checked.setdefault(track, []).append((scenario, method))
    if not checked:
        raise InputError("no (track, scenario, method) pair to study")
    return checked


SEED_COLUMNS = ("data_seed", "test_seed", "subject_seed", "fit_seed")


def plan_units(pairs: Mapping[str, Sequence[tuple[str, str]]], replicates: int, root_seed: int = 0,
               subject: Mapping[str, Any] | None = None) -> tuple[list[_Unit], list[dict[str, Any]]]:
    """The replicates to build and, per (scenario, method, kind, index), which seeds it uses.

    Index ``r`` of kind ``train_data`` uses replicate r's data seed for the training splits, with replicate 0's
    test sample, subject and fit seeds; ``test_data`` replicate r's data seed for the test splits only;
    ``subject`` and ``fit`` likewise; kind ``all`` is the suite's replicate r (every seed of replicate r, test
    splits from its own sample), the one paired differences between methods are taken over. Seeds are the
    harness's own (`cowbench.jobs.ReplicateSpec`, `make_job`), so index 0 is the suite's replicate 0.
    """
    from cowbench.subject import SubjectConfig

    if isinstance(replicates, bool) or not isinstance(replicates, int) or replicates < 2:
        raise InputError(f"--replicates must be an integer >= 2 (a standard deviation needs two), got {replicates!r}")
    cfg = SubjectConfig.from_mapping(subject).to_dict()
    methods_of: dict[str, set[str]] = {}
    for items in pairs.values():
        for scenario, method in items:
            methods_of.setdefault(scenario, set()).add(method)
    plan: list[dict[str, Any]] = []
    wanted: dict[tuple[str, int, int], set[tuple[int, str, int]]] = {}
    specs: dict[str, dict[str, Any]] = {}
    for scenario, methods in methods_of.items():
        spec = make_scenario(scenario).spec
        specs[scenario] = spec
        reps = [ReplicateSpec(spec, r, root_seed, cfg) for r in range(replicates)]
        d0, s0 = reps[0].data_seed, reps[0].subject_seed
        for method in sorted(methods):
            hparams = get_method(method)().hyperparameters()
            fits = [make_job(rep, method, hparams).fit_seed for rep in reps]
            for r, rep in enumerate(reps):
                seeds = {"train_data": (rep.data_seed, d0, s0, fits[0]),
                         "test_data": (d0, rep.data_seed, s0, fits[0]),
                         "subject": (d0, d0, rep.subject_seed, fits[0]),
                         "fit": (d0, d0, s0, fits[r]),
                         "all": (rep.data_seed, rep.data_seed, rep.subject_seed, fits[r])}
                for kind, (data_seed, test_seed, subject_seed, fit_seed) in seeds.items():
                    plan.append({"scenario": scenario, "method": method, "kind": kind, "index": r,
                                 "data_seed": data_seed, "test_seed": test_seed, "subject_seed": subject_seed,
                                 "fit_seed": fit_seed})
                    wanted.setdefault((scenario, data_seed, subject_seed), set()).add((test_seed, method, fit_seed))
    units = [_Unit(scenario, specs[scenario], cfg, data_seed, subject_seed, tuple(sorted(runs)))
             for (scenario, data_seed, subject_seed), runs in sorted(wanted.items())]
    return units, plan


def run_study(pairs: Mapping[str, Sequence[tuple[str, str]]], replicates: int = DEFAULT_REPLICATES, *,
              root_seed: int = 0, n_jobs: int = 1, subject: Mapping[str, Any] | None = None,
              progress: Any = None) -> pd.DataFrame:
    """Every planned (track, scenario, method, kind, index) with the track's primary metric value (NaN if missing).

    Returns a frame with columns ``track, metric, scenario, method, kind, index, value``.
    """
    pairs = check_pairs(pairs)
    units, plan = plan_units(pairs, replicates, root_seed, subject)
    if n_jobs == 1:
        batches = map(_run_unit, units)
    else:
        from joblib import Parallel, delayed

        batches = Parallel(n_jobs=n_jobs, return_as="generator_unordered")(delayed(_run_unit)(u) for u in units)
    scored: dict[tuple[Any, ...], dict[str, Any]] = {}
    for done, rows in enumerate(batches, 1):
        for row in rows:
            scored[(row["scenario"], row["method"], *(row[c] for c in SEED_COLUMNS))] = row["metrics"]
        if progress is not None:
            progress(done, len(units))
    scores = score_table()
    primary = {scores.loc[m, "track"]: m for m in scores.index if scores.loc[m, "primary"]}
    out = []
    for track, items in pairs.items():
        metric = primary[track]
        for scenario, method in items:
            for p in plan:
                if p["scenario"] == scenario and p["method"] == method:
                    value = scored[(scenario, method, *(p[c] for c in SEED_COLUMNS))].get(metric)
                    out.append({"track": track, "metric": metric, "scenario": scenario, "method": method,
                                "kind": p["kind"], "index": p["index"],
                                "value": math.nan if value is None else float(value)})
    return pd.DataFrame(out, columns=["track", "metric", "scenario", "method", "kind", "index", "value"])


def reseed_table(values: pd.DataFrame) -> pd.DataFrame:
    """Per (track, metric, scenario, method): mean and sample s.d. (ddof 1) of the value under each seed kind.

    Columns ``mean`` (over kind ``all``), ``sd_<kind>`` and ``n_<kind>`` for the kinds of `SEED_KINDS` and
    ``all``; missing values (NaN) are left out and counted out of ``n``.
    """
    rows = []
    for (track, metric, scenario, method), block in values.groupby(["track", "metric", "scenario", "method"],
                                                                     sort=False):
        row: dict[str, Any] = {"track": track, "metric": metric, "scenario": scenario, "method": method}
        for kind in (*SEED_KINDS, "all"):
            v = block.loc[block["kind"] == kind, "value"].dropna().to_numpy(dtype=float)
            row[f"sd_{kind}"] = float(np.std(v, ddof=1)) if len(v) >= 2 else math.nan
            row[f"n_{kind}"] = len(v)
            if kind == "all":
                row["mean"] = float(np.mean(v)) if len(v) else math.nan
        rows.append(row)
    columns = ["track", "metric", "scenario", "method", "mean",
               *[f"{p}_{k}" for k in (*SEED_KINDS, "all") for p in ("sd", "n")]]
    return pd.DataFrame(rows, columns=columns)


def _sd_of_differences(block: pd.DataFrame, kind: str, a: str, b: str) -> tuple[np.ndarray, float]:
    part = block[block["kind"] == kind]
    table = part.pivot_table(index="index", columns="method", values="value", aggfunc="first")
    if a not in table or b not in table:
        return np.array([]), math.nan
    d = (table[a] - table[b]).dropna().to_numpy(dtype=float)
    return d, float(np.std(d, ddof=1)) if len(d) >= 2 else math.nan


def resolution_table(values: pd.DataFrame, n: int = STANDARD_REPLICATES,
                     target: float = TARGET_DIFFERENCE) -> pd.DataFrame:
    """Per track and pair of its methods (same scenario): the paired differences over the suite's replicates
    (kind ``all``), their s.d., the smallest difference ``n`` replicates resolve and the replicates ``target``
    needs (`min_resolvable_difference`, `replicates_needed`); and the s.d. of the same difference when one
    noise source varies alone (``sd_<kind>`` for the kinds of `SEED_KINDS`): which source the pair's noise
    comes from."""
    rows = []
    for (track, metric, scenario), block in values.groupby(["track", "metric", "scenario"], sort=False):
        methods = list(dict.fromkeys(block["method"]))  # in the order given
        for i, a in enumerate(methods):
            for b in methods[i + 1:]:
                d, sd = _sd_of_differences(block, "all", a, b)
                ok = not math.isnan(sd)
                row = {"track": track, "metric": metric, "scenario": scenario, "a": a, "b": b,
                       "n_pairs": len(d), "mean_diff": float(np.mean(d)) if len(d) else math.nan,
                       "sd_diff": sd, "n": n, "mrd": min_resolvable_difference(sd, n) if ok else math.nan,
                       "target": target, "replicates_needed": replicates_needed(sd, target) if ok else None}
                row.update({f"sd_{kind}": _sd_of_differences(block, kind, a, b)[1] for kind in SEED_KINDS})
                rows.append(row)
    columns = ["track", "metric", "scenario", "a", "b", "n_pairs", "mean_diff", "sd_diff", "n", "mrd", "target",
               "replicates_needed", *[f"sd_{k}" for k in SEED_KINDS]]
    return pd.DataFrame(rows, columns=columns)


# -- the suite's own replicates: the two leading methods of each league ---------------------------------------

def leading_resolution(leading: pd.DataFrame, n: int = STANDARD_REPLICATES,
                       targets: Mapping[str, float] | None = None) -> pd.DataFrame:
    """`cowbench.reports.table.leading_pairs` of a results directory, with the smallest difference ``n``
    replicates resolve (``mrd``) and, per track with a target (`TRACK_TARGETS`), the replicates it needs
    (``replicates_needed``; None where the pair's s.d. is unknown or past 100,000)."""
    targets = dict(TRACK_TARGETS if targets is None else targets)
    out = leading.copy()
    out["n"] = n
    out["mrd"] = [min_resolvable_difference(sd, n) if not math.isnan(sd) else math.nan for sd in out["sd_diff"]]
    out["target"] = [targets.get(t, math.nan) for t in out["track"]]
    out["replicates_needed"] = [replicates_needed(sd, tg) if not (math.isnan(sd) or math.isnan(tg)) else None
                                for sd, tg in zip(out["sd_diff"], out["target"], strict=True)]
    return out


def suite_replicates(resolution: pd.DataFrame) -> dict[str, Any]:
    """The replicate count the standard suite needs so that every leading pair of every track with a target
    resolves it (the largest ``replicates_needed``), and the pair that sets it; None without a target pair."""
    need = resolution.dropna(subset=["replicates_needed"])
    if need.empty:
        return {"replicates": None, "track": None, "scenario": None, "pair": None}
    row = need.loc[need["replicates_needed"].astype(int).idxmax()]
    return {"replicates": int(row["replicates_needed"]), "track": row["track"], "scenario": row["scenario"],
            "pair": [row["a"], row["b"]]}


def resolution_per_track(resolution: pd.DataFrame, n: int) -> pd.DataFrame:
    """Per track: how many leading pairs, the median and the largest difference ``n`` replicates resolve."""
    rows = []
    for track, block in resolution.groupby("track", sort=False):
        mrd = [min_resolvable_difference(sd, n) for sd in block["sd_diff"].dropna()]
        rows.append({"track": track, "pairs": len(mrd), "n": n,
                     "median_mrd": float(np.median(mrd)) if mrd else math.nan,
                     "max_mrd": float(np.max(mrd)) if mrd else math.nan})
    return pd.DataFrame(rows, columns=["track", "pairs", "n", "median_mrd", "max_mrd"])


def from_results(out: Path, suite: str | None = None, n: int | None = None,
                 targets: Mapping[str, float] | None = None, *, ranked_only: bool = True) -> pd.DataFrame:
    """`leading_resolution` of a results directory's stored jobs (no job is run: the suite's replicates are
    paired already); ``ranked_only``: the leading pairs among the ranked settings (those a paper compares);
    ``n``: the replicate count the resolution is stated at (default: the run's suite's, from its manifest)."""
    res = load_results(Path(out), suite)
    if n is None:
        n = int(((res.manifest or {}).get("suite") or {}).get("replicates") or STANDARD_REPLICATES)
    return leading_resolution(leading_pairs(res.frame, ranked_only=ranked_only), n, targets)


def _fmt(x: Any, digits: int = 4) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "—"
    if isinstance(x, float) and math.isinf(x):
        return "∞"
    return f"{x:.{digits}f}" if isinstance(x, float) else str(x)


def render_markdown(reseed: pd.DataFrame, resolution: pd.DataFrame, meta: Mapping[str, Any],
                    leading: pd.DataFrame | None = None) -> str:
    """``results/reliability.md``: how noisy each track's primary metric is under reseeding, source by source,
    and what the standard suite's replicate count can resolve between the two leading methods of each league."""
    kinds = " | ".join(f"s.d. {KIND_TEXT[k]}" for k in SEED_KINDS)
    lines = [
        "# cowbench reliability: reseed noise and resolving power of the primary metrics",
        "",
        f"Made by `{meta['command']}` · cowbench {meta['version']} · scorer `{meta['scorer']}` · root seed "
        f"{meta['root_seed']} · {meta['replicates']} reseeds per seed kind · subject `{meta['subject']['arch']}` · "
        f"{meta['wall_s']:.0f} s on {meta['n_jobs']} worker(s)",
        "",
        f"Machine: {meta['machine']}",
        "",
        "\"Resolves d\": the two-sided paired t-test at level 0.05 between two methods over the suite's replicates "
        "detects a true difference d with power 0.8; the smallest such d at n replicates is "
        "`(t_0.975,n-1 + t_0.8,n-1) · sd / sqrt(n)`, sd the s.d. of the per-replicate difference "
        "(`cowbench.stats`, the same test the report's ranks use).",
        "",
        "## Reseed standard deviation, one noise source varied at a time",
        "",
        "`training data`: the training sample varies (training and validation splits; the subject and oracle "
        "are retrained on it), the test sample, subject and fit seeds fixed at replicate 0's; `test data`: only "
        "the test sample varies (test_id, test_ood, test_bal; the same trained subject); `subject seed`: the "
        "initialisation of the subject and the oracle, and the oracle's decorrelating permutation; `fit seed`: "
        "the method's `random_state` (0 for deterministic methods); `all`: the suite's replicates (every seed "
        "varies together). s.d. with ddof 1 (n values).",
        "",
        f"| track | metric | scenario | method | mean (all) | {kinds} | s.d. all |",
        "|---|---|---|---|---|" + "---|" * (len(SEED_KINDS) + 1),
    ]
    for r in reseed.itertuples():
        cells = [f"{_fmt(getattr(r, f'sd_{k}'))} ({getattr(r, f'n_{k}')})" for k in (*SEED_KINDS, "all")]
        lines.append(f"| {r.track} | {r.metric} | {r.scenario} | {r.method} | {_fmt(r.mean)} | " + " | ".join(cells)
                     + " |")
    n = int(resolution["n"].iloc[0]) if not resolution.empty else STANDARD_REPLICATES
    target = float(resolution["target"].iloc[0]) if not resolution.empty else TARGET_DIFFERENCE
    lines += [
        "",
        "## Resolving power of the studied pairs, and where their noise comes from",
        "",
        f"The s.d. of the per-replicate difference a − b over the suite's replicates (`all`) and with one noise "
        f"source varied alone; `min. resolvable at n={n}`: the smallest difference {n} replicates resolve; "
        f"`replicates for {target:g}`: the least n resolving {target:g}.",
        "",
        f"| track | metric | scenario | a | b | mean a − b | s.d. of a − b (n) | {kinds} "
        f"| min. resolvable at n={n} | replicates for {target:g} |",
        "|---|---|---|---|---|---|---|" + "---|" * (len(SEED_KINDS) + 2),
    ]
    for r in resolution.itertuples():
        sources = " | ".join(_fmt(getattr(r, f"sd_{k}")) for k in SEED_KINDS)
        lines.append(f"| {r.track} | {r.metric} | {r.scenario} | {r.a} | {r.b} | {_fmt(r.mean_diff)} | "
                     f"{_fmt(r.sd_diff)} ({r.n_pairs}) | {sources} | {_fmt(r.mrd)} | {_fmt(r.replicates_needed)} |")
    lines.append("")
    if leading is not None:
        lines += leading_markdown(leading, meta.get("results", "?"))
    return "\n".join(lines)


def leading_markdown(leading: pd.DataFrame, source: Any) -> list[str]:
    """The section on the suite's own replicates: per league, the two leading methods' resolution, the
    replicate count the targets need and the resolution each track reaches."""
    n = int(leading["n"].iloc[0]) if not leading.empty else STANDARD_REPLICATES
    targets = ", ".join(f"{t} {v:g}" for t, v in TRACK_TARGETS.items())
    choice = suite_replicates(leading)
    lines = [
        f"## The two leading methods of each league in `{source}`",
        "",
        "Per table (scenario, track, selection rule) and league (methods told the spurious variable apart; on "
        "the edit track the access levels), the two ranked settings with the best means (ranked: better than "
        "the best control by the paired t-test), paired over the replicates both have. These are the "
        "differences a paper reports; a figure pooled over every pair of a table is dominated by broken "
        f"methods. Targets: {targets} (the standard suite's replicate count is chosen so that every leading pair "
        "of these tracks resolves its target); the other tracks state what they reach.",
        "",
    ]
    if choice["replicates"] is not None:
        lines += [f"**Replicates needed: {choice['replicates']}**, set by {choice['track']} on {choice['scenario']} "
                  f"({' − '.join(choice['pair'])}).", ""]
    for track, target in TRACK_TARGETS.items():
        need = leading.loc[leading["track"] == track, "replicates_needed"].dropna().astype(int)
        if need.empty:
            continue
        within = int((need <= n).sum())
        lines += [f"- {track}: {len(need)} leading pairs; replicates to resolve {target:g}: median "
                  f"{int(np.median(need))}, 90th percentile {int(np.percentile(need, 90, method='higher'))}, "
                  f"largest {int(need.max())}; {within} of {len(need)} resolve it at n={n}"]
    lines.append("")
    summary = resolution_per_track(leading, n)
    lines += [f"| track | leading pairs | median min. resolvable at n={n} | largest |", "|---|---|---|---|"]
    lines += [f"| {r.track} | {r.pairs} | {_fmt(r.median_mrd, 3)} | {_fmt(r.max_mrd, 3)} |"
              for r in summary.itertuples()]
    lines += ["", f"| track | scenario | selection | league | a | b | mean a − b | s.d. (pairs) | min. resolvable at "
              f"n={n} | replicates for target |", "|---|---|---|---|---|---|---|---|---|---|"]
    for r in leading.itertuples():
        lines.append(f"| {r.track} | {r.scenario} | {r.selection} | {r.league} | {r.a} | {r.b} | "
                     f"{_fmt(r.mean_diff, 3)} | {_fmt(r.sd_diff, 3)} ({r.n_pairs}) | {_fmt(r.mrd, 3)} | "
                     f"{'—' if pd.isna(r.replicates_needed) else int(r.replicates_needed)} |")
    return [*lines, ""]


def write_reliability(out: Path, values: pd.DataFrame, meta: Mapping[str, Any], n: int = STANDARD_REPLICATES,
                      target: float = TARGET_DIFFERENCE, leading: pd.DataFrame | None = None) -> tuple[Path, Path]:
    """Write ``out`` (Markdown) and the same stem with ``.json`` (every value, the tables, provenance);
    ``leading``: `from_results` of a results directory, if one was given."""
    import json

    reseed, resolution = reseed_table(values), resolution_table(values, n, target)

    def records(frame: pd.DataFrame) -> list[dict[str, Any]]:
        # JSON has no NaN: missing numbers are null
        return [{k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in row.items()}
                for row in json.loads(frame.to_json(orient="records"))]

    out = Path(out)
    json_path = out.with_suffix(".json")
    write_text_atomic(out, render_markdown(reseed, resolution, meta, leading))
    payload = {"meta": dict(meta), "reseed": records(reseed), "resolution": records(resolution),
               "values": records(values)}
    if leading is not None:
        payload["leading"] = records(leading)
        payload["suite_replicates"] = suite_replicates(leading)
    write_text_atomic(json_path, json.dumps(payload, indent=1, sort_keys=True, allow_nan=False) + "\n")
    return out, json_path
