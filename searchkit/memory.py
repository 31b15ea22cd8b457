"""Memory preflight: a search that cannot hold its particles is refused before it allocates.

A strategy states the most particles it holds at once
(:meth:`~searchkit.strategy.Strategy.peak_particles`); their latents alone take
``count * prod(latent_shape) * element size`` bytes, which must fit in the memory of the
backend's device: the physical memory for the CPU, the GPU's memory for CUDA. The check is a
floor (solver state and predictions take more), so it refuses only what cannot run at all,
with an error that names the field, its value and the bytes needed against those the device
has, instead of an allocator failure after minutes of building.
"""

from __future__ import annotations

import functools
import math
import os

import torch

from searchkit.errors import InputError


def device_memory(device: torch.device | str) -> int | None:
    """Bytes of memory of ``device`` (``None``: unknown, e.g. a kind this does not know).

    A device's total memory does not change, so it is read once per device: the check runs
    on every draw of noise (a branching search draws at each step), and on CUDA the read is
    a driver call.
    """
    return _device_memory(str(torch.device(device)))


@functools.cache
def _device_memory(name: str) -> int | None:
    device = torch.device(name)
    try:
        if device.type == "cpu":
            return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        if device.type == "cuda" and torch.cuda.is_available():
            return int(torch.cuda.mem_get_info(device)[1])
    except (ValueError, OSError, AttributeError, RuntimeError):
        return None
    return None


def latents_bytes(latent_shape: tuple[int, ...], dtype: torch.dtype, count: int) -> int:
    """Bytes of ``count`` latents of ``latent_shape`` in ``dtype``."""
    return count * math.prod(latent_shape) * torch.empty((), dtype=dtype).element_size()


def human_bytes(count: float) -> str:
    """``5.1 TB`` for ``5_119_999_994_880``: decimal units, three figures."""
    for unit in ("B", "kB", "MB", "GB", "TB", "PB"):
        if count < 1000 or unit == "PB":
            return f"{count:.0f} {unit}" if unit == "B" else f"{count:.1f} {unit}"
        count /= 1000
    raise AssertionError("unreachable")  # pragma: no cover


def check_particle_memory(backend, count: int, field: str, value: object) -> None:
    """Raise :class:`InputError` when ``count`` latents of ``backend`` cannot fit its device.

    ``field`` and ``value`` are what set ``count`` (``num_particles``, 1000000000), named in
    the message, which starts with ``field`` (the command line puts the flag in its place).
    """
    try:
        shape = tuple(int(s) for s in backend.latent_shape)
        dtype_size = torch.empty((), dtype=backend.dtype).element_size()
    except (TypeError, ValueError, RuntimeError):  # a broken declaration: the contract checks
        return  # of the search context name it (searchkit.contracts)
    needed = count * math.prod(shape) * dtype_size
    available = device_memory(backend.device)
    if available is None or needed <= available:
        return
    dtype = str(backend.dtype).removeprefix("torch.")
    raise InputError(
        f"{field} {value!r} makes the search hold {count} latents of shape {list(shape)} "
        f"({dtype}) at once: {needed} bytes ({human_bytes(needed)}), more than the {available} "
        f"bytes ({human_bytes(available)}) of memory on device {backend.device}; lower {field}"
    )
