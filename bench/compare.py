"""Compare two sides on the replicates they share: two results directories, or two methods in one.

A side is the jobs of one results directory (one suite's, by its manifest), optionally restricted to one method.
Jobs are paired on what makes their data the same: the scenario spec, the replicate and the data seed; a cell
is a (scenario, method setting, metric) with at least one pair. Per cell: the mean paired difference A − B,
its 95% t interval (Student 1908; none with fewer than 2 pairs) and the paired t-test's p-value
(`cowbench.stats.paired_t_test`, the test the report's ranks use), the exact two-sided sign test p-value
(ties, equal to the report's tie tolerance, dropped; Dixon and Mood 1946) and the side the interval favours
in the metric's direction. The verdict follows the paired t-test: a side is better where the t interval
excludes 0, i.e. where the two-sided t-test rejects at 1 − level. The sign test is shown beside it, with the
number of differing pairs below which it cannot reach significance whatever the data
(`cowbench.stats.sign_test_floor`: fewer than 6 pairs at 0.05). Per track, a verdict counts the cells of its
primary metric each side wins.

References
----------
Dixon, W. J. and Mood, A. M. (1946). The statistical sign test. *Journal of the American Statistical
Association* 41(236), 557-566.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from cowbench.errors import InputError
from cowbench.reports.table import (
    TRACK_TITLES,
    access_label,
    hparams_label,
    primary_scores,
    scenario_label,
    score_table,
    tie_tolerance,
)
from cowbench.seeds import stable_hash
from cowbench.stats import paired_t_test, sign_test_floor
from cowbench.store import iter_records, select_manifest

PAIR_KEY = ["scenario_id", "replicate", "data_seed"]
CELL_COLUMNS = ["track", "scenario", "entry", "metric", "higher_is_better", "primary", "n", "mean_diff", "lo", "hi",
                "t_p", "sign_p", "sign_can_reject", "a_wins", "b_wins", "better"]


def load_side(out: Path, *, suite: str | None = None, method: str | None = None) -> pd.DataFrame:
    """One row per (ok job, metric with a value) of ``out``'s planned jobs (of ``method`` only, if given):
    the pairing key (`PAIR_KEY`), the scenario's label, the method, its setting (``entry``) and the value."""
    out = Path(out)
    if not out.is_dir():
        raise InputError(f"results directory {str(out)!r} does not exist or is not a directory")
    manifest = select_manifest(out, suite)
    wanted = set(manifest["jobs"]) if manifest else None
    rows = []
    for rec in iter_records(out):
        if rec["status"] != "ok" or (wanted is not None and rec["job_id"] not in wanted):
            continue
        spec = rec["spec"]
        if method is not None and spec["method"] != method:
            continue
        hp = hparams_label(spec.get("hparams"))
        job = {"scenario_id": stable_hash(spec["scenario"]), "replicate": int(spec["replicate"]),
               "data_seed": int((rec.get("seeds") or {}).get("data_seed", -1)),
               "scenario": scenario_label(spec["scenario"]), "method": spec["method"], "hparams": hp,
               "entry": f"{spec['method']}({hp})" if hp else spec["method"],
               "access": access_label((rec.get("method_info") or {}).get("access", []))}
        rows += [{**job, "metric": m, "value": float(v)} for m, v in rec["metrics"].items() if v is not None]
    columns = [*PAIR_KEY, "scenario", "method", "hparams", "entry", "access", "metric", "value"]
    return pd.DataFrame(rows, columns=columns)


def t_interval_of_mean(d: np.ndarray, level: float = 0.95) -> tuple[float, float]:
    """The t interval of the mean of ``d`` (NaN with fewer than 2 values)."""
    from scipy.stats import t

    if len(d) < 2:
        return math.nan, math.nan
    half = float(t.ppf(0.5 + level / 2, len(d) - 1) * np.std(d, ddof=1) / math.sqrt(len(d)))
    mean = float(np.mean(d))
    return mean - half, mean + half


def sign_test(a: np.ndarray, b: np.ndarray) -> tuple[float, int, int]:
    """(exact two-sided sign test p-value, pairs where a > b, pairs where b > a); equal pairs are dropped."""
    from scipy.stats import binomtest

    d = a - b
    tied = np.abs(d) <= tie_tolerance(a, b)
    up, down = int(np.sum((d > 0) & ~tied)), int(np.sum((d < 0) & ~tied))
    p = 1.0 if up + down == 0 else float(binomtest(up, up + down, 0.5).pvalue)
    return p, up, down


