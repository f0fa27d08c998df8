"""Shared fixtures: the default cow scenario, one sample of it, and trained subject models (session-scoped)."""

from __future__ import annotations

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
