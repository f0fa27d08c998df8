"""The ``cowbench`` command line (argparse). Exit codes: 0 success, 1 some jobs failed, 2 bad usage or input."""

from __future__ import annotations

import argparse
import gzip
import json
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

from cowbench import docs, ledger
from cowbench.access import ACCESS_LEVELS
from cowbench.anchors import ANCHORS, run_anchor
from cowbench.compare import compare
from cowbench.conformance import check_method
from cowbench.cost import run_cpu
from cowbench.errors import InputError
from cowbench.fingerprint import fingerprint_summary
from cowbench.glossary import glossary_markdown
from cowbench.launchers import launcher_names
from cowbench.method import OUTPUTS
from cowbench.progress import Meter
from cowbench.registries import METHODS, SCENARIOS
from cowbench.registry import load_plugin
from cowbench.reliability import DEFAULT_PAIRS, check_pairs, from_results, run_study, write_reliability
from cowbench.reports import FORMATS, get_format
from cowbench.reports.expected import expectations
from cowbench.reports.leaderboard import render_leaderboard, write_heatmaps
from cowbench.reports.markdown import render_markdown
from cowbench.reports.plots import FORMATS as PLOT_FORMATS
from cowbench.reports.plots import write_plots
from cowbench.reports.table import build_tables, load_results, scenario_label
from cowbench.runner import check_memory_limit, default_n_jobs, run_suite
from cowbench.scores import scorer_version
from cowbench.store import read_manifests, scan_store, select_manifest, write_bytes_atomic, write_text_atomic
from cowbench.suite import builtin_suites, load_suite
from cowbench.verify import DEFAULT_ABS, DEFAULT_SAMPLE, DEFAULT_UNITS, Tolerance, render, verify
from cowbench.version import __version__

if TYPE_CHECKING:
    from cowbench.suite import Suite


def _print_err(message: str) -> None:
    print(f"cowbench: error: {' '.join(str(message).split())}", file=sys.stderr)  # one line, always


def _warn(message: str) -> None:
    print(f"cowbench: warning: {message}", file=sys.stderr)


class _Parser(argparse.ArgumentParser):
    """An argparse parser whose usage errors are the one ``cowbench: error:`` line the README promises.

    Subparsers inherit the class (argparse builds them with ``type(parent)``).
    """

    def error(self, message: str) -> NoReturn:
        _print_err(f"{message} (see '{self.prog} --help')")
        sys.exit(2)


# what a directory written by `run` holds; a non-empty directory with none of these is someone else's
_RESULT_ENTRIES = ("manifests", "manifest.json", "jobs", "runs", "cache", "report.md")


def _check_out_dir(text: str) -> Path:
    """Refuse an output directory `run` could not or should not write into, before anything is written."""
    if not text.strip():
        raise InputError("--out must name a directory, got an empty string")
    out = Path(text)
    if out.exists() and not out.is_dir():
        raise InputError(f"--out {text!r} exists and is not a directory")
    if out.is_dir():
        entries = {p.name for p in out.iterdir()}
        if entries and not entries & set(_RESULT_ENTRIES):
            raise InputError(f"--out {text!r} is a non-empty directory that is not a cowbench results directory")
    _check_writable(out, text)
    return out


def _check_writable(out: Path, text: str) -> None:
    """Refuse a path whose nearest existing ancestor is a file or not writable (nothing could be created)."""
    existing = out
    while not existing.exists():  # the nearest existing ancestor is where directories would be created
        if existing.parent == existing:
            break
        existing = existing.parent
    if existing.exists() and not existing.is_dir() and existing != out:
        raise InputError(f"--out {text!r} lies under {str(existing)!r}, which is a file, not a directory")
    directory = existing if existing.is_dir() else existing.parent
    if not os.access(directory, os.W_OK | os.X_OK):
        raise InputError(f"--out {text!r}: no permission to write in {str(directory)!r}")


def _list_arg(values: str | Sequence[str]) -> list[str]:
    """One list syntax in every command: names separated by commas, spaces, or both (``a,b``, ``a b``,
    ``"a, b"``), as one argument or several."""
    items = [values] if isinstance(values, str) else list(values)
    return [t for item in items for t in item.replace(",", " ").split()]


def _csv(text: str | Sequence[str]) -> list[str]:
    return _list_arg(text)


#: what a name in a list flag may be written as: a help text fragment shared by every such flag
_LIST_HELP = "names separated by commas or spaces"


def _plugin_hint(message: str) -> str:
    """For an unknown method (or scenario) name that a ``.py`` file in the current folder registers: a hint to
    pass that file with ``--plugins``; empty otherwise."""
    import re

    found = re.search(r"unknown (method|scenario) '([^']+)'", message)
    if not found:
        return ""
    name = found.group(2)
    pattern = re.compile(rf"""\bname\s*=\s*["']{re.escape(name)}["']""")
    for path in sorted(Path.cwd().glob("*.py")):
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            continue
        if path.stem == name or pattern.search(text):
            return f"; {path.name} in this folder defines a {found.group(1)} {name!r}: pass --plugins {path.name}"
    return ""


