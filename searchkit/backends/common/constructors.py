"""How a diffusers backend is made: from a loaded pipeline, a checkpoint folder, the tiny
random model, or command-line options; and its compute profile from the options alone.

Shared by every family through :class:`~searchkit.backends.common.DiffusersBackend`. A
family names its pipeline and VAE classes (``pipeline_class_name``, ``vae_class_name``),
its checkpoint :class:`~searchkit.backends.common.checkpoint.CheckpointLayout` (plus any
check of its own in ``check_checkpoint``), the default size of its tiny model
(``tiny_size``) and how to build it (``tiny_pipeline``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import torch

from searchkit.backend import ComputeProfile
from searchkit.backends.common.checkpoint import (
    check_layout,
    check_path_type,
    default_device,
    dtype_keyword,
)
from searchkit.backends.common.options import check_build_arguments, parse_dtype


class Constructors:
    """Constructors of a :class:`~searchkit.backends.common.DiffusersBackend` family."""

    name: ClassVar[str]
    options_class: ClassVar[type]
    #: diffusers class names of the family's pipeline and VAE (imported lazily).
    pipeline_class_name: ClassVar[str]
    vae_class_name: ClassVar[str]
    #: Default sampling size of the tiny model (any option overrides it).
    tiny_size: ClassVar[dict[str, int]] = {}
    #: The pipeline's model components cast to ``dtype`` by :meth:`tiny`.
    cast_components: ClassVar[tuple[str, ...]] = ("transformer", "text_encoder")

    @classmethod
    def options_from(cls, **options: Any) -> Any:
        """The family's options from keyword options, naming any unknown one."""
        return cls.options_class.from_options(**options)

    @classmethod
    def check_checkpoint(cls, path: str | Path) -> Path:
        """The checkpoint folder at ``path``, its layout checked; else a clear error."""
        root, _ = check_layout(path, cls.layout)
        return root

    @classmethod
    def tiny_pipeline(cls, seed: int = 0, variant: str | None = None) -> Any:
        raise NotImplementedError

    # -- constructors --------------------------------------------------------------------
    @classmethod
    def from_pipeline(cls, pipe: Any, **options: Any) -> Any:
        """Wrap a loaded diffusers pipeline of the family (its components are used, not copied)."""
        return cls(pipe, cls.options_from(**options), source={"kind": "pipeline"})

    @classmethod
    def from_pretrained(
        cls,
        path: str | Path,
        dtype: torch.dtype | str | None = None,
        device: torch.device | str | None = None,
        *,
        vae_dtype: torch.dtype | str = torch.float32,
        **options: Any,
    ) -> Any:
        """Load a diffusers-format checkpoint folder of the family.

        The options are checked first, then the folder's layout, before any weight is read.
        ``dtype`` is the denoisers' and text encoders' (default bfloat16 on CUDA, float32 on
        the CPU); the VAE loads in ``vae_dtype`` (float32 by default). Every model moves to
        ``device`` (default CUDA when available), except the text encoders under
        ``offload_text_encoder``; under ``cpu_offload`` they all stay on the CPU and move to
        ``device`` only while they run.
        """
        opts = cls.options_from(**options)  # bad options fail before any file is read
        root = cls.check_checkpoint(path)
        device = torch.device(device) if device is not None else default_device()
        dtype = parse_dtype(dtype) or (torch.bfloat16 if device.type == "cuda" else torch.float32)
        vae_dtype = parse_dtype(vae_dtype, "vae_dtype")
        import diffusers

        key = dtype_keyword()
        vae = getattr(diffusers, cls.vae_class_name).from_pretrained(
            root, subfolder="vae", **{key: vae_dtype}
        )
        pipeline_class = getattr(diffusers, cls.pipeline_class_name)
        pipe = pipeline_class.from_pretrained(root, vae=vae, **{key: dtype})
        if not opts.cpu_offload:
            keep = set(cls.text_encoders) if opts.offload_text_encoder else set()
            for name, component in pipe.components.items():
                if isinstance(component, torch.nn.Module) and name not in keep:
                    component.to(device)
        source = {
            "kind": "checkpoint",
            "path": str(root),
            "dtype": str(dtype).removeprefix("torch."),
        }
        return cls(pipe, opts, source=source, offload_device=device)

    @classmethod
    def tiny(
        cls,
        *,
        seed: int = 0,
        device: torch.device | str = "cpu",
        dtype: torch.dtype | str = torch.float32,
        variant: str | None = None,
        **options: Any,
    ) -> Any:
        """Small random components of the family, built offline, for tests and demos (their
        outputs are noise-like patterns, not generations). The same seed gives the same model;
        ``variant`` picks the family member whose structure it copies."""
        opts = cls.options_from(**{**cls.tiny_size, **options})
        pipe = cls.tiny_pipeline(seed=seed, variant=variant)
        if not opts.cpu_offload:
            pipe.to(device=torch.device(device))
        dtype = parse_dtype(dtype)
        if dtype != torch.float32:
            for name in cls.cast_components:
                component = getattr(pipe, name, None)
                if component is not None:
                    component.to(dtype=dtype)
        source = {"kind": "tiny", "seed": seed}
        if variant is not None:
            source["variant"] = variant
        return cls(pipe, opts, source=source, offload_device=device)

    @classmethod
    def build(
        cls,
        model_path: str | None = None,
        tiny: bool = False,
        dtype: str | None = None,
        device: str | None = None,
        weights_seed: int | None = None,
        variant: str | None = None,
        **options: Any,
    ) -> Any:
        """Construct from command-line options: ``model_path`` loads a checkpoint, ``tiny=true``
        builds the small random model (``weights_seed`` picks its weights, default 0;
        ``variant`` its family member); every other option is one of the family's options.

        Args:
            model_path: a diffusers-format checkpoint folder (or a hub id the machine can
                reach).
            tiny: build the small random model of this family instead (tests, no weights).
            dtype: the denoisers' and text encoders' dtype, ``bf16``/``fp16``/``fp32``
                (default: bfloat16 on CUDA, else float32; the VAE stays float32).
            device: where the model runs, e.g. ``cuda`` or ``cpu`` (default: CUDA when
                available; the tiny model: ``cpu``).
            weights_seed: with ``tiny=true``, the seed of its random weights (default 0).
            variant: with ``tiny=true``, which member of the family it imitates.
        """
        check_build_arguments(
            cls.name, cls.layout.description, model_path, tiny, weights_seed, variant
        )
        if tiny:
            seed = 0 if weights_seed is None else weights_seed
            return cls.tiny(
                seed=seed,
                device=device or "cpu",
                dtype=dtype or torch.float32,
                variant=variant,
                **options,
            )
        return cls.from_pretrained(model_path, dtype=dtype, device=device, **options)

    @classmethod
    def compute_profile(
        cls,
        model_path: str | None = None,
        tiny: bool = False,
        dtype: str | None = None,
        device: str | None = None,
        weights_seed: int | None = None,
        variant: str | None = None,
        **options: Any,
    ) -> ComputeProfile:
        """Steps and forwards per step of ``build(**same options)``, from the options alone.

        Nothing is loaded or built and no file is read (``model_path`` need not exist yet);
        the choice of model, ``dtype`` and the options are checked as :meth:`build` checks
        them. ``device`` does not change the count and is not checked. A model with two
        experts runs one of them per step, so the count is the same as with one.
        """
        check_build_arguments(
            cls.name, cls.layout.description, model_path, tiny, weights_seed, variant
        )
        if model_path is not None:
            check_path_type(model_path)
        parse_dtype(dtype)
        opts = cls.options_from(**({**cls.tiny_size, **options} if tiny else options))
        return ComputeProfile(opts.num_steps, opts.forwards_per_step)
