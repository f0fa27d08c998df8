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
    include = ["logistic", { name = "env_instability", params = { C = 100.0 } }, { name = "irm_linear", trials = 4 }]

``[suite] trials = K`` (default 1; a method entry's ``trials`` overrides it) runs K hyperparameter settings per
method, drawn from its search space (`cowbench.trials`; draw 0 is the defaults). ``[suite] selection`` names
the rules that pick one setting per replicate for the report (`cowbench.selection.RULES`, default
``["defaults"]``); ``"loeo"`` also refits edit methods with each training environment held out where a scenario
has at least 3 of them.

Everything is validated before anything runs: unknown keys, scenarios, knobs, methods and
hyperparameters raise `InputError` naming the problem.
"""

from __future__ import annotations

import itertools
import math
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from cowbench.errors import InputError
from cowbench.jobs import JobSpec, ReplicateSpec, make_job, scenario_from_spec
from cowbench.registries import METHODS, SCENARIOS
from cowbench.seeds import stable_hash
from cowbench.selection import RULES, loeo_applies
from cowbench.store import check_suite_name
from cowbench.trials import MAX_TRIALS, trial_settings

_TOP_KEYS = {"suite", "subject", "scenarios", "methods"}
_SUITE_KEYS = {"name", "description", "root_seed", "replicates", "time_limit", "memory_limit", "trials", "selection"}


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
    # megabytes per job before it is stopped and stored as failed with reason ``memory`` (None: the runner's
    # default share of the machine); how to run, like time_limit: not in to_dict() nor the hash
    memory_limit: float | None = None
    # per scenario swept by a grid: {"entry", "generator", "knobs" (the swept ones), "values", "scenario"};
    # how the report draws it (a dose-response curve), not what is run: not in to_dict() nor the hash
    sweeps: tuple[Mapping[str, Any], ...] = ()
    trials: int = 1  # hyperparameter draws per method (`cowbench.trials`)
    method_trials: tuple[int | None, ...] = ()  # per entry of ``methods``: its own trials, or None (the suite's)
    selection: tuple[str, ...] = ("defaults",)  # the rules the report applies (`cowbench.selection`)

    def to_dict(self) -> dict[str, Any]:
        # trials and selection only where they differ from the defaults: suites that predate them keep their hash
        methods = [{"name": n, "params": dict(p), **({"trials": k} if k is not None else {})}
                   for (n, p), k in zip(self.methods, self.entry_trials(explicit=True), strict=True)]
        extra = {"trials": self.trials} if self.trials != 1 else {}
        if tuple(self.selection) != ("defaults",):
            extra["selection"] = list(self.selection)
        return {"name": self.name, "description": self.description, "root_seed": self.root_seed,
                "replicates": self.replicates, "subject": dict(self.subject),
                "scenarios": [dict(s) for s in self.scenarios], "methods": methods, **extra}

    def entry_trials(self, *, explicit: bool = False) -> list[int | None]:
        """Trials of each entry of ``methods`` (``explicit``: None where the entry uses the suite's)."""
        own = list(self.method_trials) or [None] * len(self.methods)
        return own if explicit else [self.trials if k is None else k for k in own]

    @property
    def hash(self) -> str:
        return stable_hash(self.to_dict())[:12]

    def pairs(self) -> list[tuple[Mapping[str, Any], str, Mapping[str, Any], str | None]]:
        """(scenario spec, method, hyperparameters, reason to skip or None) for every pair of the suite."""
        out = []
        for spec in self.scenarios:
            scenario = scenario_from_spec(spec)
            for name, params in self.methods:
                cls = METHODS.get(name)
                out.append((spec, name, params, cls.applicable(scenario) or unscorable(cls.outputs, scenario)))
        return out

    def skipped(self) -> list[dict[str, Any]]:
        """The (scenario, method) pairs left out because the method cannot run there, with the reason."""
        out = [{"scenario": dict(spec), "method": name, "reason": reason}
               for spec, name, _, reason in self.pairs() if reason is not None]
        if "loeo" in self.selection:  # the pair runs, but the loeo rule gives it no row

            for spec, name, _, reason in self.pairs():
                why = loeo_applies(spec, METHODS.get(name)) if reason is None else None
                if why is not None:
                    out.append({"scenario": dict(spec), "method": name, "reason": f"no loeo selection: {why}"})
        return out

    def plan(self, plugins: Sequence[str] = ()) -> list[JobSpec]:
        """Every applicable job, in a fixed order: scenario, replicate, method, hyperparameter draw.

        ``plugins``: the run's plugin files or modules; their source hashes enter every job's spec (a run with
        plugins never shares job ids with one without, or with other plugins)."""
        # the draws depend on the root seed, the method and the index only: computed once for every scenario
        settings = [trial_settings(METHODS.get(name), k, self.root_seed, params)
                    for (name, params), k in zip(self.methods, self.entry_trials(), strict=True)]
        jobs = []
        by_scenario: dict[str, list[tuple[str, list[tuple[int, dict[str, Any]]], bool]]] = {}
        for i, (spec, name, _, reason) in enumerate(self.pairs()):
            if reason is None:
                loeo = "loeo" in self.selection and loeo_applies(spec, METHODS.get(name)) is None
                entry = (name, settings[i % len(self.methods)], loeo)
                by_scenario.setdefault(stable_hash(spec), []).append(entry)
        for spec in self.scenarios:
            for r in range(self.replicates):
                replicate = ReplicateSpec(spec, r, self.root_seed, self.subject)
                seen: set[str] = set()  # two entries of one method can draw the same setting: one job
                for name, drawn, loeo in by_scenario.get(stable_hash(spec), []):
                    for index, hparams in drawn:
                        job = make_job(replicate, name, hparams, trial=index, loeo=loeo, plugins=plugins)
                        if job.id not in seen:
                            seen.add(job.id)
                            jobs.append(job)
        return jobs


def track_undefined(track: str, scenario: Any) -> str | None:
    """Why no job on ``scenario`` can ever have a value of ``track``'s primary metric, or None if one can.

    The rule "plan only what can score" (issue 16): ``edit_score`` compares accuracies, so it needs a binary label;
    the world track needs a defined, nonzero world truth (``world_err`` is relative to ``||theta||``); detection
    needs a spurious and a causal variable to rank (where the scenario is not identifiable at a method's access,
    ``detect_score`` is missing but ``abstain_right``, the detect track's measure of knowing when to abstain, is
    defined, so the pair is planned); the model track is
    defined wherever the subject has a reliance, i.e. always; the discover track only where the subject is
    planted (the only place feature directions are known).
    """
    truth = scenario.truth
    if track == "edit" and scenario.scm.label_kind != "binary":
        return f"edit_score needs a binary label (accuracies on test_bal); this one is {scenario.scm.label_kind}"
    if track == "world" and not truth.world_defined:
        return f"the world truth is undefined: {truth.world_undefined}"
    if track == "world" and not any(truth.world_coef.values()):
        return "every world coefficient is 0 (no linear index): world_err divides by ||theta||"
    if track == "detect" and not (truth.of_role("spurious") and truth.keep):
        return "no spurious and causal variables to rank"
    if track == "discover":
        from cowbench.subject import subject_for

        if subject_for(scenario.spec, {}).get("arch") != "planted":
            return "direction-level truth exists only for planted subjects"
    return None


def unscorable(outputs: frozenset[str], scenario: Any) -> str | None:
    """The reason to skip a method with ``outputs`` on ``scenario``: every track it outputs is undefined there
    (`track_undefined`), or None if some track can score."""
    reasons = [track_undefined(track, scenario) for track in sorted(outputs)]
    if not reasons or any(r is None for r in reasons):
        return None
    return "; ".join(f"{track}: {r}" for track, r in zip(sorted(outputs), reasons, strict=True))


def _fail(where: str, message: str) -> InputError:
    return InputError(f"suite {where}: {message}")


def _int(value: Any, where: str, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise _fail(where, f"must be an integer in [{low}, {high}], got {value!r}")
    return value


def check_memory_limit(value: Any) -> float | None:
    """A per-job memory limit in megabytes (a finite number of at least 64), or None for the default."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or value < 64:
        raise InputError(f"the memory limit must be a number of megabytes, at least 64, got {value!r}")
    return float(value)


def check_time_limit(value: Any) -> float | None:
    """A per-job time limit in seconds (a positive finite number), or None for no limit."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or value <= 0:
        raise InputError(f"the time limit must be a positive number of seconds, got {value!r}")
    return float(value)


def _time_limit(value: Any) -> float | None:
    try:
        return check_time_limit(value)
    except InputError as exc:
        raise _fail("[suite] time_limit", str(exc)) from None


def _memory_limit(value: Any) -> float | None:
    try:
        return check_memory_limit(value)
    except InputError as exc:
        raise _fail("[suite] memory_limit", str(exc)) from None


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


def _methods(table: Any, trials: list[int | None] | None = None) -> list[tuple[str, dict[str, Any]]]:
    """The ``(name, params)`` entries of ``[methods]``; ``trials`` (if given) receives each entry's own trials."""
    if not isinstance(table, dict) or set(table) - {"include"}:
        raise _fail("[methods]", "needs exactly one key, 'include', a list of names or {name, params, trials} "
                    "tables")
    include = table.get("include")
    if not isinstance(include, list) or not include:
        raise _fail("[methods]", "'include' must be a non-empty list")
    out = []
    for item in include:
        own = None
        if isinstance(item, str):
            name, params = item, {}
        elif (isinstance(item, dict) and set(item) <= {"name", "params", "trials"}
              and isinstance(item.get("name"), str)):
            name, params = item["name"], item.get("params", {})
            if "trials" in item:
                own = _int(item["trials"], f"[methods] {name!r} trials", 1, MAX_TRIALS)
            if not isinstance(params, dict):
                raise _fail("[methods]", f"{name!r}: 'params' must be a table of name = value, got {params!r}")
        else:
            raise _fail("[methods]", f"entry {item!r} is neither a name nor a {{name, params, trials}} table")
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
        if trials is not None:
            trials.append(own)
    return out


def _selection(value: Any) -> tuple[str, ...]:
    if (not isinstance(value, list) or not value or not all(isinstance(v, str) for v in value)
            or len(set(value)) != len(value)):
        raise _fail("[suite] selection", f"must be a non-empty list of distinct rule names, got {value!r}")
    unknown = [v for v in value if v not in RULES]
    if unknown:
        raise _fail("[suite] selection", f"unknown rule(s) {unknown}; allowed: {', '.join(RULES)}")
    return tuple(value)


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
    method_trials: list[int | None] = []
    methods = tuple(_methods(raw.get("methods"), method_trials))
    return Suite(
        name=name,
        description=description,
        root_seed=_int(head.get("root_seed", 0), "[suite] root_seed", 0, 2**32 - 1),
        replicates=_int(head.get("replicates", 3), "[suite] replicates", 1, 10_000),
        subject=subject,
        scenarios=tuple(_scenarios(raw.get("scenarios"), sweeps)),
        methods=methods,
        time_limit=_time_limit(head.get("time_limit")),
        memory_limit=_memory_limit(head.get("memory_limit")),
        sweeps=tuple(sweeps),
        trials=_int(head.get("trials", 1), "[suite] trials", 1, MAX_TRIALS),
        method_trials=tuple(method_trials),
        selection=_selection(head.get("selection", ["defaults"])),
    )


def load_suite(name_or_path: str, *, replicates: int | None = None, root_seed: int | None = None,
               methods: Sequence[str] | None = None, trials: int | None = None) -> Suite:
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
    except RecursionError:  # tomllib parses nested arrays and tables recursively
        raise InputError(f"suite {name_or_path!r} is nested too deeply to parse (arrays or tables within "
                         "each other thousands of levels deep); a suite needs a few levels") from None
    raw.setdefault("suite", {})
    if replicates is not None:
        raw["suite"]["replicates"] = replicates
    if root_seed is not None:
        raw["suite"]["root_seed"] = root_seed
    if methods is not None:
        raw["methods"] = {"include": list(methods)}
    if trials is not None:  # every method: a per-method override in the file would contradict the flag
        raw["suite"]["trials"] = trials
        include = (raw.get("methods") or {}).get("include")
        if isinstance(include, list):
            raw["methods"]["include"] = [{k: v for k, v in e.items() if k != "trials"} if isinstance(e, dict) else e
                                         for e in include]
    try:
        return parse_suite(raw, default_name=default_name)
    except RecursionError:  # a value nested hundreds of levels deep, which parses but cannot be hashed
        raise InputError(f"suite {name_or_path!r} holds a value nested too deeply; a suite needs a few levels") \
            from None
