"""Reward plugins (installed as ``searchkit.rewards``)."""

from searchkit.registry import register_reward
from searchkit.rewards.analytic import AnalyticReward
from searchkit.rewards.latent import LatentRewardConfig, LatentRewardModel
from searchkit.rewards.pixel import PixelReward

register_reward("analytic", AnalyticReward)
register_reward("latent-reward-model", LatentRewardModel)
register_reward("pixel", PixelReward)

__all__ = ["AnalyticReward", "LatentRewardConfig", "LatentRewardModel", "PixelReward"]
