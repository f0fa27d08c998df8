"""Suites: TOML files naming scenarios (with knob grids), methods, replicates and the root seed.

::

    [suite]
    name = "smoke"
    root_seed = 0
    replicates = 3

    [subject]                 # optional: how subject and oracle models are trained
    arch = "mlp"

    [[scenarios]]
    name = "cow"
    knobs = { n_train = 2000 }                   # fixed values
    grid = { agreement_test = [0.1, 0.5] }       # optional: every combination becomes a scenario

    [methods]
    include = ["logistic", { name = "env_instability", params = { C = 100.0 } }]

Everything is validated before anything runs: unknown keys, scenarios, knobs, methods and
hyperparameters raise `InputError` naming the problem.
"""

from __future__ import annotations

import itertools
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from cowbench.errors import InputError
from cowbench.jobs import JobSpec, ReplicateSpec, make_job
from cowbench.registries import METHODS, SCENARIOS
from cowbench.seeds import stable_hash
from cowbench.store import check_suite_name

_TOP_KEYS = {"suite", "subject", "scenarios", "methods"}
_SUITE_KEYS = {"name", "description", "root_seed", "replicates", "time_limit"}


def builtin_suites() -> list[str]:
    """Names of the suites shipped with the package."""
    folder = resources.files("cowbench") / "suites"
    return sorted(p.name.removesuffix(".toml") for p in folder.iterdir() if p.name.endswith(".toml"))


@dataclass(frozen=True)
class Suite:
    """A parsed, validated suite."""

    name: str
    description: str
    root_seed: int
    replicates: int
    subject: Mapping[str, Any]
    scenarios: tuple[Mapping[str, Any], ...]  # scenario specs (generator, version, resolved knobs)
    methods: tuple[tuple[str, Mapping[str, Any]], ...]  # (name, hyperparameters)
    # seconds per job before it is stopped and stored as failed (None: the runner's default); how to run, not
    # what is run, so it is left out of to_dict() and the suite hash
    time_limit: float | None = None
    # per scenario swept by a grid: {"entry", "generator", "knobs" (the swept ones), "values", "scenario"};
    # how the report draws it (a dose-response curve), not what is run: not in to_dict() nor the hash
    sweeps: tuple[Mapping[str, Any], ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "description": self.description, "root_seed": self.root_seed,
                "replicates": self.replicates, "subject": dict(self.subject),
                "scenarios": [dict(s) for s in self.scenarios],
                "methods": [{"name": n, "params": dict(p)} for n, p in self.methods]}

    @property
    def hash(self) -> str:
        return stable_hash(self.to_dict())[:12]

    def pairs(self) -> list[tuple[Mapping[str, Any], str, Mapping[str, Any], str | None]]:
        """(scenario spec, method, hyperparameters, reason to skip or None) for every pair of the suite."""
        from cowbench.jobs import scenario_from_spec

        out = []
        for spec in self.scenarios:
            scenario = scenario_from_spec(spec)
            for name, params in self.methods:
                out.append((spec, name, params, METHODS.get(name).applicable(scenario)))
        return out

    def skipped(self) -> list[dict[str, Any]]:
        """The (scenario, method) pairs left out because the method cannot run there, with the reason."""
        return [{"scenario": dict(spec), "method": name, "reason": reason}
                for spec, name, _, reason in self.pairs() if reason is not None]

    def plan(self) -> list[JobSpec]:
        """Every applicable job, in a fixed order: scenario, replicate, method."""
        jobs = []
        by_scenario: dict[str, list[tuple[str, Mapping[str, Any]]]] = {}
        for spec, name, params, reason in self.pairs():
            if reason is None:
                by_scenario.setdefault(stable_hash(spec), []).append((name, params))
        for spec in self.scenarios:
            for r in range(self.replicates):
                replicate = ReplicateSpec(spec, r, self.root_seed, self.subject)
                methods = by_scenario.get(stable_hash(spec), [])
                jobs.extend(make_job(replicate, name, params) for name, params in methods)
        return jobs


def _fail(where: str, message: str) -> InputError:
    return InputError(f"suite {where}: {message}")


