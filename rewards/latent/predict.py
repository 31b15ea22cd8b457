"""Running a latent reward model over dataset samples (shared by training and evaluation)."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from searchkit.backend import Backend
from searchkit.rewards.latent.dataset import LatentDataset
from searchkit.rewards.latent.reward import LatentRewardModel


def text_embeddings(backend: Backend, prompts: Sequence[str]) -> dict[str, torch.Tensor]:
    """The backend's prompt embedding ``[E]`` of each prompt."""
    return {
        p: backend.prompt_embedding(backend.encode(p)).detach().float().reshape(-1) for p in prompts
    }


def model_inputs(
    model: LatentRewardModel, items: list[dict], texts: dict[str, torch.Tensor]
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Stack a list of dataset items into the model's ``(data, sigma, text)``."""
    if model.input == "x0":
        if any("x0" not in it for it in items):
            bad = next(it for it in items if "x0" not in it)
            raise ValueError(
                f"the model reads input 'x0' but {bad['record']} has no x0_tensor_path; "
                "train a model with input 'latent' on this data"
            )
        data = torch.stack([it["x0"] for it in items])
        sigma = torch.tensor([it["x0_sigma"] for it in items])
    else:
        data = torch.stack([it["latent"] for it in items])
        sigma = torch.tensor([it["sigma"] for it in items])
    text = torch.stack([texts[it["prompt"]] for it in items])
    return data, sigma, text


@torch.no_grad()
def predict_dataset(
    model: LatentRewardModel,
    dataset: LatentDataset,
    backend: Backend,
    indices: Sequence[int] | None = None,
    batch_size: int = 256,
    normalized: bool = False,
    texts: dict[str, torch.Tensor] | None = None,
) -> torch.Tensor:
    """The model's ``[len(indices), dims]`` scores on its declared input for dataset samples."""
    indices = list(range(len(dataset))) if indices is None else list(indices)
    texts = texts if texts is not None else text_embeddings(backend, dataset.prompts)
    was_training = model.net.training
    model.net.eval()
    out = []
    try:
        for start in range(0, len(indices), batch_size):
            items = [dataset[i] for i in indices[start : start + batch_size]]
            data, sigma, text = model_inputs(model, items, texts)
            out.append(model.predict(data, sigma, text, normalized=normalized))
    finally:
        model.net.train(was_training)
    return torch.cat(out) if out else torch.zeros(0, len(model.dimensions))
