"""Dask distributed: an existing cluster (``--scheduler ADDRESS``) or a `LocalCluster` started for the run.

On a cluster, every worker must import the same cowbench version (and the ``--plugins`` files at the same
paths) and see the results directory at the same path: workers write the job files themselves.

Bundles. A Dask task costs milliseconds of scheduler and worker CPU, and a job that lands on a worker whose
isolated child holds another replicate loads its replicate again. So ``run(fn, items, group=key)`` sends the
items of one group (the runner's: one replicate) to a worker together, a few Dask tasks per group
(`BUNDLES_PER_THREAD` tasks per worker thread over the run, so the last tasks do not leave workers idle), each
running its items one after the other in the group's planned order. Every result is reported to the run as
soon as its item ends (a Dask event on a topic of the run's own), not when the bundle ends, so progress is per
item. An item that raises is that item's `EngineError`; the bundle goes on. A bundle the engine loses (its
worker died too often: ``KilledWorker``) loses only the items that had not reported: each of them is sent again
in a task of its own, and one lost again is yielded as an `EngineError`. An item whose result was already
reported is never yielded twice (Dask may run a bundle again on another worker after a worker died).
"""

from __future__ import annotations

import contextlib
import logging
import math
import queue
import uuid
from collections.abc import Callable, Hashable, Iterable, Iterator
from typing import Any

from cowbench.errors import InputError
from cowbench.launchers.base import EngineError, Launcher, Run, register_launcher

CONNECT_TIMEOUT = "30s"  # how long an existing scheduler (--scheduler) may take to answer
# bundles per worker thread over a run: 1 would leave workers idle behind the longest bundle; more bundles mean
# more replicate loads (cheap: the isolated child keeps the last two) and more tasks
BUNDLES_PER_THREAD = 2
_POLL_S = 0.5  # the run's loop wakes this often to let a Ctrl-C or SIGTERM through
# Dask settings of the LocalCluster a run starts itself. By default every worker samples its threads' stacks 100
# times a second (the dashboard's profile, which nobody reads here) and the scheduler, nannies and workers wake
# every 20-500 ms for ticks and monitors: 0.20 CPU-s per second on an idle 2-worker cluster, measured; with
# these, 0.035. A cluster of the user's own (--scheduler) keeps its settings: see docs/cost.md.
QUIET_CONFIG = {
    "distributed.worker.profile.enabled": False,
    "distributed.admin.tick.interval": "1s",
    "distributed.admin.system-monitor.interval": "2s",
    "distributed.worker.memory.monitor-interval": "1s",
}


@contextlib.contextmanager
def _sigint_ignored() -> Iterator[None]:
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def plan_bundles(keys: list[Hashable], threads: int, per_thread: int = BUNDLES_PER_THREAD) -> list[list[int]]:
    """The indices of the items in each bundle, from the items' group ``keys``.

    Every bundle holds items of one group, in their order. Groups are split so that the run has about
    ``per_thread * threads`` bundles (each group in the same number of parts, at most one part per item); a
    group's parts take every k-th item, so the expensive methods of a replicate are spread over its parts.
    """
    groups: dict[Hashable, list[int]] = {}
    for index, key in enumerate(keys):
        groups.setdefault(key, []).append(index)
    if not groups:
        return []
    parts = max(1, math.ceil(per_thread * max(1, threads) / len(groups)))
    bundles = []
    for indices in groups.values():
        k = min(len(indices), parts)
        bundles.extend(indices[start::k] for start in range(k))
    return bundles


def _run_bundle(fn: Callable[[Any], Any], topic: str, indexed: list[tuple[int, Any]]) -> list[list[Any]]:
    """In a Dask worker: ``fn`` on each item of a bundle in order, each outcome reported on ``topic`` as it ends.

    Returns every outcome, ``[index, result, error]`` (``error`` a message when ``fn`` raised, else None): the run
    reads it for any item whose event it has not seen.
    """
    from distributed import get_worker

    worker = get_worker()
    outcomes = []
    for index, item in indexed:
        try:
            outcome = [index, fn(item), None]
        except Exception as exc:  # this item's failure, not the bundle's: the next items still run
            outcome = [index, None, f"{type(exc).__name__}: {exc}"]
        outcomes.append(outcome)
        try:
            worker.log_event(topic, outcome)
        except TypeError:  # not msgpack-able: the run reads this item's result when the bundle returns
            pass
    return outcomes


def _restored(result: Any) -> Any:
    # an event travels as msgpack, which turns tuples into lists: give the caller what ``fn`` returned
    return tuple(result) if isinstance(result, list) else result


