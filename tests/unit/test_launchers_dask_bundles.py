"""The Dask launcher's bundles: which items go together, and ``run(fn, items, group=...)`` on a LocalCluster."""

from __future__ import annotations

import os

import pytest

from cowbench.launchers import EngineError, get_launcher
from cowbench.launchers.dask_cluster import plan_bundles


def test_a_bundle_holds_one_group_in_its_order_and_every_item_is_in_exactly_one():
    keys = ["a"] * 7 + ["b"] * 5 + ["a"] * 2  # a group need not be contiguous in the plan
    for threads in (1, 2, 3, 4, 16):
        bundles = plan_bundles(keys, threads)
        assert sorted(i for b in bundles for i in b) == list(range(len(keys)))
        for bundle in bundles:
            assert len({keys[i] for i in bundle}) == 1  # one replicate per bundle
            assert bundle == sorted(bundle)  # the planned order within the group
    # one thread, two groups: about 2 bundles per thread, so one bundle per group, the whole group in it
    assert plan_bundles(keys, 1) == [[0, 1, 2, 3, 4, 5, 6, 12, 13], [7, 8, 9, 10, 11]]
    # more threads than groups: each group in parts, every k-th item (the costly methods spread over the parts)
    assert plan_bundles(["r"] * 6, 2) == [[0, 4], [1, 5], [2], [3]]
    # never more parts than items, never an empty bundle
    assert plan_bundles(["r", "r", "s"], 16) == [[0], [1], [2]]
    assert plan_bundles([], 4) == []


@pytest.fixture(scope="module")
def dask_run():
    pytest.importorskip("dask.distributed")
    with get_launcher("dask").session(2) as run:
        yield run


def _where(item: int) -> tuple[int, int, str]:
    from distributed import get_worker

    if item == 5:
        raise ValueError("five")
    return item, os.getpid(), get_worker().get_current_task()


def test_grouped_items_run_together_each_result_once_and_a_raising_item_fails_alone(dask_run):
    items = list(range(12))
    results = list(dask_run(_where, items, group=lambda i: i % 3))
    errors = [r for r in results if isinstance(r, EngineError)]
    assert [(e.item, e.message) for e in errors] == [(5, "ValueError: five")]
    done = [r for r in results if not isinstance(r, EngineError)]
    assert all(isinstance(r, tuple) for r in done)  # what fn returned, though events travel as msgpack lists
    assert sorted(r[0] for r in done) == [i for i in items if i != 5]  # every other item, once
    by_task: dict[str, list[int]] = {}
    for item, _, task in done:
        by_task.setdefault(task, []).append(item)
    assert len(by_task) < len(done)  # bundled: fewer Dask tasks than items ...
    assert plan_bundles([i % 3 for i in items], 2) == [[0, 6], [3, 9], [1, 7], [4, 10], [2, 8], [5, 11]]
    # ... each task one planned bundle, in its order (item 5 raised: not among the results)
    assert sorted(by_task.values()) == [[0, 6], [1, 7], [2, 8], [3, 9], [4, 10], [11]]
    # without a group: one task per item, as before
    singles = list(dask_run(_where, [0, 1, 2]))
    assert len({task for _, _, task in singles}) == 3


def _kill_on_seven(item: int) -> tuple[int, str]:
    from distributed import get_worker

    if item == 7:
        os.kill(os.getpid(), 9)  # the Dask worker itself dies (its nanny starts a new one)
    return item, get_worker().get_current_task()


@pytest.mark.slow
def test_an_item_that_kills_its_worker_costs_no_other_item_of_its_bundle(dask_run):
    # group 1 is [1, 4, 7, 10], in parts [1, 7] and [4, 10]: Dask gives up on [1, 7] after its worker died
    # every time; item 1 is then run alone and stored, and item 7, alone, is the only loss
    results = list(dask_run(_kill_on_seven, list(range(12)), group=lambda i: i % 3))
    errors = [r for r in results if isinstance(r, EngineError)]
    assert [e.item for e in errors] == [7] and "KilledWorker" in errors[0].message
    assert sorted(r[0] for r in results if not isinstance(r, EngineError)) == [i for i in range(12) if i != 7]


def _wait_for_go(args: tuple[int, str]) -> tuple[int, str]:
    import time
    from pathlib import Path

    item, go = args
    if item == 4:  # waits until the run has received item 0's result, which ran before it in the same task
        deadline = time.monotonic() + 60
        while not Path(go).exists():
            if time.monotonic() > deadline:
                return item, "late"
            time.sleep(0.05)
    return item, "went"


def test_each_result_reaches_the_run_when_its_item_ends_not_when_its_bundle_does(dask_run, tmp_path):
    go = tmp_path / "go"
    items = [(i, str(go)) for i in range(5)]
    assert plan_bundles([0] * 5, 2)[0] == [0, 4]  # items 0 and 4 share a task, 0 first
    got = {}
    for item, state in dask_run(_wait_for_go, items, group=lambda args: 0):
        got[item] = state
        if item == 0:
            go.touch()
    assert got == dict.fromkeys(range(5), "went")


def _worker_settings(_item: int) -> tuple[bool, float]:
    import dask
    from dask.utils import parse_timedelta

    return (bool(dask.config.get("distributed.worker.profile.enabled")),
            parse_timedelta(dask.config.get("distributed.admin.tick.interval")))


def test_the_cluster_a_run_starts_samples_no_stacks_and_ticks_slowly(dask_run):
    # the settings reach the worker processes (the nannies hand them over), not only this process
    import dask
    from dask.utils import parse_timedelta

    from cowbench.launchers.dask_cluster import QUIET_CONFIG

    got = list(dask_run(_worker_settings, [0, 1]))
    tick = parse_timedelta(QUIET_CONFIG["distributed.admin.tick.interval"])
    assert got == [(False, tick), (False, tick)]
    assert dask.config.get("distributed.worker.profile.enabled") is True  # this process's config is put back