def _filter_suite(suite: Suite, scenarios: list[str] | None, tracks: list[str] | None) -> Suite:
    """The suite restricted to the scenarios named (a family name such as ``cow`` keeps every scenario of that
    family, an exact report label keeps one) and to the methods that output one of ``tracks`` (as lm-eval's
    ``--tasks``). The result has its own hash, so a filtered run is a partial run (written under runs/)."""
    import dataclasses
    import difflib


    keep_scenarios = list(suite.scenarios)
    if scenarios is not None:
        if not scenarios:
            raise InputError("--scenarios needs at least one scenario name")
        labels = {scenario_label(s): s for s in suite.scenarios}
        families = {s["generator"] for s in suite.scenarios}
        for name in scenarios:
            if name not in families and name not in labels:
                close = difflib.get_close_matches(name, sorted(families), n=3)
                hint = f"; did you mean {', '.join(map(repr, close))}?" if close else ""
                raise InputError(f"--scenarios: suite {suite.name!r} has no scenario {name!r}{hint} "
                                 f"(its scenarios: {', '.join(sorted(families))})")
        keep_scenarios = [s for s in suite.scenarios if s["generator"] in scenarios or scenario_label(s) in scenarios]
    keep = list(range(len(suite.methods)))
    if tracks is not None:
        if not tracks:
            raise InputError(f"--tracks needs at least one track; allowed: {', '.join(OUTPUTS)}")
        bad = [t for t in tracks if t not in OUTPUTS]
        if bad:
            raise InputError(f"--tracks: unknown track(s) {', '.join(map(repr, bad))}; allowed: {', '.join(OUTPUTS)}")
        keep = [i for i, (name, _) in enumerate(suite.methods) if set(METHODS.get(name).outputs) & set(tracks)]
        if not keep:
            raise InputError(f"--tracks {','.join(tracks)}: no method of suite {suite.name!r} outputs these tracks")
    trials = tuple(suite.method_trials[i] for i in keep) if suite.method_trials else ()
    return dataclasses.replace(
        suite, scenarios=tuple(keep_scenarios), methods=tuple(suite.methods[i] for i in keep), method_trials=trials,
        sweeps=tuple(w for w in suite.sweeps if any(w["scenario"] == s for s in keep_scenarios)))


def _load_plugins(plugins: Sequence[str]) -> None:
    for plugin in plugins:
        load_plugin(plugin)


def cmd_list(args: argparse.Namespace) -> int:
    import cowbench as cb

    _load_plugins(args.plugins)
    what = args.what
    if what in ("scenarios", "all"):
        print("scenarios: " + ", ".join(cb.list_scenarios()))
    if what in ("methods", "all"):
        # grouped by family (the README's methods table is this grouping); a control is marked, as in reports
        families: dict[str, list[tuple[str, type]]] = {}
        for name, cls in METHODS.items():
            families.setdefault(cls.family, []).append((name, cls))
        width = max((len(name) for name, _ in METHODS.items()), default=0) + 2
        print("methods (by family):")
        for family in sorted(families):
            print(f"  {family}:")
            for name, cls in families[family]:
                access = "+".join(a for a in ACCESS_LEVELS if a in cls.access)
                mark = "  (control)" if getattr(cls, "control", False) else ""
                print(f"    {name:<{width}}{access:<42}outputs={','.join(sorted(cls.outputs))}{mark}")
    if what in ("suites", "all"):
        print("suites: " + ", ".join(builtin_suites()))
    return 0


def _parse_knobs(items: Sequence[str]) -> dict:
    knobs = {}
    for item in items:
        if "=" not in item:
            raise InputError(f"knob {item!r} must be written name=value")
        key, raw = item.split("=", 1)
        try:
            knobs[key] = json.loads(raw)
        except json.JSONDecodeError:
            knobs[key] = raw
    return knobs


def cmd_show(args: argparse.Namespace) -> int:
    import cowbench as cb

    _load_plugins(args.plugins)
    scn = cb.make_scenario(args.scenario, **_parse_knobs(args.knobs))
    scm = scn.scm
    info = {
        "scenario": scn.name, "id": scn.id, "knobs": scn.knobs, "rendering": scn.rendering,
        "variables": [{"name": v.name, "role": v.role, "kind": v.kind, "parents": list(v.parents),
                       "equation": v.text} for v in scm.variables],
        "environments": [{"name": e.name, "deployment": e.deployment, "params": dict(e.params)}
                         for e in scn.environments],
        "world_coef": dict(scn.truth.world_coef),
        "world_undefined": scn.truth.world_undefined,
        "identifiable_with": scn.truth.identifiable_with,
        "identifiable_reason": scn.truth.identifiable_reason,
        "edit_target": scn.truth.edit_targets,
        "subject": getattr(cb.registries.SCENARIOS.get(scn.name), "subject", None),  # declared by the scenario
    }
    if args.json:
        found = expectations(cb.registries.SCENARIOS.get(scn.name))
        info["expected"] = {"outcomes": list(found.paragraphs), "references": list(found.citations)}
    if args.json:
        print(json.dumps(info, indent=1))
        return 0
    print(f"{scn!r}\nid {scn.id[:16]}  rendering {scn.rendering}")
    print("variables:")
    for v in info["variables"]:
        print(f"  {v['name']:<10} {v['role']:<9} {v['kind']:<10} {v['equation']}")
    print("environments:")
    for e in info["environments"]:
        print(f"  {e['name']:<8} {'deployment' if e['deployment'] else 'training':<10} {e['params']}")
    print("world coefficients: " + (", ".join(f"{k}={v:g}" for k, v in info["world_coef"].items())
                                    or f"undefined ({info['world_undefined']})"))
    print(f"identifiable with: {info['identifiable_with']} ({info['identifiable_reason']})")
    print(f"edit target: {', '.join(info['edit_target']) or 'none'}")
    if info["subject"]:
        print(f"subject: {info['subject']} (declared by the scenario; replaces a suite's [subject])")
    _print_expectations(cb.registries.SCENARIOS.get(scn.name))
    return 0


def _print_expectations(family: object) -> None:
    """The family's expected successes and failures and their citations, from its docstrings."""
    import textwrap

    found = expectations(family)
    print("expected outcomes:")
    for para in found.paragraphs or ("none stated in the scenario's docstrings",):
        print(textwrap.fill(para, 116, initial_indent="  ", subsequent_indent="  "))
    print(textwrap.fill("references: " + ("; ".join(found.citations) or "none"), 116, subsequent_indent="  "))


