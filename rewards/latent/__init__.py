"""The latent reward model: a small network that scores noisy latents, its data, training and evaluation.

Installed as ``searchkit.rewards.latent``; one module per job:

* :mod:`.network`: :class:`LatentRewardConfig` and the network :class:`LatentRewardNet`;
* :mod:`.reward`: :class:`LatentRewardModel`, the network as a searchkit reward
  (registered as ``latent-reward-model``; also importable from ``searchkit.rewards``);
* :mod:`.checkpoint`: the saved folder (``config.json`` + ``model.safetensors``) and its checks;
* :mod:`.schema`: the dataset layout (the LatSearch paper's metadata schema);
* :mod:`.collection`: running trajectories and labelling them with a teacher reward;
* :mod:`.records` and :mod:`.dataset`: reading and checking a dataset;
* :mod:`.training` and :mod:`.resume`: the training recipe, its checkpoints and resumption;
* :mod:`.metrics`, :mod:`.predict` and :mod:`.evaluation`: per-step ranking quality against
  the teacher on predicted ``x0``.

The command line drives the same functions: ``searchkit reward collect | train | eval``.
"""

from searchkit.errors import LatentDataError
from searchkit.rewards.latent.checkpoint import load_checkpoint, read_config, save_checkpoint
from searchkit.rewards.latent.collection import (
    CollectConfig,
    CollectSummary,
    collect,
    resolve_teacher,
)
from searchkit.rewards.latent.dataset import LatentDataset, LatentSample, read_latent_dataset
from searchkit.rewards.latent.evaluation import (
    EvalReport,
    StepRow,
    evaluate,
    plot_report,
    teacher_on_x0,
)
from searchkit.rewards.latent.metrics import pairwise_accuracy, spearman, spearman_within
from searchkit.rewards.latent.network import LatentRewardConfig, LatentRewardNet, build_net
from searchkit.rewards.latent.predict import model_inputs, predict_dataset, text_embeddings
from searchkit.rewards.latent.reward import LatentRewardModel
from searchkit.rewards.latent.schema import (
    metadata_name,
    parse_step_key,
    sample_seed,
    similarity,
    step_key,
)
from searchkit.rewards.latent.training import (
    TrainConfig,
    TrainResult,
    pairwise_loss,
    split_prompts,
    train,
    validate_training_data,
    validation_accuracy,
)

__all__ = [
    "CollectConfig",
    "CollectSummary",
    "EvalReport",
    "LatentDataError",
    "LatentDataset",
    "LatentRewardConfig",
    "LatentRewardModel",
    "LatentRewardNet",
    "LatentSample",
    "StepRow",
    "TrainConfig",
    "TrainResult",
    "build_net",
    "collect",
    "evaluate",
    "load_checkpoint",
    "metadata_name",
    "model_inputs",
    "pairwise_accuracy",
    "pairwise_loss",
    "parse_step_key",
    "plot_report",
    "predict_dataset",
    "read_config",
    "read_latent_dataset",
    "resolve_teacher",
    "sample_seed",
    "save_checkpoint",
    "similarity",
    "spearman",
    "spearman_within",
    "split_prompts",
    "step_key",
    "teacher_on_x0",
    "text_embeddings",
    "train",
    "validate_training_data",
    "validation_accuracy",
]
