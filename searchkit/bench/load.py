"""Sweep files: the configurations shipped with searchkit, and reading one with overrides.

``searchkit bench --config X`` (and :func:`load_config`) takes ``X`` as a path first; if no
such file exists, a bare name (``rgrp_beta``, or ``rgrp_beta.json``) names a configuration
shipped inside the package, ``searchkit/bench/configs/<name>.json``, the one copy of each.
Without ``--config`` the default ``analytic`` sweep runs. A relative ``prompts_file`` in a
sweep file is read from that file's folder.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Any

from searchkit.bench.config import SweepConfig
from searchkit.errors import ConfigError, MissingFileError
from searchkit.files import read_json

#: The sweep run by ``searchkit bench`` without ``--config``.
DEFAULT_CONFIG = "analytic"


def _shipped_folder():
    return resources.files("searchkit.bench") / "configs"


def shipped_configs() -> tuple[str, ...]:
    """Names of the sweep configurations shipped inside the package (``searchkit/bench/configs``)."""
    return tuple(
        sorted(f.name[:-5] for f in _shipped_folder().iterdir() if f.name.endswith(".json"))
    )


def resolve_config_path(name_or_path: str | Path | None) -> Path:
    """A config file path: an existing file, else the name of a shipped configuration.

    ``name_or_path`` is first taken as a path; if no such file exists, a bare name such as
    ``rgrp_beta`` (or ``rgrp_beta.json``) names ``searchkit/bench/configs/rgrp_beta.json``.
    ``None`` is the default sweep, ``analytic``.
    """
    if name_or_path is None:
        name_or_path = DEFAULT_CONFIG
    path = Path(name_or_path)
    if path.is_file():
        return path
    stem = path.name[:-5] if path.name.endswith(".json") else path.name
    shipped = shipped_configs()
    if str(path) in (stem, f"{stem}.json") and stem in shipped:
        with resources.as_file(_shipped_folder() / f"{stem}.json") as file:
            return Path(file)
    raise MissingFileError(
        f"config {str(name_or_path)!r} is neither a file nor a shipped configuration "
        f"({', '.join(shipped)})"
    )


def load_config(
    name_or_path: str | Path | None = None,
    *,
    seeds: int | None = None,
    prompts_file: str | Path | None = None,
    dimension: str | None = None,
    max_prompts: int | None = None,
    backend_options: dict[str, Any] | None = None,
    evaluators: list[tuple[str, dict[str, Any]]] | None = None,
    metric: str | None = None,
    reward_options: dict[str, dict[str, Any]] | None = None,
    prompt_aug_dir: str | Path | None = None,
    prompt_aug_extender: str | None = None,
    use_prompt_aug: bool | None = None,
) -> SweepConfig:
    """Read and validate a sweep configuration file (default: the analytic sweep).

    The keyword arguments override the file (as the command line does): ``seeds`` a count,
    ``prompts_file`` (relative to the working folder) replaces the prompts, ``dimension``
    and ``max_prompts`` filter the prompts file, ``backend_options`` update the backend's,
    ``evaluators`` (``(name, options)`` pairs) replace the file's (and the file's
    ``metric`` when it named one of those), ``metric`` names the summary's metric, and ``reward_options`` (``{name: {key: value}}``) update the options of
    every reward of that name in the sweep: its search reward, the entries' own rewards and
    the evaluators (one flag points every use of a model at its checkpoint). A name that no
    reward of the sweep has is an error. ``prompt_aug_dir`` (VBench-2.0's ``prompts`` folder,
    relative to the working folder) and ``prompt_aug_extender`` attach VBench-2.0's rewrites
    to the prompts file's records; ``use_prompt_aug`` ``False`` sends ``prompt_en`` anyway.
    An error about a value given here names the keyword, not the file.
    """
    path = resolve_config_path(name_or_path)
    data = read_json(path, "config")
    given = {
        field
        for field, value in [
            ("seeds", seeds),
            ("dimension", dimension),
            ("max_prompts", max_prompts),
            ("evaluators", evaluators or None),
            ("metric", metric),
        ]
        if value is not None
    }
    if isinstance(data, dict):
        data = dict(data)
        if seeds is not None:
            data["seeds"] = seeds
        if prompts_file is not None:
            data.pop("prompts", None)
            data["prompts_file"] = str(Path(prompts_file).resolve())
        if dimension is not None:
            data["dimension"] = dimension
        if max_prompts is not None:
            data["max_prompts"] = max_prompts
        if prompt_aug_dir is not None:
            data["prompt_aug_dir"] = str(Path(prompt_aug_dir).resolve())
        if prompt_aug_extender is not None:
            data["prompt_aug_extender"] = prompt_aug_extender
        if use_prompt_aug is not None:
            data["use_prompt_aug"] = use_prompt_aug
        if evaluators:
            data["evaluators"] = [{"name": n, "options": o} for n, o in evaluators]
            names = {"oracle", "reward", *(n for n, _ in evaluators)}
            if data.get("metric") not in names:  # the file's metric named a replaced evaluator
                data.pop("metric", None)
        if metric is not None:
            data["metric"] = metric
        if reward_options:
            data = _with_reward_options(data, reward_options)
        if backend_options:
            backend = data.get("backend", {"name": "analytic"})
            backend = {"name": backend} if isinstance(backend, str) else dict(backend)
            backend["options"] = {**(backend.get("options") or {}), **backend_options}
            data["backend"] = backend
    return SweepConfig.from_dict(
        data, base_dir=path.parent, source=f"config {str(path)!r}", given=given
    )


def _with_reward_options(data: dict[str, Any], updates: dict[str, dict[str, Any]]) -> dict:
    """``data`` with ``updates[name]`` merged into the options of every reward called ``name``."""
    found: set[str] = set()

    def update(value: Any) -> Any:
        spec = {"name": value} if isinstance(value, str) else value
        if not isinstance(spec, dict) or spec.get("name") not in updates:
            return value
        found.add(spec["name"])
        options = spec.get("options") or {}
        if not isinstance(options, dict):
            return value  # left for the configuration's own check to name
        return {**spec, "options": {**options, **updates[spec["name"]]}}

    if data.get("reward") is not None:
        data["reward"] = update(data["reward"])
    if isinstance(data.get("evaluators"), list):
        data["evaluators"] = [update(e) for e in data["evaluators"]]
    if isinstance(data.get("strategies"), list):
        data["strategies"] = [
            {**s, "reward": update(s["reward"])}
            if isinstance(s, dict) and s.get("reward") is not None
            else s
            for s in data["strategies"]
        ]
    unknown = sorted(set(updates) - found)
    if unknown:
        raise ConfigError(
            f"reward_options names reward {unknown[0]!r}, which the sweep does not use (its search "
            "reward, an entry's reward or an evaluator)"
        )
    return data
