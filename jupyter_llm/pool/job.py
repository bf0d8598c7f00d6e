"""One job's mutable state inside the pool, and its event log for asyncio consumers."""

from __future__ import annotations

import asyncio
import time
from array import array

from ..completion import Trimmer
from ..errors import failure_type
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

__all__ = ["Job", "tokens_in"]


def tokens_in(text: str, token_ids: tuple[int, ...]) -> int:
    """Tokens an output stands for. A remote engine's outputs carry text without ids: each
    stream chunk is one token (OpenAI and vLLM stream token by token); the upstream's usage
    corrects the total when the job ends."""
    return len(token_ids) or (1 if text else 0)


class Job:
    """Owned by the pool's event loop; nothing else touches it.

    The event log is append-only while the job runs, so a consumer can attach late, resume
    from any index, and read at its own pace without ever holding up the worker. When the job
    ends, the log is compacted into a few flat arrays (``replay`` serves it from there): a
    thousand finished jobs would otherwise keep hundreds of thousands of event objects
    alive, and every full garbage collection would walk them on the server's loop.
    """

    def __init__(
        self,
        job_id: str,
        request: GenerationRequest,
        created_at: float | None = None,
        user: str | None = None,
    ) -> None:
        self.id = job_id
        self.request = request
        self.user = user  # who submitted it: whose limits and fair share it counts against
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
        self.error_type: str | None = None
        self.events: list[TokenEvent] = []
        self.expiry: asyncio.TimerHandle | None = None
        self._chunks: list[str] = []
        self._changed: asyncio.Future[None] | None = None
        self._compacted: _Compacted | None = None
        self.readers = 0  # consumers iterating the live log right now
        # A completion's reply is cut to the block at the cursor as it streams.
        self.trimmer = None if request.completion is None else Trimmer(request.completion)

    @property
    def model(self) -> str:
        return self.request.model

    @property
    def priority(self) -> Priority:
        return self.request.priority

    @property
    def kind(self) -> str:
        return self.request.kind

    @property
    def editor(self) -> str | None:
        completion = self.request.completion
        return None if completion is None else completion.editor

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
            kind=self.kind,
            text=self.text,
            finish_reason=self.finish_reason,
            usage=Usage(self.prompt_tokens, self.completion_tokens),
            timings=Timings(
                self.created_at, self.started_at, self.first_token_at, self.finished_at
            ),
            error=self.error,
            error_type=self.error_type,
            user=self.user,
        )

    def start(self, worker: int) -> None:
        self.status = JobStatus.RUNNING
        self.worker = worker
        self.started_at = time.time()
        self._emit(TokenEvent(self.id, len(self.events), JobStatus.RUNNING))

    def add_tokens(
        self, text: str, token_ids: tuple[int, ...], logprobs: tuple[Logprob, ...] | None
    ) -> None:
        count = tokens_in(text, token_ids)
        if count:
            self.last_token_at = time.time()
            if self.first_token_at is None:
                self.first_token_at = self.last_token_at
        self.completion_tokens += count
        self._chunks.append(text)
        self._emit(
            TokenEvent(
                self.id, len(self.events), JobStatus.RUNNING, text, token_ids, logprobs=logprobs
            )
        )

    def finish(
        self,
        status: JobStatus,
        finish_reason: str | None,
        error: str | None = None,
        error_type: str | None = None,
    ) -> None:
        """Enter a terminal state (once) and tell every consumer.

        ``error_type`` names the errors.py class the failure stands for; by default the one
        its status implies (JobExpired, JobCancelled, JobFailed).
        """
        if self.status.terminal:
            return
        self.status = status
        self.finish_reason = finish_reason
        self.error = error
        self.error_type = error_type or failure_type(status)
        self.finished_at = time.time()
        if self.expiry is not None:
            self.expiry.cancel()
            self.expiry = None
        self._emit(
            TokenEvent(
                self.id,
                len(self.events),
                status,
                finish_reason=finish_reason,
                error=error,
                error_type=self.error_type,
            )
        )
        self.compact()

    def compact(self) -> None:
        """Fold a finished job's log into flat arrays, once no consumer is reading it live
        (they see every event as it was) and unless it carries logprobs (kept whole)."""
        if (
            self.status.terminal
            and self.readers == 0
            and self._compacted is None
            and all(event.logprobs is None for event in self.events)
        ):
            self._compacted = _Compacted(self.events, self.text)
            self.events = []

    @property
    def compacted(self) -> bool:
        return self._compacted is not None

    @property
    def event_count(self) -> int:
        return self._compacted.count if self._compacted is not None else len(self.events)

    def replay(self, after: int) -> list[TokenEvent]:
        """A finished, compacted job's events after index ``after``: its remaining text and
        tokens as one event (the index of the last token event), then the terminal event."""
        assert self._compacted is not None
        return self._compacted.replay(self.id, after)

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


class _Compacted:
    """A finished job's events as flat arrays: what ``Job.replay`` needs, nothing more."""

    __slots__ = ("count", "terminal", "text", "text_at", "token_at", "tokens")

    def __init__(self, events: list[TokenEvent], text: str) -> None:
        self.count = len(events)
        self.terminal = events[-1]
        self.text = text
        self.text_at = array("q")  # text offset where event i begins
        self.token_at = array("q")
        self.tokens = array("q")
        offset = 0
        for event in events:
            self.text_at.append(offset)
            self.token_at.append(len(self.tokens))
            offset += len(event.text)
            self.tokens.extend(event.token_ids)

    def replay(self, job_id: str, after: int) -> list[TokenEvent]:
        start = max(after + 1, 0)
        if start >= self.count:
            return []
        events = []
        last = self.count - 2  # the last event before the terminal one
        if start <= last:
            text = self.text[self.text_at[start] :]
            tokens = tuple(self.tokens[self.token_at[start] :])
            if text or tokens:
                events.append(TokenEvent(job_id, last, JobStatus.RUNNING, text, tokens))
        events.append(self.terminal)
        return events
