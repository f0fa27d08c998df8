"""Bad input: one line on stderr (``cowbench: error: ...``), exit code 2, and nothing written.

A table of bad inputs across the command line, suite files, results directories and the Python API. Each
case builds its inputs under a temporary directory, then the directory tree (names, sizes, modification
times) is compared before and after the command. The CLI runs in-process (``cowbench.cli.main``): the cases
fail before any job could start, and this keeps ~80 cases within seconds.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable
from pathlib import Path

import pytest

import cowbench as cb
from cowbench.cli import main
from cowbench.errors import InputError

GOOD = '[[scenarios]]\nname = "cow"\n[methods]\ninclude = ["logistic"]\n'


def toml(body: str, *, name_line: str = "", under: str = "") -> Callable[[Path], list[str]]:
    """A case: write a suite file and run it into ``<tmp>/out``."""

    def make(tmp: Path) -> list[str]:
        path = tmp / under / "s.toml"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(name_line + body, encoding="utf-8")
        return ["run", str(path), "--out", str(tmp / "out")]

    return make


def method_params(name: str, params: str) -> Callable[[Path], list[str]]:
    return toml(f'[[scenarios]]\nname = "cow"\n[methods]\ninclude = [{{ name = "{name}", params = {params} }}]\n')


def cli(*args: str) -> Callable[[Path], list[str]]:
    return lambda tmp: [a.replace("{tmp}", str(tmp)) for a in args]


def with_file(rel: str, data: bytes, *args: str) -> Callable[[Path], list[str]]:
    """A case that first writes ``data`` at ``<tmp>/rel``."""

    def make(tmp: Path) -> list[str]:
        path = tmp / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        return [a.replace("{tmp}", str(tmp)) for a in args]

    return make


def manifest(name: str, jobs: list[str] | None = None) -> bytes:
    return json.dumps({"suite": {"name": name}, "suite_hash": "0" * 12, "jobs": jobs or [], "skipped": []}).encode()


def two_suites(*args: str) -> Callable[[Path], list[str]]:
    def make(tmp: Path) -> list[str]:
        for name in ("alpha", "beta"):
            (tmp / "res" / "manifests").mkdir(parents=True, exist_ok=True)
            (tmp / "res" / "manifests" / f"{name}.json").write_bytes(manifest(name))
        return [a.replace("{tmp}", str(tmp)) for a in args]

    return make


CLI_CASES: dict[str, tuple[Callable[[Path], list[str]], str]] = {
    # argparse: one line, not a usage block
    "no_command": (cli(), "required: command"),
    "unknown_command": (cli("frobnicate"), "invalid choice: 'frobnicate'"),
    "run_without_suite": (cli("run"), "required: suite"),
    "jobs_not_integer": (cli("run", "smoke", "--jobs", "abc"), "--jobs: invalid int value"),
    "unknown_launcher": (cli("run", "smoke", "--launcher", "bogus"), "invalid choice: 'bogus'"),
    "replicates_not_integer": (cli("run", "smoke", "--replicates", "x"), "--replicates: invalid int value"),
    "unknown_flag": (cli("run", "smoke", "--frobnicate"), "unrecognized arguments: --frobnicate"),
    "report_format": (cli("report", "{tmp}", "--format", "xml"), "invalid choice: 'xml'"),
    "list_what": (cli("list", "bogus"), "invalid choice: 'bogus'"),
    "anchor_name": (cli("anchor", "nope"), "invalid choice: 'nope'"),
    "plugins_without_value": (cli("list", "--plugins"), "expected one argument"),
    "time_limit_not_number": (cli("run", "smoke", "--time-limit", "soon"), "--time-limit: invalid float value"),
    # run: the output directory
    "out_empty": (cli("run", "smoke", "--out", ""), "--out must name a directory"),
    "out_is_a_file": (with_file("f.txt", b"x", "run", "smoke", "--out", "{tmp}/f.txt"), "is not a directory"),
    "out_dev_null": (cli("run", "smoke", "--out", "/dev/null"), "is not a directory"),
    "out_under_a_file": (with_file("f.txt", b"x", "run", "smoke", "--out", "{tmp}/f.txt/sub/dir"), "which is a file"),
    "out_foreign_directory": (with_file("mine/notes.txt", b"x", "run", "smoke", "--out", "{tmp}/mine"),
                              "not a cowbench results directory"),
    # run: other flags
    "methods_empty": (cli("run", "smoke", "--out", "{tmp}/o", "--methods", ""), "--methods needs at least one"),
    "methods_only_commas": (cli("run", "smoke", "--out", "{tmp}/o", "--methods", " , "), "--methods needs at least"),
    "methods_misspelt": (cli("run", "smoke", "--out", "{tmp}/o", "--methods", "logistc"), "did you mean 'logistic'"),
    "methods_twice": (cli("run", "smoke", "--out", "{tmp}/o", "--methods", "logistic,logistic"), "listed twice"),
    "jobs_zero": (cli("run", "smoke", "--out", "{tmp}/o", "--jobs", "0"), "--jobs must be a positive integer"),
    "jobs_negative": (cli("run", "smoke", "--out", "{tmp}/o", "--jobs", "-3"), "--jobs must be a positive integer"),
    "replicates_zero": (cli("run", "smoke", "--out", "{tmp}/o", "--replicates", "0"), "replicates"),
    "replicates_negative": (cli("run", "smoke", "--out", "{tmp}/o", "--replicates", "-1"), "replicates"),
    "root_seed_negative": (cli("run", "smoke", "--out", "{tmp}/o", "--root-seed", "-1"), "root_seed"),
    "time_limit_negative": (cli("run", "smoke", "--out", "{tmp}/o", "--time-limit", "-5"), "time limit"),
    "unknown_suite": (cli("run", "no_such_suite"), "unknown suite 'no_such_suite'"),
    "suite_empty_string": (cli("run", ""), "empty string"),
    "suite_missing_file": (cli("run", "{tmp}/missing.toml"), "does not exist"),
    "suite_is_a_directory": (with_file("d.toml/x", b"", "run", "{tmp}/d.toml"), "not a regular file"),
    # other commands
    "show_bad_knob": (cli("show", "cow", "agreement_test=2"), "agreement_test=2"),
    "show_unknown_scenario": (cli("show", "caw"), "unknown scenario 'caw'"),
    "knob_without_equals": (cli("show", "cow", "agreement_test"), "must be written name=value"),
    "knobs_unknown_scenario": (cli("knobs", "caw"), "unknown scenario 'caw'"),
    "generate_negative_seed": (cli("generate", "cow", "--seed", "-1", "--out", "{tmp}/g"), "--seed"),
    "check_unknown_method": (cli("check", "logistik"), "unknown method 'logistik'"),
    "anchor_too_few_reps": (cli("anchor", "irm_synthetic", "--reps", "1"), "--reps"),
}

SUITE_CASES = {
    "name_absolute": (lambda tmp: toml(GOOD, name_line=f'[suite]\nname = "{tmp}/abs"\n')(tmp), "suite name"),
    # no --out: the name would become results/../../x, which is inside the temporary directory here
    "name_dotdot_default_out": (lambda tmp: toml(GOOD, name_line='[suite]\nname = "../../x"\n', under="a/b")(tmp)[:2],
                                "suite name '../../x' is invalid"),
    "name_with_slash": (toml(GOOD, name_line='[suite]\nname = "a/b"\n'), "suite name 'a/b' is invalid"),
    "name_not_string": (toml(GOOD, name_line="[suite]\nname = 3\n"), "suite name 3 is invalid"),
    "description_not_string": (toml(GOOD, name_line="[suite]\ndescription = 3\n"), "description"),
    "params_not_table": (method_params("logistic", "3"), "'params' must be a table"),
    "hparam_string": (method_params("ridge", '{ alpha = "abc" }'), "alpha='abc' is invalid"),
    "hparam_huge_negative": (method_params("ridge", "{ alpha = -1e308 }"), "alpha=-1e+308 is invalid"),
    "hparam_list": (method_params("ridge", "{ alpha = [1, 2] }"), "alpha=[1, 2] is invalid"),
    "hparam_nan": (method_params("logistic", "{ C = nan }"), "method 'logistic': hyperparameter C=nan"),
    "hparam_inf": (method_params("logistic", "{ C = inf }"), "C=inf is invalid"),
    "hparam_bool": (method_params("logistic", "{ max_iter = true }"), "max_iter=True is invalid"),
    "hparam_float_for_int": (method_params("logistic", "{ max_iter = 10.5 }"), "max_iter=10.5 is invalid"),
    "hparam_unknown": (method_params("logistic", "{ D = 1 }"), "unknown hyperparameter 'D'"),
    "hparam_random_state": (method_params("logistic", "{ random_state = 1 }"), "random_state"),
    "hparam_bad_option": (method_params("irm_linear", '{ dummy = "vectr" }'), "dummy='vectr' is invalid"),
    "hparam_level_above_one": (method_params("icp", "{ alpha = 1.5 }"), "alpha=1.5 is invalid"),
    "unknown_scenario": (toml('[[scenarios]]\nname = "caw"\n[methods]\ninclude = ["logistic"]\n'),
                         "unknown scenario 'caw'"),
    "bad_knob": (toml('[[scenarios]]\nname = "cow"\nknobs = { agreement_test = 3.0 }\n[methods]\n'
                      'include = ["logistic"]\n'), "agreement_test=3.0"),
    "unknown_method": (toml('[[scenarios]]\nname = "cow"\n[methods]\ninclude = ["logistik"]\n'),
                       "unknown method 'logistik'"),
    "malformed_toml": (toml('[[scenarios]\nname = "cow"\n'), "not valid TOML"),
    "unknown_table": (toml("[sweet]\nx = 1\n"), "unknown table"),
    "replicates_zero": (toml(GOOD, name_line="[suite]\nreplicates = 0\n"), "replicates"),
    "replicates_string": (toml(GOOD, name_line='[suite]\nreplicates = "3"\n'), "replicates"),
    "root_seed_negative": (toml(GOOD, name_line="[suite]\nroot_seed = -1\n"), "root_seed"),
    "root_seed_bool": (toml(GOOD, name_line="[suite]\nroot_seed = true\n"), "root_seed"),
    "suite_unknown_key": (toml(GOOD, name_line="[suite]\nseed = 1\n"), "allowed keys"),
    "no_scenarios": (toml('[methods]\ninclude = ["logistic"]\n'), "at least one scenario"),
    "empty_include": (toml('[[scenarios]]\nname = "cow"\n[methods]\ninclude = []\n'), "non-empty list"),
    "include_entry_number": (toml('[[scenarios]]\nname = "cow"\n[methods]\ninclude = [3]\n'), "neither a name nor"),
    "scenario_twice": (toml('[[scenarios]]\nname = "cow"\n[[scenarios]]\nname = "cow"\n[methods]\n'
                            'include = ["logistic"]\n'), "appears twice"),
    "knob_fixed_and_swept": (toml('[[scenarios]]\nname = "cow"\nknobs = { agreement_test = 0.1 }\n'
                                  'grid = { agreement_test = [0.2] }\n[methods]\ninclude = ["logistic"]\n'),
                             "both fixed"),
    "grid_empty_list": (toml('[[scenarios]]\nname = "cow"\ngrid = { agreement_test = [] }\n[methods]\n'
                             'include = ["logistic"]\n'), "non-empty list"),
    "scenario_unknown_key": (toml('[[scenarios]]\nname = "cow"\nknob = {}\n[methods]\ninclude = ["logistic"]\n'),
                             "unknown key"),
    "subject_unknown_arch": (toml(GOOD, name_line='[subject]\narch = "transformer"\n'), "[subject]"),
    "time_limit_zero": (toml(GOOD, name_line="[suite]\ntime_limit = 0\n"), "time limit"),
    "not_utf8": (lambda tmp: with_file("s.toml", b"\xff\xfe[suite]\n", "run", "{tmp}/s.toml", "--out",
                                       "{tmp}/out")(tmp), "not UTF-8"),
}

PLUGIN_CLASH = b'''from cowbench.method import Method, MethodOutput, register_method


@register_method
class Impostor(Method):
    """Claims a built-in's name.

    References
    ----------
    None.
    """

    name = "logistic"
    family = "robust_training"
    access = frozenset({"pooled"})
    outputs = frozenset({"edit"})

    def run(self, task):
        return MethodOutput()
'''


def plugin(source: bytes, *args: str) -> Callable[[Path], list[str]]:
    """A case that writes a plugin file ``<tmp>/p.py`` and runs ``args`` with ``--plugins`` it."""
    return with_file("p.py", source, *args, "--plugins", "{tmp}/p.py")


def deep_manifest_case(jobs: list[str], suite: dict | None = None) -> bytes:
    return json.dumps({"suite": suite or {"name": "m"}, "suite_hash": "0" * 12, "jobs": jobs, "skipped": []}).encode()


HOSTILE_CASES = {
    # plugins: every way an import can fail is one line naming the plugin, never a traceback or a silent exit
    "plugin_syntax_error": (plugin(b"def f(:\n    pass\n", "run", "smoke", "--out", "{tmp}/o"),
                            "has a syntax error at line 1"),
    "plugin_missing_module": (plugin(b"import no_such_module_for_cowbench\n", "run", "smoke", "--out", "{tmp}/o"),
                              "imports a module that is not installed: No module named 'no_such_module_for_cowbench'"),
    "plugin_key_error": (plugin(b"{}['k']\n", "run", "smoke", "--out", "{tmp}/o"), "failed to import: KeyError: 'k'"),
    "plugin_sys_exit": (plugin(b"import sys\nsys.exit(3)\n", "run", "smoke", "--out", "{tmp}/o"),
                        "called sys.exit(3) while being imported"),
    "plugin_sys_exit_list": (plugin(b"import sys\nsys.exit(3)\n", "list"), "called sys.exit(3)"),
    "plugin_replaces_builtin": (plugin(PLUGIN_CLASH, "run", "smoke", "--out", "{tmp}/o"),
                                "method name 'logistic' is taken by the built-in"),
    "plugin_module_missing": (cli("list", "--plugins", "no_such_plugin_module_x"), "cannot be imported"),
    # suite files
    "toml_nested_50000_deep": (toml("x = " + "[" * 50_000 + "]" * 50_000 + "\n"), "nested too deeply"),
    "memory_limit_flag_zero": (cli("run", "smoke", "--out", "{tmp}/o", "--memory-limit", "0"), "--memory-limit"),
    "memory_limit_flag_nan": (cli("run", "smoke", "--out", "{tmp}/o", "--memory-limit", "nan"), "--memory-limit"),
    "memory_limit_toml_string": (toml(GOOD, name_line='[suite]\nmemory_limit = "lots"\n'), "memory_limit"),
    # results folders
    "manifest_one_job_200000_times": (with_file("res/manifests/m.json", deep_manifest_case(["a" * 64] * 200_000),
                                                "status", "{tmp}/res"), "lists job aaaaaaaaaaaa 200000 times"),
    "manifest_scenarios_malformed": (with_file("res/manifests/m.json",
                                               deep_manifest_case([], {"name": "m", "scenarios": {"cow": 1}}),
                                               "report", "{tmp}/res"), "'suite.scenarios' must be a list"),
    "manifest_nested_deep": (with_file("res/manifests/m.json", b"[" * 100_000 + b"]" * 100_000, "status",
                                       "{tmp}/res"), "nested too deeply"),
    "manifest_is_a_fifo": (lambda tmp: _fifo(tmp / "res" / "manifests" / "m.json", ["status", f"{tmp}/res"]),
                           "not a regular file"),
    "ledger_adopt_not_results": (with_file("res/notes.txt", b"x", "ledger", "adopt", "{tmp}/res"),
                                 "holds no manifest"),
}


def _fifo(path: Path, argv: list[str]) -> list[str]:
    path.parent.mkdir(parents=True, exist_ok=True)
    os.mkfifo(path)
    return argv


STORE_CASES = {
    "status_missing_directory": (cli("status", "{tmp}/nowhere"), "does not exist"),
    "status_of_a_file": (with_file("f.json", b"{}", "status", "{tmp}/f.json"), "not a directory"),
    "status_without_manifest": (with_file("res/notes.txt", b"x", "status", "{tmp}/res"), "holds no manifest"),
    "report_without_manifest": (with_file("res/notes.txt", b"x", "report", "{tmp}/res"), "holds no manifest"),
    "manifest_empty_object": (with_file("res/manifest.json", b"{}", "status", "{tmp}/res"), "'suite' object"),
    "manifest_list": (with_file("res/manifest.json", b"[1, 2]", "report", "{tmp}/res"), "JSON list"),
    "manifest_not_json": (with_file("res/manifest.json", b"{", "report", "{tmp}/res"), "not valid JSON"),
    "manifest_not_utf8": (with_file("res/manifest.json", b"\xff\xfe", "status", "{tmp}/res"), "not UTF-8"),
    "manifest_jobs_not_ids": (with_file("res/manifests/m.json", manifest("m", ["x"]), "status", "{tmp}/res"),
                              "list of job ids"),
    "manifest_names_another_suite": (with_file("res/manifests/m.json", manifest("other"), "report", "{tmp}/res"),
                                     "plans suite 'other'"),
    "report_unknown_suite": (two_suites("report", "{tmp}/res", "--suite", "gamma"), "no suite 'gamma'"),
    "status_unknown_suite": (two_suites("status", "{tmp}/res", "--suite", "gamma"), "no suite 'gamma'"),
    "report_json_of_two_suites": (two_suites("report", "{tmp}/res", "--format", "json"), "name one with --suite"),
    "run_into_bad_manifest": (lambda tmp: with_file("out/manifest.json", b"[1]", "run", "smoke", "--out",
                                                    "{tmp}/out", "--replicates", "1")(tmp), "JSON list"),
}


def _api(call: Callable[[Path], object]) -> Callable[[Path], Callable[[], object]]:
    return lambda tmp: (lambda: call(tmp))


def _scenario():
    return cb.make_scenario("cow")


API_CASES = {
    "make_scenario_bad_knob": (_api(lambda tmp: cb.make_scenario("cow", agreement_test=3.0)), "agreement_test=3.0"),
    "make_scenario_unknown_knob": (_api(lambda tmp: cb.make_scenario("cow", agreement=0.5)), "agreement"),
    "make_scenario_unknown": (_api(lambda tmp: cb.make_scenario("caw")), "unknown scenario 'caw'"),
    "get_method_unknown": (_api(lambda tmp: cb.get_method("logistik")), "did you mean 'logistic'"),
    "evaluate_nan_hyperparameter": (_api(lambda tmp: cb.evaluate(_scenario(), cb.get_method("logistic")(C=math.nan))),
                                    "hyperparameter C=nan"),
    "check_params_string": (_api(lambda tmp: cb.get_method("ridge").check_params({"alpha": "abc"})),
                            "alpha='abc'"),
    "load_suite_unknown": (_api(lambda tmp: __import__("cowbench.suite").suite.load_suite("nope")),
                           "unknown suite 'nope'"),
    "parse_suite_path_name": (_api(lambda tmp: __import__("cowbench.suite").suite.parse_suite(
        {"suite": {"name": "../x"}, "scenarios": [{"name": "cow"}], "methods": {"include": ["logistic"]}})),
        "suite name '../x'"),
    "select_manifest_empty": (_api(lambda tmp: _select_with(tmp, b"{}")), "'suite' object"),
}


def _select_with(tmp: Path, data: bytes):
    from cowbench.store import select_manifest

    (tmp / "r").mkdir(exist_ok=True)
    (tmp / "r" / "manifest.json").write_bytes(data)
    return select_manifest(tmp / "r")


def tree(root: Path) -> dict[str, tuple[int, int]]:
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            path = Path(dirpath) / name
            st = path.lstat()
            out[str(path.relative_to(root))] = (st.st_size if path.is_file() else 0, st.st_mtime_ns)
    return out


def _check_one_line(err: str, message: str) -> None:
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("cowbench: error: "), err
    assert message in lines[0], err
    assert "Traceback" not in err and "usage:" not in err


ALL_CLI = {**CLI_CASES, **{f"suite_{k}": v for k, v in SUITE_CASES.items()},
           **{f"store_{k}": v for k, v in STORE_CASES.items()}, **{f"hostile_{k}": v for k, v in HOSTILE_CASES.items()}}


def test_the_table_holds_at_least_60_cases():
    assert len(ALL_CLI) + len(API_CASES) + 1 >= 60  # + the permission case below


@pytest.mark.parametrize("case", sorted(ALL_CLI))
def test_bad_command_line_input_gives_one_line_exit_2_and_writes_nothing(tmp_path, monkeypatch, capsys, case):
    make, message = ALL_CLI[case]
    work = tmp_path / "work"
    work.mkdir()
    argv = make(work)
    cwd = work / "a" / "b" if (work / "a" / "b").is_dir() else work
    monkeypatch.chdir(cwd)
    before = tree(tmp_path)
    capsys.readouterr()
    code = main(argv)
    captured = capsys.readouterr()
    assert code == 2, captured.err
    _check_one_line(captured.err, message)
    assert tree(tmp_path) == before
    assert Path("/dev/null").is_char_device()


@pytest.mark.parametrize("case", sorted(API_CASES))
def test_bad_python_api_input_raises_one_line_and_writes_nothing(tmp_path, monkeypatch, case):
    make, message = API_CASES[case]
    call = make(tmp_path)
    monkeypatch.chdir(tmp_path)
    before = tree(tmp_path)
    with pytest.raises((InputError, ValueError)) as info:
        call()
    text = str(info.value)
    assert message in text and "\n" not in text
    after = tree(tmp_path)
    # the case's own input file (select_manifest) is written by the setup inside the call; nothing else
    assert {k: v for k, v in after.items() if not k.startswith("r")} == \
           {k: v for k, v in before.items() if not k.startswith("r")}


def _read_only_dir(path: Path) -> Callable[[], None] | None:
    """Make ``path`` unwritable for this user: chmod, or (as root, who ignores modes) a read-only tmpfs."""
    import subprocess

    path.mkdir()
    path.chmod(0o555)
    if not os.access(path, os.W_OK):
        return lambda: path.chmod(0o755)
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "ro,size=64k", "none", str(path)], capture_output=True)
    if mounted.returncode != 0 or os.access(path, os.W_OK):
        path.chmod(0o755)
        return None
    return lambda: subprocess.run(["umount", str(path)], check=True)


def test_an_output_directory_without_write_permission_is_refused(tmp_path, capsys):
    locked = tmp_path / "locked"
    undo = _read_only_dir(locked)
    if undo is None:
        pytest.skip("cannot make a directory this user cannot write (root without mount)")
    try:
        before = tree(tmp_path)
        code = main(["run", "smoke", "--out", str(locked / "out")])
        _check_one_line(capsys.readouterr().err, "no permission to write")
        assert code == 2 and tree(tmp_path) == before
    finally:
        undo()


def test_an_unreachable_dask_scheduler_writes_nothing(tmp_path, monkeypatch, capsys):
    pytest.importorskip("dask.distributed")
    from cowbench.launchers import dask_cluster

    monkeypatch.setattr(dask_cluster, "CONNECT_TIMEOUT", "2s")  # the default waits 30 s for a slow scheduler
    monkeypatch.chdir(tmp_path)
    before = tree(tmp_path)
    code = main(["run", "smoke", "--replicates", "1", "--out", str(tmp_path / "o"), "--launcher", "dask",
                 "--scheduler", "tcp://127.0.0.1:9"])
    captured = capsys.readouterr()
    assert code == 2, captured.err
    _check_one_line(captured.err, "cannot reach the Dask scheduler at 'tcp://127.0.0.1:9'")
    assert tree(tmp_path) == before  # no manifest, no ledger, no folder
