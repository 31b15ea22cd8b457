"""Tiny, randomly initialised VideoReward and LatSearch checkpoints in the released layouts.

Everything is built offline in seconds: a byte-level BPE tokenizer trained with the
``tokenizers`` library on the reward prompt (carrying Qwen2-VL's special tokens, not the
reward tokens: the loader adds those, as training did), a Qwen2-VL model of a few
thousand parameters saved with ``save_pretrained``, a chat template in Qwen2-VL's format,
and a VideoReward folder whose tensors are named the way the released checkpoint names
them (the transformers 4.4x module layout under peft's ``base_model.model.`` wrapper).
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors.torch import save_file

from searchkit.rewards.video_reward.prompt import RUBRIC

QWEN_SPECIAL = [
    "<|endoftext|>",
    "<|im_start|>",
    "<|im_end|>",
    "<|vision_start|>",
    "<|vision_end|>",
    "<|image_pad|>",
    "<|video_pad|>",
]
EXTRA_ROWS = 5  # the base embedding has more rows than the tokenizer, as Qwen2-VL's does
CHAT_TEMPLATE = (
    "{% for message in messages %}{% if loop.first and message['role'] != 'system' %}"
    "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n{% endif %}"
    "<|im_start|>{{ message['role'] }}\n{% if message['content'] is string %}{{ message['content'] }}"
    "{% else %}{% for content in message['content'] %}{% if content['type'] == 'video' %}"
    "<|vision_start|><|video_pad|><|vision_end|>{% elif content['type'] == 'text' %}{{ content['text'] }}"
    "{% endif %}{% endfor %}{% endif %}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
MODEL_CONFIG = {
    "data_config": {
        "meta_data": "",
        "data_dir": "",
        "meta_data_test": "",
        "max_frame_pixels": 200704,
        "num_frames": None,
        "fps": 2.0,
        "p_shuffle_frames": 0.0,
        "p_color_jitter": 0.0,
        "eval_dim": ["VQ", "MQ", "TA"],
        "prompt_template_type": "detailed_special",
        "add_noise": False,
        "sample_type": "uniform",
        "use_tied_data": True,
    },
    "training_args": {"output_dir": "", "bf16": True},
    "model_config": {
        "model_name_or_path": "Qwen/Qwen2-VL-2B-Instruct",
        "model_revision": "main",
        "output_dim": 1,
        "use_special_tokens": True,
        "freeze_vision_tower": False,
        "freeze_llm": False,
        "tune_merger": True,
        "torch_dtype": "bfloat16",
        "reward_token": "special",
        "loss_type": "btt",
    },
    "peft_lora_config": {
        "lora_enable": True,
        "vision_lora": False,
        "lora_r": 4,
        "lora_alpha": 8,
        "lora_dropout": 0.05,
        "lora_target_modules": None,
        "lora_namespan_exclude": ["lm_head", "rm_head", "embed_tokens", "visual"],
        "lora_modules_to_save": None,
        "lora_task_type": "CAUSAL_LM",
        "use_rslora": False,
        "num_lora_modules": -1,
    },
    "inference_config": {
        "VQ_mean": 0.25,
        "VQ_std": 2.0,
        "MQ_mean": -0.5,
        "MQ_std": 0.5,
        "TA_mean": 1.0,
        "TA_std": 4.0,
    },
}
LORA_MODULES = (
    "self_attn.q_proj",
    "self_attn.k_proj",
    "self_attn.v_proj",
    "self_attn.o_proj",
    "mlp.gate_proj",
    "mlp.up_proj",
    "mlp.down_proj",
)


def build_tokenizer(folder: Path):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=600,
        special_tokens=QWEN_SPECIAL,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator([RUBRIC, "You are a helpful assistant. system user assistant"], trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok, eos_token="<|im_end|>", pad_token="<|endoftext|>"
    )
    fast.save_pretrained(str(folder))
    (folder / "chat_template.jinja").write_text(CHAT_TEMPLATE, encoding="utf-8")
    return fast


def build_base(folder: Path, seed: int = 0) -> Path:
    """A tiny Qwen2-VL-2B-shaped base model folder (config, weights, tokenizer, processor config)."""
    from transformers import Qwen2VLConfig, Qwen2VLForConditionalGeneration

    folder.mkdir(parents=True, exist_ok=True)
    tok = build_tokenizer(folder)
    ids = {t: tok.convert_tokens_to_ids(t) for t in QWEN_SPECIAL}
    config = Qwen2VLConfig(
        vision_config={
            "depth": 2,
            "embed_dim": 16,
            "num_heads": 2,
            "hidden_size": 32,
            "mlp_ratio": 2,
            "in_channels": 3,
            "patch_size": 14,
            "temporal_patch_size": 2,
            "spatial_merge_size": 2,
        },
        text_config={
            "hidden_size": 32,
            "intermediate_size": 48,
            "num_hidden_layers": 2,
            "num_attention_heads": 4,
            "num_key_value_heads": 2,
            "vocab_size": len(tok) + EXTRA_ROWS,
            "max_position_embeddings": 4096,
            "rms_norm_eps": 1e-6,
            "tie_word_embeddings": True,
            "rope_parameters": {
                "rope_type": "default",
                "rope_theta": 10000.0,
                "mrope_section": [2, 1, 1],
            },
            "pad_token_id": ids["<|endoftext|>"],
            "bos_token_id": None,
            "eos_token_id": ids["<|im_end|>"],
        },
        image_token_id=ids["<|image_pad|>"],
        video_token_id=ids["<|video_pad|>"],
        vision_start_token_id=ids["<|vision_start|>"],
        vision_end_token_id=ids["<|vision_end|>"],
        tie_word_embeddings=True,
    )
    torch.manual_seed(
        seed
    )  # transformers initialises from the global generator; tests are fixed-seed
    model = Qwen2VLForConditionalGeneration(config).eval()
    model.save_pretrained(str(folder))
    (folder / "preprocessor_config.json").write_text(
        json.dumps(
            {
                "image_processor_type": "Qwen2VLImageProcessor",
                "patch_size": 14,
                "temporal_patch_size": 2,
                "merge_size": 2,
                "min_pixels": 3136,
                "max_pixels": 12845056,
                "image_mean": [0.48145466, 0.4578275, 0.40821073],
                "image_std": [0.26862954, 0.26130258, 0.27577711],
            }
        ),
        encoding="utf-8",
    )
    return folder


def _randn(generator: torch.Generator, *shape: int, scale: float = 0.2) -> torch.Tensor:
    return torch.randn(*shape, generator=generator) * scale


def build_video_reward(
    folder: Path, base: Path, seed: int = 1, *, step: int = 12, config: dict | None = None
) -> Path:
    """A VideoReward folder in the released layout over ``base`` (trained tensors random)."""
    from safetensors.torch import load_file

    gen = torch.Generator().manual_seed(seed)
    base_state = load_file(str(base / "model.safetensors"))
    cfg = json.loads((base / "config.json").read_text())
    text = cfg.get("text_config", cfg)
    hidden, layers = text["hidden_size"], text["num_hidden_layers"]
    heads, kv = text["num_attention_heads"], text["num_key_value_heads"]
    inter, head_dim = text["intermediate_size"], hidden // heads
    tok_len = len(json.loads((base / "tokenizer.json").read_text())["model"]["vocab"])
    rows = (
        tok_len + 3
    )  # resize_token_embeddings(len(tokenizer)) after adding the three reward tokens
    folder.mkdir(parents=True, exist_ok=True)
    payload = json.loads(json.dumps(MODEL_CONFIG))
    payload["model_config"]["model_name_or_path"] = str(base)
    if config:
        for section, values in config.items():
            payload[section].update(values)
    (folder / "model_config.json").write_text(json.dumps(payload, indent=2))
    ckpt = folder / f"checkpoint-{step}"
    ckpt.mkdir(exist_ok=True)
    r = payload["peft_lora_config"]["lora_r"]
    non_lora = {}
    for name, tensor in base_state.items():  # the trained vision tower: base weights moved a little
        stem = name.removeprefix("model.")
        if stem.startswith("visual."):
            non_lora["base_model.model." + stem] = tensor + _randn(gen, *tensor.shape, scale=0.05)
    assert non_lora, "the base model has no vision tower tensors"
    embed = _randn(gen, rows, hidden, scale=0.5)
    non_lora["base_model.model.model.embed_tokens.weight"] = embed
    non_lora["base_model.model.rm_head.weight"] = _randn(
        gen, payload["model_config"]["output_dim"], hidden, scale=1.0
    )
    torch.save(non_lora, ckpt / "non_lora_state_dict.pth")
    shapes = {
        "self_attn.q_proj": (hidden, hidden),
        "self_attn.k_proj": (hidden, kv * head_dim),
        "self_attn.v_proj": (hidden, kv * head_dim),
        "self_attn.o_proj": (hidden, hidden),
        "mlp.gate_proj": (hidden, inter),
        "mlp.up_proj": (hidden, inter),
        "mlp.down_proj": (inter, hidden),
    }
    adapters = {}
    for i in range(layers):
        for module in LORA_MODULES:
            fan_in, fan_out = shapes[module]
            prefix = f"base_model.model.model.layers.{i}.{module}"
            adapters[f"{prefix}.lora_A.weight"] = _randn(gen, r, fan_in, scale=0.3)
            adapters[f"{prefix}.lora_B.weight"] = _randn(gen, fan_out, r, scale=0.3)
    # peft saves the resized embedding (and the tied head) with the adapters
    adapters["base_model.model.model.embed_tokens.weight"] = embed.clone()
    adapters["base_model.model.lm_head.weight"] = embed.clone()
    save_file(adapters, str(ckpt / "adapter_model.safetensors"))
    (ckpt / "adapter_config.json").write_text(
        json.dumps(
            {"peft_type": "LORA", "r": r, "lora_alpha": payload["peft_lora_config"]["lora_alpha"]}
        )
    )
    return folder


def build_latent_checkpoint(
    path: Path, video_reward: Path, seed: int = 2, channels: int = 16
) -> Path:
    """A LatSearch latent reward checkpoint: the trainable tensors, named as its trainer names them."""
    gen = torch.Generator().manual_seed(seed)
    ckpt = sorted(video_reward.glob("checkpoint-*"))[-1]
    non_lora = torch.load(ckpt / "non_lora_state_dict.pth", weights_only=True)
    state = {}
    for name, tensor in non_lora.items():
        if ".visual." in name:
            state["model." + name] = tensor + _randn(gen, *tensor.shape, scale=0.05)
    proj = "model.base_model.model.visual.patch_embed.proj.weight"
    embed_dim = state[proj].shape[0]
    state[proj] = _randn(gen, embed_dim, channels, 2, 14, 14, scale=0.02)
    state["step_embedding.weight"] = _randn(gen, 1000, channels, scale=1.0)
    torch.save(state, path)
    return path
