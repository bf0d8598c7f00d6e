"""One streaming answer in the chat: when to repaint it, and the line of numbers under it.

``LiveAnswer`` follows a ``Generation`` on the kernel's background loop and repaints the
answer as ``%%llm`` does, with the same ``pacing.Pacer`` (never more than 0.5 s behind the
generation up to 16 KB, about 200 KB/s at most); when the job ends it calls ``finish``
once, whatever the pace. ``answer_meta`` words the small line under an answer.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from ...types import JobStatus
from ..errors import explain
from ..generation import Generation
from ..pacing import Pacer

__all__ = ["LiveAnswer", "answer_meta"]


class LiveAnswer:
    """Paced repaints of one answer: ``paint(generation)`` returns the bytes it sent."""

    def __init__(
        self,
        generation: Generation,
        loop: asyncio.AbstractEventLoop,
        paint: Callable[[Generation], int],
        finish: Callable[[Generation], None],
        pacer: Pacer | None = None,
    ) -> None:
        self.generation = generation
        self.pacer = pacer or Pacer()
        self._loop = loop
        self._paint = paint
        self._finish = finish
        self._timer: asyncio.TimerHandle | None = None
        self._finished = False

    def start(self) -> None:
        """Subscribe (from any thread); a job that ended already is finished on the loop."""
        self.generation.subscribe(self._changed)
        self._loop.call_soon_threadsafe(self._changed, self.generation)

    def _changed(self, generation: Generation) -> None:
        if self._finished:
            return
        if generation.done:
            self._finished = True
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
            self._finish(generation)
        elif self._timer is None:
            size = len(generation.text.encode())
            self._timer = self._loop.call_later(self.pacer.delay(size), self._tick)

    def _tick(self) -> None:
        self._timer = None
        if self._finished or self.generation.done:
            return
        self.pacer.painted(self._paint(self.generation))


def answer_meta(generation: Generation) -> str:
    """Model, queue wait, time to first token, tokens, tok/s and finish reason; while the
    job runs, its state and the counters so far."""
    parts = [generation.model]
    record = generation.record
    if not generation.done or record is None:
        if generation.done and generation.failure is not None:
            return f"{generation.model} · {explain(generation.failure)}"
        if generation.status is JobStatus.QUEUED:
            parts.append(generation.note or "queued")  # "loading: converting GGUF, 12 s"
        else:
            parts.append(generation.status.value)
        if generation.tokens:
            parts.append(f"{generation.tokens} tokens")
        rate = generation.tokens_per_second()
        if rate is not None:
            parts.append(f"{rate:.0f} tok/s")
        return " · ".join(parts)
    timings = record.timings
    if timings.started_at is not None:
        parts.append(f"queue {timings.started_at - timings.created_at:.2f} s")
    if timings.first_token_at is not None:
        parts.append(f"first token {timings.first_token_at - timings.created_at:.2f} s")
    tokens = record.usage.completion_tokens
    parts.append(f"{tokens} tokens")
    if tokens > 1 and timings.first_token_at is not None and timings.finished_at is not None:
        span = timings.finished_at - timings.first_token_at
        if span > 0:
            parts.append(f"{(tokens - 1) / span:.0f} tok/s")
    if record.status is JobStatus.COMPLETED:
        parts.append(record.finish_reason or "completed")
    elif generation.failure is not None:
        parts.append(explain(generation.failure))
    return " · ".join(parts)
