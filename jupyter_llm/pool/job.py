"""One job's mutable state inside the pool, and its event log for asyncio consumers."""

from __future__ import annotations

import asyncio
import time

from ..types import (
    GenerationRequest,
    JobRecord,
    JobStatus,
    Logprob,
    Priority,
    Timings,
    TokenEvent,
    Usage,
)

__all__ = ["Job"]


class Job:
    """Owned by the pool's event loop; nothing else touches it.

    The event log is append-only and kept whole, so a consumer can attach late, resume from
    any index, and read at its own pace without ever holding up the worker.
    """

    def __init__(
        self,
        job_id: str,
        request: GenerationRequest,
        created_at: float | None = None,
    ) -> None:
        self.id = job_id
        self.request = request
        self.status = JobStatus.QUEUED
        self.created_at = time.time() if created_at is None else created_at
        self.started_at: float | None = None
        self.first_token_at: float | None = None
        self.last_token_at: float | None = None
        self.finished_at: float | None = None
        self.prompt_tokens = 0
        self.completion_tokens = 0
        self.cost = 0  # units, known once the prompt is counted
        self.worker: int | None = None  # the worker holding its units, until it gives them back
        self.finish_reason: str | None = None
        self.error: str | None = None
        self.events: list[TokenEvent] = []
        self.expiry: asyncio.TimerHandle | None = None
        self._chunks: list[str] = []
        self._changed: asyncio.Future[None] | None = None

    @property
    def model(self) -> str:
        return self.request.model

    @property
    def priority(self) -> Priority:
        return self.request.priority

    @property
    def text(self) -> str:
        if len(self._chunks) > 1:
            self._chunks = ["".join(self._chunks)]
        return self._chunks[0] if self._chunks else ""

    def record(self) -> JobRecord:
        return JobRecord(
            id=self.id,
            model=self.model,
            status=self.status,
            priority=self.priority,
            text=self.text,
            finish_reason=self.finish_reason,
            usage=Usage(self.prompt_tokens, self.completion_tokens),
            timings=Timings(
                self.created_at, self.started_at, self.first_token_at, self.finished_at
            ),
            error=self.error,
        )

    def start(self, worker: int) -> None:
        self.status = JobStatus.RUNNING
        self.worker = worker
        self.started_at = time.time()
        self._emit(TokenEvent(self.id, len(self.events), JobStatus.RUNNING))

    def add_tokens(
        self, text: str, token_ids: tuple[int, ...], logprobs: tuple[Logprob, ...] | None
    ) -> None:
        if token_ids:
            self.last_token_at = time.time()
            if self.first_token_at is None:
                self.first_token_at = self.last_token_at
        self.completion_tokens += len(token_ids)
        self._chunks.append(text)
        self._emit(
            TokenEvent(
                self.id, len(self.events), JobStatus.RUNNING, text, token_ids, logprobs=logprobs
            )
        )

    def finish(
        self, status: JobStatus, finish_reason: str | None, error: str | None = None
    ) -> None:
        """Enter a terminal state (once) and tell every consumer."""
        if self.status.terminal:
            return
        self.status = status
        self.finish_reason = finish_reason
        self.error = error
        self.finished_at = time.time()
        if self.expiry is not None:
            self.expiry.cancel()
            self.expiry = None
        self._emit(
            TokenEvent(self.id, len(self.events), status, finish_reason=finish_reason, error=error)
        )

    def _emit(self, event: TokenEvent) -> None:
        self.events.append(event)
        waiter, self._changed = self._changed, None
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def changed(self) -> None:
        """Wait until the next event; many consumers share one future."""
        if self._changed is None:
            self._changed = asyncio.get_running_loop().create_future()
        await asyncio.shield(self._changed)
