"""Real verifiers on a Qwen2-VL backbone: VideoReward (VideoAlign) and the LatSearch latent reward model.

The modules import transformers and peft only when a model is loaded, so registering the
rewards costs nothing:

* :mod:`.config` – the released checkpoint folder and ``model_config.json``;
* :mod:`.weights` – tensor name mapping and strict loading;
* :mod:`.frames` – frames and latents to vision patches, as the reference makes them;
* :mod:`.prompt` – the reward prompt, chat template and tokens;
* :mod:`.network` – the network (vision tower, LoRA language model, reward head);
* :mod:`.reward` – :class:`VideoReward`, the ``video-reward`` plugin;
* :mod:`.latent` – :class:`LatSearchLatentReward`, the ``latsearch-latent-reward`` plugin;
* :mod:`.train` – training the latent model with the paper's recipe.
"""
