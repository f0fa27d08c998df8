"""Access levels and the `Task`: what a method may see of a job, and nothing more.

A method declares the access levels it needs; the harness hands it a `Task` built from a `TaskInputs`: plain
picklable data filtered at construction (copies of the arrays the declared levels allow, metadata as plain
values, the subject as a state dict and an architecture description, an anonymous generator for
interventions). It never holds the `Scenario`, the `Dataset`, the `Truth` or an unfiltered `Split`, so what a
method did not declare is not reachable through its attributes either (`cowbench.conformance.reachable_leaks`
walks them to prove it). In a job the inputs are *blinded* (`cowbench.blinding`): neutral, per-replicate
shuffled variable names, shuffled rows, relabelled environment and group ids and, where the rendering is the
identity, permuted input columns; `plain_inputs` builds them unblinded for tests and the conformance kit.
Arrays come out read-only and are the Task's own copies, so a method that modifies them fails loudly or
changes only its own view, never the data shared with other methods.

Every access-guarded attribute and capability a method reads is logged in ``task.read_log`` (in order of
first read) and its level in ``task.used``; identifiability is credited on what was read, not declared.
Routes that tell a method which variable is spurious (`TELLING_ROUTES`: group labels, the edit target) are
among them; the scorer leaves such a job unranked on detection.
"""

from __future__ import annotations

import copy
import dataclasses
import sys
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from cowbench.data import Truth
from cowbench.errors import AccessError
from cowbench.generators.scm import SCM, Environment, Scenario

if TYPE_CHECKING:
    import torch

    from cowbench.data import Dataset, Split
    from cowbench.generators.scm import Scenario

ACCESS_LEVELS = ("pooled", "env", "group_val", "group", "concept", "internals", "counterfactual")
ACCESS_DOC = {
    "pooled": "training inputs and labels, and black-box queries of the subject model",
    "env": "environment labels of the training and validation units",
    "group_val": "group labels of the validation units only (held-out group labels, as DFR and worst-group "
                 "validation use them); they name the spurious variable like 'group' does",
    "group": "group labels (label x spurious value) of the training and validation units; they name the "
             "spurious variable, so a method that reads them is not ranked on detection",
    "concept": "generator variables on a labelled subset of the training units, and the edit target (which "
               "names the spurious variable: reading it leaves the method unranked on detection)",
    "internals": "the subject model's weights and activations",
    "counterfactual": "interventions on the generator (do-queries on the training or validation units: the "
                      "inputs, labels and observed variables of the intervened units)",
}
# The levels at which the spurious role can become identifiable, weakest first. Group labels (``group``,
# ``group_val``) are not among them: they name the spurious variable, so they reveal the answer rather than
# identify it.
IDENTIFICATION_ORDER = ("pooled", "env", "concept", "counterfactual")
NEVER = "never"  # no access level that does not reveal the answer suffices
# What a method can read that names the spurious variable, and how a report says it in one line.
TELLING_ROUTES = {"group": "group labels", "group_val": "validation group labels",
                  "edit_target": "the edit target"}


def check_access(levels: Any) -> frozenset[str]:
    """Validate a declared access set."""
    levels = frozenset(levels)
    unknown = levels - set(ACCESS_LEVELS)
    if unknown:
        raise ValueError(f"unknown access level(s) {sorted(unknown)}; allowed: {', '.join(ACCESS_LEVELS)}")
    if "pooled" not in levels:
        raise ValueError("every method has 'pooled' access; declare it explicitly")
    return levels


def identifiable(identifiable_with: str, access: frozenset[str] | set[str]) -> bool:
    """Whether a method with ``access`` can identify a spurious role that needs ``identifiable_with``.

    Levels outside `IDENTIFICATION_ORDER` (``group``, ``group_val``, ``internals``) never count: group labels reveal the
    answer, the model's internals say nothing about the world. Pass the levels a method *read* (``task.used``)
    to credit identifiability on what it used rather than what it declared.
    """
    if identifiable_with not in IDENTIFICATION_ORDER:
        return False  # "never": no access level suffices
    need = IDENTIFICATION_ORDER.index(identifiable_with)
    return any(IDENTIFICATION_ORDER.index(a) >= need for a in access if a in IDENTIFICATION_ORDER)


