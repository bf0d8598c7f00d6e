"""Prefix caching: finished sequences' keys and values, kept for requests that start the same.

A chat resends its whole conversation every turn, so turn N's prompt begins with turn N-1's
prompt and answer; a shared system prompt begins many requests. When a sequence finishes, its
cache rows (prompt and answer, as computed) are kept here under their token ids; a new
request takes the longest common prefix with any kept entry and prefills only the rest.
Matching is on tokens, not blocks: a re-tokenized answer that differs in its last token
still reuses everything before it. Least recently used entries go first once ``max_tokens``
are held; an entry that another one extends is dropped (the longer one covers it).

Torch-free: an entry's ``layers`` are whatever the engine stores (per-layer key and value
tensors of shape [1, kv_heads, tokens, head_dim] in the transformers engine).
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

__all__ = ["Hit", "PrefixCache"]


@dataclass(frozen=True, slots=True)
class Hit:
    length: int  # prompt tokens whose keys and values are in ``layers`` (their first ``length``)
    layers: Any


class PrefixCache:
    def __init__(self, max_tokens: int, min_tokens: int = 16) -> None:
        self.max_tokens = max_tokens
        self.min_tokens = min_tokens  # shorter matches are not worth a separate prefill
        self._entries: OrderedDict[tuple[int, ...], Any] = OrderedDict()
        self._held = 0
        self.hits = 0
        self.reused_tokens = 0

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def held_tokens(self) -> int:
        return self._held

    def put(self, tokens: list[int], layers: Any) -> None:
        if not self.max_tokens or len(tokens) < self.min_tokens or len(tokens) > self.max_tokens:
            return
        key = tuple(tokens)
        for other in [k for k in self._entries if len(k) <= len(key) and key[: len(k)] == k]:
            self._drop(other)
        self._entries[key] = layers
        self._held += len(key)
        while self._held > self.max_tokens:
            self._drop(next(iter(self._entries)))

    def match(self, prompt: list[int]) -> Hit | None:
        """The longest cached prefix of ``prompt`` (leaving it at least one token to run)."""
        limit = len(prompt) - 1
        if limit < self.min_tokens:
            return None
        best, best_key = 0, None
        for key in self._entries:
            if key[0] != prompt[0] or min(len(key), limit) <= best:
                continue
            length = _common(key, prompt, min(len(key), limit))
            if length > best:
                best, best_key = length, key
        if best_key is None or best < self.min_tokens:
            return None
        self._entries.move_to_end(best_key)
        self.hits += 1
        self.reused_tokens += best
        return Hit(best, self._entries[best_key])

    def clear(self) -> None:
        self._entries.clear()
        self._held = 0

    def _drop(self, key: tuple[int, ...]) -> None:
        del self._entries[key]
        self._held -= len(key)


def _common(key: tuple[int, ...], prompt: list[int], limit: int) -> int:
    for i in range(limit):
        if key[i] != prompt[i]:
            return i
    return limit
