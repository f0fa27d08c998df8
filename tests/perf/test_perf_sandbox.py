"""The sandbox's per-job overhead: fork from the template, call in over a pipe, result out, group killed, reaped.

Run with ``python -m pytest tests/perf/test_perf_sandbox.py --benchmark-only -s``. Nothing here asserts a time:
the figures are ratios of runs measured in the same process, reported in ``extra_info`` and printed:

* ``trivial_blind_s / worker_call_s``: a method that does nothing, run blind, against today's per-job hop to
  the persistent isolated worker (a call and its result over a pipe, no fork);
* ``logistic_overhead``: ``(blind - inprocess) / inprocess`` for a real job (``logistic`` on the conformance
  kit's small cow scenario, its Task's pieces sent whole), i.e. the share the sandbox adds to a small job.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from cowbench.isolation import IsolatedWorker
from cowbench.sandbox import BlindCall, BlindResult, LegacyInputs, run_blind, run_inprocess

PLUGIN = str(Path(__file__).parents[1] / "unit" / "sandbox_attacks.py")


@pytest.mark.benchmark(group="sandbox")
def test_perf_sandbox_overhead_per_job(benchmark, best_of):
    from cowbench.conformance import _fixture
    from cowbench.registries import METHODS
    from cowbench.registry import load_plugin

    load_plugin(PLUGIN)
    trivial = BlindCall("attack_honest", {}, 0, {"x": np.zeros((4, 2), np.float32)}, (PLUGIN,))
    assert isinstance(run_blind(trivial), BlindResult)  # the template's start-up is not a job's overhead
    benchmark.pedantic(run_blind, args=(trivial,), rounds=5, iterations=1)
    trivial_s = best_of(lambda: run_blind(trivial), rounds=10)
    worker = IsolatedWorker()
    try:
        worker.call(os.getpid)
        worker_s = best_of(lambda: worker.call(os.getpid), rounds=10)
    finally:
        worker.close()

    fx = _fixture("cow", (), "mlp")
    inputs = LegacyInputs(fx.scenario.spec, fx.data, fx.subject, METHODS.get("logistic").access, fx.config, 200)
    real = BlindCall("logistic", {}, 0, inputs, (PLUGIN,))
    assert isinstance(run_blind(real), BlindResult)
    blind_s = best_of(lambda: run_blind(real), rounds=5)
    inprocess_s = best_of(lambda: run_inprocess(real), rounds=5)
    info = {"trivial_blind_s": trivial_s, "worker_call_s": worker_s, "trivial_over_worker": trivial_s / worker_s,
            "logistic_blind_s": blind_s, "logistic_inprocess_s": inprocess_s,
            "logistic_overhead": (blind_s - inprocess_s) / inprocess_s}
    benchmark.extra_info.update(info)
    print("\n" + "\n".join(f"{k}: {v:.4g}" for k, v in info.items()))