def told_routes(used: set[str] | frozenset[str]) -> list[str]:
    """The routes in ``used`` through which a method learnt which variable is spurious, sorted."""
    return sorted(set(used) & set(TELLING_ROUTES))


def levels_read(used: set[str] | frozenset[str]) -> frozenset[str]:
    """The access levels among ``used`` (``used`` also holds telling routes such as ``edit_target``)."""
    return frozenset(set(used) & set(ACCESS_LEVELS))


_LOG_LEVELS = {"x": "pooled", "y": "pooled", "env": "env", "predict_logit": "pooled", "concept_index": "concept",
               "concepts": "concept", "concept_x": "concept", "edit_target": "concept", "model": "internals",
               "intervene": "counterfactual"}


def used_from_log(log: list[str], access: Any) -> set[str]:
    """The ``used`` set (guarded levels and telling routes, as `Task.used`) of a read log.

    The scorer credits identifiability and records ``told`` from it; an entry it does not know is ignored
    (the log is kept as it came).
    """
    access = frozenset(access)
    used: set[str] = set()
    for entry in log:
        if entry.startswith("intervene:"):
            used.add("counterfactual")
            entry = entry.split(":", 1)[1]
        split, _, part = entry.partition(".")
        key = part or split
        if key == "group":  # validation group labels alone are the finer level
            used.add("group_val" if split == "val" and "group" not in access else "group")
        elif key in _LOG_LEVELS:
            used.add(_LOG_LEVELS[key])
        if key == "edit_target":
            used.add("edit_target")
    used.discard("pooled")
    return used


def spread_rows(n_rows: int, n: int) -> np.ndarray:
    """``min(n, n_rows)`` row indices evenly spaced over ``range(n_rows)``.

    Splits are stored environment by environment, so the first ``n`` rows would all come from the first
    environment; evenly spaced rows represent every environment in proportion.
    """
    n = min(int(n), n_rows)
    return np.round(np.linspace(0, n_rows - 1, n)).astype(np.int64)


def _frozen(a: np.ndarray) -> np.ndarray:
    """A read-only copy that owns its memory (no ``.base`` leading back to the shared array)."""
    out = np.array(a, copy=True)
    out.setflags(write=False)
    return out


def _readonly(a: np.ndarray) -> np.ndarray:
    view = a.view()
    view.setflags(write=False)
    return view


# -- what a Task is built from: plain, picklable data ------------------------------------------------


@dataclasses.dataclass(frozen=True)
class SplitInputs:
    """One split's arrays as the method may see them (``env``/``group`` None where not allowed)."""

    name: str
    x: np.ndarray
    y: np.ndarray
    env: np.ndarray | None = None
    group: np.ndarray | None = None
    group_level: str = "group"  # the level a read of ``group`` is checked against (``group_val`` on val alone)


# the layer types a subject's architecture description may name, with the constructor arguments kept
_LAYERS = {
    "Linear": lambda m: {"in_features": m.in_features, "out_features": m.out_features, "bias": m.bias is not None},
    "ReLU": lambda m: {},
    "Flatten": lambda m: {"start_dim": m.start_dim, "end_dim": m.end_dim},
    "Unflatten": lambda m: {"dim": m.dim, "unflattened_size": tuple(m.unflattened_size)},
    "Conv2d": lambda m: {"in_channels": m.in_channels, "out_channels": m.out_channels,
                         "kernel_size": tuple(m.kernel_size), "stride": tuple(m.stride),
                         "padding": tuple(m.padding), "bias": m.bias is not None},
    "MaxPool2d": lambda m: {"kernel_size": m.kernel_size, "stride": m.stride},
}


def describe_architecture(model: Any) -> tuple[tuple[str, dict[str, Any]], ...] | None:
    """An ``nn.Sequential`` of known layer types as ``((type name, constructor kwargs), ...)``; else None."""
    from torch import nn

    if type(model) is not nn.Sequential:
        return None
    layers = []
    for module in model:
        kind = type(module).__name__
        if kind not in _LAYERS or type(module) is not getattr(nn, kind):
            return None
        layers.append((kind, _LAYERS[kind](module)))
    return tuple(layers)


