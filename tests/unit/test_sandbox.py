"""The sandbox a method runs blind in: a fresh process per job, killed with its group, limited, recorded.

The attack methods live in ``sandbox_attacks.py``, loaded by the template as a plugin file; the Task they get is
a plain dict (`make_task` passes a stand-in through), so these tests need no replicate.
"""

from __future__ import annotations

import gc
import os
import pickle
import signal
import subprocess
import sys
import time
from pathlib import Path

import cloudpickle
import numpy as np
import pytest
import torch

from cowbench.isolation import Lost
from cowbench.method import MethodOutput
from cowbench.sandbox import (
    BlindCall,
    BlindResult,
    SandboxedModel,
    check_row_independent,
    close_template,
    probe_blind,
    run_blind,
    run_inprocess,
)

PLUGIN = str(Path(__file__).with_name("sandbox_attacks.py"))
INPUTS = {"x": np.arange(12, dtype=np.float32).reshape(6, 2)}


def blind(method: str, **kwargs) -> BlindResult | Lost:
    hparams = kwargs.pop("hparams", {})
    return run_blind(BlindCall(method, hparams, 0, INPUTS, (PLUGIN,)), **kwargs)


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            return fh.read().rsplit(b")", 1)[1].split()[0] not in (b"Z", b"X")
    except OSError:
        return False


def test_an_honest_method_returns_plain_output_and_no_audit_route():
    result = blind("attack_honest", time_limit=120)
    assert isinstance(result, BlindResult), result
    assert result.audit == [] and result.edited is None and result.run_mode == "blind"
    out = MethodOutput.from_plain(result.output)
    assert out.world_coef == {"v0": 5.0} and out.details == {"rows": 6, "arr": [0, 1, 2]}
    assert out.localized["unit_scores"].dtype == np.float32
    assert result.wall_s >= 0 and result.peak_rss_mb > 0


def test_the_method_process_has_a_private_empty_folder_a_clean_environment_and_its_own_group(tmp_path, monkeypatch):
    results = tmp_path / "results"
    results.mkdir()
    close_template()  # the next template starts with this environment and working folder
    monkeypatch.setenv("COWBENCH_TEST_RESULTS", str(results))
    monkeypatch.chdir(tmp_path)
    (tmp_path / "torch.py").write_text("import os\nos._exit(97)\n")  # never imported: -P, and cwd is elsewhere
    try:
        got = MethodOutput.from_plain(blind("attack_environment", time_limit=120).output).details
    finally:
        close_template()
    assert got["listdir"] == [] and Path(got["cwd"]).name.startswith("job-")
    assert Path(got["cwd"]).parent.name.startswith(f"cowbench-sandbox-{os.getpid()}-")  # this process's scratch
    assert not Path(got["cwd"]).exists()  # removed after the job
    assert all(str(results) not in v for v in got["environ"].values()) and "COWBENCH_TEST_RESULTS" not in got["environ"]
    assert all(str(tmp_path) not in " ".join(got["argv"]) for _ in (0,))
    assert "" not in got["path"] and str(tmp_path) not in got["path"] and os.getcwd() not in got["path"]
    assert got["own_group"] and got["session"]
    assert got["environ"]["TMPDIR"] == got["cwd"]


@pytest.mark.parametrize(("method", "route"), [
    ("attack_frames", "audit:frames"), ("attack_traceback", "audit:frames"), ("attack_gc", "audit:gc"),
    ("attack_subprocess", "audit:subprocess"), ("attack_socket", "audit:socket"), ("attack_ctypes", "audit:ctypes"),
])
def test_each_door_is_recorded_by_its_route(method, route):
    result = blind(method, time_limit=120)
    assert isinstance(result, BlindResult), result
    assert route in result.audit, result.audit_details
    assert any(d.startswith(route) and "sandbox_attacks" in d for d in result.audit_details), result.audit_details


def test_a_forged_result_cannot_take_back_a_record():
    # records are streamed the moment their event happens, so a result the method writes itself only adds
    result = blind("attack_forge", hparams={"target": "result"}, time_limit=120)
    assert isinstance(result, BlindResult) and "audit:gc" in result.audit, result


def test_a_forged_result_cannot_hide_a_task_read():
    # the Task announces each guarded read as an audit event (cowbench.audit.READ_EVENT), streamed like a record
    result = blind("attack_forge", hparams={"target": "hide_read"}, time_limit=120)
    assert isinstance(result, BlindResult) and result.read_log == ["edit_target"], result