def cmd_generate(args: argparse.Namespace) -> int:
    import cowbench as cb
    from cowbench.export import check_formats, export_dataset

    _load_plugins(args.plugins)
    try:
        seed = int(args.seed)
    except ValueError:
        raise InputError(f"--seed must be a non-negative integer, got {args.seed!r}") from None
    if seed < 0:
        raise InputError(f"--seed must be a non-negative integer, got {args.seed!r}")
    formats = check_formats(_csv(args.format))
    scn = cb.make_scenario(args.scenario, **_parse_knobs(args.knobs))
    card = export_dataset(scn, seed, Path(args.out), formats, force=args.force)
    sizes = ", ".join(f"{name} {s['n']}" for name, s in card["splits"].items())
    print(f"{scn!r} seed {seed}: {sizes}; {len(card['files'])} file(s) and card.json, card.md in {args.out}")
    print(f"dataset checksum {card['dataset_checksum']}")
    return 0


def _ad_hoc(args: argparse.Namespace) -> bool:
    """Whether the command line changes the suite file's content (its methods, replicates or root seed)."""
    return any(getattr(args, k, None) is not None
               for k in ("methods", "replicates", "root_seed", "trials", "scenarios", "tracks"))


def default_out(suite: Suite, *, ad_hoc: bool) -> Path:
    """``results/<suite>`` for a suite as its file defines it; ``runs/<suite>-<hash>`` (gitignored) for a run
    the command line changed, so that a partial run never lands in the published results."""
    return Path("runs") / f"{suite.name}-{suite.hash}" if ad_hoc else Path("results") / suite.name


def _check_same_suite(out: Path, suite: Suite, *, replace: bool) -> None:
    """Refuse to replace the manifest (and so the report) of another version of the same suite in ``out``."""
    held = read_manifests(out).get(suite.name) if out.is_dir() else None
    if held is None or held["suite_hash"] == suite.hash or replace:
        return
    raise InputError(f"{str(out)!r} holds suite {suite.name!r} with hash {held['suite_hash']} "
                     f"({len(held['jobs'])} jobs) and this run's suite differs (hash {suite.hash}, "
                     f"{len(suite.plan())} jobs): it would replace that suite's manifest and report; "
                     "choose another --out, or pass --replace")


def cmd_run(args: argparse.Namespace) -> int:
    _load_plugins(args.plugins)
    methods = None
    if args.methods is not None:
        methods = _list_arg(args.methods)
        if not methods:
            raise InputError(f"--methods needs at least one method name, got {args.methods!r}")
    if args.trials is not None and args.trials < 1:
        raise InputError(f"--trials must be a positive integer, got {args.trials}")
    try:
        suite = load_suite(args.suite, replicates=args.replicates, root_seed=args.root_seed, methods=methods,
                           trials=args.trials)
    except InputError as exc:
        raise InputError(f"{exc}{_plugin_hint(str(exc))}") from None
    if args.scenarios is not None or args.tracks is not None:
        suite = _filter_suite(suite, None if args.scenarios is None else _list_arg(args.scenarios),
                              None if args.tracks is None else _list_arg(args.tracks))
    out = _check_out_dir(args.out if args.out is not None else str(default_out(suite, ad_hoc=_ad_hoc(args))))
    _check_same_suite(out, suite, replace=args.replace)
    if args.jobs is not None and args.jobs < 1:
        raise InputError(f"--jobs must be a positive integer, got {args.jobs}")
    read_manifests(out)  # another suite's broken manifest would otherwise fail the report after the jobs ran
    for message in scan_store(out).messages():
        _warn(message)
    started, cpu_start = time.time(), time.process_time()
    summary = run_suite(suite, out, launcher=args.launcher, n_jobs=args.jobs, force=args.force,
                        retry_failed=args.retry_failed, plugins=args.plugins,
                        log=lambda m: print(m, file=sys.stderr), time_limit=args.time_limit,
                        scheduler=args.scheduler, progress=False if args.quiet else None,
                        memory_limit=_memory_limit_arg(args.memory_limit))
    # report.md reports every suite of the directory (as `cowbench report DIR` does): a run of one suite must
    # not replace another suite's report; plots go to plots/ beside it (the Markdown shows a swept knob's
    # curve); the terminal gets this suite's tables
    names = [suite.name, *(name for name in read_manifests(out) if name != suite.name)]
    tables = {name: build_tables(load_results(out, name)) for name in names}
    image_dirs = _plot_dirs(tables)
    texts = [render_markdown(t, image_dir=image_dirs[name]) for name, t in tables.items()]
    write_text_atomic(out / "report.md", "\n\n".join(texts) + "\n")
    write_text_atomic(out / "leaderboard.md", _leaderboards(tables, image_dirs) + "\n")
    _write_plots(tables, out, image_dirs, PLOT_FORMATS, heatmaps=True)
    print(render_markdown(tables[suite.name]))
    failed_total = len(summary.failed) + summary.failed_before
    print(f"ran {summary.ran} job(s): {summary.ok} ok, {len(summary.failed)} failed; "
          f"{failed_total} failed in total; results in {out}", file=sys.stderr)
    if summary.ran:
        cpu = run_cpu(out, summary.job_ids, started,  # the run's own plan: planning again costs seconds
                      run_process_s=time.process_time() - cpu_start)
        print(cpu.line(time.time() - started), file=sys.stderr)
    return summary.exit_code


def _suites_of(results: str, suite: str | None) -> tuple[Path, dict]:
    """(directory, suite name -> manifest) of the suites to show; `InputError` if there are none."""
    out = Path(results)
    if not out.is_dir():
        raise InputError(f"results directory {results!r} does not exist or is not a directory")
    manifests = read_manifests(out)
    if not manifests:
        raise InputError(f"{results!r} holds no manifest: not a cowbench results directory")
    if suite is not None:
        manifests = {suite: select_manifest(out, suite)}
    return out, manifests


