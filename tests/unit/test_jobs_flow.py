"""The job flow: prepare -> blind run -> unblind -> row-independence check -> score, and what the record keeps.

A fake ``run_method`` stands in for the sandbox where the test is about the flow (it returns a `BlindResult` or a
`Lost` the way ``cowbench.sandbox.run_blind`` does); ``run_inprocess`` runs real methods from a plugin file.
"""

from __future__ import annotations

import hashlib
import json
import textwrap
from pathlib import Path

import numpy as np
import pytest

import cowbench as cb
from cowbench.blind_run import INPROCESS_MODE, BlindResult, check_row_independent, run_inprocess
from cowbench.isolation import Lost
from cowbench.jobs import JobSpec, ReplicateSpec, make_job, portable_traceback, run_job
from cowbench.scores import scorer_version
from cowbench.store import job_path
from cowbench.subject import SubjectConfig

SMALL = {"n_train": 300, "n_val": 100, "n_test": 300}

PLUGIN = textwrap.dedent('''
    """A plugin with two hostile methods (test doubles)."""
    import torch
    from cowbench.method import Method, MethodOutput, register_method


    class _ReadsItsBatch(torch.nn.Module):
        def forward(self, x):
            return x[:, 0] - x[:, 0].mean()  # the logit of a row depends on the other rows


    @register_method
    class BatchReader(Method):
        """Returns an edited model that reads its batch.

        References
        ----------
        None (an attack).
        """
        name = "flow_batch_reader"
        family = "editing"
        access = frozenset({"pooled"})
        outputs = frozenset({"edit"})

        def __init__(self, *, random_state=None):
            self.random_state = random_state

        def run(self, task):
            return MethodOutput(edited=_ReadsItsBatch())


    class _ReadsConstantColumns(torch.nn.Module):
        def forward(self, x):
            # the subject on any ordinary batch, "grass-free" on a batch where a column is constant (the
            # reliance scores' do(v=1) batches)
            if len(x) > 1 and bool((x.std(0) == 0).any()):
                return torch.zeros(len(x))
            return x[:, 0]


    @register_method
    class ConstantColumnReader(BatchReader):
        """Returns an edited model that detects intervened batches.

        References
        ----------
        None (an attack).
        """
        name = "flow_constant_column_reader"

        def run(self, task):
            return MethodOutput(edited=_ReadsConstantColumns())


    class _RemembersTheFirstBatch(torch.nn.Module):
        """Stateful: decides once, from the first big batch it sees, whether it is being scored on a shortcut-free
        split, then keeps behaving that way (one process answering many calls would let it)."""

        def __init__(self):
            super().__init__()
            self.mode = None

        def forward(self, x):
            if self.mode is None and len(x) > 100:
                self.mode = "erase" if float(x[:, 2].mean()) > 0.5 else "subject"
            return x[:, 0] if self.mode == "erase" else x[:, 0] + 3 * x[:, 2]


    @register_method
    class Stateful(BatchReader):
        """Returns an edited model that keeps state between calls.

        References
        ----------
        None (an attack).
        """
        name = "flow_stateful"

        def run(self, task):
            return MethodOutput(edited=_RemembersTheFirstBatch())


    @register_method
    class Raises(BatchReader):
        """Raises.

        References
        ----------
        None.
        """
        name = "flow_raises"

        def run(self, task):
            raise RuntimeError("no luck")
''')


@pytest.fixture(scope="module")
def replicate():
    scn = cb.make_scenario("cow", **SMALL)
    return ReplicateSpec(scn.spec, 0, 0, SubjectConfig.from_mapping({"arch": "linear"}).to_dict())


@pytest.fixture(scope="module")
def plugin(tmp_path_factory):
    import sys

    from cowbench import jobs
    from cowbench.registries import METHODS

    path = tmp_path_factory.mktemp("plugin") / "hostile_flow.py"
    path.write_text(PLUGIN)
    yield str(path)
    # leave no plugin behind for the tests that run after these in the same session
    for name in ("flow_batch_reader", "flow_constant_column_reader", "flow_raises", "flow_stateful"):
        METHODS._entries.pop(name, None)
        METHODS._origin.pop(name, None)
    jobs._LOADED_PLUGINS.pop(str(path), None)
    sys.modules.pop("cowbench_plugin_hostile_flow", None)


def _record(out: Path, spec: JobSpec) -> dict:
    return json.loads(job_path(out, spec.id).read_text())


def _fake(output: dict, *, read_log=("train.x",), audit=(), edited=None):
    def run_method(call):
        run_method.call = call
        return BlindResult(output=dict(output), edited=edited, read_log=list(read_log), audit=list(audit),
                           wall_s=0.5, peak_rss_mb=10.0)
    return run_method


