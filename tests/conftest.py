"""Shared fixtures: the analytic world at its defaults, its reward, and a prompt."""

from __future__ import annotations

import pytest
import torch

from searchkit.backends import AnalyticBackend
from searchkit.rewards import AnalyticReward

PROMPT = "a red fox running through fresh snow"

# The tests run many small tensor operations, for which thread start-up costs more than it
# saves; one intra-op thread keeps the suite fast and its timings stable on small machines.
torch.set_num_threads(1)


@pytest.fixture(scope="session")
def analytic() -> AnalyticBackend:
    return AnalyticBackend()


@pytest.fixture(scope="session")
def analytic_reward(analytic: AnalyticBackend) -> AnalyticReward:
    return AnalyticReward(analytic)


@pytest.fixture(scope="session")
def prompt() -> str:
    return PROMPT
