"""Progress lines when stderr is not a terminal: their format, counts, ETA and cadence (a fake clock), a bar on a
terminal, nothing when quiet; and a real run writes its progress to stderr, never to stdout."""

import io
import re

import pytest

from cowbench.progress import Progress, format_duration

LINE = re.compile(r"\[run\] jobs (\d+)/(\d+) done, (\d+) failed, ETA (\S+)")


class Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


class TTY(io.StringIO):
    def isatty(self):
        return True


@pytest.mark.parametrize(("seconds", "text"), [(0, "0s"), (45.4, "45s"), (250, "4m10s"), (3600 + 180, "1h03m"),
                                               (float("nan"), "?"), (float("inf"), "?")])
def test_durations_are_short_and_exact(seconds, text):
    assert format_duration(seconds) == text


def test_lines_every_five_percent_with_counts_failures_and_eta():
    clock, stream = Clock(), io.StringIO()
    p = Progress(100, "jobs", stream=stream, clock=clock, interval=1e9)
    for i in range(1, 101):
        clock.now = 2.0 * i  # 2 s per job
        p.update(failed=int(i % 10 == 0))
        if i == 40:
            assert p.line() == "[run] jobs 40/100 done, 4 failed, ETA 2m00s"  # 60 left x 2 s
    p.close()
    lines = stream.getvalue().splitlines()
    parsed = [LINE.fullmatch(ln) for ln in lines[:-1]]
    assert all(parsed), lines
    done = [int(m.group(1)) for m in parsed]
    assert done == [0, *range(5, 101, 5)]  # a line at the start, then one per 5% (interval never reached)
    assert parsed[0].group(4) == "?"  # no pace before the first job
    assert [int(m.group(3)) for m in parsed][-1] == 10
    assert lines[-1] == "[run] jobs 100/100 done, 10 failed, in 3m20s"


def test_lines_every_interval_when_progress_is_slow():
    clock, stream = Clock(), io.StringIO()
    p = Progress(1000, "jobs", stream=stream, clock=clock, interval=10.0)
    for i in range(1, 31):
        clock.now = 4.0 * i  # 30 jobs in 120 s: under 5% (50 jobs), so only the clock triggers lines
        p.update()
    done = [int(LINE.fullmatch(ln).group(1)) for ln in stream.getvalue().splitlines()]
    assert done == [0, 3, 6, 9, 12, 15, 18, 21, 24, 27, 30]  # each line once 10 s have passed since the last


def test_quiet_writes_nothing_and_a_terminal_gets_a_bar_not_lines():
    quiet = io.StringIO()
    with Progress(10, "jobs", stream=quiet, enabled=False) as p:
        p.update(5)
    assert quiet.getvalue() == "" and p.done == 5
    tty = TTY()
    with Progress(10, "jobs", stream=tty) as p:
        p.update(10, failed=1)
    text = tty.getvalue()
    assert "\r" in text and "[run] jobs" in text and not LINE.search(text)  # tqdm redraws in place
    assert text.rstrip().endswith("[run] jobs 10/10 done, 1 failed, in 0s")


def test_a_run_shows_progress_on_stderr_and_nothing_on_stdout(tmp_path, capsys):
    from cowbench.runner import run_suite
    from cowbench.suite import parse_suite

    suite = parse_suite({"suite": {"name": "p", "replicates": 2}, "subject": {"arch": "linear"},
                         "scenarios": [{"name": "cow", "knobs": {"n_train": 300, "n_val": 100, "n_test": 300}}],
                         "methods": {"include": ["logistic", "ols"]}})
    run_suite(suite, tmp_path / "out", launcher="inprocess")
    captured = capsys.readouterr()
    assert captured.out == ""
    err = captured.err.splitlines()
    assert "[run] replicates prepared 0/2 done, 0 failed, ETA ?" in err
    assert any(re.fullmatch(r"\[run\] replicates prepared 2/2 done, 0 failed, in \d+s", ln) for ln in err)
    assert "[run] jobs 0/4 done, 0 failed, ETA ?" in err
    assert any(re.fullmatch(r"\[run\] jobs 4/4 done, 0 failed, in \d+s", ln) for ln in err)
    run_suite(suite, tmp_path / "quiet", launcher="inprocess", progress=False)
    assert capsys.readouterr().err == ""
