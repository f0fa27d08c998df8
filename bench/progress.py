"""Progress of long work on stderr: a bar on a terminal, periodic one-line updates elsewhere (CI logs).

stdout carries reports, so progress never goes there. On a terminal a tqdm bar; on anything else one line
when the work starts, then whenever ``interval`` seconds have passed or another ``step`` of the total is done,
and one when it ends::

    [run] jobs 120/1905 done, 2 failed, ETA 4m10s

A failed item is named on a line of its own when it fails (on a terminal too, above the bar)::

    [run] failed: irm_linear on cow replicate 2 (job 3f2a9c0d1e4b)

The ETA is the mean time per finished item so far times the items left (none before the first).
`Meter` adapts a ``progress(done, total)`` callback (`cowbench.verify`, `cowbench.reliability`) to the same
lines.
"""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Callable
from typing import IO, Any

DEFAULT_INTERVAL = 10.0  # seconds between lines when not on a terminal
DEFAULT_STEP = 0.05  # ... or every 5% of the total, whichever comes first


def format_duration(seconds: float) -> str:
    """``45s``, ``4m10s``, ``2h03m``; ``?`` for an unknown (NaN or infinite) duration."""
    if not math.isfinite(seconds):
        return "?"
    s = max(0, round(seconds))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s // 3600}h{(s % 3600) // 60:02d}m"


def _is_tty(stream: IO[str]) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):  # no isatty, or a closed stream
        return False


class Progress:
    """Counts finished and failed items of one phase and shows them on ``stream`` (stderr by default).

    Parameters
    ----------
    total : int
        Items the phase will finish.
    what : str
        What the items are (``jobs``, ``replicates prepared``), shown in every line.
    enabled : bool, default=True
        False shows nothing (a quiet run).
    stream : text stream, optional
        Where to write; ``sys.stderr`` when None. A terminal gets a bar, anything else lines.
    interval, step : float
        Without a terminal: a line every ``interval`` seconds or every ``step`` of ``total``.
    clock : callable, optional
        Monotonic seconds (tests pass a fake one).
    tag : str, default="run"
        The line prefix, ``[tag]``.
    """

    def __init__(self, total: int, what: str, *, enabled: bool = True, stream: IO[str] | None = None,
                 interval: float = DEFAULT_INTERVAL, step: float = DEFAULT_STEP,
                 clock: Callable[[], float] | None = None, tag: str = "run") -> None:
        self.total = int(total)
        self.what = what
        self.enabled = bool(enabled) and self.total > 0
        self.stream = sys.stderr if stream is None else stream
        self.interval = float(interval)
        self.step = float(step)
        self.clock = time.monotonic if clock is None else clock
        self.tag = tag
        self.done = 0
        self.failed = 0
        self._start = self.clock()
        self._last_time = self._start
        self._last_done = 0
        self._bar: Any = None
        self._closed = False
        if not self.enabled:
            return
        if _is_tty(self.stream):
            from tqdm import tqdm

            self._bar = tqdm(total=self.total, desc=f"[{tag}] {what}", unit="", file=self.stream, leave=False,
                             dynamic_ncols=True)
        else:
            self._emit()

    def eta(self) -> float:
        """Seconds left at the mean pace so far (NaN before the first item finishes)."""
        if self.done == 0:
            return math.nan
        return (self.clock() - self._start) / self.done * (self.total - self.done)

    def line(self) -> str:
        """The current one-line progress."""
        return (f"[{self.tag}] {self.what} {self.done}/{self.total} done, {self.failed} failed, "
                f"ETA {format_duration(self.eta())}")

    def update(self, n: int = 1, *, failed: int = 0, failures: tuple[str, ...] | list[str] = ()) -> None:
        """``n`` more items finished, ``failed`` of them failed; ``failures``: names of the failed ones, each
        written on its own line now (not only counted)."""
        self.done += n
        self.failed += failed
        if not self.enabled:
            return
        for name in failures:
            self.failure(name)
        if self._bar is not None:
            self._bar.update(n)
            self._bar.set_postfix(failed=self.failed, refresh=False)
            return
        now = self.clock()
        stride = max(1, math.ceil(self.step * self.total))
        if now - self._last_time >= self.interval or self.done // stride > self._last_done // stride:
            self._emit()

    def failure(self, name: str) -> None:
        """Write ``[tag] failed: name`` now (above the bar on a terminal)."""
        if not self.enabled:
            return
        text = f"[{self.tag}] failed: {name}"
        if self._bar is not None:
            self._bar.write(text, file=self.stream)
        else:
            print(text, file=self.stream, flush=True)

    def _emit(self) -> None:
        print(self.line(), file=self.stream, flush=True)
        self._last_time = self.clock()
        self._last_done = self.done

    def close(self) -> None:
        """End the phase: close the bar, or write the last line (with the elapsed time) if not yet written."""
        if self._closed or not self.enabled:
            self._closed = True
            return
        self._closed = True
        if self._bar is not None:
            self._bar.close()
        elapsed = format_duration(self.clock() - self._start)
        print(f"[{self.tag}] {self.what} {self.done}/{self.total} done, {self.failed} failed, in {elapsed}",
              file=self.stream, flush=True)

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def job_label(spec: Any) -> str:
    """How a progress line names a job: ``method on generator replicate r (job 3f2a9c0d1e4b)``."""
    replicate = getattr(spec, "replicate", None)
    scenario = getattr(replicate, "scenario", None) or {}
    generator = scenario.get("generator", "?") if hasattr(scenario, "get") else getattr(scenario, "name", "?")
    index = getattr(replicate, "index", getattr(replicate, "replicate", "?"))
    job_id = str(getattr(spec, "id", "") or "")[:12]
    return f"{getattr(spec, 'method', '?')} on {generator} replicate {index}" + (f" (job {job_id})" if job_id else "")


class Meter:
    """A ``progress(done, total)`` callback that shows `Progress` lines: the total is learnt from the first call.

    Parameters
    ----------
    what, tag : str
        As in `Progress`.
    enabled : bool, default=True
    stream, interval, step, clock
        As in `Progress`.
    """

    def __init__(self, what: str, *, tag: str = "run", enabled: bool = True, **kwargs: Any) -> None:
        self.what, self.tag, self.enabled, self.kwargs = what, tag, enabled, kwargs
        self.progress: Progress | None = None
        clock = kwargs.get("clock") or time.monotonic
        self._start = clock()  # the work started now, not at the first callback: the ETA counts the first item

    def __call__(self, done: int, total: int) -> None:
        if self.progress is None:
            self.progress = Progress(total, self.what, tag=self.tag, enabled=self.enabled, **self.kwargs)
            self.progress._start = self._start
        self.progress.update(max(0, int(done) - self.progress.done))

    def failure(self, name: str) -> None:
        """Name a failed item now, and count it."""
        if self.progress is not None:
            self.progress.failed += 1
            self.progress.failure(name)

    def close(self) -> None:
        if self.progress is not None:
            self.progress.close()
