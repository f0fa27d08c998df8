"""``cowbench report`` end to end: one small stored run (2 scenarios x 4 methods x 2 replicates) -> every format."""

from __future__ import annotations

import io
import json
import re
import subprocess
import sys

import pandas as pd
import pytest

SUITE = """
[suite]
name = "tiny_report"
description = "2 scenarios x 4 methods x 2 replicates: the report formats' end-to-end test"
root_seed = 0
replicates = 2

[subject]
arch = "linear"

[[scenarios]]
name = "cow"
knobs = { n_train = 400, n_val = 200, n_test = 400 }

[[scenarios]]
name = "four_groups"
knobs = { n_train = 400, n_val = 200, n_test = 400 }

[methods]
include = ["logistic", "ridge", "lasso", "icp"]
"""


def cowbench(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "cowbench", *map(str, args)], capture_output=True, text=True,
                          cwd=cwd, timeout=600)


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("report")
    (tmp / "tiny_report.toml").write_text(SUITE)
    out = tmp / "results"
    run = cowbench("run", tmp / "tiny_report.toml", "--out", out, "--launcher", "serial")
    assert run.returncode == 0, run.stderr
    return out


def test_every_format_from_one_run_shows_the_same_numbers(run_dir, tmp_path):
    target = tmp_path / "report"
    done = cowbench("report", run_dir, "--format", "md", "csv", "latex", "html", "json", "--out-dir", target)
    assert done.returncode == 0, done.stderr
    assert sorted(p.name for p in target.iterdir()) == ["plots", "report.csv", "report.html", "report.md",
                                                       "report.tex", "summary.json"]
    # the dot plot of each track with results, in PNG and SVG (this suite sweeps nothing: no dose curve)
    assert {p.suffix for p in (target / "plots").iterdir()} == {".png", ".svg"}
    csv = pd.read_csv(target / "report.csv")
    data = json.loads((target / "summary.json").read_text())
    cells = pd.DataFrame(data["cells"])
    assert len(csv) == len(cells) > 0
    assert set(csv.method) == {"logistic", "ridge", "lasso"}  # icp is skipped on binary labels
    merged = csv.merge(cells, on=["scenario", "method", "metric"], suffixes=("", "_json"))
    assert len(merged) == len(csv) and (merged["mean"] - merged["mean_json"]).abs().max() == 0
    assert (csv.n == 2).all()
    # the skipped pairs and the provenance of the stored run
    assert {s["method"] for s in data["skipped"]} == {"icp"} and len(data["skipped"]) == 2
    prov = data["provenance"]
    manifest = json.loads(next((run_dir / "manifests").glob("*.json")).read_text())
    assert prov["suite"] == "tiny_report" and prov["suite_hash"] == manifest["suite_hash"]
    assert prov["root_seed"] == 0 and prov["selection"] == ["defaults"]
    assert set(prov["methods"]) == {"logistic", "ridge", "lasso"} and set(prov["generators"]) == {"cow",
                                                                                                   "four_groups"}
    assert prov["fingerprints"] and prov["scorer"]["versions"]
    # Markdown, LaTeX and HTML print the CSV's means at their precision
    md = (target / "report.md").read_text()
    tex = (target / "report.tex").read_text()
    html = (target / "report.html").read_text()
    for r in csv[csv.metric == "world_err"].itertuples():
        text = f"{r.mean:.3f}"
        assert f"| {r.method} | pooled | " in md and text in md
        assert re.search(rf"& {r.method} & .*{re.escape(f'{r.mean:.2f}')}", tex)  # method x scenario, 2 decimals
        assert f'data-value="{r.mean!r}" data-metric="world_err"' in html
    # the console report is the file's content
    stdout = cowbench("report", run_dir)
    assert stdout.returncode == 0 and stdout.stdout.strip() == md.strip()
    single = cowbench("report", run_dir, "--format", "csv")
    assert single.returncode == 0
    assert pd.read_csv(io.StringIO(single.stdout)).equals(csv)


def test_bad_report_usage_exits_2_and_writes_nothing(run_dir, tmp_path):
    target = tmp_path / "nothing"
    several = cowbench("report", run_dir, "--format", "md", "csv")
    assert several.returncode == 2 and "--out-dir" in several.stderr and "Traceback" not in several.stderr
    unknown = cowbench("report", run_dir, "--format", "xls", "--out-dir", target)
    assert unknown.returncode == 2 and "invalid choice: 'xls'" in unknown.stderr
    missing = cowbench("report", tmp_path / "absent", "--format", "csv", "--out-dir", target)
    assert missing.returncode == 2 and "does not exist" in missing.stderr
    assert not target.exists()
    a_file = tmp_path / "a_file"
    a_file.write_text("x")
    clash = cowbench("report", run_dir, "--format", "csv", "--out-dir", a_file)
    assert clash.returncode == 2 and "not a directory" in clash.stderr and a_file.read_text() == "x"