@dataclasses.dataclass(frozen=True)
class SubjectInputs:
    """The subject model as data: an architecture description and a state dict of numpy arrays.

    ``module`` is the fallback for a model `describe_architecture` cannot describe (a custom module in a test):
    it is pickled as it is. `build` returns a fresh, private, eval-mode module either way.
    """

    architecture: tuple[tuple[str, dict[str, Any]], ...] | None
    state: Mapping[str, np.ndarray] | None
    module: Any = None

    @classmethod
    def of(cls, model: Any, columns: np.ndarray | None = None) -> SubjectInputs:
        """``model`` as data; ``columns`` (method column j = model column ``columns[j]``) is folded into its first
        layer when it starts with an ``nn.Linear``, else the model is wrapped to take the permuted columns."""
        arch = describe_architecture(model)
        if arch is None:
            module = copy.deepcopy(model)
            return cls(None, None, module if columns is None else _reordered(module, np.argsort(columns)))
        state = {k: v.detach().cpu().numpy().copy() for k, v in model.state_dict().items()}
        if columns is not None:
            if arch[0][0] != "Linear":
                return cls(None, None, _reordered(copy.deepcopy(model), np.argsort(columns)))
            # x_real[:, columns[j]] = x_method[:, j], so W x_real = W[:, columns] x_method
            state["0.weight"] = np.ascontiguousarray(state["0.weight"][:, columns])
        return cls(arch, state)

    def build(self) -> torch.nn.Module:
        import torch
        from torch import nn

        if self.architecture is None:
            return copy.deepcopy(self.module).eval()
        model = nn.Sequential(*[getattr(nn, kind)(**kwargs) for kind, kwargs in self.architecture])
        state = {k: torch.from_numpy(np.array(v, copy=True)) for k, v in self.state.items()}
        if state:  # the subject's own precision (load_state_dict would cast into the fresh module's)
            model.to(dtype=next(iter(state.values())).dtype)
        model.load_state_dict(state)
        return model.eval()


def _reordered(module: Any, index: np.ndarray) -> Any:
    from cowbench.models import ColumnOrder  # torch: imported where a model is built, not at import

    return ColumnOrder(module, index)




@dataclasses.dataclass(frozen=True)
class _Units:
    """The units an intervention re-evaluates: their split name, environments and exogenous noise only."""

    name: str
    env: np.ndarray
    exogenous: Mapping[str, np.ndarray]
    do: Mapping[str, Any] = dataclasses.field(default_factory=dict)

    def __len__(self) -> int:
        return int(self.env.shape[0])


def _anonymous_generator(scenario: Scenario, env_order: Mapping[int, int] | None = None) -> Scenario:
    """The scenario's equations, parameters and rendering without its truth, roles or equation texts.

    Interventions need the generator; this copy keeps only what re-evaluating units needs. Every observed
    variable gets the role ``nuisance``, the truth has no world coefficients and no identification, the
    spec names no family or knobs, environments are renamed ``env0``... and, with ``env_order`` (stored id ->
    shown id), reordered so that a unit's environment index is its shown (relabelled) id. What stays
    reachable (documented in `Task`): the equations as functions (their own constants and code included),
    the parameters by name per environment, the rendering, and the variables' real names.
    """
    scm = scenario.scm
    keep = ("label", "hidden")
    variables = tuple(dataclasses.replace(v, role=v.role if v.role in keep else "nuisance", text="")
                      for v in scm.variables)
    truth = Truth(roles={v.name: v.role for v in variables}, world_coef={}, link="", identifiable_with="",
                  identifiable_reason="")
    envs = list(scm.environments)
    if env_order:
        shown = list(envs)
        for stored, new in env_order.items():
            shown[new] = envs[stored]
        envs = shown
    envs = [Environment(f"env{i}", dict(e.params), e.deployment) for i, e in enumerate(envs)]
    bare = SCM(variables, scm.params, tuple(envs), scm.rendering, truth, scm.sizes)
    return Scenario({"generator": "anonymous", "knobs": {}}, bare)


