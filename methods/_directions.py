"""The discovery track's base class (not a method: the registry skips modules starting with "_").

A discovery method gets the subject's internals and the pooled training inputs, no concepts and no
variable names, and returns the directions it finds at one hook point (`MethodOutput.discovered`) and the
algorithm over them (the black-box logit regressed on the projections, `MethodOutput.algorithm`). Each
method supplies only ``directions(h)``: activations ``(n, width)`` in, found directions ``(k, width)`` out.
The track runs on planted subjects only, the one place where the true feature directions are known
(`cowbench.scores.discover`).
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from cowbench import surgery
from cowbench.access import spread_rows
from cowbench.method import Method, MethodOutput
from cowbench.methods._algorithm import over_directions
from cowbench.methods._internals import resolve_layer
from cowbench.subject import subject_for


def default_point(model: Any, prefer: str) -> str:
    """``prefer`` where the model has it, else ``hidden.0``, else the first hook point after the input."""
    points = [p for p in surgery.hook_points(model) if p not in ("input", "logit")]
    for p in (prefer, "hidden.0"):
        if p in points:
            return p
    return points[0] if points else "input"


def activation_rank(h: np.ndarray, rel_tol: float = 1e-6) -> int:
    """Number of singular values of the centred activations above ``rel_tol`` times the largest (at least 1)."""
    s = np.linalg.svd(h - h.mean(0), compute_uv=False)
    return max(1, int(np.sum(s > rel_tol * max(float(s.max(initial=0.0)), 1e-300))))


def dictionary_size(ratio: float, width: int) -> int:
    """``round(ratio * width)`` directions, at least 1 (Sharkey et al.'s dictionary ratio, on the layer width)."""
    return max(1, round(float(ratio) * int(width)))


class DiscoveryMethod(Method):
    """Activations at a hook point in, directions out; subclasses implement ``directions``.

    Subclasses declare ``preferred_point`` (``hidden.0.pre``: the pre-activations, where a planted network's
    features are linear; ``hidden.0`` for methods that need non-negative data) and take ``layer`` and
    ``n_fit`` hyperparameters.
    """

    family = "discovery"
    access = frozenset({"pooled", "internals"})
    outputs = frozenset({"discover"})
    preferred_point: ClassVar[str] = "hidden.0.pre"
    preload = ("sklearn.decomposition",)
    layer: str | None
    n_fit: int

    @classmethod
    def applicable(cls, scenario: Any) -> str | None:
        reason = super().applicable(scenario)
        if reason is not None:
            return reason

        if subject_for(scenario.spec, {}).get("arch") != "planted":
            return "needs a planted subject: only there are the true feature directions known"
        return None

    def directions(self, h: np.ndarray) -> tuple[np.ndarray, dict[str, Any]]:  # pragma: no cover - abstract
        """Found directions ``(k, width)`` for activations ``h`` ``(n, width)``, and details to record."""
        raise NotImplementedError

    @property
    def seed(self) -> int:
        return 0 if self.random_state is None else int(self.random_state)

    def run(self, task: Any) -> MethodOutput:
        model = task.model
        point = resolve_layer(model, self.layer) if self.layer is not None else default_point(model,
                                                                                              self.preferred_point)
        x = np.asarray(task.train.x)
        rows = spread_rows(len(x), self.n_fit)
        h = surgery.activations(model, point, x[rows])  # (n_fit, width), float64
        found, details = self.directions(h)
        found = np.asarray(found, dtype=np.float64)
        # the algorithm over the found directions: the black-box logit regressed on their projections
        algorithm = over_directions(h, found, task.predict_logit(x[rows]))
        return MethodOutput(discovered={"point": point, "directions": found}, algorithm=algorithm,
                            details={"point": point, "n_directions": int(found.shape[0]), **details})
