"""The text the reward model reads: the VideoReward prompt, the chat template, the tokens.

The released model was trained on one prompt (VideoAlign's ``detailed_special``
template): a rubric for the three criteria in which each criterion ends with its own
special token, ``<|VQ_reward|>``, ``<|MQ_reward|>`` and ``<|TA_reward|>``; the reward head
reads the language model's last hidden state at those three tokens. The user's prompt is
inserted after ``Textual prompt - ``. The text must be byte-identical to the training
prompt, so it is reproduced verbatim below.

The rubric goes into a one-turn chat, ``[video, text]`` from the user, rendered with the
base model's chat template (Qwen2-VL's: a default system turn, the video as
``<|vision_start|><|video_pad|><|vision_end|>``, then the text, then the assistant
header). ``<|video_pad|>`` is then repeated once per merged video token, as Qwen2-VL's
processor does, and the texts are tokenised together, padded on the right. The three
reward tokens are added to the base tokenizer as additional special tokens (so they get
the ids after the base vocabulary, as in training).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import torch

from searchkit.rewards.video_reward.config import REWARD_TOKENS, VideoRewardCheckpointError

VIDEO_TOKEN = "<|video_pad|>"

RUBRIC = """
You are tasked with evaluating a generated video based on three distinct criteria: Visual Quality, Motion Quality, and Text Alignment. Please provide a rating from 0 to 10 for each of the three categories, with 0 being the worst and 10 being the best. Each evaluation should be independent of the others.

**Visual Quality:**
Evaluate the overall visual quality of the video, with a focus on static factors. The following sub-dimensions should be considered:
- **Reasonableness:** The video should not contain any significant biological or logical errors, such as abnormal body structures or nonsensical environmental setups.
- **Clarity:** Evaluate the sharpness and visibility of the video. The image should be clear and easy to interpret, with no blurring or indistinct areas.
- **Detail Richness:** Consider the level of detail in textures, materials, lighting, and other visual elements (e.g., hair, clothing, shadows).
- **Aesthetic and Creativity:** Assess the artistic aspects of the video, including the color scheme, composition, atmosphere, depth of field, and the overall creative appeal. The scene should convey a sense of harmony and balance.
- **Safety:** The video should not contain harmful or inappropriate content, such as political, violent, or adult material. If such content is present, the image quality and satisfaction score should be the lowest possible.

Please provide the ratings of Visual Quality: <|VQ_reward|>
END

**Motion Quality:**
Assess the dynamic aspects of the video, with a focus on dynamic factors. Consider the following sub-dimensions:
- **Stability:** Evaluate the continuity and stability between frames. There should be no sudden, unnatural jumps, and the video should maintain stable attributes (e.g., no fluctuating colors, textures, or missing body parts).
- **Naturalness:** The movement should align with physical laws and be realistic. For example, clothing should flow naturally with motion, and facial expressions should change appropriately (e.g., blinking, mouth movements).
- **Aesthetic Quality:** The movement should be smooth and fluid. The transitions between different motions or camera angles should be seamless, and the overall dynamic feel should be visually pleasing.
- **Fusion:** Ensure that elements in motion (e.g., edges of the subject, hair, clothing) blend naturally with the background, without obvious artifacts or the feeling of cut-and-paste effects.
- **Clarity of Motion:** The video should be clear and smooth in motion. Pay attention to any areas where the video might have blurry or unsteady sections that hinder visual continuity.
- **Amplitude:** If the video is largely static or has little movement, assign a low score for motion quality.

Please provide the ratings of Motion Quality: <|MQ_reward|>
END

**Text Alignment:**
Assess how well the video matches the textual prompt across the following sub-dimensions:
- **Subject Relevance** Evaluate how accurately the subject(s) in the video (e.g., person, animal, object) align with the textual description. The subject should match the description in terms of number, appearance, and behavior.
- **Motion Relevance:** Evaluate if the dynamic actions (e.g., gestures, posture, facial expressions like talking or blinking) align with the described prompt. The motion should match the prompt in terms of type, scale, and direction.
- **Environment Relevance:** Assess whether the background and scene fit the prompt. This includes checking if real-world locations or scenes are accurately represented, though some stylistic adaptation is acceptable.
- **Style Relevance:** If the prompt specifies a particular artistic or stylistic style, evaluate how well the video adheres to this style.
- **Camera Movement Relevance:** Check if the camera movements (e.g., following the subject, focus shifts) are consistent with the expected behavior from the prompt.

