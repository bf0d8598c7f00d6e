"""Incremental detokenization with stop strings.

Text is released only when it is final: a token that ends inside a multi-byte character
decodes to U+FFFD and is held until the character completes, and when stop strings are set
the last ``len(longest stop) - 1`` characters are held in case they begin one. So a
consumer never sees broken UTF-8, and never sees text past a stop string.
"""

from __future__ import annotations

from typing import Any

__all__ = ["Detokenizer"]

_CONTEXT = 6  # prompt tokens decoded along, so a leading space or merge decodes as in context


class Detokenizer:
    def __init__(self, tokenizer: Any, prompt_ids: list[int], stop: tuple[str, ...] = ()) -> None:
        self._tokenizer = tokenizer
        self._ids = list(prompt_ids[-_CONTEXT:])
        self._prefix = 0
        self._read = len(self._ids)
        self._stop = stop
        self._hold = max((len(s) for s in stop), default=1) - 1
        self.text = ""  # everything decoded so far (cut at a stop string once found)
        self._emitted = 0

    def push(self, token_id: int) -> tuple[str, bool]:
        """Add a token; returns the text that is now final, and whether a stop string ended it."""
        self._ids.append(token_id)
        self.text += self._delta()
        if self._stop:
            start = max(0, self._emitted - self._hold)
            hits = [i for i in (self.text.find(s, start) for s in self._stop) if i >= 0]
            if hits:
                self.text = self.text[: min(hits)]
                return self.flush(), True
        safe = len(self.text) - self._hold
        if safe <= self._emitted:
            return "", False
        out = self.text[self._emitted : safe]
        self._emitted = safe
        return out, False

    def flush(self) -> str:
        """The held-back text, at the end of the sequence."""
        out = self.text[self._emitted :]
        self._emitted = len(self.text)
        return out

    def _delta(self) -> str:
        decode = self._tokenizer.decode
        before = decode(self._ids[self._prefix : self._read], skip_special_tokens=True)
        after = decode(self._ids[self._prefix :], skip_special_tokens=True)
        if len(after) <= len(before) or after.endswith("\ufffd"):
            return ""  # nothing new yet, or a character still incomplete
        self._prefix, self._read = self._read, len(self._ids)
        return str(after[len(before) :])