@dataclasses.dataclass(frozen=True)
class InterventionInputs:
    """What ``task.intervene`` needs: an anonymous generator, the training and validation units (in the rows'
    shown order, environments relabelled) and the name and column maps between shown and real variables.

    ``generator`` is the anonymous `SCM` (not a `Scenario`, whose immutability guard refuses unpickling).
    Picklable with cloudpickle (equations are closures; the standard pickle refuses them). A do-query names
    shown variables; the result comes back in shown names, shown rows and shown columns.
    """

    generator: Any
    units: Mapping[str, _Units]
    real_name: Mapping[str, str]  # shown observed name -> the generator's name
    columns: np.ndarray | None  # shown column j = rendered column columns[j]; None: the rendering's own order
    strict: bool = True  # blinded: only shown observed names may be intervened on

    def __call__(self, do: Mapping[str, Any], split: str
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray, Callable[[], pd.DataFrame]]:
        if split not in self.units:
            raise AccessError(f"interventions are on 'train' or 'val' units, not {split!r}")
        real = {}
        for name, value in dict(do).items():
            if name in self.real_name:
                real[self.real_name[name]] = value
            elif self.strict:
                raise AccessError(f"cannot intervene on {name!r}: interventions name observed variables, "
                                  f"one of {', '.join(sorted(self.real_name))}")
            else:
                real[name] = value
        units = self.units[split]
        for key, value in real.items():  # what `Scenario.intervene` checks (the SCM is held bare: it pickles)
            if key not in self.generator.truth.roles:
                raise ValueError(f"cannot intervene on unknown variable {key!r}")
            if np.shape(value) not in ((), (len(units),)):
                raise ValueError(f"do[{key!r}] must be a scalar or have shape ({len(units)},), got {np.shape(value)}")
            if not np.all(np.isfinite(value)):
                raise ValueError(f"do[{key!r}] has non-finite values")
        x, y, values = self.generator.rendered(units.exogenous, units.env, real)
        if self.columns is not None:
            x = x[:, self.columns]
        generator, real_name = self.generator, dict(self.real_name)

        def concepts() -> pd.DataFrame:  # built when read: most do-queries read only x (about half their cost)
            columns = generator.concept_columns(values, list(real_name.values()))
            return pd.DataFrame({shown: columns[name] for shown, name in real_name.items()})

        return x, y, units.env, concepts


@dataclasses.dataclass(frozen=True)
class TaskInputs:
    """Everything a method's Task holds, as plain picklable data.

    Built by the harness from a prepared replicate with the method's declared access (`plain_inputs`, or
    `cowbench.blinding.blind_inputs` in a job); holds nothing the access does not allow. Per-variable
    fields (``variables``, ``variable_kinds``, ``input_map``, ``instruments``, the concepts' columns,
    ``edit_target``) use the names the method sees.
    """

    access: frozenset[str]
    variables: tuple[str, ...]
    feature_names: tuple[str, ...]
    input_map: Mapping[str, int] | None
    variable_kinds: Mapping[str, str]
    instruments: tuple[str, ...]
    label_kind: str
    n_environments: int
    subject_config: Mapping[str, Any]
    n_concept: int
    train: SplitInputs
    val: SplitInputs
    subject: SubjectInputs
    concept_index: np.ndarray | None = None
    concepts: pd.DataFrame | None = None
    concept_x: np.ndarray | None = None
    edit_target: tuple[str, ...] | None = None
    interventions: InterventionInputs | None = None


@dataclasses.dataclass(frozen=True)
class Shown:
    """How a replicate is shown to a method: the identity (`plain_inputs`) or a blinding (`cowbench.blinding`).

    ``names``: real observed variable -> shown name. ``columns``: shown input column j = real column
    ``columns[j]`` (None: unchanged). ``rows``: split -> order (shown row i = stored row ``rows[split][i]``;
    absent: unchanged). ``env`` and ``group``: stored id -> shown id (absent ids unchanged).
    ``feature_names``: the shown feature names (None: the rendering's own).
    """

    names: Mapping[str, str]
    columns: np.ndarray | None = None
    rows: Mapping[str, np.ndarray] = dataclasses.field(default_factory=dict)
    env: Mapping[int, int] = dataclasses.field(default_factory=dict)
    group: Mapping[int, int] = dataclasses.field(default_factory=dict)
    feature_names: tuple[str, ...] | None = None
    strict: bool = False

    def order(self, split: str, n: int) -> np.ndarray:
        return np.asarray(self.rows[split]) if split in self.rows else np.arange(n)

    @staticmethod
    def relabel(ids: np.ndarray, mapping: Mapping[int, int]) -> np.ndarray:
        if not mapping:
            return np.asarray(ids)
        table = np.arange(int(max(max(mapping), int(np.max(ids, initial=0)))) + 1, dtype=np.int64)
        for old, new in mapping.items():
            table[int(old)] = int(new)
        return table[np.asarray(ids, dtype=np.int64)].astype(np.asarray(ids).dtype)


