"""The running batch: a KV cache whose rows have different lengths.

Rows are left-padded to a common length ``T``; ``mask`` ([rows, T], 1 for a real token)
and per-row position ids keep padding out of attention, so each row computes what it would
compute alone. New rows are prefilled on their own and then joined (both sides padded on the
left to the longer length); finished rows are dropped and the columns that became padding in
every row are trimmed. This is the "ragged batch" of early TGI, on transformers'
``DynamicCache``; it needs no custom attention kernel, which matters on CPU.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from transformers import DynamicCache
from transformers.cache_utils import DynamicLayer

__all__ = ["RaggedBatch", "cache_from"]


class RaggedBatch:
    """The cache rows of the running sequences, in the scheduler's ``running`` order."""

    def __init__(self) -> None:
        self.cache: DynamicCache | None = None
        self.mask: torch.Tensor | None = None  # [rows, T], int64

    def __len__(self) -> int:
        return 0 if self.mask is None else int(self.mask.shape[0])

    def join(self, cache: DynamicCache, mask: torch.Tensor) -> None:
        """Add prefilled rows with their own cache and mask."""
        if self.cache is None or self.mask is None:
            self.cache, self.mask = cache, mask
            return
        width = max(self.mask.shape[1], mask.shape[1])
        for mine, theirs in zip(_layers(self.cache), _layers(cache), strict=True):
            (my_keys, my_values), (their_keys, their_values) = _kv(mine), _kv(theirs)
            mine.keys = torch.cat([_pad_left(my_keys, width), _pad_left(their_keys, width)])
            mine.values = torch.cat([_pad_left(my_values, width), _pad_left(their_values, width)])
        self.mask = torch.cat([_pad_mask(self.mask, width), _pad_mask(mask, width)])

    def keep(self, keep: list[int]) -> None:
        """Keep only these row indexes (in this order), then trim all-padding columns."""
        if len(keep) == len(self):
            return
        if not keep:
            self.cache, self.mask = None, None
            return
        assert self.cache is not None and self.mask is not None
        index = torch.tensor(keep, device=self.mask.device)
        mask = self.mask[index]
        start = int(mask.any(dim=0).int().argmax())  # first column any row still uses
        for layer in _layers(self.cache):
            keys, values = _kv(layer)
            layer.keys = keys[index, :, start:, :]
            layer.values = values[index, :, start:, :]
        self.mask = mask[:, start:]

    def row(self, index: int, tokens: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """Row ``index``'s keys and values for its last ``tokens`` columns, per layer (copies).

        A row's real columns are contiguous at the right: it was left-padded when it joined,
        and every decode step since added a real column to every row.
        """
        assert self.cache is not None
        return [
            (
                keys[index : index + 1, :, -tokens:, :].clone(),
                values[index : index + 1, :, -tokens:, :].clone(),
            )
            for keys, values in map(_kv, _layers(self.cache))
        ]

    def grow(self) -> torch.Tensor:
        """The mask for a decode step: one more real column for every row."""
        assert self.mask is not None
        self.mask = F.pad(self.mask, (0, 1), value=1)
        return self.mask


def cache_from(
    model_config: Any, layers: list[tuple[torch.Tensor, torch.Tensor]], length: int
) -> DynamicCache:
    """A new one-row cache holding the first ``length`` tokens of ``layers`` (a prefix hit)."""
    cache = DynamicCache(config=model_config)
    for index, (keys, values) in enumerate(layers):
        cache.update(keys[:, :, :length, :], values[:, :, :length, :], index)
    return cache


def _pad_left(tensor: torch.Tensor, width: int) -> torch.Tensor:
    missing = width - tensor.shape[2]
    return tensor if missing == 0 else F.pad(tensor, (0, 0, missing, 0))


def _pad_mask(mask: torch.Tensor, width: int) -> torch.Tensor:
    missing = width - mask.shape[1]
    return mask if missing == 0 else F.pad(mask, (missing, 0), value=0)


def _kv(layer: DynamicLayer) -> tuple[torch.Tensor, torch.Tensor]:
    assert layer.keys is not None and layer.values is not None  # _layers checked
    return layer.keys, layer.values


def _layers(cache: DynamicCache) -> list[DynamicLayer]:
    layers = []
    for layer in cache.layers:
        if type(layer) is not DynamicLayer or layer.keys is None or layer.values is None:
            raise NotImplementedError(
                f"the batched engine handles full-attention caches only, not {type(layer).__name__}"
            )
        layers.append(layer)
    return layers
