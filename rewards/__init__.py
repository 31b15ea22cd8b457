"""Reward plugins (installed as ``searchkit.rewards``)."""

if __name__ != "searchkit.rewards":  # the folder is installed as a subpackage of searchkit only
    raise ImportError(
        f"the rewards/ folder installs as searchkit.rewards: import searchkit.rewards, "
        f"not {__name__} (one module must not have two identities)"
    )


from searchkit.registry import register_reward
from searchkit.rewards.analytic import AnalyticReward, ProxyVerifier
from searchkit.rewards.clip_score import CLIPScore
from searchkit.rewards.latent import LatentRewardConfig, LatentRewardModel
from searchkit.rewards.pixel import PixelReward
from searchkit.rewards.video_reward.latent import LatSearchLatentReward  # transformers loads lazily
from searchkit.rewards.video_reward.reward import VideoReward

register_reward("analytic", AnalyticReward)
register_reward("analytic-proxy", ProxyVerifier)
register_reward("clip-score", CLIPScore)
register_reward("latent-reward-model", LatentRewardModel)
register_reward("pixel", PixelReward)
register_reward("video-reward", VideoReward)
register_reward("latsearch-latent-reward", LatSearchLatentReward)

__all__ = [
    "AnalyticReward",
    "CLIPScore",
    "LatSearchLatentReward",
    "LatentRewardConfig",
    "LatentRewardModel",
    "PixelReward",
    "ProxyVerifier",
    "VideoReward",
]
