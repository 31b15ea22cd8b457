"""Shared fixtures: the analytic world at its defaults and a tiny one for Monte Carlo checks."""

from __future__ import annotations

import pytest
from searchkit.rewards import AnalyticReward

from searchkit.backends import AnalyticBackend

PROMPT = "a red fox running through fresh snow"


@pytest.fixture(scope="session")
def analytic() -> AnalyticBackend:
    return AnalyticBackend()


@pytest.fixture(scope="session")
def analytic_reward(analytic: AnalyticBackend) -> AnalyticReward:
    return AnalyticReward(analytic)


@pytest.fixture(scope="session")
def prompt() -> str:
    return PROMPT