def _memory_limit_arg(value: float | None) -> float | None:
    try:
        return check_memory_limit(value)
    except InputError as exc:
        raise InputError(f"--memory-limit: {exc}") from None


def cmd_status(args: argparse.Namespace) -> int:
    out, manifests = _suites_of(args.results, args.suite)
    scan = scan_store(out)
    for warning in scan.warnings:
        _warn(warning)
    status = {r["job_id"]: r["status"] for r in scan.records}
    invalid = {path.stem for path, _ in scan.invalid}
    any_failed = False
    for manifest in manifests.values():
        planned = set(manifest["jobs"])
        for path, problem in scan.invalid:
            if path.stem in planned:
                _warn(f"invalid job file {path}: {problem}; left out")
        ok = sum(status.get(j) == "ok" for j in planned)
        failed = sum(status.get(j) == "failed" for j in planned)
        bad = len(planned & invalid)
        any_failed = any_failed or failed > 0
        print(f"suite {manifest['suite']['name']} ({manifest['suite_hash']}): {len(planned)} planned, {ok} ok, "
              f"{failed} failed, {len(planned) - ok - failed} not run"
              + (f" ({bad} of them invalid files)" if bad else ""))
    return 1 if any_failed else 0


def cmd_report(args: argparse.Namespace) -> int:

    asked = list(dict.fromkeys(_list_arg(args.format or [])))

    for name in asked:  # the names are checked after splitting (commas or spaces), as argparse's choices would
        if name not in FORMATS and name not in PLOT_FORMATS:
            raise InputError(f"argument --format: invalid choice: {name!r} (choose from "
                             f"{', '.join([*FORMATS, *PLOT_FORMATS])})")
    plot_formats = [f for f in asked if f in PLOT_FORMATS]
    # a report written to a directory gets its front page (leaderboard.md) beside report.md by default
    default = ["md", "leaderboard"] if args.out_dir is not None else ["md"]
    formats = [f for f in asked if f not in PLOT_FORMATS] or ([] if plot_formats else default)
    modules = [get_format(f) for f in formats]  # an unknown format fails before anything is read or written
    if plot_formats and args.out_dir is None:
        raise InputError(f"plot formats ({', '.join(plot_formats)}) need --out-dir: images cannot go to stdout")
    if len(formats) > 1 and args.out_dir is None:
        raise InputError(f"several formats ({', '.join(formats)}) need --out-dir: only one can go to stdout")
    compressed = list(dict.fromkeys(_list_arg(args.gzip or [])))
    if compressed and args.out_dir is None:
        raise InputError("--gzip needs --out-dir: it names formats to write as FILE.gz")
    if set(compressed) - set(formats):
        raise InputError(f"--gzip {', '.join(sorted(set(compressed) - set(formats)))}: not among the formats "
                         f"asked for ({', '.join(formats)})")
    out, manifests = _suites_of(args.results, args.suite)
    per_suite = [f for f in formats if f not in _JOINED_FORMATS]
    if per_suite and len(manifests) > 1:
        raise InputError(f"{args.results!r} holds {len(manifests)} suites ({', '.join(manifests)}): "
                         f"name one with --suite for {', '.join(per_suite)}")
    target = None
    if args.out_dir is not None:
        target = Path(args.out_dir)
        if target.exists() and not target.is_dir():
            raise InputError(f"--out-dir {args.out_dir!r} exists and is not a directory")
    planned = set().union(*(m["jobs"] for m in manifests.values()))
    scan = scan_store(out)
    for warning in scan.warnings:
        _warn(warning)
    for path, problem in scan.invalid:
        if path.stem in planned:
            _warn(f"invalid job file {path}: {problem}; left out of the report")
    tables = {name: build_tables(load_results(out, name)) for name in manifests}
    # a report written to a directory carries its plots (PNG and SVG unless plot formats were named) and its
    # Markdown shows a swept knob as its dose-response curve; printed, it keeps one table per knob value
    plot_formats = plot_formats or (list(PLOT_FORMATS) if target is not None else [])
    image_dirs = _plot_dirs(manifests) if target is not None else {}
    # every text is rendered before the first file is written: a failure leaves no partial report behind
    texts, gzipped = {}, {get_format(f).FILENAME for f in compressed}
    for fmt, module in zip(formats, modules, strict=True):
        if fmt == "md":
            texts[module.FILENAME] = "\n\n".join(
                render_markdown(t, image_dir=image_dirs.get(name),
                                image_format="png" if "png" in plot_formats else "svg")
                for name, t in tables.items())
        elif fmt == "leaderboard":
            texts[module.FILENAME] = _leaderboards(tables, image_dirs,
                                                   image_format="png" if "png" in plot_formats else "svg")
        elif fmt == "latex" and args.metrics is not None:
            texts[module.FILENAME] = module.render(next(iter(tables.values())), _list_arg(args.metrics))
        else:
            texts[module.FILENAME] = module.render(next(iter(tables.values())))
    if target is None:
        print(next(iter(texts.values())))
        return 0
    target.mkdir(parents=True, exist_ok=True)
    for filename, text in texts.items():
        text = text if text.endswith("\n") else text + "\n"
        if filename in gzipped:  # mtime 0: the same report gives the same bytes
            filename += ".gz"
            write_bytes_atomic(target / filename, gzip.compress(text.encode(), mtime=0))
        else:
            write_text_atomic(target / filename, text)
        print(f"wrote {target / filename}", file=sys.stderr)
    for path in _write_plots(tables, target, image_dirs, plot_formats, heatmaps="leaderboard" in formats):
        print(f"wrote {path}", file=sys.stderr)
    return 0