def _int(value: Any, where: str, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise _fail(where, f"must be an integer in [{low}, {high}], got {value!r}")
    return value


def _time_limit(value: Any) -> float | None:
    from cowbench.runner import check_time_limit

    try:
        return check_time_limit(value)
    except InputError as exc:
        raise _fail("[suite] time_limit", str(exc)) from None


def _scenarios(entries: Any, sweeps: list[dict[str, Any]] | None = None) -> list[dict[str, Any]]:
    """The scenario specs of the ``[[scenarios]]`` tables; ``sweeps`` (if given) receives, per scenario a grid
    made, the entry's index, the swept knobs and their values here."""
    if not isinstance(entries, list) or not entries:
        raise _fail("[[scenarios]]", "at least one scenario table is required")
    specs = []
    for i, entry in enumerate(entries):
        where = f"[[scenarios]] #{i + 1}"
        if not isinstance(entry, dict) or "name" not in entry:
            raise _fail(where, "needs a 'name'")
        extra = set(entry) - {"name", "knobs", "grid"}
        if extra:
            raise _fail(where, f"unknown key(s) {sorted(extra)}; allowed: name, knobs, grid")
        if not isinstance(entry["name"], str):
            raise _fail(where, f"'name' must be a scenario name (a string), got {entry['name']!r}")
        knobs, grid = entry.get("knobs", {}), entry.get("grid", {})
        if not isinstance(knobs, dict) or not isinstance(grid, dict):
            raise _fail(where, "'knobs' and 'grid' must be tables")
        for key, values in grid.items():
            if not isinstance(values, list) or not values:
                raise _fail(where, f"grid knob {key!r} needs a non-empty list of values")
        both = sorted(set(knobs) & set(grid))
        if both:
            raise _fail(where, f"knob(s) {both} are both fixed in 'knobs' and swept in 'grid'; keep one")
        family = SCENARIOS.get(entry["name"])
        for combo in itertools.product(*grid.values()) if grid else [()]:
            scn = family(**{**knobs, **dict(zip(grid, combo, strict=True))})
            if scn.spec in specs:  # the same jobs twice would be run twice and counted twice
                raise _fail(where, f"scenario {scn!r} appears twice (a repeated entry or grid value)")
            specs.append(scn.spec)
            if grid and sweeps is not None:
                sweeps.append({"entry": i, "generator": entry["name"], "knobs": list(grid),
                               "values": dict(zip(grid, combo, strict=True)), "scenario": scn.spec})
    return specs


def _methods(table: Any) -> list[tuple[str, dict[str, Any]]]:
    if not isinstance(table, dict) or set(table) - {"include"}:
        raise _fail("[methods]", "needs exactly one key, 'include', a list of names or {name, params} tables")
    include = table.get("include")
    if not isinstance(include, list) or not include:
        raise _fail("[methods]", "'include' must be a non-empty list")
    out = []
    for item in include:
        if isinstance(item, str):
            name, params = item, {}
        elif (isinstance(item, dict) and set(item) <= {"name", "params"} and isinstance(item.get("name"), str)):
            name, params = item["name"], item.get("params", {})
            if not isinstance(params, dict):
                raise _fail("[methods]", f"{name!r}: 'params' must be a table of name = value, got {params!r}")
        else:
            raise _fail("[methods]", f"entry {item!r} is neither a name nor a {{name, params}} table")
        cls = METHODS.get(name)
        if "random_state" in params:
            raise _fail("[methods]", f"{name!r}: random_state is derived from the root seed, do not set it")
        try:
            cls.check_params(params)  # names, types and ranges, before anything is planned
        except InputError as exc:  # already names the method, the hyperparameter and what is allowed
            raise _fail("[methods]", str(exc)) from None
        try:
            cls(**params)
        except (TypeError, ValueError) as exc:
            allowed = ", ".join(p for p in cls._param_names() if p != "random_state")
            raise _fail("[methods]", f"bad hyperparameters for {name!r}: {exc} (allowed: {allowed})") from None
        if (name, params) in out:
            raise _fail("[methods]", f"{name!r} is listed twice with the same hyperparameters {params}")
        out.append((name, dict(params)))
    return out


def parse_suite(raw: Mapping[str, Any], *, default_name: str = "suite") -> Suite:
    """Validate a suite given as a parsed TOML mapping."""
    from cowbench.subject import SubjectConfig

    extra = set(raw) - _TOP_KEYS
    if extra:
        raise _fail("file", f"unknown table(s) {sorted(extra)}; allowed: {', '.join(sorted(_TOP_KEYS))}")
    head = raw.get("suite", {})
    if not isinstance(head, dict) or set(head) - _SUITE_KEYS:
        raise _fail("[suite]", f"allowed keys: {', '.join(sorted(_SUITE_KEYS))}")
    try:
        subject = SubjectConfig.from_mapping(raw.get("subject", {})).to_dict()
    except (TypeError, ValueError) as exc:
        raise _fail("[subject]", str(exc)) from None
    description = head.get("description", "")
    if not isinstance(description, str):
        raise _fail("[suite] description", f"must be a string, got {description!r}")
    try:  # the name becomes a folder and a file name: a path in it would write outside the results
        name = check_suite_name(head.get("name", default_name))
    except InputError as exc:
        hint = "" if "name" in head else " (taken from the file name: set [suite] name)"
        raise _fail("[suite] name", f"{exc}{hint}") from None
    sweeps: list[dict[str, Any]] = []
    return Suite(
        name=name,
        description=description,
        root_seed=_int(head.get("root_seed", 0), "[suite] root_seed", 0, 2**32 - 1),
        replicates=_int(head.get("replicates", 3), "[suite] replicates", 1, 10_000),
        subject=subject,
        scenarios=tuple(_scenarios(raw.get("scenarios"), sweeps)),
        methods=tuple(_methods(raw.get("methods"))),
        time_limit=_time_limit(head.get("time_limit")),
        sweeps=tuple(sweeps),
    )


def load_suite(name_or_path: str, *, replicates: int | None = None, root_seed: int | None = None,
               methods: Sequence[str] | None = None) -> Suite:
    """A suite by built-in name or TOML path, with command-line overrides applied."""
    if not name_or_path.strip():
        raise InputError("the suite must be a built-in suite name or a TOML file, got an empty string")
    path = Path(name_or_path)
    if path.suffix == ".toml" or path.exists():
        if not path.exists():
            raise InputError(f"suite file {name_or_path!r} does not exist")
        if not path.is_file():
            raise InputError(f"suite file {name_or_path!r} is not a regular file")
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            raise InputError(f"suite file {name_or_path!r} is not UTF-8 text") from None
        default_name = path.stem
    elif name_or_path in builtin_suites():
        text = (resources.files("cowbench") / "suites" / f"{name_or_path}.toml").read_text(encoding="utf-8")
        default_name = name_or_path
    else:
        raise InputError(f"unknown suite {name_or_path!r}: not a file, and not one of the built-in suites "
                         f"({', '.join(builtin_suites())})")
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise InputError(f"suite {name_or_path!r} is not valid TOML: {exc}") from None
    raw.setdefault("suite", {})
    if replicates is not None:
        raw["suite"]["replicates"] = replicates
    if root_seed is not None:
        raw["suite"]["root_seed"] = root_seed
    if methods is not None:
        raw["methods"] = {"include": list(methods)}
    return parse_suite(raw, default_name=default_name)
