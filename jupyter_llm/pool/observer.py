"""Hooks for whoever measures the pool (the server's Prometheus metrics, a benchmark).

Every method is called on the pool's event loop, at the moment the thing happens; keep them
cheap (a counter increment, a histogram observation) and never block. The base class does
nothing, so an observer overrides only what it needs. ``kind`` is the job's kind:
``generate`` (a prompt or a chat) or ``completion`` (an editor's inline completion).
"""

from __future__ import annotations

from ..types import JobStatus

__all__ = ["PoolObserver"]


class PoolObserver:
    def job_rejected(self, model: str, reason: str, *, kind: str = "generate") -> None:
        """A submit was refused: ``reason`` is the error class name (``QueueFull``, ...)."""

    def job_started(self, model: str, queue_secs: float, *, kind: str = "generate") -> None:
        """A job left the queue for a worker after waiting ``queue_secs``."""

    def first_token(self, model: str, ttft_secs: float, *, kind: str = "generate") -> None:
        """A job's first token arrived, ``ttft_secs`` after it was submitted."""

    def tokens(
        self, model: str, count: int, gap_secs: float | None, *, kind: str = "generate"
    ) -> None:
        """``count`` tokens arrived for one job, ``gap_secs`` after its previous ones."""

    def job_finished(
        self, model: str, status: JobStatus, completion_tokens: int, *, kind: str = "generate"
    ) -> None:
        """A job reached a terminal status."""
