"""The mailbox's interface and the helpers its backends share.

The pool runs on one asyncio event loop and calls the mailbox from it, so nothing here may
block on I/O: writes (``put``, ``sweep``) return at once, reads are coroutines.
"""

from __future__ import annotations

import abc
import builtins

from ...types import GenerationRequest, JobRecord, JobStatus

__all__ = ["Mailbox", "is_expired", "matches"]


class Mailbox(abc.ABC):
    """Keeps a JobRecord per job from acceptance until retention ends."""

    @abc.abstractmethod
    def put(self, record: JobRecord, request: GenerationRequest | None = None) -> None:
        """Insert or replace the record with this id; never blocks.

        ``request`` is kept alongside until replaced; a later put without one keeps the
        request stored before (the pool only has it at hand when the job is accepted).
        """

    @abc.abstractmethod
    async def get(self, job_id: str) -> JobRecord | None:
        """The record, or None; sees every earlier put at once."""

    @abc.abstractmethod
    async def list(
        self,
        limit: int = 50,
        *,
        model: str | None = None,
        status: JobStatus | None = None,
        owner: str | None = None,
        kind: str | None = None,
    ) -> builtins.list[JobRecord]:
        """Newest first by ``timings.created_at`` (ties: the later put first), filtered;
        ``owner`` keeps only that user's records (None: everyone's)."""

    @abc.abstractmethod
    async def unfinished(self) -> builtins.list[tuple[JobRecord, GenerationRequest | None]]:
        """Queued and running records, oldest first, with their stored requests."""

    @abc.abstractmethod
    def sweep(self, before: float) -> None:
        """Drop terminal records that finished before ``before`` (epoch secs); never blocks."""

    @abc.abstractmethod
    async def flush(self) -> None:
        """Wait until every earlier put and sweep is durable."""

    @abc.abstractmethod
    async def close(self) -> None:
        """Flush, then stop and join any thread; idempotent."""

    @property
    @abc.abstractmethod
    def durable(self) -> bool:
        """Whether records survive a restart of the process."""


def is_expired(record: JobRecord, before: float) -> bool:
    """Whether ``sweep(before)`` drops the record.

    A terminal record without ``finished_at`` falls back to ``created_at``: otherwise it
    would outlive every retention period.
    """
    if not record.status.terminal:
        return False
    timings = record.timings
    finished = timings.finished_at if timings.finished_at is not None else timings.created_at
    return finished < before


def matches(
    record: JobRecord,
    model: str | None,
    status: JobStatus | None,
    owner: str | None = None,
    kind: str | None = None,
) -> bool:
    return (
        (model is None or record.model == model)
        and (status is None or record.status == status)
        and (owner is None or record.user == owner)
        and (kind is None or record.kind == kind)
    )
