"""Shared fixtures: the default cow scenario, one sample of it, and trained subject models (session-scoped); a
module-scoped keep of every prepared replicate for modules that opt in."""

from __future__ import annotations

import functools

import pytest

import cowbench as cb


@pytest.fixture(scope="session")
def cow():
    return cb.make_scenario("cow")


@pytest.fixture(scope="session")
def cow_data(cow):
    return cow.sample(seed=0)


@pytest.fixture(scope="session")
def linear_subject(cow, cow_data):
    return cb.train_subject(cow, cow_data, arch="linear", seed=0)


@pytest.fixture(scope="session")
def mlp_subject(cow, cow_data):
    return cb.train_subject(cow, cow_data, arch="mlp", seed=0)


@pytest.fixture(scope="module")
def each_replicate_built_once():
    """Keep every replicate `cowbench.jobs.prepare` builds (data, trained subject and oracle) until the module ends.

    Its own cache holds the last two, so a module that evaluates several methods over three or more seeds rebuilds
    every replicate on every call. Building one is deterministic (`test_evaluate_equals_the_harness_job`), so a kept
    replicate is the one a rebuild would give; opt in per module with
    ``pytestmark = pytest.mark.usefixtures("each_replicate_built_once")``.
    """
    import cowbench.replicate as replicate

    bounded = replicate._prepare_cached
    replicate._prepare_cached = functools.lru_cache(maxsize=None)(bounded.__wrapped__)
    yield
    replicate._prepare_cached = bounded