def _bundled(client: Any, fn: Callable[[Any], Any], items: list[Any], group: Callable[[Any], Hashable]
             ) -> Iterator[Any]:
    threads = sum(client.nthreads().values()) or 1
    bundles = plan_bundles([group(item) for item in items], threads)
    topic = f"cowbench-{uuid.uuid4().hex}"
    inbox: queue.Queue[tuple[str, Any]] = queue.Queue()
    client.subscribe_topic(topic, lambda event: inbox.put(("event", event[1])))
    running: dict[str, tuple[Any, list[int]]] = {}  # task key -> (future, the item indices it runs)
    seen: set[int] = set()

    def submit(indices: list[int]) -> None:
        future = client.submit(_run_bundle, fn, topic, [(i, items[i]) for i in indices], pure=False)
        running[future.key] = (future, indices)
        future.add_done_callback(lambda f: inbox.put(("done", f.key)))

    def outcome(index: int, result: Any, error: str | None) -> Any:
        seen.add(index)
        return EngineError(items[index], error) if error is not None else _restored(result)

    try:
        for indices in bundles:
            submit(indices)
        while running:
            try:
                kind, payload = inbox.get(timeout=_POLL_S)
            except queue.Empty:
                continue
            if kind == "event":
                index, result, error = payload
                if index not in seen:
                    yield outcome(index, result, error)
                continue
            if payload not in running:
                continue
            future, indices = running.pop(payload)
            if all(i in seen for i in indices):  # every outcome came as an event: nothing to fetch from the worker
                continue
            try:
                outcomes = future.result()
            except Exception as exc:  # e.g. KilledWorker: the engine gave up on this bundle
                unreported = [i for i in indices if i not in seen]
                if len(indices) == 1:
                    for index in unreported:
                        yield outcome(index, None, f"{type(exc).__name__}: {exc}")
                else:  # alone this time, so an item that kills its worker again costs no other item
                    for index in unreported:
                        submit([index])
                continue
            for index, result, error in outcomes:
                if index not in seen:
                    yield outcome(index, result, error)
    finally:
        with contextlib.suppress(Exception):
            client.unsubscribe_topic(topic)


@contextlib.contextmanager
def _session(n_jobs: int = 1, scheduler: str | None = None) -> Iterator[Run]:
    try:
        import dask
        from dask.distributed import Client, LocalCluster, as_completed
    except ImportError:
        raise InputError("--launcher dask needs dask.distributed: pip install 'cowbench[dask]'") from None
    cluster = None
    if scheduler:
        try:
            client = Client(scheduler, timeout=CONNECT_TIMEOUT)
        except OSError as exc:
            raise InputError(f"cannot reach the Dask scheduler at {scheduler!r}: {exc}") from None
    else:
        # one thread per worker process: jobs pin their own threads, and the isolated child does the work.
        # The worker processes are started with SIGINT ignored (a disposition they keep through exec): a Ctrl-C
        # at the terminal reaches the whole process group, and only the run must answer it, in one line
        with _sigint_ignored(), dask.config.set(QUIET_CONFIG):  # the nannies hand the config to their workers
            cluster = LocalCluster(n_workers=n_jobs, threads_per_worker=1, processes=True, dashboard_address=None,
                                   silence_logs=logging.ERROR)
        client = Client(cluster)
    try:
        def run(fn: Callable[[Any], Any], items: Iterable[Any], group: Callable[[Any], Hashable] | None = None,
                ) -> Iterator[Any]:
            items = list(items)
            if group is not None:
                yield from _bundled(client, fn, items, group)
                return
            futures = client.map(fn, items, pure=False)
            item_of = {f.key: item for f, item in zip(futures, items, strict=True)}
            for future in as_completed(futures):
                try:
                    yield future.result()
                except Exception as exc:  # e.g. KilledWorker: the engine gave up on this item
                    yield EngineError(item_of[future.key], f"{type(exc).__name__}: {exc}")

        yield run
    finally:
        with _quiet_close():
            client.close()
            if cluster is not None:
                cluster.close()


@contextlib.contextmanager
def _quiet_close() -> Iterator[None]:
    """Close the client and cluster without their shutdown chatter (a Ctrl-C ends with the run's one line)."""
    loggers = [logging.getLogger(name) for name in ("distributed", "tornado", "asyncio")]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.CRITICAL)
    try:
        yield
    except Exception:  # a failing close after the results are in must not replace the run's outcome
        pass
    finally:
        for lg, level in zip(loggers, levels, strict=True):
            lg.setLevel(level)


register_launcher(Launcher("dask", _session, remote=True, bundles=True,
                           doc="Dask distributed: --scheduler ADDRESS, or a LocalCluster of --jobs workers"))