def compare_sides(a: pd.DataFrame, b: pd.DataFrame, *, by_entry: bool = True, level: float = 0.95,
                  scores: pd.DataFrame | None = None) -> pd.DataFrame:
    """Paired differences per cell; see the module docstring. ``by_entry``: pair a method setting of A with the
    same setting of B (two directories); otherwise every row of a side is one method (two methods compared),
    and the cell's ``entry`` names both."""
    scores = score_table() if scores is None else scores
    if a.empty or b.empty:
        return pd.DataFrame(columns=CELL_COLUMNS)
    keys = [*PAIR_KEY, "metric", *(["entry"] if by_entry else [])]
    cols = [*keys, "scenario", "value", *([] if by_entry else ["entry"])]
    merged = a[cols].merge(b[cols], on=keys, suffixes=("_a", "_b"))
    if merged.empty:
        return pd.DataFrame(columns=CELL_COLUMNS)
    merged["scenario"] = merged["scenario_a"]
    if not by_entry:
        merged["entry"] = merged["entry_a"] + " − " + merged["entry_b"]
    rows = []
    for (scenario, entry, metric), cell in merged.groupby(["scenario", "entry", "metric"], sort=True):
        va, vb = cell["value_a"].to_numpy(dtype=float), cell["value_b"].to_numpy(dtype=float)
        d = va - vb
        lo, hi = t_interval_of_mean(d, level)
        p, up, down = sign_test(va, vb)
        _, t_p, _ = paired_t_test(va, vb)
        info = scores.loc[metric] if metric in scores.index else None
        higher = True if info is None else bool(info.higher_is_better)
        # the side the interval favours, in the metric's direction; none when it covers 0 (or there is none)
        better = "" if math.isnan(lo) else ("A" if lo > 0 else "B" if hi < 0 else "") if higher else (
            "A" if hi < 0 else "B" if lo > 0 else "")
        rows.append({"track": None if info is None else info.track, "scenario": scenario, "entry": entry,
                     "metric": metric, "higher_is_better": higher, "primary": bool(info is not None and info.primary),
                     "n": len(d), "mean_diff": float(np.mean(d)), "lo": lo, "hi": hi, "t_p": t_p, "sign_p": p,
                     "sign_can_reject": sign_test_floor(up + down) < 1 - level,
                     "a_wins": up if higher else down, "b_wins": down if higher else up, "better": better})
    return pd.DataFrame(rows, columns=CELL_COLUMNS)


@dataclass(frozen=True)
class Verdict:
    """How the cells of a track's primary metric came out."""

    track: str
    metric: str
    a: int
    b: int
    neither: int

    @property
    def text(self) -> str:
        if self.a and not self.b:
            head = "A better"
        elif self.b and not self.a:
            head = "B better"
        elif self.a and self.b:
            head = "mixed (each side better in some cells)"
        else:
            head = "no resolvable difference"
        total = self.a + self.b + self.neither
        return (f"{self.track}: {head} — on {self.metric}, A better in {self.a}, B better in {self.b}, "
                f"no resolvable difference in {self.neither} of {total} cell(s) (by the paired t-test)")


def verdicts(cells: pd.DataFrame, scores: pd.DataFrame | None = None) -> list[Verdict]:
    """One `Verdict` per track with a cell of its primary metric, in track order."""
    scores = score_table() if scores is None else scores
    out = []
    primary = primary_scores(scores)
    for track in TRACK_TITLES:
        metrics = primary[primary.track == track].index
        part = cells[cells.metric.isin(metrics)]
        if part.empty:
            continue
        out.append(Verdict(track, metrics[0], int((part.better == "A").sum()), int((part.better == "B").sum()),
                           int((part.better == "").sum())))
    return out


def _sign_pairs_needed(alpha: float) -> int:
    """The fewest differing pairs at which an exact two-sided sign test can reach p < ``alpha``."""
    n = 1
    while sign_test_floor(n) >= alpha:
        n += 1
    return n


def _num(x: float) -> str:
    text = f"{x:.3f}"
    return "0.000" if text == "-0.000" else text