#: report formats that hold every suite of a directory, one after the other (the others need --suite)
_JOINED_FORMATS = ("md", "leaderboard")


def _leaderboards(tables: dict, image_dirs: dict[str, str], image_format: str = "png") -> str:
    """The front page (`cowbench.reports.leaderboard`) of each suite, one after the other; with images when
    ``image_dirs`` names where the suite's heatmaps go."""

    return "\n\n".join(render_leaderboard(t, image_dir=image_dirs.get(name), image_format=image_format)
                        for name, t in tables.items())


def _plot_dirs(manifests: dict) -> dict[str, str]:
    """Suite name -> its plots' folder relative to the report: ``plots``, or ``plots/<suite>`` when a directory
    holds several suites (as `cowbench plot` writes them), so their plots do not overwrite each other."""
    return {name: "plots" if len(manifests) == 1 else f"plots/{name}" for name in manifests}


def _write_plots(tables: dict, target: Path, image_dirs: dict[str, str], formats: Sequence[str], *,
                 heatmaps: bool = False) -> list[Path]:
    """Write each suite's plots under ``target / image_dirs[suite]`` from its built tables (``heatmaps``: the
    front page's too, when leaderboard.md is written with them)."""

    paths: list[Path] = []
    for name, t in tables.items():
        if formats:
            paths += write_plots(t.results, target / image_dirs[name], formats, summary=t.summary, scores=t.scores)
            if heatmaps:
                paths += write_heatmaps(t, target / image_dirs[name], formats)
    return paths


def cmd_plot(args: argparse.Namespace) -> int:
    from cowbench.reports.plots import check_formats

    formats = check_formats(_csv(args.format))
    out, manifests = _suites_of(args.results, args.suite)
    target = Path(args.out_dir) if args.out_dir is not None else out / "plots"
    if target.exists() and not target.is_dir():
        raise InputError(f"--out-dir {str(target)!r} exists and is not a directory")
    for name in manifests:  # several suites: one folder each, so that their plots do not overwrite each other
        for path in write_plots(load_results(out, name), target / name if len(manifests) > 1 else target, formats):
            print(path)
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    if len(args.results) not in (1, 2):
        raise InputError(f"compare takes one or two results directories, got {len(args.results)}")
    a, b = Path(args.results[0]), Path(args.results[1]) if len(args.results) == 2 else None
    methods = None
    if args.methods is not None:
        methods = tuple(_list_arg(args.methods))
        if len(methods) != 2:
            raise InputError(f"--methods takes two method names (M1 M2 or M1,M2), got {len(methods)}")
    _, text = compare(a, b, methods=methods, suite=args.suite)
    print(text, end="")
    return 0


def cmd_knobs(args: argparse.Namespace) -> int:
    _load_plugins(args.plugins)
    if args.markdown:
        print(glossary_markdown(), end="")
        return 0
    names = [args.scenario] if args.scenario else SCENARIOS.names()
    for name in names:
        family = SCENARIOS.get(name)
        print(f"{name} (version {family.version})")
        for knob in family.knobs.values():
            print(f"  {knob.name:<22} default {knob.default!r:<14} allowed {knob.allowed}\n"
                  f"  {'':<22} {knob.doc}")
    return 0


def cmd_anchor(args: argparse.Namespace) -> int:
    if args.reps is not None and args.reps < 2:
        raise InputError(f"--reps must be an integer >= 2 (standard errors need two), got {args.reps}")
    print(f"wrote {run_anchor(args.name, reps=args.reps, seed=args.seed, out=args.out)}")
    return 0


def cmd_check(args: argparse.Namespace) -> int:
    _load_plugins(args.plugins)
    try:
        results = check_method(args.method, scenario=args.scenario)
    except InputError as exc:
        raise InputError(f"{exc}{_plugin_hint(str(exc))}") from None
    for r in results:
        first = r.message.splitlines()[0] if r.message else ""
        print(f"{'PASS' if r.passed else 'FAIL'}  {r.name:<18} {first}")
    failed = [r for r in results if not r.passed]
    print(f"{len(results) - len(failed)} passed, {len(failed)} failed")
    return 1 if failed else 0


def cmd_ledger(args: argparse.Namespace) -> int:
    if args.action == "adopt":
        jobs, caches, left_out = ledger.adopt(Path(args.results))
        for line in left_out:
            _warn(f"not adopted: {line}")
        print(f"adopted {jobs} job file(s) and {caches} cache file(s) into {ledger.ledger_path(Path(args.results))}; "
              f"head {ledger.head(Path(args.results))}")
        return 0
    out = Path(args.results)
    if not out.is_dir():
        raise InputError(f"results directory {args.results!r} does not exist or is not a directory")
    scan = scan_store(out)
    for warning in scan.warnings:
        _warn(warning)
    for path, problem in scan.invalid:
        _warn(f"invalid job file {path}: {problem}")
    print(ledger.head_line(out))
    return 1 if scan.invalid or scan.warnings else 0


def cmd_docs(args: argparse.Namespace) -> int:

    root = Path(args.root)
    if not root.is_dir():
        raise InputError(f"--root {args.root!r} is not a directory")
    if args.write:
        for path in docs.write(root):
            print(f"wrote {path}", file=sys.stderr)
        return 0
    stale = docs.drifted(root)
    for path in stale:
        print(f"{path}: differs from what the code generates (run 'cowbench docs --write')", file=sys.stderr)
    if not stale:
        print(f"{len(docs.PAGES)} reference pages match the code", file=sys.stderr)
    return 1 if stale else 0


