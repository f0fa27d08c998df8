"""How reliable a metric is: the smallest difference between two methods a given replicate count resolves.

The formula is shared by the report header (``min. resolvable difference`` next to P(best)) and by
``cowbench reliability``. Replicates are paired (every method sees the same data in a replicate), so the
relevant noise is the standard deviation of the per-replicate *difference* between two methods.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from cowbench.stats import min_resolvable_difference, replicates_needed

# -- the reliability study: reseed noise per seed, and the power to tell two methods apart ------------------

SEED_KINDS = ("data", "subject", "fit")
STANDARD_REPLICATES = 5  # the standard suite's replicate count
TARGET_DIFFERENCE = 0.02
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
    """One replicate to build (scenario, data seed, subject seed) and the method runs to score on it."""

    scenario: str
    spec: dict[str, Any]
    subject: dict[str, Any]
    data_seed: int
    subject_seed: int
    runs: tuple[tuple[str, int], ...]  # (method, fit seed)


def _run_unit(unit: _Unit) -> list[dict[str, Any]]:
    """Build the unit's replicate (one thread per pool, deterministic torch) and score each method on it."""
    from cowbench.determinism import deterministic
    from cowbench.jobs import build_replicate, execute
    from cowbench.registries import METHODS

    with deterministic(1):
        rep = build_replicate(unit.spec, unit.subject, unit.data_seed, unit.subject_seed)
    rows = []
    for method, fit_seed in unit.runs:
        _, metrics, _ = execute(rep, METHODS.get(method)(), fit_seed)
        rows.append({"scenario": unit.scenario, "method": method, "data_seed": unit.data_seed,
                     "subject_seed": unit.subject_seed, "fit_seed": fit_seed, "metrics": dict(metrics)})
    return rows


def check_pairs(pairs: Mapping[str, Sequence[tuple[str, str]]]) -> dict[str, list[tuple[str, str]]]:
    """Validate ``{track: [(scenario, method), ...]}``: known tracks, scenarios and methods, each method
    declaring the track's output; `InputError` naming the first problem."""
    from cowbench.errors import InputError
    from cowbench.registries import METHODS, SCENARIOS

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


def plan_units(pairs: Mapping[str, Sequence[tuple[str, str]]], replicates: int, root_seed: int = 0,
               subject: Mapping[str, Any] | None = None) -> tuple[list[_Unit], list[dict[str, Any]]]:
    """The replicates to build and, per (scenario, method, kind, index), which seeds it uses.

    Index ``r`` of kind ``data`` uses replicate r's data seed with replicate 0's subject and fit seeds;
    ``subject`` and ``fit`` likewise; kind ``all`` is the suite's replicate r (every seed of replicate r),
    the one paired differences between methods are taken over. Seeds are the harness's own
    (`cowbench.jobs.ReplicateSpec`, `make_job`), so index 0 is the suite's replicate 0.
    """
    import cowbench as cb
    from cowbench.jobs import ReplicateSpec, make_job
    from cowbench.subject import SubjectConfig

    if isinstance(replicates, bool) or not isinstance(replicates, int) or replicates < 2:
        from cowbench.errors import InputError

        raise InputError(f"--replicates must be an integer >= 2 (a standard deviation needs two), got {replicates!r}")
    cfg = SubjectConfig.from_mapping(subject).to_dict()
    methods_of: dict[str, set[str]] = {}
    for items in pairs.values():
        for scenario, method in items:
            methods_of.setdefault(scenario, set()).add(method)
    plan: list[dict[str, Any]] = []
    wanted: dict[tuple[str, int, int], set[tuple[str, int]]] = {}
    specs: dict[str, dict[str, Any]] = {}
    for scenario, methods in methods_of.items():
        spec = cb.make_scenario(scenario).spec
        specs[scenario] = spec
        reps = [ReplicateSpec(spec, r, root_seed, cfg) for r in range(replicates)]
        for method in sorted(methods):
            hparams = cb.get_method(method)().hyperparameters()
            fits = [make_job(rep, method, hparams).fit_seed for rep in reps]
            for r, rep in enumerate(reps):
                seeds = {"data": (rep.data_seed, reps[0].subject_seed, fits[0]),
                         "subject": (reps[0].data_seed, rep.subject_seed, fits[0]),
                         "fit": (reps[0].data_seed, reps[0].subject_seed, fits[r]),
                         "all": (rep.data_seed, rep.subject_seed, fits[r])}
                for kind, (data_seed, subject_seed, fit_seed) in seeds.items():
                    plan.append({"scenario": scenario, "method": method, "kind": kind, "index": r,
                                 "data_seed": data_seed, "subject_seed": subject_seed, "fit_seed": fit_seed})
                    wanted.setdefault((scenario, data_seed, subject_seed), set()).add((method, fit_seed))
    units = [_Unit(scenario, specs[scenario], cfg, data_seed, subject_seed, tuple(sorted(runs)))
             for (scenario, data_seed, subject_seed), runs in sorted(wanted.items())]
    return units, plan


