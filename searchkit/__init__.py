"""searchkit: pluggable inference-time search for video diffusion.

from searchkit import RGRP, BestOfN
from searchkit.backends import AnalyticBackend
from searchkit.rewards import AnalyticReward

backend = AnalyticBackend()
result = BestOfN(n=4).run(backend, AnalyticReward(backend), "a red fox in snow", seed=0)
"""

# Strategies, rewards and backends register themselves on import.
from searchkit import backends as _backends  # noqa: E402,F401,I001
from searchkit import rewards as _rewards  # noqa: E402,F401
from searchkit.algorithms import *  # noqa: E402,F403
from searchkit.algorithms import __all__ as _strategy_names  # noqa: E402
from searchkit.backend import Backend, Conditioning
from searchkit.context import SearchContext
from searchkit.cost import Cost, Meter
from searchkit.errors import BudgetExceededError, NonFiniteRewardError, RegistryError
from searchkit.particles import Particles
from searchkit.registry import (
    get_backend,
    get_reward,
    get_strategy,
    register_backend,
    register_reward,
    register_strategy,
)
from searchkit.result import ScoreRecord, SearchResult, Trace
from searchkit.reward import Reward, RewardBatch
from searchkit.strategy import Strategy

__version__ = "0.1.0"

__all__ = [
    "Backend",
    "BudgetExceededError",
    "Conditioning",
    "Cost",
    "Meter",
    "NonFiniteRewardError",
    "Particles",
    "RegistryError",
    "Reward",
    "RewardBatch",
    "ScoreRecord",
    "SearchContext",
    "SearchResult",
    "Strategy",
    "Trace",
    "get_backend",
    "get_reward",
    "get_strategy",
    "register_backend",
    "register_reward",
    "register_strategy",
    *_strategy_names,
]
