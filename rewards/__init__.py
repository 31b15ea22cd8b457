"""Reward plugins (installed as ``searchkit.rewards``)."""

from searchkit.registry import register_reward
from searchkit.rewards.analytic import AnalyticReward
from searchkit.rewards.clip_score import CLIPScore
from searchkit.rewards.latent_reward_model import LatentRewardModel
from searchkit.rewards.pixel import PixelReward

register_reward("analytic", AnalyticReward)
register_reward("clip-score", CLIPScore)
register_reward("latent-reward-model", LatentRewardModel)
register_reward("pixel", PixelReward)

__all__ = ["AnalyticReward", "CLIPScore", "LatentRewardModel", "PixelReward"]
