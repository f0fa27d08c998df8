"""Replicate preparation: data, subject and oracle of a replicate (shared by all its jobs), cached, and the
checksum that catches a job changing them."""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from cowbench.determinism import pinned_threads
from cowbench.job_spec import ReplicateSpec
from cowbench.planted import planted_models
from cowbench.registries import SCENARIOS
from cowbench.seeds import canonical_json
from cowbench.store import read_checked, write_checked

if TYPE_CHECKING:
    from torch import nn

    from cowbench.data import Dataset
    from cowbench.generators.scm import Scenario


# -- replicate preparation (shared by all jobs of a replicate) -------------------------------------


@dataclass
class Replicate:
    scenario: Scenario
    data: Dataset
    subject: nn.Module
    oracle: nn.Module
    subject_config: dict[str, Any]
    base_ace: dict[str, float]  # the subject's reliance on test_id: the model truth every job is scored against
    # each test_id unit's contribution to base_ace (their means), for the scores' standard errors; computed once
    # per replicate instead of once per edit job
    base_ace_units: dict[str, np.ndarray] | None = field(default=None, repr=False)
    fingerprint: str = ""  # checksum of what jobs share (data, subject, oracle): a job that changes it fails
    # unit- and direction-level truth of a planted subject (`cowbench.planted.PlantedTruth`), for the localization
    # scores; None for trained subjects. Held here, never in the model or the Task a method gets
    unit_truth: Any = field(default=None, repr=False)


def replicate_fingerprint(rep: Replicate) -> str:
    """sha256 over the replicate's shared state: every split's arrays, the subject's and the oracle's parameters.

    Methods get read-only views, but ``setflags(write=True)`` or an in-place model edit can still change them;
    comparing this before and after a job catches it, so no later job of the replicate is scored on changed data.
    """
    import hashlib

    h = hashlib.sha256(rep.data.checksum().encode())
    for model in (rep.subject, rep.oracle):
        for name, tensor in sorted(model.state_dict().items()):
            h.update(name.encode())
            h.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    h.update(repr(sorted(rep.base_ace.items())).encode())  # repr, not JSON: a NaN reliance must not fail here
    return h.hexdigest()


def scenario_from_spec(spec: Mapping[str, Any]) -> Scenario:
    """Rebuild a scenario from its spec, refusing a spec made by another version of its generator."""
    family = SCENARIOS.get(spec["generator"])
    if family.version != spec["version"]:
        raise ValueError(f"scenario {spec['generator']!r} is at version {family.version}, "
                         f"the spec was made by version {spec['version']}")
    return family(**spec["knobs"])


def _load_or_train(path: Path | None, train: Any) -> nn.Module:
    import io

    import torch

    data = read_checked(path) if path is not None else None
    if data is not None:  # only a cache file whose checksum matches is trusted; anything else is rebuilt
        model = train(fit=False)
        try:
            model.load_state_dict(torch.load(io.BytesIO(data), weights_only=True))
            return model.eval()
        except Exception:  # written by an incompatible model, or unreadable: rebuild it from the seed
            pass
    model = train(fit=True)
    if path is not None:
        buffer = io.BytesIO()
        torch.save(model.state_dict(), buffer)
        write_checked(path, buffer.getvalue())
    return model


def subject_trainer(cfg: Any, x: np.ndarray, y: np.ndarray, seed: int, loss: str) -> Callable[[bool], nn.Module]:
    """``train(fit)`` for `_load_or_train`: the subject architecture fitted on ``x, y`` from ``seed`` (``fit``), or
    only initialised from it (to load cached weights into)."""
    from cowbench.models import build_model
    from cowbench.subject import fit_fresh

    def train(fit: bool) -> nn.Module:
        if fit:
            return fit_fresh(cfg, x, y, seed, loss=loss)
        return build_model(cfg.arch, x.shape[1], hidden=cfg.hidden, seed=seed)

    return train


def build_replicate(scenario: Mapping[str, Any], subject: Mapping[str, Any], data_seed: int, subject_seed: int,
                    folder: Path | None = None, *, test_seed: int | None = None) -> Replicate:
    """Data, subject and oracle from explicit seeds (`prepare` derives them from a `ReplicateSpec`).

    ``cowbench reliability`` calls it directly to vary the data seed and the subject seed one at a time.
    ``test_seed`` (reliability only): the test splits (``test_id``, ``test_ood``, ``test_bal``) come from this
    seed's sample and the training splits from ``data_seed``'s, so test-set noise can be measured alone.
    Subject and oracle weights are cached under ``folder`` when given.
    """
    from cowbench.subject import SubjectConfig, decorrelated_train, loss_for

    scn = scenario_from_spec(scenario)
    cfg = SubjectConfig.from_mapping({k: v for k, v in subject.items() if k != "version"})
    data = scn.sample(data_seed)
    if test_seed is not None and test_seed != data_seed:
        import dataclasses

        test = scn.sample(test_seed)
        data = dataclasses.replace(data, test_id=test.test_id, test_ood=test.test_ood, test_bal=test.test_bal)
    seed = subject_seed

    def trainer(x: np.ndarray, y: np.ndarray):
        return subject_trainer(cfg, x, y, seed, loss_for(scn))

    unit_truth = None
    if cfg.arch == "planted":  # built by construction from the scenario, not trained: nothing to cache

        subject, oracle, unit_truth = planted_models(scn, seed=seed)  # per replicate: its own draws
    else:
        subject = _load_or_train(folder / "subject.pt" if folder else None, trainer(data.train.x, data.train.y))
        decorrelated = decorrelated_train(scn, data.train, seed)
        oracle = _load_or_train(folder / "oracle.pt" if folder else None, trainer(decorrelated.x, decorrelated.y))
    from cowbench.model_truth import reliance_units

    units = reliance_units(subject, scn, data.test_id)
    base_ace = {v: float(np.mean(u)) for v, u in units.items()}  # exactly what `reliance` returns
    rep = Replicate(scn, data, subject, oracle, cfg.to_dict(), base_ace, units, unit_truth=unit_truth)
    rep.fingerprint = replicate_fingerprint(rep)
    return rep


@functools.lru_cache(maxsize=2)
def _prepare_cached(replicate_json: str, cache_dir: str | None) -> Replicate:
    import json

    spec = json.loads(replicate_json)
    rspec = ReplicateSpec(spec["scenario"], spec["replicate"], spec["root_seed"], spec["subject"])
    folder = Path(cache_dir) / rspec.id if cache_dir else None
    return build_replicate(spec["scenario"], spec["subject"], rspec.data_seed, rspec.subject_seed, folder)


def prepare(replicate: ReplicateSpec, cache_dir: Path | None = None) -> Replicate:
    """Data, subject and oracle of a replicate (trained once, then loaded from ``cache_dir``)."""
    with pinned_threads(1):  # torch and every BLAS pool: results must not depend on the worker count
        return _prepare_cached(canonical_json(replicate.to_dict()), str(cache_dir) if cache_dir else None)
