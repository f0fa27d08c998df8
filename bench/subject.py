"""Subject and oracle models: ERM on ``train`` and on its counterfactual copy with spurious variables resampled.

One subject and one oracle per (scenario, replicate), shared by every method of that replicate. A planted
scenario declares its own subject (``arch = "planted"``: built by construction, its oracle the same network
with the spurious coefficient 0, `cowbench.planted`); `subject_for` applies such a declaration.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
from torch import nn

from cowbench.data import Dataset, Split
from cowbench.models import ARCHS, build_model
from cowbench.planted import planted_models
from cowbench.registries import SCENARIOS
from cowbench.training import fit_logit_model

if TYPE_CHECKING:
    from cowbench.generators.scm import Scenario

SUBJECT_VERSION = "2"  # 2: trained in float64 (reproducible across x86 vector widths)


@dataclass(frozen=True)
class SubjectConfig:
    """How subject and oracle models are built and trained."""

    arch: str = "mlp"
    hidden: int = 32
    epochs: int = 300
    lr: float = 0.02
    weight_decay: float = 0.0

    def __post_init__(self) -> None:
        if self.arch not in ARCHS:
            raise ValueError(f"subject arch {self.arch!r} is not one of {', '.join(ARCHS)}")
        for name in ("hidden", "epochs"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"subject {name} must be a positive integer, got {value!r}")
        if not (isinstance(self.lr, int | float) and 0 < self.lr <= 10):
            raise ValueError(f"subject lr must be a number in (0, 10], got {self.lr!r}")
        if not (isinstance(self.weight_decay, int | float) and 0 <= self.weight_decay <= 10):
            raise ValueError(f"subject weight_decay must be a number in [0, 10], got {self.weight_decay!r}")

    @classmethod
    def from_mapping(cls, config: Mapping[str, Any] | None) -> SubjectConfig:
        config = dict(config or {})
        allowed = set(cls.__dataclass_fields__)
        unknown = set(config) - allowed
        if unknown:
            raise ValueError(f"unknown subject setting(s) {sorted(unknown)}; allowed: {', '.join(sorted(allowed))}")
        return cls(**config)

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "version": SUBJECT_VERSION}


def subject_for(scenario_spec: Mapping[str, Any], subject: Mapping[str, Any]) -> dict[str, Any]:
    """The subject config a replicate of ``scenario_spec`` uses: the scenario family's declared subject, if any,
    in place of ``subject`` (the suite's ``[subject]`` table), else ``subject`` unchanged.

    A declared subject replaces the whole table (defaults for what it does not set), so a planted scenario's
    replicate id does not depend on training settings it does not use.
    """
    name = scenario_spec.get("generator") if isinstance(scenario_spec, Mapping) else None
    declared = None
    if name is not None and name in SCENARIOS.names():
        declared = getattr(SCENARIOS.get(name), "subject", None)
    if not declared:
        return dict(subject)
    return SubjectConfig.from_mapping(declared).to_dict()


def loss_for(scn: Scenario) -> str:
    """``logistic`` for a binary label, ``squared`` for a continuous one."""
    return "logistic" if scn.scm.label_kind == "binary" else "squared"


def trainable_arch(arch: str) -> str:
    """The architecture a method trains when it retrains the subject's: ``mlp`` for a ``planted`` subject."""
    return "mlp" if arch == "planted" else arch


def fit_fresh(config: SubjectConfig, x: np.ndarray, y: np.ndarray, seed: int,
              weights: np.ndarray | None = None, loss: str = "logistic") -> nn.Module:
    """A new model of ``config``'s architecture trained by (weighted) ERM on ``x, y``.

    ``planted`` has no initialisation (its weights come from its scenario): a method that retrains a planted
    subject's architecture trains an ``mlp`` (the planted network's shape) with ``config.hidden`` units.
    """
    model = build_model(trainable_arch(config.arch), x.shape[1], hidden=config.hidden, seed=seed)
    return fit_logit_model(model, x, y, weights=weights, epochs=config.epochs, lr=config.lr,
                           weight_decay=config.weight_decay, loss=loss)


def train_subject(scn: Scenario, data: Dataset, arch: str = "mlp", seed: int = 0, **config: Any) -> nn.Module:
    """The subject model: ERM on ``data.train`` (x -> logit, or x -> prediction for a continuous label).

    ``arch="planted"`` builds the scenario's planted network instead (no training; ``data`` unused).
    """
    cfg = SubjectConfig.from_mapping({"arch": arch, **config})
    if cfg.arch == "planted":
        return planted_models(scn, seed=seed)[0]
    return fit_fresh(cfg, data.train.x, data.train.y, seed, loss=loss_for(scn))


def decorrelated_train(scn: Scenario, train: Split, seed: int) -> Split:
    """``train`` with every spurious variable resampled independently of the label.

    Each spurious variable is replaced by a random permutation of its own values (same marginal, no
    association with anything), through ``intervene`` so that its descendants and the rendering follow.
    The permutation is `SCM.balancing_do`, the one that makes ``test_bal``, so the oracle is trained on
    the distribution it is scored on.
    """
    do = scn.scm.balancing_do(np.random.default_rng(seed), train.exogenous, train.env)
    return scn.intervene(train, do)


def train_oracle(scn: Scenario, data: Dataset, arch: str = "mlp", seed: int = 0, **config: Any) -> nn.Module:
    """The oracle model: the subject's architecture and initialisation, trained on `decorrelated_train`.

    ``arch="planted"``: the planted network with the spurious coefficient set to 0 (no training).
    """
    cfg = SubjectConfig.from_mapping({"arch": arch, **config})
    if cfg.arch == "planted":
        return planted_models(scn, seed=seed)[1]
    train = decorrelated_train(scn, data.train, seed)
    return fit_fresh(cfg, train.x, train.y, seed, loss=loss_for(scn))