def test_gzip_writes_the_same_text_compressed_and_reproducibly(run_dir, tmp_path):
    import gzip

    plain, packed, again = tmp_path / "plain", tmp_path / "packed", tmp_path / "again"
    assert cowbench("report", run_dir, "--format", "html", "json", "--out-dir", plain).returncode == 0
    for target in (packed, again):
        done = cowbench("report", run_dir, "--format", "html", "json", "md", "--out-dir", target,
                        "--gzip", "html", "json")
        assert done.returncode == 0, done.stderr
    assert {p.name for p in packed.iterdir()} == {"plots", "report.md", "report.html.gz", "summary.json.gz"}
    for name in ("report.html", "summary.json"):
        assert gzip.decompress((packed / f"{name}.gz").read_bytes()) == (plain / name).read_bytes()
        assert (packed / f"{name}.gz").read_bytes() == (again / f"{name}.gz").read_bytes()  # mtime 0


@pytest.mark.parametrize("args", [["--format", "html", "--gzip", "html"],                       # no --out-dir
                                  ["--format", "md", "html", "--gzip", "csv", "--out-dir", "X"]])  # csv not asked
def test_bad_gzip_usage_exits_2_and_writes_nothing(run_dir, tmp_path, args):
    args = [str(tmp_path / "x") if a == "X" else a for a in args]
    done = cowbench("report", run_dir, *args)
    assert done.returncode == 2 and "--gzip" in done.stderr
    assert not (tmp_path / "x").exists()


def test_a_report_directory_gets_its_front_page_and_heatmaps(run_dir, tmp_path):
    target = tmp_path / "front"
    done = cowbench("report", run_dir, "--out-dir", target)
    assert done.returncode == 0, done.stderr
    assert sorted(p.name for p in target.iterdir()) == ["leaderboard.md", "plots", "report.md"]
    front = (target / "leaderboard.md").read_text()
    assert front.startswith("# cowbench leaderboard: tiny_report") and "## World recovery: world_err" in front
    assert "![world heatmap](plots/leaderboard-world.png)" in front
    assert {p.name for p in (target / "plots").glob("leaderboard-world.*")} == {"leaderboard-world.png",
                                                                                "leaderboard-world.svg"}
    # the run wrote the same front page beside its report
    assert (run_dir / "leaderboard.md").read_text() == front
    csv = pd.read_csv(io.StringIO(cowbench("report", run_dir, "--format", "csv").stdout))
    for r in csv[(csv.metric == "world_err")].itertuples():
        assert re.search(rf"\| {r.method} \|.*{r.mean:.3f}", front)


def test_one_list_syntax_commas_or_spaces(run_dir, tmp_path):
    commas, spaces = tmp_path / "commas", tmp_path / "spaces"
    assert cowbench("report", run_dir, "--format", "csv,json", "--out-dir", commas).returncode == 0
    assert cowbench("report", run_dir, "--format", "csv", "json", "--out-dir", spaces).returncode == 0
    assert sorted(p.name for p in commas.iterdir()) == sorted(p.name for p in spaces.iterdir())
    assert (commas / "report.csv").read_text() == (spaces / "report.csv").read_text()
    tex = cowbench("report", run_dir, "--format", "latex", "--metrics", "world_err,world_cos")
    assert tex.returncode == 0 and re.findall(r"% track: world, metric: (\w+)", tex.stdout) == ["world_err",
                                                                                                "world_cos"]


def test_an_unknown_flag_gets_did_you_mean(run_dir):
    done = cowbench("report", run_dir, "--fromat", "csv")
    assert done.returncode == 2 and "did you mean --format?" in done.stderr and len(done.stderr.splitlines()) == 1
    done = cowbench("run", "smoke", "--scenarioz", "cow")
    assert done.returncode == 2 and "did you mean --scenarios?" in done.stderr


def test_an_unknown_method_in_a_plugin_file_of_the_folder_gets_a_hint(tmp_path):
    (tmp_path / "my_plugin.py").write_text(
        'from cowbench.methods import Method\n\nclass Mine(Method):\n    name = "mine"\n')
    done = cowbench("check", "mine", cwd=tmp_path)
    assert done.returncode == 2 and "pass --plugins my_plugin.py" in done.stderr
    done = cowbench("check", "other_name", cwd=tmp_path)
    assert done.returncode == 2 and "--plugins" not in done.stderr


def test_run_filters_scenarios_and_tracks_into_a_partial_run(tmp_path):
    (tmp_path / "tiny_report.toml").write_text(SUITE.replace('"lasso", "icp"', '"lasso", "icp", "env_instability"'))
    done = cowbench("run", "tiny_report.toml", "--scenarios", "four_groups", "--tracks", "detect", "--launcher",
                    "serial", "--quiet", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    (out,) = (tmp_path / "runs").iterdir()  # a filtered run is a partial run: runs/, not results/
    assert not (tmp_path / "results").exists()
    manifest = json.loads(next((out / "manifests").glob("*.json")).read_text())
    records = [json.loads(p.read_text()) for p in (out / "jobs").rglob("*.json")]
    assert {r["spec"]["method"] for r in records} == {"env_instability"}  # the one method with a detect output
    assert {r["spec"]["scenario"]["generator"] for r in records} == {"four_groups"}
    assert len(manifest["jobs"]) == 2  # 1 scenario x 1 method x 2 replicates
    bad = cowbench("run", "tiny_report.toml", "--scenarios", "cow,four_group", cwd=tmp_path)
    assert bad.returncode == 2 and "did you mean 'four_groups'?" in bad.stderr