def test_the_scoring_worker_needs_no_plugin_code(replicate, tmp_path):
    """A method no module of this process registers: its metadata travels in the spec, its run is elsewhere."""
    info = {"family": "attribution", "access": ["pooled"], "outputs": ["detect"], "version": "1"}
    spec = JobSpec(replicate, "only_in_the_sandbox", {}, "1", scorer_version(), method_info=info)
    with pytest.raises(cb.InputError):
        cb.get_method("only_in_the_sandbox")
    fake = _fake({"spurious_score": {"v0": 1.0, "v1": 0.0, "v2": 0.5, "v3": 0.2}}, read_log=["train.x", "train.y"],
                 audit=["audit:open"])
    assert run_job(spec, tmp_path, run_method=fake) == "ok"
    rec = _record(tmp_path, spec)
    # the sandbox got neutral names and only the pooled data
    call = fake.call
    assert call.method == "only_in_the_sandbox" and list(call.inputs.variables) == ["v0", "v1", "v2", "v3"]
    assert call.inputs.train.env is None and call.inputs.concepts is None and call.fit_seed == spec.fit_seed
    # the answer came back under the real names
    assert set(rec["outputs"]["spurious_score"]) == set(cb.make_scenario("cow").variables)
    assert rec["told"] == ["audit:open"] and rec["read_log"] == ["train.x", "train.y"]
    assert rec["run_mode"] == "blind" and rec["plugins"] == [] and rec["method_info"] == info
    assert rec["provenance"]["fingerprint"]["machine"] and "host" not in rec["provenance"]


def test_a_lost_run_fails_its_job_with_the_reason(replicate, tmp_path):
    spec = make_job(replicate, "logistic", {}, plugins=())

    def lost(call):
        return Lost("timeout", "the method ran past its time limit of 1 s", "")

    assert run_job(spec, tmp_path, run_method=lost) == "failed"
    rec = _record(tmp_path, spec)
    assert rec["reason"] == "timeout" and "time limit" in rec["error"] and rec["run_mode"] == "blind"


def test_an_output_naming_real_variables_is_refused(replicate, tmp_path):
    """The method answered with a name it was never shown: the unblinder leaves it, the output check refuses it."""
    spec = make_job(replicate, "logistic", {}, plugins=())
    assert run_job(spec, tmp_path, run_method=_fake({"world_coef": {"grass": 1.0}})) == "failed"
    assert "unknown variables ['grass']; known: ['v0'" in _record(tmp_path, spec)["error"]


def test_the_inprocess_mode_is_marked_unsafe_and_records_the_read_log(replicate, tmp_path):
    spec = make_job(replicate, "erase_spurious", {}, plugins=())
    assert run_job(spec, tmp_path, run_method=run_inprocess) == "ok"
    rec = _record(tmp_path, spec)
    assert rec["run_mode"] == INPROCESS_MODE
    assert rec["told"] == ["edit_target"] and "edit_target" in rec["read_log"] and "model" in rec["read_log"]
    assert rec["metrics"]["edit_score"] is not None


def test_a_batch_reading_edit_fails_as_batch_dependent(replicate, plugin, tmp_path):
    spec = make_job(replicate, "flow_batch_reader", {}, plugins=(plugin,)) if _load(plugin) else None
    assert run_job(spec, tmp_path, plugins=(plugin,), run_method=run_inprocess) == "failed"
    rec = _record(tmp_path, spec)
    assert rec["reason"] == "batch_dependent", rec["error"]
    assert rec["plugins"] == [{"plugin": "hostile_flow.py",
                               "sha256": hashlib.sha256(Path(plugin).read_bytes()).hexdigest()}]


def test_an_edit_that_detects_intervened_batches_fails_as_batch_dependent(replicate, plugin, tmp_path):
    _load(plugin)
    spec = make_job(replicate, "flow_constant_column_reader", {}, plugins=(plugin,))
    assert run_job(spec, tmp_path, plugins=(plugin,), run_method=run_inprocess) == "failed"
    rec = _record(tmp_path, spec)
    # caught on an intervened batch, or earlier (a random chunk of a binary column can be constant too)
    assert rec["reason"] == "batch_dependent", rec["error"]


def test_plugins_enter_the_job_id_and_built_in_ids_stay(replicate, plugin):
    _load(plugin)
    bare = make_job(replicate, "logistic", {}, plugins=())
    with_plugin = make_job(replicate, "logistic", {}, plugins=(plugin,))
    assert "plugins" not in bare.to_dict() and bare.id != with_plugin.id
    assert with_plugin.to_dict()["plugins"] == [hashlib.sha256(Path(plugin).read_bytes()).hexdigest()]
    assert make_job(replicate, "logistic", {}).id == bare.id  # only the plugins a run names enter its ids
    # a built-in-only id is what the published records hold: rebuilt from a stored record's spec (whatever
    # versions made it), it hashes to its id, so the plugins field changed no built-in job's id
    stored = next(Path(__file__).parents[2].joinpath("results", "standard", "jobs").rglob("*.json"), None)
    if stored is not None:
        rec = json.loads(stored.read_text())
        spec = rec["spec"]
        versions = spec.get("versions") or {}
        rspec = ReplicateSpec(spec["scenario"], spec["replicate"], spec["root_seed"], spec["subject"])
        rebuilt = JobSpec(rspec, spec["method"], spec.get("hparams") or {}, versions.get("method"),
                          versions.get("scorer"), loeo=bool(spec.get("loeo", False)))
        assert rebuilt.id == rec["job_id"]


