"""A first, in-process version of the blind-run contract (`BlindCall` -> `BlindResult`), for the job flow.

The production runner is `cowbench.sandbox.run_blind` (a fresh process per job, forked from a clean template;
engineer h1). This module holds what the job flow needs when that is absent or when the ``inprocess``
launcher asks for the debugger shortcut: `run_inprocess` runs the method in this process on a Task built
from the `TaskInputs` only (so it still sees blinded names and rows), and is marked *unsafe for published
results* in every record it makes, because the method shares its process with the harness. It also holds a
reference `check_row_independent`. Shapes follow ``/work/brief/blind_api.md``; the lead reconciles them with
``cowbench.sandbox``.
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from cowbench.access import Task, TaskInputs
from cowbench.determinism import deterministic
from cowbench.method import MethodOutput
from cowbench.plugins import load_plugins_once
from cowbench.registries import METHODS

INPROCESS_MODE = "inprocess (unsafe: not for published results)"
BLIND_MODE = "blind"
# relative tolerance of the row-independence check, times the largest |logit| on the rows (at least 1):
# float32 round-off of a reordered or re-chunked matmul is ~1e-6 relative; a batch-reading edit moves logits
# by O(1)
ROW_TOLERANCE = 1e-4


@dataclass(frozen=True)
class BlindCall:
    method: str  # registered method name
    hparams: dict[str, Any]
    fit_seed: int  # the method's random_state when it has none
    inputs: TaskInputs
    plugins: tuple[str, ...] = ()  # plugin files/modules the template imports (never the scoring worker)


@dataclass
class BlindResult:
    output: dict[str, Any]  # `to_plain` of the MethodOutput (shown names: the harness unblinds)
    edited: bytes | None  # cloudpickle of output.edited
    read_log: list[str]
    audit: list[str] = field(default_factory=list)
    wall_s: float = 0.0
    peak_rss_mb: float | None = None


PLAIN_FIELDS = ("world_coef", "model_coef", "spurious_score", "abstain", "localized", "details")


def to_plain(output: Any) -> dict[str, Any]:
    """Every field of a `MethodOutput` but ``edited``, as data (stand-in for ``MethodOutput.to_plain``)."""
    if not isinstance(output, MethodOutput):
        raise TypeError(f"run() must return a MethodOutput, got {type(output).__name__}")
    if hasattr(output, "to_plain"):  # the contract's own (bench/method.py): what the sandbox sends, exactly
        return {**output.to_plain(), "has_edited": output.edited is not None}
    plain = {name: getattr(output, name) for name in PLAIN_FIELDS}
    for name in ("world_coef", "model_coef", "spurious_score"):
        if plain[name] is not None and hasattr(plain[name], "items"):
            plain[name] = dict(plain[name].items())
    plain["has_edited"] = output.edited is not None
    return plain


def from_plain(plain: dict[str, Any], edited: Any) -> Any:
    """A `MethodOutput` from `to_plain`'s dict and the (loaded) edited model (stand-in for
    ``MethodOutput.from_plain``; `cowbench.jobs.check_output` validates the values)."""
    return MethodOutput(**{k: plain.get(k) for k in PLAIN_FIELDS if k not in ("abstain", "details")},
                        abstain=bool(plain.get("abstain", False)), details=plain.get("details") or {},
                        edited=edited)


def _peak_rss_mb() -> float | None:
    with contextlib.suppress(OSError), open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return None


def run_method_instance(method: Any, inputs: TaskInputs) -> BlindResult:
    """Run ``method`` (an instance with its random_state set) on a Task built from ``inputs``, in this process."""
    import cloudpickle

    with contextlib.suppress(OSError), open("/proc/self/clear_refs", "w") as fh:
        fh.write("5")  # Linux: reset the peak resident set size, so it is this run's
    task = Task(inputs)
    start = time.perf_counter()
    with deterministic(1):
        output = method.run(task)
    wall = time.perf_counter() - start
    plain = to_plain(output)
    edited = None if output.edited is None else cloudpickle.dumps(output.edited)
    return BlindResult(plain, edited, list(task.read_log), [], wall, _peak_rss_mb())


def run_inprocess(call: BlindCall) -> BlindResult:
    """The debugger shortcut: the registered method run in this process (UNSAFE for published results)."""
    load_plugins_once(call.plugins)
    cls = METHODS.get(call.method)
    method = cls(**call.hparams)
    if method.random_state is None:
        method = method.clone(random_state=call.fit_seed)
    return run_method_instance(method, call.inputs)


run_inprocess.run_mode = INPROCESS_MODE  # type: ignore[attr-defined]


def load_edited_inprocess(edited: bytes | None) -> Any:
    """The edited model, unpickled here (only the in-process mode may: its method already ran here)."""
    if edited is None:
        return None
    import cloudpickle

    return cloudpickle.loads(edited)


def check_row_independent(model: Any, x: np.ndarray, *, seed: int) -> str | None:
    """None when ``model``'s logits on ``x`` equal those on the same rows shuffled, in chunks of size 1 and of
    a random size, within `ROW_TOLERANCE` times max(1, max |logit|); else a one-line reason.

    Reference version; the production one is ``cowbench.sandbox.check_row_independent``.
    """
    from cowbench.models import logits

    x = np.asarray(x, dtype=np.float32)
    n = len(x)
    rng = np.random.default_rng(seed)
    whole = logits(model, x)
    tol = ROW_TOLERANCE * max(1.0, float(np.max(np.abs(whole), initial=0.0)))
    perm = rng.permutation(n)
    shuffled = np.empty(n)
    shuffled[perm] = logits(model, x[perm])
    picked = rng.choice(n, size=min(n, 32), replace=False)  # a few single rows: each is one model call
    singles = np.concatenate([logits(model, x[i:i + 1]) for i in picked]) if n else np.empty(0)
    size = int(rng.integers(max(2, n // 16), max(3, n // 3)))  # at most ~16 calls
    chunks = np.concatenate([logits(model, x[i:i + size]) for i in range(0, n, size)]) if n else np.empty(0)
    for name, got, ref in (("in shuffled order", shuffled, whole), ("one row at a time", singles, whole[picked]),
                           (f"in chunks of {size}", chunks, whole)):
        diff = float(np.max(np.abs(got - ref), initial=0.0))
        if not np.isfinite(diff) or diff > tol:
            return (f"the edited model's logits change {name} (max difference {diff:.3g} > tolerance {tol:.3g}): "
                    "its output on a row depends on the other rows of the batch")
    return None
