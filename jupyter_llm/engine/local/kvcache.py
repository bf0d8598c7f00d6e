"""A KV cache allocated once: one slot per running sequence, written in place.

Per layer, keys and values are ``[slots, kv_heads, capacity, head_dim]``. A sequence holds
one slot from its prefill to its end; its token at position ``p`` lives in column ``p``, so a
decode step writes one column per row (no concatenation, no reallocation) and attention reads
columns ``[0, width)`` of the slots in use. Slots in use are always ``0 .. len(self) - 1``:
a sequence that leaves gives its slot to the last one (whose columns move down), so a step
reads a view of the cache, never a gathered copy. Not paged blocks with block tables: on a
CPU, gathering the blocks for attention makes each layer's attention several times slower
than reading the slot view (docs/benchmarks.md).

Columns a step reads but no token wrote (beyond a row's length, up to the longest row's) are
masked out, but must hold finite numbers (0 x NaN is NaN): fresh memory is zeroed the first
time a step reads it, so the allocation stays lazy until it is used.
"""

from __future__ import annotations

import torch

__all__ = ["SlotCache"]


class SlotCache:
    def __init__(
        self,
        layers: int,
        slots: int,
        kv_heads: int,
        capacity: int,
        head_dim: int,
        dtype: torch.dtype,
        device: torch.device,
    ) -> None:
        shape = (layers, slots, kv_heads, capacity, head_dim)
        self.keys = torch.empty(shape, dtype=dtype, device=device)
        self.values = torch.empty(shape, dtype=dtype, device=device)
        self.capacity = capacity
        self.lengths = [0] * slots  # tokens a slot's sequence holds
        self._clean = [0] * slots  # columns of a slot known to hold finite numbers
        self._owners: list[str] = []  # slot i is held by _owners[i]
        self._slot_of: dict[str, int] = {}

    def __len__(self) -> int:
        return len(self._owners)

    @property
    def slots(self) -> int:
        return len(self.lengths)

    def slot(self, owner: str) -> int:
        return self._slot_of[owner]

    def can_claim(self, count: int = 1) -> bool:
        return len(self._owners) + count <= self.slots

    def claim(self, owner: str) -> int:
        """The next free slot, now ``owner``'s (empty)."""
        if owner in self._slot_of:
            raise ValueError(f"{owner!r} already holds slot {self._slot_of[owner]}")
        if not self.can_claim():
            raise RuntimeError(f"all {self.slots} cache slots are in use")
        slot = len(self._owners)
        self._owners.append(owner)
        self._slot_of[owner] = slot
        self.lengths[slot] = 0
        return slot

    def release(self, owner: str) -> None:
        """Free ``owner``'s slot (unknown owners are ignored); the last slot moves into it."""
        slot = self._slot_of.pop(owner, None)
        if slot is None:
            return
        last = len(self._owners) - 1
        moved = self._owners.pop()
        if slot != last:
            length = self.lengths[last]
            self.keys[:, slot, :, :length] = self.keys[:, last, :, :length]
            self.values[:, slot, :, :length] = self.values[:, last, :, :length]
            self._owners[slot] = moved
            self._slot_of[moved] = slot
            self.lengths[slot] = length
            self._clean[slot] = max(self._clean[slot], length)
        self.lengths[last] = 0

    def clear(self) -> None:
        self._owners.clear()
        self._slot_of.clear()
        self.lengths = [0] * self.slots

    def prepare(self, first: int, count: int, width: int) -> None:
        """Make columns ``[0, width)`` of slots ``first .. first + count - 1`` finite."""
        if width > self.capacity:
            raise ValueError(f"{width} columns asked for, the cache holds {self.capacity}")
        for slot in range(first, first + count):
            clean = self._clean[slot]
            if clean < width:
                self.keys[:, slot, :, clean:width] = 0
                self.values[:, slot, :, clean:width] = 0
                self._clean[slot] = width

    def put(self, slot: int, keys: torch.Tensor, values: torch.Tensor) -> None:
        """Copy a prefix's keys and values ``[layers, kv_heads, tokens, head_dim]`` into the
        first columns of ``slot``."""
        tokens = keys.shape[2]
        self.keys[:, slot, :, :tokens] = keys
        self.values[:, slot, :, :tokens] = values
        self._clean[slot] = max(self._clean[slot], tokens)

    def take(self, slot: int, tokens: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Copies of the first ``tokens`` columns of ``slot``: ``[layers, kv_heads, tokens,
        head_dim]`` keys and values."""
        return (
            self.keys[:, slot, :, :tokens].clone(),
            self.values[:, slot, :, :tokens].clone(),
        )