def run_study(pairs: Mapping[str, Sequence[tuple[str, str]]], replicates: int = DEFAULT_REPLICATES, *,
              root_seed: int = 0, n_jobs: int = 1, subject: Mapping[str, Any] | None = None,
              progress: Any = None) -> pd.DataFrame:
    """Every planned (track, scenario, method, kind, index) with the track's primary metric value (NaN if missing).

    Returns a frame with columns ``track, metric, scenario, method, kind, index, value``.
    """
    from cowbench.reports.table import score_table

    pairs = check_pairs(pairs)
    units, plan = plan_units(pairs, replicates, root_seed, subject)
    if n_jobs == 1:
        batches = map(_run_unit, units)
    else:
        from joblib import Parallel, delayed

        batches = Parallel(n_jobs=n_jobs, return_as="generator_unordered")(delayed(_run_unit)(u) for u in units)
    scored: dict[tuple[str, str, int, int, int], dict[str, Any]] = {}
    for done, rows in enumerate(batches, 1):
        for row in rows:
            scored[(row["scenario"], row["method"], row["data_seed"], row["subject_seed"], row["fit_seed"])] = \
                row["metrics"]
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
                    value = scored[(scenario, method, p["data_seed"], p["subject_seed"], p["fit_seed"])].get(metric)
                    out.append({"track": track, "metric": metric, "scenario": scenario, "method": method,
                                "kind": p["kind"], "index": p["index"],
                                "value": math.nan if value is None else float(value)})
    return pd.DataFrame(out, columns=["track", "metric", "scenario", "method", "kind", "index", "value"])