def build_inputs(scenario: Scenario, data: Dataset, subject: Any, access: Any, *, subject_config: Mapping[str, Any],
                 n_concept: int = 1000, shown: Shown | None = None) -> TaskInputs:
    """The `TaskInputs` of ``access`` on a prepared replicate, shown through ``shown`` (default: unchanged)."""
    access = check_access(access)
    real_vars = list(scenario.variables)
    shown = shown or Shown({v: v for v in real_vars})
    name = dict(shown.names)
    variables = tuple(sorted((name[v] for v in real_vars), key=_natural)) if shown.strict else tuple(
        name[v] for v in real_vars)
    real_of = {name[v]: v for v in real_vars}
    cols = shown.columns

    def x_of(x: np.ndarray) -> np.ndarray:
        return x if cols is None else x[:, cols]

    def split_inputs(split: Split) -> SplitInputs:
        # validation group labels alone are the finer level ``group_val``; ``group`` covers both splits
        level = "group_val" if split.name == "val" and "group" not in access else "group"
        rows = shown.order(split.name, len(split))
        return SplitInputs(
            split.name, _frozen(x_of(split.x[rows])), _frozen(split.y[rows]),
            _frozen(shown.relabel(split.env[rows], shown.env)) if "env" in access else None,
            _frozen(shown.relabel(split.group[rows], shown.group)) if level in access else None, level)

    def listed(names: Any) -> tuple[str, ...]:
        # blinded, every list and mapping of variables is in shown-name order: the declaration order of the
        # real variables (grass third in cow) must not show through a dict's or a tuple's order
        names = tuple(names)
        return tuple(sorted(names, key=_natural)) if shown.strict else names

    imap = scenario.input_map
    if imap is None:
        input_map = None
    else:
        where = {j: j for j in imap.values()} if cols is None else {int(c): j for j, c in enumerate(cols)}
        by_shown = {name[v]: where[j] for v, j in imap.items()}
        input_map = {v: by_shown[v] for v in listed(by_shown)}
    if shown.feature_names is not None:
        features = tuple(shown.feature_names)
    else:
        features = tuple(scenario.feature_names)
    concept = {}
    n_concept = min(int(n_concept), len(data.train))
    if "concept" in access:
        order = shown.order("train", len(data.train))
        position = np.empty(len(order), dtype=np.int64)
        position[order] = np.arange(len(order))
        # the same units as an unblinded Task's (evenly spaced over the stored split, so every environment in
        # proportion), listed by their shown row, which is random
        index = np.sort(position[spread_rows(len(data.train), n_concept)])
        stored = order[index]
        frame = data.train.concepts.iloc[stored][[real_of[v] for v in variables]].reset_index(drop=True)
        frame.columns = list(variables)
        concept = {"concept_index": _frozen(index), "concepts": frame, "concept_x": _frozen(x_of(data.train.x[stored])),
                   "edit_target": listed(name[t] for t in scenario.truth.edit_targets)}
    interventions = None
    if "counterfactual" in access:
        env_order = {int(k): int(v) for k, v in shown.env.items()}
        units = {}
        for split in (data.train, data.val):
            rows = shown.order(split.name, len(split))
            units[split.name] = _Units(split.name, _frozen(shown.relabel(split.env[rows], env_order)),
                                       {k: _frozen(v[rows]) for k, v in split.exogenous.items()})
        interventions = InterventionInputs(_anonymous_generator(scenario, env_order).scm, units,
                                           {v: real_of[v] for v in variables}, cols, strict=shown.strict)
    return TaskInputs(
        access=access, variables=variables, feature_names=features, input_map=input_map,
        variable_kinds={v: scenario.kind(real_of[v]) for v in variables},
        instruments=listed(name[v] for v in scenario.truth.of_role("instrument")),
        label_kind=scenario.scm.label_kind, n_environments=len(scenario.scm.train_envs),
        subject_config=dict(subject_config), n_concept=n_concept,
        train=split_inputs(data.train), val=split_inputs(data.val), subject=SubjectInputs.of(subject, cols),
        interventions=interventions, **concept)


def _natural(name: str) -> tuple[int, str]:
    """Sort key putting ``v2`` before ``v10``."""
    digits = name.lstrip("v")
    return (int(digits), name) if digits.isdigit() else (1 << 30, name)