def cmd_verify(args: argparse.Namespace) -> int:
    if args.sample is not None and args.sample < 1:
        raise InputError(f"--sample must be a positive integer, got {args.sample}")
    if args.jobs is not None and args.jobs < 1:
        raise InputError(f"--jobs must be a positive integer, got {args.jobs}")
    if not Path(args.results).is_dir():
        raise InputError(f"results directory {args.results!r} does not exist")
    tolerance = Tolerance(abs=args.tolerance, units=args.tolerance_units)
    sample = None if args.all else (args.sample or DEFAULT_SAMPLE)

    meter = Meter("jobs rerun", tag="verify")  # lines with an ETA off a terminal; a failed rerun named at once
    try:
        result = verify(Path(args.results), sample=sample, seed=args.seed, tolerance=tolerance, suite=args.suite,
                        n_jobs=args.jobs or default_n_jobs(), plugins=args.plugins, progress=meter,
                        on_failure=meter.failure)
    finally:
        meter.close()
    print(render(result, show_all=args.show_all))
    return 0 if result.ok else 1


def _parse_pairs(items: Sequence[str]) -> dict[str, list[tuple[str, str]]]:
    pairs: dict[str, list[tuple[str, str]]] = {}
    for item in items:
        parts = item.split(":")
        if len(parts) != 3 or not all(parts):
            raise InputError(f"--pair {item!r} must be written TRACK:SCENARIO:METHOD, e.g. edit:cow:erase_spurious")
        pairs.setdefault(parts[0], []).append((parts[1], parts[2]))
    return pairs


def cmd_reliability(args: argparse.Namespace) -> int:
    import shlex
    import time

    from cowbench.subject import SubjectConfig

    _load_plugins(args.plugins)
    out = Path(args.out)
    if out.suffix != ".md":
        raise InputError(f"--out must name a Markdown file ending in .md (the JSON goes beside it), got {args.out!r}")
    if out.exists() and not out.is_file():
        raise InputError(f"--out {args.out!r} exists and is not a file")
    _check_writable(out, args.out)
    if args.jobs is not None and args.jobs < 1:
        raise InputError(f"--jobs must be a positive integer, got {args.jobs}")
    if args.replicates < 2:
        raise InputError(f"--replicates must be an integer >= 2 (an s.d. needs two), got {args.replicates}")
    pairs = check_pairs(_parse_pairs(args.pair) if args.pair else DEFAULT_PAIRS)
    if args.no_study and not args.results:
        raise InputError("--no-study needs --results DIR (there would be nothing to report)")
    # the suite's own replicates first: a bad directory fails before any job runs
    leading = from_results(Path(args.results)) if args.results else None
    n_jobs = args.jobs or default_n_jobs()
    start = time.perf_counter()
    if args.no_study:
        import pandas as pd

        values = pd.DataFrame(columns=["track", "metric", "scenario", "method", "kind", "index", "value"])
    else:

        meter = Meter("replicates", tag="reliability")
        try:
            values = run_study(pairs, args.replicates, root_seed=args.root_seed, n_jobs=n_jobs, progress=meter)
        finally:
            meter.close()
    meta = {"command": "cowbench " + shlex.join(sys.argv[1:]) if sys.argv[1:2] == ["reliability"]
            else "cowbench reliability", "version": __version__, "scorer": scorer_version(),
            "root_seed": args.root_seed, "replicates": args.replicates, "subject": SubjectConfig().to_dict(),
            "pairs": {t: [list(p) for p in ps] for t, ps in pairs.items()}, "n_jobs": n_jobs,
            "wall_s": time.perf_counter() - start, "machine": fingerprint_summary(), "results": args.results}
    md, js = write_reliability(out, values, meta, leading=leading)
    print(md.read_text(encoding="utf-8"))
    print(f"wrote {md} and {js} in {meta['wall_s']:.0f} s", file=sys.stderr)
    return 0


