"""FLOP counting: torch's FLOP counter run on meta-device copies of a model, once per shape.

``torch.utils.flop_counter.FlopCounterMode`` counts the floating-point operations of the
matrix products, convolutions and attention kernels a call dispatches (two per
multiply-add; elementwise work, norms and resizing are not counted). Run on the meta
device, where tensors have shapes and no storage, it costs no memory and almost no time,
so a full-size model can be counted on any machine:

* :func:`meta_copy` copies a module with every parameter and buffer replaced by a meta
  tensor of the same shape and dtype (the real weights are neither read nor copied);
* :func:`count_flops` runs a callable under the counter (no autograd) and returns the total;
* :class:`FlopCache` keeps one count per key (a callable's name and its input shapes), so
  the meter's hot path is a dictionary lookup.

FLOPs of these models are linear in the batch (every product is per sample), so a count
at one batch size scales exactly to another; backends and rewards still count at the batch
size they are asked about, and the cache keeps each.
"""

from __future__ import annotations

import copy
import itertools
from collections.abc import Callable, Hashable
from typing import Any

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

META = torch.device("meta")


def meta_copy(module: nn.Module) -> nn.Module:
    """A deep copy of ``module`` whose parameters and buffers are meta tensors (no storage).

    The copy is made through ``copy.deepcopy`` with every parameter and buffer mapped to its
    meta counterpart in advance, so no real tensor data is copied; other attributes (configs,
    attention processors) are copied as usual. Hooks and methods patched on an instance are
    not: a copy that ran a user's forward hooks, accelerate's offload hooks (which move
    weights between devices, as ``cpu_offload`` installs them) or a wrapper around the
    original's method would call them with meta tensors.
    """
    memo: dict[int, Any] = {}
    for tensor in itertools.chain(module.parameters(), module.buffers()):
        if id(tensor) in memo:
            continue
        empty = torch.empty_like(tensor, device=META)
        if isinstance(tensor, nn.Parameter):
            empty = nn.Parameter(empty, requires_grad=tensor.requires_grad)
        memo[id(tensor)] = empty
    keep = list(memo.values())  # deepcopy's memo must outlive the copy of every key
    copied = copy.deepcopy(module, memo)
    del keep
    for sub in copied.modules():
        for hooks in (sub._forward_hooks, sub._forward_pre_hooks, sub._backward_hooks):
            hooks.clear()
        # methods patched on the instance (accelerate's wrapped forward, a profiler's timed
        # decode) close over the original module: the copy runs its class's own
        patched = [
            name
            for name, value in vars(sub).items()
            if callable(value) and not isinstance(value, nn.Module) and hasattr(type(sub), name)
        ]
        for name in (*patched, "_old_forward", "_hf_hook"):
            sub.__dict__.pop(name, None)
    return copied


def meta_empty(shape: tuple[int, ...], dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """A meta tensor of ``shape``: an input for a counted call."""
    return torch.empty(shape, dtype=dtype, device=META)


def count_flops(fn: Callable[[], Any]) -> int:
    """FLOPs of ``fn()`` as ``FlopCounterMode`` counts them, run without autograd."""
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        fn()
    return int(counter.get_total_flops())


class FlopCache:
    """One FLOP count per key, computed on first use (``None`` is cached too: "unknown")."""

    def __init__(self) -> None:
        self._counts: dict[Hashable, float | None] = {}
        #: How many counts were computed (not looked up): for tests of the cache.
        self.computed = 0

    def get(self, key: Hashable, count: Callable[[], float | None]) -> float | None:
        try:
            return self._counts[key]
        except KeyError:
            value = count()
            self.computed += 1
            value = None if value is None else float(value)
            self._counts[key] = value
            return value
