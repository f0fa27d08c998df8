"""The audit hook: honest methods leave no record, and the allow list excuses no door.

The attacks (frames, gc, results files, subprocesses, sockets, ctypes) are recorded in `test_sandbox.py`; here
every built-in method runs through the sandbox under the hook on a small scenario and must leave no record.
"""

from __future__ import annotations

import os

import pytest

from cowbench.audit import ALLOWED, AuditRecorder, _allowed, installed_roots
from cowbench.conformance import _fixture, _pick_scenario
from cowbench.registries import METHODS
from cowbench.sandbox import BlindCall, BlindResult, LegacyInputs, run_blind

# one of each kind of library use: scikit-learn, typing_extensions (afr), torch training with a cuda lazy call
# (coral), internals and concepts (leace), environments on a linear SEM (icp), interventions (cf_augment)
REPRESENTATIVE = ("logistic", "afr", "coral", "leace", "icp", "cf_augment")


def _audit(name: str) -> BlindResult:
    cls = METHODS.get(name)
    scenario, knobs = _pick_scenario(cls)
    fx = _fixture(scenario, knobs, "mlp")
    inputs = LegacyInputs(fx.scenario.spec, fx.data, fx.subject, cls.access, fx.config, 200)
    result = run_blind(BlindCall(name, {}, 0, inputs), time_limit=600)
    assert isinstance(result, BlindResult), result
    return result


@pytest.mark.parametrize("name", REPRESENTATIVE)
def test_representative_builtin_methods_leave_no_record(name):
    result = _audit(name)
    assert result.audit == [], result.audit_details


def _applicable() -> list[str]:
    METHODS.scan()
    return sorted(METHODS.names())


@pytest.mark.slow
@pytest.mark.parametrize("name", _applicable())
def test_every_builtin_method_leaves_no_record(name):
    try:
        _pick_scenario(METHODS.get(name))
    except ValueError as exc:
        pytest.skip(str(exc))
    result = _audit(name)
    assert result.audit == [], result.audit_details


# -- the judgments themselves (no hook installed: a hook cannot be removed from the test process) -----------


@pytest.fixture
def recorder(tmp_path):
    rec = AuditRecorder(str(tmp_path / "private"), installed_roots())
    rec.private_dir = os.path.realpath(rec.private_dir)
    rec._pid_dir = f"/proc/{os.getpid()}/"
    return rec


def test_reads_of_installed_code_and_system_files_pass_and_the_rest_is_named(recorder, tmp_path):
    import numpy

    assert recorder._path_problem("open", (numpy.__file__, "r", os.O_RDONLY)) is None
    assert recorder._path_problem("open", ("/proc/self/status", "r", 0)) is None
    assert recorder._path_problem("open", (f"/proc/{os.getpid()}/statm", "r", 0)) is None
    assert recorder._path_problem("open", (os.path.join(recorder.private_dir, "x"), "w", 0)) is None
    # someone else's process, the results folder, a write into installed code: recorded
    assert recorder._path_problem("open", ("/proc/1/cmdline", "r", 0)) is not None
    assert recorder._path_problem("open", (str(tmp_path / "results" / "job.json"), "r", 0)) is not None
    assert "(write)" in recorder._path_problem("open", (numpy.__file__, "w", os.O_WRONLY))
    assert recorder._path_problem("os.listdir", (str(tmp_path),)) is not None
    assert recorder._path_problem("os.remove", (numpy.__file__,)) is not None


def test_a_symlink_from_the_private_folder_to_a_results_file_is_judged_by_its_target(recorder, tmp_path):
    os.makedirs(recorder.private_dir)
    target = tmp_path / "oracle.pt"
    target.write_bytes(b"x")
    link = os.path.join(recorder.private_dir, "innocent")
    os.symlink(target, link)
    assert recorder._path_problem("open", (link, "rb", 0)) is not None


def test_the_checkout_holding_results_is_not_a_read_root():
    import cowbench

    checkout = os.path.dirname(os.path.dirname(os.path.realpath(cowbench.__file__)))
    assert checkout not in installed_roots()
    assert not any(os.path.join(checkout, "results").startswith(r + "/") for r in installed_roots())


def test_the_allow_list_excuses_named_functions_not_the_plumbing():
    # calling the plumbing directly (gc, ctypes from the method's own module) is never excused
    assert not _allowed(ALLOWED["audit:gc"], "my_plugin", "run")
    assert not _allowed(ALLOWED["audit:frames"], "my_plugin", "namedtuple")
    assert not _allowed(ALLOWED["audit:frames"], "logging", "currentframe")  # returns a frame: not excused
    assert _allowed(ALLOWED["audit:frames"], "collections", "namedtuple")
    assert _allowed(ALLOWED["audit:ctypes"], "threadpoolctl", "_load_libraries")
    assert not _allowed(ALLOWED["audit:frames"], "torch._jit_internal", "createResolutionCallbackFromFrame")
    assert not _allowed(ALLOWED["audit:ctypes"], "threadpoolctl_fake", "x")