class _Version(argparse.Action):
    """``--version``: the package version and the scorer hash, the two numbers a citation of results needs (the
    scorer hash is computed only when asked: it imports every score)."""

    def __init__(self, option_strings: Sequence[str], version: str, dest: str = argparse.SUPPRESS,
                 default: str = argparse.SUPPRESS, help: str | None = None) -> None:
        super().__init__(option_strings=option_strings, dest=dest, default=default, nargs=0, help=help)
        self.version = version

    def __call__(self, parser: argparse.ArgumentParser, *args: object, **kwargs: object) -> NoReturn:

        print(f"cowbench {self.version} (scorer {scorer_version()})")
        parser.exit()


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="cowbench", description="A benchmark of causal versus spurious features.")
    parser.add_argument("--version", action=_Version, version=__version__,
                        help="print the version and the scorer hash (what a report header carries) and exit")
    sub = parser.add_subparsers(dest="command", required=True)
    plugins = _Parser(add_help=False)
    plugins.add_argument("--plugins", action="append", default=[], metavar="MODULE_OR_FILE",
                         help="import a module or .py file that registers methods or scenarios (repeatable)")

    p = sub.add_parser("list", parents=[plugins], help="list scenarios, methods and suites")
    p.add_argument("what", nargs="?", default="all", choices=["all", "scenarios", "methods", "suites"])
    p.set_defaults(func=cmd_list)

    p = sub.add_parser("show", parents=[plugins], help="describe a scenario: variables, roles, truth")
    p.add_argument("scenario")
    p.add_argument("knobs", nargs="*", metavar="knob=value")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_show)

    p = sub.add_parser("generate", parents=[plugins], help="export one sample of a scenario with a dataset card")
    p.add_argument("scenario")
    p.add_argument("knobs", nargs="*", metavar="knob=value")
    p.add_argument("--seed", default="0", help="data seed, a non-negative integer (default: 0)")
    p.add_argument("--out", required=True, help="output directory (missing, empty or a previous export)")
    p.add_argument("--format", nargs="+", default=["npz,csv"],
                   help=f"npz, csv, parquet, {_LIST_HELP} (default: npz,csv)")
    p.add_argument("--force", action="store_true", help="write into a non-empty directory anyway")
    p.set_defaults(func=cmd_generate)

    p = sub.add_parser("run", parents=[plugins], help="run a suite (built-in name or TOML file)")
    p.add_argument("suite")
    p.add_argument("--out", help="results directory (default: results/<suite name>; runs/<suite name>-<hash> when "
                   "--methods, --replicates, --root-seed or --trials change the suite)")

    p.add_argument("--launcher", default="joblib", choices=launcher_names(),
                   help="joblib (processes, default), serial, dask (--scheduler or a LocalCluster), inprocess (debug)")
    p.add_argument("--scheduler", default=None, metavar="ADDRESS",
                   help="address of an existing Dask scheduler (with --launcher dask; default: a LocalCluster)")
    p.add_argument("--time-limit", type=float, default=None, metavar="SECONDS",
                   help="per-job time limit; a job past it is stored as failed, reason timeout (default: the suite's)")
    p.add_argument("--memory-limit", type=float, default=None, metavar="MB",
                   help="per-job memory limit in megabytes; a job over it is stored as failed, reason memory "
                   "(default: the suite's, else 80%% of the machine's memory divided among --jobs, at least 1024)")
    p.add_argument("--jobs", type=int, default=None, help="parallel workers (default: the usable cores)")
    p.add_argument("--replicates", type=int, default=None)
    p.add_argument("--root-seed", type=int, default=None)
    p.add_argument("--methods", nargs="+", default=None, help=f"method names, {_LIST_HELP} (overrides the suite)")
    p.add_argument("--scenarios", nargs="+", default=None, metavar="SCENARIO",
                   help=f"run only these scenarios of the suite: family names (all of its settings) or report "
                   f"labels, {_LIST_HELP}; a partial run, written under runs/")
    p.add_argument("--tracks", nargs="+", default=None, metavar="TRACK",
                   help=f"run only the methods that output one of these tracks (world, model, detect, edit), "
                   f"{_LIST_HELP}; a partial run, written under runs/")
    p.add_argument("--trials", type=int, default=None, metavar="K",
                   help="hyperparameter settings per method, drawn from its search space (overrides the suite)")
    p.add_argument("--force", action="store_true", help="rerun every job, done or not")
    p.add_argument("--retry-failed", action="store_true", help="rerun the jobs stored as failed")
    p.add_argument("--replace", action="store_true", help="replace the manifest and report of another version of "
                   "the same suite in --out (refused otherwise)")
    p.add_argument("--quiet", action="store_true", help="no progress on stderr (default: a bar on a terminal, "
                   "a line every 10 s or 5%% elsewhere)")
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("knobs", parents=[plugins], help="the knob glossary: defaults, ranges and meanings")
    p.add_argument("scenario", nargs="?", default=None)
    p.add_argument("--markdown", action="store_true", help="print the whole glossary as Markdown")
    p.set_defaults(func=cmd_knobs)

    p = sub.add_parser("check", parents=[plugins], help="run the conformance kit on a method (yours or ours)")
    p.add_argument("method")
    p.add_argument("--scenario", default=None, help="scenario to run the checks on (default: the first applicable)")
    p.set_defaults(func=cmd_check)

    p = sub.add_parser("anchor", help="reproduce a published result beside its numbers (results/anchors/)")

    p.add_argument("name", choices=list(ANCHORS))
    p.add_argument("--reps", type=int, default=None, help="repetitions per configuration (default: the anchor's own)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default=None, help="Markdown file to write (default: results/anchors/NAME.md)")
    p.set_defaults(func=cmd_anchor)

    p = sub.add_parser("status", help="planned, ok, failed and missing jobs of a results directory")
    p.add_argument("results")
    p.add_argument("--suite", default=None, help="the suite to show, when the directory holds several (default: all)")
    p.set_defaults(func=cmd_status)

    p = sub.add_parser("report", help="print the tables of a results directory")
    p.add_argument("results")
    p.add_argument("--suite", default=None, help="the suite to report, when the directory holds several "
                   "(default: each in turn)")

    p.add_argument("--format", nargs="+", default=None, metavar="FORMAT",
                   help=f"one or more of {', '.join(FORMATS)} and plot formats {', '.join(PLOT_FORMATS)}, "
                   f"{_LIST_HELP} (default: md; md and leaderboard with --out-dir); several, and plot formats, "
                   "need --out-dir")
    p.add_argument("--out-dir", default=None, help="directory to write the report files into (report.md, "
                   "report.csv, summary.json, report.tex, report.html) and the plots (plots/, PNG and SVG "
                   "unless plot formats are named) instead of printing one format")
    p.add_argument("--metrics", nargs="+", default=None, metavar="METRIC",
                   help=f"the metrics of the LaTeX tables, one table each, {_LIST_HELP} (default: each track's "
                   "primary metric)")
    p.add_argument("--gzip", nargs="+", default=None, metavar="FORMAT",
                   help=f"formats among --format to write gzip-compressed (FILE.gz; with --out-dir), {_LIST_HELP}")
    p.set_defaults(func=cmd_report)

    p = sub.add_parser("plot", help="CI dot plots per track and dose-response curves over swept knobs (PNG, SVG)")
    p.add_argument("results")
    p.add_argument("--out-dir", default=None, help="directory for the image files (default: RESULTS/plots)")
    p.add_argument("--format", nargs="+", default=["png,svg"], help=f"png, svg, {_LIST_HELP} (default: png,svg)")
    p.add_argument("--suite", default=None, help="the suite to plot, when the directory holds several "
                   "(default: each, in a folder of its own)")
    p.set_defaults(func=cmd_plot)

    p = sub.add_parser("compare", help="paired differences of two results directories, or of two methods in one "
                       "(--methods), with intervals, sign tests and a verdict per track")
    p.add_argument("results", nargs="+", metavar="RESULTS", help="one or two results directories")
    p.add_argument("--methods", nargs="+", default=None, metavar="M",
                   help="compare method M1 (of the first directory) with M2 (of the second, or the same): "
                   f"two {_LIST_HELP}")
    p.add_argument("--suite", default=None, help="the suite to compare, when a directory holds several")
    p.set_defaults(func=cmd_compare)

    p = sub.add_parser("ledger", help="the ledger of a results directory: check it (head hash, files it does not "
                       "vouch for; exit 1 if any) or adopt an older directory's files (after cowbench verify)")
    p.add_argument("action", choices=["check", "adopt"])
    p.add_argument("results")
    p.set_defaults(func=cmd_ledger)

    p = sub.add_parser("docs", help="write (or check) the reference pages generated from the code: the Task, "
                       "MethodOutput and the suite format (docs/reference/)")
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--write", action="store_true", help="write the pages")
    mode.add_argument("--check", action="store_true", help="exit 1 if a committed page differs (the default)")
    p.add_argument("--root", default=".", help="the repository root the pages live under (default: .)")
    p.set_defaults(func=cmd_docs)


    p = sub.add_parser("verify", parents=[plugins], help="rerun stored jobs and check every cell and confident rank "
                       "reproduces (exit 1 if not)")
    p.add_argument("results")
    which = p.add_mutually_exclusive_group()
    which.add_argument("--sample", type=int, default=None, metavar="K",
                       help=f"rerun K jobs drawn with --seed (default: {DEFAULT_SAMPLE})")
    which.add_argument("--all", action="store_true", help="rerun every stored job")
    p.add_argument("--seed", type=int, default=0, help="seed of the sample (default: 0)")
    p.add_argument("--tolerance", type=float, default=DEFAULT_ABS, metavar="ABS",
                   help=f"absolute tolerance of continuous metrics (default: {DEFAULT_ABS:g})")
    p.add_argument("--tolerance-units", type=float, default=DEFAULT_UNITS, metavar="U",
                   help="flipped predictions allowed in accuracy-type metrics (default: %(default)g)")
    p.add_argument("--suite", default=None, help="the suite to verify, when the directory holds several")
    p.add_argument("--jobs", type=int, default=None, help="parallel workers (default: the usable cores)")
    p.add_argument("--show-all", action="store_true", help="list every cell, not only those out of tolerance")
    p.set_defaults(func=cmd_verify)

    p = sub.add_parser("reliability", parents=[plugins], help="reseed noise of each track's primary metric and the "
                       "smallest difference the standard suite resolves (results/reliability.md)")
    p.add_argument("--out", default="results/reliability.md", help="Markdown file; the JSON is written beside it "
                   "(default: %(default)s)")
    p.add_argument("--replicates", type=int, default=10, help="reseeds per seed kind (default: %(default)s)")
    p.add_argument("--pair", action="append", default=[], metavar="TRACK:SCENARIO:METHOD",
                   help="a (scenario, method) to study on a track (repeatable; default: two methods per track on cow)")
    p.add_argument("--root-seed", type=int, default=0)
    p.add_argument("--jobs", type=int, default=None, help="parallel workers (default: the usable cores)")
    p.add_argument("--results", default=None, metavar="DIR",
                   help="a results directory (e.g. results/standard): add the resolution between the two leading "
                   "methods of each league over its own replicates, and the replicate count the targets need "
                   "(runs no job)")
    p.add_argument("--no-study", action="store_true",
                   help="skip the reseed study (only the --results section; seconds, not hours)")
    p.set_defaults(func=cmd_reliability)
    parser.commands = dict(sub.choices)  # name -> its parser: did-you-mean on an unknown flag looks there
    return parser


def _unrecognized(parser: argparse.ArgumentParser, args: argparse.Namespace, extras: Sequence[str]) -> str:
    """argparse's "unrecognized arguments" message, with the command's closest flag for each unknown one."""
    import difflib

    command = getattr(parser, "commands", {}).get(getattr(args, "command", None), parser)
    known = sorted({o for action in command._actions for o in action.option_strings if o.startswith("--")})
    hints = []
    for extra in extras:
        if extra.startswith("-"):
            close = difflib.get_close_matches(extra.split("=", 1)[0], known, n=1, cutoff=0.6)
            if close:
                hints.append((extra.split("=", 1)[0], close[0]))
    text = f"unrecognized arguments: {' '.join(extras)}"
    if len(hints) == 1:
        return f"{text}; did you mean {hints[0][1]}?"
    return text + (f"; did you mean {', '.join(f'{b} (for {a})' for a, b in hints)}?" if hints else "")


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    try:
        args, extras = parser.parse_known_args(argv)
        if extras:
            parser.error(_unrecognized(parser, args, extras))
    except SystemExit as exc:  # usage errors (one line, see _Parser), --help, --version
        return exc.code if isinstance(exc.code, int) else 2
    try:
        return int(args.func(args))
    except (InputError, ValueError) as exc:  # bad input: one line, no traceback, exit 2
        _print_err(str(exc))
        return 2
    except KeyboardInterrupt:
        _print_err("interrupted")
        return 130
    except BrokenPipeError:  # the reader went away (`cowbench list | head`): not an error of ours
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except OSError as exc:  # a path the user gave that cannot be read or written (after BrokenPipeError, a subclass)
        _print_err(f"{exc.strerror or exc}: {exc.filename}" if exc.filename else str(exc))
        return 2


if __name__ == "__main__":
    sys.exit(main())