def test_the_template_and_the_method_process_die_with_the_run():
    script = ("import sys\nfrom cowbench.sandbox import BlindCall, _template, run_blind\n"
              f"plugins = ({PLUGIN!r},)\nprint(_template(plugins).pid, flush=True)\n"
              "run_blind(BlindCall('attack_sleep', {}, 0, {}, plugins))\n")
    run = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    template = int(run.stdout.readline())
    children: list[int] = []
    for _ in range(300):  # the job's process appears as the template's child
        children = [int(p) for p in os.listdir("/proc") if p.isdigit() and _parent(int(p)) == template]
        if children:
            break
        time.sleep(0.1)
    run.kill()
    run.wait()
    assert children, "the job never started"
    for _ in range(100):
        if not _alive(template) and not any(_alive(c) for c in children):
            break
        time.sleep(0.1)
    survivors = [p for p in (template, *children) if _alive(p)]
    for p in survivors:
        os.kill(p, signal.SIGKILL)
    assert not survivors, "the template or the method process outlived the killed run"


def _parent(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            return int(fh.read().rsplit(b")", 1)[1].split()[1])
    except (OSError, ValueError):
        return None


@pytest.mark.parametrize("target", ["garbage", "close", "replace"])
def test_tampering_with_the_record_pipe_fails_the_job(target):
    lost = blind("attack_forge", hparams={"target": target}, time_limit=120)
    assert isinstance(lost, Lost) and lost.reason == "tampered", lost


def test_reading_a_file_in_the_results_folder_is_recorded(tmp_path):
    job = tmp_path / "results" / "smoke" / "job.json"
    job.parent.mkdir(parents=True)
    job.write_text('{"metrics": 1}')
    result = blind("attack_open", hparams={"path": str(job)}, time_limit=120)
    assert result.audit == ["audit:open"] and str(job) in result.audit_details[0]
    # installed code is not a record: the plugin file itself may be read
    assert blind("attack_open", hparams={"path": PLUGIN}, time_limit=120).audit == []


def test_processes_a_method_starts_die_with_its_job():
    result = blind("attack_orphans", time_limit=120)
    pids = MethodOutput.from_plain(result.output).details["pids"]
    assert "audit:subprocess" in result.audit
    for _ in range(50):
        if not any(_alive(p) for p in pids):
            break
        time.sleep(0.1)
    alive = [p for p in pids if _alive(p)]
    for p in alive:
        os.kill(p, signal.SIGKILL)
    assert not alive, "a subprocess or forked child of the method outlived its job"


def test_a_method_that_kills_its_template_fails_alone_and_the_next_job_gets_a_fresh_one():
    lost = blind("attack_kill_template", time_limit=60)
    assert isinstance(lost, Lost) and lost.reason == "signal", lost
    assert isinstance(blind("attack_honest", time_limit=120), BlindResult)


@pytest.mark.parametrize(("method", "hparams", "limits", "reason", "says"), [
    ("attack_sleep", {}, {"time_limit": 2.0}, "timeout", "time limit of 2 s"),
    ("attack_memory", {"mb": 600}, {"memory_limit_mb": 200, "time_limit": 120}, "memory", "limit"),
    ("attack_memory", {"mb": 8000, "step": 4000}, {"memory_limit_mb": 200, "time_limit": 120}, "memory", "limit"),
    # allocating after the first seconds, when memory is checked every MEMORY_CHECK_S: 600 MB over 1.2 s
    ("attack_memory", {"mb": 600, "step": 10, "delay": 3.0}, {"memory_limit_mb": 200, "time_limit": 120}, "memory",
     "limit"),
    ("attack_raise", {}, {"time_limit": 120}, "exception", "ValueError: boom from the method"),
    ("attack_exit", {}, {"time_limit": 120}, "exit", "sys.exit(3)"),
    ("attack_wrong_output", {}, {"time_limit": 120}, "exception", "must return a MethodOutput"),
])
def test_failures_are_the_jobs_own_with_a_reason(method, hparams, limits, reason, says):
    lost = blind(method, hparams=hparams, **limits)
    assert isinstance(lost, Lost) and lost.reason == reason and says in lost.message, lost
    assert isinstance(blind("attack_honest", time_limit=120), BlindResult)  # and the next job runs


@pytest.mark.parametrize("bad", [0, -1.0, float("nan"), "10"])
def test_bad_limits_are_refused(bad):
    with pytest.raises(ValueError, match="time_limit"):
        blind("attack_honest", time_limit=bad)


def test_the_method_process_holds_no_harness_object_of_the_caller():
    # this process holds truth-carrying objects (a Dataset with concepts); the method process is forked from a
    # template that never saw them, so the scan finds none there
    import cowbench as cb

    scn = cb.make_scenario("cow", n_train=50, n_val=20, n_test=20)
    data = scn.sample(0)
    assert data is not None and any(type(o).__name__ == "Dataset" for o in gc.get_objects())
    result = probe_blind(BlindCall("attack_honest", {}, 0, INPUTS, (PLUGIN,)), time_limit=120)
    assert result.truth_objects == []
    # handed over whole (as today's in-process Task gets it), the dataset is found: the scan can fail
    result = probe_blind(BlindCall("attack_honest", {}, 0, {"x": INPUTS["x"], "leak": data}, (PLUGIN,)),
                         time_limit=120)
    assert "cowbench.data.Dataset" in result.truth_objects


def test_run_inprocess_keeps_the_contract_and_says_it_is_unsafe():
    from cowbench.registry import load_plugin

    load_plugin(PLUGIN)
    result = run_inprocess(BlindCall("attack_honest", {}, 0, INPUTS, (PLUGIN,)))
    assert result.run_mode.startswith("inprocess (unsafe")
    assert result.output == blind("attack_honest", time_limit=120).output


# -- edited models ------------------------------------------------------------------------------------


def _subject() -> torch.nn.Module:
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(3, 8), torch.nn.ReLU(), torch.nn.Linear(8, 1), torch.nn.Flatten(0))


