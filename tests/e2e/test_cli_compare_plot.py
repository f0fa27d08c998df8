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
    # zero differences over 3 pairs: t-test p = 1, sign test p = 1 (which cannot reach 0.05 there), no winner
    assert "(3) | 1 | 1 (cannot reach 0.05 at 0 differing pairs) | 0 / 0 | — |" in res.stdout


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


def _image_links(markdown: str) -> list[str]:
    return re.findall(r"!\[[^\]]*\]\(([^)]+)\)", markdown)


def _table_headings(markdown: str) -> list[str]:
    return [ln for ln in markdown.splitlines() if ln.startswith("## ") and " — " in ln and "Dose" not in ln]


def test_run_writes_the_report_with_the_dose_curve_in_place_of_the_swept_tables(runs):
    out = runs / "a"
    report = (out / "report.md").read_text()
    links = _image_links(report)
    assert links == ["plots/dose-1-cow-agreement_train.png"]
    assert all((out / link).is_file() for link in links)  # the link resolves beside report.md
    assert (out / "plots" / "dose-1-cow-agreement_train.svg").is_file()
    assert _table_headings(report) == []  # every scenario is swept: no per-value table is left
    # printed to a terminal (no images), the same run keeps one table per knob value
    printed = cowbench("report", out)
    assert printed.returncode == 0, printed.stderr
    assert _image_links(printed.stdout) == []
    assert sum("agreement_train" in h for h in _table_headings(printed.stdout)) >= 3


def test_report_out_dir_writes_plots_and_links_them(runs, tmp_path):
    res = cowbench("report", runs / "a", "--format", "md", "csv", "--out-dir", tmp_path)
    assert res.returncode == 0, res.stderr
    report = (tmp_path / "report.md").read_text()
    links = _image_links(report)
    assert links and all((tmp_path / link).is_file() for link in links)
    assert _table_headings(report) == []
    names = sorted(p.name for p in (tmp_path / "plots").iterdir())
    assert names == ["dose-1-cow-agreement_train.png", "dose-1-cow-agreement_train.svg"]
    # the CSV still holds every knob value's numbers
    assert (tmp_path / "report.csv").read_text().count("agreement_train") >= 3


def test_report_accepts_plot_formats_and_refuses_them_without_a_directory(runs, tmp_path):
    only = cowbench("report", runs / "a", "--format", "svg", "--out-dir", tmp_path)
    assert only.returncode == 0, only.stderr
    assert sorted(p.name for p in tmp_path.rglob("*") if p.is_file()) == ["dose-1-cow-agreement_train.svg"]
    svg_md = tmp_path / "md_svg"
    both = cowbench("report", runs / "a", "--format", "md", "svg", "--out-dir", svg_md)
    assert both.returncode == 0, both.stderr
    assert _image_links((svg_md / "report.md").read_text()) == ["plots/dose-1-cow-agreement_train.svg"]
    bad = cowbench("report", runs / "a", "--format", "png")
    assert bad.returncode == 2 and "--out-dir" in bad.stderr
