"""Blinding: how a job shows a replicate to its method, and how the method's answer is mapped back.

Measured on the previous harness (issue 15, §3): variable names gave the answer (a detector returning "the
variable called grass" got AUROC 1.000 on 9 of 9 scenarios) and rows stored environment by environment gave
the environment labels away to a method without ``env`` access. A job therefore shows its method, per
replicate (the seed is derived from the replicate with `cowbench.seeds.derive_seed`, never Python's ``hash``):

- neutral variable names ``v0..vk``, assigned to the variables in a shuffled order, everywhere a variable is
  named (``variables``, ``variable_kinds``, ``input_map``, ``instruments``, the concepts' columns,
  ``edit_target``, the keys of a do-query and its results, ``feature_names`` of the identity rendering);
- input columns permuted where the rendering is the identity (one column per variable; column ``j`` is
  ``v_j``), the subject model's first layer folded to take them (`cowbench.access.SubjectInputs.of`);
- rows of the training and validation splits (and so of the concept subset and of interventions, which
  follow the training rows) in a shuffled order;
- environment ids permuted among the training environments, group ids permuted among those present.

The same names, orders and ids for every method of a replicate: results stay comparable across methods. The
`Unblinder` stays with the harness: it maps the per-variable fields of the output back to the real names and
wraps an edited model so it takes the real columns.

What blinding does not hide (the residual doors, stated so a reviewer can look for them): with
``counterfactual`` access the Task carries the anonymous generator, whose variables, exogenous noise keys and
equation code keep the real names, whose units keep their (relabelled) environments, and whose column map
places each shown variable in the rendering; a method that digs there instead of querying it can name the
variables and, without ``env``, recover environments. Closing that needs interventions answered by the harness
over the sandbox's channel instead of a generator in the method's memory. The read log is written in the
method's process, so a method can rewrite its own (the audit hook does not see attribute writes).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np
from torch import nn

from cowbench.access import Shown, TaskInputs, _natural, build_inputs
from cowbench.models import ColumnOrder
from cowbench.seeds import derive_seed

if TYPE_CHECKING:
    from cowbench.replicate import Replicate


def draw_shown(scenario: Any, data: Any, seed: int) -> Shown:
    """The names, column order, row orders and id relabellings of one replicate, drawn from ``seed``."""
    rng = np.random.default_rng(np.random.SeedSequence(int(seed)))
    real = list(scenario.variables)
    order = rng.permutation(len(real))
    names = {real[int(i)]: f"v{j}" for j, i in enumerate(order)}
    columns = features = None
    if scenario.rendering == "identity":  # one column per variable (shifted or rescaled, still the variable)
        rendered = list(scenario.feature_names)
        by_name = sorted(range(len(rendered)), key=lambda j: _natural(names.get(rendered[j], f"x{j}")))
        columns = np.asarray(by_name, dtype=np.int64)
        features = tuple(names.get(rendered[j], f"x{k}") for k, j in enumerate(by_name))
    rows = {s: rng.permutation(len(data.split(s))) for s in ("train", "val")}
    train_envs = list(scenario.scm.train_envs)
    env = {int(a): int(b) for a, b in zip(train_envs, rng.permutation(train_envs), strict=True)}
    present = sorted(set(np.unique(data.train.group).tolist()) | set(np.unique(data.val.group).tolist()))
    group = {int(a): int(b) for a, b in zip(present, rng.permutation(present), strict=True)}
    return Shown(names, columns, rows, env, group, features, strict=True)


class Unblinder:
    """Maps a blinded method's answer back to the replicate: stays with the harness, never sent to the method.

    Parameters
    ----------
    shown : Shown
        How the replicate was shown (`draw_shown`).
    """

    def __init__(self, shown: Shown):
        self.shown = shown
        self.real = {v: k for k, v in shown.names.items()}  # shown name -> real name

    def name(self, shown_name: str) -> str:
        return self.real.get(shown_name, shown_name)

    def _deep(self, value: Any) -> Any:
        # details are free-form: per-variable dicts and lists of names anywhere in them are mapped; a string
        # that is exactly a shown name is taken as that variable
        if isinstance(value, str):
            return self.real.get(value, value)
        if isinstance(value, Mapping):
            return {self._deep(k) if isinstance(k, str) else k: self._deep(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return type(value)(self._deep(v) for v in value)
        return value

    def output(self, plain: Mapping[str, Any]) -> dict[str, Any]:
        """``plain`` (`MethodOutput.to_plain`, or any dict with its field names) with every per-variable field
        keyed by the real names, and input-level localization put back in the real column order."""
        out = dict(plain)
        for key in ("world_coef", "model_coef", "spurious_score"):
            if out.get(key) is not None:
                # a key the method was never shown (a real name guessed, "grass") is not mapped through
                unknown = sorted(str(k) for k in out[key] if k not in self.real)
                if unknown:
                    raise ValueError(f"{key} has unknown variables {unknown}; known: {sorted(self.real)}")
                out[key] = {self.name(k): v for k, v in out[key].items()}
        alg = out.get("algorithm")
        if alg and alg.get("coef") is not None:
            unknown = sorted(str(k) for k in alg["coef"] if k not in self.real)
            if unknown:
                raise ValueError(f"algorithm['coef'] has unknown variables {unknown}; known: {sorted(self.real)}")
            out["algorithm"] = {**alg, "coef": {self.name(k): v for k, v in alg["coef"].items()}}
        found = out.get("discovered")
        if found and found.get("point") == "input" and self.shown.columns is not None:
            d = np.asarray(found["directions"], dtype=np.float64)
            if d.ndim == 2 and d.shape[1] == len(self.shown.columns):
                real = np.empty_like(d)
                real[:, self.shown.columns] = d  # shown column j is real column columns[j]
                out["discovered"] = {**found, "directions": real.tolist()}
        if out.get("details"):
            out["details"] = self._deep(out["details"])
        loc = out.get("localized")
        if loc and loc.get("point") == "input" and self.shown.columns is not None:
            loc = dict(loc)
            for key in ("unit_scores", "subspace"):
                if loc.get(key) is not None:
                    value = np.asarray(loc[key])
                    if value.ndim >= 1 and value.shape[0] == len(self.shown.columns):
                        real = np.empty_like(value)
                        real[self.shown.columns] = value  # shown row j is real column columns[j]
                        loc[key] = real.tolist() if isinstance(loc[key], list) else real
            out["localized"] = loc
        return out

    def model(self, m: nn.Module | None) -> nn.Module | None:
        """An edited model that takes shown columns, wrapped to take the real ones (unchanged without a
        column permutation)."""
        if m is None or self.shown.columns is None:
            return m
        return ColumnOrder(m, self.shown.columns)

    def read_log(self, log: list[str]) -> list[str]:
        """The read log with any shown variable name in an entry mapped back (entries name no variable today)."""
        return [":".join(self.name(p) for p in entry.split(":")) for entry in log]


def blind_inputs(rep: Replicate, access: Any, *, seed: int, n_concept: int = 1000) -> tuple[TaskInputs, Unblinder]:
    """The blinded `TaskInputs` of ``access`` on a prepared replicate, and the `Unblinder` for its answer.

    ``seed`` fixes the blinding; derive it from the replicate (`blind_seed`) so every method of a replicate
    sees the same names and orders.
    """
    shown = draw_shown(rep.scenario, rep.data, seed)
    inputs = build_inputs(rep.scenario, rep.data, rep.subject, access, subject_config=rep.subject_config,
                          n_concept=n_concept, shown=shown)
    return inputs, Unblinder(shown)


def blind_seed(data_seed: int) -> int:
    """The blinding seed of a replicate: a function of its data seed only."""
    return derive_seed(int(data_seed), "blind")
