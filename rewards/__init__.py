"""Reward plugins (installed as ``searchkit.rewards``)."""

from searchkit.registry import register_reward
from searchkit.rewards.analytic import AnalyticReward

register_reward("analytic", AnalyticReward)

__all__ = ["AnalyticReward"]
