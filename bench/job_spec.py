"""Job specs: a replicate (scenario, replicate index, root seed, subject config) and a job (a method and its
hyperparameters on it), their ids and derived seeds.

Ids are sha256 of the canonical JSON spec, which includes the generator, subject, method and scorer versions
(and the run's plugin hashes, only when there are plugins, so built-in-only ids are unchanged).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from cowbench.plugins import plugin_digests
from cowbench.registries import METHODS
from cowbench.scores import scorer_version
from cowbench.seeds import derive_seed, stable_hash


@dataclass(frozen=True)
class ReplicateSpec:
    """What fixes a replicate's data and models: scenario spec, replicate index, root seed, subject config."""

    scenario: Mapping[str, Any]
    replicate: int
    root_seed: int
    subject: Mapping[str, Any]

    def __post_init__(self) -> None:
        # a scenario that declares its subject (planted networks) overrides the suite's, before the id is taken
        from cowbench.subject import subject_for

        object.__setattr__(self, "subject", subject_for(self.scenario, self.subject))

    def to_dict(self) -> dict[str, Any]:
        return {"scenario": dict(self.scenario), "replicate": self.replicate, "root_seed": self.root_seed,
                "subject": dict(self.subject)}

    @property
    def id(self) -> str:
        return stable_hash(self.to_dict())

    @property
    def data_seed(self) -> int:
        """A function of (root seed, scenario spec, replicate) only: every method sees the same data."""
        return derive_seed(self.root_seed, "data", stable_hash(self.scenario), self.replicate)

    @property
    def subject_seed(self) -> int:
        return derive_seed(self.data_seed, "subject", stable_hash(self.subject))


@dataclass(frozen=True)
class JobSpec:
    """One job: a replicate, a method with its hyperparameters, and the method and scorer versions."""

    replicate: ReplicateSpec
    method: str
    hparams: Mapping[str, Any]
    method_version: str
    scorer_version: str
    # also refit with each training environment held out, for the loeo selection rule (`cowbench.selection`);
    # in the spec only when set, so every other job keeps its id
    loeo: bool = False
    # the hyperparameter draw this job's setting came from (`cowbench.trials`): which suite asked for it, not
    # what runs, so it is left out of the spec and the id (the manifest records it)
    trial: int = field(default=0, compare=False)
    # sha256 of every plugin's source loaded for the run (`plugin_digests`): a run with plugins never shares job
    # ids with one without, or with other plugins; in the spec only when set, so built-in-only ids stay unchanged
    plugins: tuple[str, ...] = ()
    # the method's class metadata (family, access, outputs, version), so the scoring worker needs no plugin code;
    # derived from the method's registration, so left out of the spec and the id
    method_info: Mapping[str, Any] | None = field(default=None, compare=False)

    def to_dict(self) -> dict[str, Any]:
        loeo = {"loeo": True} if self.loeo else {}
        plugins = {"plugins": sorted(self.plugins)} if self.plugins else {}
        return {**self.replicate.to_dict(), "method": self.method, "hparams": dict(self.hparams),
                "versions": {"method": self.method_version, "scorer": self.scorer_version}, **loeo, **plugins}

    @property
    def id(self) -> str:
        return stable_hash(self.to_dict())

    @property
    def hparams_id(self) -> str:
        return stable_hash(dict(self.hparams))[:16]

    @property
    def fit_seed(self) -> int:
        """A function of (data seed, method, hyperparameters): the method's ``random_state``."""
        return derive_seed(self.replicate.data_seed, "fit", self.method, self.hparams_id)

    def seeds(self) -> dict[str, int]:
        return {"root_seed": self.replicate.root_seed, "data_seed": self.replicate.data_seed,
                "subject_seed": self.replicate.subject_seed, "fit_seed": self.fit_seed}


def method_info(cls: Any) -> dict[str, Any]:
    """A method class's metadata as data (what the scoring worker needs instead of the class)."""
    return {"family": cls.family, "access": sorted(cls.access), "outputs": sorted(cls.outputs),
            "version": str(cls.version)}


def make_job(replicate: ReplicateSpec, method: str, hparams: Mapping[str, Any], *, trial: int = 0,
             loeo: bool = False, plugins: Sequence[str] = ()) -> JobSpec:
    """The spec of one job. ``plugins``: the run's plugin files or modules; their source hashes enter the spec
    (and so the id), and the method's class metadata travels with it (`method_info`)."""
    cls = METHODS.get(method)
    digests = tuple(sorted({d["sha256"] for d in plugin_digests(plugins)}))
    return JobSpec(replicate, method, dict(hparams), cls.version, scorer_version(), loeo=loeo, trial=trial,
                   plugins=digests, method_info=method_info(cls))