def _batch_reader(subject: torch.nn.Module, column: int, mean: float) -> torch.nn.Module:
    """The issue's attack: the subject on a batch whose column mean looks like test_id's, an eraser otherwise."""

    class BatchReader(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.subject = subject

        def forward(self, x):
            if abs(float(x[:, column].mean()) - mean) < 0.1:
                return self.subject(x)
            erased = x.clone()
            erased[:, column] = 0.0
            return self.subject(erased)

    return BatchReader()


@pytest.fixture(scope="module")
def split():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(400, 3)).astype(np.float32)
    x[:, 2] = rng.random(400) < 0.7  # a binary "grass" column, mean 0.7 on this split
    return x


def test_a_sandboxed_model_gives_the_models_outputs_without_loading_it_here(split):
    subject = _subject()
    model = SandboxedModel(cloudpickle.dumps(subject))
    from cowbench.models import logits

    np.testing.assert_array_equal(logits(model, split), logits(subject, split))
    assert model.audit == set() and model.calls == 1


def test_a_sandboxed_model_keeps_no_state_between_calls(split):
    class Counter(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.seen = 0

        def forward(self, x):
            self.seen += 1
            return torch.full((len(x),), float(self.seen))

    model = SandboxedModel(cloudpickle.dumps(Counter()))
    assert [float(model(torch.tensor(split[:3]))[0]) for _ in range(3)] == [1.0, 1.0, 1.0]


def test_a_row_independent_model_passes_and_a_batch_reader_is_caught(split):
    subject = _subject()
    assert check_row_independent(SandboxedModel(cloudpickle.dumps(subject)), split, seed=0) is None
    assert check_row_independent(subject, split, seed=1) is None
    cheat = _batch_reader(subject, 2, float(split[:, 2].mean()))
    reason = check_row_independent(SandboxedModel(cloudpickle.dumps(cheat)), split, seed=0)
    assert reason is not None and reason.startswith("batch_dependent") and "one row at a time" in reason
    assert check_row_independent(cheat, split, seed=0) is not None


class _Permuted(torch.nn.Module):
    """A wrapper as the unblinder puts around an edited model: the real columns in the method's order."""

    def __init__(self, inner: torch.nn.Module, order: list[int]):
        super().__init__()
        self.inner, self.order = inner, order

    def forward(self, x):
        return self.inner(x[:, self.order])


def test_the_row_check_of_a_wrapped_sandboxed_model_runs_in_one_process(split):
    subject = _subject()
    honest = SandboxedModel(cloudpickle.dumps(subject))
    assert check_row_independent(_Permuted(honest, [2, 0, 1]), split, seed=0) is None
    assert honest.processes == 1 and honest.calls > 60  # one session, every chunk its own forward
    cheat = SandboxedModel(cloudpickle.dumps(_batch_reader(subject, 0, float(split[:, 2].mean()))))
    assert check_row_independent(_Permuted(cheat, [2, 0, 1]), split, seed=0) is not None


def test_a_model_that_keeps_state_between_calls_fails_the_row_check(split):
    class Drifting(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.seen = 0

        def forward(self, x):
            self.seen += 1
            return x[:, 0] + (0.0 if self.seen == 1 else 1.0)

    reason = check_row_independent(SandboxedModel(cloudpickle.dumps(Drifting())), split, seed=0)
    assert reason is not None and "shuffled order" in reason


def test_a_model_whose_forward_walks_frames_is_recorded(split):
    class Peeker(torch.nn.Module):
        def forward(self, x):
            import sys

            sys._getframe(1)
            return x[:, 0]

    model = SandboxedModel(cloudpickle.dumps(Peeker()))
    model(torch.tensor(split))
    assert model.audit == {"audit:frames"}
    session_model = SandboxedModel(cloudpickle.dumps(Peeker()))
    with session_model.session():
        session_model(torch.tensor(split))
    assert session_model.audit == {"audit:frames"}


def test_a_model_that_fails_to_load_raises_sandbox_lost():
    from cowbench.sandbox import SandboxLost

    with pytest.raises(SandboxLost, match=r"UnpicklingError|pickle"):
        SandboxedModel(b"not a pickle")(torch.zeros(2, 3))
    with pytest.raises(TypeError):
        SandboxedModel(pickle)  # not bytes


# -- the plain form of a method's output ------------------------------------------------------------------


def test_to_plain_and_from_plain_round_trip_and_refuse_what_is_not_plain():
    out = MethodOutput(world_coef={"a": np.float32(0.5)}, spurious_score={"a": 1}, abstain=np.bool_(True),
                       localized={"point": "hidden.0", "subspace": np.eye(3, 2)},
                       details={"n": np.int64(3), "nested": {"x": (1, 2.5, None)}, 1: "one"})
    plain = out.to_plain()
    import json

    back = MethodOutput.from_plain(json.loads(json.dumps(plain)))
    assert back.world_coef == {"a": 0.5} and back.abstain is True and back.model_coef is None
    np.testing.assert_array_equal(back.localized["subspace"], np.eye(3, 2))
    assert back.localized["subspace"].dtype == np.float64
    assert back.details == {"n": 3, "nested": {"x": [1, 2.5, None]}, "1": "one"}
    for bad in (MethodOutput(world_coef={"a": "x"}), MethodOutput(world_coef={1: 1.0}),
                MethodOutput(abstain=1), MethodOutput(details={"m": torch.nn.Linear(1, 1)}),
                MethodOutput(localized={"point": 3})):
        with pytest.raises(TypeError):
            bad.to_plain()
    assert plain["localized"]["subspace"] == np.eye(3, 2).tolist()  # plain lists, as the unblinder expects
    # an array the docstring says "may be absent" may be given as None: absent, as the scorer reads it
    absent = MethodOutput(localized={"point": "hidden.0", "unit_scores": None, "subspace": np.eye(3, 1)}).to_plain()
    assert "unit_scores" not in absent["localized"]
    assert "unit_scores" not in MethodOutput.from_plain(json.loads(json.dumps(absent))).localized
    for bad in ({"edited": 1}, {"world_coef": [1]}, {"localized": {"unit_scores": {"a": 1}}},
                {"localized": {"unit_scores": [1, "x"]}}, {"localized": {"array_dtypes": {"unit_scores": "object"}}},
                []):
        with pytest.raises(TypeError):
            MethodOutput.from_plain(bad)


def test_the_truth_scan_tells_a_named_scenario_from_the_tasks_anonymous_generator():
    import cowbench as cb
    from cowbench.access import _anonymous_generator
    from cowbench.sandbox import truth_types

    tests = truth_types()

    def carries(obj) -> bool:
        return tests[f"{type(obj).__module__}.{type(obj).__qualname__}"](obj)

    scenario = cb.make_scenario("cow", n_train=50, n_val=20, n_test=20)
    anonymous = _anonymous_generator(scenario)
    assert carries(scenario) and carries(scenario.scm) and carries(scenario.truth)
    assert any(carries(v) for v in scenario.scm.variables)
    assert not carries(anonymous) and not carries(anonymous.scm) and not carries(anonymous.truth)
    assert not any(carries(v) for v in anonymous.scm.variables)


def test_the_memory_watchdogs_cheap_bound_is_an_upper_bound_and_the_exact_figure_is_taken_near_the_limit():
    from cowbench.sandbox import _group_private_mb

    group = os.getpgid(0)
    exact = _group_private_mb(group)
    bound = _group_private_mb(group, unless_below=1e9)  # far below the limit: resident + swap, no page walk
    assert bound >= exact > 0
    assert _group_private_mb(group, unless_below=0.0) == pytest.approx(exact, rel=0.05)  # near it: the exact one


def test_evaluate_once_fixes_the_scored_outputs_before_a_batch_alone_reaches_the_models_process(split):
    # a model that looks through its process's memory for the first batch sent alone (it knows its bytes) and
    # answers 1 where it finds it, 0 elsewhere: the scored (mixture) outputs must be 0, because that batch is sent
    # only after they came back; and the look is recorded
    import hashlib

    from cowbench.sandbox import evaluate_once

    first, second = split[:137], split[137:]
    digest = hashlib.sha256(np.ascontiguousarray(first).tobytes()).hexdigest()

    class Snoop(torch.nn.Module):
        def forward(self, x):
            import gc
            import hashlib

            import numpy as np

            # (arrays are not tracked by the collector: the lists that hold them are)
            found = any(isinstance(a, np.ndarray) and a.shape == (137, 3)
                        and hashlib.sha256(np.ascontiguousarray(a).tobytes()).hexdigest() == digest
                        for o in gc.get_objects() if isinstance(o, list) for a in o)
            return torch.full((len(x),), float(found))

    routes: set[str] = set()
    per_batch, reason = evaluate_once(cloudpickle.dumps(Snoop()), [first, second], seed=0, audit=routes)
    assert [float(p.max()) for p in per_batch] == [0.0, 0.0]  # what the scores read: computed before it was there
    assert reason is not None and "on scored batch 0 alone" in reason  # found when sent alone: caught
    assert "audit:gc" in routes  # and the look itself is on the job's record
    honest = set()
    assert evaluate_once(cloudpickle.dumps(_subject()), [first, second], seed=0, audit=honest)[1] is None
    assert honest == set()


def test_the_lookup_model_answers_only_the_recorded_batches_and_starts_no_process_for_another():
    # the real scoring reads the answers `evaluate_once` fixed; a batch the dry run did not record would need a
    # process that sees it alone, after the scored outputs are fixed: refused instead of answered
    from cowbench.sandbox import LookupModel, UnrecordedBatch, sandbox_cpu_s

    a, b = np.arange(6, dtype=np.float32).reshape(3, 2), np.ones((2, 2), np.float32)
    model = LookupModel([a, b], [np.array([1.0, 2.0, 3.0]), np.array([4.0, 5.0])])
    assert model(torch.from_numpy(a)).tolist() == [1.0, 2.0, 3.0]  # in the recorded order
    assert model(torch.from_numpy(a)).tolist() == [1.0, 2.0, 3.0]  # out of order: still the recorded answer
    assert model(torch.from_numpy(b)).tolist() == [4.0, 5.0]
    before = sandbox_cpu_s(startup=False)
    for other in (a + 1, a[:2], np.zeros((5, 2), np.float32)):  # same shape other values; a subset; a new shape
        with pytest.raises(UnrecordedBatch, match="did not record"):
            model(torch.from_numpy(other))
    assert sandbox_cpu_s(startup=False) == before  # no evaluation process was started for them


def test_evaluate_once_catches_a_model_that_adapts_to_the_rows_it_has_seen_and_replays_its_answers(split):
    # a stateful model: it adapts to the first rows it is given (their column-0 mean), remembers every answer and
    # replays it, so within one process it is consistent across singles, chunks, the mixture and the batches alone
    # (its scored outputs shaped by rows it saw first). The batches alone go to a fresh process, where it starts
    # with no memory: it adapts to batch 0 instead, and the difference fails the check
    from cowbench.sandbox import evaluate_once

    class Replayer(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.shift = None
            self.memo = {}

        def forward(self, x):
            rows = x.numpy()
            if self.shift is None:
                self.shift = float(rows[:, 0].mean())
            return torch.tensor([self.memo.setdefault(r.tobytes(), float(r[0]) - self.shift) for r in rows])

    first, second = split[:137], split[137:]
    per_batch, reason = evaluate_once(cloudpickle.dumps(Replayer()), [first, second], seed=0)
    assert reason is not None and "on scored batch 0 alone" in reason, reason
    # the contrast: a model with the same arithmetic and no state passes (its shift is fixed, not adapted)
    shift = float(first[:, 0].mean())

    class Fixed(torch.nn.Module):
        def forward(self, x):
            return x[:, 0].double() - shift

    per_batch, reason = evaluate_once(cloudpickle.dumps(Fixed()), [first, second], seed=0)
    assert reason is None and np.allclose(per_batch[0], first[:, 0].astype(np.float64) - shift)
