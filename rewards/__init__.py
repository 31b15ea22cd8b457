"""Reward plugins (installed as ``searchkit.rewards``)."""

from searchkit.registry import register_reward
from searchkit.rewards.analytic import AnalyticReward
from searchkit.rewards.latent_reward_model import LatentRewardModel
from searchkit.rewards.pixel import PixelReward
from searchkit.rewards.video_reward.latent import LatSearchLatentReward  # transformers loads lazily
from searchkit.rewards.video_reward.reward import VideoReward

register_reward("analytic", AnalyticReward)
register_reward("latent-reward-model", LatentRewardModel)
register_reward("pixel", PixelReward)
register_reward("video-reward", VideoReward)
register_reward("latsearch-latent-reward", LatSearchLatentReward)

__all__ = ["AnalyticReward", "LatSearchLatentReward", "LatentRewardModel", "PixelReward", "VideoReward"]