def render_comparison(cells: pd.DataFrame, a_name: str, b_name: str, level: float = 0.95,
                      scores: pd.DataFrame | None = None) -> str:
    """Markdown: the sides, one row per cell (track order, then scenario, method, metric), and the verdicts."""
    pct = f"{level * 100:g}%"
    lines = [f"# cowbench compare: A = {a_name}, B = {b_name}", "",
             f"Paired on (scenario, replicate, data seed). Difference A − B: mean [{pct} t interval] (pairs); "
             "t-test p: the two-sided paired t-test (the test the report's ranks use); better: the side the "
             "interval favours in the metric's direction (↑ higher is better, ↓ lower). The verdicts follow the "
             f"paired t-test (better where the {pct} t interval excludes 0). Sign test: exact two-sided p over "
             "the pairs that differ, shown beside it; it cannot reach significance below "
             f"{_sign_pairs_needed(1 - level)} differing pairs (its smallest p is 2 × 0.5^pairs), marked "
             "\"cannot reach\". Verdicts count the cells of each track's primary metric; cells are not corrected "
             "for multiple comparisons.", "",
             "| track | scenario | method | metric | A − B | t-test p | sign test p | A wins / B wins | better |",
             "|---|---|---|---|---|---|---|---|---|"]
    order = {t: i for i, t in enumerate(TRACK_TITLES)}
    cells = cells.assign(order=cells.track.map(order).fillna(len(order))).sort_values(
        ["order", "scenario", "entry", "primary", "metric"], ascending=[True, True, True, False, True])
    for r in cells.itertuples():
        interval = "" if math.isnan(r.lo) else f" [{_num(r.lo)}, {_num(r.hi)}]"
        arrow = "↑" if r.higher_is_better else "↓"
        sign = f"{r.sign_p:.3g}"
        if not r.sign_can_reject:
            sign += f" (cannot reach {1 - level:g} at {r.a_wins + r.b_wins} differing pairs)"
        t_p = "—" if r.n < 2 else f"{r.t_p:.3g}"
        lines.append(f"| {r.track or '—'} | {r.scenario} | {r.entry} | {r.metric} {arrow} | {_num(r.mean_diff)}"
                     f"{interval} ({r.n}) | {t_p} | {sign} | {r.a_wins} / {r.b_wins} | {r.better or '—'} |")
    lines += ["", "## Verdict per track", ""]
    lines += [f"- {v.text}" for v in verdicts(cells, scores)] or ["- no cell of a track's primary metric"]
    return "\n".join(lines) + "\n"


def compare(a: Path, b: Path | None = None, *, methods: tuple[str, str] | None = None, suite: str | None = None,
            level: float = 0.95) -> tuple[pd.DataFrame, str]:
    """(cells, Markdown) of a comparison: directories ``a`` and ``b`` (same method settings paired, or
    ``methods`` = (method in a, method in b)), or two ``methods`` in ``a`` alone. `InputError` on bad input
    or when the sides share no replicate."""
    if b is None and methods is None:
        raise InputError("compare needs two results directories, or one and --methods M1 M2")
    if methods is not None and (len(methods) != 2 or not all(methods)):
        raise InputError(f"--methods needs exactly two method names, got {list(methods)!r}")
    if b is None and methods[0] == methods[1]:
        raise InputError(f"--methods names {methods[0]!r} twice: compare two different methods of one directory")
    side_b_dir = a if b is None else b
    m_a, m_b = methods if methods is not None else (None, None)
    side_a = load_side(a, suite=suite, method=m_a)
    side_b = load_side(side_b_dir, suite=suite, method=m_b)
    for side, where, m in ((side_a, a, m_a), (side_b, side_b_dir, m_b)):
        if side.empty:
            what = f"no finished job of method {m!r}" if m else "no finished job"
            raise InputError(f"{str(where)!r} holds {what}")
    cells = compare_sides(side_a, side_b, by_entry=methods is None, level=level)
    if cells.empty:
        raise InputError("the two sides share no replicate (same scenario spec, replicate and data seed"
                         + (", and method setting" if methods is None else "") + "): nothing to pair")
    name_a = f"{m_a} in {a}" if m_a else str(a)
    name_b = f"{m_b} in {side_b_dir}" if m_b else str(side_b_dir)
    return cells, render_comparison(cells, name_a, name_b, level)