def plain_inputs(scenario: Scenario, data: Dataset, subject: Any, access: Any, *, subject_config: Mapping[str, Any],
                 n_concept: int = 1000) -> TaskInputs:
    """Unblinded `TaskInputs`: real names, stored row order (tests, the conformance kit, `cowbench.selection`)."""
    return build_inputs(scenario, data, subject, access, subject_config=subject_config, n_concept=n_concept)


# -- what a method holds: the Task ----------------------------------------------------------------


Need = Callable[[str, str], None]
Read = Callable[[str, str, str], None]


class SplitView:
    """One split as a method sees it: ``x`` and ``y`` always, ``env`` and ``group`` only where declared.

    It holds only the arrays the method's access allows (undeclared ones are None and their property
    raises `AccessError`); ``read(entry, level, what)`` logs a read of a part, or raises.
    """

    __slots__ = ("_env", "_group", "_group_level", "_read", "_x", "_y", "name")

    def __init__(self, name: str, x: np.ndarray, y: np.ndarray, env: np.ndarray | None,
                 group: np.ndarray | None, read: Read, group_level: str = "group"):
        self.name = name
        self._x, self._y, self._env, self._group, self._read = x, y, env, group, read
        self._group_level = group_level  # the level a read of ``group`` is checked against and recorded as

    def spread(self, n: int) -> SplitView:
        """The same split restricted to ``n`` evenly spaced units (all of them if it has fewer)."""
        if n >= len(self):
            return self
        rows = spread_rows(len(self), n)

        def pick(a: np.ndarray | None) -> np.ndarray | None:
            return None if a is None else _frozen(a[rows])

        return self._restricted(rows, pick)

    def _restricted(self, rows: np.ndarray, pick: Callable) -> SplitView:
        return SplitView(self.name, pick(self._x), pick(self._y), pick(self._env), pick(self._group), self._read,
                         self._group_level)

    @property
    def x(self) -> np.ndarray:
        """Inputs, shape (n, d), float32, read-only."""
        self._read(f"{self.name}.x", "pooled", "inputs")
        return _readonly(self._x)

    @property
    def y(self) -> np.ndarray:
        """Labels, shape (n,), read-only."""
        self._read(f"{self.name}.y", "pooled", "labels")
        return _readonly(self._y)

    @property
    def env(self) -> np.ndarray:
        """Environment labels, shape (n,) (access level ``env``; ids relabelled per replicate)."""
        self._read(f"{self.name}.env", "env", "environment labels")
        return _readonly(self._env)

    @property
    def group(self) -> np.ndarray:
        """Group labels, shape (n,) (access level ``group``, or ``group_val`` for the validation split only; they
        name the spurious variable). Ids are relabelled per replicate: treat them as categories."""
        self._read(f"{self.name}.group", self._group_level, f"group labels of {self.name!r}")
        return _readonly(self._group)

    def __len__(self) -> int:
        return int(self._y.shape[0])


class Intervened(SplitView):
    """Units under an intervention: ``x``, ``y`` and ``concepts`` (observed variables), ``env`` if declared.

    Group labels are never part of it: they are the training and validation units' (access ``group``),
    and they would name the spurious variable to a method that declared only ``counterfactual``.
    """

    __slots__ = ("_concepts", "_make_concepts")

    def __init__(self, name: str, x: np.ndarray, y: np.ndarray, env: np.ndarray | None,
                 concepts: pd.DataFrame | Callable[[], pd.DataFrame], read: Read):
        super().__init__(name, x, y, env, None, read)
        # a DataFrame, or a function that builds it on the first read (`InterventionInputs` passes one)
        self._concepts = concepts if isinstance(concepts, pd.DataFrame) else None
        self._make_concepts = None if isinstance(concepts, pd.DataFrame) else concepts

    def _frame(self) -> pd.DataFrame:
        if self._concepts is None:
            self._concepts = self._make_concepts()
            self._make_concepts = None
        return self._concepts

    def _restricted(self, rows: np.ndarray, pick: Callable) -> SplitView:
        return Intervened(self.name, pick(self._x), pick(self._y), pick(self._env),
                          lambda: self._frame().iloc[rows].reset_index(drop=True), self._read)

    @property
    def concepts(self) -> pd.DataFrame:
        """The observed variables of the intervened units (no label, no hidden ones), a copy."""
        return self._frame().copy()

    @property
    def group(self) -> np.ndarray:
        raise AccessError("interventions do not return group labels (they would name the spurious variable)")