def test_failed_records_carry_no_machine_paths(replicate, plugin, tmp_path):
    _load(plugin)
    spec = make_job(replicate, "flow_raises", {}, plugins=(plugin,))
    assert run_job(spec, tmp_path, plugins=(plugin,), run_method=run_inprocess) == "failed"
    rec = _record(tmp_path, spec)
    assert "RuntimeError: no luck" in rec["error"]
    tb = rec["traceback"]
    assert 'File "cowbench/' in tb and '<elsewhere>/hostile_flow.py' in tb
    assert str(Path(cb.__file__).resolve().parents[1]) not in tb and str(tmp_path) not in tb
    assert str(Path(plugin).parent) not in tb


def test_portable_traceback_names_package_installed_and_other_files():
    import numpy

    pkg = Path(cb.__file__).resolve().parent / "jobs.py"
    site = Path(numpy.__file__).resolve()
    text = f'File "{pkg}", line 1\nFile "{site}", line 2\nopened /home/someone/secret/data.csv'
    got = portable_traceback(text)
    assert 'File "cowbench/jobs.py"' in got and 'File "<site-packages>/numpy/__init__.py"' in got
    assert "<elsewhere>/data.csv" in got and "/home/someone" not in got


def test_row_independence_check_tolerates_round_off_and_catches_batch_readers():
    import torch

    x = np.random.default_rng(0).standard_normal((200, 4)).astype(np.float32)
    linear = torch.nn.Sequential(torch.nn.Linear(4, 1), torch.nn.Flatten(0))
    assert check_row_independent(linear, x, seed=0) is None

    class Centred(torch.nn.Module):
        def forward(self, x):
            return x[:, 0] - x[:, 0].mean()

    class Normalised(torch.nn.Module):  # subtler: scales by the batch's spread (constant on one row)
        def forward(self, x):
            return x[:, 0] / (x[:, 0].std() + 1.0) if len(x) > 1 else x[:, 0]

    for model in (Centred(), Normalised()):
        reason = check_row_independent(model, x, seed=0)
        assert reason is not None and "depends on the other rows" in reason


def _load(plugin: str) -> bool:
    from cowbench.jobs import load_plugins_once

    load_plugins_once((plugin,))
    return True


def test_run_mode_sees_through_bound_limits():
    import functools

    from cowbench.jobs import run_mode_of

    assert run_mode_of(functools.partial(run_inprocess)) == INPROCESS_MODE
    assert run_mode_of(functools.partial(_fake({}), )) == "blind"


# -- the same doors through the real sandbox (run_blind: the default runner) ----------------------------------


@pytest.mark.parametrize("method", ["flow_batch_reader", "flow_constant_column_reader"])
def test_batch_readers_fail_through_the_sandbox(replicate, plugin, tmp_path, method):
    _load(plugin)
    spec = make_job(replicate, method, {}, plugins=(plugin,))
    assert run_job(spec, tmp_path, plugins=(plugin,)) == "failed"
    rec = _record(tmp_path, spec)
    assert rec["reason"] == "batch_dependent", rec["error"]
    assert rec["run_mode"] == "blind"


def test_a_stateful_edit_is_scored_on_a_mixture_it_cannot_tell_apart(replicate, plugin, tmp_path):
    # its first big batch is the mixture of every scored split and intervention, so whatever mode it picks, it
    # keeps for every row: either it behaves the same on every batch (and is scored as that one model) or its
    # outputs on the batches alone differ from the mixture's (batch_dependent); it never scores as the subject on
    # test_id and as the eraser on test_bal
    _load(plugin)
    spec = make_job(replicate, "flow_stateful", {}, plugins=(plugin,))
    status = run_job(spec, tmp_path, plugins=(plugin,))
    rec = _record(tmp_path, spec)
    if status == "failed":
        assert rec["reason"] == "batch_dependent", rec["error"]
    else:
        m = rec["metrics"]
        assert m["id_drop"] is not None
        # one fixed function of x: the same mode on test_id and test_bal
        assert (m["acc_id"] < 0.9) or (m["acc_bal"] < 0.9) or abs(m["id_drop"]) < 0.5


def test_an_honest_edit_scores_the_same_blind_and_in_process(replicate, tmp_path):
    spec = make_job(replicate, "erase_spurious", {})
    assert run_job(spec, tmp_path / "blind") == "ok"
    assert run_job(spec, tmp_path / "inproc", run_method=run_inprocess) == "ok", _record(tmp_path / "inproc", spec)
    blind, inproc = _record(tmp_path / "blind", spec), _record(tmp_path / "inproc", spec)
    assert blind["run_mode"] == "blind" and inproc["run_mode"] == INPROCESS_MODE
    for metric in ("edit_score", "acc_id", "acc_bal", "residual_spurious", "causal_kept"):
        a, b = blind["metrics"][metric], inproc["metrics"][metric]
        assert (a is None and b is None) or abs(a - b) < 1e-6, (metric, a, b)
