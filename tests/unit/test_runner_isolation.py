"""Worker isolation, per-job locks, storable details and the replicate fingerprint, each on its own."""

from __future__ import annotations

import ctypes
import operator
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from cowbench.errors import InputError
from cowbench.isolation import IsolatedWorker, Lost
from cowbench.jobs import UnstorableOutput, _storable
from cowbench.locks import hold
from cowbench.runner import check_time_limit


@pytest.fixture(scope="module")
def worker():
    w = IsolatedWorker()
    yield w
    w.close()


# the calls travel by reference, so they are standard-library functions the child can import


def test_a_call_returns_its_result_and_the_worker_is_kept(worker):
    assert worker.call(operator.add, (2, 3)) == 5
    pid = worker.pid
    assert worker.call(operator.mul, (4, 5)) == 20 and worker.pid == pid


def test_os_exit_is_a_lost_call_and_the_next_call_gets_a_new_worker(worker):
    worker.call(operator.add, (1, 1))
    before = worker.pid
    lost = worker.call(os._exit, (3,))
    assert isinstance(lost, Lost) and lost.reason == "exit" and "code 3" in lost.message
    assert worker.call(operator.add, (1, 1)) == 2 and worker.pid != before


def test_sys_exit_is_the_calls_failure_and_the_worker_survives(worker):
    worker.call(operator.add, (1, 1))
    before = worker.pid
    lost = worker.call(sys.exit, (4,))
    assert isinstance(lost, Lost) and lost.reason == "exit" and "sys.exit(4)" in lost.message
    assert "SystemExit" in lost.traceback and worker.pid == before


def test_a_self_kill_is_reported_by_its_signal(worker):
    lost = worker.call(signal.raise_signal, (signal.SIGKILL,))
    assert isinstance(lost, Lost) and lost.reason == "signal" and "SIGKILL" in lost.message


def test_keyboard_interrupt_in_the_call_is_the_calls_failure(worker):
    # Python's own SIGINT handler, as under a terminal: a run started in the background by a shell without job
    # control (`cmd &`) inherits SIGINT ignored, and then a raised SIGINT does nothing
    worker.call(signal.signal, (signal.SIGINT, signal.default_int_handler))
    lost = worker.call(signal.raise_signal, (signal.SIGINT,))  # Python turns SIGINT into KeyboardInterrupt
    assert isinstance(lost, Lost) and lost.reason == "interrupt"


def test_a_call_past_the_time_limit_is_stopped(worker):
    lost = worker.call(time.sleep, (600,), time_limit=1.0)
    assert isinstance(lost, Lost) and lost.reason == "timeout" and "time limit of 1 s" in lost.message
    assert worker.call(operator.add, (1, 2)) == 3  # a fresh worker takes the next call


def test_the_child_dies_with_its_parent(tmp_path):
    # a parent that starts a child, prints its pid and hangs; killing the parent must take the child with it
    script = ("import sys, time, os\nfrom cowbench.isolation import IsolatedWorker\nw = IsolatedWorker()\n"
              "w.call(os.getpid)\nprint(w.pid, flush=True)\ntime.sleep(600)\n")
    parent = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    child = int(parent.stdout.readline())
    parent.kill()
    parent.wait()
    for _ in range(100):
        try:
            os.kill(child, 0)
        except ProcessLookupError:
            break
        time.sleep(0.1)
    else:
        os.kill(child, signal.SIGKILL)
        pytest.fail("the isolated child outlived its killed parent")


@pytest.mark.parametrize("value", [0, -1, float("nan"), float("inf"), "10", True])
def test_bad_time_limits_are_refused(value):
    with pytest.raises(InputError, match="time limit must be a positive number"):
        check_time_limit(value)


def test_time_limit_none_means_no_limit():
    assert check_time_limit(None) is None and check_time_limit(5) == 5.0


def test_details_are_made_storable():
    details = {"nan": float("nan"), "inf": np.float32("-inf"), "arr": np.arange(3, dtype=np.int32),
               "f": np.float64(0.5), "b": np.bool_(True), "nested": {1: [np.float32(2.0), None]}, "t": (1, "a")}
    assert _storable(details, "details") == {"nan": None, "inf": None, "arr": [0, 1, 2], "f": 0.5, "b": True,
                                             "nested": {"1": [2.0, None]}, "t": [1, "a"]}


@pytest.mark.parametrize("bad", [{"m": object()}, {"t": [1, {2, 3}]}, {(1, 2): 0}])
def test_unstorable_details_name_where_they_are(bad):
    with pytest.raises(UnstorableOutput, match=r"details\[|details has a key"):
        _storable(bad, "details")


def test_a_lock_is_held_by_one_holder_at_a_time(tmp_path):
    path = tmp_path / "a.lock"
    with hold(path) as first:
        with hold(path) as second:
            assert first and not second
    with hold(path) as again:
        assert again


def test_a_lock_of_a_killed_process_is_free(tmp_path):
    path = tmp_path / "a.lock"
    script = (f"from cowbench.locks import hold\nimport time\nwith hold({str(path)!r}) as h:\n"
              "    print(h, flush=True)\n    time.sleep(600)\n")
    holder = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "True"
    with hold(path) as taken:
        assert not taken
    holder.kill()
    holder.wait()
    with hold(path, wait=10.0) as taken:
        assert taken


def test_the_fingerprint_changes_when_shared_data_or_models_are_overwritten():
    import torch

    import cowbench as cb
    from cowbench.jobs import ReplicateSpec, prepare, replicate_fingerprint
    from cowbench.subject import SubjectConfig

    scn = cb.make_scenario("cow", n_train=200, n_val=50, n_test=200)
    rep = prepare(ReplicateSpec(scn.spec, 0, 0, SubjectConfig.from_mapping({"arch": "linear"}).to_dict()))
    assert rep.fingerprint == replicate_fingerprint(rep)
    x = rep.data.test_ood.x
    saved = x.copy()
    ctypes.memset(x.ctypes.data, 0, x.nbytes)  # what a method can do despite read-only flags
    try:
        assert replicate_fingerprint(rep) != rep.fingerprint
    finally:
        ctypes.memmove(x.ctypes.data, saved.ctypes.data, x.nbytes)
    assert replicate_fingerprint(rep) == rep.fingerprint
    param = next(rep.subject.parameters())
    with torch.no_grad():
        kept = param.clone()
        param.add_(1.0)  # an in-place edit of the shared subject
        try:
            assert replicate_fingerprint(rep) != rep.fingerprint
        finally:
            param.copy_(kept)
    assert replicate_fingerprint(rep) == rep.fingerprint


def test_a_torch_py_in_the_working_folder_is_never_imported(tmp_path, monkeypatch):
    # `python -m` puts the working folder first on sys.path; the worker is started with -P, so the folder
    # `cowbench run` starts from cannot shadow torch (or any module) in the process that prepares and scores jobs
    (tmp_path / "torch.py").write_text("import os\nos._exit(97)\n")
    monkeypatch.chdir(tmp_path)
    w = IsolatedWorker()
    try:
        assert w.call(os.getcwd) == str(tmp_path)  # started and runs there, with the real torch imported
    finally:
        w.close()