def _black_box(subject: SubjectInputs) -> Callable[[np.ndarray], np.ndarray]:
    made: list[Any] = []

    def predict_logit(x: np.ndarray) -> np.ndarray:
        from cowbench.models import logits

        if not made:
            made.append(subject.build())
        return logits(made[0], x)

    return predict_logit


def _private_copy(subject: SubjectInputs) -> Callable[[], torch.nn.Module]:
    made: list[torch.nn.Module] = []

    def model() -> torch.nn.Module:
        if not made:
            made.append(subject.build())
        return made[0]

    return model


class Task:
    """A job's data and subject model, seen through the method's declared access levels.

    Built from a `TaskInputs` (``Task(inputs)``, as the method process does), or for tests and the
    conformance kit from a prepared replicate, ``Task(scenario, data, subject, access, subject_config=...)``,
    which shows it unblinded (`plain_inputs`). What stays reachable from a Task's attributes: with any access,
    the subject's weights inside ``predict_logit``'s closure (a black-box query needs them; they carry no
    truth); with ``counterfactual``, the exogenous noise of the training and validation units and an anonymous
    copy of the generator (equations as functions with their constants and code, parameters by name per
    environment, rendering, the real variable names), roles, texts, truth and family stripped. A do-query
    answers questions about those anyway; nothing else of the truth is reachable.

    Parameters
    ----------
    inputs : TaskInputs or Scenario
        What the Task holds; a `Scenario` builds unblinded inputs from the arguments below.
    data, subject, access, subject_config, n_concept
        With a `Scenario` only: the replicate's data, the subject model (copied), the declared access
        levels, how the subject was built (public: a method may retrain the architecture) and the size of
        the labelled subset of training units that ``concept`` access reveals.
    """

    def __init__(self, inputs: TaskInputs | Scenario, data: Dataset | None = None, subject: Any = None,
                 access: Any = None, *, subject_config: Mapping[str, Any] | None = None, n_concept: int = 1000):
        if not isinstance(inputs, TaskInputs):
            inputs = plain_inputs(inputs, data, subject, access, subject_config=subject_config or {},
                                  n_concept=n_concept)
        self.access = frozenset(inputs.access)
        self.subject_config = dict(inputs.subject_config)
        self.n_concept = inputs.n_concept
        self._used: set[str] = set()  # guarded levels and telling routes read, for the scorer's bookkeeping
        self._log: list[str] = []  # every guarded part and capability read, in order of first read
        self._variables = tuple(inputs.variables)
        self._feature_names = tuple(inputs.feature_names)
        self._input_map = None if inputs.input_map is None else dict(inputs.input_map)
        self._kinds = dict(inputs.variable_kinds)
        self._instruments = tuple(inputs.instruments)
        self._label_kind = inputs.label_kind
        self._n_environments = inputs.n_environments
        self._splits = {s.name: SplitView(s.name, s.x, s.y, s.env, s.group, self._read, s.group_level)
                        for s in (inputs.train, inputs.val)}
        self._concept_index, self._concept_x = inputs.concept_index, inputs.concept_x
        self._concepts, self._edit_target = inputs.concepts, inputs.edit_target
        self._predict = _black_box(inputs.subject)
        self._model = _private_copy(inputs.subject) if "internals" in self.access else None
        self._intervene = inputs.interventions if "counterfactual" in self.access else None
        self._with_env = "env" in self.access

    def _need(self, level: str, what: str) -> None:
        if level not in self.access:
            raise AccessError(
                f"{what} need(s) access level {level!r}; the method declared {sorted(self.access)}"
            )
        if level != "pooled":  # every method reads its pooled data: ``used`` lists what sets it apart
            self._used.add(level)

    def _read(self, entry: str, level: str, what: str) -> None:
        self._need(level, what)
        if entry not in self._log:
            self._log.append(entry)
            # announced to the sandbox's audit hook (`cowbench.audit.READ_EVENT`), which streams it out of the
            # method's process at once: a method that later rewrites ``_log`` cannot take the read back
            sys.audit("cowbench.task.read", entry)

    @property
    def read_log(self) -> list[str]:
        """Every access-guarded attribute and capability read so far (``train.x``, ``train.env``, ``val.group``,
        ``concepts``, ``edit_target``, ``model``, ``intervene``, ``intervene:train.env``, ``predict_logit``...),
        in order of first read; a copy. `used_from_log` turns it into ``used``."""
        return list(self._log)

    @property
    def used(self) -> set[str]:
        """The guarded access levels (not ``pooled``) and telling routes read so far; a copy."""
        return set(self._used)

    @property
    def told(self) -> list[str]:
        """The routes read so far that name the spurious variable (`TELLING_ROUTES`), sorted."""
        return told_routes(self._used)

    # -- always visible: metadata --------------------------------------------------------------------

    @property
    def variables(self) -> list[str]:
        """Observed variable names (what the per-variable outputs are keyed by); neutral in a job."""
        return list(self._variables)

    @property
    def feature_names(self) -> tuple[str, ...]:
        return self._feature_names

    @property
    def input_map(self) -> dict[str, int] | None:
        """Variable -> input column where the rendering has one column per variable; else None."""
        return None if self._input_map is None else dict(self._input_map)

    @property
    def variable_kinds(self) -> dict[str, str]:
        return dict(self._kinds)

    @property
    def instruments(self) -> list[str]:
        """Variables the study design offers as instruments or anchors (design metadata, not truth)."""
        return list(self._instruments)

    @property
    def label_kind(self) -> str:
        """``binary`` (the subject model outputs a logit) or ``continuous`` (it outputs a prediction)."""
        return self._label_kind

    @property
    def n_environments(self) -> int:
        """Number of training environments."""
        return self._n_environments

    # -- pooled -----------------------------------------------------------------------------------

    @property
    def train(self) -> SplitView:
        return self._splits["train"]

    @property
    def val(self) -> SplitView:
        return self._splits["val"]

    def predict_logit(self, x: np.ndarray) -> np.ndarray:
        """Black-box query of the subject model: logits, shape (n,)."""
        self._read("predict_logit", "pooled", "black-box queries")
        return self._predict(x)

    # -- concept ----------------------------------------------------------------------------------

    @property
    def concept_index(self) -> np.ndarray:
        """Training-row indices of the labelled subset (``n_concept`` rows, every training environment in
        proportion), ascending in the training split's row order."""
        self._read("concept_index", "concept", "concept labels")
        return self._concept_index

    @property
    def concepts(self) -> pd.DataFrame:
        """Observed generator variables of the labelled training units ``concept_index`` (a copy), one column
        per variable in ``variables`` order."""
        self._read("concepts", "concept", "concept labels")
        return self._concepts.copy()

    @property
    def concept_x(self) -> np.ndarray:
        """Inputs of the units ``concepts`` describes, shape (n_concept, d)."""
        self._read("concept_x", "concept", "concept labels")
        return self._concept_x

    @property
    def edit_target(self) -> list[str]:
        """The variable(s) an edit should remove, by the names the method sees.

        It names the spurious variable: reading it is recorded (``told``) and the scorer leaves the job's
        detection metrics missing.
        """
        self._read("edit_target", "concept", "the edit target")
        self._used.add("edit_target")
        return list(self._edit_target)

    # -- internals --------------------------------------------------------------------------------

    @property
    def model(self) -> torch.nn.Module:
        """A private copy of the subject model (weights and activations), taking the inputs as shown."""
        self._read("model", "internals", "the subject model's internals")
        return self._model()

    # -- counterfactual ---------------------------------------------------------------------------

    def intervene(self, do: Mapping[str, Any], split: str = "train") -> Intervened:
        """The training (or validation) units under ``do``, same exogenous noise, in the split's row order.

        ``do`` maps variable names (as ``variables`` lists them) to a scalar or one value per unit. Filtered
        by the declared access: inputs, labels and the observed variables (no label, no hidden ones);
        environment labels only with ``env``; never group labels.
        """
        self._read("intervene", "counterfactual", "interventions")
        x, y, env, concepts = self._intervene(do, split)
        return Intervened(split, _frozen(x), _frozen(y), _frozen(env) if self._with_env else None, concepts,
                          self._read_intervened)

    def _read_intervened(self, entry: str, level: str, what: str) -> None:
        self._read(f"intervene:{entry}", level, what)
