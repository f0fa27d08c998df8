"""`cowbench compare` and `cowbench plot` on small real runs (the CLI in-process).

A tiny suite sweeps agreement_train of cow over three values with a linear subject: the plot command draws its
dose-response curve from the manifest's sweep; compare pairs the run with itself (no difference anywhere),
two of its methods (paired on every replicate) and a run with another root seed (nothing shared: exit 2).
"""

import contextlib
import io
import re
from types import SimpleNamespace

import pytest

from cowbench.cli import main

TINY = """[suite]
name = "tiny"
replicates = 3
[subject]
arch = "linear"
[[scenarios]]
name = "cow"
knobs = { n_train = 600, n_test = 600, n_val = 200 }
grid = { agreement_train = [0.6, 0.8, 0.95] }
[methods]
include = ["logistic", "input_gradient"]
"""


def cowbench(*args):
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main([str(a) for a in args])
    return SimpleNamespace(returncode=code, stdout=out.getvalue(), stderr=err.getvalue())


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("cmp")
    (root / "tiny.toml").write_text(TINY)
    for name, extra in (("a", []), ("other", ["--root-seed", "7", "--replicates", "1"])):
        done = cowbench("run", root / "tiny.toml", "--out", root / name, "--launcher", "inprocess", *extra)
        assert done.returncode == 0, done.stderr
    return root


def test_compare_a_run_with_itself_finds_no_difference(runs):
    res = cowbench("compare", runs / "a", runs / "a")
    assert res.returncode == 0, res.stderr
    verdicts = [ln for ln in res.stdout.splitlines() if ln.startswith("- ")]
    assert verdicts and all("no resolvable difference" in v and "A better in 0, B better in 0" in v
                            for v in verdicts)
    assert "(3) | 1 | 0 / 0 | — |" in res.stdout  # zero differences over 3 pairs, p = 1


def test_compare_two_methods_pairs_every_replicate(runs):
    res = cowbench("compare", runs / "a", "--methods", "logistic", "input_gradient")
    assert res.returncode == 0, res.stderr
    rows = [ln for ln in res.stdout.splitlines() if "| logistic − input_gradient |" in ln]
    assert rows and all(re.search(r"\((\d+)\) \|", r).group(1) == "3" for r in rows if "model_err" in r)
    assert any(ln.startswith("- model:") for ln in res.stdout.splitlines())


def test_compare_refuses_runs_without_shared_replicates_and_bad_input(runs):
    none = cowbench("compare", runs / "a", runs / "other")
    assert none.returncode == 2 and "share no replicate" in none.stderr
    assert len(none.stderr.strip().splitlines()) == 1
    missing = cowbench("compare", runs / "a", runs / "nope")
    assert missing.returncode == 2 and "does not exist" in missing.stderr
    one = cowbench("compare", runs / "a")
    assert one.returncode == 2 and "--methods" in one.stderr
    same = cowbench("compare", runs / "a", "--methods", "logistic", "logistic")
    assert same.returncode == 2
    unknown = cowbench("compare", runs / "a", "--methods", "logistic", "nosuch")
    assert unknown.returncode == 2 and "nosuch" in unknown.stderr


def test_plot_draws_the_sweep_from_the_manifest(runs, tmp_path):
    res = cowbench("plot", runs / "a", "--out-dir", tmp_path)
    assert res.returncode == 0, res.stderr
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == ["dose-1-cow-agreement_train.png", "dose-1-cow-agreement_train.svg"]
    assert res.stdout.split() == [str(tmp_path / n) for n in names]
    bad = cowbench("plot", runs / "a", "--out-dir", tmp_path, "--format", "pdf")
    assert bad.returncode == 2 and "png, svg" in bad.stderr