Textual prompt - {text_prompt}
Please provide the ratings of Text Alignment: <|TA_reward|>
END
"""


def rubric(prompt: str) -> str:
    """The training prompt for ``prompt``; a prompt holding a reward token is refused."""
    for token in REWARD_TOKENS:
        if token in prompt:
            raise ValueError(f"prompt must not contain the reward token {token}, got {prompt!r}")
    return RUBRIC.format(text_prompt=prompt)


class PromptEncoder:
    """Renders and tokenises the reward prompt with the base model's tokenizer."""

    def __init__(self, base: Path, video_token_id: int) -> None:
        from transformers import AutoTokenizer

        try:
            tokenizer = AutoTokenizer.from_pretrained(str(base))
        except (OSError, ValueError) as exc:
            raise VideoRewardCheckpointError(
                f"base model {base} has no usable tokenizer: {exc}"
            ) from None
        missing = [t for t in REWARD_TOKENS if t not in tokenizer.get_vocab()]
        if missing:
            tokenizer.add_special_tokens({"additional_special_tokens": list(REWARD_TOKENS)})
        self.tokenizer = tokenizer
        self.template = _chat_template(base, tokenizer)
        self.reward_token_ids = tuple(tokenizer.convert_tokens_to_ids(t) for t in REWARD_TOKENS)
        if tokenizer.convert_tokens_to_ids(VIDEO_TOKEN) != video_token_id:
            raise VideoRewardCheckpointError(
                f"base model {base}: the tokenizer's {VIDEO_TOKEN} id "
                f"{tokenizer.convert_tokens_to_ids(VIDEO_TOKEN)} differs from the config's video_token_id {video_token_id}"
            )
        if tokenizer.pad_token_id is None:
            raise VideoRewardCheckpointError(f"base model {base}: the tokenizer has no pad token")

    def chat(self, prompt: str) -> str:
        """The rendered chat for one prompt, with one ``<|video_pad|>`` placeholder."""
        messages = [
            {
                "role": "user",
                "content": [{"type": "video"}, {"type": "text", "text": rubric(prompt)}],
            }
        ]
        text = self.tokenizer.apply_chat_template(
            messages, chat_template=self.template, tokenize=False, add_generation_prompt=True
        )
        if text.count(VIDEO_TOKEN) != 1:
            raise VideoRewardCheckpointError(
                f"the base model's chat template rendered {text.count(VIDEO_TOKEN)} {VIDEO_TOKEN} tokens, expected 1"
            )
        return text

    def encode(
        self, prompts: Sequence[str], video_tokens: Sequence[int]
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``input_ids`` and ``attention_mask`` ``[n, L]``, right-padded, video tokens expanded."""
        texts = [
            self.chat(p).replace(VIDEO_TOKEN, VIDEO_TOKEN * k)
            for p, k in zip(prompts, video_tokens, strict=True)
        ]
        self.tokenizer.padding_side = "right"
        batch = self.tokenizer(texts, padding=True, return_tensors="pt", add_special_tokens=False)
        return batch["input_ids"], batch["attention_mask"]


def _chat_template(base: Path, tokenizer) -> str:
    """The processor's chat template (``chat_template.jinja`` / ``.json``), else the tokenizer's."""
    jinja = base / "chat_template.jinja"
    if jinja.is_file():
        return jinja.read_text(encoding="utf-8")
    js = base / "chat_template.json"
    if js.is_file():
        template = json.loads(js.read_text(encoding="utf-8")).get("chat_template")
        if isinstance(template, str):
            return template
    if isinstance(getattr(tokenizer, "chat_template", None), str):
        return tokenizer.chat_template
    raise VideoRewardCheckpointError(f"base model {base} has no chat template")