def reseed_table(values: pd.DataFrame) -> pd.DataFrame:
    """Per (track, metric, scenario, method): mean and sample s.d. (ddof 1) of the value under each seed kind.

    Columns ``mean`` (over kind ``all``), ``sd_<kind>`` and ``n_<kind>`` for kinds data, subject, fit, all;
    missing values (NaN) are left out and counted out of ``n``.
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


def resolution_table(values: pd.DataFrame, n: int = STANDARD_REPLICATES,
                     target: float = TARGET_DIFFERENCE) -> pd.DataFrame:
    """Per track and pair of its methods (same scenario): the paired differences over the suite's replicates
    (kind ``all``), their s.d., the smallest difference ``n`` replicates resolve and the replicates ``target``
    needs (`min_resolvable_difference`, `replicates_needed`)."""
    rows = []
    all_runs = values[values["kind"] == "all"]
    for (track, metric, scenario), block in all_runs.groupby(["track", "metric", "scenario"], sort=False):
        table = block.pivot_table(index="index", columns="method", values="value", aggfunc="first")
        methods = list(dict.fromkeys(block["method"]))  # in the order given
        for i, a in enumerate(methods):
            for b in methods[i + 1:]:
                d = (table[a] - table[b]).dropna().to_numpy(dtype=float)
                sd = float(np.std(d, ddof=1)) if len(d) >= 2 else math.nan
                ok = not math.isnan(sd)
                rows.append({"track": track, "metric": metric, "scenario": scenario, "a": a, "b": b,
                             "n_pairs": len(d), "mean_diff": float(np.mean(d)) if len(d) else math.nan,
                             "sd_diff": sd, "n": n, "mrd": min_resolvable_difference(sd, n) if ok else math.nan,
                             "target": target, "replicates_needed": replicates_needed(sd, target) if ok else None})
    columns = ["track", "metric", "scenario", "a", "b", "n_pairs", "mean_diff", "sd_diff", "n", "mrd", "target",
               "replicates_needed"]
    return pd.DataFrame(rows, columns=columns)


def _fmt(x: Any, digits: int = 4) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "—"
    if isinstance(x, float) and math.isinf(x):
        return "∞"
    return f"{x:.{digits}f}" if isinstance(x, float) else str(x)


def render_markdown(reseed: pd.DataFrame, resolution: pd.DataFrame, meta: Mapping[str, Any]) -> str:
    """``results/reliability.md``: how noisy each track's primary metric is under reseeding, and what the
    standard suite's replicate count can resolve."""
    lines = [
        "# cowbench reliability: reseed noise and resolving power of the primary metrics",
        "",
        f"Made by `{meta['command']}` · cowbench {meta['version']} · scorer `{meta['scorer']}` · root seed "
        f"{meta['root_seed']} · {meta['replicates']} reseeds per seed kind · subject `{meta['subject']['arch']}` · "
        f"{meta['wall_s']:.0f} s on {meta['n_jobs']} worker(s)",
        "",
        f"Machine: {meta['machine']}",
        "",
        "## Reseed standard deviation, one seed varied at a time",
        "",
        "`data`: the data seed varies (new training and test samples), subject and fit seeds fixed at replicate 0's; "
        "`subject`: the subject seed varies (initialisation of the subject and the oracle, and the oracle's "
        "decorrelating permutation); `fit`: the method's `random_state` varies (0 for deterministic methods); "
        "`all`: the suite's replicates (every seed varies together). s.d. with ddof 1 (n values).",
        "",
        "| track | metric | scenario | method | mean (all) | s.d. data | s.d. subject | s.d. fit | s.d. all |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in reseed.itertuples():
        cells = [f"{_fmt(getattr(r, f'sd_{k}'))} ({getattr(r, f'n_{k}')})" for k in (*SEED_KINDS, "all")]
        lines.append(f"| {r.track} | {r.metric} | {r.scenario} | {r.method} | {_fmt(r.mean)} | " + " | ".join(cells)
                     + " |")
    n = int(resolution["n"].iloc[0]) if not resolution.empty else STANDARD_REPLICATES
    target = float(resolution["target"].iloc[0]) if not resolution.empty else TARGET_DIFFERENCE
    lines += [
        "",
        "## Resolving power: paired differences between two methods",
        "",
        f"Replicates are paired (both methods see the same data), so the noise that matters is the s.d. of the "
        f"per-replicate difference a − b over the suite's replicates. `min. resolvable at n={n}`: the smallest "
        f"true mean difference a paired two-sided t-test at level 0.05 detects with power 0.8 from {n} replicates "
        f"(`(t_0.975,n-1 + t_0.8,n-1) · sd / sqrt(n)`); `replicates for {target:g}`: the least n resolving "
        f"a difference of {target:g}.",
        "",
        f"| track | metric | scenario | a | b | mean a − b | s.d. of a − b (n) | min. resolvable at n={n} "
        f"| replicates for {target:g} |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in resolution.itertuples():
        lines.append(f"| {r.track} | {r.metric} | {r.scenario} | {r.a} | {r.b} | {_fmt(r.mean_diff)} | "
                     f"{_fmt(r.sd_diff)} ({r.n_pairs}) | {_fmt(r.mrd)} | {_fmt(r.replicates_needed)} |")
    lines.append("")
    return "\n".join(lines)


def write_reliability(out: Path, values: pd.DataFrame, meta: Mapping[str, Any], n: int = STANDARD_REPLICATES,
                      target: float = TARGET_DIFFERENCE) -> tuple[Path, Path]:
    """Write ``out`` (Markdown) and the same stem with ``.json`` (every value, both tables, provenance)."""
    import json

    from cowbench.store import write_text_atomic

    reseed, resolution = reseed_table(values), resolution_table(values, n, target)

    def records(frame: pd.DataFrame) -> list[dict[str, Any]]:
        # JSON has no NaN: missing numbers are null
        return [{k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in row.items()}
                for row in json.loads(frame.to_json(orient="records"))]

    out = Path(out)
    json_path = out.with_suffix(".json")
    write_text_atomic(out, render_markdown(reseed, resolution, meta))
    payload = {"meta": dict(meta), "reseed": records(reseed), "resolution": records(resolution),
               "values": records(values)}
    write_text_atomic(json_path, json.dumps(payload, indent=1, sort_keys=True, allow_nan=False) + "\n")
    return out, json_path
